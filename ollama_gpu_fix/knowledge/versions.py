"""Ollama versions: the discovery eras and a tolerant version parser.

Source for every boundary: the first release of ollama/ollama containing the commit named
(`git tag --contains <commit>` in ollama/ollama).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ollama_gpu_fix.records import record

if TYPE_CHECKING:
    from packaging.version import Version

# packaging is imported in the functions, when a version is actually parsed or compared:
# diagnose-bundle does not spend its import on evidence without a version (issue 13).

_VERSION = re.compile(r"(\d+\.\d+(?:\.\d+)?(?:-?rc\d+)?)")


def parse_version(text: str | None) -> Version | None:
    """`0.12.3`, `v0.33.0-rc2`, `ollama version is 0.5.1` -> Version; anything else -> None."""
    if not text:
        return None
    match = _VERSION.search(text)
    if not match:
        return None
    from packaging.version import InvalidVersion, Version

    try:
        return Version(match.group(1))
    except InvalidVersion:
        return None


@record(frozen=True)
class Era:
    name: str
    first: str | None  # first version of the era (inclusive)
    summary: str


# Discovery eras: how Ollama finds GPUs (discover/ at each tag).
ERAS: tuple[Era, ...] = (
    Era(
        "A", None, "in-process cgo discovery: dlopen libcuda/libcudart/libnvidia-ml, AMD via sysfs"
    ),
    Era("B", "0.12.4", "runner-based discovery per lib/ollama/<variant> (#12090, bc8909fb3)"),
    Era("C", "0.30.0", "llama-server is the only engine; llama-server --list-devices (9db4bdbad)"),
)


def era_of(version: Version | None) -> str | None:
    if version is None:
        return None
    from packaging.version import Version

    current = None
    for era in ERAS:
        if era.first is None or version >= Version(era.first):
            current = era.name
    return current


def in_range(version: Version | None, first: str | None, before: str | None) -> bool:
    """first <= version < before; None bounds are open. An unknown version is in no range."""
    if version is None:
        return False
    from packaging.version import Version

    if first is not None and version < Version(first):
        return False
    return not (before is not None and version >= Version(before))


# Other dated switches a rule needs (first tag containing the commit).
VULKAN_BUNDLED = "0.12.11"  # Vulkan in official binaries, opt-in OLLAMA_VULKAN=1 (6286d9a3a)
VULKAN_DEFAULT_ON = "0.30.0"  # on by default, OLLAMA_VULKAN=0 disables (9db4bdbad)
IGPU_POLICY = "0.30.0"  # OLLAMA_IGPU_ENABLE; iGPUs dropped by default (9db4bdbad)
CUDA_V11_REMOVED = "0.9.3"  # cuda_v11 bundle removed (1c6669e64)
