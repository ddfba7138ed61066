"""`ollama-gpu-fix rollout` over 16 lab hosts (issue 14): a canary, then waves of 2. On a
wave-2 host whose GPU a forgotten drop-in hides, a training job holds most of the GPU's memory:
the fix removes the variable, and once Ollama restarts the model gets only part of its layers
on the GPU, so the verification fails and the change is rolled back. The rollout stops after
wave 2, the canary and wave 1 stay fixed and verified, the 11 later hosts are untouched (no
command reached them: their overlays and their Ollama's request counts say so), and the fleet
page shows it all. The job ends, the operator removes the rolled-back marker as the report
says, and the same command resumes and finishes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ollama_gpu_fix import runs
from tests.lab import config, hosts
from tests.lab.conftest import require_lab
from tests.lab.fix_run import _upper_state, generation_counts

pytestmark = pytest.mark.lab

# 16 profiles whose fix verifies; in inventory (name) order, canary 1 + waves of 2 put
# cuda-visible-minus1 in wave 2 and 11 hosts after it
HOSTS = ["amd-gfx1010", "amd-gfx1031", "amd-gfx1100-nogroups", "amd-override-in-bashrc",
         "cuda-visible-minus1", "cuda11-shadowing", "hostile-bashrc-values",
         "hostile-envfile-swap", "hostile-path-curl", "igpu-dropped", "no-gpu",
         "nvidia-535-cuda118", "nvidia-healthy", "override-conflict", "real-cuda12-path",
         "real-disabled-other-port"]
BUSY = "cuda-visible-minus1"
CANARY, WAVE1, WAVE2, LATER = HOSTS[:1], HOSTS[1:3], HOSTS[3:5], HOSTS[5:]
WATCHED = ("etc", "usr", "var/lib/dpkg", "var/lib/ollama-gpu-fix", "var/cache/ollama-gpu-fix")
# the job: a process of its own on the host, holding 70 GiB of the GPU while it runs; it
# started while no model was loaded (Ollama restarted: the lab's own checks loaded one)
START_JOB = ("systemd-run --unit=ogf-training-job --quiet sleep infinity && "
             "echo \"$(systemctl show -p MainPID --value ogf-training-job) 71680\" "
             "> /usr/lib/ogf-lab/gpu-busy && systemctl restart ollama.service")
END_JOB = ("systemctl stop ogf-training-job && rm /var/lib/ollama-gpu-fix/rolled-back && "
           "systemctl restart ollama.service")


@pytest.fixture(scope="module")
def lab():
    require_lab()
    from tests.lab.lab import Lab, leftovers

    the_lab = Lab(names=HOSTS)
    try:
        the_lab.up()
        yield the_lab
    finally:
        left = the_lab.down()
        assert not left, f"lab teardown left: {left}"
        assert not leftovers()


def _inside(lab, name: str, script: str) -> None:  # noqa: ANN001 - tests.lab.lab.Lab
    entry = lab.state["pids"][f"nspawn:{name}"]
    res = hosts.run_inside(entry["pid"], ["sh", "-c", script], timeout=120)
    assert res.returncode == 0, res.stderr


def _rollout(reports: Path, *extra: str) -> subprocess.CompletedProcess:
    inventory = str(config.INVENTORY_PATH.relative_to(config.REPO_ROOT))
    return subprocess.run([sys.executable, "-m", "ollama_gpu_fix.cli", "rollout", inventory,
                           "--canary", "1", "--wave-size", "2", "--report-dir", str(reports),
                           *extra], cwd=config.REPO_ROOT, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=1200)


@pytest.fixture(scope="module")
def rolled(lab, tmp_path_factory):  # noqa: ANN001
    reports = tmp_path_factory.mktemp("rollout")
    reports.chmod(0o700)
    assert [h.name for h in lab.hosts] == HOSTS  # the inventory's order is the waves' order
    untouched = {h.name: _upper_state(h.dir / "upper", WATCHED) for h in lab.hosts}
    dry = _rollout(reports, "--dry")
    dry_after = {h.name: _upper_state(h.dir / "upper", WATCHED) for h in lab.hosts}
    dry_state = list(reports.glob("rollouts/*.json"))
    _inside(lab, BUSY, START_JOB)
    before = {h.name: _upper_state(h.dir / "upper", WATCHED) for h in lab.hosts}
    counted = generation_counts(lab)
    first = _rollout(reports)
    after = {h.name: _upper_state(h.dir / "upper", WATCHED) for h in lab.hosts}
    between = generation_counts(lab)
    first_reports = runs.latest_by_host(reports, ("rollout",))
    pages = list((reports / "pages").glob("*.html"))
    first_page = pages[0].read_text() if len(pages) == 1 else f"pages: {pages}"
    _inside(lab, BUSY, END_JOB)  # the job ended; its Ollama starts afresh
    second = _rollout(reports)
    return {"reports": reports, "dry": dry, "untouched": untouched, "dry_after": dry_after,
            "dry_state": dry_state,
            "first": first, "second": second, "before": before,
            "after": after, "counted": counted, "between": between,
            "first_reports": first_reports, "first_page": first_page,
            "final": runs.latest_by_host(reports, ("rollout",))}


def test_a_dry_rollout_prints_the_waves_and_each_plan_and_changes_nothing(rolled):
    dry = rolled["dry"]
    out = dry.stdout
    assert dry.returncode == 0, (dry.stdout + dry.stderr)[-3000:]
    assert f"  canary: {CANARY[0]}" in out and f"  wave 2: {', '.join(WAVE2)}" in out
    assert "--> canary" in out and "--> wave 7" in out
    assert f"    {BUSY}: env-forces-cpu -> planned" in out
    assert "service_env: " in out.split(f"    {BUSY}:", 1)[1]  # its plan, step by step
    assert rolled["dry_after"] == rolled["untouched"]
    assert rolled["dry_state"] == []  # a dry run leaves no rollout to resume


def test_the_rollout_stops_after_the_wave_whose_host_failed_verification(rolled):
    first = rolled["first"]
    out = first.stdout + first.stderr
    assert first.returncode == 1, out[-4000:]
    assert f"rollout stopped after wave 2: 1 failed ({BUSY})" in out, out[-4000:]
    assert "11 later hosts untouched" in out
    busy = rolled["first_reports"][BUSY]
    assert busy["mode"] == "rollout" and busy["rollout"]["wave"] == "2"
    assert busy["result"] == "rolled back", (busy["result"], busy.get("reason"))
    assert busy["verification"]["passed"] is False
    assert busy["verification"]["gpu_percent"] < 100, busy["verification"]


def test_the_canary_and_earlier_waves_stay_fixed_and_verified(rolled):
    reports = rolled["first_reports"]
    for name in CANARY + WAVE1 + [h for h in WAVE2 if h != BUSY]:
        assert reports[name]["result"] == "verified", (name, reports[name].get("reason"))
        assert reports[name]["run_id"] == reports[BUSY]["run_id"]  # one rollout, one run id


def test_later_hosts_are_untouched(rolled):
    """No command reached a wave-3 host: nothing written under the watched trees, no request
    to its Ollama (the probe's observation would have made one), no report."""
    for name in LATER:
        assert rolled["after"][name] == rolled["before"][name], name
        assert rolled["between"][name] == rolled["counted"][name], name
        assert name not in rolled["first_reports"], name
    for name in CANARY + WAVE1:  # and the others were reached: the check can fail
        assert rolled["between"][name] != rolled["counted"][name], name


def test_the_fleet_page_shows_every_host_with_its_outcome(rolled):
    """The page the stopped rollout wrote: the failed host, the verified ones, the untouched."""
    html = rolled["first_page"]
    assert all(_row_result(html, name) for name in HOSTS), html[:500]
    assert {_row_result(html, name) for name in LATER} == {"not run"}
    assert {_row_result(html, name) for name in CANARY + WAVE1} == {"verified"}
    assert _row_result(html, BUSY) not in ("verified", "not run")


def _row_result(html: str, host: str) -> str | None:
    import re

    for tag in re.findall(r"<tr[^>]*>", html):
        if f'data-host="{host}"' in tag:
            found = re.search(r'data-result="([^"]*)"', tag)
            return found.group(1) if found else None
    return None


def test_a_resumed_rollout_skips_verified_hosts_and_finishes(rolled):
    second = rolled["second"]
    out = second.stdout + second.stderr
    assert second.returncode == 0, out[-4000:]
    assert "(resumed: verified hosts are skipped)" in out
    assert "canary: every host already verified" in out
    assert "wave 1: every host already verified" in out
    assert f"--> rollout: wave 2: {BUSY}\n" in out  # only the failed host of wave 2 again
    assert "wave 3: " in out
    final = rolled["final"]
    assert {h for h in HOSTS if final[h]["result"] == "verified"} == set(HOSTS), {
        h: final[h]["result"] for h in HOSTS if final[h]["result"] != "verified"}
    # the first run's reports are still there, beside the second's
    assert len(list((rolled["reports"] / BUSY).glob("*-rollout*.json"))) == 2
