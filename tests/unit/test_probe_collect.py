"""`ollama-gpu-fix collect`: the probe run locally and written as a bundle, or a clear exit 2."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ollama_gpu_fix.bundle import SECTIONS, read_bundle
from ollama_gpu_fix.cli import main as cli_main
from ollama_gpu_fix.collect import collect, default_directory


def test_collect_writes_a_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "deep" / "bundle"
    assert cli_main(["collect", str(target)]) == 0
    out = capsys.readouterr().out.strip()
    files = sorted(p.name for p in target.iterdir())
    assert out == f"{target}: {len(files)} files"
    assert "probe-meta.txt" in files
    assert set(files) <= set(SECTIONS)
    assert read_bundle(target).sections["probe-meta.txt"].startswith("probe=2\n")


def test_collect_default_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    host = socket.gethostname().split(".")[0]
    assert re.fullmatch(rf"ollama-gpu-bundle-{re.escape(host)}-\d{{8}}-\d{{6}}", default_directory())
    assert collect(None) == 0
    (bundle,) = tmp_path.iterdir()
    assert bundle.name.startswith(f"ollama-gpu-bundle-{host}-")
    assert (bundle / "probe-meta.txt").is_file()


def _one_clear_line(err: str, target: Path) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert re.match(
        rf"ollama-gpu-fix collect: cannot write bundle to {re.escape(str(target))}: ", lines[0]
    )


def test_collect_under_a_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("")
    target = tmp_path / "afile" / "bundle"
    assert collect(str(target)) == 2
    captured = capsys.readouterr()
    _one_clear_line(captured.err, target)
    assert "is not a directory" in captured.err
    assert captured.out == ""


def test_collect_to_an_existing_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "bundle"
    target.write_text("")
    assert cli_main(["collect", str(target)]) == 2
    _one_clear_line(capsys.readouterr().err, target)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a mode-555 directory anyway")
def test_collect_into_read_only_directory_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    assert collect(str(ro / "bundle")) == 2
    err = capsys.readouterr().err
    _one_clear_line(err, ro / "bundle")
    assert "not writable" in err


def test_collect_where_mkdir_fails_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """Even root cannot make a directory in /proc: the OSError becomes the one-line message."""
    target = Path("/proc/self/ogf-bundle")
    assert collect(str(target)) == 2
    _one_clear_line(capsys.readouterr().err, target)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root+unshare")
def test_collect_onto_read_only_filesystem_exits_2(tmp_path: Path) -> None:
    """A read-only mount (private namespace), where even root cannot write."""
    ro = tmp_path / "ro"
    ro.mkdir()
    cmd = (
        f"mount -t tmpfs -o ro none {shlex.quote(str(ro))} && "
        f"{shlex.quote(sys.executable)} -m ollama_gpu_fix.cli collect {shlex.quote(str(ro / 'b'))}"
    )
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", cmd],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 2 and "unshare" in proc.stderr:
        pytest.skip(f"no mount namespace here: {proc.stderr.strip()}")
    assert proc.returncode == 2, proc.stderr
    _one_clear_line(proc.stderr, ro / "b")
    assert "not writable" in proc.stderr
    assert proc.stdout == ""
