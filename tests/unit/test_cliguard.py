"""The user's mistakes under pyinfra's CLI (ollama_gpu_fix.deploy.cliguard): each gets one line
and an exit code that says so. Real pyinfra, run as a user runs it, from the repository root."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYINFRA = [sys.executable, "-c", "import sys; from pyinfra_cli.main import main; "
           "sys.argv[0] = 'pyinfra'; sys.exit(main())"]


def _pyinfra(*args: str, env: dict | None = None, timeout: float = 180
             ) -> subprocess.CompletedProcess:
    return subprocess.run([*PYINFRA, *args], cwd=ROOT, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_a_misspelled_inventory_is_an_error_not_zero_hosts_and_success(tmp_path: Path):
    proc = _pyinfra("-y", "inventories/fleet.pyy", "deploys/diagnose.py",
                    "--data", f"report_dir={tmp_path}")
    assert proc.returncode == 1
    assert "no host matched the inventory 'inventories/fleet.pyy'" in proc.stderr
    assert "Grand total" not in proc.stdout + proc.stderr  # nothing "ran"


def test_a_misspelled_knob_is_refused_with_the_knob_meant_in_one_line(tmp_path: Path):
    proc = _pyinfra("-y", "@local", "deploys/fix_gpu.py", "--data", "allow_reboots=true",
                    "--data", f"report_dir={tmp_path}")
    assert proc.returncode == 1, proc.stderr[-2000:]
    said = [line for line in (proc.stdout + proc.stderr).splitlines() if "allow_reboots" in line]
    assert len(said) == 1 and "did you mean allow_reboot?" in said[0], said
    assert not list(tmp_path.iterdir())  # refused before the probe: no report, nothing run


def test_a_bad_knob_value_is_one_line(tmp_path: Path):
    proc = _pyinfra("-y", "@local", "deploys/fix_gpu.py", "--data", "verify_tokens=lots",
                    "--data", f"report_dir={tmp_path}")
    assert proc.returncode == 1
    said = [line for line in (proc.stdout + proc.stderr).splitlines() if "verify_tokens" in line]
    assert len(said) == 1 and "must be a number from 1 to 32" in said[0], said


def test_verify_without_a_terminal_or_y_runs_instead_of_crashing(tmp_path: Path):
    work = tmp_path / "w"
    work.mkdir()
    proc = subprocess.run([*PYINFRA, "@local", str(ROOT / "deploys/verify.py"), "--data",
                           f"report_dir={tmp_path / 'r'}"], cwd=work, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=300)
    out = proc.stdout + proc.stderr
    assert "EOFError" not in out and "Traceback" not in out, out[-3000:]
    assert not (work / "pyinfra-debug.log").exists()
    report = next((tmp_path / "r").glob("*/*-verify.json"))
    assert json.loads(report.read_text())["mode"] == "verify"
    assert f"report: {report}" in out


DEPLOY = '''
import time
from pyinfra import host
from pyinfra.operations import server
from ollama_gpu_fix import runs
from ollama_gpu_fix.deploy import cliguard

cliguard.install(host.state)
run = runs.current("fix")
path = run.path_for(runs.Path(host.data.report_dir), host.name)
runs.write(run, path, {**runs.envelope(run, host.name), "result": "planned"})
server.shell(name="A long wait", commands=["sleep 3"])
if host.data.get("hang"):
    time.sleep(60)
'''


def test_long_waits_say_what_they_wait_for_and_how_long(tmp_path: Path):
    (tmp_path / "deploy.py").write_text(DEPLOY)
    proc = _pyinfra("-y", "@local", str(tmp_path / "deploy.py"), "--data",
                    f"report_dir={tmp_path / 'r'}", env={"OGF_PROGRESS_EVERY": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    waits = [line for line in proc.stderr.splitlines() if "still waiting for A long wait" in line]
    assert waits and waits[0].strip().startswith("[@local]"), proc.stderr[-2000:]
    assert any("(2 s)" in w or "(1 s)" in w for w in waits)


def test_ctrl_c_exits_130_and_the_report_says_interrupted(tmp_path: Path):
    (tmp_path / "deploy.py").write_text(DEPLOY)
    reports = tmp_path / "r"
    proc = subprocess.Popen([*PYINFRA, "-y", "@local", str(tmp_path / "deploy.py"), "--data",
                             f"report_dir={reports}", "--data", "hang=1"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list(reports.glob("*/*-fix.json")) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    report = json.loads(next(reports.glob("*/*-fix.json")).read_text())
    assert report["result"] == "interrupted" and "Ctrl-C" in report["reason"]
    assert report["ended_at"]
