"""Write one host's machine into its overlay before it boots.

Identity (hostname, machine-id, SSH host key, root's authorized key), apt pointed at the lab's
mirror with a signed-by keyring, the hardware description and the boot unit that realises it,
the KFD topology tree nspawn binds over /sys/class/kfd, WSL2's passthrough files, and the
profile's own files (shell profiles that export variables, ...).
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from pathlib import Path

from tests.lab import config
from tests.lab.elfstub import elf_shared_object
from tests.lab.profiles import Profile

MASKED_UNITS = ["apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer",
                "e2scrub_all.timer", "e2scrub_reap.service", "fstrim.timer",
                "systemd-networkd-wait-online.service"]
SSHD_CONF = """# lab: DEBUG1 so bench/lab_diagnose.py can count exec requests from sshd's own log
LogLevel DEBUG1
UseDNS no
PermitRootLogin prohibit-password
PasswordAuthentication no
HostKey /etc/ssh/ssh_host_ed25519_key
MaxSessions 64
MaxStartups 64:30:128
"""


def write(root: Path, path: str, data: str | bytes, mode: int = 0o644) -> Path:
    dest = root / path.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_symlink():
        dest.unlink()
    if isinstance(data, str):
        dest.write_text(data)
    else:
        dest.write_bytes(data)
    dest.chmod(mode)
    return dest


def host_key(root: Path, name: str) -> str:
    """Fresh ed25519 host key for this run; returns the public key line."""
    for old in (root / "etc/ssh").glob("ssh_host_*"):
        old.unlink()
    key = root / "etc/ssh/ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{name}",
                    "-f", str(key)], check=True)
    return key.with_suffix(".pub").read_text().split(" ")[0:2]


def kfd_tree(profile: Profile, root: Path) -> Path | None:
    """sysfs-like /sys/class/kfd for AMD hosts (node 0 the CPU, then one node per GPU).

    nspawn cannot bind onto /sys/class/kfd (sysfs has no such mount point), so the tree lives
    in the rootfs and hwboot lays it over /sys/class with a read-only overlay."""
    dest = root / "usr/lib/ogf-lab/sysclass"
    amd = [g for g in profile.gpus if g["vendor"] == "amd"]
    if not amd or profile.wsl2:
        return None
    nodes = dest / "kfd/topology/nodes"
    cpu = {"cpu_cores_count": 16, "simd_count": 0, "mem_banks_count": 1, "caches_count": 0,
           "io_links_count": 1, "gfx_target_version": 0, "vendor_id": 0, "device_id": 0,
           "location_id": 0, "drm_render_minor": 0, "max_engine_clk_ccompute": 3800}
    (nodes / "0").mkdir(parents=True)
    (nodes / "0/properties").write_text("".join(f"{k} {v}\n" for k, v in cpu.items()))
    for i, g in enumerate(amd, start=1):
        bus = int(g["address"].split(":")[1], 16)
        props = {"cpu_cores_count": 0, "simd_count": g["simd_count"], "mem_banks_count": 1,
                 "caches_count": 118, "io_links_count": 1, "p2p_links_count": 0,
                 "cpu_core_id_base": 0, "simd_id_base": 2147487744, "max_waves_per_simd": 16,
                 "lds_size_in_kb": 64, "gds_size_in_kb": 0, "num_gws": 64,
                 "wave_front_size": 32, "array_count": 2, "simd_arrays_per_engine": 2,
                 "cu_per_simd_array": g["cu_count"] // 4, "simd_per_cu": 2,
                 "max_slots_scratch_cu": 32, "gfx_target_version": g["gfx_target_version"],
                 "vendor_id": int(g["pci_vendor"], 16), "device_id": int(g["pci_device"], 16),
                 "location_id": bus << 8, "domain": 0,
                 "drm_render_minor": g["drm_render_minor"] + i - 1, "hive_id": 0,
                 "num_sdma_engines": 2, "num_sdma_xgmi_engines": 0,
                 "num_sdma_queues_per_engine": 6, "num_cp_queues": 8,
                 "max_engine_clk_fcompute": 2855, "local_mem_size": 0, "fw_version": 118,
                 "capability": 671588992, "debug_prop": 1495, "sdma_fw_version": 80,
                 "unique_id": 10458913289213410497 + i, "num_xcc": 1,
                 "max_engine_clk_ccompute": 3800}
        (nodes / str(i)).mkdir()
        (nodes / str(i) / "properties").write_text("".join(f"{k} {v}\n" for k, v in props.items()))
        (nodes / str(i) / "gpu_id").write_text(f"{4000 + i * 1111}\n")
        (nodes / str(i) / "name").write_text(g["gfx"] + "\n")
    (dest / "kfd/topology/generation_id").write_text("1\n")
    (dest / "kfd/topology/system_properties").write_text("platform_oem 0\nplatform_id 0\n"
                                                          "platform_rev 0\n")
    return dest


def prepare(root: Path, profile: Profile, pubkey: str, mirror_keyring: bytes,
            mirror_url: str) -> tuple[str, str]:
    """Fill the overlay; returns this host's (key type, public host key)."""
    name = profile.name
    write(root, "/etc/hostname", name + "\n")
    write(root, "/etc/hosts", f"127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n"
                              "::1\t\tlocalhost ip6-localhost ip6-loopback\n")
    write(root, "/etc/machine-id", secrets.token_hex(16) + "\n", 0o444)
    write(root, "/etc/resolv.conf", "# lab host: no DNS, the lab has no route out\n")
    kt, key = host_key(root, name)
    write(root, "/etc/ssh/sshd_config.d/ogf-lab.conf", SSHD_CONF)
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    write(root, "/root/.ssh/authorized_keys", pubkey, 0o600)
    for unit in MASKED_UNITS:
        link = root / "etc/systemd/system" / unit
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to("/dev/null")
    # apt: the lab mirror stands in for the distribution's archive, as an internal mirror would.
    write(root, "/usr/share/keyrings/ogf-lab-mirror.gpg", mirror_keyring)
    os_identity(root, profile, mirror_url)
    write(root, "/etc/apt/apt.conf.d/80ogf-lab", 'Acquire::Retries "2";\n'
                                                   'Acquire::http::Timeout "10";\n')
    # The machine: hardware description, boot unit, shims' captured outputs.
    write(root, "/usr/lib/ogf-lab/hardware.json", json.dumps(profile.hardware(), indent=1))
    write(root, "/usr/lib/ogf-lab/hwboot", (config.HOSTFILES_DIR / "hwboot").read_text(), 0o755)
    write(root, "/usr/lib/ogf-lab/ollama-up", (config.HOSTFILES_DIR / "ollama-up").read_text(),
          0o755)
    write(root, "/etc/systemd/system/ogf-lab-hw.service",
          (config.HOSTFILES_DIR / "ogf-lab-hw.service").read_text())
    wants = root / "etc/systemd/system/sysinit.target.wants/ogf-lab-hw.service"
    wants.parent.mkdir(parents=True, exist_ok=True)
    if not wants.is_symlink():
        wants.symlink_to("/etc/systemd/system/ogf-lab-hw.service")
    for capture in config.CAPTURES_DIR.rglob("*"):
        if capture.is_file():
            rel = capture.relative_to(config.CAPTURES_DIR)
            write(root, f"/usr/lib/ogf-lab/captures/{rel}", capture.read_bytes())
    if profile.wsl2:
        wsl_files(root, systemd=profile.init == "systemd")
    if profile.init == "wsl":
        write(root, "/usr/lib/ogf-lab/wslinit", (config.HOSTFILES_DIR / "wslinit").read_text(),
              0o755)
    fault_units(root, profile)
    for path, spec in profile.files.items():
        dest = root / path.lstrip("/")
        if "append" in spec:
            old = dest.read_text() if dest.is_file() else ""
            write(root, path, old + spec["append"], int(spec.get("mode", "644"), 8))
        else:
            write(root, path, spec["content"], int(spec.get("mode", "644"), 8))
    return kt, key


FAULT_UNITS = {
    # unattended-upgrades holding dpkg's lock for the whole run (fcntl, as dpkg does)
    "apt-lock": ("ogf-lab-aptlock.service", "multi-user.target.wants", """[Unit]
Description=Lab fault: a process holding dpkg's lock (test fixture)
[Service]
ExecStart=/usr/bin/python3 -c 'import fcntl, time; f = open("/var/lib/dpkg/lock-frontend", "w"); fcntl.lockf(f, fcntl.LOCK_EX); time.sleep(10**7)'
"""),
}
def fault_units(root: Path, profile: Profile) -> None:
    for fault in profile.faults:
        if fault not in FAULT_UNITS:
            continue  # played from outside the host (tests/lab/lab.py Lab.cut_when_changed)
        name, wants, text = FAULT_UNITS[fault]
        write(root, f"/etc/systemd/system/{name}", text)
        link = root / "etc/systemd/system" / wants / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(f"/etc/systemd/system/{name}")


def wsl_files(root: Path, systemd: bool = True) -> None:
    """What WSL2 mounts into every distro: /usr/lib/wsl/lib and its ld.so.conf entry; with
    SYSTEMD, the /etc/wsl.conf that turns systemd on (without it the profile writes its own
    wsl.conf, or none: WSL's default is no systemd)."""
    lib = "/usr/lib/wsl/lib"
    for name, soname in (("libcuda.so", "libcuda.so.1"), ("libcuda.so.1", "libcuda.so.1"),
                         ("libcuda.so.1.1", "libcuda.so.1"),
                         ("libnvidia-ml.so.1", "libnvidia-ml.so.1"),
                         ("libdxcore.so", "libdxcore.so"), ("libd3d12.so", "libd3d12.so")):
        write(root, f"{lib}/{name}", elf_shared_object(soname), 0o555)
    write(root, f"{lib}/nvidia-smi", (config.SHIMS_DIR / "nvidia-smi").read_text(), 0o555)
    write(root, "/etc/ld.so.conf.d/ld.wsl.conf",
          "# This file was automatically generated by WSL. To stop automatic generation of "
          "this file, add the following entry to /etc/wsl.conf:\n# [automount]\n"
          "# ldconfig = false\n/usr/lib/wsl/lib\n")
    if systemd:
        write(root, "/etc/wsl.conf", "[boot]\nsystemd=true\n")
    # WSL puts /usr/lib/wsl/lib on every process's PATH; pam_env does that for SSH sessions.
    write(root, "/etc/environment", 'PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:'
                                    '/sbin:/bin:/usr/lib/wsl/lib"\n')


UBUNTU_2404_OS_RELEASE = """PRETTY_NAME="Ubuntu 24.04.1 LTS"
NAME="Ubuntu"
VERSION_ID="24.04"
VERSION="24.04.1 LTS (Noble Numbat)"
VERSION_CODENAME=noble
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
SUPPORT_URL="https://help.ubuntu.com/"
BUG_REPORT_URL="https://bugs.launchpad.net/ubuntu/"
PRIVACY_POLICY_URL="https://www.ubuntu.com/legal/terms-and-policies/privacy-policy"
UBUNTU_CODENAME=noble
LOGO=ubuntu-logo
"""
UBUNTU_2404_LSB = """DISTRIB_ID=Ubuntu
DISTRIB_RELEASE=24.04
DISTRIB_CODENAME=noble
DISTRIB_DESCRIPTION="Ubuntu 24.04.1 LTS"
"""


def os_identity(root: Path, profile: Profile, mirror_url: str) -> None:
    """What the host says it is, and its archive source in that distribution's own format.

    debian12 keeps the base's identity and gets debian.sources. ubuntu2404 presents itself as
    Ubuntu 24.04 (os-release, lsb-release, debian_version, issue) with its archive in deb822
    ubuntu.sources, as noble's installer writes it. The Ubuntu archive cannot be reached from
    the lab machine, so the userland stays Debian 12's and ubuntu.sources points at the lab
    mirror's bookworm suite: the host plays Ubuntu where a tool reads what the system says it
    is, not where it would run Ubuntu's own binaries."""
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    source = (f"URIs: {mirror_url}\nSuites: {config.DEBIAN_SUITE}\n"
              "Components: main contrib non-free non-free-firmware\n"
              "Signed-By: /usr/share/keyrings/ogf-lab-mirror.gpg\n")
    if profile.os == "debian12":
        write(root, "/etc/apt/sources.list.d/debian.sources", "Types: deb\n" + source)
        return
    assert profile.os == "ubuntu2404", profile.os
    write(root, "/usr/lib/os-release", UBUNTU_2404_OS_RELEASE)
    link = root / "etc/os-release"
    if link.exists() or link.is_symlink():
        link.unlink()
    link.symlink_to("../usr/lib/os-release")
    write(root, "/etc/lsb-release", UBUNTU_2404_LSB)
    write(root, "/etc/debian_version", "trixie/sid\n")
    write(root, "/etc/issue", "Ubuntu 24.04.1 LTS \\n \\l\n\n")
    write(root, "/etc/apt/sources.list",
          "# Ubuntu sources have moved to /etc/apt/sources.list.d/ubuntu.sources\n")
    write(root, "/etc/apt/sources.list.d/ubuntu.sources",
          "# lab: the Ubuntu archive is not reachable from this machine; this source is the lab\n"
          "# mirror's Debian 12 (bookworm) suite, and the userland is Debian 12's.\n"
          "Types: deb\n" + source)


def reset(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
