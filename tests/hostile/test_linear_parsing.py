"""Issue 6, item 3: every parser is linear in its input.

The issue measured 22 s of CPU for one 48 KB line and 84 s for 96 KB. These tests feed every
parser lines built from the shapes that made the old regexes quadratic, at 100 KB, and bound
the time generously: a quadratic parser takes minutes here, a linear one milliseconds."""

from __future__ import annotations

import time

import pytest

from ollama_gpu_fix.parsers import PARSERS, build_snapshot
from ollama_gpu_fix.sections import SECTIONS
from tests.hostile import attacks

SIZE = 100 * 1024
# Fragments that a backtracking regex scans again from every position they start at.
TOKENS = [
    "a", " ", "/", "[", '"', "=", ":", "a=", 'a="', "A:[ ", "NVML: ", "not member of ",
    "| 0 ", "GPU ", "x.so", "/cuda", "/nvcc", "libcuda.so.1 ", "0000:01:00.0 ", "\\",
    'msg="server config" env="map[', 'msg="inference compute" library=x ', "uid=0(",
    "NVIDIA driver too old ", "amdgpu is not supported (supported types:[", "HSA_OVERRIDE_GFX_VERSION ",
    "docker run ", "-e ", "Environment=", "'", "export A=", "  Device 0: ", "== node 1 ",
]


@pytest.mark.parametrize("kind", sorted(attacks.LONG_LINES))
def test_long_log_lines_diagnose_fast(kind: str) -> None:
    result = attacks.long_line(kind, 96 * 1024)
    assert not result.succeeded, result.row()


def test_every_parser_is_linear_on_pathological_lines() -> None:
    names = list(SECTIONS) + ["free-form.txt"]
    slow = []
    for token in TOKENS:
        line = (token * (SIZE // len(token) + 1))[:SIZE]
        sections = {name: line + "\n" + line + "\n" for name in names}
        t0 = time.monotonic()
        build_snapshot(sections)
        spent = time.monotonic() - t0
        if spent > 2.0:
            slow.append((token, round(spent, 1)))
    assert not slow, f"parsers slow on {slow} (of {len(PARSERS)} parsers x {len(names)} files)"
