"""Build (once, cached) a libvirt Vagrant box of Debian 12 from Debian's archive.

No box can be downloaded here, so the box is made locally, the way a box author makes one:
the lab's debootstrap root filesystem (tests/lab/base_image.py) plus Debian's cloud kernel,
initramfs-tools, sudo and the `vagrant` user with Vagrant's well-known insecure key (Vagrant
replaces it with a fresh key on first boot), systemd-networkd with DHCP, sshd. The disk is an
ext4 filesystem image without a partition table (mkfs.ext4 -d fills it from the directory,
no loop mount), converted to qcow2; the VM boots it with libvirt's direct kernel boot, so no
boot loader is needed. Output (under /var/lib/ogf-vagrant, readable by libvirt's qemu user):
ogf-debian12.box, vmlinuz, initrd.img.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from tests.lab import base_image, config

OUT = Path(os.environ.get("OGF_VAGRANT_DIR", "/var/lib/ogf-vagrant"))
BOX_NAME = "ogf/debian12-lab"
EXTRA_PACKAGES = ("linux-image-cloud-amd64", "initramfs-tools", "sudo", "openssh-server",
                  "systemd-sysv", "python3", "curl", "iproute2")
INSECURE_KEY = Path("/usr/share/rubygems-integration/all/gems/vagrant-2.3.4/keys/vagrant.pub")
DISK_GIB = 4
NETWORK = "[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n"


def key() -> str:
    text = base_image.base_key() + ",".join(EXTRA_PACKAGES) + NETWORK + "v1"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def paths() -> dict[str, Path]:
    k = key()
    return {"box": OUT / f"ogf-debian12-{k}.box", "kernel": OUT / f"vmlinuz-{k}",
            "initrd": OUT / f"initrd-{k}.img"}


def _run(cmd: list[str], **kw) -> None:  # noqa: ANN003
    subprocess.run(cmd, check=True, **kw)


def _chroot_install(root: Path, log) -> None:  # noqa: ANN001
    mounts = []
    try:
        for fs in ("proc", "sys", "dev"):
            target = root / fs
            _run(["mount", "--bind", f"/{fs}", str(target)])
            mounts.append(target)
        shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
        mirror = base_image.debian_mirror()
        (root / "etc/apt/sources.list").write_text(f"deb {mirror} {config.DEBIAN_SUITE} main\n")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        with open(OUT / "box-build.log", "a") as out:
            _run(["chroot", str(root), "apt-get", "update", "-qq"], env=env, stdout=out,
                 stderr=out)
            _run(["chroot", str(root), "apt-get", "install", "-y", "-qq",
                  "--no-install-recommends", *EXTRA_PACKAGES], env=env, stdout=out, stderr=out)
            _run(["chroot", str(root), "apt-get", "clean"], stdout=out, stderr=out)
    finally:
        for target in reversed(mounts):
            subprocess.run(["umount", "-l", str(target)], check=False)


def _configure(root: Path) -> None:
    (root / "etc/hostname").write_text("ogf-vagrant\n")
    (root / "etc/fstab").write_text("/dev/vda / ext4 defaults,errors=remount-ro 0 1\n")
    (root / "etc/systemd/network").mkdir(parents=True, exist_ok=True)
    (root / "etc/systemd/network/20-dhcp.network").write_text(NETWORK)
    for unit, target in (("systemd-networkd.service", "multi-user.target.wants"),
                         ("ssh.service", "multi-user.target.wants")):
        link = root / "etc/systemd/system" / target / unit
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            src = next(p for p in (root / "lib/systemd/system" / unit,
                                   root / "usr/lib/systemd/system" / unit) if p.exists())
            link.symlink_to("/" + str(src.relative_to(root)))
    resolv = root / "etc/resolv.conf"
    resolv.unlink(missing_ok=True)
    resolv.write_text("nameserver 192.168.121.1\n")
    subprocess.run(["chroot", str(root), "useradd", "-m", "-s", "/bin/bash", "vagrant"],
                   check=False)
    (root / "etc/sudoers.d/vagrant").write_text("vagrant ALL=(ALL) NOPASSWD:ALL\n")
    os.chmod(root / "etc/sudoers.d/vagrant", 0o440)
    ssh = root / "home/vagrant/.ssh"
    ssh.mkdir(mode=0o700, parents=True, exist_ok=True)
    (ssh / "authorized_keys").write_text(INSECURE_KEY.read_text())
    os.chmod(ssh / "authorized_keys", 0o600)
    _run(["chroot", str(root), "chown", "-R", "vagrant:vagrant", "/home/vagrant"])
    (root / "etc/machine-id").write_text("")  # a new id on first boot


def ensure_box(log=print) -> dict[str, Path]:  # noqa: ANN001
    """Build the box, kernel and initrd unless cached; return their paths."""
    out = paths()
    if all(p.is_file() for p in out.values()):
        return out
    OUT.mkdir(parents=True, exist_ok=True)
    os.chmod(OUT, 0o755)
    base = base_image.ensure_base(log)
    work = OUT / f"build-{key()}"
    if work.exists():
        subprocess.run(["rm", "-rf", str(work)], check=True)
    root = work / "root"
    work.mkdir(parents=True)
    log("vagrant: building the box from the lab's Debian rootfs (cold cache, a few minutes)")
    _run(["cp", "-a", str(base), str(root)])
    _chroot_install(root, log)
    _configure(root)
    kernel = sorted((root / "boot").glob("vmlinuz-*"))[-1]
    initrd = sorted((root / "boot").glob("initrd.img-*"))[-1]
    shutil.copy(kernel, out["kernel"])
    shutil.copy(initrd, out["initrd"])
    raw = work / "root.raw"
    _run(["truncate", "-s", f"{DISK_GIB}G", str(raw)])
    _run(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(root), str(raw)])
    img = work / "box.img"
    _run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(img)])
    (work / "metadata.json").write_text(json.dumps(
        {"provider": "libvirt", "format": "qcow2", "virtual_size": DISK_GIB}))
    (work / "Vagrantfile").write_text('Vagrant.configure("2") do |config|\nend\n')
    tmp = out["box"].with_suffix(".tmp")
    with tarfile.open(tmp, "w") as tar:
        for name in ("metadata.json", "Vagrantfile", "box.img"):
            tar.add(work / name, arcname=name)
    tmp.rename(out["box"])
    for p in out.values():
        os.chmod(p, 0o644)
    subprocess.run(["rm", "-rf", str(work)], check=False)
    return out


if __name__ == "__main__":
    print(ensure_box())
