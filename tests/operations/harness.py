"""Runs every operation fixture in pyinfra-testing's harness and writes one JSON object to the
file named by argv[1]: {"<folder>/<case>": "ok" | "<why it failed>"} (stdout carries the
harness's own prints of the commands).

A child process of tests/operations/test_operations.py: pyinfra-testing imports pyinfra_cli,
whose import monkey-patches the standard library for gevent (pyinfra_cli/__init__.py), and
inside the test session that breaks every test that waits for its own child processes.
"""

from __future__ import annotations

import json
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from pyinfra_testing.operations import make_operation_tests  # noqa: E402

import ollama_gpu_fix.deploy.rootfiles as rootfiles  # noqa: E402

OURS = "ollama_gpu_fix.deploy"
OUR_MODULES = ("operations", "service")
# change.sh travels in front of every change command; the fixtures name it, not its 500 lines
rootfiles.change_script = lambda: "<change.sh>"


def folders() -> list[Path]:
    return sorted(p for p in HERE.iterdir() if p.is_dir() and "." in p.name)


def main() -> None:
    results: dict[str, str] = {}
    for folder in folders():
        base = OURS if folder.name.split(".")[0] in OUR_MODULES else "pyinfra.operations"
        cls = make_operation_tests(base, folder.name, folder)
        module, op = folder.name.rsplit(".", 1)
        prefix = f"test_{module}_{op}_"
        suite = unittest.defaultTestLoader.loadTestsFromTestCase(cls)
        outcome = unittest.TestResult()
        suite.run(outcome)
        failed = {t.id().rsplit(".", 1)[-1]: text for t, text in outcome.failures + outcome.errors}
        for case in sorted(folder.glob("*.json")):
            results[f"{folder.name}/{case.stem}"] = failed.get(prefix + case.stem, "ok")
    Path(sys.argv[1]).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
