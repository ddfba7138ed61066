"""Load the lab's host profiles (tests/lab/profiles/*.toml): the machine each host plays."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from tests.lab import config
from tests.lab.gpus import CHIPSET, GPUS

OSES = ("debian12", "ubuntu2404")
INITS = ("systemd", "wsl")
FAULTS = ("apt-lock", "ssh-stop", "interrupt-after-write")
EXPECTED_FIX = ("verified", "refused", "reboot required", "applied", "rolled back", "failed", "lost",
                "bad host data")


@dataclass
class Profile:
    name: str
    expected_primary: str
    proc_version: str
    gpus: list[dict] = field(default_factory=list)
    pci: list[dict] = field(default_factory=list)
    repos: list[str] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    ollama_version: str = ""
    ollama_manual_install: bool = False
    dropins: dict[str, str] = field(default_factory=dict)
    files: dict[str, dict] = field(default_factory=dict)
    secure_boot: str = "disabled"
    wsl2: bool = False
    # what deploys/fix_gpu.py must end with: verified, refused, reboot required, rolled back,
    # failed (verification failed for a stated reason), lost (the host vanished mid-run), bad
    # host data; and a phrase of its one-line reason
    expected_fix: str = "verified"
    expected_reason: str = ""
    host_data: dict = field(default_factory=dict)  # this host's data in the lab inventory
    faults: list[str] = field(default_factory=list)  # apt-lock, ssh-stop, interrupt-after-write
    # what the owner (or an attacker) did after Ollama was installed: shell lines run as root
    # over SSH (set -e) before the first diagnosis; {nvidia} {debian} {rocm} {amdgpu}
    # {repo_base} stand for the lab's repository URLs
    post_install: list[str] = field(default_factory=list)
    os: str = "debian12"  # what the host says it is: debian12 or ubuntu2404
    init: str = "systemd"  # PID 1: systemd (booted), or wsl (WSL's /init, no systemd)
    protect: list[str] = field(default_factory=list)  # paths no fix run may change
    after_checks: list[str] = field(default_factory=list)  # shell lines that must exit 0 after
    allow_failed: list[str] = field(default_factory=list)  # units an attacker may leave failed
    extra: dict = field(default_factory=dict)

    def hardware(self) -> dict:
        """What the host's hwboot, shims and Ollama double read as the machine's hardware."""
        hw = {
            "name": self.name,
            "proc_version": self.proc_version,
            "pci": self.pci,
            "gpus": self.gpus,
            "secure_boot": self.secure_boot,
            "wsl2": self.wsl2,
        }
        hw.update(self.extra)
        return hw


def load(path: Path) -> Profile:
    data = tomllib.loads(path.read_text())
    gpus, pci = [], []
    wsl2 = bool(data.get("wsl2", False))
    if not wsl2:
        for addr, ven, dev, cls, drv in CHIPSET:
            pci.append({"address": addr, "vendor": ven, "device": dev, "class": cls, "driver": drv})
    pci += data.get("extra_pci", [])
    for i, key in enumerate(data.get("gpus", [])):
        g = dict(GPUS[key], key=key)
        g["address"] = f"0000:{i + 1:02x}:00.0" if not wsl2 else f"5582:{i:02x}:00.0"
        gpus.append(g)
        if wsl2:  # the guest sees Microsoft's virtual render device, never the GPU itself
            pci.append(
                {
                    "address": g["address"],
                    "vendor": "0x1414",
                    "device": "0x008e",
                    "class": "0x030200",
                    "driver": "-",
                }
            )
            continue
        driver = {"amd": "amdgpu"}.get(g["vendor"], "-")
        pci.append(
            {
                "address": g["address"],
                "vendor": g["pci_vendor"],
                "device": g["pci_device"],
                "class": g["class"],
                "subsystem_vendor": g["subsystem_vendor"],
                "subsystem_device": g["subsystem_device"],
                "revision": g["revision"],
                "driver": driver,
                "name": g["name"],
                "uuid": g.get("uuid", ""),
            }
        )
    known = {
        "expected_primary",
        "proc_version",
        "gpus",
        "extra_pci",
        "repos",
        "packages",
        "ollama_version",
        "ollama_manual_install",
        "dropins",
        "files",
        "secure_boot",
        "wsl2",
        "expected_fix",
        "expected_reason",
        "host_data",
        "faults",
        "post_install",
        "os",
        "init",
        "protect",
        "after_checks",
        "allow_failed",
    }
    for key, allowed in (("os", OSES), ("init", INITS), ("expected_fix", EXPECTED_FIX)):
        if key in data and data[key] not in allowed:
            raise ValueError(f"{path.name}: {key} = {data[key]!r}, expected one of {allowed}")
    unknown = set(data.get("faults", [])) - set(FAULTS)
    if unknown:
        raise ValueError(f"{path.name}: unknown faults {sorted(unknown)}, known: {FAULTS}")
    return Profile(
        name=path.stem,
        expected_primary=data["expected_primary"],
        proc_version=data["proc_version"],
        gpus=gpus,
        pci=pci,
        repos=data.get("repos", []),
        packages=data.get("packages", []),
        ollama_version=data.get("ollama_version", ""),
        ollama_manual_install=bool(data.get("ollama_manual_install", False)),
        dropins=data.get("dropins", {}),
        files=data.get("files", {}),
        secure_boot=data.get("secure_boot", "disabled"),
        wsl2=wsl2,
        expected_fix=data.get("expected_fix", "verified"),
        expected_reason=data.get("expected_reason", ""),
        host_data=data.get("host_data", {}),
        faults=data.get("faults", []),
        post_install=data.get("post_install", []),
        os=data.get("os", "debian12"),
        init=data.get("init", "systemd"),
        protect=data.get("protect", []),
        after_checks=data.get("after_checks", []),
        allow_failed=data.get("allow_failed", []),
        extra={k: v for k, v in data.items() if k not in known},
    )


def load_all(names: list[str] | None = None) -> list[Profile]:
    paths = sorted(config.PROFILES_DIR.glob("*.toml"))
    profiles = [load(p) for p in paths]
    if names:
        profiles = [p for p in profiles if p.name in names]
    return profiles
