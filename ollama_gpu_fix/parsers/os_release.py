"""os-release.txt: /etc/os-release (shell-style KEY=value), or a pasted `lsb_release -a`.

The distribution decides which driver/ROCm repository a fix may use, so ID, ID_LIKE and
VERSION_ID are read as the spec (os-release(5)) says: optional quotes, backslash escapes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ollama_gpu_fix.parsers.kernel import section_lines
from ollama_gpu_fix.snapshot import OsRelease

_ASSIGN = re.compile(r"^(?:export\s+)?([A-Z][A-Z0-9_]*)=(.*)$")
_LSB = {
    "distributor id": "ID",
    "release": "VERSION_ID",
    "codename": "VERSION_CODENAME",
    "description": "PRETTY_NAME",
}


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        inner = value[1:-1]
        return re.sub(r"\\([\\$\"`])", r"\1", inner) if value[0] == '"' else inner
    return value.split(" #", 1)[0].strip()


def parse(sections: Mapping[str, str]) -> OsRelease | None:
    if "os-release.txt" not in sections:
        return None
    values: dict[str, str] = {}
    result = OsRelease()
    for line, text in section_lines(sections, "os-release.txt"):
        match = _ASSIGN.match(text)
        if match:
            values.setdefault(match.group(1), _unquote(match.group(2)))
            result.raw.append(line)
            continue
        key, sep, value = text.partition(":")
        lsb_key = _LSB.get(key.strip().lower())
        if sep and lsb_key and value.strip():
            values.setdefault(lsb_key, value.strip())
            result.raw.append(line)
    result.id = values.get("ID", "").lower() or None
    result.id_like = values.get("ID_LIKE", "").lower().split()
    result.version_id = values.get("VERSION_ID") or None
    result.version_codename = (
        values.get("VERSION_CODENAME") or values.get("UBUNTU_CODENAME") or None
    )
    result.pretty_name = values.get("PRETTY_NAME") or None
    return result
