"""Issue 13, item 7: diagnose-bundle imports only what the bundle needs.

A process that diagnoses a bundle holding only a log must not import the deploy side
(pyinfra, requests, jinja2, pynvml), packaging (no version to compare), dataclasses (and
with it inspect), argparse, or the parsers of the sections it does not have. The timing is
bench/startup.py's; this checks the imports behind it, in a fresh interpreter. The parsers
are skipped by the files they read (ollama_gpu_fix.parsers), so that table is checked too:
skipping a parser must give what the parser itself returns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ollama_gpu_fix import parsers, report
from ollama_gpu_fix.sections import SECTIONS

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
LOG_ONLY = TESTS / "cases" / "013-intel-arc-b580-vulkan-ok"

# Run diagnose-bundle's main in a fresh interpreter; print what it imported.
PROBE = """
import contextlib, io, json, sys
from ollama_gpu_fix import cli
out = io.StringIO()
with contextlib.redirect_stdout(out):
    rc = cli.main(["diagnose-bundle", sys.argv[1], "--json"])
print(json.dumps({"rc": rc, "report": json.loads(out.getvalue()), "modules": sorted(sys.modules)}))
"""

NEVER = ["pyinfra", "requests", "jinja2", "pynvml", "gevent", "distro", "ollama_gpu_fix.deploy",
         "ollama_gpu_fix.plan", "ollama_gpu_fix.policy", "ollama_gpu_fix.preflight",
         "ollama_gpu_fix.verdict", "ollama_gpu_fix.dropin", "ollama_gpu_fix.collect"]
# what a log-only bundle does without: version parsing, the dataclass machinery, argparse
LOG_ONLY_WITHOUT = ["packaging", "dataclasses", "inspect", "argparse", "ollama_gpu_fix.unitfile"]
OTHER_PARSERS = ["containers", "cuda", "devices", "nvidia", "ollama", "os_release", "pci",
                 "rocm", "users", "vulkan"]


def imported_by_diagnose(bundle: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, "-c", PROBE, str(bundle)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def loaded(modules: list[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


def test_log_only_bundle_imports_no_deploy_side_and_no_other_parser(tmp_path: Path) -> None:
    (tmp_path / "ollama-serve.log").write_bytes((LOG_ONLY / "ollama-serve.log").read_bytes())
    result = imported_by_diagnose(tmp_path)
    modules = result["modules"]
    assert result["rc"] == 0 and result["report"]["primary"] == "ok-gpu"
    assert "ollama_gpu_fix.parsers.ollama_log" in modules  # the probe did diagnose the log
    assert "ollama_gpu_fix.cli" in modules
    unwanted = NEVER + LOG_ONLY_WITHOUT + [f"ollama_gpu_fix.parsers.{p}" for p in OTHER_PARSERS]
    assert [name for name in unwanted if loaded(modules, name)] == []


def test_a_present_section_imports_its_parser_only(tmp_path: Path) -> None:
    sample = TESTS / "fixtures" / "sections" / "nvidia-smi.txt" / "h100-580.txt"
    (tmp_path / "nvidia-smi.txt").write_bytes(sample.read_bytes())
    modules = imported_by_diagnose(tmp_path)["modules"]
    assert "ollama_gpu_fix.parsers.nvidia" in modules
    others = [f"ollama_gpu_fix.parsers.{p}" for p in OTHER_PARSERS if p != "nvidia"]
    assert [name for name in NEVER + others if loaded(modules, name)] == []


def _samples() -> list[str]:
    return sorted({
        p.read_text(encoding="utf-8", errors="replace")
        for pattern in ("fixtures/sections/*/*", "cases/*/*")
        for p in TESTS.glob(pattern)
        if p.is_file() and p.name != "expected.json"
    })


NAMES = [*SECTIONS, "systemctl-status.txt", "ollama-gpu-discover.txt", "notes.log"]
GATED = [name for name in parsers.PARSERS if parsers.reads(name) is not None]


@pytest.mark.parametrize("field_name", GATED)
def test_a_parser_skipped_for_want_of_its_files_would_have_returned_none(
    field_name: str,
) -> None:
    """build_snapshot skips a parser none of whose files is present; the parser itself
    must say None then, whatever the other files hold."""
    files = parsers.reads(field_name)
    assert files and set(files) <= set(NAMES)
    parser = parsers.PARSERS[field_name]
    for text in _samples():
        sections = {name: text for name in NAMES if name not in files}
        assert parser(sections) is None, (field_name, text[:200])


def _bundles() -> list[dict[str, str]]:
    cases = [
        {p.name: p.read_text(encoding="utf-8", errors="replace")
         for p in case.iterdir() if p.name != "expected.json"}
        for case in sorted((TESTS / "cases").iterdir()) if case.is_dir()
    ]
    full = {d.name: sorted(d.iterdir())[0].read_text(encoding="utf-8", errors="replace")
            for d in sorted((TESTS / "fixtures" / "sections").iterdir()) if d.is_dir()}
    full["ollama-serve.log"] = (LOG_ONLY / "ollama-serve.log").read_text(encoding="utf-8")
    return [*cases, full]


def test_build_snapshot_equals_every_parser_called() -> None:
    for sections in _bundles():
        snapshot = parsers.build_snapshot(sections)
        for field_name, parser in parsers.PARSERS.items():
            got = report._plain(getattr(snapshot, field_name))
            assert got == report._plain(parser(sections)), (field_name, sorted(sections))
