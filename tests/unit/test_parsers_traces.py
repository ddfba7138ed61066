"""parsers/traces.py: platform from any pasted trace, never from Ollama's own search globs."""

from __future__ import annotations

import pytest

from ollama_gpu_fix.parsers import build_snapshot
from ollama_gpu_fix.parsers.traces import parse
from ollama_gpu_fix.rules.context import Context


def platforms(files: dict[str, str]) -> list[str]:
    return [where for where, _ in parse(files) or []]


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"ollama-serve.log": "ollama  | time=2025-01-01T00:00:00Z level=INFO source=gpu.go:1"
          ' msg="looking for compatible GPUs"\n'}, "container"),
        ({"docker-inspect.txt": '\t\t"Env": [\n\t\t\t"NVIDIA_VISIBLE_DEVICES=all",\n'},
         "container"),
        ({"notes.txt": "$ kubectl logs ollama-0 -n ai\n"}, "container"),
        ({"server.log": 'time=2025-01-01T00:00:00Z level=INFO source=gpu_windows.go:167'
          ' msg=packages count=1\n'}, "windows"),
        ({"server.log": "C:\\Users\\me\\AppData\\Local\\Programs\\Ollama\\lib\\ollama\n"},
         "windows"),
        ({"server.log": 'msg="inference compute" id=0 library=Metal name=Metal\n'}, "macos"),
        ({"install.txt": "ERROR: Microsoft WSL1 is not currently supported. Please use WSL2\n"},
         "wsl1"),
        ({"ollama-serve.log": 'msg="discovered GPU libraries" paths='
          '"[/usr/lib/wsl/lib/libnvidia-ml.so.1]"\n'}, "wsl2"),
    ],
)
def test_a_trace_names_the_platform(files: dict[str, str], expected: str) -> None:
    assert expected in platforms(files)
    assert Context(build_snapshot(files)).platform == expected


def test_ollamas_own_search_globs_are_no_trace_of_wsl() -> None:
    """Every Linux host's debug log lists /usr/lib/wsl/lib in NVML's search globs."""
    log = ('time=2025-01-01T00:00:00Z level=DEBUG source=gpu.go:469 msg="Searching for GPU'
           ' library" name=libnvidia-ml.so* globs="[/usr/lib/x86_64-linux-gnu/libnvidia-ml.so*'
           ' /usr/lib/wsl/lib/libnvidia-ml.so* /usr/local/cuda*/targets/*/lib/libnvidia-ml.so*]"\n')
    assert "wsl2" not in platforms({"ollama-serve.log": log})
    assert Context(build_snapshot({"ollama-serve.log": log})).platform != "wsl2"


def test_os_facts_outrank_traces() -> None:
    files = {"proc-version.txt": "Linux version 6.8.0-45-generic (buildd@lcy02) #45-Ubuntu SMP\n",
             "notes.txt": "$ docker logs ollama\n"}
    assert Context(build_snapshot(files)).platform == "native"


def test_an_image_tag_in_a_live_hosts_log_never_names_the_version() -> None:
    """On a live host a prompt logged at DEBUG is an HTTP client's text."""
    log = ('time=2025-01-01T00:00:00Z level=DEBUG source=routes.go:1 msg="chat request"'
           ' prompt="docker run ollama/ollama:0.1.0"\n')
    files = {"probe-meta.txt": "probe=2\nuid=0\nsystemd=yes\ncontainer=none\n",
             "ollama-serve.log": log}
    assert Context(build_snapshot(files)).version is None
    assert Context(build_snapshot({"ollama-serve.log": log})).version is not None
