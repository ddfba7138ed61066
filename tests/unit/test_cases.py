"""The real failure reports in tests/cases (copied from public threads) get their expected code.

Each case directory is a bundle plus expected.json; the CLI is run as a user runs it, so the
bundle reading, parsing, rules and JSON output are all exercised together.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

CASES = sorted(p for p in (Path(__file__).parent.parent / "cases").iterdir() if p.is_dir())


@cache
def _diagnose(case: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "ollama_gpu_fix.cli", "diagnose-bundle", str(case), "--json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_primary(case: Path) -> None:
    expected = json.loads((case / "expected.json").read_text())["expected_primary"]
    report = _diagnose(case)
    assert report["primary"] in expected, json.dumps(report["findings"], indent=1)
    primary = next((f for f in report["findings"] if f["code"] == report["primary"]), None)
    if report["primary"] not in ("ok-gpu", "no-gpu"):
        assert primary is not None and primary["evidence"], "a fault is named with evidence"
        assert primary["remedy"] and primary["remedy"]["summary"]


def test_at_least_13_of_14_cases() -> None:
    hits = 0
    for case in CASES:
        expected = json.loads((case / "expected.json").read_text())["expected_primary"]
        hits += _diagnose(case)["primary"] in expected
    assert len(CASES) >= 14 and hits >= len(CASES) - 1
