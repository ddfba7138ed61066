"""proc-version.txt, lsmod.txt, dmesg.txt, plus the text helpers every section parser shares.

WSL is told apart by the kernel release alone (as Ollama's install.sh does): WSL 2 kernels
say `microsoft-standard` (and usually `WSL2`), WSL 1 reports `...-Microsoft` with a capital M.
The helpers strip journald/syslog/dmesg prefixes so a pasted log line parses like the bare
output, while the untouched line is what gets kept as evidence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

from ollama_gpu_fix.knowledge.collection import DMESG_WORDS
from ollama_gpu_fix.parsers.log_lines import MAX_LINE
from ollama_gpu_fix.snapshot import KernelModule, KernelVersion, Line

# ---- shared text helpers (used by the other parsers of this package) -------------------------

_SYSLOG_PREFIX = re.compile(
    r"^(?:"
    r"\S{3,5}\.?\s+\d{1,2}\.?\s+\d{1,2}:\d{2}:\d{2}"  # Apr 19 16:54:17 (any locale's month)
    r"|\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"  # short-iso
    r")\s+\S+\s+[\w.@/:-]+?(?:\[\d+\])?:\s?"  # host tag[pid]:
    r"|[\w.@/-]{1,64}\[\d+\]:\s?"  # tag[pid]: alone (a paste without date and host)
)
_DMESG_PREFIX = re.compile(
    r"^(?:<\d+>)?\[\s*(?:\d+\.\d+|\w{3} \w{3}\s+\d+ \d{2}:\d{2}:\d{2} \d{4})\]\s?"
)


def strip_prefix(text: str) -> str:
    """The line without a journald/syslog prefix or a dmesg timestamp; never raises."""
    out = _SYSLOG_PREFIX.sub("", text, count=1)
    return _DMESG_PREFIX.sub("", out, count=1)


def section_lines(sections: Mapping[str, str], name: str) -> list[tuple[Line, str]]:
    """(evidence line, cleaned text) for every line of one bundle file; [] when absent.

    Lines are cut at MAX_LINE: no tool writes longer ones, and every parser stays cheap."""
    text = sections.get(name)
    if not isinstance(text, str):
        return []
    out = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        raw = raw[:MAX_LINE].rstrip()
        if raw:
            out.append((Line(name, raw), strip_prefix(raw).strip()))
    return out


def first_int(text: str | None) -> int | None:
    """The first (possibly negative) integer in text, else None."""
    if not text:
        return None
    match = re.search(r"-?\d+", text)
    if not match:
        return None
    try:
        return int(match.group())
    except ValueError:
        return None


# ---- /proc/version ----------------------------------------------------------------------------

_RELEASE = re.compile(r"\bLinux version (\S+)")
_UNAME = re.compile(r"^Linux \S+ (\d\S*)")


def wsl_flavour(text: str) -> Literal["wsl1", "wsl2"] | None:
    """wsl1/wsl2 from a kernel release or /proc/version line, else None."""
    if re.search(r"microsoft-standard|WSL2", text, re.IGNORECASE):
        return "wsl2"
    if re.search(r"-Microsoft\b|\(Microsoft@Microsoft\.com\)", text):
        return "wsl1"
    return None


def parse_proc_version(sections: Mapping[str, str]) -> KernelVersion | None:
    """/proc/version (or `uname -a`): the kernel release and whether it is WSL 1 or 2."""
    if "proc-version.txt" not in sections:
        return None
    result = KernelVersion()
    for line, text in section_lines(sections, "proc-version.txt"):
        match = _RELEASE.search(text) or _UNAME.search(text)
        if not match:
            continue
        result.raw.append(line)
        if result.release is None:
            result.release = match.group(1)
            result.wsl = wsl_flavour(result.release) or wsl_flavour(text)
    return result


# ---- lsmod / /proc/modules --------------------------------------------------------------------

_MODULE = re.compile(r"^([A-Za-z0-9_-]+)\s+(\d+)\s+(-?\d+)\b")


def parse_modules(sections: Mapping[str, str]) -> list[KernelModule] | None:
    """/proc/modules lines (the probe) or `lsmod` output (pasted): name, size, use count."""
    if "lsmod.txt" not in sections:
        return None
    modules = []
    for line, text in section_lines(sections, "lsmod.txt"):
        match = _MODULE.match(text)
        if match:
            modules.append(
                KernelModule(
                    name=match.group(1),
                    size=int(match.group(2)),
                    refcount=int(match.group(3)),
                    raw=line,
                )
            )
    return modules


# ---- dmesg ------------------------------------------------------------------------------------

_GPU_WORDS = re.compile("|".join(map(re.escape, DMESG_WORDS)), re.I)


def parse_dmesg(sections: Mapping[str, str]) -> list[Line] | None:
    """dmesg lines about the GPU drivers (the probe filters already; a paste may not)."""
    if "dmesg.txt" not in sections:
        return None
    return [line for line, text in section_lines(sections, "dmesg.txt") if _GPU_WORDS.search(text)]
