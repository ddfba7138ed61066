"""ollama_gpu_fix.watchdog: the verdict over one look at a host, the textfile metrics (checked by
Prometheus' own promtool), and the state one check leaves for the next.

The hosts here are bundles of the probe's sections (what `ollama-gpu-fix collect` writes):
a fixed H100 server with its model in VRAM, the same after an upgrade put half of it on the
CPU, after someone hid the GPU again, and a host without Ollama."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ollama_gpu_fix import watchdog
from ollama_gpu_fix.parsers import build_snapshot
from ollama_gpu_fix.rules import diagnose

NOW = 1_796_600_000.0
META = """probe=2
uid=0
arch=x86_64
systemd=yes
tool.nvidia-smi=/usr/bin/nvidia-smi
tool.systemctl=/usr/bin/systemctl
tool.journalctl=/usr/bin/journalctl
tool.ollama=/usr/local/bin/ollama
tool.curl=/usr/bin/curl
"""
SMI = ("index, name, driver_version, memory.total [MiB], memory.used [MiB], compute_cap, "
       "pci.bus_id\n0, NVIDIA H100 80GB HBM3, 580.95.05, 81559 MiB, 1502 MiB, 9.0, "
       "00000000:01:00.0\n")
START = [
    'time=2026-12-07T10:00:00.000Z level=INFO source=routes.go:1554 msg="server config" '
    'env="map[CUDA_VISIBLE_DEVICES: OLLAMA_HOST:http://127.0.0.1:11434]"',
    'time=2026-12-07T10:00:01.000Z level=INFO source=types.go:42 msg="inference compute" '
    'id=GPU-e46b1a73 library=CUDA compute=9.0 name=CUDA0 description="NVIDIA H100 80GB HBM3" '
    'driver=13.0 pci_id=0000:01:00.0 type=discrete total="79.6 GiB" available="79.2 GiB"',
]


def _host(ps: list[dict] | None = None, env: str = "", log: list[str] | None = None,
          active: str = "active", ollama: bool = True) -> dict[str, str]:
    sections = {
        "probe-meta.txt": META if ollama else META.replace("/usr/local/bin/ollama", ""),
        "nvidia-smi-query.csv": SMI,
        "pci-devices.txt": "0000:01:00.0 0x10de 0x2330 0x030200 nvidia\n",
        "proc-driver-nvidia-version.txt": "NVRM version: NVIDIA UNIX Open Kernel Module for "
                                          "x86_64  580.95.05  Release Build\n",
    }
    if ollama:
        sections["systemctl-show.txt"] = (
            f"LoadState=loaded\nActiveState={active}\nSubState="
            f"{'running' if active == 'active' else 'dead'}\nUser=ollama\n"
            f"Environment={env}\nFragmentPath=/etc/systemd/system/ollama.service\n")
        sections["ollama-version.txt"] = "ollama version is 0.33.0\n"
        sections["journalctl.txt"] = "\n".join(START + (log or [])) + "\n"
        if ps is not None:
            sections["api-ps.json"] = json.dumps({"models": ps})
    return sections


def _model(share: float) -> dict:
    return {"name": "qwen2.5:7b", "model": "qwen2.5:7b", "size": 6_000_000_000,
            "size_vram": int(6_000_000_000 * share), "expires_at": "2026-12-07T10:05:00Z"}


def _check(sections: dict[str, str], before: watchdog.State | None = None,
           now: float = NOW) -> watchdog.Check:
    snapshot = build_snapshot(sections)
    return watchdog.assess(snapshot, diagnose(snapshot), before or watchdog.State(), now)


def test_a_fixed_host_with_its_model_in_vram_is_ok_and_counts_as_verified():
    check = _check(_host(ps=[_model(1.0)]))
    assert check.status == watchdog.OK and not check.fallback
    assert check.models == {"qwen2.5:7b": 1.0}
    assert check.state.verified_at == NOW
    text = watchdog.exposition(check)
    assert 'ollama_gpu_offload_ratio{model="qwen2.5:7b"} 1' in text
    assert "\nollama_gpu_fallback 0\n" in text


def test_half_the_model_on_the_cpu_is_a_fallback_with_its_ratio():
    check = _check(_host(ps=[_model(0.48)]))
    assert check.status == watchdog.CRITICAL and check.fallback
    assert check.models["qwen2.5:7b"] == 0.48
    assert check.code and check.code not in watchdog.QUIET
    assert f'ollama_gpu_fallback{{code="{check.code}"}} 1' in watchdog.exposition(check)
    assert "48% on the GPU" in check.summary


def test_a_gpu_hidden_again_after_a_restart_is_named_with_the_diagnosis_code():
    """Nothing loaded yet, but the service's own environment hides the GPU again."""
    log = ['time=2026-12-07T11:00:00.000Z level=INFO source=routes.go:1554 msg="server config" '
           'env="map[CUDA_VISIBLE_DEVICES:-1 OLLAMA_HOST:http://127.0.0.1:11434]"',
           'time=2026-12-07T11:00:01.000Z level=INFO source=types.go:60 msg="inference '
           'compute" id=cpu library=cpu compute="" name=cpu description=cpu total="62.5 GiB"']
    check = _check(_host(ps=[], env="CUDA_VISIBLE_DEVICES=-1", log=log))
    assert check.status == watchdog.CRITICAL
    assert check.code == "env-forces-cpu"
    assert check.state.fell_back_at == NOW


def test_the_fallback_keeps_its_start_and_clears_when_repaired():
    broken = _host(ps=[], env="CUDA_VISIBLE_DEVICES=-1", log=[
        'time=2026-12-07T11:00:00.000Z level=INFO source=routes.go:1554 msg="server config" '
        'env="map[CUDA_VISIBLE_DEVICES:-1]"'])
    first = _check(broken)
    later = _check(broken, first.state, now=NOW + 60)
    assert later.state.fell_back_at == NOW  # the same fallback: when it began
    repaired = _check(_host(ps=[_model(1.0)]), later.state, now=NOW + 120)
    assert repaired.status == watchdog.OK and repaired.state.verified_at == NOW + 120
    assert "ollama_gpu_fix_fallback_since" not in watchdog.exposition(repaired)


def test_a_gpu_error_line_is_new_once():
    fault = ['time=2026-12-07T11:00:00.000Z level=WARN source=gpu.go:623 msg="unknown error '
             'initializing cuda driver library /usr/lib/x86_64-linux-gnu/libcuda.so.580.95.05: '
             'cuda driver library init failure: 999"']
    first = _check(_host(ps=[], log=fault))
    assert first.new_errors and "999" in first.new_errors[0]
    assert first.status == watchdog.CRITICAL
    assert first.code == "nvidia-uvm-broken"  # the family's code for CUDA error 999
    again = _check(_host(ps=[], log=fault), first.state, now=NOW + 60)
    assert again.new_errors == [] and again.status == watchdog.OK


def test_a_machine_without_a_gpu_runs_its_model_on_the_cpu_quietly():
    sections = _host(ps=[_model(0.0)])
    for name in ("nvidia-smi-query.csv", "pci-devices.txt", "proc-driver-nvidia-version.txt"):
        sections.pop(name)
    sections["pci-devices.txt"] = "0000:00:01.0 0x1234 0x1111 0x030000 bochs-drm\n"
    sections["journalctl.txt"] = START[0] + "\n"
    check = _check(sections)
    assert check.status == watchdog.OK and not check.fallback, check.summary
    assert check.models == {"qwen2.5:7b": 0.0}  # still reported: 0 of it in VRAM


def test_a_host_without_ollama_stays_quiet():
    check = _check(_host(ollama=False))
    assert check.status == watchdog.OK and not check.ollama and not check.fallback
    assert "nothing to watch" in check.summary


def test_a_stopped_service_warns_and_a_failed_one_is_a_fallback():
    stopped = _check(_host(ps=None, active="inactive"))
    assert stopped.status == watchdog.WARNING and not stopped.fallback
    failed = _check(_host(ps=None, active="failed"))
    assert failed.status == watchdog.CRITICAL and failed.code == "ollama-not-running"


def test_state_files_round_trip_and_garbage_is_a_fresh_start():
    state = watchdog.State(checked_at=NOW, seen=["a" * 64], fell_back_at=NOW, code="x",
                           verified_at=NOW - 5, tokens_per_s=44.5)
    assert watchdog.State.loads(state.dumps()) == state
    for garbage in ("", "[]", "{", '{"seen": "x", "checked_at": "soon"}', '{"checked_at": NaN}'):
        assert watchdog.State.loads(garbage) == watchdog.State()


def test_label_values_from_a_host_cannot_break_the_exposition():
    check = _check(_host(ps=[dict(_model(1.0), name='evil"} 1\nfake_metric{x="')]))
    text = watchdog.exposition(check)
    assert "\nfake_metric" not in text
    assert all(line.startswith(("#", "ollama_")) for line in text.splitlines())


@pytest.fixture(scope="module")
def promtool() -> str:
    """Prometheus' own linter (tests/promtool.py: Debian's package, unpacked)."""
    from tests.promtool import promtool as find

    found, why = find()
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(f"promtool unavailable: {why}")
    pytest.skip(f"promtool unavailable: {why}")


@pytest.mark.parametrize("case", ["ok", "partial", "hidden", "quiet-state"])
def test_promtool_accepts_the_textfile(promtool, case):
    hosts = {"ok": _host(ps=[_model(1.0)]), "partial": _host(ps=[_model(0.48), dict(
        _model(1.0), name="llama3.2:1b")]), "hidden": _host(ps=[], env="CUDA_VISIBLE_DEVICES=-1", log=[
        'time=2026-12-07T11:00:00.000Z level=INFO source=routes.go:1554 msg="server config" '
        'env="map[CUDA_VISIBLE_DEVICES:-1]"']),
        "quiet-state": _host(ps=[])}
    check = _check(hosts[case], watchdog.State(tokens_per_s=44.7, verified_at=NOW - 10))
    text = watchdog.exposition(check)
    res = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0 and not res.stdout.strip() and not res.stderr.strip(), (
        res.stdout + res.stderr + "\n" + text)


def test_promtool_accepts_the_sample_alert_rules(promtool):
    rules = Path(__file__).resolve().parents[2] / "docs/prometheus/ollama-gpu-fix.rules.yml"
    res = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0 and "SUCCESS: 4 rules found" in res.stdout, res.stdout + res.stderr
    for name in ("ollama_gpu_fallback", "ollama_gpu_offload_ratio",
                 "ollama_gpu_fix_watchdog_last_check_timestamp_seconds",
                 "ollama_gpu_fix_last_verified_timestamp_seconds"):
        assert name in rules.read_text()
