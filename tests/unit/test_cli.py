"""The CLI on bad input: a clear one-line message, the right exit code, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ollama_gpu_fix.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_missing_directory_exits_2_with_one_line(tmp_path: Path) -> None:
    proc = run_cli("diagnose-bundle", str(tmp_path / "nope"))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "not a directory" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_file_instead_of_directory(tmp_path: Path) -> None:
    f = tmp_path / "bundle.tar"
    f.write_bytes(b"\x00" * 10)
    proc = run_cli("diagnose-bundle", str(f), "--json")
    assert proc.returncode == 2 and proc.stdout == ""


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode-000 directory anyway")
def test_unreadable_directory(tmp_path: Path) -> None:
    d = tmp_path / "locked"
    d.mkdir()
    d.chmod(0)
    try:
        proc = run_cli("diagnose-bundle", str(d))
    finally:
        d.chmod(0o755)
    assert proc.returncode == 2 and "cannot" in proc.stderr


def test_binary_garbage_is_read_not_fatal(tmp_path: Path) -> None:
    for name in ("nvidia-smi.txt", "ollama-serve.log", "api-ps.json", "kfd-topology.txt"):
        (tmp_path / name).write_bytes(os.urandom(4096) + b"\xff\xfe\x00CUDA Version: \x80")
    proc = run_cli("diagnose-bundle", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["primary"] and "findings" in report and "snapshot" in report


def test_empty_directory_is_a_bundle_with_nothing_known(tmp_path: Path) -> None:
    """Nothing to go on is said as such, with what to collect; never dressed up as `other`."""
    proc = run_cli("diagnose-bundle", str(tmp_path), "--json")
    assert proc.returncode == 0
    report = json.loads(proc.stdout)
    assert report["primary"] == "not-enough-evidence"
    (finding,) = report["findings"]
    assert finding["severity"] == "info" and "journalctl -u ollama" in finding["remedy"]["summary"]


def test_200mb_log_is_read_in_bounded_memory(tmp_path: Path) -> None:
    """Only the tail of a log matters; a 200 MB journal must not be loaded whole."""
    chunk = (
        '[GIN] 2026/11/20 - 10:00:03 | 200 |  1.2s | 127.0.0.1 | POST "/api/generate"\n' * 10000
    ).encode()
    with (tmp_path / "ollama-serve.log").open("wb") as fh:
        while fh.tell() < 200 * 1024 * 1024:
            fh.write(chunk)
        fh.write(
            b'time=2026-11-20T11:00:00Z level=WARN source=cuda_compat.go:80 msg="NVIDIA driver'
            b' too old" driver=535 required_driver="550 or newer"\n'
        )
    # measure in a fresh parent: RUSAGE_CHILDREN of this process also counts earlier tests
    meter = (
        "import resource, subprocess, sys;"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        "sys.stderr.write(p.stderr);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
        "print(p.stdout, end='')"
    )
    cli = [sys.executable, "-m", "ollama_gpu_fix.cli", "diagnose-bundle", str(tmp_path), "--json"]
    proc = subprocess.run(
        [sys.executable, "-c", meter, *cli],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    peak_kib, _, stdout = proc.stdout.partition("\n")
    assert json.loads(stdout)["primary"] == "nvidia-driver-too-old"  # the tail was read
    assert int(peak_kib) < 100 * 1024, f"peak RSS {peak_kib} KiB for a 200 MB log"


def test_text_report_names_primary_and_evidence() -> None:
    proc = run_cli("diagnose-bundle", "tests/cases/008-amd-kfd-permission-denied-render-group")
    assert proc.returncode == 0
    assert "Primary:   device-permissions" in proc.stdout
    assert "permission problems block access" in proc.stdout
    assert "GPU:       not known" in proc.stdout  # a log-only bundle says nothing of hardware
    assert "render" in proc.stdout
