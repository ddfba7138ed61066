"""deploys/diagnose.py and deploys/fix_gpu.py run for real against @local.

- exactly ONE remote command per host (counted by wrapping pyinfra's Host methods in a child
  process that runs the real pyinfra CLI: this file's __main__ below);
- nothing on the host changes (metadata of /etc, /usr/local, /var/lib/dpkg before and after,
  and pyinfra's own --json results: no operation at all);
- the text report appears in pyinfra's output and the JSON report lands on the controller;
- host data is validated before anything runs.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ollama_gpu_fix import runs

ROOT = Path(__file__).resolve().parents[2]
WATCHED = ("/etc", "/usr/local", "/var/lib/dpkg")


# ---- the counting child process ----------------------------------------------------------------


def _counting_cli(argv: list[str]) -> None:
    """Run the pyinfra CLI with every remote action of every host recorded to $OGF_COUNT_OUT."""
    import atexit

    # isort: off
    from pyinfra_cli.main import main as pyinfra_main  # gevent.monkey.patch_all() happens first
    from pyinfra.api.host import Host
    from pyinfra.connectors.local import LocalConnector

    # isort: on

    calls: list[dict[str, str]] = []

    def wrap(cls: type, method: str, layer: str) -> None:
        original = getattr(cls, method)

        def recorder(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            first = str(args[0]) if args else ""
            calls.append({"layer": layer, "method": method, "arg": first[:120]})
            return original(self, *args, **kwargs)

        setattr(cls, method, recorder)

    for method in ("run_shell_command", "put_file", "get_file"):
        wrap(Host, method, "host")
        wrap(LocalConnector, method, "connector")

    def dump() -> None:
        Path(os.environ["OGF_COUNT_OUT"]).write_text(json.dumps(calls))

    atexit.register(dump)
    sys.argv = ["pyinfra", *argv]
    pyinfra_main()


def run_counted(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[dict]]:
    out = tmp_path / "calls.json"
    env = {**os.environ, "OGF_COUNT_OUT": str(out), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, __file__, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    calls = json.loads(out.read_text()) if out.exists() else []
    return proc, calls


def run_pyinfra(*args: str) -> subprocess.CompletedProcess[str]:
    pyinfra = Path(sys.executable).with_name("pyinfra")
    return subprocess.run(
        [str(pyinfra), *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


# ---- tests ---------------------------------------------------------------------------------------


def test_diagnose_runs_exactly_one_remote_command(tmp_path: Path) -> None:
    proc, calls = run_counted(
        tmp_path, "-y", "@local", "deploys/diagnose.py", "--data", f"report_dir={tmp_path}"
    )
    assert proc.returncode == 0, proc.stderr
    host_calls = [c for c in calls if c["layer"] == "host"]
    connector_calls = [c for c in calls if c["layer"] == "connector"]
    assert len(host_calls) == 1, host_calls
    assert len(connector_calls) == 1, connector_calls  # nothing bypasses Host
    assert host_calls[0]["method"] == "run_shell_command"
    assert "ollama-gpu-fix probe v2" in host_calls[0]["arg"]


def test_diagnose_without_yes_still_one_command(tmp_path: Path) -> None:
    """Without -y pyinfra runs change detection: with no operations, nothing extra runs."""
    proc, calls = run_counted(
        tmp_path, "--dry", "@local", "deploys/diagnose.py", "--data", f"report_dir={tmp_path}"
    )
    assert proc.returncode == 0, proc.stderr
    assert len([c for c in calls if c["layer"] == "host"]) == 1, calls


SSH_TARGET = os.environ.get("OGF_TEST_SSH", "")  # user@host:port:keyfile


@pytest.mark.skipif(not SSH_TARGET, reason="set OGF_TEST_SSH=user@host:port:keyfile")
def test_diagnose_over_ssh_runs_exactly_one_remote_command(tmp_path: Path) -> None:
    user_host, port, key = SSH_TARGET.rsplit(":", 2)
    user, host = user_host.split("@", 1)
    proc, calls = run_counted(
        tmp_path,
        "-y",
        host,
        "deploys/diagnose.py",
        "--ssh-user",
        user,
        "--ssh-port",
        port,
        "--ssh-key",
        key,
        "--data",
        f"ssh_known_hosts_file={tmp_path / 'known_hosts'}",
        "--data",
        f"report_dir={tmp_path}",
    )
    assert proc.returncode == 0, proc.stderr
    host_calls = [c for c in calls if c["layer"] == "host"]
    assert len(host_calls) == 1, host_calls
    assert "ollama-gpu-fix probe v2" in host_calls[0]["arg"]
    assert f"== {host} ==" in proc.stderr
    assert json.loads((tmp_path / f"{host}.json").read_text())["host"] == host


def _tree_state(roots: tuple[str, ...]) -> dict[str, tuple]:
    """Metadata of every entry (ctime catches content and permission changes; atime ignored)."""
    state: dict[str, tuple] = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                state[path] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    return state


def test_diagnose_changes_nothing_on_the_host(tmp_path: Path) -> None:
    before = _tree_state(WATCHED)
    proc = run_pyinfra(
        "-y", "--json", "@local", "deploys/diagnose.py", "--data", f"report_dir={tmp_path}"
    )
    after = _tree_state(WATCHED)
    assert proc.returncode == 0, proc.stderr

    changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    assert not changed, f"diagnose.py changed the host: {changed[:20]}"

    results = json.loads(proc.stdout)["results"]
    assert results["operations"] == []
    assert results["totals"] == {"hosts": 0, "success": 0, "error": 0, "no_change": 0}
    assert results["failed_hosts"] == []

    # the text report is in pyinfra's output, the JSON report on the controller
    assert "== @local ==" in proc.stderr
    assert "Primary:" in proc.stderr
    written = sorted((tmp_path / "local").glob("*-diagnose.json"))
    assert len(written) == 1 and f"report: {written[0]}" in proc.stderr  # it says where
    report = json.loads(written[0].read_text())
    assert {"findings", "primary", "summary", "snapshot", "host", "started_at", "ended_at",
            "run_id", "schema_version"} <= set(report)
    assert report["host"] == "@local" and report["mode"] == "diagnose"
    assert report["result"] == "diagnosed"
    assert "probe-meta.txt" in report["probe_sections"]
    assert oct(written[0].stat().st_mode & 0o777) == "0o600"  # owner only
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["runs"][-1]["hosts"]["@local"]["file"] == f"local/{written[0].name}"


def _gpu_evidence(bundle: Path) -> list[str]:
    """What in a bundle speaks of a GPU: display-class PCI devices of GPU vendors, the NVIDIA
    kernel driver, GPU device nodes."""
    found = []
    for line in (bundle / "pci-devices.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) == 5 and (parts[1] in ("0x10de", "0x1002") or parts[3].startswith("0x03")):
            found.append(f"pci-devices.txt: {line}")
    if (bundle / "proc-driver-nvidia-version.txt").exists():
        found.append("proc-driver-nvidia-version.txt present")
    nodes = bundle / "dev-nodes.txt"
    for line in nodes.read_text().splitlines() if nodes.exists() else []:
        if any(k in line for k in ("/dev/nvidia", "/dev/kfd", "renderD", "/dev/dxg")):
            found.append(f"dev-nodes.txt: {line}")
    return found


def test_diagnose_bundle_of_this_machine(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """A bundle collected here. On a machine with no GPU evidence the diagnosis is `no-gpu`.

    With Ollama absent, CODE_ORDER makes `ollama-not-installed` primary, so `no-gpu` is checked
    among the findings (and as primary when Ollama is installed).
    """
    from ollama_gpu_fix.cli import main as cli_main
    from ollama_gpu_fix.collect import collect

    bundle = tmp_path / "bundle"
    assert collect(str(bundle)) == 0
    capsys.readouterr()
    assert cli_main(["diagnose-bundle", str(bundle), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["primary"] != "ok-gpu"
    evidence = _gpu_evidence(bundle)
    if evidence:
        pytest.skip(f"this machine is not GPU-free, no-gpu does not apply: {evidence}")
    codes = {f["code"] for f in data["findings"]}
    assert "no-gpu" in codes, (data["primary"], codes)
    if data["summary"]["ollama_installed"]:
        assert data["primary"] == "no-gpu"


HIDE_GPU = (
    "mount -t tmpfs none /sys/bus/pci/devices && mount -t tmpfs none /proc/driver"
    " && mount -t tmpfs none /dev && mknod -m 666 /dev/null c 1 3"
    " && mknod -m 666 /dev/urandom c 1 9"
)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root+unshare")
def test_gpu_free_view_of_this_machine_is_no_gpu(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """`collect` in a private mount namespace where PCI devices, /proc/driver and /dev are empty
    (this sandbox carries planted GPU traces; the host's own mounts are untouched): the real
    probe on a GPU-free view must be diagnosed `no-gpu`."""
    from ollama_gpu_fix.cli import main as cli_main

    bundle = tmp_path / "bundle"
    collect = (
        f"{shlex.quote(sys.executable)} -m ollama_gpu_fix.cli collect {shlex.quote(str(bundle))}"
    )
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", f"{HIDE_GPU} && {collect}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0 and "unshare" in proc.stderr:
        pytest.skip(f"no mount namespace here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    smi = bundle / "nvidia-smi.txt"
    if smi.exists() and "Driver Version" in smi.read_text():
        pytest.skip("a live NVIDIA driver answers nvidia-smi here: the GPU cannot be hidden")
    assert _gpu_evidence(bundle) == []
    assert cli_main(["diagnose-bundle", str(bundle), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    codes = {f["code"] for f in data["findings"]}
    assert "no-gpu" in codes, (data["primary"], codes)
    assert data["summary"]["gpus"] == []
    if data["summary"]["ollama_installed"]:
        assert data["primary"] == "no-gpu"


def test_fix_gpu_on_a_machine_without_gpu_changes_nothing(tmp_path: Path) -> None:
    """This machine has no GPU: the plan is empty, the verdict is "CPU expected", and the only
    remote command is the probe (nothing to run a model for)."""
    proc, calls = run_counted(
        tmp_path, "-y", "@local", "deploys/fix_gpu.py", "--data", f"report_dir={tmp_path}"
    )
    assert proc.returncode == 0, proc.stderr
    assert len([c for c in calls if c["layer"] == "host"]) == 1, calls
    assert "== @local ==" in proc.stderr
    assert "Plan for @local:\n  nothing to change" in proc.stderr
    assert "verified: no GPU in this machine: CPU is expected" in proc.stderr
    report = runs.run_reports(tmp_path)["@local"]
    assert report["mode"] == "fix"
    assert report["result"] == "verified" and report["plan"]["steps"] == []
    assert report["verification"]["kind"] == "cpu-expected"


def test_bad_host_data_fails_clearly_before_the_probe(tmp_path: Path) -> None:
    proc, calls = run_counted(
        tmp_path, "-y", "@local", "deploys/diagnose.py", "--data", "report_dir=42"
    )
    assert proc.returncode != 0
    assert "report_dir must be a non-empty string path" in proc.stderr
    assert calls == []  # validated before any remote command


def test_validate_host_data(tmp_path: Path) -> None:
    from pyinfra.api.exceptions import DeployError

    from ollama_gpu_fix.deploy.diagnose import validate_host_data

    assert validate_host_data({}, tmp_path).report_dir == tmp_path / "reports"
    assert validate_host_data({"report_dir": "/x/y"}, tmp_path).report_dir == Path("/x/y")
    assert validate_host_data({"report_dir": tmp_path / "r"}, tmp_path).report_dir == tmp_path / "r"
    plain = validate_host_data({}, tmp_path)
    assert not plain.observe_generate and plain.verify_model is None and plain.verify_tokens == 4
    asked = validate_host_data({"observe_generate": "true", "verify_model": "qwen2.5:0.5b",
                                "verify_tokens": "8"}, tmp_path)
    assert asked.observe_generate and asked.verify_model == "qwen2.5:0.5b"
    assert asked.verify_tokens == 8
    with pytest.raises(DeployError, match="host data observe_generate"):
        validate_host_data({"observe_generate": "maybe"}, tmp_path)
    for bad in (42, "", "  ", ["reports"], "a\x00b", True):
        with pytest.raises(DeployError, match="report_dir"):
            validate_host_data({"report_dir": bad}, tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(DeployError, match="not a directory"):
        validate_host_data({"report_dir": "file"}, tmp_path)


def test_safe_file_name() -> None:
    from ollama_gpu_fix.deploy.diagnose import safe_file_name

    assert safe_file_name("@local") == "local"
    assert safe_file_name("@vagrant/ubuntu2404") == "vagrant_ubuntu2404"
    assert safe_file_name("gpu-01.example.lan") == "gpu-01.example.lan"
    assert safe_file_name("../../etc/passwd") == "etc_passwd"
    assert safe_file_name("@@") == "host"


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    _counting_cli(sys.argv[1:])


def test_fix_without_terminal_or_yes_says_what_to_do_and_runs_nothing(tmp_path: Path) -> None:
    """From cron or CI without -y, pyinfra would ask "Press enter" and die on EOFError."""
    out = tmp_path / "calls.json"
    env = {**os.environ, "OGF_COUNT_OUT": str(out), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, __file__, "@local", "deploys/fix_gpu.py", "--data",
         f"report_dir={tmp_path}"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode != 0
    said = proc.stdout + proc.stderr
    assert "no terminal to confirm the changes: run with -y" in said, said[-2000:]
    assert "Traceback" not in said and "EOFError" not in said
    assert [c for c in json.loads(out.read_text()) if c["layer"] == "host"] == []


def test_fix_dry_prints_the_plan_writes_the_report_and_changes_nothing(tmp_path: Path) -> None:
    before = _tree_state(WATCHED)
    proc, calls = run_counted(
        tmp_path, "--dry", "@local", "deploys/fix_gpu.py", "--data", f"report_dir={tmp_path}"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Plan for @local:" in proc.stderr + proc.stdout
    report = runs.run_reports(tmp_path)["@local"]
    assert report["mode"] == "dry"
    assert report["result"] in ("planned", "refused") and "diagnosis_before" in report
    assert len([c for c in calls if c["layer"] == "host"]) == 1, calls  # the probe, nothing else
    after = _tree_state(WATCHED)
    assert sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p)) == []
