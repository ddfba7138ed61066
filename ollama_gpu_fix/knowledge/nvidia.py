"""NVIDIA knowledge: the driver each Ollama release needs, and CUDA toolkit driver floors."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ollama_gpu_fix.knowledge.versions import in_range
from ollama_gpu_fix.records import record

if TYPE_CHECKING:
    from packaging.version import Version  # imported where compared (knowledge.versions)

NVIDIA_VENDOR = "10de"


@record(frozen=True)
class DriverFloor:
    first: str | None  # Ollama version range [first, before)
    before: str | None
    min_driver: int  # driver major
    min_driver_old_cc: int  # for GPUs with compute capability < 7.0
    bundle: str
    source: str


# Minimum NVIDIA driver per Ollama release (what its bundled CUDA runtime needs).
DRIVER_FLOORS: tuple[DriverFloor, ...] = (
    DriverFloor(
        None,
        "0.9.3",
        450,
        450,
        "cuda_v11 + cuda_v12",
        "ollama/ollama bundled cuda_v11 until v0.9.3 (commit 1c6669e64); CUDA 11.x minor-version "
        "compatibility needs driver >= 450 (https://docs.nvidia.com/deploy/cuda-compatibility/minor-version-compatibility.html)",
    ),
    DriverFloor(
        "0.9.3",
        "0.30.0",
        531,
        531,
        "cuda_v12 (+ cuda_v13 from 0.11.11)",
        "ollama/ollama@v0.12.11:docs/gpu.md ('driver version 531 and newer', changed by commit f22ec2ec4)",
    ),
    DriverFloor(
        "0.30.0",
        None,
        550,
        570,
        "cuda_v12 built with CUDA 12.8 + cuda_v13",
        "ollama/ollama@v0.30.11:discover/cuda_compat.go (cuda_v12 needs >= 550 for compressed "
        "fatbins, compute capability < 7.0 needs >= 570 for PTX JIT; enforced from v0.30.11, "
        "commit f22ec2ec4; v0.30.0-v0.30.10 crash instead: https://github.com/ollama/ollama/issues/16449)",
    ),
)

# What fix_gpu.py installs when it must upgrade: the LTSB branch that carries CUDA 13
# (R580 LTSB, EOL Aug 2028: https://docs.nvidia.com/datacenter/tesla/drivers/supported-drivers-and-cuda-toolkit-versions.html),
# which every current bundle accepts.
RECOMMENDED_DRIVER_BRANCH = 580


def driver_floor(version: Version | None) -> DriverFloor | None:
    for floor in DRIVER_FLOORS:
        if in_range(version, floor.first, floor.before):
            return floor
    return None


def required_driver(version: Version | None, compute_cap: str | None) -> tuple[int, str] | None:
    """(minimum driver major, source) for this Ollama and GPU, None when the version is unknown."""
    floor = driver_floor(version)
    if floor is None:
        return None
    old = False
    if compute_cap:
        try:
            old = float(compute_cap) < 7.0
        except ValueError:
            old = False
    return (floor.min_driver_old_cc if old else floor.min_driver), floor.source


# Minimum Linux x86_64 driver per CUDA toolkit (NVIDIA CUDA Toolkit release notes, Table 3,
# https://docs.nvidia.com/cuda/cuda-toolkit-release-notes/). Keys are toolkit major.minor;
# values the GA driver floor.
CUDA_TOOLKIT_MIN_DRIVER: dict[str, str] = {
    "13.0": "580.65.06",
    "12.9": "575.51.03",
    "12.8": "570.26",
    "12.6": "560.28.03",
    "12.5": "555.42.02",
    "12.4": "550.54.14",
    "12.3": "545.23.06",
    "12.2": "535.54.03",
    "12.1": "530.30.02",
    "12.0": "525.60.13",
    "11.8": "520.61.05",
}

# The toolkit fix_gpu.py installs when a stale one must go (the mission: "install 12.4+"). A
# string, as knowledge.versions' constants: packaging is imported only where versions are
# compared, not with this module (diagnose-bundle's start, issue 13).
MIN_GOOD_TOOLKIT = "12.4"

# Compute capability floors (ollama/ollama@v0.33.0-rc2:docs/gpu.mdx "compute capability 5.0+",
# llama/server/CMakePresets.json; @v0.11.10:discover/gpu.go CudaComputeMajorMin): nothing
# below 5.0 runs anywhere; cuda_v13 builds only 7.5+ (PTX), cuda_v12 covers 5.0+.
MIN_COMPUTE_CAP = 5.0


def driver_major(version: str | None) -> int | None:
    if not version:
        return None
    head = version.strip().split(".")[0]
    return int(head) if head.isdigit() else None


# The kernel module's own banner, as dmesg (and /proc/driver/nvidia/version) print it:
# "NVRM: loading NVIDIA UNIX Open Kernel Module for x86_64  570.172.08  Release Build ..." and
# "nvidia-modeset: Loading NVIDIA UNIX Open Kernel Mode Setting Driver for x86_64  570.172.08".
# Source: the driver's nv.c / nvidia-modeset banners; https://github.com/ollama/ollama/issues/11932
KERNEL_MODULE_LINE = re.compile(
    r"(?:loading )?NVIDIA UNIX (?:Open )?(?:x86_64 |aarch64 )?Kernel (?:Module|Mode Setting Driver)"
    r"(?: for \S+)?\s+(?P<version>\d{3}\.\d{1,3}(?:\.\d{1,3})?)",
    re.IGNORECASE,
)
# User-space driver libraries carry the driver version in their file name.
VERSIONED_LIB = re.compile(r"lib(?:cuda|nvidia-ml)\.so\.(?P<version>\d{3}\.\d{1,3}(?:\.\d{1,3})?)\b")


# NVML return codes Ollama 0.1.x printed as `nvml vram init failure: N` (nvmlReturn_t in
# NVIDIA's nvml.h, https://docs.nvidia.com/deploy/nvml-api/group__nvmlDeviceEnumvs.html).
NVML_DRIVER_NOT_LOADED = 9
NVML_OPERATING_SYSTEM = 17  # "GPU access blocked by the operating system" (WSL/GPU-PV)
NVML_LIB_RM_VERSION_MISMATCH = 18  # "Driver/library version mismatch"
