"""One lab at a time per network namespace, and nothing a dead lab left in the way.

The lab (tests/lab) and the Vagrant VM (tests/vagrant) both create the bridge ogf-br0 with
10.213.0.1 and serve apt on it: two runs on one kernel (two checkouts, CI beside a developer's
run) collide on those names, and a run killed without its teardown leaves them behind. The
lock is an abstract UNIX socket: its scope is the network namespace, exactly the scope of the
names that collide (a lock file in /run would not be seen from a container that shares the
network but not the mount namespace), and the kernel releases it when its holder dies, however
it dies. Whoever holds it owns every lab-named object in the namespace, so what is still there
when the lock is taken was left by a dead run and is removed (sweep).
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.lab import config, network

LOCK_ADDRESS = "\0ogf-lab-lock"
# argv markers of processes only a lab run starts: its machines and anything run from a run dir
RUN_MARKERS = ("/tests/lab/.run/", "/ogf-vagrant-")
VM_DOMAIN_PREFIX = "ogf-lab-vagrant"

_held: socket.socket | None = None
_depth = 0


def acquire(log, timeout: float = 3600.0) -> None:
    """Take the lock (re-entrant within this process), waiting up to TIMEOUT seconds for a
    live holder to finish; then sweep what dead runs left."""
    global _held, _depth
    if _held is not None:
        _depth += 1
        return
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = time.monotonic() + timeout
    said = False
    while True:
        try:
            sock.bind(LOCK_ADDRESS)
            break
        except OSError as err:
            if err.errno != errno.EADDRINUSE:
                sock.close()
                raise
        if not said:
            log("lab: another lab run on this machine holds the lab's network (abstract socket "
                "@ogf-lab-lock); waiting for it to finish")
            said = True
        if time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"another lab run held the lab's network for {timeout:.0f} s")
        time.sleep(1.0)
    _held, _depth = sock, 1
    sweep(log)


def release() -> None:
    global _held, _depth
    if _held is None:
        return
    _depth -= 1
    if _depth == 0:
        _held.close()
        _held = None


def sweep(log) -> list[str]:
    """Remove lab-named processes, mounts, namespaces, links and VM domains (only while the
    lock is held: then none of them belongs to a live run). Returns what was removed."""
    removed = []
    for pid, cmd in _stale_processes():
        _kill(pid)
        removed.append(f"process {pid} ({cmd[:60]})")
    for mnt in _stale_mounts():
        if subprocess.run(["umount", mnt], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", mnt], capture_output=True)
        removed.append(f"mount {mnt}")
    for name in network.leftovers():
        if name.startswith(f"{config.PREFIX}-h") and Path(f"/run/netns/{name}").exists():
            network.ip("netns", "del", name, check=False)
        else:
            network.ip("link", "del", name, check=False)
        removed.append(name)
    removed += _stale_domains()
    if removed:
        log("lab: removed what an earlier, dead run left: " + ", ".join(removed))
    return removed


def _stale_processes() -> list[tuple[int, str]]:
    found = []
    me = os.getpid()
    for proc in Path("/proc").glob("[0-9]*"):
        pid = int(proc.name)
        if pid == me:
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        cmd = b" ".join(argv).decode(errors="replace")
        machine = argv[0].endswith(b"systemd-nspawn") and any(
            a == b"-M" and b.startswith(config.PREFIX.encode() + b"-")
            for a, b in zip(argv, argv[1:], strict=False))
        if machine or any(m in cmd for m in RUN_MARKERS):
            found.append((pid, cmd))
    return found


def _kill(pid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        for _ in range(50):
            if not Path(f"/proc/{pid}").exists():
                return
            time.sleep(0.1)


def _stale_mounts() -> list[str]:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in reversed(points) if "/tests/lab/.run/hosts/" in p]


def _stale_domains() -> list[str]:
    """The VM a killed Vagrant test left defined in libvirt (its name is ours alone)."""
    virsh = ["virsh", "-c", "qemu:///system"]
    try:
        res = subprocess.run([*virsh, "list", "--all", "--name"], capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    removed = []
    for name in res.stdout.split():
        if name.startswith(VM_DOMAIN_PREFIX):
            subprocess.run([*virsh, "destroy", name], capture_output=True, timeout=60)
            subprocess.run([*virsh, "undefine", name, "--remove-all-storage"],
                           capture_output=True, timeout=60)
            removed.append(f"domain {name}")
    vols = subprocess.run([*virsh, "vol-list", "default"], capture_output=True, text=True,
                          timeout=30).stdout.split()
    for vol in vols:
        if vol.startswith(VM_DOMAIN_PREFIX):
            subprocess.run([*virsh, "vol-delete", "--pool", "default", vol],
                           capture_output=True, timeout=60)
            removed.append(f"volume {vol}")
    return removed
