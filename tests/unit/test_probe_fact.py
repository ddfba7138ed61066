"""facts.ollama_probe.OllamaGpuProbe: the command is the script, quoting survives pyinfra's
`sh -c '...'` (and `sudo -n sh -c '...'`), process() is pure."""

from __future__ import annotations

import subprocess

from pyinfra.api import StringCommand
from pyinfra.connectors.util import make_unix_command

from facts.ollama_probe import OllamaGpuProbe, probe_script
from ollama_gpu_fix.bundle import split_stream


def test_command_is_the_script_and_defaults_are_empty() -> None:
    fact = OllamaGpuProbe()
    assert fact.command() == probe_script()
    assert "'" in fact.command()  # single quotes inside: the quoting below matters
    assert OllamaGpuProbe.default() == {}
    assert fact.requires_command() is None  # sh is all it needs


def test_process_is_split_stream() -> None:
    lines = ["noise", "ogf-probe v2 nonce=abc123", "--ogf-abc123-- os-release.txt", "ID=debian"]
    assert OllamaGpuProbe().process(lines) == {"os-release.txt": "ID=debian\n"}
    assert OllamaGpuProbe().process(["garbage"]) == {}


def test_pyinfra_rendered_command_runs_the_probe() -> None:
    """The exact string pyinfra hands to the shell (StringCommand + make_unix_command)."""
    rendered = make_unix_command(StringCommand(OllamaGpuProbe().command())).get_raw_value()
    assert rendered.startswith("sh -c '")
    proc = subprocess.run(rendered, shell=True, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    sections = split_stream(proc.stdout.decode("utf-8").splitlines())
    assert sections["probe-meta.txt"].startswith("probe=2\n")


def test_pyinfra_rendered_command_with_env_and_chdir() -> None:
    rendered = make_unix_command(
        StringCommand(OllamaGpuProbe().command()), _env={"X": "a'b"}, _chdir="/"
    ).get_raw_value()
    proc = subprocess.run(rendered, shell=True, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "probe-meta.txt" in split_stream(proc.stdout.decode("utf-8").splitlines())
