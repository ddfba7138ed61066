"""Run deploys/fix_gpu.py over the lab twice and judge every host against its profile.

A host converged when its first run ended as its profile says (verified on the GPU, or the
documented refusal, reboot-required, rollback, stated failure, lost host, bad host data), its
second run changed nothing (pyinfra's own --json results name no host under "success", an
operation that ran commands), its protected paths are as they were, its after_checks pass,
it is no worse than right before the first fix run (tests/lab/noworse.py), and no output line
of the host carries an ESC or CR byte (text from the host must never drive the terminal).

pyinfra runs are bounded: a run that hangs is killed with its whole process group, and every
host is then judged from the report file the fix writes itself, saying so.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ollama_gpu_fix import runs
from tests.lab import config, noworse
from tests.lab.diagnose_run import pyinfra_exe
from tests.lab.profiles import Profile

JOURNAL = "/var/lib/ollama-gpu-fix/txn/journal"  # change.sh's transaction journal
# Generations the service answered: the double's access log (GIN lines) of /api/generate, in
# the unit's journal, or in server.log on a host without systemd.
GENERATIONS = ("{ journalctl -u ollama --no-pager -o cat 2>/dev/null;"
               " cat /usr/share/ollama/.ollama/logs/server.log 2>/dev/null; }"
               " | grep -c '\"/api/generate\"'; true")


@dataclass
class FixRun:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    reports: dict[str, dict]  # host -> its JSON report
    changed: set[str]  # hosts on which some operation ran commands
    failed: set[str]
    json_ok: bool = True  # pyinfra printed its --json results
    note: str = ""  # why not (killed after the bound, crashed)


def fix_bound(hosts: int) -> float:
    """Seconds one fix run over HOSTS hosts may take before it counts as hung: far above
    what a run needs here (about 1 s per host, plus the reboots and the waits for Ollama)."""
    return 150.0 + 2.5 * hosts


STALL_S = 100.0  # no output line for this long: the run hangs (a normal run is never that quiet)


def run(report_dir: Path, extra: list[str] | None = None, timeout: float = 900,
        stall: float = STALL_S) -> FixRun:
    """One pyinfra run of deploys/fix_gpu.py over the lab. Bounded twice: TIMEOUT in all, and
    STALL seconds without an output line (pyinfra prints every host's result of every
    operation; one host stuck in a command stops the whole run at that operation). Past
    either bound the run's process group is killed and the note says so."""
    report_dir.mkdir(parents=True, exist_ok=True)
    cmd = [pyinfra_exe(), "-y", "--json", str(config.INVENTORY_PATH.relative_to(config.REPO_ROOT)),
           "deploys/fix_gpu.py", "--data", f"report_dir={report_dir}", *(extra or [])]
    t0 = time.monotonic()
    # bytes, decoded by hand: text mode would turn a CR into a newline, and the CR check
    # (control_problems) must see what pyinfra printed
    proc = subprocess.Popen(cmd, cwd=config.REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    out: list[bytes] = []
    err: list[bytes] = []
    last = [t0]

    def pump_err() -> None:
        for line in proc.stderr:
            err.append(line)
            last[0] = time.monotonic()

    pumps = [threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True),
             threading.Thread(target=pump_err, daemon=True)]
    for pump in pumps:
        pump.start()
    note = ""
    while proc.poll() is None and not note:
        now = time.monotonic()
        if now - t0 > timeout:
            note = f"killed after {timeout:.0f} s (the run hung)"
        elif now - last[0] > stall:
            note = (f"killed after {now - t0:.0f} s: no output for {stall:.0f} s (the run "
                    "hung)")
        else:
            time.sleep(0.2)
    if note:
        kill_group(proc)
    proc.wait()
    for pump in pumps:
        pump.join(timeout=10)
    stdout = b"".join(out).decode(errors="replace")
    stderr = b"".join(err).decode(errors="replace")
    seconds = time.monotonic() - t0
    if config.RUN_DIR.is_dir():  # kept in .cache/last-run-logs at teardown
        (config.RUN_DIR / f"pyinfra-{report_dir.name}.log").write_text(stderr)
    reports = read_reports(report_dir)
    changed: set[str] = set()
    failed: set[str] = set()
    try:
        results = json.loads(stdout).get("results") or {}
        json_ok = True
    except ValueError:
        results, json_ok = {}, False
        note = note or f"pyinfra exited {proc.returncode} without its JSON results"
    for op in results.get("operations", []):
        changed.update(op.get("success", []))
    failed.update(results.get("failed_hosts", []))
    return FixRun(proc.returncode, stdout, stderr, seconds, reports, changed, failed, json_ok,
                  note)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group the run leads (pyinfra and its ssh children)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def read_reports(report_dir: Path) -> dict[str, dict]:
    """host -> its report of the latest run written to REPORT_DIR (through its index)."""
    return runs.run_reports(report_dir)


@dataclass
class Judged:
    ok: bool  # the first run ended as the profile says
    why: str
    second_run_changes: bool = False
    notes: list[str] = field(default_factory=list)
    protect: list[str] = field(default_factory=list)  # protected paths that changed
    checks: list[str] = field(default_factory=list)  # after_checks that failed
    worse: list[str] = field(default_factory=list)  # no-worse regressions (noworse.py)
    control: list[str] = field(default_factory=list)  # ESC/CR bytes in the host's output

    @property
    def problems(self) -> list[str]:
        return self.protect + self.checks + self.worse + self.control

    @property
    def converged(self) -> bool:
        return self.ok and not self.second_run_changes and not self.problems


def host_lines(stderr: str, host: str) -> list[str]:
    """pyinfra's output lines for one host (`[host] ...`)."""
    return [line.strip() for line in stderr.splitlines() if f"[{host}]" in line]


HOST_PREFIX = re.compile(r"^\s+\[[^\]]+\]")


def host_output_lines(text: str, host: str) -> list[str]:
    """Every output line that belongs to HOST, split on newlines only (a CR inside a line is
    kept): its `[host]` lines and the block its diagnosis and plan are printed in (from
    `== host ==` to the next host's block or pyinfra's next own line)."""
    out, inside = [], False
    for line in text.split("\n"):
        if f"[{host}]" in line:
            out.append(line)
            inside = False
            continue
        if line.rstrip("\r") == f"== {host} ==":
            inside = True
        elif inside and (line.startswith(("== ", "-->")) or HOST_PREFIX.match(line)):
            inside = False
        if inside:
            out.append(line)
    return out


def control_problems(runs: list[tuple[str, str]], host: str) -> list[str]:
    """ESC or CR bytes in HOST's output lines of RUNS ((label, pyinfra output) pairs)."""
    out = []
    for label, text in runs:
        bad = [line for line in host_output_lines(text, host) if "\x1b" in line or "\r" in line]
        if bad:
            out.append(f"{label}: {len(bad)} output line(s) carry ESC/CR bytes, first: "
                       f"{ascii(bad[0])[:200]}")
    return out


def judge(profile: Profile, first: FixRun, second: FixRun) -> Judged:
    name = profile.name
    report = first.reports.get(name, {})
    result = report.get("result")
    lines = " ".join(host_lines(first.stderr, name))
    want = profile.expected_fix
    reason = profile.expected_reason
    notes = []
    if not first.json_ok:
        notes.append(f"run 1: {first.note}; judged from {name}.json alone")
    if not report:
        notes.append(f"run 1 left no report {name}.json")
    # whether pyinfra failed the host: unknown (None) when it wrote no JSON
    failed = (name in first.failed) if first.json_ok else None
    if want == "verified":
        ok = result == "verified" and failed is not True
        why = f"result {result}" + ("" if ok else f"; {_last_error(first.stderr, name)}")
    elif want in ("refused", "reboot required", "applied", "rolled back", "failed"):
        text = " ".join([lines, str(report.get("reason", "")),
                         json.dumps(report.get("plan", {})), json.dumps(report.get("verification", {}))])
        seen = not reason or reason in text
        ok = result == want and failed is not False and seen
        why = f"result {result}, failed={failed}, reason seen={seen}"
        if not ok and result != want:
            why += (f"; reason: {str(report.get('reason', ''))[:300]!r}; "
                    f"{_last_error(first.stderr, name)}")
    elif want == "lost":
        ok = name in first.failed and name in second.failed
        why = f"failed in run 1: {name in first.failed}, unreachable in run 2: {name in second.failed}"
    elif want == "bad host data":
        ok = name in first.failed and f"host data {reason}" in first.stderr and not report
        why = f"failed={name in first.failed}, key named={f'host data {reason}' in first.stderr}"
    else:
        ok, why = False, f"unknown expected_fix {want!r}"
    changes = name in second.changed
    if not second.json_ok:
        changes = True  # unknown: not converged
        notes.append(f"run 2: {second.note}; its changes are unknown")
    return Judged(ok, why, changes, notes)


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
    interrupted: dict[str, str] = field(default_factory=dict)  # host -> what the fault did
    checks_before: dict[str, list] = field(default_factory=dict)  # after_checks, before
    # host -> /api/generate requests the service answered during run 1 and run 2 (None:
    # unknown, the host could not be asked)
    generations: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)

    @property
    def converged(self) -> int:
        return sum(j.converged for j in self.judged.values())

    @property
    def second_run_changes(self) -> int:
        """Hosts the second run changed; -1 when it printed no JSON results (unknown)."""
        if not self.second.json_ok:
            return -1
        return sum(j.second_run_changes for j in self.judged.values())


@dataclass
class Interrupted:
    note: str
    output: str
    report: dict


def interrupt_after_write(lab, name: str, report_dir: Path,  # noqa: ANN001 - lab.Lab
                          timeout: float = 300) -> Interrupted:
    """Fault interrupt-after-write: fix host NAME alone and SIGKILL pyinfra's whole process
    group the moment the host's journal records the original of its first file (change.sh
    writes that record right before it writes the file), so the run dies between its first
    write and the restart every time."""
    host = next(h for h in lab.hosts if h.name == name)
    marker = host.dir / "upper" / JOURNAL.lstrip("/")
    report_dir.mkdir(parents=True, exist_ok=True)

    def seen() -> bool | None:
        try:
            text = marker.read_text(errors="replace")
        except OSError:
            return None
        return True if ("\nbackup " in "\n" + text) else None

    start = seen()
    cmd = [pyinfra_exe(), "-y", str(config.INVENTORY_PATH.relative_to(config.REPO_ROOT)),
           "deploys/fix_gpu.py", "--limit", name, "--data", f"report_dir={report_dir}"]
    log = config.RUN_DIR / f"pyinfra-interrupt-{name}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=config.REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        note = ""
        while not note:
            now = seen()
            if now is not None and now != start:
                kill_group(proc)
                note = f"pyinfra killed the moment its first write was journaled ({JOURNAL})"
            elif proc.poll() is not None:
                note = (f"the run ended (exit {proc.returncode}) without writing anything"
                        f" ({JOURNAL} has no backup): nothing to interrupt")
            elif time.monotonic() > deadline:
                kill_group(proc)
                note = f"pyinfra killed after {timeout:.0f} s without writing anything"
            else:
                time.sleep(0.01)
        proc.wait()
    lab.log(f"lab: fault: {name}: {note}")
    report = read_reports(report_dir).get(name, {})
    return Interrupted(note, log.read_bytes().decode(errors="replace"), report)


def generation_counts(lab) -> dict[str, int | None]:  # noqa: ANN001 - tests.lab.lab.Lab
    """Per host: how many /api/generate requests its Ollama has answered so far (read inside
    the host with nsenter: a host whose sshd a fault stopped still answers)."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.lab import hosts

    def count(name: str) -> int | None:
        entry = lab.state["pids"].get(f"nspawn:{name}")
        if not entry:
            return None
        try:
            out = hosts.run_inside(entry["pid"], ["sh", "-c", GENERATIONS], timeout=60)
        except (RuntimeError, subprocess.SubprocessError, OSError):
            return None
        text = out.stdout.strip()
        return int(text) if text.isdigit() else None

    names = [h.name for h in lab.hosts]
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(names)))) as pool:
        return dict(zip(names, pool.map(count, names), strict=True))


def _between(before: int | None, after: int | None) -> int | None:
    return None if before is None or after is None else after - before


def fix_twice(lab, tmp: Path) -> Twice:  # noqa: ANN001 - tests.lab.lab.Lab
    """deploys/fix_gpu.py over every host of LAB twice (faults played), every host judged."""
    bound = fix_bound(len(lab.hosts))
    lab.log("lab: recording every host before the fix (apt, units, owners and modes)")
    before = noworse.capture_all(lab)
    checks_before = noworse.checks_all(lab)
    interrupted = {p.name: interrupt_after_write(lab, p.name, tmp / "interrupted")
                   for p in lab.profiles if "interrupt-after-write" in p.faults}
    # --dry first: it must print every plan and leave every host as it was (what the host
    # writes itself, its journal and Ollama's log, is outside the watched trees; without
    # systemd, Ollama's log is server.log in the ollama account's home, which is skipped).
    watched = ("etc", "usr", "var/lib/dpkg", "var/lib/ollama-gpu-fix", "var/cache/ollama-gpu-fix")
    dry_before = {h.name: _upper_state(h.dir / "upper", watched) for h in lab.hosts}
    dry = run(tmp / "dry", ["--dry"], timeout=bound)
    dry_changed = {}
    for h in lab.hosts:
        after = _upper_state(h.dir / "upper", watched)
        old = dry_before[h.name]
        dry_changed[h.name] = sorted(k for k in old.keys() | after.keys()
                                     if old.get(k) != after.get(k))
    stop = threading.Event()
    watchers = [lab.cut_when_changed(p.name, stop) for p in lab.profiles if "ssh-stop" in p.faults]
    counted = generation_counts(lab)
    first = run(tmp / "fix1", timeout=bound)
    stop.set()
    for watcher in watchers:
        watcher.join()
    between = generation_counts(lab)
    second = run(tmp / "fix2", timeout=bound)
    ended = generation_counts(lab)
    generations = {h: (_between(counted.get(h), between.get(h)),
                       _between(between.get(h), ended.get(h))) for h in counted}
    revived = {p.name: lab.revive(p.name) for p in lab.profiles if p.expected_fix == "lost"}
    lab.log("lab: recording every host after the fix")
    after_state = noworse.capture_all(lab)
    checks = noworse.checks_all(lab)
    judged = {}
    for p in lab.profiles:
        verdict = judge(p, first, second)
        if p.name in revived:
            verdict.ok = revived[p.name] and verdict.ok
        host = next(h for h in lab.hosts if h.name == p.name)
        fault = interrupted.get(p.name)
        if fault:
            verdict.notes.append(f"interrupt-after-write: {fault.note}")
            if not fault.note.startswith("pyinfra killed the moment"):
                verdict.ok = False  # the profile's story never happened: nothing was tested
        reports = [r.get(p.name, {}) for r in (first.reports, second.reports)]
        reports += [fault.report] if fault else []
        verdict.protect = noworse.protect_problems(before[p.name], after_state[p.name])
        verdict.checks = noworse.failed_checks(checks[p.name])
        verdict.worse = noworse.problems(lab, host, before[p.name], after_state[p.name], reports)
        outputs = [("dry run", dry.stderr), ("run 1", first.stderr), ("run 2", second.stderr)]
        outputs += [("interrupted run", fault.output)] if fault else []
        verdict.control = control_problems(outputs, p.name)
        already = [line for line, rc, _ in checks_before.get(p.name, []) if rc != 0]
        if already:
            verdict.notes.append("after_checks already failing before the fix: "
                                 + "; ".join(already))
        judged[p.name] = verdict
    return Twice(first, second, judged, dry, dry_changed,
                 {k: v.note for k, v in interrupted.items()}, checks_before, generations)


OWN_WRITES = ("usr/share/ollama/.ollama/logs/",)  # Ollama's own log without systemd


def _upper_state(upper: Path, trees: tuple[str, ...]) -> dict[str, tuple[int, int, int]]:
    """What a host has written to its overlay under TREES: path -> (mode, size, mtime)."""
    state = {}
    for tree in trees:
        for path in (upper / tree).rglob("*") if (upper / tree).exists() else []:
            rel = str(path.relative_to(upper))
            if rel.startswith(OWN_WRITES):
                continue
            st = path.lstat()
            state[rel] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return state
