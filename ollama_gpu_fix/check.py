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
            os.fchmod(fh.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def open_dir(path: Path) -> int:
    """A descriptor of directory PATH reached without following a link at any component, and
    that is root's and writable by nobody else: what the textfile is written through.

    node_exporter's directory sits below one its own user owns (Debian: /var/lib/prometheus
    is prometheus's); a swap of a component after this walk cannot redirect the write, a
    swap before it finds a link or a directory that is not root's, and nothing is written."""
    if not path.is_absolute():
        raise OSError(f"{path} is not an absolute path")
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in path.parts[1:]:
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nxt
        st = os.fstat(fd)
        if st.st_uid != 0 or st.st_mode & 0o022:
            raise OSError(f"{path} is not root's alone (uid {st.st_uid}, mode "
                          f"{st.st_mode & 0o777:o}): no textfile is written there")
        return fd
    except BaseException:
        os.close(fd)
        raise


def write_textfile(directory: Path, text: str | None) -> None:
    """DIRECTORY/ollama_gpu_fix.prom holds TEXT (None: it is removed), through the directory's
    descriptor: a temporary name node_exporter skips (*.prom only), then a rename."""
    dfd = open_dir(directory)
    try:
        if text is None:
            try:
                os.unlink(TEXTFILE, dir_fd=dfd)
            except FileNotFoundError:
                pass
            return
        tmp = f".{TEXTFILE}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644,
                     dir_fd=dfd)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                os.fchmod(fh.fileno(), 0o644)
            os.replace(tmp, TEXTFILE, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dfd)
            except OSError:
                pass
            raise
    finally:
        os.close(dfd)


def _cpu() -> float:
    """CPU seconds of this process and of the children it waited for (the probe)."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


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

    started = _cpu()
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
    check.cpu_seconds = _cpu() - started
    write_atomic(state_dir / "state.json", check.state.dumps(), 0o600)
    write_atomic(state_dir / "last-check.json",
                 json.dumps(watchdog.record(check), indent=1) + "\n", 0o600)
    if textfile_dir is not None and textfile_dir.is_dir():  # no node_exporter: nothing
        # no Ollama: no series at all (a quiet host, not a zero to alert on)
        write_textfile(textfile_dir, watchdog.exposition(check) if check.ollama else None)
    return check


def retire(state_dir: Path = STATE_DIR, textfile_dir: Path | None = None) -> None:
    """The watchdog is being removed: its textfile goes (no stale series) and its state."""
    if textfile_dir is not None and textfile_dir.is_dir():
        write_textfile(textfile_dir, None)
    for name in ("state.json", "last-check.json"):
        (state_dir / name).unlink(missing_ok=True)


def main(state_dir: str | None, textfile_dir: str | None, generate: bool,
         retiring: bool = False) -> int:
    """The CLI: one line (status and summary, as a monitoring plugin prints it), the status."""
    from ollama_gpu_fix.report import printable

    if retiring:
        retire(Path(state_dir) if state_dir else STATE_DIR,
               Path(textfile_dir) if textfile_dir else None)
        print("OK: the watchdog's textfile and state are removed")
        return watchdog.OK
    try:
        check = run_check(Path(state_dir) if state_dir else STATE_DIR,
                          Path(textfile_dir) if textfile_dir else None, generate)
    except Exception as exc:  # noqa: BLE001 - a check that cannot run is UNKNOWN, with why
        print(f"UNKNOWN: {type(exc).__name__}: {printable(str(exc))[:300]}")
        return watchdog.UNKNOWN
    print(f"{watchdog.STATUS[check.status]}: {printable(check.summary)[:300]}")
    return check.status

