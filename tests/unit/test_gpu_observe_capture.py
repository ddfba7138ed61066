"""A live host's diagnosis says where the model ran from observation, on a real GPU.

tests/fixtures/gpu-observe/capture.sh ran `OGF_OBSERVE=generate sh ollama_gpu_fix/probe.sh`
(the one command fix_gpu.py runs first) on the device machine: an NVIDIA H100 80GB HBM3,
driver 580.159.04, no systemd (log.txt), with ollama_gpu_double.py (the H200 fixture's test
double: its runner child holds the weights in real GPU memory) beside an unrelated process that
holds 512 MiB. gpu.txt: the runner on the GPU. lie.txt: the runner on the CPU while /api/ps
claims the model is in VRAM. The probe streams are diagnosed here as the fix would.
"""

from __future__ import annotations

from pathlib import Path

from ollama_gpu_fix.bundle import split_stream
from ollama_gpu_fix.parsers import build_snapshot
from ollama_gpu_fix.rules import diagnose

CAPTURE = Path(__file__).resolve().parents[1] / "fixtures" / "gpu-observe"


def _diagnose(name: str):  # noqa: ANN202
    text = (CAPTURE / name).read_text()
    snapshot = build_snapshot(split_stream(text.splitlines(keepends=True)))
    return snapshot, diagnose(snapshot)


def test_the_runner_holding_gpu_memory_is_observed_use() -> None:
    snapshot, d = _diagnose("gpu.txt")
    assert snapshot.observation is not None and snapshot.observation.mode == "generate"
    assert snapshot.observation.runner_on_gpu is True
    assert d.placement["where"] == "gpu" and d.placement["rank"] == "observed"
    assert d.placement["sources"][0]["source"] == "observation"
    assert d.primary == "ok-gpu"
    assert {link["state"] for link in d.chain} == {"ok"}


def test_api_ps_claiming_vram_without_a_runner_on_the_gpu_is_cpu() -> None:
    snapshot, d = _diagnose("lie.txt")
    obs = snapshot.observation
    assert obs is not None and obs.on_gpu == 1.0  # what /api/ps claimed
    assert obs.runner_on_gpu is False  # what the GPU's own process list shows
    assert "ran on the CPU" in obs.summary
    assert d.placement["where"] == "cpu" and d.placement["rank"] == "observed"
    assert d.primary not in ("ok-gpu", "not-enough-evidence")
