"""ollama_gpu_fix.rollout: waves planned from a real pyinfra inventory, and the usage mistakes
that stop a rollout before anything runs. (The rollout over hosts: tests/lab/test_rollout.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ollama_gpu_fix import rollout

INVENTORY = '''
canary = ["gpu-01"]
rack_a = ["gpu-01", "gpu-02", "gpu-03", "gpu-04", "gpu-05"]
rack_b = ["gpu-06", "gpu-07", "gpu-08", "gpu-09", "gpu-10"]
'''


@pytest.fixture()
def inventory(tmp_path: Path) -> rollout.Inventory:
    (tmp_path / "fleet.py").write_text(INVENTORY)
    return rollout.load_inventory("fleet.py", str(tmp_path))


def test_pyinfra_reads_the_inventory_hosts_in_order_and_their_groups(inventory):
    assert inventory.hosts == [f"gpu-{n:02d}" for n in range(1, 11)]
    assert inventory.groups["rack_b"] == ["gpu-06", "gpu-07", "gpu-08", "gpu-09", "gpu-10"]


def test_a_canary_group_then_waves_of_a_percentage_of_the_fleet(inventory):
    waves = rollout.plan_waves(inventory, "canary", "30%")
    assert waves == [["gpu-01"], ["gpu-02", "gpu-03", "gpu-04"], ["gpu-05", "gpu-06", "gpu-07"],
                     ["gpu-08", "gpu-09", "gpu-10"]]
    assert sorted(h for w in waves for h in w) == sorted(inventory.hosts)  # each host once


def test_a_canary_of_n_hosts_then_waves_of_n(inventory):
    assert rollout.plan_waves(inventory, "2", "4") == [
        ["gpu-01", "gpu-02"], ["gpu-03", "gpu-04", "gpu-05", "gpu-06"],
        ["gpu-07", "gpu-08", "gpu-09", "gpu-10"]]
    assert rollout.plan_waves(inventory, "rack_a", "100%") == [
        inventory.groups["rack_a"], inventory.groups["rack_b"]]


@pytest.mark.parametrize("canary, size, message", [
    ("rack_c", "2", "neither a number of hosts nor a group"),
    ("0", "2", "at least 1"),
    ("1", "0", "--wave-size"),
    ("1", "150%", "--wave-size"),
    ("1", "lots", "--wave-size"),
])
def test_a_mistake_in_the_waves_is_named(inventory, canary, size, message):
    with pytest.raises(rollout.RolloutError, match=message):
        rollout.plan_waves(inventory, canary, size)


def test_a_wave_counts_every_host_that_was_not_verified():
    reports = {"a": {"result": "verified"}, "b": {"result": "rolled back"}}
    results = rollout.judge_wave(["a", "b", "c"], reports)
    assert results == {"a": "verified", "b": "rolled back", "c": "no report"}
    assert rollout.failures(results) == ["b", "c"]


def test_the_state_of_one_inventory_has_one_place(tmp_path: Path):
    (tmp_path / "fleet.py").write_text(INVENTORY)
    one = rollout.state_path(tmp_path / "r", "fleet.py", str(tmp_path))
    two = rollout.state_path(tmp_path / "r", str(tmp_path / "fleet.py"), "/")
    assert one == two and one.parent == tmp_path / "r" / "rollouts"
    assert rollout.state_path(tmp_path / "r", "other.py", str(tmp_path)) != one


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ollama_gpu_fix.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_a_misspelled_inventory_is_one_line_and_exit_2_with_nothing_written(tmp_path: Path):
    proc = _cli("rollout", "inventories/fleet.pyy", "--report-dir", "r", cwd=tmp_path)
    assert proc.returncode == 2
    ours = [line for line in proc.stderr.splitlines() if "ollama-gpu-fix" in line]
    assert ours == ["ollama-gpu-fix rollout: no host matched the inventory "
                    "'inventories/fleet.pyy' (a misspelled file name?)"]
    assert not (tmp_path / "r").exists()


def test_a_bad_canary_is_one_line_and_exit_2(tmp_path: Path):
    (tmp_path / "fleet.py").write_text(INVENTORY)
    proc = _cli("rollout", "fleet.py", "--canary", "rack_z", "--report-dir", "r", cwd=tmp_path)
    assert proc.returncode == 2 and "rack_z" in proc.stderr and proc.stdout == ""
    assert not (tmp_path / "r").exists()
