"""One report schema for every deploy: a file per host per run, never overwritten, and an index.

`<report_dir>/<host>/<time>-<mode>.json` (time: the run's start, UTC) holds one host's record of
one run; `<report_dir>/index.json` lists the runs and, per run, each host's file and result.
A run is one pyinfra invocation (or one wave of a rollout, which shares the rollout's id):
its id comes from OGF_RUN_ID when a rollout set it, else it is made here. Results that are
not final when the process ends (a run cut by Ctrl-C, a host whose connection died) are
rewritten as `interrupted` at exit, so a report never claims `planned` for a run that was
meant to change something. docs/report-schema.md documents every field.

Controller-side only (the reports live on the machine running pyinfra); no pyinfra import.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import re
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SCHEMA = "ollama-gpu-fix/report"
SCHEMA_VERSION = 2
INDEX = "index.json"
INDEX_SCHEMA = "ollama-gpu-fix/index"
INDEX_MAX_RUNS = 500  # the index stays small; the per-host files stay as they are
# ... and below read_index's 8 MiB: older runs go once the host lines beyond the newest run's
# pass this (~120 bytes a line: 500 runs of 128 hosts would reach 8 MiB, and a longer index
# is unreadable, so it would start again empty)
INDEX_MAX_LINES = 40_000
# index.json is one file, rewritten whole under a lock. Rewritten at every report write, a run
# of N hosts paid O(N) per write, O(N^2) in all, and O(index) per write in a report_dir with
# history (bench/scale.py; docs/scale.md). So this process keeps its index lines and rewrites
# the index when the writes waiting reach a tenth of the lines it lists (a small index: at
# every write, as before) or at a write INDEX_MAX_LAG seconds after its last rewrite, on a read
# through read_index, and at exit: the rewrites of a run cost O(N) in all. A process killed
# with SIGKILL loses its last lines of the index (its report files are all there).
INDEX_BATCH = 10
INDEX_MAX_LAG = 5.0
MODES = ("diagnose", "dry", "fix", "verify", "rollout")
# results a run ends with; "planned" is final only for a dry run and "diagnosed" only for a
# diagnosis, "applying" never is (rewritten as interrupted at exit)
RESULTS = ("diagnosed", "planned", "applying", "applied", "verified", "refused", "failed",
           "rolled back", "reboot required", "interrupted")
_RUN_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}")
# a report's place below report_dir, as the index names it (nothing else is read through it)
_REPORT_FILE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*/[0-9]{8}T[0-9]{6}Z-[a-z]+(-[0-9]+)?\.json")
_INTERRUPT = {"reason": None}


def safe_file_name(host_name: str) -> str:
    """A host name as a file name: `@local` -> `local`, `@vagrant/box` -> `vagrant_box`."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", host_name).strip("._")
    return "host" if not name else f"{name}_" if name == INDEX else name


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def valid_run_id(value: str) -> bool:
    return bool(_RUN_ID.fullmatch(value))


@dataclass
class Run:
    """This process's run: its id, mode, start, and the report file of each host."""

    run_id: str
    mode: str
    started_at: str
    rollout: dict[str, Any] | None = None
    files: dict[tuple[str, str], Path] = field(default_factory=dict)  # (dir, host) -> file
    taken: set[Path] = field(default_factory=set, repr=False)  # files' values, for O(1) lookup
    open: dict[Path, dict[str, Any]] = field(default_factory=dict)  # written, not final
    # what a report still open at exit says of the host's state (its steps applied so far)
    on_interrupt: dict[Path, Callable[[dict[str, Any]], None]] = field(default_factory=dict)

    def path_for(self, report_dir: Path, host: str) -> Path:
        """The host's file for this run: chosen once, never another run's file."""
        key = (str(report_dir), host)
        if key not in self.files:
            stamp = self.run_id.split("-", 1)[0]
            folder = report_dir / safe_file_name(host)
            path = folder / f"{stamp}-{self.mode}.json"
            n = 2
            while path.exists() or path in self.taken:  # a set: one host costs O(1), not O(N)
                path = folder / f"{stamp}-{self.mode}-{n}.json"
                n += 1
            self.files[key] = path
            self.taken.add(path)
        return self.files[key]


_RUNS: dict[str, Run] = {}


def current(mode: str) -> Run:
    """The run of this process for MODE (one per mode: a process runs one deploy)."""
    if mode not in MODES:
        raise ValueError(f"unknown report mode {mode!r}")
    if mode not in _RUNS:
        given = os.environ.get("OGF_RUN_ID", "")
        run_id = given if valid_run_id(given) else new_run_id()
        wave = os.environ.get("OGF_ROLLOUT_WAVE", "")
        rollout = {"id": run_id, "wave": wave} if wave else None
        # a fix driven by `ollama-gpu-fix rollout` is the rollout's; its dry run stays "dry"
        run = Run(run_id, "rollout" if rollout and mode == "fix" else mode, now(), rollout)
        _RUNS[mode] = run
        if len(_RUNS) == 1:
            atexit.register(finish_open_reports)
    return _RUNS[mode]


def envelope(run: Run, host: str) -> dict[str, Any]:
    """The fields every report starts with."""
    data: dict[str, Any] = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION,
                            "mode": run.mode, "run_id": run.run_id, "host": host,
                            "started_at": run.started_at, "ended_at": None}
    if run.rollout:
        data["rollout"] = dict(run.rollout)
    return data


def is_final(data: dict[str, Any]) -> bool:
    result = data.get("result")
    if result == "planned":
        return data.get("mode") == "dry"
    return result not in (None, "applying")


def write(run: Run, path: Path, data: dict[str, Any]) -> None:
    """Write a host's report atomically (0600, in a directory only its owner may write) and
    list it in the index; a final result stamps ended_at."""
    if is_final(data) and not data.get("ended_at"):
        data["ended_at"] = now()
    report_dir = path.parent.parent
    private_dir(report_dir)
    private_dir(path.parent)
    _atomic(path, json.dumps(data, indent=2, default=str) + "\n")
    if is_final(data):
        run.open.pop(path, None)
    else:
        run.open[path] = data
    _index(report_dir, run, data, path)


def private_dir(folder: Path) -> None:
    """FOLDER exists, made 0700 if new, and is the user's own (not a link, writable by nobody
    else): checked again at every write, as another user may have raced us to it."""
    from ollama_gpu_fix.policy import report_dir_problem

    if not folder.is_dir():
        folder.mkdir(mode=0o700, exist_ok=True)
    problem = report_dir_problem(folder)
    if problem:
        raise OSError(f"refusing to write a report there: {problem}")


def write_text(path: Path, text: str, report_dir: Path | None = None) -> None:
    """A file beside the reports (a fleet page, a rollout's state) or where the user asked:
    private, atomic, in a directory that is the user's own (and so is REPORT_DIR, when the
    file goes below it)."""
    if report_dir is not None:
        private_dir(report_dir)
    private_dir(path.parent)
    _atomic(path, text)


def _atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# index lines this process has not written yet: report_dir -> (run_id, mode) -> its run, the
# hosts' lines and the latest end; writes waiting per report_dir; when the index was last
# rewritten and how many host lines it listed then
_PENDING: dict[Path, dict[tuple[str, str], dict[str, Any]]] = {}
_WAITING: dict[Path, int] = {}
_FLUSHED: dict[Path, tuple[float, int]] = {}


def _index(report_dir: Path, run: Run, data: dict[str, Any], path: Path) -> None:
    """Add or update this host's line of this run in index.json: now, or batched (INDEX_BATCH)."""
    key = Path(os.path.abspath(report_dir))
    entry = _PENDING.setdefault(key, {}).setdefault(
        (run.run_id, run.mode), {"run": run, "hosts": {}, "ended_at": None})
    entry["hosts"][data.get("host", path.parent.name)] = {
        "file": str(path.relative_to(report_dir)), "result": data.get("result"),
        "primary": data.get("primary")}
    if data.get("ended_at"):
        entry["ended_at"] = max(entry["ended_at"] or "", data["ended_at"])
    _WAITING[key] = _WAITING.get(key, 0) + 1
    last = _FLUSHED.get(key)
    if (last is None or _WAITING[key] * INDEX_BATCH >= last[1]
            or time.monotonic() - last[0] >= INDEX_MAX_LAG):
        flush_index(key)


def flush_index(report_dir: Path | None = None) -> None:
    """Write the index lines this process holds (REPORT_DIR's, else all) into index.json,
    under a lock (several processes, a rollout's waves, may write one report_dir)."""
    folders = list(_PENDING) if report_dir is None else [Path(os.path.abspath(report_dir))]
    for folder in folders:
        waiting = _PENDING.pop(folder, None)
        if not waiting:
            continue
        try:
            lines = _rewrite_index(folder, waiting)
        except BaseException:
            _PENDING[folder] = waiting  # kept for the next try (nothing was added meanwhile)
            raise
        _WAITING.pop(folder, None)
        _FLUSHED[folder] = (time.monotonic(), lines)


def _rewrite_index(report_dir: Path, waiting: dict[tuple[str, str], dict[str, Any]]) -> int:
    lock = os.open(report_dir / ".index.lock", os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        index = _read_index_file(report_dir)
        runs = index["runs"]
        for (run_id, mode), pending in waiting.items():
            run = pending["run"]
            entry = next((r for r in runs if r.get("run_id") == run_id
                          and r.get("mode") == mode), None)
            if entry is None:
                entry = {"run_id": run_id, "mode": mode, "started_at": run.started_at,
                         "ended_at": None, "hosts": {}}
                if run.rollout:
                    entry["rollout"] = dict(run.rollout)
                runs.append(entry)
            entry["hosts"].update(pending["hosts"])
            ends = [pending["ended_at"]] if pending["ended_at"] else []
            entry["ended_at"] = max([entry.get("ended_at") or "", *ends]) or None
        runs = runs[-INDEX_MAX_RUNS:]
        lines = sum(len(r["hosts"]) for r in runs)
        while len(runs) > 1 and lines - len(runs[-1]["hosts"]) > INDEX_MAX_LINES:
            lines -= len(runs.pop(0)["hosts"])
        index["runs"] = runs
        _atomic(report_dir / INDEX, json.dumps(index, indent=1) + "\n")
        return lines
    finally:
        os.close(lock)


def read_index(report_dir: Path) -> dict[str, Any]:
    """index.json, or an empty one (missing, unreadable or not ours: rebuilt from here on),
    with every line this process has written."""
    try:
        flush_index(report_dir)
    except OSError:
        pass  # the lines stay waiting; the writer says why at its next write
    return _read_index_file(report_dir)


def _read_index_file(report_dir: Path) -> dict[str, Any]:
    try:
        with open(report_dir / INDEX, encoding="utf-8") as fh:
            index = json.loads(fh.read(8 << 20))
    except (OSError, ValueError):
        index = None
    if not isinstance(index, dict) or not isinstance(index.get("runs"), list):
        index = {"schema": INDEX_SCHEMA, "schema_version": 1, "runs": []}
    index["runs"] = [r for r in index["runs"]
                     if isinstance(r, dict) and isinstance(r.get("hosts"), dict)]
    return index


def interrupted(reason: str) -> None:
    """Record why the process is about to end early (Ctrl-C): reports still open say so."""
    _INTERRUPT["reason"] = reason


def interrupted_by() -> str | None:
    """Why the process is ending early (None: it is not, or nobody said)."""
    return _INTERRUPT["reason"]


def finish_open_reports() -> None:
    """At exit: every report this process left open was interrupted before its result."""
    for run in list(_RUNS.values()):
        for path, data in list(run.open.items()):
            why = _INTERRUPT["reason"] or "the run ended before this host finished"
            data.update(result="interrupted", reason=data.get("interrupted_by") or why)
            hook = run.on_interrupt.get(path)
            if hook is not None:
                hook(data)
            try:
                write(run, path, data)
            except OSError as exc:
                print(f"ollama-gpu-fix: cannot finish the report {path}: {exc}", file=sys.stderr)
    _flush_at_exit()


def _flush_at_exit() -> None:
    try:
        flush_index()
    except OSError as exc:
        print(f"ollama-gpu-fix: cannot write the index of the reports: {exc}", file=sys.stderr)


# every process writes its waiting index lines at exit, whether or not it made its run with
# current() (registered first, so it runs last: after finish_open_reports, which flushes too)
atexit.register(_flush_at_exit)


def load(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.loads(fh.read(64 << 20))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _listed(report_dir: Path, line: Any) -> dict[str, Any] | None:  # noqa: ANN401 - JSON
    """The report an index line names, if the name is a report's (never a path elsewhere)."""
    name = line.get("file") if isinstance(line, dict) else None
    if not isinstance(name, str) or not _REPORT_FILE.fullmatch(name):
        return None
    data = load(report_dir / name)
    if data is not None:
        data["_file"] = name
    return data


def run_reports(report_dir: Path, run_id: str | None = None,
                mode: str | None = None) -> dict[str, dict[str, Any]]:
    """host -> report of one run (RUN_ID, else the latest run of MODE, else the latest run),
    read through the index."""
    runs = read_index(report_dir)["runs"]
    chosen = [r for r in runs if (run_id is None or r.get("run_id") == run_id)
              and (mode is None or r.get("mode") == mode)]
    if run_id is None:
        chosen = chosen[-1:]
    out: dict[str, dict[str, Any]] = {}
    for entry in chosen:
        for host, line in (entry.get("hosts") or {}).items():
            data = _listed(report_dir, line)
            if data is not None:
                out[host] = data
    return out


def latest_by_host(report_dir: Path, modes: tuple[str, ...] = MODES) -> dict[str, dict[str, Any]]:
    """host -> its newest report among MODES."""
    out: dict[str, dict[str, Any]] = {}
    for entry in read_index(report_dir)["runs"]:
        if entry.get("mode") not in modes:
            continue
        for host, line in (entry.get("hosts") or {}).items():
            data = _listed(report_dir, line)
            if data is not None:
                out[host] = data
    return out
