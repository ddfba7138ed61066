"""The installed distribution is usable from someone else's pyinfra deploy (issue 6).

Builds the wheel, installs it into a fresh virtual environment, writes a deploy in an empty
directory (no checkout on sys.path: neither facts/ nor deploys/ of this repository can be
imported there) that uses the probe fact and the diagnose deploy from the package, and runs it
with `pyinfra -y @local`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

from ollama_gpu_fix import runs

ROOT = Path(__file__).resolve().parents[2]

DEPLOY = '''
from pyinfra import host

from ollama_gpu_fix.deploy.diagnose import diagnose_host
from ollama_gpu_fix.deploy.facts import OllamaGpuProbe

assert OllamaGpuProbe.__module__ == "ollama_gpu_fix.deploy.facts"
diagnose_host(host)
'''

# What the fix needs at run time beyond code: the remedies registry, the drop-in template and
# verify.sh, read through the installed package (a wheel without them fails only on a host).
SHIPPED = '''
from ollama_gpu_fix.deploy.facts import verify_script
from ollama_gpu_fix.deploy.remedies import registry
from ollama_gpu_fix.dropin import render

assert "cuda_toolkit" in registry() and "service_env" in registry(), sorted(registry())
assert "[Service]" in render({"HSA_OVERRIDE_GFX_VERSION": "10.3.0"}, reasons=["gfx1031"])
assert verify_script().startswith("#!/bin/sh")
print("shipped")
'''


def _run(argv: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def test_wheel_installs_and_a_foreign_deploy_uses_it(tmp_path: Path) -> None:
    # From a copy without build/ and *.egg-info: a stale SOURCES.txt there would ship files
    # the package data no longer names, and the test would pass where a clean clone fails.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", ".cache", ".run", "__pycache__",
        ".hypothesis", ".pytest_cache", ".ruff_cache", "reports", ".wheels", ".gl"))
    dist = tmp_path / "dist"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist),
                  str(source)], tmp_path)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = dist.glob("ollama_gpu_fix-*.whl")
    _check_metadata(wheel)
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
    report = runs.run_reports(reports)["@local"]
    assert report["primary"] and "probe-meta.txt" in report["probe_sections"]
    shipped = _run([str(python), "-c", SHIPPED], work)
    assert shipped.stdout.strip() == "shipped", shipped.stderr[-2000:]
    # no deploy file at all: the deploy function named on pyinfra's command line (a wheel user)
    fix_reports = work / "fix-reports"
    dry = _run([str(env_dir / "bin" / "pyinfra"), "-y", "@local",
                "ollama_gpu_fix.deploy.fix.fix_host", "--dry",
                "--data", f"report_dir={fix_reports}"], work)
    assert dry.returncode == 0, dry.stdout[-2000:] + dry.stderr[-3000:]
    fixed = runs.run_reports(fix_reports)["@local"]
    assert fixed["result"] in ("planned", "refused") and "plan" in fixed, fixed
    cli = _run([str(env_dir / "bin" / "ollama-gpu-fix"), "--version"], work)
    assert cli.returncode == 0 and cli.stdout.startswith("ollama-gpu-fix 0."), cli.stdout


def _check_metadata(wheel: Path) -> None:
    """What the package index shows: the licence file, project URLs, classifiers, a README
    whose links work there (absolute), and no dependency declared that nothing imports."""
    import re
    import zipfile

    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        shipped = {n for n in names if n.endswith(".py")}
        code = "\n".join(zf.read(n).decode() for n in shipped)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    assert "License-Expression: Apache-2.0" in meta
    assert "Project-URL: Source, https://" in meta and "Project-URL: Issues, https://" in meta
    assert "Classifier: Topic :: System :: Systems Administration" in meta
    links = re.findall(r"\]\(([^)]+)\)", meta)
    assert links and all(link.startswith(("https://", "#")) for link in links), [
        link for link in links if not link.startswith(("https://", "#"))]
    imports = {"pyinfra": "pyinfra", "packaging": "packaging", "jinja2": "jinja2",
               "nvidia-ml-py": "pynvml"}
    for line in meta.splitlines():
        if line.startswith("Requires-Dist:") and "extra ==" not in line:
            dist = re.split(r"[<>=!~; ]", line.split(":", 1)[1].strip())[0]
            module = imports.get(dist, dist)
            assert re.search(rf"^\s*(import|from) {module}\b", code, re.M), (
                f"{dist} is declared but never imported")
