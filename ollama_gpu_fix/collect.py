"""`ollama-gpu-fix collect [DIR]`: a bundle of this machine, exactly what the live probe sees.

It runs the same probe.sh that the pyinfra fact runs (with `sh`, locally), so a bundle a user
sends and a live diagnosis read the same evidence.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from importlib import resources
from pathlib import Path

from ollama_gpu_fix.bundle import decode, split_stream, write_bundle

# The probe bounds each of its commands; this only guards against a wedged shell.
PROBE_TIMEOUT_S = 300


def run_probe(shell: str = "sh", env: dict[str, str] | None = None) -> str:
    """Run probe.sh locally and return its stream (the script always exits 0)."""
    script = resources.files("ollama_gpu_fix").joinpath("probe.sh").read_text(encoding="utf-8")
    proc = subprocess.run(
        [shell, "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        timeout=PROBE_TIMEOUT_S,
        env=env,
        check=False,
    )
    return decode(proc.stdout)


def default_directory() -> str:
    host = socket.gethostname().split(".")[0] or "localhost"
    return f"ollama-gpu-bundle-{host}"


def _writable_directory(path: Path) -> str | None:
    """Why `path` cannot hold a bundle, or None when it can (checked before the probe runs)."""
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


def collect(directory: str | None) -> int:
    """Write the bundle; print its directory and file count. 0 on success, 2 when unwritable."""
    target = Path(directory or default_directory())
    reason = _writable_directory(target)
    if reason:
        print(f"ollama-gpu-fix collect: cannot write bundle to {target}: {reason}", file=sys.stderr)
        return 2
    try:
        sections = split_stream(run_probe().splitlines())
        written = write_bundle(target, sections)
    except OSError as exc:
        msg = exc.strerror or str(exc)
        print(f"ollama-gpu-fix collect: cannot write bundle to {target}: {msg}", file=sys.stderr)
        return 2
    except subprocess.SubprocessError as exc:
        print(f"ollama-gpu-fix collect: the probe failed: {exc}", file=sys.stderr)
        return 2
    print(f"{target}: {len(written)} files")
    return 0
