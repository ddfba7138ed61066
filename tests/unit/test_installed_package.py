"""The installed distribution is usable from someone else's pyinfra deploy (issue 6).

Builds the wheel, installs it into a fresh virtual environment, writes a deploy in an empty
directory (no checkout on sys.path: neither facts/ nor deploys/ of this repository can be
imported there) that uses the probe fact and the diagnose deploy from the package, and runs it
with `pyinfra -y @local`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DEPLOY = '''
from pyinfra import host

from ollama_gpu_fix.deploy.diagnose import diagnose_host
from ollama_gpu_fix.deploy.facts import OllamaGpuProbe

assert OllamaGpuProbe.__module__ == "ollama_gpu_fix.deploy.facts"
diagnose_host(host)
'''


def _run(argv: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def test_wheel_installs_and_a_foreign_deploy_uses_it(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist),
                  str(ROOT)], tmp_path)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = dist.glob("ollama_gpu_fix-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    installed = _run([str(python), "-m", "pip", "install", "-q", str(wheel)], tmp_path)
    assert installed.returncode == 0, installed.stderr[-2000:]

    work = tmp_path / "someone-elses-deploy"
    work.mkdir()
    (work / "deploy.py").write_text(DEPLOY)
    probe = _run([str(python), "-c", "import facts"], work)
    assert probe.returncode != 0, "the checkout's facts/ must not be importable here"
    reports = work / "reports"
    run = _run([str(env_dir / "bin" / "pyinfra"), "-y", "@local", "deploy.py",
                "--data", f"report_dir={reports}"], work)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    report = json.loads((reports / "local.json").read_text())
    assert report["primary"] and "probe-meta.txt" in report["probe_sections"]
    cli = _run([str(env_dir / "bin" / "ollama-gpu-fix"), "--version"], work)
    assert cli.returncode == 0 and cli.stdout.startswith("ollama-gpu-fix 0."), cli.stdout
