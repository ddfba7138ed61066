"""The watchdog in the lab (issue 15): the fix installs it on verified hosts (install_watchdog,
a 5 s timer), a second run changes nothing; each way a fixed host falls back (a CPU-forcing
variable, the GPU "driver" gone, the service user out of the GPU's group; each followed by
the restart that makes it real) flips `ollama_gpu_fallback` within one timer period, with the
diagnosis' code, and the repair flips it back; Prometheus' promtool accepts the textfile; a
host without node_exporter gets no textfile and one without Ollama stays quiet, and every
check's CPU time is measured and bounded; turning the knob off removes it all.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ollama_gpu_fix import runs
from tests.lab import fix_run, hosts
from tests.lab.conftest import require_lab

pytestmark = pytest.mark.lab

HOSTS = ["amd-gfx1100-nogroups", "no-gpu", "nvidia-healthy"]
INTERVAL = 5  # seconds between checks in the lab
FLIP_S = 3 * INTERVAL + 20  # one period, a check's own run time and a restart, with slack
TEXTFILE = "var/lib/prometheus/node-exporter/ollama_gpu_fix.prom"
LAST = "var/lib/ollama-gpu-fix/watchdog/last-check.json"
# node_exporter's textfile directory as Debian's package lays it out: /var/lib/prometheus is
# the prometheus user's, node-exporter below it root's
NODE_EXPORTER = ("adduser --quiet --system --group --no-create-home --home /var/lib/prometheus "
                 "prometheus && mkdir -p /var/lib/prometheus/node-exporter && "
                 "chown prometheus:prometheus /var/lib/prometheus")
KNOBS = ["--data", "install_watchdog=true", "--data", f"watchdog_interval={INTERVAL}"]
BREAKS = {  # host -> (how it breaks, how it is repaired, the code the watchdog must name)
    "cpu-variable": ("nvidia-healthy",
                     "mkdir -p /etc/systemd/system/ollama.service.d && printf '[Service]\\n"
                     "Environment=CUDA_VISIBLE_DEVICES=-1\\n' > /etc/systemd/system/"
                     "ollama.service.d/zz-someone.conf && systemctl daemon-reload && "
                     "systemctl restart ollama",
                     "rm /etc/systemd/system/ollama.service.d/zz-someone.conf && "
                     "systemctl daemon-reload && systemctl restart ollama",
                     "env-forces-cpu"),
    "driver-gone": ("nvidia-healthy",
                    "umount /proc/driver && systemctl restart ollama",
                    "mount --bind /run/ogf-lab/proc-driver /proc/driver && "
                    "systemctl restart ollama",
                    None),  # nvidia-no-driver or the like: any code but a quiet one
    "group-removed": ("amd-gfx1100-nogroups",
                      "gpasswd -d ollama render >/dev/null && gpasswd -d ollama video "
                      ">/dev/null; systemctl restart ollama",
                      "usermod -aG render,video ollama && systemctl restart ollama",
                      "device-permissions"),
}


@pytest.fixture(scope="module")
def lab():
    require_lab()
    from tests.lab.lab import Lab, leftovers

    the_lab = Lab(names=HOSTS)
    try:
        the_lab.up()
        for name in ("nvidia-healthy", "amd-gfx1100-nogroups"):
            _inside(the_lab, name, NODE_EXPORTER)
        yield the_lab
    finally:
        left = the_lab.down()
        assert not left, f"lab teardown left: {left}"
        assert not leftovers()


def _host(lab, name: str):  # noqa: ANN001, ANN202
    return next(h for h in lab.hosts if h.name == name)


def _inside(lab, name: str, script: str) -> str:  # noqa: ANN001
    entry = lab.state["pids"][f"nspawn:{name}"]
    res = hosts.run_inside(entry["pid"], ["sh", "-c", script], timeout=120)
    assert res.returncode == 0, f"{name}: {script}: {res.stderr}"
    return res.stdout


def _read(lab, name: str, rel: str) -> str | None:  # noqa: ANN001
    try:
        return (_host(lab, name).merged / rel).read_text()
    except OSError:
        return None


def _wait(lab, name: str, want, timeout: float) -> tuple[str | None, float]:  # noqa: ANN001
    """Poll the host's textfile until WANT(text) holds; (text, seconds waited)."""
    t0 = time.monotonic()
    text = None
    while time.monotonic() - t0 < timeout:
        text = _read(lab, name, TEXTFILE)
        if text is not None and want(text):
            return text, time.monotonic() - t0
        time.sleep(0.5)
    return text, time.monotonic() - t0


def _fallback(text: str) -> tuple[int, str | None]:
    m = re.search(r'^ollama_gpu_fallback(?:\{code="([^"]*)"\})? (\d)$', text, re.M)
    assert m, text
    return int(m.group(2)), m.group(1)


@pytest.fixture(scope="module")
def installed(lab, tmp_path_factory):  # noqa: ANN001
    reports = tmp_path_factory.mktemp("watchdog")
    first = fix_run.run(reports / "install", KNOBS)
    second = fix_run.run(reports / "again", KNOBS)
    return {"first": first, "second": second, "reports": reports}


def test_the_fix_installs_the_watchdog_on_verified_hosts_and_again_changes_nothing(installed):
    first, second = installed["first"], installed["second"]
    for name in HOSTS:
        report = first.reports[name]
        assert report["result"] == "verified", (name, report.get("reason"))
        assert report["watchdog"]["wanted"] is True, report.get("watchdog")
    assert second.json_ok and second.changed == set(), sorted(second.changed)


def test_a_running_host_reports_the_gpu_in_use(lab, installed):
    text, _ = _wait(lab, "nvidia-healthy", lambda t: _fallback(t)[0] == 0, FLIP_S)
    assert text and _fallback(text) == (0, None), text
    assert "ollama_gpu_fix_last_verified_timestamp_seconds" in text


@pytest.mark.parametrize("how", list(BREAKS))
def test_a_fallback_flips_the_metric_within_one_period_and_a_repair_flips_it_back(
        lab, installed, how):
    name, breaks, repairs, code = BREAKS[how]
    _wait(lab, name, lambda t: _fallback(t)[0] == 0, FLIP_S)
    _inside(lab, name, breaks)
    text, waited = _wait(lab, name, lambda t: _fallback(t)[0] == 1, FLIP_S)
    got = _fallback(text or "ollama_gpu_fallback 0")
    assert got[0] == 1, f"{how}: no fallback after {waited:.0f} s:\n{text}"
    assert got[1] == code if code else got[1] not in (None, "ok-gpu", "no-gpu"), got
    print(f"watchdog: {name}: {how} -> {got[1]} after {waited:.1f} s", file=sys.stderr)
    _inside(lab, name, repairs)
    text, waited = _wait(lab, name, lambda t: _fallback(t)[0] == 0, FLIP_S)
    assert _fallback(text or "")[0] == 0, f"{how}: still fallen back after {waited:.0f} s"


def test_promtool_accepts_what_the_hosts_wrote(lab, installed):
    from tests.promtool import promtool

    tool, why = promtool()
    assert tool, why
    for name in ("nvidia-healthy", "amd-gfx1100-nogroups"):
        text = _read(lab, name, TEXTFILE)
        assert text, name
        res = subprocess.run([tool, "check", "metrics"], input=text, capture_output=True,
                             text=True, timeout=60)
        assert res.returncode == 0 and not (res.stdout + res.stderr).strip(), res.stdout


def test_without_node_exporter_no_textfile_and_without_ollama_quiet_and_cheap(lab, installed):
    assert _read(lab, "no-gpu", TEXTFILE) is None  # no node_exporter directory there
    last = json.loads(_read(lab, "no-gpu", LAST) or "{}")
    assert last.get("status") == "OK" and last.get("fallback") is False, last
    _inside(lab, "no-gpu", "systemctl disable --now ollama >/dev/null 2>&1; "
            "rm -f /usr/local/bin/ollama /etc/systemd/system/ollama.service; "
            "systemctl daemon-reload")
    t0 = time.monotonic()
    while time.monotonic() - t0 < FLIP_S:
        last = json.loads(_read(lab, "no-gpu", LAST) or "{}")
        if last.get("ollama") is False:
            break
        time.sleep(0.5)
    assert last.get("ollama") is False and last.get("status") == "OK", last
    costs = [json.loads(_read(lab, n, LAST) or "{}").get("cpu_seconds") for n in HOSTS]
    print(f"watchdog: CPU seconds per check: {dict(zip(HOSTS, costs, strict=True))}",
          file=sys.stderr)
    assert all(isinstance(c, float) and c < 3.0 for c in costs), costs


def test_the_fleet_reads_the_watchdogs_state_and_the_page_shows_who_fell_back(
        lab, installed):
    """`deploys/diagnose.py` with use_watchdog_state: one small read per host instead of a
    probe; the fleet page names the host that fell back since its fix, and when."""
    from tests.lab import diagnose_run

    name, breaks, repairs, code = BREAKS["cpu-variable"]
    _wait(lab, name, lambda t: _fallback(t)[0] == 0, FLIP_S)
    _inside(lab, name, breaks)
    try:
        _wait(lab, name, lambda t: _fallback(t)[0] == 1, FLIP_S)
        reports = installed["reports"] / "from-watchdog"
        result = diagnose_run.run(reports, extra=["--data", "use_watchdog_state=true"])
        assert result.returncode == 0, result.output[-3000:]
        got = result.reports
        assert {r.get("source") for r in got.values()} == {"watchdog"}, got
        assert got[name]["primary"] == code and got[name]["watchdog_state"]["fallback"]
        page = re.search(r"--> fleet page: (\S+)", result.output)
        assert page, result.output[-2000:]
        html = Path(page.group(1)).read_text()
        assert "fell back " in html and f"({code})" in html
    finally:
        _inside(lab, name, repairs)


def test_turning_the_knob_off_removes_the_watchdog_and_its_series(lab, installed):
    off = fix_run.run(installed["reports"] / "off", ["--data", "install_watchdog=false"])
    assert off.json_ok, off.note
    for name in ("nvidia-healthy", "amd-gfx1100-nogroups"):
        merged = _host(lab, name).merged
        assert not (merged / "usr/local/lib/ollama-gpu-fix/ogf-check.pyz").exists(), name
        assert not (merged / "etc/systemd/system/ollama-gpu-fix-watchdog.timer").exists()
        assert _read(lab, name, TEXTFILE) is None, name  # no stale series left behind
        state = _inside(lab, name, "systemctl is-enabled ollama-gpu-fix-watchdog.timer "
                        "2>&1 || true").strip()
        assert state in ("not-found", "") or "No such file" in state or "not" in state, state
    assert runs.run_reports(installed["reports"] / "off")
