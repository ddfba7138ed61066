"""The Python side of change.sh: every write, edit, removal and restore the fix makes as root.

One remote helper (ollama_gpu_fix/change.sh) holds the rules (no link followed, root's own
files and directories only, temp file + rename, compare-and-swap, the journal), so they live
in one place; this module builds its commands and reads its answers. The `RootFiles` fact is
the only way the fix reads a file it will edit: typed (regular files only: a FIFO or a device
is never opened) and bounded (64 KiB).
"""

from __future__ import annotations

import base64
import hashlib
import shlex
from dataclasses import dataclass
from functools import cache
from importlib import resources

from pyinfra.api import FactBase, QuoteString, StringCommand

ARG0 = "ogf-change"
MAX_EDIT_BYTES = 65536  # what one command line can carry back in base64


@cache
def change_script() -> str:
    return resources.files("ollama_gpu_fix").joinpath("change.sh").read_text(encoding="utf-8")


def change(*args: str) -> StringCommand:
    """One change.sh command as a pyinfra command (it runs with the operation's sudo)."""
    return StringCommand("sh", "-c", QuoteString(change_script()), ARG0,
                         *(QuoteString(a) for a in args))


def change_text(*args: str) -> str:
    """The same, as the text of a fact's command."""
    return " ".join(["sh", "-c", shlex.quote(change_script()), ARG0,
                     *(shlex.quote(a) for a in args)])


@dataclass
class FileState:
    """What change.sh saw of one path."""

    path: str
    state: str  # ok (root's regular file), absent (may be created), unsafe (never touched)
    why: str = ""
    mode: str = ""  # ls's permission string, -rw-r--r--
    uid: int | None = None
    gid: int | None = None
    size: int | None = None
    sha256: str = "absent"
    content: bytes | None = None

    def to_json(self) -> dict:
        """A fact's value is plain data (pyinfra's fixtures hold facts as JSON)."""
        out = {k: v for k, v in self.__dict__.items() if k != "content" and v not in ("", None)}
        if self.content is not None:
            out["text"] = self.content.decode("utf-8", errors="surrogateescape")
        return out

    @classmethod
    def from_json(cls, path: str, data: dict) -> FileState:
        fields_ = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        text = data.get("text")
        content = text.encode("utf-8", errors="surrogateescape") if text is not None else None
        return cls(**{"path": path, "state": "unsafe", **fields_, "content": content})

    @property
    def octal_mode(self) -> str:
        digits = ""
        perms = (self.mode + "-" * 10)[1:10]
        for i in range(0, 9, 3):
            r, w, x = perms[i : i + 3]
            digits += str((r == "r") * 4 + (w == "w") * 2 + (x in "xst") * 1)
        return digits

    @property
    def editable(self) -> bool:
        """A root-owned regular file read whole (a bigger one is never rewritten)."""
        return (self.state == "ok" and self.content is not None
                and (self.size or 0) <= MAX_EDIT_BYTES
                and hashlib.sha256(self.content).hexdigest() == self.sha256)

    def text(self) -> str:
        return (self.content or b"").decode("utf-8", errors="surrogateescape")


def parse_read(lines: list[str]) -> dict[str, FileState]:
    """change.sh `read` output -> {path: FileState}. Unknown lines are ignored."""
    found: dict[str, FileState] = {}
    current: FileState | None = None
    chunks: list[str] = []
    for line in lines:
        if current is not None:
            if line == "end":
                try:
                    current.content = base64.b64decode("".join(chunks), validate=False)
                except ValueError:
                    current.state, current.why = "unsafe", "its content could not be read"
                current, chunks = None, []
            else:
                chunks.append(line.strip())
            continue
        fields = line.split("\t")
        if len(fields) >= 3 and fields[0] == "file":
            state = fields[1]
            if state == "ok" and len(fields) == 8:
                _, _, mode, uid, gid, size, sha, path = fields
                current = FileState(path, "ok", mode=mode, uid=_int(uid), gid=_int(gid),
                                    size=_int(size), sha256=sha)
                found[path] = current
            elif state == "absent":
                found[fields[2]] = FileState(fields[2], "absent")
            elif state == "unsafe" and len(fields) == 4:
                found[fields[3]] = FileState(fields[3], "unsafe", why=fields[2])
    if current is not None:  # cut short: never edit from half a file
        current.state, current.why, current.content = "unsafe", "its content was cut short", None
    return found


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


class RootFiles(FactBase[dict[str, dict]]):
    """The files a step edits, as root may see them: state, mode, owner, sha256, content
    (plain data: `file_states()` turns it into FileState)."""

    @staticmethod
    def default() -> dict[str, dict]:
        return {}

    def command(self, paths: list[str]) -> str:
        return change_text("read", *paths)

    def process(self, output: list[str]) -> dict[str, dict]:
        return {path: st.to_json() for path, st in parse_read(output).items()}


def file_states(fact: dict[str, dict] | None) -> dict[str, FileState]:
    return {path: FileState.from_json(path, data) for path, data in (fact or {}).items()}


def put(path: str, content: str, mode: str, gid: int, old_sha: str) -> StringCommand:
    """Write CONTENT to PATH (root's, MODE, group GID) if it still has OLD_SHA."""
    data = base64.b64encode(content.encode("utf-8", errors="surrogateescape")).decode()
    return change("put", path, mode, str(gid), old_sha, data)


def sha256_text(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8", errors="surrogateescape")).hexdigest()
