"""A real VM through Vagrant (libvirt provider), provisioned as one lab profile, for CI.

`vagrant up --provider=libvirt` boots the locally built box (tests/vagrant/box.py) with a real
kernel, real systemd and real sudo over SSH; software emulation (TCG) where KVM does not work,
KVM where it does. The VM then becomes one lab profile's machine, as in tests/lab/: the lab's
hardware description and boot unit (hwboot: a fake PCI tree bound over /sys, "loaded" kernel
modules and device nodes), the profile's packages from the lab's signed apt repositories, and
the Ollama test double. The deploys run against it with `pyinfra @vagrant`.

Everything started here is recorded and stopped at teardown: the VM (vagrant destroy), the
libvirt daemons if this started them, the lab's bridge and apt server. The box and its libvirt
volume stay cached, like the lab's base image.
"""

from __future__ import annotations

import io
import os
import shlex
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from tests.lab import aptrepo, base_image, config, hostlock, hostprep, network
from tests.lab.lab import ollama_commands, package_commands
from tests.lab.profiles import Profile, load_all
from tests.vagrant import box

HERE = Path(__file__).resolve().parent
PROFILE = "cuda-visible-minus1"
# What hostprep.prepare() writes for an nspawn host that a VM keeps for itself: its identity,
# its network and name resolution, its SSH server and keys.
KEEP_VM_OWN = ("etc/hostname", "etc/hosts", "etc/machine-id", "etc/resolv.conf",
               "etc/ssh/", "root/.ssh/")


def prerequisites() -> str:
    """Why this machine cannot boot the VM ('' when it can)."""
    if os.geteuid() != 0:
        return "needs root (libvirt's system daemon, the lab's bridge)"
    for tool in ("vagrant", "virsh", "libvirtd", "virtlogd", "qemu-system-x86_64", "qemu-img",
                 "mkfs.ext4", "debootstrap"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/test installs it as root)"
    plugins = subprocess.run(["vagrant", "plugin", "list"], capture_output=True, text=True)
    if "vagrant-libvirt" not in plugins.stdout:
        return "the vagrant-libvirt plugin is not installed"
    return ""


def kvm_usable() -> bool:
    """KVM only where a guest really runs under it: /dev/kvm exists on this kind of machine
    but a guest hangs as soon as it leaves real mode (measured), so it is opt-in."""
    return os.path.exists("/dev/kvm") and os.environ.get("OGF_VM_KVM") == "1"


class VagrantVM:
    def __init__(self, log=print) -> None:  # noqa: ANN001
        self.log = log
        self.started: list[subprocess.Popen | int] = []
        self.up_done = False
        self.bridge = False
        self.timings: dict[str, float] = {}
        self.env = dict(os.environ)
        self.profile: Profile = next(p for p in load_all() if p.name == PROFILE)
        self.locked = False  # holds tests/lab/hostlock between up and down (the lab's bridge)

    # ---- libvirt -----------------------------------------------------------------------
    def _daemons(self) -> None:
        if _virsh_answers():
            return  # a libvirtd that is not ours: use it, leave it running
        for name, argv in (("virtlogd", ["virtlogd", "-d"]), ("libvirtd", ["libvirtd", "-d"])):
            if _running(name):
                continue
            subprocess.run(argv, check=True)
            for _ in range(25):
                pids = _running(name)
                if pids:
                    self.started.append(pids[0])
                    break
                time.sleep(0.2)
        for _ in range(50):
            if _virsh_answers():
                return
            time.sleep(0.2)
        raise RuntimeError("libvirtd did not answer on qemu:///system")

    def vagrant(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["vagrant", *args], cwd=HERE, env=self.env, capture_output=True,
                              text=True, timeout=timeout)

    # ---- lifecycle -------------------------------------------------------------------------
    def up(self) -> None:
        t0 = time.monotonic()
        artefacts = box.ensure_box(self.log)
        self.timings["box"] = time.monotonic() - t0
        self._daemons()
        hostlock.acquire(self.log)  # after the daemons: its sweep undefines a dead run's VM
        self.locked = True
        added = subprocess.run(["vagrant", "box", "list"], capture_output=True, text=True)
        marker = HERE / ".box-key"
        if box.BOX_NAME not in added.stdout or not marker.is_file() \
                or marker.read_text() != box.key():
            subprocess.run(["vagrant", "box", "add", "--force", "--name", box.BOX_NAME,
                            str(artefacts["box"])], check=True, capture_output=True)
            # vagrant-libvirt uploads each added box into the default pool once: drop the
            # volumes of older builds of this box
            vols = subprocess.run(["virsh", "-c", "qemu:///system", "vol-list", "default"],
                                  capture_output=True, text=True).stdout.split()
            for vol in vols:
                if vol.startswith("ogf-VAGRANTSLASH-debian12-lab_vagrant_box_image_"):
                    subprocess.run(["virsh", "-c", "qemu:///system", "vol-delete", "--pool",
                                    "default", vol], capture_output=True)
            marker.write_text(box.key())
        self.env.update(OGF_VM_KERNEL=str(artefacts["kernel"]),
                        OGF_VM_INITRD=str(artefacts["initrd"]),
                        OGF_VM_DRIVER="kvm" if kvm_usable() else "qemu",
                        VAGRANT_CWD=str(HERE))
        self.log(f"vagrant: vagrant up --provider=libvirt ({self.env['OGF_VM_DRIVER']})")
        t1 = time.monotonic()
        self.up_done = True
        res = self.vagrant("up", "--provider=libvirt")
        (HERE / ".last-up.log").write_text(res.stdout + res.stderr)
        if res.returncode != 0:
            raise RuntimeError("vagrant up failed:\n" + (res.stdout + res.stderr)[-3000:])
        self.timings["boot"] = time.monotonic() - t1

    def ssh(self, script: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
        """Run SCRIPT as root in the VM (vagrant's own SSH settings, sudo as the user would)."""
        config_text = self.vagrant("ssh-config").stdout
        opts = {}
        for line in config_text.splitlines():
            parts = line.strip().split(None, 1)
            if len(parts) == 2:
                opts[parts[0]] = parts[1]
        argv = ["ssh", "-p", opts["Port"], "-i", opts["IdentityFile"].strip('"'),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", f"{opts['User']}@{opts['HostName']}",
                "sudo sh -c " + shlex.quote(script)]
        return subprocess.run(argv, input=stdin, capture_output=True, timeout=600)

    def provision(self) -> None:
        """Make the VM the profile's machine: files, packages, hardware, the Ollama double."""
        t0 = time.monotonic()
        p = self.profile
        network.create_bridge()
        self.bridge = True
        run = Path(tempfile.mkdtemp(prefix="ogf-vagrant-"))
        self.run_dir = run
        signer = aptrepo.Signer(run / "gnupg")
        try:
            urls = aptrepo.build_repos(run / "www", run / "debs", signer)
            keyring = signer.public_binary()
        finally:
            signer.close()
        self.started.append(aptrepo.serve(run / "www", run / "apt-repo.log"))
        staging = run / "root"
        (staging / "etc/ssh").mkdir(parents=True)  # prepare() writes a host key there
        hostprep.prepare(staging, p, "", keyring, urls["debian"])
        hostprep.kfd_tree(p, staging)
        payload = io.BytesIO()
        with tarfile.open(fileobj=payload, mode="w") as tar:
            for path in sorted(staging.rglob("*")):
                rel = str(path.relative_to(staging)) + ("/" if path.is_dir() else "")
                if rel.startswith(KEEP_VM_OWN) or path.is_dir():
                    continue
                tar.add(path, arcname=rel, recursive=False)
        res = self.ssh("tar -xpf - -C / && rm -f /etc/apt/sources.list", payload.getvalue())
        if res.returncode != 0:
            raise RuntimeError("copying the profile's files failed: " + res.stderr.decode()[-800:])
        lines = ["set -e", "export DEBIAN_FRONTEND=noninteractive",
                 *package_commands(p, urls), "systemctl daemon-reload",
                 "systemctl start ogf-lab-hw.service"]
        res = self.ssh("\n".join(lines))
        (run / "provision.log").write_bytes(res.stdout + res.stderr)
        if res.returncode != 0:
            raise RuntimeError("provisioning failed: " + res.stderr.decode()[-1500:])
        res = self.ssh("\n".join(ollama_commands(p, wait_s=60)))
        (run / "install-ollama.log").write_bytes(res.stdout + res.stderr)
        if res.returncode != 0:
            raise RuntimeError("installing the Ollama double failed: "
                               + res.stderr.decode()[-1500:])
        self.timings["provision"] = time.monotonic() - t0

    def pyinfra(self, deploy: str, report_dir: Path, *extra: str) -> subprocess.CompletedProcess:
        """`pyinfra -y --json @vagrant DEPLOY` from the repository root, as a user runs it."""
        exe = str(Path(os.environ.get("VIRTUAL_ENV", config.REPO_ROOT / ".venv")) / "bin/pyinfra")
        if not os.path.exists(exe):
            exe = shutil.which("pyinfra") or "pyinfra"
        # the VM's host key, learnt on first contact (a VM this test booted, on libvirt's
        # private network) and kept for this VM's life: never the user's ~/.ssh/known_hosts,
        # which may not exist (a fresh CI machine: pyinfra then cannot connect at all)
        known = report_dir.parent / "known_hosts"
        known.touch(mode=0o600)
        return subprocess.run([exe, "-y", "--json", "@vagrant", deploy, "--data",
                               f"report_dir={report_dir}", "--data",
                               f"ssh_known_hosts_file={known}", *extra],
                              cwd=config.REPO_ROOT, env=self.env, capture_output=True,
                              text=True, timeout=900)

    def down(self) -> list[str]:
        """Destroy the VM and stop what this started; returns what could not be undone."""
        problems = []
        if self.up_done:
            res = self.vagrant("destroy", "-f", timeout=300)
            if res.returncode != 0:
                problems.append("vagrant destroy: " + (res.stdout + res.stderr)[-300:])
        for item in reversed(self.started):
            if isinstance(item, subprocess.Popen):
                item.terminate()
                try:
                    item.wait(10)
                except subprocess.TimeoutExpired:
                    item.kill()
            else:
                try:
                    os.kill(item, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        if self.bridge:
            network.delete_bridge()
        if getattr(self, "run_dir", None):
            shutil.rmtree(self.run_dir, ignore_errors=True)
        if self.locked:
            self.locked = False
            hostlock.release()
        return problems


def _running(name: str) -> list[int]:
    """Live processes named NAME (zombies excluded: a daemon that died is not running)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.find("(") + 1 : text.rfind(")")]
        state = text[text.rfind(")") + 2 : text.rfind(")") + 3]
        if comm == name and state != "Z":
            pids.append(int(stat.parent.name))
    return pids


def _virsh_answers() -> bool:
    return subprocess.run(["virsh", "-c", "qemu:///system", "version"],
                          capture_output=True).returncode == 0


def base_ready() -> bool:
    return (base_image.base_dir() / ".ogf-complete").is_file()
