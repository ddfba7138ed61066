"""Run deploys/fix_gpu.py over the lab twice and judge every host against its profile.

A host converged when its first run ended as its profile says (verified on the GPU, or the
documented refusal, reboot-required, rollback, lost host, bad host data) and its second run
changed nothing: pyinfra's own --json results name no host under "success" (an operation
that ran commands) for the second run.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab import config
from tests.lab.diagnose_run import pyinfra_exe
from tests.lab.profiles import Profile


@dataclass
class FixRun:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    reports: dict[str, dict]  # host -> its JSON report
    changed: set[str]  # hosts on which some operation ran commands
    failed: set[str]


def run(report_dir: Path, extra: list[str] | None = None, timeout: float = 900) -> FixRun:
    report_dir.mkdir(parents=True, exist_ok=True)
    for old in report_dir.glob("*.json"):
        old.unlink()
    cmd = [pyinfra_exe(), "-y", "--json", str(config.INVENTORY_PATH.relative_to(config.REPO_ROOT)),
           "deploys/fix_gpu.py", "--data", f"report_dir={report_dir}", *(extra or [])]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=config.REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout)
    seconds = time.monotonic() - t0
    if config.RUN_DIR.is_dir():  # kept in .cache/last-run-logs at teardown
        (config.RUN_DIR / f"pyinfra-{report_dir.name}.log").write_text(proc.stderr)
    reports = {}
    for path in report_dir.glob("*.json"):
        try:
            reports[path.stem] = json.loads(path.read_text())
        except ValueError:
            continue
    changed: set[str] = set()
    failed: set[str] = set()
    try:
        results = json.loads(proc.stdout).get("results") or {}
    except ValueError:
        results = {}
    for op in results.get("operations", []):
        changed.update(op.get("success", []))
    failed.update(results.get("failed_hosts", []))
    return FixRun(proc.returncode, proc.stdout, proc.stderr, seconds, reports, changed, failed)


@dataclass
class Judged:
    ok: bool
    why: str
    second_run_changes: bool = False
    notes: list[str] = field(default_factory=list)


def host_lines(stderr: str, host: str) -> list[str]:
    """pyinfra's output lines for one host (`[host] ...`)."""
    return [line.strip() for line in stderr.splitlines() if f"[{host}]" in line]


def judge(profile: Profile, first: FixRun, second: FixRun) -> Judged:
    name = profile.name
    report = first.reports.get(name, {})
    result = report.get("result")
    lines = " ".join(host_lines(first.stderr, name))
    want = profile.expected_fix
    reason = profile.expected_reason
    if want == "verified":
        ok = result == "verified" and name not in first.failed
        why = f"result {result}" + ("" if ok else f"; {_last_error(first.stderr, name)}")
    elif want in ("refused", "reboot required", "rolled back"):
        text = lines + " " + json.dumps(report.get("plan", {})) + json.dumps(
            report.get("verification", {}))
        ok = result == want and name in first.failed and (not reason or reason in text)
        why = f"result {result}, failed={name in first.failed}, reason seen={reason in text}"
    elif want == "lost":
        ok = name in first.failed and name in second.failed
        why = f"failed in run 1: {name in first.failed}, unreachable in run 2: {name in second.failed}"
    elif want == "bad host data":
        ok = name in first.failed and f"host data {reason}" in first.stderr and not report
        why = f"failed={name in first.failed}, key named={f'host data {reason}' in first.stderr}"
    else:
        ok, why = False, f"unknown expected_fix {want!r}"
    return Judged(ok, why, name in second.changed)


def _last_error(stderr: str, host: str) -> str:
    lines = [ln for ln in host_lines(stderr, host) if re.search(r"error|fail|not on|refus", ln, re.I)]
    return lines[-1][:300] if lines else "no error line"


@dataclass
class Twice:
    first: FixRun
    second: FixRun
    judged: dict[str, Judged]
    dry: FixRun | None = None
    dry_changed: dict[str, list[str]] = field(default_factory=dict)  # host -> paths

    @property
    def converged(self) -> int:
        return sum(j.ok and not j.second_run_changes for j in self.judged.values())


def fix_twice(lab, tmp: Path) -> Twice:  # noqa: ANN001 - tests.lab.lab.Lab
    """deploys/fix_gpu.py over every host of LAB twice (faults played), every host judged."""
    import threading

    # --dry first: it must print every plan and leave every host as it was (what the host
    # writes itself, its journal and Ollama's log, is outside the watched trees).
    watched = ("etc", "usr", "var/lib/dpkg", "var/lib/ollama-gpu-fix", "var/cache/ollama-gpu-fix")
    before = {h.name: _upper_state(h.dir / "upper", watched) for h in lab.hosts}
    dry = run(tmp / "dry", ["--dry"])
    dry_changed = {}
    for h in lab.hosts:
        after = _upper_state(h.dir / "upper", watched)
        old = before[h.name]
        dry_changed[h.name] = sorted(k for k in old.keys() | after.keys()
                                     if old.get(k) != after.get(k))
    stop = threading.Event()
    watchers = [lab.cut_when_changed(p.name, stop) for p in lab.profiles if "ssh-stop" in p.faults]
    first = run(tmp / "fix1")
    stop.set()
    for watcher in watchers:
        watcher.join()
    second = run(tmp / "fix2")
    judged = {}
    for p in lab.profiles:
        verdict = judge(p, first, second)
        if p.expected_fix == "lost":
            verdict.ok = lab.revive(p.name) and verdict.ok
        judged[p.name] = verdict
    return Twice(first, second, judged, dry, dry_changed)


def _upper_state(upper: Path, trees: tuple[str, ...]) -> dict[str, tuple[int, int, int]]:
    """What a host has written to its overlay under TREES: path -> (mode, size, mtime)."""
    state = {}
    for tree in trees:
        for path in (upper / tree).rglob("*") if (upper / tree).exists() else []:
            st = path.lstat()
            state[str(path.relative_to(upper))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return state
