"""Errors by component, not by phrase: the families of error text the GPU stack prints, the
link of the GPU path each family speaks for, and the code tables of the libraries that print
numbers.

A log signature (log_signatures.py) names one wording; Ollama and its engines reword messages
every few releases. A family is matched broadly (an error name, an error number, a library that
failed to load) so an unknown message of a known component still lands on its link as an error.
The code tables are the upstream enums: the CUDA runtime's cudaError_t
(cuda/include/driver_types.h), the driver API's CUresult (cuda/include/cuda.h), NVML's
nvmlReturn_t (nvml.h; the values checked against nvidia-ml-py 12.x's NVML_ERROR_* constants),
HIP's hipError_t (ROCm/HIP@rocm-6.2.0:include/hip/hip_runtime_api.h).
"""

from __future__ import annotations

import re

from ollama_gpu_fix.records import record

# The links of the GPU path, in the order a fix must go (ARCHITECTURE: diagnosis as a chain).
LINKS: tuple[str, ...] = (
    "hardware",  # a GPU is present
    "kernel-driver",  # its kernel driver is loaded and answers
    "device-access",  # the service (or container) may open its device nodes
    "runtime",  # user-space driver and runtime: libcuda/NVML, ROCm/HIP, Vulkan loader
    "ollama-backend",  # this Ollama build has a backend for this GPU (runners, archs, gfx)
    "discovery",  # Ollama's discovery sees the device (environment, overrides)
    "scheduler",  # the model (and its context) fits the GPU's free memory
)


@record(frozen=True)
class Meaning:
    """What one error says: the link it breaks and the failure code it argues for."""

    link: str
    code: str  # a failure-modes code; "other" when the number is known but no code fits


# cudaError_t (driver_types.h, CUDA 12.x/13.0) and CUresult (cuda.h): the numbers ggml, Ollama's
# discovery and cudart print ("cudart init failure: 35", "CUDA error 100", "err: 999").
CUDA_CODES: dict[int, tuple[str, Meaning]] = {
    2: ("cudaErrorMemoryAllocation", Meaning("scheduler", "vram-insufficient")),
    3: ("cudaErrorInitializationError", Meaning("kernel-driver", "other")),
    34: ("cudaErrorStubLibrary", Meaning("runtime", "nvidia-no-driver")),
    35: ("cudaErrorInsufficientDriver", Meaning("runtime", "nvidia-driver-too-old")),
    46: ("cudaErrorDevicesUnavailable", Meaning("device-access", "other")),
    100: ("cudaErrorNoDevice", Meaning("kernel-driver", "nvidia-no-driver")),
    101: ("cudaErrorInvalidDevice", Meaning("discovery", "env-forces-cpu")),
    209: ("cudaErrorNoKernelImageForDevice", Meaning("ollama-backend", "gpu-too-old")),
    221: ("cudaErrorJitCompilerNotFound", Meaning("runtime", "other")),
    222: ("cudaErrorUnsupportedPtxVersion", Meaning("runtime", "nvidia-driver-too-old")),
    304: ("CUDA_ERROR_OPERATING_SYSTEM", Meaning("kernel-driver", "other")),
    500: ("CUDA_ERROR_NOT_FOUND", Meaning("runtime", "other")),
    802: ("cudaErrorSystemNotReady", Meaning("kernel-driver", "other")),
    803: ("cudaErrorSystemDriverMismatch", Meaning("runtime", "nvidia-driver-mismatch")),
    804: ("cudaErrorCompatNotSupportedOnDevice", Meaning("runtime", "nvidia-driver-mismatch")),
    999: ("cudaErrorUnknown", Meaning("kernel-driver", "nvidia-uvm-broken")),
}
# The same errors by name (runtime cudaError*, driver CUDA_ERROR_*), for lines without a number.
CUDA_NAMES: dict[str, Meaning] = {
    **{name.lower(): meaning for name, meaning in CUDA_CODES.values()},
    "cuda_error_out_of_memory": Meaning("scheduler", "vram-insufficient"),
    "cuda_error_not_initialized": Meaning("kernel-driver", "other"),
    "cudaerrorinitializationerror": Meaning("kernel-driver", "other"),
    "cuda_error_stub_library": Meaning("runtime", "nvidia-no-driver"),
    "cuda_error_no_device": Meaning("kernel-driver", "nvidia-no-driver"),
    "cuda_error_invalid_device": Meaning("discovery", "env-forces-cpu"),
    "cuda_error_no_binary_for_gpu": Meaning("ollama-backend", "gpu-too-old"),
    "cuda_error_unsupported_ptx_version": Meaning("runtime", "nvidia-driver-too-old"),
    "cuda_error_system_not_ready": Meaning("kernel-driver", "other"),
    "cuda_error_system_driver_mismatch": Meaning("runtime", "nvidia-driver-mismatch"),
    "cuda_error_compat_not_supported_on_device": Meaning("runtime", "nvidia-driver-mismatch"),
    "cuda_error_unknown": Meaning("kernel-driver", "nvidia-uvm-broken"),
    "cudaerrorinsufficientdriver": Meaning("runtime", "nvidia-driver-too-old"),
}
# cudaGetErrorString's sentences for the same errors (what ggml's CUDA_CHECK prints).
CUDA_SENTENCES: tuple[tuple[str, int], ...] = (
    ("driver version is insufficient", 35),
    ("no kernel image is available", 209),
    ("no cuda-capable device is detected", 100),
    ("no nvidia devices detected", 100),  # Ollama's own words for a libcuda with 0 devices
    ("forward compatibility was attempted", 804),
    ("unsupported display driver / cuda driver combination", 803),
    ("system not yet initialized", 802),
    ("stub library", 34),
    ("unsupported ptx version", 222),
    ("ptx jit compiler library not found", 221),
    ("out of memory", 2),
    ("initialization error", 3),
    ("unknown error", 999),
)
# nvmlReturn_t (nvml.h): what `Failed to initialize NVML: ...` and Ollama's NVML calls report.
NVML_CODES: dict[int, tuple[str, Meaning]] = {
    4: ("NVML_ERROR_NO_PERMISSION", Meaning("device-access", "device-permissions")),
    9: ("NVML_ERROR_DRIVER_NOT_LOADED", Meaning("kernel-driver", "nvidia-no-driver")),
    12: ("NVML_ERROR_LIBRARY_NOT_FOUND", Meaning("runtime", "nvidia-no-driver")),
    15: ("NVML_ERROR_GPU_IS_LOST", Meaning("kernel-driver", "other")),
    17: ("NVML_ERROR_OPERATING_SYSTEM", Meaning("kernel-driver", "other")),
    18: ("NVML_ERROR_LIB_RM_VERSION_MISMATCH", Meaning("runtime", "nvidia-driver-mismatch")),
    999: ("NVML_ERROR_UNKNOWN", Meaning("kernel-driver", "other")),
}
# NVML's own sentences for the same returns (nvmlErrorString), as nvidia-smi prints them.
NVML_SENTENCES: tuple[tuple[str, Meaning], ...] = (
    ("driver/library version mismatch", NVML_CODES[18][1]),
    ("driver not loaded", NVML_CODES[9][1]),
    ("insufficient permissions", NVML_CODES[4][1]),
    ("gpu is lost", NVML_CODES[15][1]),
    ("not found", NVML_CODES[12][1]),
)
# hipError_t (hip_runtime_api.h).
HIP_NAMES: dict[str, Meaning] = {
    "hiperrornobinaryforgpu": Meaning("ollama-backend", "rocm-gfx-unsupported"),
    "hiperrornodevice": Meaning("device-access", "other"),
    "hiperrorinsufficientdriver": Meaning("kernel-driver", "rocm-driver-too-old"),
    "hiperroroutofmemory": Meaning("scheduler", "vram-insufficient"),
    "hiperrorinvaliddevice": Meaning("discovery", "env-forces-cpu"),
    "hiperrorsharedobjectinitfailed": Meaning("runtime", "rocm-missing"),
    "hiperrornotinitialized": Meaning("runtime", "other"),
}
# hipGetErrorString's sentences (what ggml's HIP build prints as `HIP error: ...`).
HIP_SENTENCES: tuple[tuple[str, Meaning], ...] = (
    ("invalid device function", Meaning("ollama-backend", "rocm-gfx-unsupported")),
    ("no kernel image", Meaning("ollama-backend", "rocm-gfx-unsupported")),
    ("no binary for gpu", Meaning("ollama-backend", "rocm-gfx-unsupported")),
    ("out of memory", Meaning("scheduler", "vram-insufficient")),
    ("no rocm-capable device", Meaning("device-access", "other")),
)
# VkResult names (vulkan_core.h).
VK_NAMES: dict[str, Meaning] = {
    "vk_error_incompatible_driver": Meaning("runtime", "other"),
    "vk_error_initialization_failed": Meaning("runtime", "other"),
    "vk_error_out_of_device_memory": Meaning("scheduler", "vram-insufficient"),
    "vk_error_device_lost": Meaning("kernel-driver", "other"),
}

# A library the dynamic loader could not open (or a symbol it could not find in it): which link
# the library belongs to. The bundle's own libraries (libggml-*, libcudart/libcublas shipped in
# lib/ollama) missing mean the build; the vendor's mean the driver or runtime.
LIBRARY_LINKS: tuple[tuple[re.Pattern[str], Meaning], ...] = (
    (re.compile(r"libcuda\.so|nvcuda\.dll|libnvidia-ml\.so|nvml\.dll", re.I),
     Meaning("runtime", "nvidia-no-driver")),
    (re.compile(r"libamdhip64|amdhip64\w*\.dll|libhsa-runtime64|librocblas|libhipblas|"
                r"libamd_comgr|librocsolver", re.I), Meaning("runtime", "rocm-missing")),
    (re.compile(r"libvulkan\.so|vulkan-1\.dll", re.I), Meaning("runtime", "other")),
    (re.compile(r"libcudart|libcublas|libggml-(?:cuda|hip|vulkan)|cudart64|cublas64", re.I),
     Meaning("ollama-backend", "ollama-build-without-gpu")),
)


@record(frozen=True)
class Family:
    id: str
    pattern: re.Pattern[str]
    vendor: str  # nvidia, amd, vulkan, apple, any
    default: Meaning  # an error of the family whose number and name no table knows
    source: str
    failing: bool  # the component's name alone is not an error: the line must also say so


def _f(id_: str, regex: str, vendor: str, link: str, code: str, source: str,
       failing: bool = False) -> Family:
    return Family(id_, re.compile(regex, re.IGNORECASE), vendor, Meaning(link, code), source,
                  failing)


_FAILING = re.compile(r"fault|fail|error|timeout|timed out|unable|cannot|invalid|\bXid\b"
                      r"|mismatch|fallen off", re.I)


# Each pattern is one alternation of literal-led branches: linear on a line (lines are capped
# at MAX_LINE before any of this runs).
FAMILIES: tuple[Family, ...] = (
    _f("cuda", r"\b(?:cudaError\w+|CUDA_ERROR_\w+)|\bCUDA error\b|\bcuda\w* init failure: \d+"
       r"|\bcuInit\b|\bcudaSetDevice err: \d+|failed to initialize CUDA|\bnvcuda\b"
       r"|unable to load cudart|cuda driver library init failure|no nvidia devices detected",
       "nvidia", "runtime", "other",
       "ggml-org/llama.cpp ggml/src/ggml-cuda/ggml-cuda.cu (CUDA_CHECK, ggml_cuda_init); "
       "ollama/ollama@v0.11.10:discover/gpu_info_cudart.c, gpu_info_nvcuda.c"),
    _f("nvml", r"\bNVML_ERROR_\w+|Failed to initialize NVML|\bnvmlInit\w*|nvidia-smi command "
       r"failed|NVIDIA-SMI has failed", "nvidia", "kernel-driver", "other",
       "nvml.h nvmlReturn_t; ollama/ollama@v0.1.17:gpu/gpu.go (nvidia-smi probe)"),
    _f("driver-library", r"Discovered GPU libraries: \[?\]|Unable to load (?:CUDA|cuda|nvml|NVML)"
       r" management library|no GPU management library", "nvidia", "runtime", "nvidia-no-driver",
       "ollama/ollama@v0.1.29:gpu/gpu.go (the NVML search that found no library)"),
    _f("scheduler", r"too little memory to allocate any layers|not enough (?:vram|gpu memory)"
       r"|insufficient (?:vram|gpu memory)", "any", "scheduler", "vram-insufficient",
       "ollama/ollama@v0.5.7:llm/memory.go (`gpu has too little memory to allocate any layers`)"),
    _f("nvrm", r"\bNVRM: ", "nvidia", "kernel-driver", "other",
       "the NVIDIA kernel module's log prefix (dmesg)", failing=True),
    _f("hip", r"\bhipError\w+|\bHIP error\b|\brocBLAS error\b", "amd", "runtime", "other",
       "ROCm/HIP include/hip/hip_runtime_api.h; ggml-org/llama.cpp ggml/src/ggml-cuda (HIP build)"),
    _f("amd-kernel", r"\bgcvm_l2_protection_fault|\bamdgpu_job_timedout|\bamdgpu\b|\bamdkfd\b"
       r"|\bkfd: ", "amd", "kernel-driver", "other",
       "the amdgpu/amdkfd kernel driver's messages (dmesg)", failing=True),
    _f("vulkan", r"\bVK_ERROR_\w+|\bggml_vulkan\b", "vulkan", "runtime", "other",
       "vulkan_core.h VkResult; ggml-org/llama.cpp ggml/src/ggml-vulkan/ggml-vulkan.cpp",
       failing=True),
    _f("metal", r"\bggml_metal\w*: ", "apple", "runtime", "other",
       "ggml-org/llama.cpp ggml/src/ggml-metal", failing=True),
    _f("load-backend", r"\bload_backend: failed to load\b|\bfailed to load backend\b", "any",
       "ollama-backend", "ollama-build-without-gpu",
       "ggml-org/llama.cpp ggml/src/ggml-backend-reg.cpp (ggml_backend_load_best)"),
    _f("loader", r"cannot open shared object file|error while loading shared libraries"
       r"|\bundefined symbol: |\bLoadLibrary\w* failed|\.dll\b.*\bnot found", "any", "runtime",
       "other", "glibc ld.so (dlopen errors); Windows LoadLibrary"),
)

_CODE_NUMBER = re.compile(r"(?:init failure|err|error|code|failure)[:= ]{1,3}(-?\d{1,4})\b", re.I)
_NAME = re.compile(r"\b(cudaError\w+|CUDA_ERROR_\w+|NVML_ERROR_\w+|hipError\w+|VK_ERROR_\w+)")
_SYMBOL = re.compile(r"undefined symbol: (\w{1,128})")
# Who provides a symbol, by its prefix: the CUDA driver API (libcuda: cuInit, cuCtxCreate_v3)
# is the driver's; cuBLAS and the runtime API are CUDA's runtime libraries (a foreign or older
# toolkit's resolved before Ollama's bundled one); HIP and rocBLAS are ROCm's.
SYMBOL_OWNERS: tuple[tuple[re.Pattern[str], Meaning], ...] = (
    (re.compile(r"cu[A-Z]"), Meaning("runtime", "nvidia-driver-too-old")),
    (re.compile(r"cublas|cudart|cuda[A-Z]|cusparse|cufft|curand"),
     Meaning("runtime", "cuda-runtime-mismatch")),
    (re.compile(r"hip|rocblas|hsa_|amd_comgr"), Meaning("runtime", "rocm-missing")),
)
_LOADER_REASON = re.compile(r"cannot open shared object file|undefined symbol|not found", re.I)
_LIBRARY = re.compile(r"([\w.+-]{1,128}\.(?:so(?:\.[\w.]{1,32})?|dll))\b")


def match(text: str) -> Family | None:
    """The first family whose pattern the (trusted) text matches, as an error."""
    for family in FAMILIES:
        if family.pattern.search(text):
            if family.failing and not _FAILING.search(text):
                continue
            return family
    return None


def meaning(family: Family, text: str) -> tuple[Meaning, str]:
    """What this family's error says, from its name, its number or the library it names; with a
    short label of what decided it (the name, `code N`, the library)."""
    name = _NAME.search(text)
    if name:
        key = name.group(1).lower()
        for table in (CUDA_NAMES, HIP_NAMES, VK_NAMES):
            if key in table:
                return table[key], name.group(1)
        nvml = {n.lower(): m for n, m in NVML_CODES.values()}
        if key in nvml:
            return nvml[key], name.group(1)
    symbol = _SYMBOL.search(text)
    if symbol and family.id in ("load-backend", "loader"):
        # a library loaded but lacks a symbol: whoever should provide it is the wrong version
        # (the referencing library, often Ollama's own libggml-*, is not the one at fault)
        for pattern, found in SYMBOL_OWNERS:
            if pattern.match(symbol.group(1)):
                return found, f"undefined symbol {symbol.group(1)}"
    if family.id in ("load-backend", "loader"):
        # the library that could not be opened is the last one named before the loader's reason
        cut = _LOADER_REASON.search(text)
        libs = _LIBRARY.findall(text[: cut.start()] if cut else text)
        for lib in reversed(libs):
            for pattern, found in LIBRARY_LINKS:
                if pattern.search(lib):
                    return found, lib
    if family.id == "hip":
        lower = text.lower()
        for sentence, found in HIP_SENTENCES:
            if sentence in lower:
                return found, sentence
    if family.id == "nvrm" and "api mismatch" in text.lower():
        return Meaning("runtime", "nvidia-driver-mismatch"), "NVRM: API mismatch"
    if family.id == "nvml":
        lower = text.lower()
        for sentence, found in NVML_SENTENCES:
            if sentence in lower:
                return found, sentence
    if family.id == "cuda":
        lower = text.lower()
        for sentence, code in CUDA_SENTENCES:
            if sentence in lower:
                return CUDA_CODES[code][1], f"{CUDA_CODES[code][0]} ({code})"
    number = _CODE_NUMBER.search(text)
    if number and family.id == "cuda":
        code = int(number.group(1))
        if code in CUDA_CODES:
            return CUDA_CODES[code][1], f"{CUDA_CODES[code][0]} ({code})"
    if number and family.id == "nvml":
        code = int(number.group(1))
        if code in NVML_CODES:
            return NVML_CODES[code][1], f"{NVML_CODES[code][0]} ({code})"
    return family.default, family.id
