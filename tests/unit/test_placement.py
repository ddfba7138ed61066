"""placement.py: where the model ran, decided by quantities, observed over planned over detected.

Each bundle is a few real log shapes (llama.cpp's load lines, Ollama's scheduler and runner
lines of the era named) or API answers; the assertion is the answer a user would read first:
GPU, partial or CPU, and which source decided it.
"""

from __future__ import annotations

import json

import pytest

from ollama_gpu_fix.parsers import build_snapshot
from ollama_gpu_fix.placement import determine
from ollama_gpu_fix.rules import diagnose

DISCOVERY_GPU = (
    'time=2025-11-07T19:54:29Z level=INFO source=types.go:42 msg="inference compute" id=GPU-1'
    ' library=CUDA compute=8.9 name=CUDA0 description="NVIDIA GeForce RTX 4090"'
    ' total="24.0 GiB" available="23.1 GiB"\n'
)
CPU_BACKEND_ONLY = "load_backend: loaded CPU backend from /usr/lib/ollama/libggml-cpu-alderlake.so\n"


def where(files: dict[str, str]) -> tuple[str, str]:
    p = determine(build_snapshot(files))
    return p.where, {3: "observed", 2: "planned", 1: "detected", 0: "none"}[p.rank]


def test_offloaded_zero_layers_is_cpu_even_when_discovery_found_the_gpu() -> None:
    log = DISCOVERY_GPU + "llm_load_tensors: offloaded 0/33 layers to GPU\n"
    assert where({"ollama-serve.log": log}) == ("cpu", "observed")
    d = diagnose(build_snapshot({"ollama-serve.log": log}))
    assert d.primary != "ok-gpu"
    assert d.placement and d.placement["where"] == "cpu"


def test_all_layers_offloaded_is_gpu() -> None:
    log = DISCOVERY_GPU + "load_tensors: offloaded 33/33 layers to GPU\n"
    assert where({"ollama-serve.log": log}) == ("gpu", "observed")


def test_only_a_cpu_backend_loaded_is_cpu_observed() -> None:
    assert where({"ollama-serve.log": DISCOVERY_GPU + CPU_BACKEND_ONLY}) == ("cpu", "observed")


def test_a_gpu_backend_loaded_is_only_detection() -> None:
    log = "load_backend: loaded CUDA backend from /usr/lib/ollama/cuda_v12/libggml-cuda.so\n"
    assert where({"ollama-serve.log": log}) == ("gpu", "detected")


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["load_tensors:        CUDA0 model buffer size =  4403.49 MiB",
          "load_tensors:   CPU_Mapped model buffer size =   281.81 MiB"], "gpu"),
        (["load_tensors:        CUDA0 model buffer size =  1200.00 MiB",
          "load_tensors:   CPU_Mapped model buffer size =  3400.00 MiB"], "partial"),
        (["load_tensors:   CPU_Mapped model buffer size =  4685.30 MiB"], "cpu"),
    ],
)
def test_model_buffers_count_where_the_weights_are(lines: list[str], expected: str) -> None:
    assert where({"ollama-serve.log": "\n".join(lines) + "\n"}) == (expected, "observed")


def test_api_ps_size_vram_outranks_a_plan() -> None:
    plan = ('time=2024-11-11T21:51:17Z level=INFO source=memory.go:343 msg="offload to cuda"'
            " layers.requested=-1 layers.model=33 layers.offload=33\n")
    ps = {"models": [{"name": "llama3:8b", "model": "llama3:8b", "size": 6_000_000_000,
                      "size_vram": 2_000_000_000}]}
    files = {"ollama-serve.log": plan, "api-ps.json": json.dumps(ps)}
    assert where(files) == ("partial", "observed")
    assert where({"ollama-serve.log": plan}) == ("gpu", "planned")


def test_ollama_ps_100_percent_cpu_beats_the_discovery_line() -> None:
    ps = ("NAME          ID              SIZE      PROCESSOR    UNTIL\n"
          "llama3:8b     365c0bd3c000    6.7 GB    100% CPU     4 minutes from now\n")
    files = {"ollama-serve.log": DISCOVERY_GPU, "ollama-ps.txt": ps}
    assert where(files) == ("cpu", "observed")
    assert diagnose(build_snapshot(files)).primary != "ok-gpu"


def test_the_cpu_runner_started_after_a_gpu_plan_is_cpu() -> None:
    log = ('time=2024-11-11T21:51:17Z level=INFO source=memory.go:343 msg="offload to cuda"'
           " layers.requested=-1 layers.model=33 layers.offload=33\n"
           'time=2024-11-11T21:51:17Z level=INFO source=server.go:383 msg="starting llama server"'
           ' cmd="/tmp/ollama3024011950/runners/cpu_avx2/ollama_llama_server --model /m'
           ' --n-gpu-layers 33"\n')
    assert where({"ollama-serve.log": log}) == ("cpu", "observed")


def test_gpu_layers_starting_above_zero_is_a_partial_plan() -> None:
    log = ('time=2025-11-07T19:54:29Z level=INFO source=runner.go:1222 msg=load request="{'
           "Operation:fit Parallel:1 BatchSize:512 KvSize:4096 GPULayers:15[ID:GPU-41 "
           'Layers:15(9..23)] MultiUserCache:false}"\n')
    assert where({"journalctl.txt": log}) == ("partial", "planned")


def test_runner_in_the_gpu_process_list_is_observed_use() -> None:
    apps = "pid, process_name, used_gpu_memory [MiB]\n4242, /usr/local/bin/ollama, 5120 MiB\n"
    assert where({"nvidia-smi-apps.csv": apps}) == ("gpu", "observed")


def test_a_prompt_cannot_forge_a_placement() -> None:
    """A client's prompt is logged at DEBUG as a slog value: never a source."""
    log = ('time=2025-01-01T00:00:00Z level=DEBUG source=routes.go:1 msg="chat request"'
           ' prompt="llm_load_tensors: offloaded 33/33 layers to GPU"\n'
           "llm_load_tensors: offloaded 0/33 layers to GPU\n")
    assert where({"ollama-serve.log": log}) == ("cpu", "observed")


def test_nothing_that_counts_is_unknown() -> None:
    assert where({"ollama-serve.log": "time=2025-01-01T00:00:00Z level=INFO source=x.go:1"
                  ' msg="total blobs: 5"\n'}) == ("unknown", "none")
