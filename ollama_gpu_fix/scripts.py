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
    """shlib.sh + NAME.sh (package data of ollama_gpu_fix) as one POSIX-sh text."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a script name: {name!r}")
    lib = _read("shlib.sh")
    return lib + ("" if lib.endswith("\n") else "\n") + _read(f"{name}.sh")


def library() -> str:
    """shlib.sh alone: a remote command that calls one of its helpers appends the call."""
    lib = _read("shlib.sh")
    return lib + ("" if lib.endswith("\n") else "\n")
