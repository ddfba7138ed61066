"""The verification on a real GPU: what tests/fixtures/h200/capture.sh recorded on an NVIDIA
H200 (driver 580.159.04, no systemd) with ollama_gpu_double.py's runner holding real GPU
memory next to an unrelated GPU process.

gpu/: the runner on the GPU; lie/: the runner on the CPU while /api/ps claims VRAM. Each has
verify.sh's raw output, NVML's process list (nvml_processes() there), the probe stream and
the JSON report deploys/verify.py wrote on the device. The verdict is re-made here from the
raw output, and the systemd case (MainPID) is played on the same real process tree.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ollama_gpu_fix.bundle import split_stream
from ollama_gpu_fix.parsers import build_snapshot
from ollama_gpu_fix.verdict import GpuProcess, verdict

CAPTURE = Path(__file__).resolve().parents[1] / "fixtures" / "h200" / "capture"
MODEL = "ogf-h200:latest"
RUNNER, SERVER, FOREIGN = 2318, 1961, 1861  # pids in gpu/verify.txt's ancestry


def _read(case: str, name: str) -> str:
    return (CAPTURE / case / name).read_text()


def _nvml(case: str) -> list[GpuProcess]:
    return [GpuProcess(**p) for p in json.loads(_read(case, "nvml.json"))]


def _with_mainpid(output: str, pid: int) -> str:
    """The same capture as systemd would have it: `server` names the unit's MainPID."""
    return output.replace("mainpid=\n", f"mainpid={pid}\n", 1)


def test_runner_on_the_h200_passes_and_only_the_runner_counts() -> None:
    v = verdict(_read("gpu", "verify.txt"), MODEL, nvml=_nvml("gpu"))
    assert v.passed, v.reason
    assert v.gpu_percent == 100 and v.processor == "100% GPU"
    assert "runner holds GPU memory" in v.reason
    by_pid = {p.pid: p for p in v.processes}
    assert set(by_pid) == {RUNNER, FOREIGN}  # NVML's duplicate of each counted once
    assert by_pid[RUNNER].runner and not by_pid[FOREIGN].runner
    assert by_pid[RUNNER].used_mib and by_pid[RUNNER].used_mib > 1024  # the 1 GiB weights


def test_under_systemd_only_a_child_of_mainpid_is_ollamas_runner() -> None:
    output = _read("gpu", "verify.txt")
    assert verdict(_with_mainpid(output, SERVER), MODEL).passed
    elsewhere = verdict(_with_mainpid(output, 4_000_000), MODEL)
    assert not elsewhere.passed  # an `ollama` process outside the unit is not the service's
    assert "no Ollama process holds GPU memory" in elsewhere.reason


def test_forged_api_ps_on_the_h200_fails_with_the_reason() -> None:
    v = verdict(_read("lie", "verify.txt"), MODEL, nvml=_nvml("lie"))
    assert not v.passed
    assert v.reason == ("/api/ps says 100% GPU but no Ollama process holds GPU memory "
                        "(1 GPU process(es) seen)")


@pytest.mark.parametrize("case,result", [("gpu", "verified"), ("lie", "failed")])
def test_reports_written_on_the_device(case: str, result: str) -> None:
    report = json.loads(_read(case, "reports/local.json"))
    assert report["mode"] == "verify" and report["result"] == result
    said = _read(case, "pyinfra.txt")
    assert report["verification"]["reason"] in said  # the one line the user reads


def test_device_report_baseline_is_slower_than_the_gpu() -> None:
    v = json.loads(_read("gpu", "reports/local.json"))["verification"]
    assert v["cpu_tokens_per_s"] and v["tokens_per_s"] > v["cpu_tokens_per_s"]


def test_probe_on_the_h200_finds_the_gpu_driver_and_the_trusted_server() -> None:
    snapshot = build_snapshot(split_stream(_read("gpu", "probe.txt").splitlines()))
    assert snapshot.nvidia_smi is not None and snapshot.nvidia_kernel is not None
    (gpu,) = snapshot.nvidia_smi.gpus
    assert gpu.name == "NVIDIA H200" and gpu.memory_total_mib == 143771
    assert snapshot.nvidia_smi.driver_version == snapshot.nvidia_kernel.version == "580.159.04"
    server = snapshot.process
    assert server is not None and server.pid == SERVER
    assert server.trusted and server.trust == "uid" and not snapshot.foreign_processes
    assert snapshot.installed_models == {MODEL: 1073741824}
