"""The managed drop-in of ollama.service, and edits to the files that set what must go.

Every variable the tool manages lives in ONE drop-in, rendered by jinja2 from
templates/ollama-gpu-fix.conf.j2. Its name sorts after `override.conf` (what `systemctl edit`
writes), so its values win; a variable that hides the GPU is removed where it is set (another
drop-in, an EnvironmentFile=), with a comment saying why, not shadowed silently. The vendor
unit (install.sh rewrites it on every upgrade) is never edited: what it sets is removed with
`UnsetEnvironment=`, which systemd applies after Environment= and EnvironmentFile= (
systemd.exec(5)). Pure: text in, text out; parsers/systemd.py parses the result back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from jinja2 import Environment, PackageLoader, StrictUndefined

from ollama_gpu_fix import unitfile
from ollama_gpu_fix.knowledge.environment import writable
from ollama_gpu_fix.unitfile import Kind

UNIT = "ollama.service"
DROPIN_DIR = "/etc/systemd/system/ollama.service.d"
DROPIN_NAME = "zz-ollama-gpu-fix.conf"
DROPIN_PATH = f"{DROPIN_DIR}/{DROPIN_NAME}"
STATE_DIR = "/var/lib/ollama-gpu-fix"
# the journal of the running fix and, once it committed, of the last one: the originals of
# every file a fix changed (change.sh)
BACKUP_DIR = f"{STATE_DIR}/txn.last"
ROLLED_BACK = f"{STATE_DIR}/rolled-back"  # fingerprints of changes a verification undid
MARK = unitfile.MARK

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# systemd would expand % specifiers and unescape backslashes; a newline ends the setting
_UNSAFE = re.compile(r'["\\%\n\r]')
_ENV = Environment(
    loader=PackageLoader("ollama_gpu_fix", "templates"),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=StrictUndefined,
    autoescape=False,  # noqa: S701 - a systemd unit, not HTML; values are checked below
)


# Loaded once, at import: rendering then reads no file (pyinfra's fixture harness patches
# file access while an operation runs).
_TEMPLATE = _ENV.get_template("ollama-gpu-fix.conf.j2")


class DropinError(ValueError):
    """A value the tool will not write into a unit."""


def render(
    env: Mapping[str, str], unset: Iterable[str] = (), reasons: Iterable[str] = ()
) -> str:
    """The managed drop-in for these settings. Only allowlisted names with checked values."""
    for name, value in env.items():
        if not writable(name, value) or _UNSAFE.search(value):
            raise DropinError(f"{name}={value!r} is not a GPU setting this tool may write")
    names = sorted(set(unset))
    for name in names:
        if not _NAME.fullmatch(name):
            raise DropinError(f"{name!r} is not a variable name")
    return _TEMPLATE.render(
        env=dict(env),
        unset=names,
        reasons=[r.replace("\n", " ") for r in reasons],
        backup_dir=BACKUP_DIR,
    )


def guess_kind(text: str) -> Kind:
    """The kind of TEXT when the caller does not say: a unit file or drop-in ("unit") when it has
    a `[Section]` header or an `Environment=` key, else an EnvironmentFile= ("env"). A caller
    that knows which file it edits should pass the kind."""
    for line in unitfile.logical_lines(text):
        pair = line.assignment
        if line.section is not None or (pair is not None and pair[0] == "Environment"):
            return "unit"
    return "env"


def remove_assignments(text: str, names: Iterable[str], why: str, kind: Kind | None = None) -> str:
    """TEXT (a unit drop-in or an EnvironmentFile) without assignments to NAMES, edited on
    logical lines as systemd reads them (ollama_gpu_fix.unitfile.remove_assignments): a
    continued line is replaced whole, an Environment= line keeps its other words, and no
    empty Environment= is ever written. Idempotent."""
    return unitfile.remove_assignments(text, names, why, kind or guess_kind(text))


def sets_any(text: str, names: Iterable[str], kind: Kind | None = None) -> bool:
    """Does this unit file or environment file assign one of NAMES, as systemd reads it?"""
    return unitfile.sets_any(text, names, kind or guess_kind(text))
