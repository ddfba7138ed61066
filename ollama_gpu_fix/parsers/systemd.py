"""systemctl-cat.txt and systemctl-show.txt: the ollama unit, its drop-ins, its environment.

Environment= is split exactly as systemd does (extract_first_word with EXTRACT_UNQUOTE |
EXTRACT_CUNESCAPE, as in config_parse_environ): words are separated by whitespace, quotes
are removed wherever they appear in a word (`Environment="A=1" B=2`, `A="1"` -> A=1), C
escapes are decoded, and a quote of the other kind inside a quoted word is a literal
character. So `Environment="HSA_OVERRIDE_GFX_VERSION='10.3.0'"` and
`Environment="HSA_OVERRIDE_GFX_VERSION=\\"10.3.0\\""` give values that still hold quotes, which
ROCm then rejects. (systemd before v228 split Environment= with FOREACH_WORD_QUOTED, which
left quotes inside a word; the raw lines are kept for such hosts.) `systemctl show` prints
the effective environment in the same quoting, so it is split the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ollama_gpu_fix.parsers import probe_meta
from ollama_gpu_fix.parsers.kernel import section_lines
from ollama_gpu_fix.snapshot import Line, SystemdUnit, UnitFile

_SIMPLE_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", '"': '"', "'": "'", "s": " ",
}  # fmt: skip
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER = re.compile(r"^#\s+(/\S+\.(?:service|conf))\s*$")


def _unescape(text: str, i: int) -> tuple[str, int]:
    """C escape at text[i] (the char after the backslash) -> (decoded, next index)."""
    c = text[i]
    if c in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[c], i + 1
    for prefix, width, base in (("x", 2, 16), ("u", 4, 16), ("U", 8, 16)):
        digits = text[i + 1 : i + 1 + width]
        if c == prefix and len(digits) == width and re.fullmatch(r"[0-9a-fA-F]+", digits):
            code = int(digits, base)
            if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
                return chr(code), i + 1 + width
    digits = text[i : i + 3]
    if re.fullmatch(r"[0-3][0-7]{2}", digits) and int(digits, 8) > 0:
        return chr(int(digits, 8)), i + 3
    return "\\" + c, i + 1  # unknown escape: kept verbatim (EXTRACT_CUNESCAPE_RELAX)


def split_word_spans(value: str) -> list[tuple[str, int, int]]:
    """systemd's extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE), repeated: each word
    with the span of raw text it came from (redaction rewrites exactly that span).

    An unbalanced quote ends the list there (systemd logs "Invalid syntax, ignoring").
    """
    words: list[tuple[str, int, int]] = []
    word: list[str] | None = None
    start = 0
    quote: str | None = None
    i = 0
    while i < len(value):
        c = value[i]
        if word is None and c not in " \t\n":
            start = i
        if c == "\\":
            if i + 1 >= len(value):
                if quote is None and word is not None:
                    word.append("\\")
                i += 1
                break
            decoded, i = _unescape(value, i + 1)
            word = word if word is not None else []
            word.append(decoded)
            continue
        if quote is not None:
            if c == quote:
                quote = None
            else:
                word = word if word is not None else []
                word.append(c)
        elif c in "\"'":
            quote = c
            word = word if word is not None else []
        elif c in " \t\n":
            if word is not None:
                words.append(("".join(word), start, i))
                word = None
        else:
            word = word if word is not None else []
            word.append(c)
        i += 1
    if quote is not None:
        return words  # unbalanced: the unfinished word is dropped
    if word is not None:
        words.append(("".join(word), start, i))
    return words


def split_words(value: str) -> list[str]:
    """The words of an Environment= value, as systemd splits them."""
    return [word for word, _, _ in split_word_spans(value)]


def parse_environment(value: str, into: dict[str, str] | None = None) -> dict[str, str]:
    """Apply one Environment= value: assignments in order, empty value resets the list."""
    env = {} if into is None else into
    if not value.strip():
        env.clear()
        return env
    for word in split_words(value.replace("%%", "%")):
        name, sep, val = word.partition("=")
        if sep and _ENV_NAME.match(name):
            env[name] = val
    return env


def _logical_lines(lines: list[tuple[Line, str]]) -> list[tuple[Line, str]]:
    """(first line, joined text) for each logical line, read as systemd reads it
    (ollama_gpu_fix.unitfile.logical_lines_of). A backslash continues a line, and comment
    lines inside a continuation are skipped. Each file `systemctl cat` prints (from its
    `# /path` header on) is read on its own, so a continuation never runs into the next file.
    A comment line outside a continuation stays in the list, because it carries systemctl's
    own notes."""
    # imported here: only a unit file needs it, and the journal's unit failures (this module,
    # with every log) must not load unitfile's editor on diagnose-bundle's start (issue 13)
    from ollama_gpu_fix.unitfile import logical_lines_of

    chunks: list[list[tuple[Line, str]]] = [[]]
    for pair in lines:
        if _HEADER.match(pair[1]):
            chunks.append([])
        chunks[-1].append(pair)
    out: list[tuple[Line, str]] = []
    for chunk in chunks:
        found = logical_lines_of([text for _, text in chunk])
        out += [(chunk[logical.lines[0]][0], logical.text) for logical in found]
    return out


def _parse_cat(lines: list[tuple[Line, str]], unit: SystemdUnit) -> None:
    current: UnitFile | None = None
    section: str | None = None
    exec_start: str | None = None
    user = group = None
    for line, text in _logical_lines(lines):
        header = _HEADER.match(text)
        if header:
            current = UnitFile(path=header.group(1), lines=[line])
            if ".d/" in current.path or unit.fragment is not None:
                unit.dropins.append(current)
            else:
                unit.fragment = current
            section = None
            unit.raw.append(line)
            continue
        low = text.lower()
        if "no files found for" in low or re.search(r"unit \S+ could not be found", low):
            unit.missing = True
            unit.raw.append(line)
            continue
        if low.startswith("# warning:") and "changed on disk" in low:
            unit.need_daemon_reload = True
            unit.raw.append(line)
            continue
        if current is None:
            if text.startswith(("#", ";")):
                continue  # systemctl's own comments before the first file
            current = UnitFile(path="(pasted)", lines=[])  # a unit pasted without its header
            unit.fragment = current
        current.lines.append(line)
        if text.startswith(("#", ";")):
            continue
        sect = re.match(r"^\[(\w+)\]", text)
        if sect:
            section = sect.group(1)
            continue
        if section not in (None, "Service"):
            continue
        key, sep, value = text.partition("=")
        key, value = key.strip(), value.strip()
        if not sep:
            continue
        if key == "Environment":
            parse_environment(value, current.environment)
            unit.raw.append(line)
        elif key == "ExecStart":
            exec_start = value or None  # an empty ExecStart= resets the list
            unit.raw.append(line)
        elif key == "UnsetEnvironment":
            current.unset += [w for w in split_words(value) if w not in current.unset]
            unit.raw.append(line)
        elif key == "EnvironmentFile":
            path = value.lstrip("-").strip()
            if path and path not in unit.environment_files:
                unit.environment_files.append(path)
            unit.raw.append(line)
        elif key in ("User", "Group"):
            if key == "User":
                user = value or None
            else:
                group = value or None
            unit.raw.append(line)
    unit.exec_start, unit.user, unit.group = exec_start, user, group


def _parse_show(lines: list[tuple[Line, str]], unit: SystemdUnit) -> None:
    for line, text in lines:
        key, sep, value = text.partition("=")
        if not sep or not re.match(r"^[A-Za-z]+$", key):
            if re.search(r"unit \S+ could not be found", text, re.I):
                unit.missing = True
                unit.raw.append(line)
            continue
        unit.raw.append(line)
        value = value.strip()
        if key == "Environment":
            unit.environment = parse_environment(value, {})
        elif key == "ActiveState":
            unit.active_state = value or None
        elif key == "SubState":
            unit.sub_state = value or None
        elif key == "User":
            unit.user = value or None
        elif key == "Group":
            unit.group = value or None
        elif key == "DropInPaths":
            unit.dropin_paths = value.split()
        elif key == "EnvironmentFiles":  # `/etc/default/ollama (ignore_errors=yes)`, one each
            path = value.split(" (")[0].strip()
            if path and path not in unit.environment_files:
                unit.environment_files.append(path)
        elif key == "MainPID":
            unit.main_pid = int(value) if value.isdigit() and value != "0" else None
        elif key == "NeedDaemonReload":
            unit.need_daemon_reload = value == "yes" if value in ("yes", "no") else None
        elif key == "LoadState":
            if value == "not-found":
                unit.missing = True
            elif value == "loaded" and unit.missing is None:
                unit.missing = False
        elif key == "ExecStart":
            argv = re.search(r"argv\[\]=(.*?)\s;", value)
            unit.exec_start = argv.group(1) if argv else (value or None)


def parse(sections: Mapping[str, str]) -> SystemdUnit | None:
    if "systemctl-cat.txt" not in sections and "systemctl-show.txt" not in sections:
        return None
    unit = SystemdUnit()
    _parse_cat(section_lines(sections, "systemctl-cat.txt"), unit)
    _parse_show(section_lines(sections, "systemctl-show.txt"), unit)
    return unit


# systemd's own journal lines about the unit stopping for good or crash-looping (systemd
# src/core/service.c, unit.c wording across v219..v256: "main process exited, code=exited,
# status=127/n/a", "Failed with result 'exit-code'", "entered failed state",
# "Start request repeated too quickly"); https://github.com/ollama/ollama/issues/6248.
# Matched at the start of the message of a `systemd[1]` journal line only: Ollama logs model
# names and request text that any HTTP client chooses, so the same words inside its lines
# are nobody's evidence.
_UNIT_FAILURE = re.compile(
    r"ollama\.service: (?:[Mm]ain process exited, code=\w+, status=\S+"
    r"|Failed with result '[^']{1,40}'|Start request repeated too quickly)"
    r"|(?:Unit )?ollama\.service (?:entered failed state|failed\.)|Failed to start ollama\.service"
)
_UNIT_SOURCES = ("journalctl.txt", "ollama-serve.log", "systemctl-status.txt")


def _systemd_message(text: str) -> str | None:
    """The message of a journal line (`short`/`short-iso`: stamp, host, `ident[pid]: `)
    that PID 1 wrote; None for any other line. journalctl shows the kernel-given _PID, and
    indents a message's continuation lines, so neither can be written by another process."""
    head, sep, message = text[:2048].partition(": ")
    if not sep or head[:1].isspace():
        return None
    stamp, _, ident = head.rpartition(" ")
    return message if stamp and ident == "systemd[1]" else None


def parse_unit_failures(sections: Mapping[str, str]) -> list[Line] | None:
    """systemd's lines about ollama.service exiting or failing (the last 20), from the journal
    or a pasted `systemctl status`; None when no such file was given."""
    present = [name for name in _UNIT_SOURCES if name in sections]
    meta = probe_meta.parse(sections)
    if meta is not None and meta.systemd is False:
        # a live probe without systemd read Ollama's own server.log: systemd wrote none of it
        present = [name for name in present if name != "ollama-serve.log"]
    if not present:
        return None
    found: list[Line] = []
    for name in present:
        for line, _ in section_lines(sections, name):  # the line as printed, prefix and all
            message = _systemd_message(line.text) if "ollama.service" in line.text else None
            if message is not None and _UNIT_FAILURE.match(message):
                found.append(line)
    return found[-20:]
