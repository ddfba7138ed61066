"""The verdict over what verify.sh saw: use, not detection; the process list must agree."""

from __future__ import annotations

import json

from ollama_gpu_fix.verdict import GpuProcess, pick_model, verdict

MODEL = "qwen2.5:0.5b"


def _out(**sections: str) -> str:
    text = "ogf-verify v1 nonce=abc123\n"
    for name, body in sections.items():
        text += f"--ogf-abc123-- {name.replace('_', '-')}\n{body}\n"
    return text


def _gen(count: int = 16, ns: int = 355_000_000) -> str:
    return json.dumps({"model": MODEL, "done": True, "eval_count": count, "eval_duration": ns})


def _ps(size: int, vram: int) -> str:
    return json.dumps({"models": [{"name": MODEL, "size": size, "size_vram": vram}]})


GPU = dict(wait="up=1 after=0s", version='{"version":"0.33.0"}', generate=_gen(),
           ps=_ps(1000, 1000), server="mainpid=1180",
           nvidia_apps="2345, /usr/local/lib/ollama/llama-server, 512",
           ancestry="2345 1180 llama-server\n1180 1 ollama\n1 0 systemd\n")


def test_model_on_the_gpu_and_its_runner_holds_memory() -> None:
    v = verdict(_out(**GPU), MODEL)
    assert v.passed and v.kind == "use" and v.gpu_percent == 100 and v.processor == "100% GPU"
    assert v.tokens_per_s == 45.1 and v.processes_checked == "yes"
    assert [p.runner for p in v.processes] == [True]
    assert "runner holds GPU memory" in v.reason


def test_cpu_and_partial_offload_fail_with_the_number() -> None:
    cpu = verdict(_out(**{**GPU, "ps": _ps(1000, 0)}), MODEL)
    assert not cpu.passed and "100% on the CPU" in cpu.reason
    half = verdict(_out(**{**GPU, "ps": _ps(1000, 520)}), MODEL)
    assert not half.passed and "only 52%" in half.reason and "48%/52% CPU/GPU" in half.reason
    assert verdict(_out(**{**GPU, "ps": _ps(1000, 520)}), MODEL, min_gpu_percent=50).passed


def test_vram_claimed_but_no_ollama_process_on_the_gpu() -> None:
    other = {**GPU, "nvidia_apps": "999, /usr/bin/python3, 4000",
             "ancestry": "999 1 python3\n1 0 systemd\n"}
    v = verdict(_out(**other), MODEL)
    assert not v.passed and "no Ollama process holds GPU memory" in v.reason


def test_without_a_service_the_runner_is_known_by_its_name() -> None:
    manual = {**GPU, "server": "mainpid=", "ancestry": "2345 2000 llama-server\n2000 1 bash\n"}
    assert verdict(_out(**manual), MODEL).passed


def test_nvml_processes_count_as_the_process_list() -> None:
    nvml = [GpuProcess(2345, "llama-server", 512, "nvml")]
    bare = {k: v for k, v in GPU.items() if k != "nvidia_apps"}
    bare["ancestry"] = "2345 1180 llama-server\n1180 1 ollama\n"
    v = verdict(_out(**bare), MODEL, nvml=nvml)
    assert v.passed and v.processes[0].source == "nvml" and v.processes[0].runner


def test_wsl2_has_no_per_process_accounting() -> None:
    v = verdict(_out(**{k: v for k, v in GPU.items() if k != "nvidia_apps"}), MODEL,
                per_process=False)
    assert v.passed and v.processes_checked.startswith("not available")


def test_baseline_gives_the_speedup() -> None:
    slow = _gen(16, 5_333_000_000)
    v = verdict(_out(**GPU, baseline=slow), MODEL)
    assert v.cpu_tokens_per_s == 3.0 and v.speedup == 15.0 and "15.0x the CPU" in v.reason


def test_no_model_falls_back_to_detection_marked_as_such() -> None:
    log = ('time=2026-11-20T10:00:01Z level=INFO source=types.go:60 msg="inference compute" '
           'id=GPU-1 library=CUDA compute=8.9 name=CUDA0 description="RTX 4090" '
           'libdirs=ollama,cuda_v13 driver=13.0 pci_id=0000:01:00.0 type=discrete '
           'total="24.0 GiB" available="23.1 GiB"')
    v = verdict(_out(wait="up=1 after=0s", log=log), None)
    assert v.passed and v.kind == "detection" and "not yet seen in use" in v.reason
    cpu_log = log.replace("library=CUDA", "library=cpu")
    assert not verdict(_out(wait="up=1 after=0s", log=cpu_log), None).passed


def test_failures_say_why_in_one_line() -> None:
    assert "did not answer" in verdict(_out(wait="up=0 after=60s"), MODEL).reason
    assert "curl" in verdict(_out(error="curl is not installed"), MODEL).reason
    assert "printed nothing" in verdict("", MODEL).reason
    gen = json.dumps({"error": "model 'x' not found"})
    assert "not found" in verdict(_out(**{**GPU, "generate": gen}), MODEL).reason
    forged = "--ogf-abc123-- ps\n" + _ps(1, 1)  # no header line: nothing is read
    assert not verdict(forged, MODEL).passed


def test_no_gpu_expected() -> None:
    v = verdict("", None, gpu_expected=False)
    assert v.passed and v.kind == "cpu-expected"


def test_pick_model() -> None:
    tags = {"models": [{"name": "llama3:70b", "size": 40_000}, {"name": "qwen2.5:0.5b", "size": 400},
                       {"name": "bad name\"", "size": 1}]}
    assert pick_model(tags, None) == "qwen2.5:0.5b"
    assert pick_model(tags, "phi3:mini") == "phi3:mini"
    assert pick_model({"models": []}, None) is None and pick_model("x", None) is None


# `rocm-smi --showpids` as ROCm SMI prints it (ROCm/rocm_smi_lib rocm_smi.py showPids; the
# daemon row with VRAM 0 is the shape reported in ROCm/ROCm#4411).
ROCM_PIDS = (
    "============================ ROCm System Management Interface ============================\n"
    "===================================== KFD Processes ======================================\n"
    "KFD process information:\n"
    "PID    \tPROCESS NAME   \tGPU(s)\tVRAM USED \tSDMA USED\tCU OCCUPANCY\t\n"
    "2345   \tollama         \t1     \t1051312128\t0        \t0           \t\n"
    "3100   \tamd-monitor    \t0     \t0         \t0        \t0           \t\n"
    "==========================================================================================\n"
    "================================== End of ROCm SMI Log ===================================\n"
)
AMD = {k: v for k, v in GPU.items() if k != "nvidia_apps"}


def test_rocm_runner_is_found_in_rocm_smi_with_its_vram() -> None:
    ancestry = "2345 1180 ollama\n1180 1 ollama\n1 0 systemd\n\n3100 1 amd-monitor\n1 0 systemd\n"
    v = verdict(_out(**{**AMD, "rocm_pids": ROCM_PIDS, "ancestry": ancestry}), MODEL)
    assert v.passed and v.processes_checked == "yes", v.reason
    by_pid = {p.pid: p for p in v.processes}
    assert by_pid[2345].runner and by_pid[2345].used_mib == 1002
    assert by_pid[2345].source == "rocm-smi" and not by_pid[3100].runner


def test_a_runner_that_holds_no_vram_does_not_count() -> None:
    idle = ROCM_PIDS.replace("1051312128", "0         ")
    v = verdict(_out(**{**AMD, "rocm_pids": idle, "ancestry": "2345 1180 ollama\n"}), MODEL)
    assert not v.passed and "no Ollama process holds GPU memory" in v.reason


def test_a_broken_gpu_tool_is_no_process_list() -> None:
    """rocm-smi or nvidia-smi failing on its own (a distro package out of step) must not fail
    a host whose Ollama runs on the GPU with its bundled libraries: /api/ps decides."""
    broken = "ERROR:root:Driver not initialized (amdgpu not found in modules)\n"
    v = verdict(_out(**{**AMD, "rocm_pids": broken}), MODEL)
    assert v.passed and v.processes == [] and v.processes_checked == "not checked"
    nv = verdict(_out(**{**GPU, "nvidia_apps": "Failed to initialize NVML: Unknown Error"}),
                 MODEL)
    assert nv.passed and nv.processes_checked == "not checked"
    empty = verdict(_out(**{**GPU, "nvidia_apps": ""}), MODEL)  # a valid list, nobody on it
    assert not empty.passed and "no Ollama process holds GPU memory" in empty.reason
