"""AMD knowledge: which gfx targets each Ollama release bundles, and the override for the rest."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ollama_gpu_fix.knowledge.versions import in_range
from ollama_gpu_fix.records import record

if TYPE_CHECKING:
    from packaging.version import Version  # imported where compared (knowledge.versions)

AMD_VENDOR = "1002"


@record(frozen=True)
class GfxBundle:
    first: str | None  # Ollama version range [first, before)
    before: str | None
    rocm: str
    targets: frozenset[str]
    source: str


def _t(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Linux AMDGPU_TARGETS bundled per Ollama release (ollama/ollama CMakePresets.json at each
# tag, llama/server/CMakePresets.json from v0.30; the Dockerfile deletes gfx900/906 rocBLAS
# files from v0.12.4, https://github.com/ollama/ollama/issues/12481). The pre-0.6 row is the list Ollama itself printed in
# https://github.com/ollama/ollama/issues/8679 (v0.5.x, 2025-01).
GFX_BUNDLES: tuple[GfxBundle, ...] = (
    GfxBundle(
        None,
        "0.6.0",
        "6.1.2",
        _t(
            "gfx900 gfx906 gfx908 gfx90a gfx940 gfx941 gfx942 gfx1010 gfx1012 gfx1030 "
            "gfx1100 gfx1101 gfx1102"
        ),
        "supported types printed by v0.5.x in https://github.com/ollama/ollama/issues/8679",
    ),
    GfxBundle(
        "0.6.0",
        "0.9.0",
        "6.3.3",
        _t(
            "gfx900 gfx940 gfx941 gfx942 gfx1010 gfx1012 gfx1030 gfx1100 gfx1101 gfx1102 "
            "gfx906 gfx908 gfx90a"
        ),
        "ollama/ollama@v0.6.0:CMakePresets.json (to v0.8)",
    ),
    GfxBundle(
        "0.9.0",
        "0.12.0",
        "6.3.3",
        _t(
            "gfx900 gfx940 gfx941 gfx942 gfx1010 gfx1012 gfx1030 gfx1100 gfx1101 gfx1102 "
            "gfx906 gfx908 gfx90a gfx1151 gfx1200 gfx1201"
        ),
        "ollama/ollama@v0.9.0:CMakePresets.json (to v0.11)",
    ),
    GfxBundle(
        "0.12.0",
        "0.18.0",
        "6.3.3",
        _t(
            "gfx940 gfx941 gfx942 gfx1010 gfx1012 gfx1030 gfx1100 gfx1101 gfx1102 gfx1151 "
            "gfx1200 gfx1201 gfx908 gfx90a"
        ),
        "ollama/ollama@v0.12.0:CMakePresets.json (to v0.17); gfx900/906 blocked from v0.12.4 (55ca82726, https://github.com/ollama/ollama/issues/12481)",
    ),
    GfxBundle(
        "0.18.0",
        "0.31.2",
        "7.2",
        _t(
            "gfx942 gfx950 gfx1010 gfx1012 gfx1030 gfx1100 gfx1101 gfx1102 gfx1103 gfx1150 "
            "gfx1151 gfx1200 gfx1201 gfx908 gfx90a"
        ),
        "ollama/ollama@v0.18.0:CMakePresets.json (ROCm 7.2, ebb1b9ec1; to v0.31.1)",
    ),
    GfxBundle(
        "0.31.2",
        None,
        "7.2.1",
        _t(
            "gfx908 gfx90a gfx942 gfx950 gfx1030 gfx1100 gfx1101 gfx1102 gfx1150 gfx1151 "
            "gfx1200 gfx1201"
        ),
        "ollama/ollama@v0.31.2:llama/server/CMakePresets.json (26acfa42b, https://github.com/ollama/ollama/pull/17010: 'We rely on Vulkan now')",
    ),
)

@record(frozen=True)
class Override:
    """HSA_OVERRIDE_GFX_VERSION for a physical gfx: the value, the bundled target it lands on."""

    value: str
    target: str
    confidence: str  # high: confirmed in a thread or the docs; medium: reported working;
    #                  inferred: same ISA family, nobody reported it (never applied automatically)
    source: str


# Only overrides with a source are listed; the rest go to Vulkan. gfx1103 -> 11.0.0 holds only
# with ROCm 6 bundles (< v0.18): v0.18-v0.31.1 bundle gfx1103 natively, and with ROCm 7.2
# forcing 11.0.0 "is actively wrong on the 780M"
# (https://github.com/Crosstalk-Solutions/project-nomad/issues/1075), so from v0.31.2 it goes
# to Vulkan.
OVERRIDE_BEFORE: dict[str, str] = {"gfx1103": "0.18.0"}
OVERRIDES: dict[str, Override] = {
    "gfx1031": Override("10.3.0", "gfx1030", "high", "https://github.com/ollama/ollama/issues/8772 (solved), https://github.com/ollama/ollama/issues/3547, https://github.com/ROCm/ROCm/issues/2353"),
    "gfx1032": Override("10.3.0", "gfx1030", "medium", "https://github.com/ollama/ollama/issues/8473"),
    "gfx1033": Override("10.3.0", "gfx1030", "inferred", "RDNA2 family like gfx1030 (no report found)"),
    "gfx1034": Override("10.3.0", "gfx1030", "high", "ollama/ollama@v0.33.0-rc2:docs/gpu.mdx (RX 5400 example)"),
    "gfx1035": Override("10.3.0", "gfx1030", "medium", "https://github.com/Crosstalk-Solutions/project-nomad/issues/1076"),
    "gfx1036": Override("10.3.0", "gfx1030", "medium", "https://github.com/rjmalagon/ollama-linux-amd-apu/issues/12"),
    "gfx1103": Override("11.0.0", "gfx1100", "medium", "https://github.com/ollama/ollama/issues/15482, https://github.com/ollama/ollama/issues/6520, https://github.com/ollama/ollama/pull/5426"),
    "gfx90c": Override("9.0.0", "gfx900", "medium", "https://github.com/ollama/ollama/issues/2637 and other community reports (crashes reported too)"),
}

# Every value an automatic remedy may write as HSA_OVERRIDE_GFX_VERSION (knowledge.environment).
OVERRIDE_VALUES: frozenset[str] = frozenset(
    o.value for o in OVERRIDES.values() if o.confidence != "inferred"
)

# Integrated GPUs (APUs): Ollama v0.30+ drops them unless OLLAMA_IGPU_ENABLE=1, except gfx1151
# (ollama/ollama@v0.30.0:discover/runner.go defaultIntegratedROCmGFXTargets).
INTEGRATED = frozenset({"gfx90c", "gfx1033", "gfx1035", "gfx1036", "gfx1103", "gfx1150", "gfx1152"})
IGPU_ALLOWED_BY_DEFAULT = frozenset({"gfx1151"})

# ROCm never supported gfx8 (Polaris gfx803) in any Ollama bundle.
ROCM_MIN_MAJOR = 9  # "amdgpu too old gfx%d%x%x" below gfx9 (discover/amd_linux.go@v0.11.10)


def bundle_for(version: Version | None) -> GfxBundle | None:
    for bundle in GFX_BUNDLES:
        if in_range(version, bundle.first, bundle.before):
            return bundle
    return None


def supported(gfx: str, version: Version | None) -> bool | None:
    """Is this gfx bundled by this Ollama? None when the version is unknown."""
    bundle = bundle_for(version)
    if bundle is None:
        return None
    return gfx in bundle.targets


def override_for(gfx: str, version: Version | None) -> Override | None:
    """The HSA_OVERRIDE_GFX_VERSION row for gfx when it lands on a target this Ollama bundles."""
    entry = OVERRIDES.get(gfx)
    if entry is None:
        return None
    before = OVERRIDE_BEFORE.get(gfx)
    if before is not None and version is not None and not in_range(version, None, before):
        return None  # version >= before
    bundle = bundle_for(version)
    if bundle is not None and entry.target not in bundle.targets:
        return None
    return entry


def gfx_from_kfd(version: int) -> str | None:
    """KFD gfx_target_version (major*10000 + minor*100 + stepping) -> gfxNNNN (6.4)."""
    if version <= 0:
        return None
    major, rest = divmod(version, 10000)
    minor, stepping = divmod(rest, 100)
    if minor > 15 or stepping > 15:
        return None
    return f"gfx{major}{minor:x}{stepping:x}"


_OVERRIDE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def gfx_from_override(value: str) -> str | None:
    """HSA_OVERRIDE_GFX_VERSION `10.3.0` -> gfx1030; quoted or malformed values -> None."""
    match = _OVERRIDE.match(value.strip())
    if not match:
        return None
    major, minor, stepping = (int(x) for x in match.groups())
    if major > 63 or minor > 15 or stepping > 15:
        return None
    return f"gfx{major}{minor:x}{stepping:x}"


def gfx_major(gfx: str) -> int | None:
    match = re.match(r"gfx(\d+?)([0-9a-f]{2})$", gfx)
    return int(match.group(1)) if match else None


def gfx_version(gfx: str) -> str | None:
    """gfxNNNN as the HSA version ROCm reports it: gfx1031 -> 10.3.1, gfx90a -> 9.0.10."""
    digits = gfx[3:] if gfx.startswith("gfx") else ""
    if not 3 <= len(digits) <= 4 or not digits[:-2].isdigit() or not digits[-2].isdigit():
        return None
    try:
        stepping = int(digits[-1], 16)
    except ValueError:
        return None
    return f"{int(digits[:-2])}.{int(digits[-2])}.{stepping}"


def override_value_for(gfx: str, version: Version | None) -> str | None:
    """The HSA_OVERRIDE_GFX_VERSION this GPU needs under this Ollama: the table's value when
    it is outside the bundle, its own version when the bundle has it (a global override then
    must leave it where it is), None when no override lands it anywhere."""
    if supported(gfx, version):
        return gfx_version(gfx)
    entry = override_for(gfx, version)
    if entry is None or entry.confidence == "inferred":
        return None
    return entry.value


def override_fits(value: str, gfx_targets: list[str], version: Version | None) -> bool:
    """May HSA_OVERRIDE_GFX_VERSION=VALUE be written for a host with these GPUs? One global
    override applies to every AMD GPU, so every one of them must want exactly this value; a
    GPU of another family (11.0.0 on an RDNA2 gfx1031) would be mis-targeted."""
    wanted = {override_value_for(gfx, version) for gfx in gfx_targets}
    return bool(gfx_targets) and wanted == {value}
