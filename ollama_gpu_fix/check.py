"""`ollama-gpu-fix check`: one watchdog check of this machine (the systemd timer runs it).

The probe in "look" mode (no generation: /api/ps, the listener, the GPU's process list and the
log, bound to the service as the diagnosis reads them), the diagnosis, the watchdog's verdict
(ollama_gpu_fix.watchdog), then three files, each written to a temporary name in its own
directory and renamed (a reader never sees half of one): the node_exporter textfile when a
directory is given, the state the next check starts from, and the last check as JSON for
the fleet. With --generate, an idle server (no model loaded) also runs the bounded generation
the fix verifies with, to time it. Exit status: watchdog.OK/WARNING/CRITICAL/UNKNOWN.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from ollama_gpu_fix import watchdog

STATE_DIR = Path("/var/lib/ollama-gpu-fix/watchdog")
TEXTFILE = "ollama_gpu_fix.prom"
MAX_STATE_BYTES = 1 << 20
SAFE_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


def _probe(observe: str) -> dict[str, str]:
    from ollama_gpu_fix.bundle import split_stream
    from ollama_gpu_fix.collect import run_probe

    stream = run_probe(env={**SAFE_ENV, "OGF_OBSERVE": observe, "OGF_OBSERVE_TOKENS": "4"},
                       timeout=120)
    return split_stream(stream.splitlines())


def _private_dir(path: Path) -> None:
    """PATH is a directory of this user's own, not a link, writable by nobody else (made 0700
    when missing): the state decides what the next check reports."""
    from ollama_gpu_fix.policy import report_dir_problem

    if not path.is_dir():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    problem = report_dir_problem(path)
    if problem:
        raise OSError(f"{path}: {problem}")


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """PATH holds TEXT: a temporary file in the same directory (a name node_exporter skips:
    it reads *.prom only), then a rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_state(state_dir: Path) -> watchdog.State:
    try:
        with open(state_dir / "state.json", encoding="utf-8") as fh:
            return watchdog.State.loads(fh.read(MAX_STATE_BYTES))
    except OSError:
        return watchdog.State()


def run_check(state_dir: Path = STATE_DIR, textfile_dir: Path | None = None,
              generate: bool = False) -> watchdog.Check:
    from ollama_gpu_fix.parsers import build_snapshot
    from ollama_gpu_fix.rules import diagnose

    _private_dir(state_dir)
    sections = _probe("look")
    snapshot = build_snapshot(sections)
    generated = None
    idle = snapshot.loaded_models == [] and snapshot.unit is not None \
        and snapshot.unit.active_state == "active"
    if generate and idle:
        sections = _probe("generate")
        snapshot = build_snapshot(sections)
        observed = snapshot.observation
        generated = observed.tokens_per_s if observed is not None else None
    diagnosis = diagnose(snapshot)
    check = watchdog.assess(snapshot, diagnosis, _read_state(state_dir), time.time(), generated)
    write_atomic(state_dir / "state.json", check.state.dumps(), 0o600)
    write_atomic(state_dir / "last-check.json",
                 json.dumps(watchdog.record(check), indent=1) + "\n", 0o600)
    if textfile_dir is not None and check.ollama:
        write_atomic(textfile_dir / TEXTFILE, watchdog.exposition(check))
    elif textfile_dir is not None:
        (textfile_dir / TEXTFILE).unlink(missing_ok=True)  # quiet: no series without Ollama
    return check


def main(state_dir: str | None, textfile_dir: str | None, generate: bool) -> int:
    """The CLI: one line (status and summary, as a monitoring plugin prints it), the status."""
    from ollama_gpu_fix.report import printable

    try:
        check = run_check(Path(state_dir) if state_dir else STATE_DIR,
                          Path(textfile_dir) if textfile_dir else None, generate)
    except Exception as exc:  # noqa: BLE001 - a check that cannot run is UNKNOWN, with why
        print(f"UNKNOWN: {type(exc).__name__}: {printable(str(exc))[:300]}")
        return watchdog.UNKNOWN
    print(f"{watchdog.STATUS[check.status]}: {printable(check.summary)[:300]}")
    return check.status

