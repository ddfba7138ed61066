"""Run deploys/diagnose.py over the lab with pyinfra and collect each host's primary code."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ollama_gpu_fix import runs
from tests.lab import config


def pyinfra_exe() -> str:
    """The pyinfra of the active environment (the venv the tests run in)."""
    beside = Path(sys.executable).parent / "pyinfra"
    if beside.is_file():
        return str(beside)
    found = shutil.which("pyinfra")
    if not found:
        raise RuntimeError("pyinfra is not installed in this environment")
    return found


@dataclass
class DiagnoseResult:
    returncode: int
    output: str
    primaries: dict[str, str | None]
    seconds: float
    reports: dict[str, dict] = field(default_factory=dict)  # host -> its JSON report


def run(report_dir: Path, limit: list[str] | None = None, extra: list[str] | None = None,
        timeout: float = 600) -> DiagnoseResult:
    import time

    deploy = config.REPO_ROOT / "deploys" / "diagnose.py"
    if not deploy.is_file():
        return DiagnoseResult(127, "deploys/diagnose.py does not exist yet", {}, 0.0)
    report_dir.mkdir(parents=True, exist_ok=True)
    cmd = [pyinfra_exe(), "-y", str(config.INVENTORY_PATH.relative_to(config.REPO_ROOT)),
           "deploys/diagnose.py", "--data", f"report_dir={report_dir}"]
    for name in limit or []:
        cmd += ["--limit", name]
    cmd += extra or []
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=config.REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout)
    seconds = time.monotonic() - t0
    if config.RUN_DIR.is_dir():  # kept in .cache/last-run-logs at teardown
        (config.RUN_DIR / "pyinfra-diagnose.log").write_text(proc.stdout + proc.stderr)
    reports = runs.run_reports(report_dir, mode="diagnose")
    primaries: dict[str, str | None] = {h: r.get("primary") for h, r in reports.items()}
    return DiagnoseResult(proc.returncode, proc.stdout + proc.stderr, primaries, seconds,
                          reports)
