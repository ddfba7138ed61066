"""Build (once) and cache the Debian 12 root filesystem every lab host overlays.

debootstrap from Debian's archive is the only source reachable from this machine; a cold build
takes about a minute, so the result is cached under tests/lab/.cache/ and reused by later runs.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.lab import config

FALLBACK_MIRROR = "http://deb.debian.org/debian"


def debian_mirror() -> str:
    """The Debian mirror this machine's own apt uses (the archive reachable from here)."""
    sources = sorted(Path("/etc/apt").glob("sources.list.d/*.sources"))
    for path in [Path("/etc/apt/sources.list"), *sources]:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        for match in re.finditer(r"(?m)^(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+)", text):
            url = match.group(1)
            if "debian" in url and "security" not in url:
                return url.rstrip("/")
    return FALLBACK_MIRROR


def base_key() -> str:
    """Cache key: the suite and package list decide what the base contains."""
    text = config.DEBIAN_SUITE + ":" + ",".join(sorted(config.BASE_PACKAGES))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def base_dir() -> Path:
    return config.CACHE_DIR / f"rootfs-{base_key()}"


def ensure_base(log=print) -> Path:
    """Return the cached base rootfs, building it with debootstrap when missing."""
    target = base_dir()
    if (target / ".ogf-complete").is_file():
        return target
    config.CACHE_DIR.mkdir(parents=True, exist_ok=True)
    build = config.CACHE_DIR / f"build-{base_key()}"
    if build.exists():
        shutil.rmtree(build)
    mirror = debian_mirror()
    log(f"lab: debootstrap {config.DEBIAN_SUITE} from {mirror} (cold cache, about a minute)")
    cmd = [
        "debootstrap", "--variant=minbase", "--include=" + ",".join(config.BASE_PACKAGES),
        config.DEBIAN_SUITE, str(build), mirror,
    ]
    with open(config.CACHE_DIR / "debootstrap.log", "w") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        sys.exit(f"lab: debootstrap failed, see {config.CACHE_DIR / 'debootstrap.log'}")
    subprocess.run(["chroot", str(build), "apt-get", "clean"], check=False)
    # Persistent journal, so the controller can read each host's sshd log from its overlay.
    (build / "var/log/journal").mkdir(parents=True, exist_ok=True)
    (build / ".ogf-complete").write_text(mirror + "\n")
    if target.exists():
        shutil.rmtree(target)
    build.rename(target)
    return target
