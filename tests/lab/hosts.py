"""Boot, reach and stop lab hosts: systemd-nspawn --boot on an overlay, in its own netns.

This machine has no systemd as PID 1, so nspawn runs with --register=no --keep-unit; each
nspawn is a child of the lab process and is stopped by its PID (SIGTERM asks the container's
systemd to power off, SIGKILL only if it does not).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.lab import config
from tests.lab.network import HostNet
from tests.lab.profiles import Profile


@dataclass
class Host:
    profile: Profile
    net: HostNet
    dir: Path

    @property
    def name(self) -> str:
        return self.profile.name

    @property
    def machine(self) -> str:
        return f"{config.PREFIX}-{self.name}"

    @property
    def merged(self) -> Path:
        return self.dir / "merged"


def mount_overlay(host: Host, lower: Path) -> None:
    for sub in ("upper", "work", "merged"):
        (host.dir / sub).mkdir(parents=True, exist_ok=True)
    opts = f"lowerdir={lower},upperdir={host.dir / 'upper'},workdir={host.dir / 'work'}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(host.merged)],
                   check=True)


def nspawn_base(host: Host) -> list[str]:
    return ["systemd-nspawn", "--quiet", "--register=no", "--keep-unit",
            "-D", str(host.merged), "-M", host.machine,
            f"--network-namespace-path={host.net.netns_path}",
            "--resolv-conf=off", "--timezone=off", "--link-journal=no"]


def run_in(host: Host, script: str, log: Path) -> int:
    """Run a shell script in the host's filesystem and network, without booting it."""
    with open(log, "a") as out:
        return subprocess.run(nspawn_base(host) + ["--setenv=DEBIAN_FRONTEND=noninteractive",
                                                   "/bin/sh", "-ec", script],
                              stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL).returncode


WSL_INIT = "/usr/lib/ogf-lab/wslinit"


def boot(host: Host) -> subprocess.Popen:
    """Start the host under supervise.py (restarts it on reboot); returns the supervisor.

    A systemd host boots (--boot: systemd is PID 1). A WSL host without systemd runs the lab's
    WSL init as PID 1 instead (hostfiles/wslinit), which stops on SIGTERM: nspawn without
    --boot would SIGKILL it otherwise."""
    cmd = nspawn_base(host) + ["--console=read-only", "--capability=CAP_SYS_ADMIN"]
    if host.profile.init == "wsl":
        cmd += ["--kill-signal=SIGTERM", WSL_INIT]
    else:
        cmd += ["--boot"]
    out = open(host.dir / "console.log", "ab")
    supervisor = [sys.executable, str(config.LAB_DIR / "supervise.py")]
    return subprocess.Popen(supervisor + cmd, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def wait_port(address: str, port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.3)
    return False


def stop_pid(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM (nspawn powers the container off), then SIGKILL; only this PID's group."""
    if not pid_alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    end = time.monotonic() + timeout
    while time.monotonic() < end and pid_alive(pid):
        time.sleep(0.2)
    if pid_alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        time.sleep(0.5)


def pid_alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        return state != "Z"
    except OSError:
        return False


class SSH:
    """OpenSSH client settings for the lab (per-run key, per-run known_hosts, no agent)."""

    def __init__(self, key: Path, known_hosts: Path) -> None:
        self.key = key
        self.known_hosts = known_hosts

    def argv(self, address: str) -> list[str]:
        return ["ssh", "-i", str(self.key), "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR",
                "-F", "/dev/null", f"root@{address}"]

    def run(self, address: str, command: str, stdin: bytes | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(address) + [command], input=stdin, capture_output=True,
                              timeout=timeout)


INIT_NAMES = ("systemd", "init")  # a booted host's systemd, a WSL host's init


def container_init(supervisor_pid: int) -> int | None:
    """PID (on this machine) of the init (systemd, or WSL's init) that runs inside a lab host:
    the child of the systemd-nspawn that the host's supervisor started."""
    def children(pid: int) -> list[int]:
        try:
            text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        except OSError:
            return []
        return [int(x) for x in text.split()]

    for nspawn in children(supervisor_pid):
        for child in children(nspawn):
            try:
                if Path(f"/proc/{child}/comm").read_text().strip() in INIT_NAMES:
                    return child
            except OSError:
                continue
    return None


def run_inside(supervisor_pid: int, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a command inside a lab host without SSH (its sshd may be the thing that is down)."""
    init = container_init(supervisor_pid)
    if init is None:
        raise RuntimeError("the lab host's init is not running")
    return subprocess.run(["nsenter", "-t", str(init), "-m", "-u", "-i", "-n", "-p", "--", *argv],
                          capture_output=True, text=True, timeout=timeout)
