"""Lab fixtures: boot every profile once per test module, tear down (and prove it) after it.

Where the lab cannot run (not root, no systemd-nspawn, ...) the tests are skipped and the
reason is printed; with CI set in the environment they fail instead, so CI never skips
the lab silently.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.lab import diagnose_run
from tests.lab.lab import Lab, leftovers, prerequisites


def lab_unavailable() -> str:
    return prerequisites()


def require_lab() -> None:
    why = lab_unavailable()
    if not why:
        return
    msg = f"lab tests cannot run here: {why}"
    print(f"\n*** {msg} ***", file=sys.stderr)
    if os.environ.get("CI"):
        pytest.fail(msg + " (CI is set: the lab must run in CI, not be skipped)")
    pytest.skip(msg)


@pytest.fixture(scope="module")
def lab():
    require_lab()
    the_lab = Lab()
    try:
        the_lab.up()
        yield the_lab
    finally:
        left = the_lab.down()
        assert not left, f"lab teardown left: {left}"
        assert not leftovers()


@pytest.fixture(scope="module")
def diagnosis(lab, tmp_path_factory) -> diagnose_run.DiagnoseResult:
    reports: Path = tmp_path_factory.mktemp("lab-reports")
    result = diagnose_run.run(reports)
    print(result.output[-4000:], file=sys.stderr)
    return result


@pytest.fixture(scope="module")
def fixes(lab, diagnosis, tmp_path_factory):  # after the diagnosis: it reads the hosts as found
    from tests.lab import fix_run

    twice = fix_run.fix_twice(lab, tmp_path_factory.mktemp("lab-fixes"))
    print(twice.first.stderr[-4000:], file=sys.stderr)
    return twice
