"""The probe's output from a real NVIDIA H100 machine (tests/fixtures/h100, captured by capture.sh).

The machine: Ubuntu 24.04, driver 580, CUDA 13.0, no systemd, no Ollama. The raw stream must
hold that evidence, the diagnosis of it must say so, and the committed JSON report (regenerated
by regen.py when parsers change) must show the same facts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ollama_gpu_fix import report
from ollama_gpu_fix.bundle import read_bundle, split_stream
from ollama_gpu_fix.cli import main as cli_main
from ollama_gpu_fix.parsers import build_snapshot
from ollama_gpu_fix.rules import diagnose

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "h100"


@pytest.fixture(scope="module")
def sections() -> dict[str, str]:
    return split_stream((FIXTURE / "probe.txt").read_text(encoding="utf-8").splitlines())


@pytest.fixture(scope="module")
def summary(sections: dict[str, str]) -> dict:
    return report.summary(build_snapshot(sections))


def assert_h100_facts(s: dict) -> None:
    assert [g["name"] for g in s["nvidia_gpus"]] == ["NVIDIA H100 80GB HBM3"]
    assert re.fullmatch(r"580\.\d+\.\d+", s["nvidia_driver"] or ""), s["nvidia_driver"]
    assert s["cuda_driver_api"] == "13.0"
    assert s["nvidia_gpus"][0]["compute_cap"] == "9.0"
    assert s["systemd"] is False
    assert s["ollama_installed"] is False
    assert any(g["vendor"] == "NVIDIA" and g["device_id"] == "2330" for g in s["gpus"])


def test_raw_stream_holds_the_evidence(sections: dict[str, str]) -> None:
    """Independent of the parsers: the facts are in the probe output itself."""
    assert "NVIDIA H100 80GB HBM3" in sections["nvidia-smi-query.csv"]
    assert "Driver Version: 580." in sections["nvidia-smi.txt"]
    assert "CUDA Version: 13.0" in sections["nvidia-smi.txt"]
    assert re.search(r", 9\.0, ", sections["nvidia-smi-query.csv"])
    assert "580.159.04" in sections["proc-driver-nvidia-version.txt"]
    assert "0x10de 0x2330 0x030200 nvidia" in sections["pci-devices.txt"]
    meta = sections["probe-meta.txt"].splitlines()
    assert "systemd=no" in meta
    assert "tool.ollama=" in meta
    assert "tool.systemctl=" in meta
    assert 'VERSION_ID="24.04"' in sections["os-release.txt"]
    assert "ollama-version.txt" not in sections


def test_diagnosis_of_the_fixture(sections: dict[str, str], summary: dict) -> None:
    assert_h100_facts(summary)
    assert summary["os"].startswith("Ubuntu 24.04")
    diagnosis = diagnose(build_snapshot(sections))
    assert diagnosis.primary == "ollama-not-installed"
    # a healthy H100 with a matching driver: no driver-side fault
    codes = {f.code for f in diagnosis.findings}
    assert not codes & {"nvidia-no-driver", "nvidia-driver-too-old", "nvidia-driver-mismatch"}


def test_committed_json_report_shows_the_facts() -> None:
    data = json.loads((FIXTURE / "report.json").read_text(encoding="utf-8"))
    assert {"findings", "primary", "summary", "snapshot", "host", "generated_at"} <= set(data)
    assert data["host"] == "@local"
    assert_h100_facts(data["summary"])
    assert data["primary"] == "ollama-not-installed"


def test_committed_json_report_is_current(sections: dict[str, str]) -> None:
    """Parsers or rules changed since the report was written? Run tests/fixtures/h100/regen.py."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("h100_regen", FIXTURE / "regen.py")
    assert spec and spec.loader
    regen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(regen)
    committed = json.loads((FIXTURE / "report.json").read_text(encoding="utf-8"))
    fresh = json.loads(
        report.dumps(regen.build_report((FIXTURE / "probe.txt").read_text(), committed))
    )
    for key in ("primary", "summary"):
        assert fresh[key] == committed[key], f"{key} is stale: run tests/fixtures/h100/regen.py"
    assert [f["code"] for f in fresh["findings"]] == [f["code"] for f in committed["findings"]]


def test_nvml_agrees_with_the_probe(summary: dict) -> None:
    nvml = json.loads((FIXTURE / "nvml.json").read_text(encoding="utf-8"))
    assert nvml["driver_version"] == summary["nvidia_driver"]
    assert nvml["cuda_driver_version"] == summary["cuda_driver_api"]
    (gpu,) = nvml["gpus"]
    assert gpu["name"] == summary["nvidia_gpus"][0]["name"]
    assert gpu["compute_capability"] == summary["nvidia_gpus"][0]["compute_cap"]
    assert gpu["memory_total_mib"] == summary["nvidia_gpus"][0]["memory_total_mib"]


def test_collected_bundle_reads_like_the_stream(sections: dict[str, str]) -> None:
    """`collect` on the same machine wrote the same files (a later run: timestamps differ)."""
    bundle = read_bundle(FIXTURE / "bundle").sections
    assert set(bundle) == set(sections)
    # nvidia-smi's clock, temperature and memory.used move between the two runs
    for name in ("os-release.txt", "pci-devices.txt", "probe-meta.txt", "packages.txt"):
        assert bundle[name] == sections[name], name
    assert_h100_facts(report.summary(build_snapshot(bundle)))


def test_diagnose_bundle_cli_on_the_fixture(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["diagnose-bundle", str(FIXTURE / "bundle"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert_h100_facts(data["summary"])
    assert data["primary"] == "ollama-not-installed"


def test_dev_nodes_are_read_before_nvidia_smi_runs() -> None:
    """probe-nodev.txt: the probe on the H100 with an empty /dev (private mount namespace).
    nvidia-smi still answers and NVML's nvidia-modprobe recreates /dev/nvidia* (listed after
    the stream), but dev-nodes.txt shows what was there before: nothing."""
    text = (FIXTURE / "probe-nodev.txt").read_text(encoding="utf-8")
    stream, _, after = text.partition("== ls -l /dev after the probe")
    sections = split_stream(stream.splitlines())
    assert sections["dev-nodes.txt"] == ""
    assert "NVIDIA H100 80GB HBM3" in sections["nvidia-smi.txt"]
    assert re.search(r"\snvidia0$", after, re.M)
    assert re.search(r"\snvidiactl$", after, re.M)
