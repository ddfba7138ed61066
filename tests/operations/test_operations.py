"""The custom operations (ollama_gpu_fix.deploy.operations and .service) and the built-in ones each remedy
calls, in pyinfra's own fixture style: facts in, commands out (tests/operations/
<module>.<operation>/<case>.json), every operation with a no-op twin (`*_noop.json`: the host
already as wanted, no command). Harness: pyinfra-testing (pyinfra's tests/util.py, packaged),
run in a child process (harness.py says why)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
FOLDERS = sorted(p for p in HERE.iterdir() if p.is_dir() and "." in p.name)
CASES = [f"{f.name}/{c.stem}" for f in FOLDERS for c in sorted(f.glob("*.json"))]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("operations") / "outcomes.json"
    proc = subprocess.run([sys.executable, str(HERE / "harness.py"), str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("case", CASES)
def test_operation_fixture(outcomes: dict[str, str], case: str) -> None:
    assert outcomes.get(case) == "ok", outcomes.get(case, "not run")


def test_every_operation_has_a_noop_twin() -> None:
    assert len(FOLDERS) >= 8
    for folder in FOLDERS:
        cases = {p.stem for p in folder.glob("*.json")}
        assert any(c.endswith("_noop") for c in cases), folder.name
        assert any(not c.endswith("_noop") for c in cases), folder.name
