"""The lab over real SSH: `pyinfra inventories/lab.py deploys/diagnose.py` names every
profile's failure mode (issue 3), deploys/fix_gpu.py ends every host as its profile says and
leaves none worse (issue 12). One test per profile so a wrong outcome shows by name."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.lab import config, diagnose_run, network
from tests.lab.profiles import load_all

pytestmark = pytest.mark.lab
PROFILES = load_all()


def test_at_least_ten_profiles_each_with_an_expected_code():
    codes = config.REPO_ROOT / "docs" / "failure-modes.md"
    assert len(PROFILES) >= 10
    for p in PROFILES:
        assert p.expected_primary, p.name
        if codes.is_file():
            assert f"| {p.expected_primary} |" in codes.read_text(), p.name


@pytest.mark.parametrize("profile", PROFILES, ids=[p.name for p in PROFILES])
def test_primary_code(diagnosis: diagnose_run.DiagnoseResult, profile):
    assert diagnosis.returncode == 0, diagnosis.output[-3000:]
    got = diagnosis.primaries.get(profile.name)
    assert got == profile.expected_primary, (
        f"{profile.name}: expected {profile.expected_primary}, diagnose said {got}")


@pytest.mark.parametrize("profile", PROFILES, ids=[p.name for p in PROFILES])
def test_fix_ends_as_the_profile_says(fixes, profile):
    """deploys/fix_gpu.py: verified on the GPU, or the documented refusal, reboot-required,
    rollback, lost host or bad host data, each with its one-line reason."""
    judged = fixes.judged[profile.name]
    assert judged.ok, f"{profile.name}: expected {profile.expected_fix}: {judged.why}"


def test_second_fix_run_changes_nothing(fixes):
    """pyinfra's own --json results: no operation ran a command on any host the second time
    (and the second run did print them: a run killed or crashed proves nothing)."""
    assert fixes.second.json_ok, fixes.second.note
    assert fixes.second.changed == set(), sorted(fixes.second.changed)
    assert len(PROFILES) >= 16


def test_dry_run_prints_every_plan_and_changes_no_host(fixes):
    """`--dry` before the real runs: each host's plan in the output, its report 'planned' (or
    'refused' with the reason), and nothing written on any host."""
    dry = fixes.dry
    assert dry is not None and dry.returncode == 0, dry.stderr[-3000:]
    assert dry.changed == set(), sorted(dry.changed)
    assert {h: paths for h, paths in fixes.dry_changed.items() if paths} == {}
    for p in PROFILES:
        said = dry.stderr.splitlines()
        if p.expected_fix == "bad host data":  # no policy, so no report directory either
            assert any(p.name in line and "host data" in line for line in said), p.name
            continue
        report = dry.reports.get(p.name)
        assert report is not None, p.name
        assert report["result"] in ("planned", "refused", "reboot required"), p.name
        assert any(f"Plan for {p.name}:" in line for line in said), p.name


@pytest.mark.parametrize("profile", PROFILES, ids=[p.name for p in PROFILES])
def test_no_host_left_worse(fixes, profile):
    """Compared with right before the first fix run: apt still works (no conflicting
    Signed-By, no new error, no new dpkg --audit line), no unit newly failed (beyond the
    profile's allow_failed), no owner, group or mode changed outside the managed set."""
    judged = fixes.judged[profile.name]
    assert judged.worse == [], f"{profile.name}: " + "\n".join(judged.worse)


WITH_PROTECT = [p for p in PROFILES if p.protect]
WITH_CHECKS = [p for p in PROFILES if p.after_checks]


@pytest.mark.parametrize("profile", WITH_PROTECT, ids=[p.name for p in WITH_PROTECT])
def test_protected_paths_are_untouched(fixes, profile):
    """Each protected path has the same type, owner, group, mode and content after both fix
    runs as before the first (a regular file that became a link counts)."""
    judged = fixes.judged[profile.name]
    assert judged.protect == [], f"{profile.name}: " + "\n".join(judged.protect)


@pytest.mark.parametrize("profile", WITH_CHECKS, ids=[p.name for p in WITH_CHECKS])
def test_after_checks_pass(fixes, profile):
    """The profile's after_checks, run as root on the host after both fix runs, exit 0."""
    judged = fixes.judged[profile.name]
    assert judged.checks == [], f"{profile.name}: " + "\n".join(judged.checks)


@pytest.mark.parametrize("profile", PROFILES, ids=[p.name for p in PROFILES])
def test_no_escape_or_carriage_return_in_a_hosts_output(fixes, profile):
    """No output line of a host (its `[host]` lines, its diagnosis and plan block) carries an
    ESC or CR byte in any run: text from the host (hostile-fake-api's model name and error)
    must never drive the terminal of the person running the fix."""
    judged = fixes.judged[profile.name]
    assert judged.control == [], f"{profile.name}: " + "\n".join(judged.control)


# Background processes a profile's post_install starts and leaves running: (user, command).
BACKGROUND = {
    "real-foreign-serve": ("alice", "ollama serve"),
    "hostile-envfile-swap": ("mallory", "swap.py"),
    "hostile-fake-api": ("nobody", "fake-ollama.py"),
}


def test_hosts_are_what_their_profiles_claim(lab):
    """Recorded right after up (before any diagnosis): the OS each host says it is, its init,
    the users and background processes its post_install made, root's login PATH."""
    for p in PROFILES:
        c = lab.claims[p.name]
        os_release, sources = c.get("os-release", ""), c.get("sources", "").split()
        if p.os == "ubuntu2404":
            assert "ID=ubuntu" in os_release and 'VERSION_ID="24.04"' in os_release, p.name
            assert "DISTRIB_CODENAME=noble" in c.get("lsb-release", ""), p.name
            assert "ubuntu.sources" in sources and "debian.sources" not in sources, p.name
        else:
            assert "ID=debian" in os_release and "debian.sources" in sources, p.name
        if p.init == "wsl":
            assert c["systemd"].strip() == "no" and c["pid1"].strip() == "init", (p.name, c)
            # the server itself, started by wsl.conf's boot command as the ollama account
            serve = [ln.split()[0] for ln in c["processes"].splitlines()
                     if ln.rstrip().endswith("/usr/local/bin/ollama serve")]
            assert serve == ["ollama"], (p.name, c["processes"])
        else:
            assert c["systemd"].strip() == "yes" and c["pid1"].strip() == "systemd", p.name
        users = {line.split(":")[0]: line.split(":") for line in c["users"].splitlines()}
        for name in ("mallory", "alice"):
            made = any(f"useradd -m -u 4242 -s /bin/bash {name}" in line or
                       f"useradd -m -s /bin/bash {name}" in line for line in p.post_install)
            assert (name in users) == made, (p.name, name, users)
        if "mallory" in users:
            assert users["mallory"][2] == "4242", users["mallory"]
        if p.name in BACKGROUND:
            user, command = BACKGROUND[p.name]
            assert any(ln.split()[0] == user and command in ln
                       for ln in c["processes"].splitlines()), (p.name, c["processes"])
        if p.name == "hostile-path-curl":
            assert c["login-path"].startswith("/opt/mallory-bin:"), c["login-path"]
        if p.name == "real-missing-login-user":
            assert "alice" not in users


def test_fix_report_has_before_plan_steps_verification_after(fixes):
    report = fixes.first.reports["cuda-visible-minus1"]
    assert report["result"] == "verified"
    assert report["diagnosis_before"]["primary"] == "env-forces-cpu"
    assert report["plan"]["steps"][0]["action"] == "service_env"
    assert any(s["changed"] for s in report["steps_applied"])
    assert report["verification"]["gpu_percent"] == 100
    assert report["diagnosis_after"]["primary"] == "ok-gpu"
    again = fixes.second.reports["cuda-visible-minus1"]
    assert again["plan"]["steps"] == [] and again["result"] == "verified"


def test_a_live_hosts_diagnosis_says_where_the_model_ran_from_observation(fixes):
    """Observe first (issue 13): the fix's diagnosis before states where the model ran from
    measured quantities (size_vram of size in /api/ps after a bounded generation, the runner in
    the GPU's process list, tokens/s), and the ok-gpu finding quotes that observation."""
    healthy = fixes.first.reports["nvidia-healthy"]
    obs = healthy["snapshot"]["observation"]
    assert obs["mode"] == "generate" and obs["generated"] is True, obs
    assert obs["on_gpu"] == 1.0 and obs["runner_on_gpu"] is True and obs["tokens_per_s"] > 20
    said = healthy["diagnosis_before"]["summary"]["observed"]
    assert said.startswith("observed: qwen2.5:0.5b ran on the GPU (100% GPU"), said
    ok = next(f for f in healthy["diagnosis_before"]["findings"] if f["code"] == "ok-gpu")
    assert ok["evidence"][0].startswith("observation.txt: observed: "), ok["evidence"]
    assert any("Observed:  observed: qwen2.5:0.5b ran on the GPU" in line
               for line in fixes.first.stderr.splitlines())
    cpu = fixes.first.reports["cuda-visible-minus1"]
    obs = cpu["snapshot"]["observation"]
    assert obs["on_gpu"] == 0.0 and obs["tokens_per_s"] < 10, obs
    assert "ran on the CPU" in cpu["diagnosis_before"]["summary"]["observed"]


def test_diagnose_observes_without_generating(diagnosis):
    """deploys/diagnose.py reads /api/ps, the listener and the GPU's process list as found
    (post_install loaded the model), and runs nothing."""
    obs = diagnosis.reports["nvidia-healthy"]["snapshot"]["observation"]
    assert obs["mode"] == "look" and obs["generated"] is None and obs["tokens_per_s"] is None
    assert obs["on_gpu"] == 1.0 and obs["runner_on_gpu"] is True, obs
    # the service (CUDA_VISIBLE_DEVICES=-1) still holds the port: measured on the CPU; never
    # the fake's "100% GPU", which only an API held by another process would claim
    cpu = diagnosis.reports["hostile-fake-api"]["snapshot"]["observation"]
    assert cpu is not None and cpu["on_gpu"] in (None, 0.0), cpu


def test_a_run_that_changes_nothing_generates_once(fixes):
    """When the plan has nothing to change, the observation made before the diagnosis is the
    verification: one /api/generate request per host in the second run, not two."""
    noop = [name for name, r in fixes.second.reports.items()
            if r.get("result") == "verified" and not r["plan"]["steps"]
            and r["verification"]["kind"] == "use"]
    assert "nvidia-healthy" in noop and "cuda-visible-minus1" in noop, noop
    for name in noop:
        report = fixes.second.reports[name]
        assert report["verification"]["from_observation"] is True, name
        assert fixes.generations[name][1] == 1, (name, fixes.generations[name])


@pytest.mark.parametrize("name,source", [("cuda-visible-minus1", "nvidia-smi"),
                                         ("amd-gfx1100-nogroups", "rocm-smi")])
def test_verification_finds_ollamas_runner_in_the_gpus_process_list(fixes, name, source):
    """The GPU's own tool lists the process holding the model (nvidia-smi's compute apps,
    rocm-smi --showpids), and its parent chain leads to the unit's MainPID."""
    v = fixes.first.reports[name]["verification"]
    assert v["passed"] and v["processes_checked"] == "yes", v
    assert [p["source"] for p in v["processes"] if p["runner"]] == [source], v["processes"]


def test_hosts_answer_over_ssh_with_their_own_identity(lab):
    exe = diagnose_run.pyinfra_exe()
    out = subprocess.run([exe, "-y", "--json", str(config.INVENTORY_PATH), "fact",
                          "server.Hostname"], cwd=config.REPO_ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    facts = json.loads(out.stdout)
    assert facts["server.Hostname"] == {p.name: p.name for p in PROFILES}


def test_hosts_are_only_on_the_lab_network(lab):
    """No host has a route out of the lab: only loopback and the lab subnet."""
    for host in lab.hosts:
        routes = network.ip("-n", host.net.netns, "route", "show").stdout
        assert "default" not in routes, (host.name, routes)
        assert all(r.startswith(config.SUBNET_PREFIX) for r in routes.splitlines() if r), routes


def test_double_answers_like_the_host_state(lab):
    """Installing cuda-toolkit-12-4 changes nvcc; a driver upgrade without reboot makes
    nvidia-smi report the version mismatch, as on real hardware."""
    host = next(h for h in lab.hosts if h.name == "nvidia-535-cuda118")
    ssh = lab.ssh
    run = lambda cmd: ssh.run(host.net.address, cmd)  # noqa: E731
    assert b"release 11.8" in run("nvcc --version").stdout
    repo = lab.urls["nvidia"]  # added the way NVIDIA documents it, from host data's URL
    r = run(f"curl -fsSLo /tmp/k.deb {repo}cuda-keyring_1.1-1_all.deb && dpkg -i /tmp/k.deb "
            ">/dev/null && apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive "
            "apt-get install -y -q cuda-toolkit-12-4 nvidia-driver-550 >/dev/null && "
            "/usr/local/cuda/bin/nvcc --version; nvidia-smi")
    assert b"release 12.4" in r.stdout, r.stdout + r.stderr
    assert b"Driver/library version mismatch" in r.stdout, r.stdout


def test_driver_install_takes_effect_after_reboot(lab):
    """nvidia-no-driver: installing cuda-drivers changes nothing until the host reboots (the
    supervisor restarts it); after the reboot (with DKMS's key enrolled, Secure Boot being
    on) the module is loaded and Ollama is on the GPU."""
    host = next(h for h in lab.hosts if h.name == "nvidia-no-driver")
    run = lambda cmd, **kw: lab.ssh.run(host.net.address, cmd, **kw)  # noqa: E731
    repo = lab.urls["nvidia"]
    r = run(f"curl -fsSLo /tmp/k.deb {repo}cuda-keyring_1.1-1_all.deb && dpkg -i /tmp/k.deb "
            ">/dev/null && apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive "
            "apt-get install -y -q cuda-drivers >/dev/null; nvidia-smi; echo rc=$?")
    assert b"couldn't communicate with the NVIDIA driver" in r.stdout, r.stdout + r.stderr
    # Secure Boot is on here: the owner enrolls DKMS's signing key (mokutil --import, then
    # confirmed at the console during the reboot), or the new module would not load
    run("python3 -c 'import json; p = \"/usr/lib/ogf-lab/hardware.json\"; "
        "hw = json.load(open(p)); hw[\"mok_enrolled\"] = True; json.dump(hw, open(p, \"w\"))'")
    run("touch /run/ogf-before-reboot && systemctl reboot", timeout=30)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # /run is a fresh tmpfs in the new boot
        if run("test ! -e /run/ogf-before-reboot", timeout=10).returncode == 0:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("the host did not come back from its reboot")
    r = run("for i in $(seq 50); do curl -sf localhost:11434/api/version >/dev/null && break; "
            "sleep 0.2; done; nvidia-smi --query-gpu=driver_version --format=csv,noheader; "
            "journalctl -u ollama -b --no-pager | grep 'inference compute'")
    assert b"580.159.04" in r.stdout, r.stdout + r.stderr
    assert b"library=CUDA" in r.stdout, r.stdout


def test_a_fleet_run_ends_with_one_table_across_hosts_and_a_page(fixes):
    """After pyinfra's own results: one line per host (failures first) and the fleet page,
    written beside the reports, with every host of the run on it."""
    err = fixes.first.stderr
    assert "--> Fleet summary:" in err, err[-2000:]
    table = err.split("--> Fleet summary:", 1)[1]
    for p in PROFILES:
        if p.expected_fix != "bad host data":  # refused before its report was begun
            assert f"\n{p.name} " in table, p.name
    page = table.split("--> fleet page: ", 1)[1].split("\n", 1)[0].strip()
    html = open(page, encoding="utf-8").read()
    assert all(f'data-host="{p.name}"' in html for p in PROFILES
               if p.expected_fix != "bad host data")
