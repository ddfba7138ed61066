"""Install, update or remove the watchdog on a host (knob install_watchdog; README "Watchdog").

The fix registers this after its verification, so a watchdog lands only on a host whose model
was just proven on the GPU (a failed host runs no further operation). Three root files: the
check as a zipapp (ollama_gpu_fix.checkapp), a oneshot service and its timer, written through
change.sh (root's own directories, no link followed, temp file + rename, compare-and-swap on
the sha256 the probe read, a journal of its own). The probe's sha256 of each file decides:
a second run with the same code and knobs changes nothing. With the knob off, an installed
watchdog is stopped, its textfile and state retired by itself, and its files removed.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined
from pyinfra import host
from pyinfra.api import StringCommand

from ollama_gpu_fix import checkapp
from ollama_gpu_fix.deploy.guard import host_operation
from ollama_gpu_fix.deploy.rootfiles import change, put
from ollama_gpu_fix.policy import Policy
from ollama_gpu_fix.snapshot import Snapshot

UNIT = "ollama-gpu-fix-watchdog"
PYZ = "/usr/local/lib/ollama-gpu-fix/ogf-check.pyz"
SERVICE = f"/etc/systemd/system/{UNIT}.service"
TIMER = f"/etc/systemd/system/{UNIT}.timer"
FILES = (PYZ, SERVICE, TIMER)
PYTHON = "/usr/bin/python3"
MIN_PYTHON = (3, 10)
# base64 characters per command: sshd hands the whole command to the login shell as one
# argument, and Linux caps one argument at 128 KiB (MAX_ARG_STRLEN)
CHUNK = 96 * 1024
STAGED = "ogf-check.pyz"


@cache
def _env() -> Environment:
    return Environment(loader=PackageLoader("ollama_gpu_fix", "templates"), autoescape=False,
                       undefined=StrictUndefined, keep_trailing_newline=True)


def wanted(policy: Policy) -> dict[str, bytes]:
    """Path -> the content the watchdog's files must have under POLICY."""
    service = _env().get_template(f"{UNIT}.service.j2").render(
        pyz=PYZ, textfile_dir=policy.watchdog_textfile_dir, generate=policy.watchdog_generate)
    timer = _env().get_template(f"{UNIT}.timer.j2").render(interval=policy.watchdog_interval)
    return {PYZ: checkapp.build(), SERVICE: service.encode(), TIMER: timer.encode()}


def refusal(snapshot: Snapshot) -> str | None:
    """Why the watchdog cannot run on this host (None: it can)."""
    meta = snapshot.probe
    if meta is None:
        return "the probe returned nothing"
    if meta.systemd is False:
        return "no systemd runs here (the watchdog is a systemd timer)"
    if not meta.python3:
        return f"the watchdog runs {PYTHON} {'.'.join(map(str, MIN_PYTHON))} or newer; " \
               "this host has none"
    major, minor = (int(x) for x in meta.python3.split("."))
    if (major, minor) < MIN_PYTHON:
        return f"the watchdog runs {PYTHON} 3.10 or newer; this host has {meta.python3}"
    return None


def needed(snapshot: Snapshot, policy: Policy) -> bool:
    """Whether this run has anything to do about the watchdog."""
    meta = snapshot.probe
    present = bool(meta and meta.watchdog_files)
    return policy.install_watchdog or present or bool(
        meta and meta.watchdog_timer and meta.watchdog_timer.startswith("enabled"))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@host_operation()
def watchdog(install: bool, files: dict[str, bytes], present: dict[str, str],
             timer: str | None, textfile_dir: str):
    """The watchdog as the knob says: installed and running, or gone.

    + install: install_watchdog
    + files: path -> wanted content (`wanted`)
    + present: path -> sha256 of the installed file (the probe's)
    + timer: "is-enabled/is-active" of its timer (the probe's)
    + textfile_dir: node_exporter's directory, for the textfile's removal
    """
    run = uuid.uuid4().hex[:12]
    if install:
        differ = [p for p in FILES if present.get(p) != _sha(files[p])]
        if not differ and timer == "enabled/active":
            host.noop("the watchdog is installed and its timer runs")
            return
        yield change("begin", f"watchdog-{run}")
        for path in differ:
            data, old = files[path], present.get(path, "absent")
            if path == PYZ:
                text = base64.b64encode(data).decode()
                for part, start in enumerate(range(0, len(text), CHUNK)):
                    yield change("stage", STAGED, str(part), text[start:start + CHUNK])
                yield change("place", path, "644", "0", old, STAGED, _sha(data))
            else:
                yield put(path, data.decode(), "644", 0, old)
        yield change("timer", "enable", f"{UNIT}.timer")
        yield change("commit", "watchdog-installed")
        return
    enabled = bool(timer and timer.startswith("enabled"))
    if not present and not enabled:
        host.noop("no watchdog here")
        return
    yield change("begin", f"watchdog-{run}")
    yield change("timer", "disable", f"{UNIT}.timer")
    if PYZ in present:  # its own textfile and state go first: no stale series is left
        yield StringCommand(PYTHON, "-I", PYZ, "check", "--retire", "--textfile-dir",
                            textfile_dir)
    for path in FILES:
        if path in present:
            yield change("remove", path, present[path])
    yield change("daemon-reload")
    yield change("commit", "watchdog-removed")
