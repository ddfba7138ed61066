"""Log signatures: the lines Ollama (and the CUDA/ROCm libraries it loads) print about GPUs.

One row per signature: a stable id the rules speak, a regex, the eras that print it, and the
source: the file of ollama/ollama (or of the library) that prints the line at the tag named,
or the issue thread where users posted it. When Ollama rewords a message, this table is the
one place to change. Signatures are matched only against trusted text (parsers/log_lines.py).
"""

from __future__ import annotations

import re

from ollama_gpu_fix.records import record


@record(frozen=True)
class Signature:
    id: str
    pattern: re.Pattern[str]
    eras: str  # "ABC" = printed by those eras; "*" = library text, any era
    source: str


def _s(id_: str, regex: str, eras: str, source: str) -> Signature:
    return Signature(id_, re.compile(regex, re.IGNORECASE), eras, source)


SIGNATURES: tuple[Signature, ...] = (
    # ---- NVIDIA / CUDA ----
    _s("nvidia-driver-too-old", r"NVIDIA driver too old", "C", "ollama/ollama@v0.30.11:discover/cuda_compat.go; https://github.com/ollama/ollama/issues/17290"),
    _s(
        "cuda-driver-insufficient",
        r"CUDA driver version is insufficient for CUDA runtime version",
        "BC",
        "ggml-cuda.cu ggml_cuda_init via ollama/ollama@v0.24.0:ml/backend/ggml; https://github.com/ollama/ollama/issues/7666, https://github.com/ollama/ollama/issues/16415",
    ),
    _s(
        "cudart-insufficient-driver",
        r"init failure: 35\b|err: 35\b|CUDA_ERROR_INSUFFICIENT_DRIVER|cudaErrorInsufficientDriver",
        "*",
        "cudaErrorInsufficientDriver = 35 (https://docs.nvidia.com/cuda/cuda-runtime-api/group__CUDART__TYPES.html)",
    ),
    _s("cuda-old-driver", r"old CUDA driver detected", "A", "ollama/ollama@v0.11.10:discover/gpu.go"),
    _s(
        "libcuda-missing-symbol",
        r"undefined symbol: cu\w+_v\d|symbol lookup for cu\w+ failed",
        "A",
        "ollama/ollama@v0.1.48:gpu/gpu_info_nvcuda.c; https://github.com/ollama/ollama/issues/5493 (libcuda 418 lacks cuCtxCreate_v3)",
    ),
    _s("cuda-kernel-image-invalid", r"device kernel image is invalid", "C", "https://github.com/ollama/ollama/issues/16449 (v0.30.0-v0.30.10)"),
    _s("cuda-gpu-too-old", r"CUDA GPU is too old", "A", "ollama/ollama@v0.11.10:discover/gpu.go; https://github.com/ollama/ollama/issues/1992"),
    _s(
        "cuda-cc-not-compiled",
        r"compute capability not in compiled architectures",
        "C",
        "ollama/ollama@v0.33.0-rc2:discover/llama_server.go",
    ),
    _s(
        "nvidia-version-mismatch",
        r"version mismatch between driver and cuda driver library|Driver/library version mismatch",
        "A*",
        "ollama/ollama@v0.11.10:discover/gpu.go; nvidia-smi (NVML_ERROR_LIB_RM_VERSION_MISMATCH)",
    ),
    _s(
        "cuda-unknown-999",
        r"cudart init failure: 999|unknown error initializing cuda driver library"
        r"|CUDA error 999|cudaSetDevice err: 999|CUDA_ERROR_UNKNOWN",
        "*",
        "ollama/ollama@v0.33.0-rc2:docs/gpu.mdx 'Linux Suspend Resume'; https://github.com/ollama/ollama/issues/6647, https://github.com/ollama/ollama/issues/2934",
    ),
    _s(
        "cuda-forward-compat",
        r"forward compatibility was attempted on non supported HW|cudaErrorCompatNotSupportedOnDevice"
        r"|CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE",
        "*",
        "CUDA error 804 (https://docs.nvidia.com/cuda/cuda-runtime-api/group__CUDART__TYPES.html): user-space driver newer than the loaded kernel module; https://github.com/ollama/ollama/issues/15918",
    ),
    _s(
        "cudart-set-device-error",
        r"cudaSetDevice err: (?P<cuda_code>\d{1,4})\b",
        "A",
        "ollama/ollama@v0.3.14:gpu/gpu_info_cudart.c (cudaSetDevice result per device); codes: CUDA runtime cudaError_t; https://github.com/ollama/ollama/issues/18067",
    ),
    _s(
        "cuda-system-not-ready",
        r"system not yet initialized|cudaErrorSystemNotReady|CUDA_ERROR_SYSTEM_NOT_READY",
        "*",
        "CUDA error 802 (cudaErrorSystemNotReady; https://docs.nvidia.com/cuda/cuda-runtime-api/group__CUDART__TYPES.html): NVSwitch systems need nvidia-fabricmanager; https://github.com/ollama/ollama/issues/11963",
    ),
    _s("cuda-init-500", r"init failure: 500\b", "*", "ollama/ollama@v0.11.10:discover/gpu.go (cuInit result); https://github.com/ollama/ollama/issues/5718, https://github.com/ollama/ollama/issues/6961"),
    _s(
        "nvidia-no-devices",
        r"no nvidia devices detected by library (?P<library>\S+)",
        "A",
        "ollama/ollama@v0.11.10:discover/gpu.go; https://github.com/ollama/ollama/issues/12116",
    ),
    _s(
        "cuda-no-device",
        r"no CUDA-capable device is detected|CUDA error 100\b",
        "*",
        "CUDA error 100 = cudaErrorNoDevice; https://github.com/ollama/ollama/issues/684, https://github.com/ollama/ollama/issues/1167",
    ),
    _s(
        "nvml-init-code",
        r"nvml (?:vram )?init failure: (?P<nvml_code>\d{1,3})\b",
        "A",
        "ollama/ollama@v0.1.26:gpu/gpu_info_nvml.c (nvmlInit_v2 result); codes: NVIDIA nvml.h nvmlReturn_t",
    ),
    _s(
        "nvml-init-failed",
        r"Failed to initialize NVML",
        "*",
        "nvidia-smi / NVML; https://github.com/ollama/ollama/issues/5718, https://github.com/microsoft/WSL/issues/9961",
    ),
    _s(
        "cuda-lib-load-failed",
        r"Unable to load (?:nvcuda|cudart)|unable to load cuda driver library",
        "A",
        "ollama/ollama@v0.11.10:discover/gpu.go",
    ),
    _s(
        "ggml-init-failed",
        r"ggml_cuda_init: failed to initialize (?:CUDA|ROCm)",
        "BC",
        "ggml-cuda.cu ggml_cuda_init (the runner's own backend init, after discovery); https://github.com/ollama/ollama/issues/10691",
    ),
    _s(
        "cuda-found",
        r"ggml_cuda_init: found (?P<count>\d+) (?P<backend>CUDA|ROCm) devices",
        "BC",
        "ggml-cuda.cu ggml_cuda_init, printed via ollama/ollama@v0.24.0:ml/backend/ggml",
    ),
    _s(
        "backend-loaded",
        r"load_backend: loaded (?P<backend>\w+) backend from (?P<path>\S+)",
        "BC",
        "ggml-backend-reg.cpp load_backend; https://github.com/ollama/ollama/issues/13070",
    ),
    # ---- AMD / ROCm ----
    _s(
        "amd-gfx-unsupported",
        r"amdgpu is not supported(?: \(supported types:\[(?P<supported>[^\]]*)\]\))?",
        "A",
        "ollama/ollama@v0.11.10:discover/amd_linux.go (Linux: types in the msg), discover/amd_windows.go (Windows: gpu_type, supported_types keys); https://github.com/ollama/ollama/issues/8772, https://github.com/ollama/ollama/issues/2502",
    ),
    _s(
        "amd-gfx-unsupported-old",
        r"amdgpu \[\d+\] (?P<gpu_type>gfx[0-9a-f]{3,4}) is not supported by \S+ \[(?P<supported>[^\]]*)\]",
        "A",
        "ollama/ollama@v0.1.32:gpu/amd_linux.go (`amdgpu [N] gfxNNNN is not supported by DIR [targets]`); https://github.com/ollama/ollama/issues/4099",
    ),
    _s(
        "rocblas-no-arch",
        r"TensileLibrary\S*: Illegal seek for GPU arch : (?P<gfx_target>gfx[0-9a-f]{3,4})",
        "*",
        "rocBLAS Tensile loader (no kernels for this gfx); https://github.com/ollama/ollama/issues/2823",
    ),
    _s(
        "amd-no-rocblas-target",
        r"no rocblas support for gfx target",
        "C",
        "ollama/ollama@v0.33.0-rc2:discover/amd.go filterUnsupportedROCmDevices",
    ),
    _s(
        "amd-permission",
        r"permission problems block access|permissions not set up properly"
        r"|/dev/kfd: permission denied|open /dev/(?:dri/\w+|nvmap|nvidia\w*): permission denied",
        "A*",
        "ollama/ollama@v0.11.10:discover/amd_linux.go, @v0.1.24 (`Radeon card detected, but permissions not set up properly`); https://github.com/ollama/ollama/issues/7723, https://github.com/ollama/ollama/pull/6736, https://github.com/ollama/ollama/issues/2442",
    ),
    _s(
        "tegra-nvmap-permission",
        r"NvRmMemInitNvmap failed with Permission denied|/dev/nvmap\S* ?:? ?permission denied",
        "*",
        "Jetson (Tegra) NvRm memory manager: the user cannot open /dev/nvmap; https://github.com/ollama/ollama/issues/1289, https://github.com/ollama/ollama/issues/1979",
    ),
    _s(
        "amd-tensile-no-devices",
        r"Could not initialize Tensile host: No devices found",
        "*",
        "rocBLAS Tensile host init; https://github.com/ollama/ollama/issues/6685",
    ),
    _s("amd-kfd-not-loaded", r"kfd driver not loaded", "A", "ollama/ollama@v0.11.10:discover/amd_linux.go"),
    _s(
        "amd-no-rocm-lib",
        r"no compatible rocm library found|no suitable rocm found",
        "A",
        "ollama/ollama@v0.11.10:discover/amd_linux.go",
    ),
    _s(
        "amd-comgr",
        r"Failed to load COMGR library|Code object manager initialization failed",
        "*",
        "ROCm clr rocdevice.cpp / comgrctx.cpp; https://github.com/CachyOS/distribution/issues/517",
    ),
    _s(
        "hip-no-binary",
        r"hipErrorNoBinaryForGpu|ROCm error: invalid device function",
        "*",
        "HIP runtime (hipErrorNoBinaryForGpu); https://github.com/ROCm/ROCm/issues/2536",
    ),
    _s("amd-too-old", r"amdgpu too old", "A", "ollama/ollama@v0.11.10:discover/amd_linux.go"),
    _s(
        "hsa-override-invalid",
        r"HSA_OVERRIDE_GFX_VERSION \S* is invalid|HSA_OVERRIDE_GFX_VERSION[=:]\\?\"",
        "*",
        "ROCR-Runtime libhsakmt/src/topology.c; https://github.com/ollama/ollama/issues/5090",
    ),
    _s(
        "hsa-override-set",
        r"skipping rocm gfx compatibility check",
        "A",
        "ollama/ollama@v0.11.10:discover/amd_linux.go (override set, check skipped)",
    ),
    _s("amd-igpu-small", r"unsupported Radeon iGPU detected skipping", "A", "ollama/ollama@v0.11.10:discover/amd_linux.go"),
    _s("rocm-no-device", r"no ROCm-capable device is detected", "*", "ggml-cuda.cu (HIP build) ggml_cuda_init; https://github.com/ollama/ollama/issues/10691"),
    _s(
        "amd-windows-hip",
        r"amdhip64_6\.dll|AMD driver is too old\. Update your AMD driver",
        "C",
        "ollama/ollama@v0.33.0-rc2:discover/runner.go (Windows amdhip64_6.dll check)",
    ),
    _s(
        "discovery-timeout",
        r"failed to finish discovery before timeout|GPU discovery watchdog timed out"
        r"|timed out waiting for server startup",
        "BC",
        "ollama/ollama@v0.33.0-rc2:docs/troubleshooting.mdx 'AMD Driver Version Mismatch'; https://github.com/ollama/ollama/issues/13308",
    ),
    _s(
        "discovery-failure",
        r"failure during (?:llama-server )?GPU discovery",
        "BC",
        "ollama/ollama@v0.24.0:discover/runner.go, @v0.33.0-rc2:discover/llama_server.go",
    ),
    # ---- Vulkan, iGPU, environment ----
    _s(
        "vulkan-disabled",
        r"experimental Vulkan support disabled",
        "B",
        "ollama/ollama@v0.24.0:discover/runner.go; https://github.com/ollama/ollama/issues/12673",
    ),
    _s("igpu-dropped", r"dropping integrated GPU", "C", "ollama/ollama@v0.30.0:discover/runner.go"),
    _s("visible-devices-override", r"user overrode visible devices", "BC", "ollama/ollama@v0.33.0-rc2:discover/runner.go overrideWarnings"),
    _s(
        "jetpack-not-detected",
        r"jetpack not detected",
        "BC",
        "ollama/ollama@v0.33.0-rc2:discover/gpu.go (JETSON_JETPACK, DEBUG)",
    ),
    _s(
        "gpu-out-of-memory",
        r"CUDA error: out of memory|cudaMalloc failed: out of memory|ErrorOutOfDeviceMemory"
        r"|hipErrorOutOfMemory|failed to allocate (?!CPU)\w+ buffer of size",
        "*",
        "ggml CUDA/HIP/Vulkan allocators (llama.cpp); https://github.com/ollama/ollama/issues/12141",
    ),
    _s(
        "gpu-zero-memory",
        r"gpu has too little memory to allocate any layers|insufficient VRAM to load any model layers",
        "AB",
        "ollama/ollama@v0.11.10:llm/memory.go; https://github.com/MooreThreads/ollama-musa/issues/22 (a GPU reporting 0 B)",
    ),
    _s(
        "cpu-no-vector-extensions",
        r"CPU does not have (?:minimum )?vector extensions",
        "A",
        "ollama/ollama@v0.3.14:gpu/gpu.go (GPU runners need AVX on x86); https://github.com/ollama/ollama/issues/6827",
    ),
    _s(
        "smi-insufficient-permissions",
        r"\[Insufficient Permissions\]",
        "*",
        "nvidia-smi prints it for fields a MIG instance or a restricted container may not read; https://github.com/ollama/ollama/issues/932",
    ),
    _s(
        "gpu-libraries-discovered",
        r"discovered GPU libraries\"?:? ?(?:paths=)?\"?\[(?P<paths>[^\]]*)\]",
        "A",
        "ollama/ollama@v0.1.20:gpu/gpu.go (`Discovered GPU libraries: [...]`), @v0.11.10:discover/gpu.go (`discovered GPU libraries` paths=)",
    ),
    _s(
        "gpu-library-picked",
        r"detected GPUs\b|Unable to load (?:CUDA management|cudart|nvcuda) library (?P<path>\S+?):? ",
        "A",
        "ollama/ollama@v0.1.45:gpu/gpu.go (`detected GPUs` library=, `Unable to load ... library PATH: ...`)",
    ),
    _s(
        "runners-listed",
        r"Dynamic LLM (?:libraries|variants)\"?:? ?(?:runners=)?\"?\[(?P<runners>[^\]]*)\]",
        "A",
        "ollama/ollama@v0.1.32:llm/payload.go (`Dynamic LLM libraries [cpu cuda_v11 ...]`), @v0.5.7:runners/common.go (runners=[...]); https://github.com/ollama/ollama/issues/9035",
    ),
    # ---- results ----
    _s(
        "no-compatible-gpus",
        r"no compatible GPUs were discovered|routes\.go:\d+: no GPU detected"
        r"|no compatible amdgpu devices detected",
        "A",
        "ollama/ollama@v0.11.10:discover/gpu.go, discover/amd_linux.go",
    ),
    _s("zero-vram", r'(?:"total vram"|total_vram)="0 B"', "BC", "ollama/ollama@v0.33.0-rc2:server/routes.go (vram-based default context), @v0.11.10 (low vram mode)"),
    _s(
        "library-skipped-by-request",
        r"skipping available library at users? request",
        "BC",
        "ollama/ollama@v0.12.3:discover/runner.go (OLLAMA_LLM_LIBRARY names no backend directory;"
        " https://github.com/ollama/ollama/issues/12797)",
    ),
    _s(
        "offloaded-layers",
        r"offloaded (?P<on_gpu>\d+)/(?P<total>\d+) layers to GPU",
        "*",
        "llama.cpp load_tensors / llm_load_tensors; https://github.com/ollama/ollama/issues/13320",
    ),
)

BY_ID: dict[str, Signature] = {s.id: s for s in SIGNATURES}
# Families of ids the rules ask for together (each era words the same fact its own way).
GFX_UNSUPPORTED = ("amd-gfx-unsupported", "amd-gfx-unsupported-old")
GFX_NAMED = (*GFX_UNSUPPORTED, "amd-no-rocblas-target", "rocblas-no-arch")
# Lines only an NVIDIA stack prints: an NVIDIA GPU is there even when nothing else says so.
NVIDIA_EVENTS = (
    "cuda-system-not-ready",
    "cudart-set-device-error",
    "nvml-init-code",
    "nvidia-driver-too-old",
    "cudart-insufficient-driver",
    "cuda-driver-insufficient",
    "cuda-old-driver",
    "libcuda-missing-symbol",
    "cuda-kernel-image-invalid",
    "cuda-gpu-too-old",
    "cuda-cc-not-compiled",
    "nvidia-version-mismatch",
    "cuda-forward-compat",
    "cuda-unknown-999",
    "cuda-init-500",
    "nvidia-no-devices",
    "cuda-no-device",
    "nvml-init-failed",
    "cuda-lib-load-failed",
)
# Lines only an AMD/ROCm stack prints.
AMD_EVENTS = (
    "amd-gfx-unsupported",
    "amd-gfx-unsupported-old",
    "rocblas-no-arch",
    "amd-no-rocblas-target",
    "amd-permission",
    "amd-tensile-no-devices",
    "amd-kfd-not-loaded",
    "amd-no-rocm-lib",
    "amd-comgr",
    "hip-no-binary",
    "amd-too-old",
    "hsa-override-set",
    "rocm-no-device",
)


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
        "supported_types", "minimum_memory", "layer_size", "required", "detected",
        # the runner Ollama started: its own path (runners/cpu_avx2/..., lib/ollama/cuda_v12);
        # the rest of the command line is Ollama's flags and the model's blob path
        "cmd", "requested", "libDir", "runner.inference", "runner.devices", "runner.size", "runner.vram",
    }
)
# Every signature's pattern contains one of these words (a unit test holds it to that), so a
# line without any of them cannot match and skips the signature scan: most log lines are
# request lines, and this keeps the parser at several MB/s.
KEYWORDS = re.compile(
    r"driver|cuda|nvidia|nvml|rocm|amdgpu|amdhip|gfx|kfd|hip|rocblas|tensile|comgr|code object"
    r"|vulkan|integrated|discovery|visible|compatible|offloaded|memory|999|500|symbol"
    r"|hsa_override|jetpack|vram|permission|device|gpu|capability|backend|nvmap|vector|dynamic llm|forward compat|tensile|not yet initialized"
    r"|buffer size|llama server|runner|shared object|undefined symbol|nvrm|vk_error|metal|layers"
    r"|model weights|library"
)
DISCOVERY_START = re.compile(
    r"looking for compatible GPUs|discovering available GPUs|Detecting GPU type", re.IGNORECASE
)
# Lines worth quoting even when no signature matches: anything about GPUs or their libraries.
GPU_WORDS = re.compile(
    r"\b(?:gpu|cuda|nvidia|nvml|rocm|amdgpu|hip|kfd|vulkan|gfx\d|vram|libcuda)\b", re.IGNORECASE
)
