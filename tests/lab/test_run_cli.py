"""tests/lab/run as CI runs it: the verdict line, and teardown after success and after Ctrl-C.

Runs after test_lab.py has torn its lab down (module-scoped fixture), with two small labs.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.lab import config
from tests.lab.conftest import require_lab
from tests.lab.lab import leftovers

pytestmark = pytest.mark.lab
RUN = str(config.LAB_DIR / "run")
LAST = re.compile(r"^lab: (\d+) hosts, primary-correct (\d+)/(\d+), converged (\d+)/(\d+), "
                  r"second-run changes (-?\d+)$")


def env() -> dict[str, str]:
    return dict(os.environ, PYTHON=sys.executable)


def test_run_prints_the_verdict_and_leaves_nothing():
    require_lab()
    proc = subprocess.run([RUN, "--only", "no-gpu", "nvidia-healthy"], capture_output=True,
                          text=True, timeout=600, env=env(), cwd=config.REPO_ROOT)
    last = proc.stdout.strip().splitlines()[-1]
    assert LAST.match(last), proc.stdout + proc.stderr[-3000:]
    assert last == "lab: 2 hosts, primary-correct 2/2, converged 2/2, second-run changes 0", \
        proc.stderr[-3000:]
    assert proc.returncode == 0
    assert leftovers() == []


def test_ctrl_c_tears_everything_down():
    require_lab()
    proc = subprocess.Popen([RUN, "--only", "no-gpu", "--hold"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.PIPE, text=True,
                            env=env(), cwd=config.REPO_ROOT)
    deadline = time.monotonic() + 300
    booted = False
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            state = json.loads(config.STATE_FILE.read_text())
            booted = any(k.startswith("nspawn:") for k in state.get("pids", {}))
        except (OSError, ValueError):
            pass
        if booted:
            break
        time.sleep(0.5)
    assert booted, "the lab never booted a host"
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert "interrupted, tearing down" in err or "holding" in err, err[-2000:]
    assert LAST.match(out.strip().splitlines()[-1]), out
    assert leftovers() == []
    assert not config.STATE_FILE.exists()
