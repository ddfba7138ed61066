"""The real failure reports in tests/cases (copied from public threads) get an accepted code.

Each case directory is a bundle plus expected.json; the CLI is run as a user runs it, so the
bundle reading, parsing, rules and JSON output are all exercised together.

Scoring as tests/cases/README.md says: `expected_primary` lists every code an expert accepts;
`NONOK` accepts any fault code whose finding is an error with evidence (not ok-gpu, not
no-gpu, not not-enough-evidence). A case with a fault label never passes on an empty
diagnosis.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

CASES = sorted(p for p in (Path(__file__).parent.parent / "cases").iterdir() if p.is_dir())
NOT_A_FAULT = ("ok-gpu", "no-gpu", "not-enough-evidence")
MAX_MISSES = 2  # issue 8: at most 2 misses among >= 85 cases, each explained in MISSES
# Cases the tool does not get, with the reason (kept to the budget).
MISSES: dict[str, str] = {}


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


def accepted(expected: list[str], report: dict) -> bool:
    primary = report["primary"]
    finding = next((f for f in report["findings"] if f["code"] == primary), None)
    if primary in expected:
        if primary in NOT_A_FAULT:
            return True
        return finding is not None and bool(finding["evidence"])
    if "NONOK" in expected and primary not in NOT_A_FAULT:
        return finding is not None and finding["severity"] == "error" and bool(finding["evidence"])
    return False


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_primary(case: Path) -> None:
    if case.name in MISSES:
        pytest.xfail(MISSES[case.name])
    expected = json.loads((case / "expected.json").read_text())["expected_primary"]
    report = _diagnose(case)
    assert accepted(expected, report), json.dumps(report["findings"], indent=1)
    primary = next((f for f in report["findings"] if f["code"] == report["primary"]), None)
    if report["primary"] not in NOT_A_FAULT:
        assert primary is not None and primary["evidence"], "a fault is named with evidence"
        assert primary["remedy"] and primary["remedy"]["summary"]


def test_enough_cases_and_few_misses() -> None:
    misses = [
        case.name
        for case in CASES
        if not accepted(json.loads((case / "expected.json").read_text())["expected_primary"],
                        _diagnose(case))
    ]
    assert len(CASES) >= 85
    assert len(misses) <= MAX_MISSES and set(misses) <= set(MISSES), misses


def test_every_case_names_its_source_and_confidence() -> None:
    for case in CASES:
        expected = json.loads((case / "expected.json").read_text())
        assert expected["source"].startswith("https://"), case.name
        assert expected.get("confidence") in ("high", "medium", "low"), case.name
        assert expected["expected_primary"], case.name
        assert any(p.name != "expected.json" for p in case.iterdir()), case.name
