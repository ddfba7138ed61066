"""The watchdog's program for a host: this package's check as one Python zip application.

A host has no copy of ollama-gpu-fix (the fix sends shell scripts), but the watchdog must read
the host exactly as the diagnosis does: the same probe, parsers, trusted log reader, error
families and rules. So the pure part of this package (everything but the pyinfra side in
deploy/ and the templates) and the one module of `packaging` it uses go to the host as one
zipapp (https://docs.python.org/3/library/zipapp.html) that /usr/bin/python3 -I runs. The
archive is built deterministically (sorted names, fixed times and modes): the same code gives
the same sha256, so a second fix run compares hashes and changes nothing.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from functools import cache
from importlib import resources
from pathlib import PurePosixPath

MAIN = "from ollama_gpu_fix.cli import main\nraise SystemExit(main())\n"
SKIP_DIRS = {"deploy", "templates", "__pycache__"}
SKIP_FILES = {"change.sh", "preflight.sh"}  # the fix's own tools: never run by a check
PACKAGING = ("__init__.py", "_structures.py", "version.py")  # what knowledge/versions needs
_STAMP = (1980, 1, 1, 0, 0, 0)


def _entries() -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = [("__main__.py", MAIN.encode())]
    root = resources.files("ollama_gpu_fix")

    def walk(node, prefix: PurePosixPath) -> None:  # noqa: ANN001 - a Traversable
        if not node.joinpath("__init__.py").is_file():
            # a namespace package (knowledge/): zipimport finds only regular packages
            out.append((str(prefix / "__init__.py"), b""))
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.is_dir():
                if child.name not in SKIP_DIRS:
                    walk(child, prefix / child.name)
            elif (child.name.endswith((".py", ".sh")) and child.name not in SKIP_FILES):
                out.append((str(prefix / child.name), child.read_bytes()))

    walk(root, PurePosixPath("ollama_gpu_fix"))
    pkg = resources.files("packaging")
    out += [(f"packaging/{name}", pkg.joinpath(name).read_bytes()) for name in PACKAGING]
    return sorted(out)


@cache
def build() -> bytes:
    """The zipapp's bytes (deterministic for a given source tree)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in _entries():
            info = zipfile.ZipInfo(name, date_time=_STAMP)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data, compresslevel=9)
    return buf.getvalue()


def sha256() -> str:
    return hashlib.sha256(build()).hexdigest()
