"""The remote scripts as pyinfra sends them: shlib.sh's shared helpers, then the script.

Each script runs as ONE remote command (`sh -c '<text>'`), so a helper shared by probe.sh and
verify.sh cannot be sourced from a file on the host: it travels in front of the script.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"[a-z][a-z0-9_]*")


def _read(name: str) -> str:
    return resources.files("ollama_gpu_fix").joinpath(name).read_text(encoding="utf-8")


@cache
def script(name: str) -> str:
    """NAME.sh (package data of ollama_gpu_fix) with shlib.sh's helpers after its header (its
    leading comment block: the first lines of the remote command still say what it is), as
    one POSIX-sh text."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a script name: {name!r}")
    lib = _read("shlib.sh")
    lines = _read(f"{name}.sh").splitlines(keepends=True)
    head = 0
    while head < len(lines) and lines[head].startswith("#"):
        head += 1
    return "".join(lines[:head]) + lib + ("" if lib.endswith("\n") else "\n") + "".join(
        lines[head:])


def library() -> str:
    """shlib.sh alone: a remote command that calls one of its helpers appends the call."""
    lib = _read("shlib.sh")
    return lib + ("" if lib.endswith("\n") else "\n")
