"""Bring the lab up and tear it down: the one implementation tests/lab/run and pytest share.

Up: cached Debian base, per-run SSH and signing keys, signed apt repositories served on the lab
bridge, one network namespace + overlay + profile machine per host, packages installed with the
host's own apt from those repositories, hosts booted in parallel, the Ollama double installed
over SSH as install.sh would, each profile's post_install lines run over SSH, what each host
claims to be recorded, and inventories/lab.py written. Down: everything recorded in
.run/state.json is undone (processes by PID, mounts, namespaces, links, run directories), also
after a crash of a previous run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.lab import aptrepo, base_image, config, hostlock, hostprep, hosts, inventory, network
from tests.lab.noworse import sections
from tests.lab.profiles import Profile, load_all


def prerequisites() -> str:
    """Why the lab cannot run here ('' when it can)."""
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, overlay mounts, systemd-nspawn)"
    for tool in ("systemd-nspawn", "debootstrap", "ip", "ssh", "ssh-keygen", "gpg", "dpkg-deb",
                 "mount"):
        if not shutil.which(tool):
            return f"{tool} is not installed (apt-get install systemd-container debootstrap " \
                   "iproute2 openssh-client gpg dpkg)"
    if not Path("/proc/filesystems").read_text().count("overlay"):
        return "the kernel has no overlayfs"
    return ""


class Lab:
    def __init__(self, names: list[str] | None = None, log=None) -> None:
        self.profiles: list[Profile] = load_all(names)
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.hosts: list[hosts.Host] = []
        self.state: dict = {"pids": {}, "netns": [], "links": [], "mounts": [], "bridge": False}
        self.ssh: hosts.SSH | None = None
        self.urls: dict[str, str] = {}
        self.timings: dict[str, float] = {}
        self.claims: dict[str, dict[str, str]] = {}  # host -> what it says it is (after up)
        self.lock = threading.Lock()
        self.locked = False  # holds hostlock between up and down

    # ------------------------------------------------------------------ state bookkeeping

    def save(self) -> None:
        config.RUN_DIR.mkdir(parents=True, exist_ok=True)
        with self.lock:
            config.STATE_FILE.write_text(json.dumps(self.state, indent=1))

    def record_pid(self, label: str, proc: subprocess.Popen) -> None:
        """Remember a process we started, with the argv it runs (to refuse a reused PID)."""
        with self.lock:
            self.state["pids"][label] = {"pid": proc.pid, "argv": [str(a) for a in proc.args]}
        self.save()

    # ------------------------------------------------------------------ up

    def up(self) -> None:
        why = prerequisites()
        if why:
            raise RuntimeError(why)
        t0 = time.monotonic()
        hostlock.acquire(self.log)
        self.locked = True
        teardown_stale(self.log)
        base = base_image.ensure_base(self.log)
        self.timings["base"] = time.monotonic() - t0
        remove_run_dir()
        config.RUN_DIR.mkdir(parents=True)
        self.save()
        self.ssh = self.make_keys()
        signer = aptrepo.Signer(config.RUN_DIR / "gnupg")
        try:
            self.urls = aptrepo.build_repos(config.RUN_DIR / "www", config.RUN_DIR / "debs",
                                            signer)
            keyring = signer.public_binary()
        finally:
            signer.close()  # its gpg-agent must not outlive a failed build
        self.state["bridge"] = True
        self.save()
        network.create_bridge()
        raise_inotify_limit(self.state, len(self.profiles))
        self.save()
        self.record_pid("apt-repo", aptrepo.serve(config.RUN_DIR / "www",
                                                 config.RUN_DIR / "apt-repo.log"))
        pubkey = (config.RUN_DIR / "ssh/id_ed25519.pub").read_text()
        known = []
        for i, profile in enumerate(self.profiles, start=1):
            host = hosts.Host(profile, network.HostNet(i), config.RUN_DIR / "hosts" / profile.name)
            self.hosts.append(host)
            self.state["netns"].append(host.net.netns)
            self.state["links"].append(host.net.veth)
            self.save()
            network.create_host(host.net)
            host.dir.mkdir(parents=True)
            self.state["mounts"].append(str(host.merged))
            self.save()
            hosts.mount_overlay(host, base)
            kt, key = hostprep.prepare(host.merged, profile, pubkey, keyring, self.urls["debian"])
            hostprep.kfd_tree(profile, host.merged)
            known.append(f"{host.net.address} {kt} {key}")
        (config.RUN_DIR / "ssh/known_hosts").write_text("\n".join(known) + "\n")
        self.timings["prepare"] = time.monotonic() - t0
        self.log(f"lab: installing packages on {len(self.hosts)} hosts with their own apt")
        self.parallel(self.install_packages, workers=4)
        self.timings["packages"] = time.monotonic() - t0
        self.log("lab: booting hosts")
        for host in self.hosts:
            self.record_pid(f"nspawn:{host.name}", hosts.boot(host))
        deadline = time.monotonic() + 120
        for host in self.hosts:
            if not hosts.wait_port(host.net.address, 22, deadline):
                raise RuntimeError(f"{host.name}: sshd did not come up, see "
                                   f"{host.dir / 'console.log'}")
        self.parallel(self.check_hardware, workers=len(self.hosts))
        self.timings["boot"] = time.monotonic() - t0
        self.log("lab: installing the Ollama double over SSH")
        self.parallel(self.install_ollama, workers=len(self.hosts))
        self.timings["ollama"] = time.monotonic() - t0
        if any(h.profile.post_install for h in self.hosts):
            self.log("lab: running the profiles' post_install lines over SSH")
            self.parallel(self.post_install, workers=len(self.hosts))
        self.parallel(self.record_claims, workers=len(self.hosts))
        self.timings["post_install"] = time.monotonic() - t0
        inventory.write(self.hosts, self.ssh, self.urls)
        phases = ", ".join(f"{k} {v:.0f}s" for k, v in self.timings.items())
        self.log(f"lab: {len(self.hosts)} hosts up in {time.monotonic() - t0:.0f}s ({phases} "
                 f"from the start), inventory "
                 f"{config.INVENTORY_PATH.relative_to(config.REPO_ROOT)}")

    def make_keys(self) -> hosts.SSH:
        d = config.RUN_DIR / "ssh"
        d.mkdir(mode=0o700)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ogf-lab",
                        "-f", str(d / "id_ed25519")], check=True)
        return hosts.SSH(d / "id_ed25519", d / "known_hosts")

    def parallel(self, fn, workers: int) -> None:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            errors = [f.exception() for f in [pool.submit(fn, h) for h in self.hosts]]
        errors = [e for e in errors if e]
        if errors:
            raise errors[0]

    def install_packages(self, host: hosts.Host) -> None:
        """The host's own apt installs what the profile's machine had before the story."""
        p = host.profile
        if not p.packages and not p.repos:
            return
        rc = hosts.run_in(host, "\n".join(package_commands(p, self.urls)),
                          host.dir / "provision.log")
        if rc != 0:
            raise RuntimeError(f"{host.name}: package install failed, see "
                               f"{host.dir / 'provision.log'}")

    def check_hardware(self, host: hosts.Host) -> None:
        """The machine must be laid out before anything reads it: a host whose
        ogf-lab-hw.service failed plays no machine at all (a lab fault, never the fix's)."""
        if host.profile.init == "wsl":
            return  # its init runs hwboot itself and says so on the console
        assert self.ssh
        res = self.ssh.run(host.net.address, "systemctl is-failed ogf-lab-hw.service; "
                           "journalctl -b -u ogf-lab-hw.service --no-pager | tail -20")
        out = res.stdout.decode(errors="replace")
        if not out.startswith("active"):
            raise RuntimeError(f"{host.name}: the lab's hardware unit did not run: {out[-1500:]}")

    def install_ollama(self, host: hosts.Host) -> None:
        """install.sh's work over SSH; on a WSL host without systemd nothing starts Ollama but
        wsl.conf's boot command, so the distro is then restarted (wsl --terminate, then wsl)
        and its init runs that command."""
        p = host.profile
        if not p.ollama_version:
            return
        assert self.ssh
        res = self.ssh.run(host.net.address, "\n".join(ollama_commands(p)))
        log = host.dir / "install-ollama.log"
        log.write_bytes(res.stdout + res.stderr)
        if res.returncode != 0:
            raise RuntimeError(f"{host.name}: Ollama install failed: "
                               f"{res.stderr.decode(errors='replace')[-400:]}")
        if p.init != "wsl":
            return
        self.restart(host)
        res = self.ssh.run(host.net.address, "/usr/lib/ogf-lab/ollama-up")
        with open(log, "ab") as out:
            out.write(res.stdout + res.stderr)
        if res.returncode != 0:
            raise RuntimeError(f"{host.name}: wsl.conf's boot command did not start Ollama: "
                               f"{res.stderr.decode(errors='replace')[-400:]}")

    def restart(self, host: hosts.Host) -> None:
        """Stop the host's container and start it again (a WSL distro: wsl --terminate, then
        wsl); returns when its sshd answers."""
        label = f"nspawn:{host.name}"
        hosts.stop_pid(self.state["pids"][label]["pid"])
        self.record_pid(label, hosts.boot(host))
        if not hosts.wait_port(host.net.address, 22, time.monotonic() + 60):
            raise RuntimeError(f"{host.name}: sshd did not come back after the restart, see "
                               f"{host.dir / 'console.log'}")

    def post_install(self, host: hosts.Host) -> None:
        """The profile's post_install lines as root over SSH (set -e): what the owner, or an
        attacker, did after Ollama was installed. A background process must leave SSH's
        stdio (setsid -f CMD </dev/null >/dev/null 2>&1, or systemd-run --uid=USER), or the
        session never ends."""
        lines = post_install_lines(host.profile, self.urls)
        if not lines:
            return
        assert self.ssh
        try:
            res = self.ssh.run(host.net.address, "\n".join(lines), timeout=120)
        except subprocess.TimeoutExpired as err:
            raise RuntimeError(f"{host.name}: post_install did not end within 120 s (a "
                               "background process kept SSH's stdout open?)") from err
        (host.dir / "post-install.log").write_bytes(res.stdout + res.stderr)
        if res.returncode != 0:
            raise RuntimeError(f"{host.name}: post_install failed (exit {res.returncode}): "
                               f"{res.stderr.decode(errors='replace')[-600:]}")

    def record_claims(self, host: hosts.Host) -> None:
        """What the host says it is, right after up: its OS, its init, its users and
        processes (test_lab checks that profiles' hosts are what they claim)."""
        assert self.ssh
        res = self.ssh.run(host.net.address, CLAIMS, timeout=60)
        self.claims[host.name] = sections(res.stdout.decode(errors="replace"))

    def cut_when_changed(self, name: str, stop: threading.Event) -> threading.Thread:
        """Fault ssh-stop: the moment the fix starts changing host NAME (its journal
        appears in the overlay), stop the host's sshd and kill every SSH session, from outside
        (nsenter), so the cut lands mid-run every time."""
        host = next(h for h in self.hosts if h.name == name)
        marker = host.dir / "upper/var/lib/ollama-gpu-fix/txn/journal"
        entry = self.state["pids"][f"nspawn:{name}"]

        def watch() -> None:
            while not stop.is_set():
                if marker.exists():
                    hosts.run_inside(entry["pid"], ["sh", "-c", "systemctl stop ssh.socket "
                                     "ssh.service; pkill -KILL -x sshd; true"])
                    self.log(f"lab: fault: cut {name}'s sshd mid-run")
                    return
                time.sleep(0.02)

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        return thread

    def revive(self, name: str) -> bool:
        """Bring a host's sshd back (a fault stopped it) and check Ollama still runs there:
        the host was left as found, or better."""
        entry = self.state["pids"].get(f"nspawn:{name}")
        if not entry:
            return False
        # ssh.service only: Debian 12 runs sshd from it (ssh.socket is disabled); starting both
        # races them for port 22 and fails one of them now and then
        start = hosts.run_inside(entry["pid"], ["systemctl", "start", "ssh.service"])
        active = hosts.run_inside(entry["pid"], ["systemctl", "is-active", "ollama.service"])
        audit = hosts.run_inside(entry["pid"], ["dpkg", "--audit"])
        self.log(f"lab: revived {name}: ssh {start.returncode}, ollama "
                 f"{active.stdout.strip()}, dpkg audit {audit.stdout.strip() or 'clean'}")
        return start.returncode == 0 and active.stdout.strip() == "active" and not audit.stdout

    # ------------------------------------------------------------------ down

    def down(self) -> list[str]:
        try:
            return teardown(self.state, self.log)
        finally:
            if self.locked:
                self.locked = False
                hostlock.release()


CLAIMS = """echo '@@ login-path'; printf '%s\\n' "$PATH"
PATH=/usr/sbin:/usr/bin:/sbin:/bin
echo '@@ os-release'; cat /etc/os-release
echo '@@ lsb-release'; cat /etc/lsb-release 2>/dev/null
echo '@@ sources'; ls -1 /etc/apt/sources.list.d
echo '@@ systemd'; if [ -d /run/systemd/system ]; then echo yes; else echo no; fi
echo '@@ pid1'; cat /proc/1/comm
echo '@@ users'; getent passwd mallory alice
echo '@@ processes'; ps -eo user:20=,args=
true"""


def post_install_lines(p: Profile, urls: dict[str, str]) -> list[str]:
    """The profile's post_install lines with {nvidia}, {debian}, {rocm}, {amdgpu} and
    {repo_base} replaced by this host's repository URLs (other braces stay: shell's own)."""
    if not p.post_install:
        return []
    values = aptrepo.host_urls(p.os, urls)
    lines = ["set -e", "export DEBIAN_FRONTEND=noninteractive"]
    for line in p.post_install:
        for key, url in values.items():
            line = line.replace("{" + key + "}", url)
        lines.append(line)
    return lines


def package_commands(p: Profile, urls: dict[str, str]) -> list[str]:
    """Shell lines that give a host the profile's packages the way its owner installed them:
    the vendors' documented repository recipes, then apt. The lab's hosts and the Vagrant VM
    run the same lines. NVIDIA's repository is the host's distribution's."""
    lines = []
    nvidia = aptrepo.host_urls(p.os, urls)["nvidia"]
    if "nvidia" in p.repos:  # NVIDIA's documented recipe (ollama-anchor.md 7.2)
        lines += [f"curl -fsSLo /tmp/cuda-keyring.deb {nvidia}cuda-keyring_1.1-1_all.deb",
                  "dpkg -i /tmp/cuda-keyring.deb", "rm -f /tmp/cuda-keyring.deb"]
    if "nvidia-manual" in p.repos:  # the owner's own source: NVIDIA's key, no cuda-keyring
        lines += [f"curl -fsSLo /tmp/cuda-keyring.deb {nvidia}cuda-keyring_1.1-1_all.deb",
                  "dpkg-deb -x /tmp/cuda-keyring.deb /tmp/cuda-keyring",
                  "install -D -m 644 /tmp/cuda-keyring/usr/share/keyrings/"
                  "cuda-archive-keyring.gpg /etc/apt/keyrings/nvidia-cuda.gpg",
                  f"echo 'deb [signed-by=/etc/apt/keyrings/nvidia-cuda.gpg] {nvidia} /' "
                  "> /etc/apt/sources.list.d/nvidia-cuda.list",
                  "rm -rf /tmp/cuda-keyring /tmp/cuda-keyring.deb"]
    if {"rocm", "amdgpu"} & set(p.repos):  # AMD's documented recipe, key as .asc
        key = config.repo_url("rocm/rocm.gpg.key")
        lines += ["mkdir -p --mode=0755 /etc/apt/keyrings",
                  f"curl -fsSL {key} -o /etc/apt/keyrings/rocm.asc"]
        for repo in ("rocm", "amdgpu"):
            if repo in p.repos:
                lines.append(f"echo 'deb [arch=amd64 signed-by=/etc/apt/keyrings/rocm.asc] "
                             f"{urls[repo]} jammy main' > /etc/apt/sources.list.d/{repo}.list")
    lines.append("apt-get update -q")
    if p.packages:
        lines.append("apt-get install -y -q --no-install-recommends " + " ".join(p.packages))
    lines.append("ldconfig")
    return lines


def ollama_commands(p: Profile, wait_s: int = 10) -> list[str]:
    """Shell lines that install the Ollama double as the profile's version, its drop-ins, and
    load the model once (the user had run it before asking why it was slow). WAIT_S bounds
    the wait for the API after the restart (a VM under TCG needs longer than a container).
    A WSL host without systemd stops after the install: wsl.conf's boot command starts
    Ollama there (Lab.install_ollama)."""
    double = (config.LAB_DIR / "ollama_double.py").read_text()
    double = double.replace('VERSION = "0.0.0"', f'VERSION = "{p.ollama_version}"', 1)
    script = (config.HOSTFILES_DIR / "install-ollama.sh").read_text()
    parts = ["set -e", "umask 022", stage("/tmp/ogf-ollama", double),
             stage("/tmp/ogf-install.sh", script),
             # install.sh asks whether systemd runs: let a just-booted host finish booting
             "timeout 60 systemctl is-system-running --wait >/dev/null 2>&1 || true",
             f"sh /tmp/ogf-install.sh {p.ollama_version} {ollama_era(p.ollama_version)} "
             f"{1 if p.ollama_manual_install else 0}"]
    for name, text in p.dropins.items():
        parts += ["mkdir -p /etc/systemd/system/ollama.service.d",
                  stage(f"/etc/systemd/system/ollama.service.d/{name}", text)]
    if p.init == "wsl":
        return parts + ["rm -f /tmp/ogf-ollama /tmp/ogf-install.sh"]
    return parts + [
        "rm -f /tmp/ogf-ollama /tmp/ogf-install.sh", "systemctl daemon-reload",
        "systemctl restart ollama",
        f"for i in $(seq {wait_s * 10}); do curl -sf http://127.0.0.1:11434/api/version "
        ">/dev/null && break; sleep 0.1; done",
        "curl -sf http://127.0.0.1:11434/api/generate -d "
        "'{\"model\":\"qwen2.5:0.5b\",\"keep_alive\":\"2h\"}' >/dev/null"]


def stage(path: str, text: str) -> str:
    """Shell that writes TEXT to PATH (a quoted here-document)."""
    marker = "OGF_EOF_8f3a"
    assert marker not in text
    return f"cat > {path} <<'{marker}'\n{text}{'' if text.endswith(chr(10)) else chr(10)}{marker}"


def ollama_era(version: str) -> str:
    v = tuple(int(x) for x in version.split(".")[:3])
    return "A" if v <= (0, 12, 3) else "B" if v < (0, 30, 0) else "C"


INOTIFY = Path("/proc/sys/fs/inotify/max_user_instances")


def raise_inotify_limit(state: dict, hosts: int) -> None:
    """Every booted host's systemd opens inotify instances, and all hosts count against the
    one root user of this kernel (default 128): raise the limit for the run (restored at
    teardown), or a host fails with "Too many open files" and never starts sshd."""
    want = max(512, 40 * hosts)
    try:
        current = int(INOTIFY.read_text())
    except (OSError, ValueError):
        return
    if current < want:
        INOTIFY.write_text(f"{want}\n")
        state["inotify"] = current


def teardown(state: dict, log) -> list[str]:
    """Undo what STATE records; return what is still left (empty when clean)."""
    pids = state.get("pids", {})
    nspawns = {k: v for k, v in pids.items() if k.startswith("nspawn:")}
    with ThreadPoolExecutor(max_workers=max(1, len(nspawns))) as pool:
        list(pool.map(lambda v: stop_recorded(v), nspawns.values()))
    for label, v in pids.items():
        if not label.startswith("nspawn:"):
            stop_recorded(v)
    for mnt in reversed(state.get("mounts", [])):
        if is_mounted(mnt):
            if subprocess.run(["umount", mnt], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", mnt], capture_output=True)
        machine = f"{config.PREFIX}-{Path(mnt).parent.name}"
        shutil.rmtree(Path("/run/systemd/nspawn/propagate") / machine, ignore_errors=True)
    for ns in state.get("netns", []):
        network.delete_host(network.HostNet(int(ns.rsplit("h", 1)[1])))
    if state.get("bridge"):
        network.delete_bridge()
    if state.get("inotify"):
        try:
            INOTIFY.write_text(f"{state['inotify']}\n")
        except OSError:
            pass
    keep_logs()
    remove_run_dir()
    left = leftovers()
    if left:
        log("lab: teardown left: " + ", ".join(left))
    return left


def remove_run_dir() -> None:
    """Remove .run; a host may have made files immutable (chattr +i lands in its overlay's
    upper directory): clear that flag where removal failed, then remove again."""
    if not config.RUN_DIR.exists():
        return
    shutil.rmtree(config.RUN_DIR, ignore_errors=True)
    if config.RUN_DIR.exists():
        subprocess.run(["chattr", "-R", "-f", "-i", str(config.RUN_DIR)], capture_output=True)
        shutil.rmtree(config.RUN_DIR, ignore_errors=True)


def stop_recorded(entry: dict) -> None:
    """Stop a process we started, after checking the PID still runs what we started."""
    pid = entry["pid"]
    try:
        now = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return
    if now[1 : len(entry["argv"])] != entry["argv"][1:]:
        return  # PID reused by something else: not ours
    hosts.stop_pid(pid)


def is_mounted(path: str) -> bool:
    return any(line.split()[4] == path for line in
               Path("/proc/self/mountinfo").read_text().splitlines())


def keep_logs() -> None:
    """Copy the small per-host logs to .cache/last-run-logs for post-mortems."""
    dest = config.CACHE_DIR / "last-run-logs"
    shutil.rmtree(dest, ignore_errors=True)
    for log in config.RUN_DIR.glob("hosts/*/*.log"):
        target = dest / log.parent.name / log.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, target)
    for log in config.RUN_DIR.glob("*.log"):
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, dest / log.name)


def leftovers() -> list[str]:
    """Lab namespaces, links, mounts and processes still present."""
    left = network.leftovers()
    run = str(config.RUN_DIR)
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if run in line.split()[4]:
            left.append("mount " + line.split()[4])
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if run in cmd and int(proc.name) != os.getpid():
            left.append(f"process {proc.name}: {cmd[:80]}")
    return left


def teardown_stale(log) -> None:
    """A previous run that crashed left its state file: undo what it recorded first."""
    if config.STATE_FILE.is_file():
        try:
            state = json.loads(config.STATE_FILE.read_text())
        except ValueError:
            state = {}
        log("lab: tearing down what a previous run left")
        teardown(state, log)
