"""Fixed names and paths of the lab, in one place so teardown finds exactly what boot made."""

from __future__ import annotations

from pathlib import Path

LAB_DIR = Path(__file__).resolve().parent
REPO_ROOT = LAB_DIR.parents[1]
CACHE_DIR = LAB_DIR / ".cache"
RUN_DIR = LAB_DIR / ".run"
STATE_FILE = RUN_DIR / "state.json"
PROFILES_DIR = LAB_DIR / "profiles"
SHIMS_DIR = LAB_DIR / "shims"
CAPTURES_DIR = LAB_DIR / "captures"
HOSTFILES_DIR = LAB_DIR / "hostfiles"
INVENTORY_PATH = REPO_ROOT / "inventories" / "lab.py"

# Everything the lab creates on the controller carries this prefix (netns, links, machines).
PREFIX = "ogf"
BRIDGE = f"{PREFIX}-br0"
# Private addresses used ONLY inside the bridge and namespaces the lab creates.
SUBNET_PREFIX = "10.213.0"
BRIDGE_ADDR = f"{SUBNET_PREFIX}.1"
NETMASK_BITS = 24
REPO_PORT = 8089
FIRST_HOST_OCTET = 10

DEBIAN_SUITE = "bookworm"
BASE_PACKAGES = [
    "systemd", "systemd-sysv", "dbus", "udev", "openssh-server", "python3", "iproute2",
    "procps", "curl", "kmod", "pciutils", "pci.ids",
]
BASE_TARBALL = CACHE_DIR / "debian12-base.tar"


def repo_url(name: str) -> str:
    """Base URL of one of the lab's apt repositories, as a host sees it."""
    return f"http://{BRIDGE_ADDR}:{REPO_PORT}/{name}"
