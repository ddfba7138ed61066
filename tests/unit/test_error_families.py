"""knowledge/error_families.py: an error lands on its link by component, name, number or the
library it could not load, whatever the sentence around it; the code tables are upstream's."""

from __future__ import annotations

import pynvml
import pytest

from ollama_gpu_fix.findings import CODES
from ollama_gpu_fix.knowledge import error_families as fam


@pytest.mark.parametrize(
    ("text", "link", "code"),
    [
        ("cudart init failure: 35", "runtime", "nvidia-driver-too-old"),
        ("CUDA error: CUDA driver version is insufficient for CUDA runtime version",
         "runtime", "nvidia-driver-too-old"),
        ("ggml_cuda_init: failed to initialize CUDA: no CUDA-capable device is detected",
         "kernel-driver", "nvidia-no-driver"),
        ("CUDA error: no kernel image is available for execution on the device",
         "ollama-backend", "gpu-too-old"),
        ("cuda driver library init failure: 999", "kernel-driver", "nvidia-uvm-broken"),
        ("cuInit failed: CUDA_ERROR_SYSTEM_DRIVER_MISMATCH", "runtime", "nvidia-driver-mismatch"),
        ("some future wording: cudaErrorCompatNotSupportedOnDevice", "runtime",
         "nvidia-driver-mismatch"),
        ("Failed to initialize NVML: Driver/library version mismatch", "runtime",
         "nvidia-driver-mismatch"),
        ("rocBLAS error: hipErrorNoBinaryForGpu: Unable to find code object", "ollama-backend",
         "rocm-gfx-unsupported"),
        ("load_backend: failed to load /opt/ollama/lib/ollama/cuda_v13/libggml-cuda.so: "
         "libcuda.so.1: cannot open shared object file: No such file or directory",
         "runtime", "nvidia-no-driver"),
        ("/usr/lib/ollama/libggml-hip.so: libamdhip64.so.6: cannot open shared object file",
         "runtime", "rocm-missing"),
        ("symbol lookup error: libcuda.so.1: undefined symbol: cuCtxCreate_v3", "runtime",
         "nvidia-driver-too-old"),
        ("amdgpu 0000:c2:00.0: amdgpu: [gfxhub] page fault (src_id:0 ring:153)",
         "kernel-driver", "other"),
        ("CUDA error 9999 at ggml-cuda.cu:70: a wording no table knows", "runtime", "other"),
    ],
)
def test_an_error_lands_on_its_link(text: str, link: str, code: str) -> None:
    family = fam.match(text)
    assert family is not None
    meaning, _label = fam.meaning(family, text)
    assert (meaning.link, meaning.code) == (link, code)


@pytest.mark.parametrize("text", [
    "load_backend: loaded CUDA backend from /usr/lib/ollama/cuda_v12/libggml-cuda.so",
    "ggml_vulkan: Found 1 Vulkan devices:",
    "amdgpu 0000:03:00.0: amdgpu: SMU is initialized successfully!",
])
def test_a_component_speaking_without_an_error_is_no_error(text: str) -> None:
    assert fam.match(text) is None


def test_nvml_table_matches_nvidia_ml_py() -> None:
    for number, (name, _meaning) in fam.NVML_CODES.items():
        assert getattr(pynvml, name) == number


def test_every_meaning_is_a_link_and_a_failure_code() -> None:
    tables = [m for _, m in fam.CUDA_CODES.values()] + list(fam.CUDA_NAMES.values())
    tables += [m for _, m in fam.NVML_CODES.values()] + list(fam.HIP_NAMES.values())
    tables += list(fam.VK_NAMES.values()) + [m for _, m in fam.LIBRARY_LINKS]
    tables += [f.default for f in fam.FAMILIES]
    for meaning in tables:
        assert meaning.link in fam.LINKS
        assert meaning.code in CODES


def test_every_family_cites_its_source() -> None:
    for family in fam.FAMILIES:
        assert family.source


def test_the_nvidia_kernel_modules_own_lines_are_errors_only_when_they_say_so() -> None:
    assert fam.match("NVRM: loading NVIDIA UNIX x86_64 Kernel Module  535.183.01") is None
    xid = "NVRM: Xid (PCI:0000:01:00): 79, pid=1234, GPU has fallen off the bus."
    assert fam.match(xid) is not None
    mismatch = "NVRM: API mismatch: the client has the version 550.90.07, but this kernel module"
    found = fam.match(mismatch)
    assert found and fam.meaning(found, mismatch)[0].code == "nvidia-driver-mismatch"


def test_hip_sentences_land_like_their_names() -> None:
    text = "ggml_cuda_compute_forward: HIP error: invalid device function"
    found = fam.match(text)
    assert found and fam.meaning(found, text)[0].code == "rocm-gfx-unsupported"


def test_an_undefined_symbol_blames_its_provider_not_the_library_that_asked() -> None:
    """A CUDA 11 cuBLAS resolved before Ollama's own: libggml-cuda.so is not the culprit."""
    text = ("failure during GPU discovery detail=/usr/local/lib/ollama/cuda_v12/libggml-cuda.so:"
            " undefined symbol: cublasLtMatmulAlgoGetHeuristic, version libcublasLt.so.11")
    found = fam.match(text)
    assert found and fam.meaning(found, text)[0].code == "cuda-runtime-mismatch"
