"""Unit files, drop-ins and EnvironmentFile= files, read and edited the way systemd reads them.

Why: an edit made on physical lines breaks continued lines. Commenting out the second line of

    Environment=OLLAMA_KEEP_ALIVE=1h \\
        CUDA_VISIBLE_DEVICES=-1
    NoNewPrivileges=yes

leaves the first line's backslash in place. systemd skips comment lines inside a continuation,
so it joins `NoNewPrivileges=yes` onto the Environment= value and NoNewPrivileges is gone. So
this module reads text the way systemd's C code does, and an edit replaces a whole logical line.
No I/O, no pyinfra. Every reader runs in linear time, because an attacker can write these files.

Upstream, as read for this module. The unit-file rules hold from v240 on (PR #10651), and the
environment-file rules from v254 on (issue #27975):
systemd/systemd@v256:src/basic/fileio.c (read_line_full: where a line ends),
systemd/systemd@v256:src/shared/conf-parser.c (config_parse, parse_line),
systemd/systemd@v256:src/basic/env-file.c (parse_env_file_internal, load_env_file),
systemd/systemd@v256:src/basic/env-util.c (env_name_is_valid).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from typing import Literal, NamedTuple

from ollama_gpu_fix.records import record

MARK = "# ollama-gpu-fix removed"
Kind = Literal["unit", "env"]

_BLANK = " \t\n\r"  # systemd's WHITESPACE
_BOM = "\ufeff"
# a line, then the longest line end: no marker twice, and nothing after a \0
_LINE = re.compile(r"([^\n\r\0]*)(\r\n\0|\n\r\0|\r\n|\n\r|\n\0|\r\0|[\n\r\0]|\Z)")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # env_name_is_valid: bash's rules


# ---- physical lines ---------------------------------------------------------------------------


def physical_lines(text: str) -> list[tuple[str, str]]:
    """(content, line end) pairs, cut where systemd's read_line_full() cuts lines
    (systemd/systemd@v256:src/basic/fileio.c). \\n, \\r and \\0 end a line. So do the pairs
    \\r\\n, \\n\\r, \\n\\0 and \\r\\n\\0, because one line end never holds the same marker
    twice and nothing follows a \\0. Joining the pairs gives TEXT back, byte for byte."""
    out: list[tuple[str, str]] = _LINE.findall(text)
    out.pop()  # the empty match at the very end
    return out


def _odd_backslashes(line: str) -> bool:
    """Does LINE end in an unescaped backslash (conf-parser.c's `escaped` toggle)?"""
    return (len(line) - len(line.rstrip("\\"))) % 2 == 1


# ---- unit files -------------------------------------------------------------------------------


class LogicalLine(NamedTuple):
    """One line as systemd's config_parse() hands it to parse_line(), or one comment line.

    text: the joined text systemd parses. Each continuing backslash becomes a space, a leading
    byte order mark is dropped, and nothing is stripped. A comment keeps its raw text.
    lines: the indexes (from 0) of the physical lines joined into it.
    comments: comment lines inside the continuation. systemd skips them, and an edit keeps them.
    is_comment: a comment line of its own (outside any continuation).
    """

    text: str
    lines: tuple[int, ...]
    comments: tuple[int, ...] = ()
    is_comment: bool = False

    @property
    def section(self) -> str | None:
        """The name of a `[Section]` header. A line that starts with `[` but does not end
        with `]` makes systemd reject the whole file. Here it is just not a header."""
        s = "" if self.is_comment else self.text.strip(_BLANK)
        return s[1:-1] if len(s) >= 2 and s[0] == "[" and s[-1] == "]" else None

    @property
    def assignment(self) -> tuple[str, str] | None:
        """(key, value) as parse_line() splits them. A line with no `=`, or nothing before
        the `=`, is ignored with a warning."""
        s = "" if self.is_comment else self.text.strip(_BLANK)
        if not s or s[0] == "[":
            return None
        key, eq, value = s.partition("=")
        return (key.strip(_BLANK), value.strip(_BLANK)) if eq and key else None


def _is_comment(line: str) -> bool:
    head = line[:1]
    if head and head in _BLANK:
        head = line.lstrip(_BLANK)[:1]
    return head == "#" or head == ";"


def logical_lines_of(lines: Sequence[str]) -> list[LogicalLine]:
    """The logical lines of a unit file that is already cut into physical lines. This
    follows config_parse() in systemd/systemd@v256:src/shared/conf-parser.c.

    A line whose first non-blank character is `#` or `;` is skipped wherever it is: inside a
    continuation too, and even when it ends in a backslash (systemd v240 and later, PR #10651).
    A line that ends in an odd number of backslashes continues onto the next line, and its last
    backslash becomes a space. The first byte order mark seen at the start of a line is
    dropped. A continuation still open at the end of the file is parsed as it stands.
    Every physical line belongs to exactly one entry: a logical line, its `comments`, or a
    comment entry of its own."""
    out: list[LogicalLine] = []
    parts: list[str] = []
    members: list[int] = []
    inside: list[int] = []
    bom_seen = False
    for i, line in enumerate(lines):
        if _is_comment(line):
            if members:
                inside.append(i)
            else:
                out.append(LogicalLine(line, (i,), (), True))
            continue
        if not bom_seen and line[:1] == _BOM:
            line, bom_seen = line[1:], True
        if line[-1:] == "\\" and _odd_backslashes(line):
            members.append(i)
            parts.append(line[:-1] + " ")
        elif members:
            members.append(i)
            parts.append(line)
            out.append(LogicalLine("".join(parts), tuple(members), tuple(inside)))
            parts, members, inside = [], [], []
        else:
            out.append(LogicalLine(line, (i,)))
    if members:
        last = members[-1]  # comments after it, at the end of the file, are not inside
        within = tuple(c for c in inside if c < last)
        out.append(LogicalLine("".join(parts), tuple(members), within))
        out.extend(LogicalLine(lines[c], (c,), (), True) for c in inside if c > last)
    return out


def logical_lines(text: str) -> list[LogicalLine]:
    """The logical lines of a unit file or drop-in, as systemd reads them (logical_lines_of)."""
    return logical_lines_of([content for content, _ in physical_lines(text)])


def directives(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for each assignment systemd reads, in order. An assignment
    outside any section is ignored, as parse_line() ignores it."""
    out: list[tuple[str, str, str]] = []
    section: str | None = None
    for line in logical_lines(text):
        name = line.section
        if name is not None:
            section = name
            continue
        pair = line.assignment
        if pair is not None and section is not None:
            out.append((section, *pair))
    return out


_WORD_ESCAPES = {ord("\\"): "\\\\", ord('"'): '\\"', ord("\n"): "\\n", ord("\r"): "\\r",
                 ord("\t"): "\\t"}  # fmt: skip
_WORD_ESCAPES.update({c: f"\\x{c:02x}" for c in (*range(1, 0x20), 0x7F) if c not in _WORD_ESCAPES})
_WORD_ESCAPES.update({c: f"\\u{c:04x}" for c in (*range(0x80, 0xA0), 0x2028, 0x2029)})


def quote_word(word: str) -> str:
    """WORD as one double-quoted word that decodes back to WORD: by systemd's
    extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE), which config_parse_environ uses,
    and by parsers.systemd.split_word_spans. A backslash, a quote and control characters are
    escaped, so the result never ends a line or continues one. Raises ValueError on NUL,
    which systemd cannot decode (cunescape_one rejects \\0 and \\x00)."""
    if "\0" in word:
        raise ValueError("systemd cannot write NUL into an Environment= word")
    return '"' + word.translate(_WORD_ESCAPES) + '"'


_PLAIN_WORD = re.compile(r"[^ \t\n]+")


def _split(value: str) -> list[tuple[str, int, int]]:
    """parsers.systemd.split_word_spans, with a fast path for a value that has no quote and
    no backslash. Such a value is just words between blanks."""
    if not any(c in value for c in "\\\"'"):
        return [(m.group(), m.start(), m.end()) for m in _PLAIN_WORD.finditer(value)]
    # parsers.systemd imports this module, so its word splitter is imported when first used
    from ollama_gpu_fix.parsers.systemd import split_word_spans

    return split_word_spans(value)


def _assigns(word: str, wanted: frozenset[str]) -> bool:
    name, eq, _ = word.partition("=")
    return bool(eq) and name in wanted


def _may_assign(value: str, wanted: frozenset[str]) -> bool:
    """Could VALUE assign one of WANTED? Quotes and escapes can spell a name in pieces
    (`CUDA_"VISIBLE"_DEVICES=`, `\\x43UDA_...`), so only plain text may skip the splitter."""
    return any(c in value for c in "\\\"'") or any(name in value for name in wanted)


def _keep(value: str, word: str, start: int, end: int) -> str:
    """A kept word, written the way the user wrote it when that is safe. The raw text keeps
    what systemd does with it byte for byte: specifiers, and the escapes that systemd rejects
    but split_word_spans accepts. Otherwise it is quoted. Only the last word of a value can end
    in a lone backslash, and moved anywhere else that backslash would escape what follows it."""
    raw = value[start:end]
    return quote_word(word) if _odd_backslashes(raw) else raw


# ---- environment files ------------------------------------------------------------------------


class EnvAssignment(NamedTuple):
    """One `KEY=value` that parse_env_file_internal() pushes. start/end are offsets into
    the text: where the key starts, and where its ending newline is (or the end of the file)."""

    key: str
    value: str
    start: int
    end: int

    @property
    def valid(self) -> bool:
        """Does exec keep it? strv_env_clean_with_callback drops any name that is not
        bash-valid. That covers `export NAME=value` too: its key is "export NAME"."""
        return _NAME.fullmatch(self.key) is not None


_SPACES = re.compile(r"[ \t\n\r]*")
_HSPACES = re.compile(r"[ \t]*")
_NEWLINE = re.compile(r"[\n\r]")
_KEY_END = re.compile(r"[=\n\r]")
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)  # split() pairs them left to right, as the states do
_SHELL_NEED_ESCAPE = '"\\`$'
# the common line, read in one step: a key, "=", a value with no quote and no backslash
_SIMPLE = re.compile(r"[ \t\n\r]*([^#; \t\n\r=][^=\n\r]*)=([^\n\r\\'\"]*)(?:[\n\r]|\Z)")


def _unescaped(text: str, start: int, stop: re.Pattern[str] | str) -> int:
    """The index of the first STOP at or after START that no backslash escapes (the run of
    backslashes before it is even), or len(TEXT). Each stretch of text is looked at once."""
    n = len(text)
    pos = start
    while True:
        if isinstance(stop, str):
            at = text.find(stop, pos)
        else:
            found = stop.search(text, pos)
            at = -1 if found is None else found.start()
        if at < 0:
            return n
        if not _odd_backslashes(text[pos:at]):
            return at
        pos = at + 1


def _decode(region: str, pair: dict[str, str], other: str) -> list[str]:
    """REGION with each backslash pair replaced, as text pieces: [text, pair, text, ...].
    A pair maps through PAIR, or else to OTHER + the character. A lone backslash at the end
    (the file ended inside an escape) is dropped."""
    if _odd_backslashes(region):
        region = region[:-1]
    pieces = _ESCAPED.split(region)
    pieces[1::2] = [pair.get(c, other + c) for c in pieces[1::2]]
    return pieces


_DQUOTE_PAIRS = {c: c for c in _SHELL_NEED_ESCAPE} | {"\n": ""}  # "\\\n" is eaten
_VALUE_PAIRS = {"\n": "", "\r": ""}  # an escaped newline is eaten, anything else is itself


def _env_value(text: str, pos: int) -> tuple[str, int, int]:
    """The value that starts at POS, just after the `=`. Returns (value, where the next line
    starts, where this assignment ends). It follows the PRE_VALUE, VALUE, quote and escape
    states of parse_env_file_internal(), one stretch of text at a time, so it stays linear."""
    n = len(text)
    parts: list[str] = []
    while True:  # PRE_VALUE: blanks are skipped, quotes open, a newline ends the value
        pos = _HSPACES.match(text, pos).end()  # type: ignore[union-attr]
        if pos >= n:
            return "".join(parts), n, n
        c = text[pos]
        if c in "\n\r":
            return "".join(parts), pos + 1, pos
        if c == "'":  # no escapes at all inside single quotes
            close = text.find("'", pos + 1)
            parts.append(text[pos + 1 : n if close < 0 else close])
        elif c == '"':
            close = _unescaped(text, pos + 1, '"')
            parts += _decode(text[pos + 1 : close], _DQUOTE_PAIRS, "\\")
            close = -1 if close >= n else close
        else:
            break
        if close < 0:
            return "".join(parts), n, n
        pos = close + 1
    # VALUE, up to a newline no backslash escapes. Only the blanks after the last escape are
    # chomped (last_value_whitespace restarts at each backslash).
    end = _unescaped(text, pos, _NEWLINE)
    pieces = _decode(text[pos:end], _VALUE_PAIRS, "")
    if not _odd_backslashes(text[pos:end]):  # the file did not end inside an escape
        pieces[-1] = pieces[-1].rstrip(" \t")
    return "".join(parts + pieces), min(end + 1, n), end


def env_assignments(text: str) -> list[EnvAssignment]:
    """Every assignment of an environment file, in order, as parse_env_file_internal() in
    systemd/systemd@v256:src/basic/env-file.c pushes it. Invalid names are included, so
    check `.valid`.

    \\n and \\r both end a line. A line whose first non-blank character is `#` or `;` is a
    comment up to the next newline: since v254 a backslash at its end no longer continues it
    (issue #27975). A line with no `=` is dropped. `export` is not understood: the key becomes
    "export NAME", which exec rejects. Unquoted values lose trailing blanks, and a backslash
    escapes the next character (escaped newlines are eaten). Single quotes are literal. Inside
    double quotes only \\" \\\\ \\` \\$ and an escaped \\n are unescaped. Quoted text may span
    lines, and any text around the quotes is glued onto the value. Parsing stops at a NUL."""
    text = text.partition("\0")[0]
    n = len(text)
    out: list[EnvAssignment] = []
    pos = 0
    while True:
        simple = _SIMPLE.match(text, pos)
        if simple is not None:  # PRE_VALUE skips the leading blanks, VALUE chomps the rest
            key, value = simple.group(1, 2)
            start, end = simple.span(1)[0], simple.end(2)
            out.append(EnvAssignment(key.rstrip(" \t"), value.strip(" \t"), start, end))
            pos = simple.end()
            continue
        pos = _SPACES.match(text, pos).end()  # type: ignore[union-attr]
        if pos >= n:
            return out
        if text[pos] in "#;":
            stop = _NEWLINE.search(text, pos)
            pos = n if stop is None else stop.end()
            continue
        start = pos
        stop = _KEY_END.search(text, pos + 1)  # the first character is key even if it is "="
        if stop is None:
            return out  # a key without "=" at the end of the file
        if stop.group() != "=":
            pos = stop.end()
            continue
        key = text[start : stop.start()].rstrip(" \t")
        value, pos, end = _env_value(text, stop.end())
        out.append(EnvAssignment(key, value, start, end))


def environment_file(text: str) -> dict[str, str]:
    """The variables exec takes from this EnvironmentFile=: load_env_file() and then
    strv_env_clean_with_callback(). Invalid names are dropped, and the last assignment of a
    name wins."""
    env: dict[str, str] = {}
    for item in env_assignments(text):
        if item.valid:
            env[item.key] = item.value
    return env


# ---- edits ------------------------------------------------------------------------------------


@record(frozen=True)
class _Edit:
    first: int  # physical lines first..last, every one of them commented out unless in `keep`
    last: int
    keep: frozenset[int]  # comment lines inside a continuation: left as they are
    removed: str  # what the comment names
    new: str | None  # the line that takes its place, if any


def _comment(line: str) -> str:
    """LINE as one comment line: no line end inside it, and no trailing backslash that could
    continue it. systemd before v240 (unit files) and before v254 (environment files) did
    continue a comment that ended in a backslash."""
    line = line.replace("\r", " ").replace("\n", " ").replace("\0", " ")
    end = len(line)
    while True:  # drop the continuing backslash and the blanks before it, as often as needed
        run = end
        while run and line[run - 1] == "\\":
            run -= 1
        if (end - run) % 2 == 0:
            return line[:end]
        end -= 1
        while end and line[end - 1] in " \t":
            end -= 1


def _unit_edits(phys: list[str], wanted: frozenset[str]) -> list[_Edit]:
    edits: list[_Edit] = []
    section: str | None = None
    for line in logical_lines_of(phys):
        name = line.section
        if name is not None:
            section = name
            continue
        pair = line.assignment
        if pair is None or section is None or pair[0] != "Environment":
            continue
        value = pair[1]
        if not _may_assign(value, wanted):
            continue
        words = _split(value)
        gone = [value[s:e] for word, s, e in words if _assigns(word, wanted)]
        if not gone:
            continue
        kept = [_keep(value, *w) for w in words if not _assigns(w[0], wanted)]
        edits.append(
            _Edit(
                first=line.lines[0],
                last=line.lines[-1],
                keep=frozenset(line.comments),
                removed=" ".join(gone),
                new="Environment=" + " ".join(kept) if kept else None,  # never an empty reset
            )
        )
    return edits


def _env_edits(text: str, phys: list[tuple[str, str]], wanted: frozenset[str]) -> list[_Edit]:
    starts, offset = [], 0
    for content, eol in phys:
        starts.append(offset)
        offset += len(content) + len(eol)
    edits: list[_Edit] = []
    for item in env_assignments(text):
        if item.key not in wanted or not item.valid:
            continue
        first = bisect.bisect_right(starts, item.start) - 1
        last = bisect.bisect_right(starts, item.end) - 1  # item.end: a line end, or the end
        removed = " ".join(phys[i][0].strip(_BLANK) for i in range(first, last + 1))
        edits.append(_Edit(first, last, frozenset(), removed, None))
    return edits


def _apply(phys: list[tuple[str, str]], edits: list[_Edit], why: str) -> str:
    """The physical lines with EDITS made. Each new line ends like the first line it
    replaces, so a CRLF file stays CRLF."""
    default = next((eol for _, eol in phys if eol), "\n")
    out: list[list[str]] = []
    done = 0
    for edit in edits:
        out.extend([content, eol] for content, eol in phys[done : edit.first])
        nl = phys[edit.first][1] or default
        out.append([_comment(f"{MARK} ({why}): {edit.removed}"), nl])
        for i in range(edit.first, edit.last + 1):
            content, eol = phys[i]
            out.append([content if i in edit.keep else _comment("#" + content), eol])
        if edit.new is not None:
            out.append([edit.new, nl])
        done = edit.last + 1
    out.extend([content, eol] for content, eol in phys[done:])
    for pair in out[:-1]:
        pair[1] = pair[1] or default  # the old last line, no longer last, needs a line end
    if not phys[-1][1]:
        out[-1][1] = ""  # and the file still ends without one, as it did
    return "".join(content + eol for content, eol in out)


def remove_assignments(text: str, names: Iterable[str], why: str, kind: Kind = "unit") -> str:
    """TEXT without the assignments of NAMES, edited on logical lines.

    kind "unit": a unit file or drop-in. Only `Environment=` in a section counts, and its words
    are split by parsers.systemd.split_word_spans. kind "env": an EnvironmentFile=.
    Each logical line that assigns a name is replaced as a whole. A comment
    `# ollama-gpu-fix removed (WHY): WORDS` comes first, then every physical line of the old
    line, commented out, with no backslash left to continue it. Comment lines inside the
    continuation stay as they were. If an Environment= line still has other words, ONE new
    `Environment=` line follows with those words. A line with no words left gets no new line:
    an empty Environment= would reset every earlier assignment, PATH included. Every other byte
    stays the same: line ends (CRLF too) and a missing final newline. Idempotent: nothing
    removed is left to remove."""
    wanted = frozenset(names)
    phys = physical_lines(text)
    if not wanted or not phys:
        return text
    if kind == "unit":
        edits = _unit_edits([content for content, _ in phys], wanted)
    elif kind == "env":
        edits = _env_edits(text, phys, wanted)
    else:
        raise ValueError(f"kind must be 'unit' or 'env', not {kind!r}")
    why = " ".join(why.replace("\0", " ").split())
    return _apply(phys, edits, why) if edits else text


def sets_any(text: str, names: Iterable[str], kind: Kind = "unit") -> bool:
    """Does TEXT assign one of NAMES, as systemd reads it (see remove_assignments)?"""
    wanted = frozenset(names)
    if kind == "env":
        return any(item.valid and item.key in wanted for item in env_assignments(text))
    if kind != "unit":
        raise ValueError(f"kind must be 'unit' or 'env', not {kind!r}")
    section: str | None = None
    for line in logical_lines(text):
        name = line.section
        if name is not None:
            section = name
            continue
        pair = line.assignment
        if pair is None or section is None or pair[0] != "Environment":
            continue
        if _may_assign(pair[1], wanted) and any(_assigns(w, wanted) for w, _, _ in _split(pair[1])):
            return True
    return False
