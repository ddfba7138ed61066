"""tests/lab/hostlock.py: a second run waits for a live one, and what a killed run left is removed.

The failure this guards against happened in CI: a lab run killed without its teardown left the
bridge ogf-br0 behind, and the next run on the machine failed every lab test at `ip link add`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.lab import config, hostlock, network
from tests.lab.conftest import require_lab

pytestmark = pytest.mark.lab

HOLDER = """
import sys, time
sys.path.insert(0, {root!r})
from tests.lab import hostlock
hostlock.acquire(print, timeout={timeout})
print("held", flush=True)
time.sleep(float(sys.argv[1]))
hostlock.release()
print("released", flush=True)
"""


def holder(seconds: float, timeout: float = 60) -> subprocess.Popen:
    code = HOLDER.format(root=str(config.REPO_ROOT), timeout=timeout)
    return subprocess.Popen([sys.executable, "-c", code, str(seconds)], stdout=subprocess.PIPE,
                            text=True)


def until_held(proc: subprocess.Popen) -> list[str]:
    """The lines a holder printed before "held": it may first wait for a live lab on this
    machine (another checkout, CI beside a developer) and sweep what a dead one left."""
    before = []
    for line in proc.stdout:
        if line.strip() == "held":
            return before
        before.append(line.strip())
    raise AssertionError(f"the holder ended without taking the lock: {before}")


def test_a_killed_runs_bridge_namespace_and_processes_are_removed_when_the_lock_is_taken():
    require_lab()
    first = holder(600, timeout=3600)
    until_held(first)  # any lab running here has finished and what a dead one left is gone
    assert network.leftovers() == []
    # what the dead run had made: the bridge, a host's namespace and veth, a process of its run
    network.create_bridge()
    net = network.HostNet(99)
    network.create_host(net)
    run_dir = Path("/tmp/ogf-hostlock-test/tests/lab/.run/hosts/x")
    run_dir.mkdir(parents=True, exist_ok=True)
    stray = subprocess.Popen(["sleep", "600", str(run_dir)])
    first.send_signal(signal.SIGKILL)  # killed: no teardown ran, the lock went with it
    first.wait()
    messages: list[str] = []
    try:
        hostlock.acquire(messages.append, timeout=10)
        try:
            assert network.leftovers() == []
            assert stray.wait(10) is not None
            assert any("ogf-br0" in m for m in messages), messages
            network.create_bridge()  # what failed in CI now works
            network.delete_bridge()
        finally:
            hostlock.release()
    finally:
        stray.kill()
        network.delete_host(net)
        network.delete_bridge()
        subprocess.run(["rm", "-rf", "/tmp/ogf-hostlock-test"])


def test_a_second_run_waits_for_the_live_one_and_touches_nothing_of_it():
    require_lab()
    first = holder(3, timeout=3600)
    until_held(first)
    network.create_bridge()  # the live run's bridge
    try:
        t0 = time.monotonic()
        second = holder(0, timeout=30)
        out = second.communicate(timeout=60)[0]
        waited = time.monotonic() - t0
        first_out = first.communicate(timeout=10)[0]
        assert "waiting for it to finish" in out
        assert first_out.strip() == "released"
        assert waited > 1.0  # it did not take the lock while the first held it
        assert "removed what an earlier, dead run left" in out  # the bridge, after the first
    finally:
        network.delete_bridge()
        for p in (first,):
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
