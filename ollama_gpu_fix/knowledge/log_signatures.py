"""Log signatures: the lines Ollama (and the CUDA/ROCm libraries it loads) print about GPUs.

One row per signature: a stable id the rules speak, a regex, the eras that print it, and the
source. Sources are ../shared/reference/ollama-anchor.md sections 3.1-3.6 and 9 (table rows
cited as "9.N"), which quote discover/*.go per tag and the ollama/ollama issues named. When
Ollama rewords a message, this table is the one place to change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Signature:
    id: str
    pattern: re.Pattern[str]
    eras: str  # "ABC" = printed by those eras; "*" = library text, any era
    source: str


def _s(id_: str, regex: str, eras: str, source: str) -> Signature:
    return Signature(id_, re.compile(regex, re.IGNORECASE), eras, source)


SIGNATURES: tuple[Signature, ...] = (
    # ---- NVIDIA / CUDA ----
    _s("nvidia-driver-too-old", r"NVIDIA driver too old", "C", "3.3, 9.3-9.4, cuda_compat.go"),
    _s(
        "cuda-driver-insufficient",
        r"CUDA driver version is insufficient for CUDA runtime version",
        "BC",
        "3.4, 9.6, #7666, #16415",
    ),
    _s(
        "cudart-insufficient-driver",
        r"init failure: 35\b|CUDA_ERROR_INSUFFICIENT_DRIVER|cudaErrorInsufficientDriver",
        "*",
        "CUDA runtime error 35 = cudaErrorInsufficientDriver (CUDA Runtime API docs)",
    ),
    _s("cuda-old-driver", r"old CUDA driver detected", "A", "3.5, gpu.go@v0.11.10"),
    _s(
        "libcuda-missing-symbol",
        r"undefined symbol: cu\w+_v\d|symbol lookup for cu\w+ failed",
        "A",
        "case 005 (#5493): libcuda 418 lacks cuCtxCreate_v3",
    ),
    _s("cuda-kernel-image-invalid", r"device kernel image is invalid", "C", "9.5, #16449"),
    _s("cuda-gpu-too-old", r"CUDA GPU is too old", "A", "3.5, 9.8, #1992"),
    _s(
        "cuda-cc-not-compiled",
        r"compute capability not in compiled architectures",
        "C",
        "3.3, 9.7, llama_server.go",
    ),
    _s(
        "nvidia-version-mismatch",
        r"version mismatch between driver and cuda driver library|Driver/library version mismatch",
        "A*",
        "3.5, 9.9",
    ),
    _s(
        "cuda-unknown-999",
        r"cudart init failure: 999|unknown error initializing cuda driver library"
        r"|CUDA error 999|cudaSetDevice err: 999|CUDA_ERROR_UNKNOWN",
        "*",
        "3.5, 9.10, #6647, docs/gpu.mdx 'Linux Suspend Resume'",
    ),
    _s("cuda-init-500", r"init failure: 500\b", "*", "3.5, 9.11, #5718, #6961"),
    _s(
        "nvidia-no-devices",
        r"no nvidia devices detected by library (?P<library>\S+)",
        "A",
        "3.5, 9.11, #12116",
    ),
    _s(
        "cuda-no-device",
        r"no CUDA-capable device is detected|CUDA error 100\b",
        "*",
        "3.6, #684, #1167",
    ),
    _s(
        "nvml-init-failed",
        r"Failed to initialize NVML",
        "*",
        "failure-modes.md wsl2-passthrough-broken",
    ),
    _s(
        "cuda-lib-load-failed",
        r"Unable to load (?:nvcuda|cudart)|unable to load cuda driver library",
        "A",
        "3.5, gpu.go@v0.11.10",
    ),
    _s(
        "cuda-found",
        r"ggml_cuda_init: found (?P<count>\d+) (?P<backend>CUDA|ROCm) devices",
        "BC",
        "3.4, ml/backend/ggml",
    ),
    _s(
        "backend-loaded",
        r"load_backend: loaded (?P<backend>\w+) backend from (?P<path>\S+)",
        "BC",
        "3.4, #13070",
    ),
    # ---- AMD / ROCm ----
    _s(
        "amd-gfx-unsupported",
        r"amdgpu is not supported \(supported types:\[(?P<supported>[^\]]*)\]\)",
        "A",
        "3.5, 9.13-9.14, #8772, #12071",
    ),
    _s(
        "amd-no-rocblas-target",
        r"no rocblas support for gfx target",
        "C",
        "3.3, 9.15, amd.go filterUnsupportedROCmDevices",
    ),
    _s(
        "amd-permission",
        r"permission problems block access|/dev/kfd: permission denied"
        r"|open /dev/(?:dri/\w+|nvmap|nvidia\w*): permission denied",
        "A*",
        "3.5, 9.17, #7723, PR #6736",
    ),
    _s(
        "amd-tensile-no-devices",
        r"Could not initialize Tensile host: No devices found",
        "*",
        "3.6, 9.19, #6685",
    ),
    _s("amd-kfd-not-loaded", r"kfd driver not loaded", "A", "3.5, 9.18"),
    _s(
        "amd-no-rocm-lib",
        r"no compatible rocm library found|no suitable rocm found",
        "A",
        "3.5",
    ),
    _s(
        "amd-comgr",
        r"Failed to load COMGR library|Code object manager initialization failed",
        "*",
        "case 011 (CachyOS/distribution#517)",
    ),
    _s(
        "hip-no-binary",
        r"hipErrorNoBinaryForGpu|ROCm error: invalid device function",
        "*",
        "3.6, 9.22",
    ),
    _s("amd-too-old", r"amdgpu too old", "A", "3.5"),
    _s(
        "hsa-override-invalid",
        r"HSA_OVERRIDE_GFX_VERSION \S* is invalid|HSA_OVERRIDE_GFX_VERSION[=:]\\?\"",
        "*",
        "9.21, #5090, libhsakmt topology.c",
    ),
    _s(
        "hsa-override-set",
        r"skipping rocm gfx compatibility check",
        "A",
        "3.5 (override set, check skipped)",
    ),
    _s("amd-igpu-small", r"unsupported Radeon iGPU detected skipping", "A", "3.5"),
    _s("rocm-no-device", r"no ROCm-capable device is detected", "*", "3.4, #10691"),
    _s(
        "amd-windows-hip",
        r"amdhip64_6\.dll|AMD driver is too old\. Update your AMD driver",
        "C",
        "11 (Windows), discover/runner.go",
    ),
    _s(
        "discovery-timeout",
        r"failed to finish discovery before timeout|GPU discovery watchdog timed out"
        r"|timed out waiting for server startup",
        "BC",
        "2.8 'AMD Driver Version Mismatch', 9.20, #13308",
    ),
    _s(
        "discovery-failure",
        r"failure during (?:llama-server )?GPU discovery",
        "BC",
        "3.3-3.4",
    ),
    # ---- Vulkan, iGPU, environment ----
    _s(
        "vulkan-disabled",
        r"experimental Vulkan support disabled",
        "B",
        "2.3, 9.23, discover/runner.go@v0.24.0",
    ),
    _s("igpu-dropped", r"dropping integrated GPU", "C", "2.3, 9.16"),
    _s("visible-devices-override", r"user overrode visible devices", "BC", "3.3, 9.24"),
    _s(
        "jetpack-not-detected",
        r"jetpack not detected",
        "BC",
        "3.3 (DEBUG), discover/gpu.go JETSON_JETPACK",
    ),
    _s(
        "gpu-out-of-memory",
        r"CUDA error: out of memory|cudaMalloc failed: out of memory|ErrorOutOfDeviceMemory"
        r"|hipErrorOutOfMemory|failed to allocate (?!CPU)\w+ buffer of size",
        "*",
        "ggml CUDA/HIP/Vulkan allocators (llama.cpp), ollama#12141",
    ),
    # ---- results ----
    _s(
        "no-compatible-gpus",
        r"no compatible GPUs were discovered|routes\.go:\d+: no GPU detected"
        r"|no compatible amdgpu devices detected",
        "A",
        "3.5, 9.2",
    ),
    _s("zero-vram", r'(?:"total vram"|total_vram)="0 B"', "BC", "3.2, 9.1"),
    _s(
        "offloaded-layers",
        r"offloaded (?P<on_gpu>\d+)/(?P<total>\d+) layers to GPU",
        "*",
        "3.3-3.4, 9.25",
    ),
)

BY_ID: dict[str, Signature] = {s.id: s for s in SIGNATURES}

# slog keys whose values are evidence: what discovery, the scheduler and the loaders print
# about devices and libraries (discover/*.go, server/sched.go, llm/server.go per era). The
# values of every other key (prompt, model, images, ...) can come from an HTTP client and are
# blanked before a signature is matched (parsers/log_lines.py). `layers.*`, `memory.*` and the
# GPU environment variables (knowledge.environment) are trusted too.
TRUSTED_KEYS: frozenset[str] = frozenset(
    {
        "time", "level", "source", "error", "err", "detail", "reason", "hint", "library",
        "libdirs", "variant", "compute", "driver", "name", "description", "id", "filter_id",
        "pci_id", "type", "total", "available", "free", "gpu", "gpu_type", "gfx_target",
        "supported", "required_driver", "device", "devices", "count", "cc", "archs", "paths",
        "OLLAMA_LIBRARY_PATH", "extra_envs", "total vram", "total_vram", "threshold",
        "default_num_ctx", "env", "version", "duration", "status", "minimum", "compute_cap",
        "runners", "backend", "major", "minor", "size", "buffer", "pid",
    }
)
# Every signature's pattern contains one of these words (a unit test holds it to that), so a
# line without any of them cannot match and skips the signature scan: most log lines are
# request lines, and this keeps the parser at several MB/s.
KEYWORDS = re.compile(
    r"driver|cuda|nvidia|nvml|rocm|amdgpu|amdhip|gfx|kfd|hip|rocblas|tensile|comgr|code object"
    r"|vulkan|integrated|discovery|visible|compatible|offloaded|memory|999|500|symbol"
    r"|hsa_override|jetpack|vram|permission|device|gpu|capability|backend"
)
# One pass to reject the many lines that match nothing (named groups removed to combine).
ANY_SIGNATURE = re.compile(
    "|".join(f"(?:{re.sub(r'[?]P<[a-z_]+>', '', s.pattern.pattern)})" for s in SIGNATURES),
    re.IGNORECASE,
)

DISCOVERY_START = re.compile(
    r"looking for compatible GPUs|discovering available GPUs|Detecting GPU type", re.IGNORECASE
)
# Lines worth quoting even when no signature matches: anything about GPUs or their libraries.
GPU_WORDS = re.compile(
    r"\b(?:gpu|cuda|nvidia|nvml|rocm|amdgpu|hip|kfd|vulkan|gfx\d|vram|libcuda)\b", re.IGNORECASE
)
