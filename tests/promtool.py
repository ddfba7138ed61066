"""Prometheus' promtool for the tests: on the PATH, or unpacked from Debian's prometheus
package into tests/.cache (never installed: the package would start a server)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CACHE = Path(__file__).resolve().parent / ".cache" / "promtool"


def promtool() -> tuple[str | None, str]:
    """(path, "") or (None, why not)."""
    found = shutil.which("promtool")
    if found:
        return found, ""
    tool = CACHE / "usr/bin/promtool"
    if tool.exists():
        return str(tool), ""
    CACHE.mkdir(parents=True, exist_ok=True)
    try:
        got = subprocess.run(["apt-get", "download", "prometheus"], cwd=CACHE,
                             capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"apt-get download prometheus: {exc}"
    debs = sorted(CACHE.glob("prometheus_*.deb"))
    if got.returncode != 0 or not debs:
        return None, f"apt-get download prometheus: {got.stderr.strip()[-300:]}"
    unpack = subprocess.run(f"dpkg-deb --fsys-tarfile '{debs[0]}' | tar -x -C '{CACHE}' "
                            "./usr/bin/promtool", shell=True, capture_output=True, text=True)
    for deb in debs:
        deb.unlink()
    if unpack.returncode != 0 or not tool.exists():
        return None, f"unpacking promtool: {unpack.stderr.strip()[-300:]}"
    return str(tool), ""
