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

from ollama_gpu_fix.knowledge.environment import writable
from ollama_gpu_fix.parsers.systemd import split_word_spans

UNIT = "ollama.service"
DROPIN_DIR = "/etc/systemd/system/ollama.service.d"
DROPIN_NAME = "zz-ollama-gpu-fix.conf"
DROPIN_PATH = f"{DROPIN_DIR}/{DROPIN_NAME}"
STATE_DIR = "/var/lib/ollama-gpu-fix"
# the journal of the running fix and, once it committed, of the last one: the originals of
# every file a fix changed (change.sh)
BACKUP_DIR = f"{STATE_DIR}/txn.last"
ROLLED_BACK = f"{STATE_DIR}/rolled-back"  # fingerprints of changes a verification undid
MARK = "# ollama-gpu-fix removed"

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


def remove_assignments(text: str, names: Iterable[str], why: str) -> str:
    """TEXT (a unit drop-in or an EnvironmentFile) without assignments to NAMES.

    In a unit, each `Environment=` line keeps its other words; the removed ones are named in
    a comment above it (a line left with no word becomes that comment: an empty Environment=
    would wipe every earlier assignment, PATH included). In an environment file, a
    `NAME=value` or `export NAME=value` line becomes a comment. Idempotent: removed words
    are gone, so a second pass changes nothing."""
    wanted = set(names)
    out: list[str] = []
    for line in text.split("\n"):
        key, eq, value = line.partition("=")
        stripped = key.strip()
        if eq and stripped == "Environment":
            kept, gone = [], []
            for word, start, end in split_word_spans(value):
                name = word.partition("=")[0]
                (gone if name in wanted else kept).append(value[start:end])
            if gone:
                out.append(f"{MARK} ({why}): {' '.join(gone)}")
                if kept:
                    out.append(f"{key}={' '.join(kept)}")
                continue
        elif eq and not stripped.startswith(("#", ";", "[")):
            name = stripped.removeprefix("export ").strip()
            if name in wanted:
                out.append(f"{MARK} ({why}): {line}")
                continue
        out.append(line)
    return "\n".join(out)


def sets_any(text: str, names: Iterable[str]) -> bool:
    """Does this unit file or environment file assign one of NAMES (outside comments)?"""
    return remove_assignments(text, names, "") != text
