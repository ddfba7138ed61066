"""Bundles: a directory of evidence files, or the same pieces as sections of one probe stream.

A live probe and a bundle directory are the same thing (see ../shared/design/bundle-format.md):
the probe prints sections named after the bundle's files, `collect` writes them as files and
`diagnose-bundle` reads them back. Everything here is pure I/O on text, no host access.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from ollama_gpu_fix.records import field, record
from ollama_gpu_fix.redact import redact_sections
from ollama_gpu_fix.sections import LOG_SECTIONS, SECTIONS

__all__ = ["LOG_SECTIONS", "SECTIONS", "Bundle", "BundleError", "read_bundle", "write_bundle"]

# A log is read from its end: the last boot's discovery lines are what matter, and a 200 MB
# log must not be read whole. Other files are small by nature; cap them too, and the whole
# bundle: a directory of hard links to one big file must not multiply the read.
LOG_TAIL_BYTES = 4 * 1024 * 1024
FILE_MAX_BYTES = 1024 * 1024
BUNDLE_MAX_BYTES = 32 * 1024 * 1024
BUNDLE_MAX_FILES = 200
# Directory entries looked at before giving up on the rest (a bundle is tens of files).
BUNDLE_MAX_ENTRIES = 5000

STREAM_HEADER = re.compile(r"^ogf-probe v(?P<version>\d+) nonce=(?P<nonce>[A-Za-z0-9]+)$")


class BundleError(Exception):
    """The bundle directory cannot be read or written (not a directory, no permission, ...)."""


@record
class Bundle:
    """What was read from a bundle directory, and what was not (with the reason)."""

    sections: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def decode(data: bytes) -> str:
    """UTF-8 with replacement, NULs removed and CRLF folded: garbage in must not raise."""
    text = data.decode("utf-8", errors="replace").replace("\x00", "")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def is_evidence_file(name: str) -> bool:
    return name in SECTIONS or name.endswith((".txt", ".log", ".csv", ".json"))


def _read_fd(fd: int, size: int, limit: int, tail: bool) -> bytes:
    if size > limit and tail:
        os.lseek(fd, size - limit, os.SEEK_SET)
    chunks, left = [], limit
    while left > 0:
        chunk = os.read(fd, min(left, 1024 * 1024))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    data = b"".join(chunks)
    if size > limit and tail:
        cut = data.find(b"\n")  # drop the partial first line: no parser sees half a record
        data = data[cut + 1 :] if cut >= 0 else data
    return data


def _candidates(root: Path, problems: list[str]) -> list[str]:
    names: list[str] = []
    seen = 0
    try:
        with os.scandir(root) as entries:
            for entry in entries:
                seen += 1
                if seen > BUNDLE_MAX_ENTRIES:
                    problems.append(
                        f"{root}: more than {BUNDLE_MAX_ENTRIES} entries; the rest were not read"
                    )
                    break
                if entry.name != "expected.json" and is_evidence_file(entry.name):
                    names.append(entry.name)
    except OSError as exc:
        raise BundleError(f"{root}: cannot list directory: {exc.strerror or exc}") from exc
    # the named sections first (in probe order), then free-form files: the budget goes to
    # the evidence that matters most
    known = [n for n in SECTIONS if n in names]
    return known + sorted(n for n in names if n not in SECTIONS)


def read_bundle(directory: str | os.PathLike[str]) -> Bundle:
    """Read the evidence files of a bundle directory into {file name: text}, redacted.

    Unknown `*.txt`/`*.log` files are kept: they are searched as free-form log evidence. Only
    regular files are read, never through a symbolic link, each once (hard links to one file
    count once), within a budget per file and for the whole bundle; whatever is skipped is
    named in `problems`. An unreadable directory raises BundleError.
    """
    root = Path(directory)
    if not root.is_dir():
        raise BundleError(f"{root}: not a directory")
    bundle = Bundle()
    names = _candidates(root, bundle.problems)
    try:
        dfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise BundleError(f"{root}: cannot open directory: {exc.strerror or exc}") from exc
    budget = BUNDLE_MAX_BYTES
    seen: dict[tuple[int, int], str] = {}
    try:
        for index, name in enumerate(names):
            if index >= BUNDLE_MAX_FILES:
                bundle.problems.append(
                    f"{len(names) - index} more files not read (at most {BUNDLE_MAX_FILES})"
                )
                break
            text = _read_one(dfd, name, budget, seen, bundle.problems)
            if text is not None:
                bundle.sections[name] = text
                budget -= len(text)
    finally:
        os.close(dfd)
    bundle.sections = redact_sections(bundle.sections)
    return bundle


def _read_one(
    dfd: int, name: str, budget: int, seen: dict[tuple[int, int], str], problems: list[str]
) -> str | None:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
    try:
        fd = os.open(name, flags, dir_fd=dfd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            problems.append(f"{name}: a symbolic link, not followed")
        elif exc.errno not in (errno.EISDIR,):
            problems.append(f"{name}: cannot be read: {exc.strerror or exc}")
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            problems.append(f"{name}: not a regular file, not read")
            return None
        key = (info.st_dev, info.st_ino)
        if key in seen:
            problems.append(f"{name}: the same file as {seen[key]}, read once")
            return None
        seen[key] = name
        known = name in SECTIONS and name not in LOG_SECTIONS
        limit = min(FILE_MAX_BYTES if known else LOG_TAIL_BYTES, budget)
        if limit <= 0:
            spent = BUNDLE_MAX_BYTES >> 20
            problems.append(f"{name}: not read, the bundle's {spent} MiB are spent")
            return None
        if info.st_size > limit:
            where = "start" if known else "end"
            problems.append(
                f"{name}: {info.st_size} bytes, only the {where} ({limit >> 10} KiB) was read"
            )
        return decode(_read_fd(fd, info.st_size, limit, tail=not known))
    except OSError as exc:
        problems.append(f"{name}: cannot be read: {exc.strerror or exc}")
        return None
    finally:
        os.close(fd)


def _check_parent(parent: Path) -> None:
    """Refuse a parent directory another user could swap the bundle out of."""
    try:
        info = os.stat(parent)
    except OSError as exc:
        raise BundleError(f"{parent}: {exc.strerror or exc}") from exc
    if info.st_uid not in (0, os.geteuid()):
        raise BundleError(f"{parent} belongs to another user (uid {info.st_uid})")
    if info.st_mode & (stat.S_IWOTH | stat.S_IWGRP) and not info.st_mode & stat.S_ISVTX:
        raise BundleError(f"{parent} is writable by other users")


def write_bundle(directory: str | os.PathLike[str], sections: Mapping[str, str]) -> list[Path]:
    """Write sections as files of a new bundle directory (what `collect` does).

    The directory is created 0700 (or must be an empty directory of ours, not a link) and
    every file is created 0600 with O_EXCL|O_NOFOLLOW inside it, so nothing another user
    planted is followed or kept: a bundle never mixes two runs. Raises BundleError."""
    root = Path(directory)
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BundleError(f"{root.parent}: {exc.strerror or exc}") from exc
    _check_parent(root.parent)
    try:
        os.mkdir(root, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise BundleError(f"{root}: {exc.strerror or exc}") from exc
    try:
        dfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BundleError(f"{root} is a symbolic link") from exc
        raise BundleError(f"{root}: {exc.strerror or exc}") from exc
    written: list[Path] = []
    try:
        info = os.fstat(dfd)
        if info.st_uid != os.geteuid():
            raise BundleError(f"{root} belongs to another user (uid {info.st_uid})")
        if os.listdir(dfd):
            raise BundleError(f"{root} is not empty: a bundle never mixes two runs")
        os.fchmod(dfd, 0o700)
        for name, text in sections.items():
            if name not in SECTIONS:
                continue
            body = text if text.endswith("\n") or not text else text + "\n"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            fd = os.open(name, flags, 0o600, dir_fd=dfd)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(body)
            written.append(root / name)
    except OSError as exc:
        raise BundleError(f"{root}: {exc.strerror or exc}") from exc
    finally:
        os.close(dfd)
    return written


def split_sections(
    lines: Iterable[str], header: re.Pattern[str], allowed: Iterable[str]
) -> dict[str, str]:
    """Split a nonce-marked stream (probe.sh, verify.sh) into its named sections.

    The stream starts with a HEADER line carrying a random nonce; each section starts with
    `--ogf-N-- NAME`. The nonce is random per run so no captured output can forge a header.
    Output without a header yields no sections (a garbage stream is "nothing known")."""
    names = set(allowed)
    sections: dict[str, list[str]] = {}
    marker: str | None = None
    current: list[str] | None = None
    for raw in lines:
        line = raw.rstrip("\n")
        if marker is None:
            match = header.match(line.strip())
            if match:
                marker = f"--ogf-{match['nonce']}-- "
            continue
        if line.startswith(marker):
            name = line[len(marker) :].strip()
            current = sections.setdefault(name, []) if name in names else None
            continue
        if current is not None:
            current.append(line)
    return {name: "\n".join(body) + ("\n" if body else "") for name, body in sections.items()}


def split_stream(lines: Iterable[str]) -> dict[str, str]:
    """The probe's output as bundle sections, redacted (ollama_gpu_fix.redact)."""
    return redact_sections(split_sections(lines, STREAM_HEADER, SECTIONS))
