"""The custom operations (ollama_gpu_fix.deploy.operations) and the built-in ones each remedy
calls, in pyinfra's own fixture style: facts in, commands out (tests/operations/
<module>.<operation>/<case>.json), every operation with a no-op twin (`*_noop.json`: the host
already as wanted, no command). Harness: pyinfra-testing (pyinfra's tests/util.py, packaged)."""

from __future__ import annotations

from pathlib import Path

from pyinfra_testing.operations import make_operation_tests

HERE = Path(__file__).parent
OURS = "ollama_gpu_fix.deploy"

for folder in sorted(p for p in HERE.iterdir() if p.is_dir() and "." in p.name):
    base = OURS if folder.name.startswith("operations.") else "pyinfra.operations"
    name = f"Test_{folder.name.replace('.', '_')}"
    locals()[name] = make_operation_tests(base, folder.name, folder)


def test_every_operation_has_a_noop_twin() -> None:
    folders = [p for p in HERE.iterdir() if p.is_dir() and "." in p.name]
    assert len(folders) >= 8
    for folder in folders:
        cases = {p.stem for p in folder.glob("*.json")}
        assert any(c.endswith("_noop") for c in cases), folder.name
        assert any(not c.endswith("_noop") for c in cases), folder.name
