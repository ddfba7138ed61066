"""rules/path.py: the chain of links, the first broken one primary, and the mechanisms that
decide a link from quantities and component errors instead of one release's sentence."""

from __future__ import annotations

from ollama_gpu_fix.parsers import build_snapshot
from ollama_gpu_fix.rules import diagnose

SMI_580 = (
    "| NVIDIA-SMI 580.95.05              Driver Version: 580.95.05      CUDA Version: 13.0     |\n"
)
QUERY_V100 = (
    "index, name, driver_version, memory.total [MiB], memory.used [MiB], compute_cap,"
    " pci.bus_id, uuid\n"
    "0, Tesla V100-SXM2-32GB, 535.54.03, 32768 MiB, 0 MiB, 7.0, 00000000:2D:00.0, GPU-1\n"
)
PS_BIG = ("NAME                   ID              SIZE      PROCESSOR    UNTIL\n"
          "deepseek-r1:671b-8k    d9bfc20ebf89    496 GB    100% CPU     Forever\n")


def states(d) -> dict[str, str]:  # noqa: ANN001
    return {link["link"]: link["state"] for link in d.chain}


def test_a_model_larger_than_all_vram_breaks_the_scheduler_link() -> None:
    d = diagnose(build_snapshot({"nvidia-smi-query.csv": QUERY_V100, "ollama-ps.txt": PS_BIG}))
    assert d.primary == "vram-insufficient"
    assert states(d)["scheduler"] == "broken"
    assert states(d)["hardware"] == "ok"


def test_cpu_runner_with_a_gpu_present_is_a_build_without_gpu() -> None:
    log = ("CUDA driver version: 13.0\ndevice count 1\n"
           "load_backend: loaded CPU backend from /usr/lib/ollama/libggml-cpu-alderlake.so\n")
    d = diagnose(build_snapshot({"journalctl.txt": log, "nvidia-smi.txt": SMI_580}))
    assert d.primary == "ollama-build-without-gpu"
    assert states(d)["ollama-backend"] == "broken"


def test_cpu_runner_after_discovery_chose_the_cpu_is_not_the_build() -> None:
    """0.1.x starts its CPU runner because discovery found nothing: the build is innocent."""
    log = ("2023/12/22 00:17:24 routes.go:915: warning: gpu support may not be enabled, check"
           " that you have installed GPU drivers: nvidia-smi command failed\n"
           "2023/12/22 00:13:33 llama.go:407: skipping accelerated runner because num_gpu=0\n")
    d = diagnose(build_snapshot({"ollama-serve.log": log}))
    assert d.primary != "ollama-build-without-gpu"
    assert d.primary not in ("ok-gpu", "not-enough-evidence")


def test_the_missing_driver_library_is_named_from_the_loader_error() -> None:
    log = ("0.00.006.542 E load_backend: failed to load /opt/ollama/lib/ollama/cuda_v13/"
           "libggml-cuda.so: libcuda.so.1: cannot open shared object file: No such file or"
           " directory\n")
    d = diagnose(build_snapshot({"ollama-serve.log": log}))
    assert d.primary == "nvidia-no-driver"
    assert any("libcuda.so.1" in line.text for line in d.primary_finding.evidence)


def test_the_same_error_in_a_container_is_the_hand_over() -> None:
    log = ("ollama  | time=2024-09-17T15:04:08Z level=INFO source=gpu.go:560 msg=\"no nvidia"
           ' devices detected" library=/usr/lib/x86_64-linux-gnu/libcuda.so.550.107.02\n')
    d = diagnose(build_snapshot({"ollama-serve.log": log}))
    assert d.primary == "container-no-gpu-access"


def test_off_the_gpu_with_no_broken_link_names_the_first_unknown_one() -> None:
    log = ('time=2025-01-01T00:00:00Z level=INFO source=types.go:42 msg="inference compute"'
           ' id=GPU-1 library=CUDA compute=8.9 name=CUDA0 description="NVIDIA GeForce RTX 4090"'
           ' total="24.0 GiB" available="23.1 GiB"\n'
           "llm_load_tensors: offloaded 0/33 layers to GPU\n"
           'time=2025-01-01T00:00:01Z level=INFO source=server.go:1 msg="total memory"'
           ' size="30.0 GiB"\n')
    d = diagnose(build_snapshot({"ollama-serve.log": log, "nvidia-smi.txt": SMI_580}))
    assert d.primary not in ("ok-gpu", "not-enough-evidence")
    finding = d.primary_finding
    assert finding.severity == "error" and finding.evidence


def test_a_gpu_in_use_proves_every_link() -> None:
    log = ('time=2025-01-01T00:00:00Z level=INFO source=types.go:42 msg="inference compute"'
           ' id=GPU-1 library=CUDA compute=8.9 name=CUDA0 description="NVIDIA GeForce RTX 4090"'
           ' total="24.0 GiB" available="23.1 GiB"\n'
           "load_tensors: offloaded 29/29 layers to GPU\n")
    d = diagnose(build_snapshot({"ollama-serve.log": log, "nvidia-smi.txt": SMI_580}))
    assert d.primary == "ok-gpu"
    assert set(states(d).values()) == {"ok"}


def test_an_error_of_a_vendor_not_in_the_machine_is_ollamas_routine_probe() -> None:
    """Ollama probes CUDA on every host: its complaint on an AMD machine is no NVIDIA fault."""
    log = ('time=2025-01-01T00:00:00Z level=INFO source=amd_linux.go:1 msg="amdgpu is supported"'
           " gpu=0 gpu_type=gfx1100\n"
           "time=2025-01-01T00:00:00Z level=INFO source=gpu.go:1 msg=\"no nvidia devices"
           ' detected" library=/usr/lib/x86_64-linux-gnu/libcuda.so.550.1\n'
           "load_tensors: offloaded 49/49 layers to GPU\n")
    d = diagnose(build_snapshot({"ollama-serve.log": log}))
    assert d.primary == "ok-gpu"


def test_an_old_driver_beside_an_image_tag_is_too_old_for_that_release() -> None:
    """No server log names the version; the image tag the container runs does."""
    files = {
        "docker-run.txt": "$ docker run -d --gpus=all -p 11434:11434 ollama/ollama:0.12.3\n",
        "nvidia-smi.txt": "| NVIDIA-SMI 470.256.02   Driver Version: 470.256.02   CUDA Version:"
                          " 11.4     |\n",
        "ollama-serve.log": 'time=2025-10-01T00:00:00Z level=INFO source=types.go:60 msg="inference'
                            ' compute" id=cpu library=cpu compute="" name=cpu total="31.2 GiB"\n',
    }
    d = diagnose(build_snapshot(files))
    assert d.primary == "nvidia-driver-too-old"  # --gpus=all: the hand-over was done
