"""`ollama-gpu-fix collect [DIR]`: a bundle of this machine, exactly what the live probe sees.

It runs the same probe.sh that the pyinfra fact runs (with `sh`, locally), so a bundle a user
sends and a live diagnosis read the same evidence. The bundle is redacted before it is
written (ollama_gpu_fix.redact) and lands in a new 0700 directory of 0600 files.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ollama_gpu_fix.bundle import BundleError, decode, split_stream, write_bundle

# The probe bounds each of its commands; this guards the whole run against a wedged host.
PROBE_TIMEOUT_S = 300
TIMEOUT_ENV = "OLLAMA_GPU_FIX_PROBE_TIMEOUT"
# The probe's output is bounded per section; this bounds the stream as a whole.
MAX_STREAM_BYTES = 64 * 1024 * 1024


class ProbeTimeout(Exception):
    """The probe did not finish in time."""


def probe_timeout() -> float:
    """Seconds the whole probe may take: OLLAMA_GPU_FIX_PROBE_TIMEOUT, else 300."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return PROBE_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise ValueError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds in (0, 3600]")
    return value


def probe_text() -> str:
    from ollama_gpu_fix.scripts import script

    return script("probe")


def run_probe(shell: str = "sh", env: dict[str, str] | None = None,
              timeout: float | None = None) -> str:
    """Run probe.sh locally and return its stream; ProbeTimeout when it outlives TIMEOUT.

    The probe and every command it started are killed together (own process group)."""
    script = probe_text()
    limit = probe_timeout() if timeout is None else timeout
    proc = subprocess.Popen(
        [shell, "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise ProbeTimeout(limit) from None
    return decode(out[:MAX_STREAM_BYTES])


def default_directory() -> str:
    """./ollama-gpu-bundle-HOST-YYYYmmdd-HHMMSS: a new name per run, so runs never mix."""
    host = socket.gethostname().split(".")[0] or "localhost"
    return f"ollama-gpu-bundle-{host}-{time.strftime('%Y%m%d-%H%M%S')}"


def _writable_directory(path: Path) -> str | None:
    """Why `path` cannot hold a bundle, or None when it can (checked before the probe runs)."""
    if path.is_symlink():
        return "it is a symbolic link"
    if path.exists():
        if not path.is_dir():
            return "it exists and is not a directory"
        try:
            if any(path.iterdir()):
                return "it is not empty (a bundle never mixes two runs)"
        except OSError as exc:
            return exc.strerror or str(exc)
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        return f"{probe} is not a directory"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None


def _fail(target: Path, reason: str) -> int:
    print(f"ollama-gpu-fix collect: cannot write bundle to {target}: {reason}", file=sys.stderr)
    return 2


def collect(directory: str | None) -> int:
    """Write the bundle; print its directory and file count. 0 on success, 2 otherwise."""
    target = Path(directory or default_directory())
    reason = _writable_directory(target)
    if reason:
        return _fail(target, reason)
    try:
        stream = run_probe()
    except ValueError as exc:
        print(f"ollama-gpu-fix collect: {exc}", file=sys.stderr)
        return 2
    except ProbeTimeout as exc:
        print(
            f"ollama-gpu-fix collect: the probe did not finish within {exc.args[0]:g} s (a "
            f"command on this host hangs; {TIMEOUT_ENV} sets the limit); nothing was written",
            file=sys.stderr,
        )
        return 2
    except OSError as exc:
        print(f"ollama-gpu-fix collect: cannot run the probe: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    try:
        written = write_bundle(target, split_stream(stream.splitlines()))
    except BundleError as exc:
        return _fail(target, str(exc))
    print(f"{target}: {len(written)} files")
    return 0
