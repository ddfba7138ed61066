"""Bundles: a directory of evidence files, or the same pieces as sections of one probe stream.

A live probe and a bundle directory are the same thing (see ../shared/design/bundle-format.md):
the probe prints sections named after the bundle's files, `collect` writes them as files and
`diagnose-bundle` reads them back. Everything here is pure I/O on text, no host access.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

# The files a bundle may hold, in the order the probe prints them (bundle-format.md), plus the
# probe's own additions (marked *): facts that only a live probe can know.
SECTIONS: tuple[str, ...] = (
    "probe-meta.txt",  # * tools and files present/absent, uid, container, systemd
    "os-release.txt",
    "proc-version.txt",
    "lspci.txt",
    "pci-devices.txt",
    "lsmod.txt",  # * /proc/modules lines for nvidia*, amdgpu, nouveau
    "nvidia-smi.txt",
    "nvidia-smi-query.csv",
    "nvidia-smi-apps.csv",
    "proc-driver-nvidia-version.txt",
    "nvcc-version.txt",
    "cuda-toolkits.txt",
    "packages.txt",  # * installed GPU-related packages (dpkg/rpm/pacman): NAME VERSION
    "rocminfo.txt",
    "rocm-smi.txt",
    "rocm-version.txt",
    "kfd-topology.txt",
    "vulkaninfo.txt",
    "mokutil.txt",
    "groups.txt",
    "dev-nodes.txt",
    "ldconfig.txt",
    "nv-tegra-release.txt",
    "ollama-version.txt",
    "ollama-libs.txt",
    "systemctl-cat.txt",
    "systemctl-show.txt",
    "ollama-process.txt",  # * the running server: pid, user, parent, GPU-relevant environment
    "shell-env.txt",  # * GPU variables set in shell profiles (which no service reads)
    "ollama-ps.txt",
    "api-ps.json",
    "ollama-serve.log",
    "journalctl.txt",
    "dmesg.txt",
    "docker-run.txt",
)

# Files read as free-form log evidence besides the named log sections.
LOG_SECTIONS: tuple[str, ...] = ("ollama-serve.log", "journalctl.txt")

# A log is read from its end: the last boot's discovery lines are what matter, and a 200 MB
# log must not be read whole. Other files are small by nature; cap them too.
LOG_TAIL_BYTES = 4 * 1024 * 1024
FILE_MAX_BYTES = 1024 * 1024

STREAM_HEADER = re.compile(r"^ogf-probe v(?P<version>\d+) nonce=(?P<nonce>[A-Za-z0-9]+)$")


class BundleError(Exception):
    """The bundle directory cannot be read at all (not a directory, no permission)."""


def _read_bounded(path: Path, limit: int) -> str:
    size = path.stat().st_size
    with path.open("rb") as fh:
        if size > limit:
            fh.seek(size - limit)
            data = fh.read(limit)
            # drop the partial first line so parsers never see half a record
            cut = data.find(b"\n")
            data = data[cut + 1 :] if cut >= 0 else data
        else:
            data = fh.read(limit)
    return decode(data)


def decode(data: bytes) -> str:
    """UTF-8 with replacement, NULs removed and CRLF folded: garbage in must not raise."""
    text = data.decode("utf-8", errors="replace").replace("\x00", "")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def is_evidence_file(name: str) -> bool:
    return name in SECTIONS or name.endswith((".txt", ".log", ".csv", ".json"))


def read_bundle(directory: str | os.PathLike[str]) -> dict[str, str]:
    """Read every evidence file of a bundle directory into {file name: text}.

    Unknown `*.txt`/`*.log` files are kept: they are searched as free-form log evidence.
    Unreadable single files are skipped (they are "not known"); an unreadable directory raises.
    """
    root = Path(directory)
    if not root.is_dir():
        raise BundleError(f"{root}: not a directory")
    try:
        entries = sorted(root.iterdir())
    except OSError as exc:
        raise BundleError(f"{root}: cannot list directory: {exc.strerror or exc}") from exc
    sections: dict[str, str] = {}
    for entry in entries:
        name = entry.name
        if name == "expected.json" or not is_evidence_file(name):
            continue
        try:
            if not entry.is_file():
                continue
            known = name in SECTIONS and name not in LOG_SECTIONS
            limit = FILE_MAX_BYTES if known else LOG_TAIL_BYTES
            sections[name] = _read_bounded(entry, limit)
        except OSError:
            continue
    return sections


def write_bundle(directory: str | os.PathLike[str], sections: Mapping[str, str]) -> list[Path]:
    """Write sections as files (what `collect` does); returns the paths written."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in sections.items():
        if "/" in name or name.startswith("."):
            continue
        path = root / name
        path.write_text(text if text.endswith("\n") or not text else text + "\n", encoding="utf-8")
        written.append(path)
    return written


def split_stream(lines: Iterable[str]) -> dict[str, str]:
    """Split the probe's output into sections.

    The stream starts with `ogf-probe v1 nonce=N`; each section starts with a line
    `--ogf-N-- NAME`. The nonce is random per run so no captured output can forge a header.
    Output without a header yields no sections (a garbage stream is "nothing known").
    """
    sections: dict[str, list[str]] = {}
    marker: str | None = None
    current: list[str] | None = None
    for raw in lines:
        line = raw.rstrip("\n")
        if marker is None:
            match = STREAM_HEADER.match(line.strip())
            if match:
                marker = f"--ogf-{match['nonce']}-- "
            continue
        if line.startswith(marker):
            name = line[len(marker) :].strip()
            current = sections.setdefault(name, []) if name in SECTIONS else None
            continue
        if current is not None:
            current.append(line)
    return {name: "\n".join(body) + ("\n" if body else "") for name, body in sections.items()}
