"""Unit files and environment files read as systemd reads them, and edited on logical lines
(ollama_gpu_fix.unitfile).

What a user relies on: after remove_assignments, systemd reads every other directive of every
section exactly as before, in the same order. Only the removed names are gone.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ollama_gpu_fix import dropin, unitfile
from ollama_gpu_fix.parsers.systemd import split_word_spans, split_words
from ollama_gpu_fix.unitfile import (
    MARK,
    directives,
    env_assignments,
    environment_file,
    logical_lines,
    physical_lines,
    quote_word,
    remove_assignments,
    sets_any,
)

CUDA = "CUDA_VISIBLE_DEVICES"
NO_NEW_PRIVILEGES = (
    "[Service]\n"
    "Environment=OLLAMA_KEEP_ALIVE=1h \\\n"
    "    CUDA_VISIBLE_DEVICES=-1\n"
    "NoNewPrivileges=yes\n"
)


def _view(text: str, names: frozenset[str]) -> list[tuple[str, str, object]]:
    """What systemd reads from a unit, less NAMES. Each Environment= is its list of words
    without NAMES. An Environment= that only set NAMES is dropped: the edit comments it out."""
    out: list[tuple[str, str, object]] = []
    for section, key, value in directives(text):
        if key != "Environment":
            out.append((section, key, value))
            continue
        words = split_words(value)
        kept = tuple(w for w in words if not ("=" in w and w.partition("=")[0] in names))
        if words and not kept:
            continue
        out.append((section, key, kept))
    return out


def _env_words(text: str) -> list[str]:
    return [w for _, k, v in directives(text) if k == "Environment" for w in split_words(v)]


# ---- the attack that started this --------------------------------------------------------------


def test_a_continued_line_is_removed_whole_and_the_next_directive_survives() -> None:
    out = dropin.remove_assignments(NO_NEW_PRIVILEGES, [CUDA], "hid the GPU")
    assert directives(out) == [
        ("Service", "Environment", "OLLAMA_KEEP_ALIVE=1h"),
        ("Service", "NoNewPrivileges", "yes"),
    ]
    assert out == (
        "[Service]\n"
        "# ollama-gpu-fix removed (hid the GPU): CUDA_VISIBLE_DEVICES=-1\n"
        "#Environment=OLLAMA_KEEP_ALIVE=1h\n"
        "#    CUDA_VISIBLE_DEVICES=-1\n"
        "Environment=OLLAMA_KEEP_ALIVE=1h\n"
        "NoNewPrivileges=yes\n"
    )
    assert not any(line.endswith("\\") for line in out.splitlines())


def test_the_old_physical_line_edit_is_what_broke_it() -> None:
    """The old edit commented out the second line. systemd skips that comment inside the
    continuation, so NoNewPrivileges=yes became part of the Environment= value."""
    broken = NO_NEW_PRIVILEGES.replace("    CUDA", "# CUDA")
    assert ("Service", "NoNewPrivileges", "yes") not in directives(broken)
    assert directives(broken)[0][2].endswith("NoNewPrivileges=yes")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_real_systemd_keeps_no_new_privileges(tmp_path: Path) -> None:
    """systemd's own parser (offline security review, v250+) on the edited file."""
    out = remove_assignments(NO_NEW_PRIVILEGES, [CUDA], "hid the GPU")
    unit = tmp_path / "t.service"
    unit.write_text(out.replace("[Service]\n", "[Service]\nExecStart=/bin/true\n"))
    try:
        shown = subprocess.run(
            ["systemd-analyze", "security", "--offline=yes", unit.name],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        pytest.skip("systemd-analyze did not run")
    line = next((s for s in shown.splitlines() if "NoNewPrivileges=" in s), None)
    if line is None:
        pytest.skip("this systemd-analyze has no offline security review")
    assert line.lstrip().startswith("✓"), line


# ---- logical lines ------------------------------------------------------------------------------


def test_comment_lines_inside_a_continuation_are_skipped() -> None:
    # systemd.syntax(7), example 1, [Section C]
    text = (
        "[Section C]\n"
        "KeyThree=value 3\\\n"
        "# this line is ignored\n"
        "; this line is ignored too\n"
        "       value 3 continued\n"
    )
    lines = logical_lines(text)
    assert [(ll.lines, ll.comments) for ll in lines] == [((0,), ()), ((1, 4), (2, 3))]
    assert lines[1].text == "KeyThree=value 3        value 3 continued"
    assert directives(text) == [("Section C", "KeyThree", "value 3        value 3 continued")]


def test_a_comment_ending_in_a_backslash_does_not_continue() -> None:
    # systemd issue #10598, fixed in v240: the ExecStart= after it is read
    text = "[Service]\n# a comment \\\nExecStart=/usr/bin/sleep 900\n  ; another \\\nUser=x\n"
    assert directives(text) == [
        ("Service", "ExecStart", "/usr/bin/sleep 900"),
        ("Service", "User", "x"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[S]\nA=x\\\\\nB=y\n", [("S", "A", "x\\\\"), ("S", "B", "y")]),  # even: no continuation
        ("[S]\nA=x\\\\\\\nB=y\n", [("S", "A", "x\\\\ B=y")]),  # odd: the last one continues
        ("[S]\nA=x\\\nB=y\n", [("S", "A", "x B=y")]),
        ("[S]\nA=1\\\n\nB=2\n", [("S", "A", "1"), ("S", "B", "2")]),  # a blank line ends it
        ("[S]\nA=1 \\\n", [("S", "A", "1")]),  # continued at the end of the file
        ("[S]\nA=1 \\\n# the end\n", [("S", "A", "1")]),
        ("A=outside\n[S]\nB=in\n", [("S", "B", "in")]),  # outside any section: ignored
        ("[S]\n=novalue\nnoequals\n  K  =  v  \n", [("S", "K", "v")]),
        ("[S]\nA=1\\\n[T]\nB=2\n", [("S", "A", "1 [T]"), ("S", "B", "2")]),
        ("\ufeff[S]\nA=1\n", [("S", "A", "1")]),  # a byte order mark is dropped
    ],
)
def test_continuations(text: str, expected: list[tuple[str, str, str]]) -> None:
    assert directives(text) == expected


def test_line_ends_as_read_line_cuts_them() -> None:
    text = "a\r\nb\rc\n\rd\n\ne\0f"
    assert physical_lines(text) == [
        ("a", "\r\n"), ("b", "\r"), ("c", "\n\r"), ("d", "\n"), ("", "\n"), ("e", "\0"),
        ("f", ""),
    ]  # fmt: skip
    assert "".join(c + e for c, e in physical_lines(text)) == text
    assert directives("[S]\r\nA=1 \\\r\n  B=2\r\nC=3") == [("S", "A", "1    B=2"), ("S", "C", "3")]


# ---- quoting -----------------------------------------------------------------------------------

_WORDS = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"))


@given(_WORDS)
@settings(max_examples=300, deadline=None, database=None)
def test_quote_word_round_trips_through_the_word_splitter(word: str) -> None:
    quoted = quote_word(word)
    assert split_word_spans(quoted) == [(word, 0, len(quoted))]
    assert not any(c in quoted for c in "\n\r\0")
    assert [ll.text for ll in logical_lines(f"Environment={quoted} B=1")] == [
        f"Environment={quoted} B=1"
    ]


def test_quote_word_refuses_nul() -> None:
    with pytest.raises(ValueError):
        quote_word("a\0b")


# ---- Environment= edits ------------------------------------------------------------------------


def test_quoted_words_with_spaces_and_escapes_are_kept_as_written() -> None:
    text = (
        "[Service]\n"
        'Environment="A=x y" B=\\x41\\ b \'C=it\'\'s\' "CUDA_VISIBLE_DEVICES=0" D=%h E="q\\"q"\n'
    )
    before = split_words(directives(text)[0][2])
    out = remove_assignments(text, [CUDA], "hid it")
    (kept,) = [v for _, k, v in directives(out) if k == "Environment"]
    assert kept == '"A=x y" B=\\x41\\ b \'C=it\'\'s\' D=%h E="q\\"q"'
    assert split_words(kept) == [w for w in before if not w.startswith(CUDA)]
    assert f'{MARK} (hid it): "CUDA_VISIBLE_DEVICES=0"' in out


def test_a_name_spelled_with_quotes_or_escapes_is_still_found() -> None:
    text = '[Service]\nEnvironment=CUDA_"VISIBLE"_DEVICES=-1 \\x43UDA_VISIBLE_DEVICES=-1 A=1\n'
    assert sets_any(text, [CUDA])
    out = remove_assignments(text, [CUDA], "hid it")
    assert _env_words(out) == ["A=1"] and not sets_any(out, [CUDA])


def test_a_last_word_ending_in_a_backslash_is_quoted_not_left_to_continue() -> None:
    text = "[Service]\nEnvironment=CUDA_VISIBLE_DEVICES=-1 A=x\\ \nUser=u\n"
    assert _env_words(text) == [f"{CUDA}=-1", "A=x\\"]
    out = remove_assignments(text, [CUDA], "hid it")
    assert 'Environment="A=x\\\\"\n' in out
    assert directives(out)[-1] == ("Service", "User", "u")
    assert _env_words(out) == ["A=x\\"]


def test_nothing_left_means_no_environment_line_at_all() -> None:
    text = "[Service]\nEnvironment=PATH=/usr/bin\nEnvironment=CUDA_VISIBLE_DEVICES=-1\n"
    out = remove_assignments(text, [CUDA], "hid it")
    assert directives(out) == [("Service", "Environment", "PATH=/usr/bin")]
    assert "Environment=\n" not in out and 'Environment=""' not in out


def test_only_environment_in_a_section_counts() -> None:
    text = (
        "Environment=CUDA_VISIBLE_DEVICES=-1\n"  # outside a section: systemd ignores it
        "[Service]\n"
        "ExecStart=/usr/bin/env CUDA_VISIBLE_DEVICES=-1\n"
        "# Environment=CUDA_VISIBLE_DEVICES=-1\n"
        "Environment=CUDA_VISIBLE_DEVICES\n"  # not an assignment
    )
    assert not sets_any(text, [CUDA])
    assert remove_assignments(text, [CUDA], "x") == text


def test_every_other_byte_stays() -> None:
    text = (
        "# top\r\n[Unit]\r\nDescription=x \\\r\n  y\r\n\r\n[Service]\r\n"
        "Environment=A=1 \\\r\n; a note \\\r\n  CUDA_VISIBLE_DEVICES=-1\r\nUser=ollama"
    )
    out = remove_assignments(text, [CUDA], "hid it")
    assert out == (
        "# top\r\n[Unit]\r\nDescription=x \\\r\n  y\r\n\r\n[Service]\r\n"
        "# ollama-gpu-fix removed (hid it): CUDA_VISIBLE_DEVICES=-1\r\n"
        "#Environment=A=1\r\n; a note \\\r\n#  CUDA_VISIBLE_DEVICES=-1\r\n"
        "Environment=A=1\r\nUser=ollama"
    )
    assert remove_assignments(out, [CUDA], "again") == out


def test_a_last_line_without_a_newline_stays_without_one() -> None:
    text = "[Service]\nEnvironment=A=1 CUDA_VISIBLE_DEVICES=-1"
    out = remove_assignments(text, [CUDA], "why\nnot")
    assert out == (
        "[Service]\n# ollama-gpu-fix removed (why not): CUDA_VISIBLE_DEVICES=-1\n"
        "#Environment=A=1 CUDA_VISIBLE_DEVICES=-1\nEnvironment=A=1"
    )


# ---- environment files -------------------------------------------------------------------------

ENV = (
    "# defaults \\\n"
    'A="x\n y"\n'
    "B=one \\\n"
    "two  \n"
    "export CUDA_VISIBLE_DEVICES=1\n"
    "CUDA_VISIBLE_DEVICES=-1\n"
    "C='it''s'  \n"
    "  D = spaced  \n"
    'E="a\\"b\\\\c\\$d\\qe"\n'
    "F=x\\ \n"
    "G=1 # not a comment\n"
    "[cluster]\n"
    "H=\n"
    "I=\"q\" 'r' s t \n"
)


def test_environment_file_as_systemd_reads_it() -> None:
    assert environment_file(ENV) == {
        "A": "x\n y",
        "B": "one two",
        "CUDA_VISIBLE_DEVICES": "-1",
        "C": "its",
        "D": "spaced",
        "E": 'a"b\\c$d\\qe',
        "F": "x ",
        "G": "1 # not a comment",
        "H": "",
        "I": "qrs t",
    }
    keys = [a.key for a in env_assignments(ENV)]
    assert "export CUDA_VISIBLE_DEVICES" in keys  # pushed, then rejected as a name


def test_environment_file_edges() -> None:
    assert environment_file("A=1\r\nB=2\rC=3") == {"A": "1", "B": "2", "C": "3"}
    assert environment_file("A=x\\\r\nB=2") == {"A": "x", "B": "2"}  # \r ends it, \n is blank
    assert environment_file('A="open\nB=2') == {"A": "open\nB=2"}
    assert environment_file("A=1\0B=2\n") == {"A": "1"}  # a C string: NUL ends the file
    assert environment_file("A=1\nA=2\n1X=3\nK EY=4\n=5\n") == {"A": "2"}


def test_environment_file_edit() -> None:
    out = remove_assignments(ENV, [CUDA, "A", "B"], "hid the GPU", "env")
    expected = environment_file(ENV)
    for name in (CUDA, "A", "B"):
        del expected[name]
    assert environment_file(out) == expected
    assert "export CUDA_VISIBLE_DEVICES=1\n" in out  # systemd never read it: left alone
    assert '# ollama-gpu-fix removed (hid the GPU): A="x y"\n#A="x\n# y"\n' in out
    assert "#B=one\n#two  \n" in out
    assert remove_assignments(out, [CUDA, "A", "B"], "again", "env") == out
    assert not sets_any(out, [CUDA, "A", "B"], "env")


def test_environment_file_crlf_and_no_final_newline() -> None:
    text = "X=1\r\nCUDA_VISIBLE_DEVICES=-1"
    out = remove_assignments(text, [CUDA], "hid it", "env")
    assert (
        out
        == "X=1\r\n# ollama-gpu-fix removed (hid it): CUDA_VISIBLE_DEVICES=-1\r\n#CUDA_VISIBLE_DEVICES=-1"
    )


# ---- properties ----------------------------------------------------------------------------------

_NAMES = ["CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "OLLAMA_HOST", "PATH", "A"]
_REMOVED = frozenset(_NAMES[:2])
_PLAIN = st.text("abc019-_:/.,=%#;$@{}", min_size=0, max_size=6)


@st.composite
def _env_word(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(_NAMES))
    value = draw(_PLAIN)
    style = draw(st.sampled_from(["plain", "dq", "sq", "escaped", "split", "noeq"]))
    if style == "dq":
        return (
            '"' + name + "=" + value + " " + draw(st.sampled_from(["", '\\"', "\\\\", "\\t"])) + '"'
        )
    if style == "sq":
        return f"{name}='{value} x'"
    if style == "escaped":
        return f"\\x{ord(name[0]):02x}{name[1:]}={value}"
    if style == "split":
        return f'{name[:2]}"{name[2:]}"={value}'
    if style == "noeq":
        return name
    return f"{name}={value}"


@st.composite
def _directive(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        words = draw(st.lists(_env_word(), min_size=0, max_size=4))
        pad = draw(st.sampled_from(["", " ", "\t"]))
        return f"{pad}Environment={pad}" + " ".join(words)
    key = draw(st.sampled_from(["NoNewPrivileges", "ExecStart", "User", "Description"]))
    return f"{key}=" + draw(st.text("ab \\\"'#;=x\t", max_size=10))


@st.composite
def _physical(draw: st.DrawFn) -> list[str]:
    """One directive, maybe continued over several lines with comments in between."""
    text = draw(_directive())
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(text) - 1)), max_size=3))))
    parts = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True) if a < b]
    out: list[str] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        out.append(part if last else part + "\\")
        if not last and draw(st.integers(0, 3)) == 0:
            out.append(draw(_comment()))
    return out


def _comment() -> st.SearchStrategy[str]:
    return st.builds(
        lambda pad, mark, body, tail: f"{pad}{mark}{body}{tail}",
        st.sampled_from(["", "  ", "\t"]),
        st.sampled_from(["#", ";"]),
        st.text("ab =\\CUDA_VISIBLE_DEVICES", max_size=12),
        st.sampled_from(["", "\\", "\\\\"]),
    )


_LINE = st.one_of(
    _physical(),
    _comment().map(lambda c: [c]),
    st.sampled_from(["[Service]", "[Unit]", "[X-Other]", "", "   "]).map(lambda s: [s]),
)


@st.composite
def _unit_text(draw: st.DrawFn) -> str:
    lines = ["[Service]"] if draw(st.booleans()) else []
    for group in draw(st.lists(_LINE, max_size=12)):
        lines += group
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    return eol.join(lines) + (eol if draw(st.booleans()) else "")


def _continues(line: str) -> bool:
    return (len(line) - len(line.rstrip("\\"))) % 2 == 1


def _is_subsequence(small: list[str], big: list[str]) -> list[str]:
    """The lines of BIG left over once SMALL is matched in order (fails if it cannot be)."""
    left, i = [], 0
    for line in big:
        if i < len(small) and line == small[i]:
            i += 1
        else:
            left.append(line)
    assert i == len(small), "an untouched line changed or moved"
    return left


@given(_unit_text())
@settings(
    max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
def test_removal_keeps_every_other_directive(text: str) -> None:
    out = remove_assignments(text, _REMOVED, "hid the GPU")
    assert _view(out, _REMOVED) == _view(text, _REMOVED)
    assert not sets_any(out, _REMOVED)
    for word in _env_words(out):
        assert not ("=" in word and word.partition("=")[0] in _REMOVED)
    assert remove_assignments(out, _REMOVED, "again") == out
    # every physical line outside the edited logical lines is still there, in order; what was
    # added is comments and Environment= lines, none of them continued
    edited: set[int] = set()
    section = None
    for ll in logical_lines(text):
        section = ll.section if ll.section is not None else section
        pair = ll.assignment
        if pair and section is not None and pair[0] == "Environment":
            if any("=" in w and w.partition("=")[0] in _REMOVED for w in split_words(pair[1])):
                edited.update(ll.lines)
    before = physical_lines(text)
    untouched = [c for i, (c, _) in enumerate(before) if i not in edited]
    added = _is_subsequence(untouched, [c for c, _ in physical_lines(out)])
    for line in added:
        assert line.startswith(("#", "Environment=")) and not _continues(line), line
    if out != text:
        assert out.endswith(("\n", "\r\n")) == text.endswith(("\n", "\r\n"))


_ENV_VALUE = st.one_of(
    _PLAIN,
    _PLAIN.map(lambda v: f'"{v} \\" \\\\ \n {v}"'),
    _PLAIN.map(lambda v: f"'{v}\n{v}'"),
    _PLAIN.map(lambda v: f"{v} \\\n  {v}  "),
    _PLAIN.map(lambda v: f"{v}\\ "),
)


@st.composite
def _env_text(draw: st.DrawFn) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 10))):
        kind = draw(st.integers(0, 5))
        if kind == 0:
            lines.append(draw(_comment()))
        elif kind == 1:
            lines.append(draw(st.sampled_from(["", "  ", "[section]", "noequals"])))
        else:
            prefix = draw(st.sampled_from(["", "", "  ", "export "]))
            name = draw(st.sampled_from(_NAMES))
            lines.append(f"{prefix}{name}{draw(st.sampled_from(['=', ' = ']))}{draw(_ENV_VALUE)}")
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    return eol.join(lines) + (eol if draw(st.booleans()) else "")


@given(_env_text())
@settings(max_examples=300, deadline=None, database=None)
def test_env_removal_keeps_every_other_variable(text: str) -> None:
    out = remove_assignments(text, _REMOVED, "hid the GPU", "env")
    expected = {k: v for k, v in environment_file(text).items() if k not in _REMOVED}
    assert environment_file(out) == expected
    assert not sets_any(out, _REMOVED, "env")
    assert remove_assignments(out, _REMOVED, "again", "env") == out


# ---- the fast readers agree with systemd's C, transcribed one character at a time ---------------

_WS = " \t\n\r"


def _ref_read_lines(text: str) -> list[str]:
    """src/basic/fileio.c read_line_full(), one character at a time."""
    lines, buf, eols, i = [], [], "", 0
    while i < len(text):
        c = text[i]
        eol = c if c in "\n\r\0" else ""
        if "\0" in eols or (not eol and eols) or (eol and eol in eols):
            lines.append("".join(buf))
            buf, eols = [], ""
            continue  # the character is read again for the next line
        i += 1
        if eol:
            eols += eol
        else:
            buf.append(c)
    if buf or eols:
        lines.append("".join(buf))
    return lines


def _ref_config_parse(text: str) -> list[str]:
    """src/shared/conf-parser.c config_parse(): the text handed to each parse_line()."""
    out: list[str] = []
    continuation: str | None = None
    bom_seen = False
    for buf in _ref_read_lines(text):
        if buf.lstrip(_WS)[:1] in ("#", ";"):
            continue
        line = buf
        if not bom_seen and buf.startswith("\ufeff"):
            line, bom_seen = buf[1:], True
        p = line if continuation is None else continuation + line
        escaped = False
        for ch in p:
            escaped = False if escaped else ch == "\\"
        if escaped:
            continuation = p[:-1] + " "
            continue
        out.append(p)
        continuation = None
    if continuation is not None:
        out.append(continuation)
    return out


def _ref_env_file(text: str) -> list[tuple[str, str]]:
    """src/basic/env-file.c parse_env_file_internal() (v254+), state for state."""
    out: list[tuple[str, str]] = []
    state, key, value = "PRE_KEY", [], []
    lkw: int | None = None
    lvw: int | None = None

    def push(chomp: bool) -> None:
        k = key[:lkw] if lkw is not None else key
        v = value[:lvw] if chomp and lvw is not None else value
        out.append(("".join(k), "".join(v)))

    for c in text.partition("\0")[0]:
        if state == "PRE_KEY":
            if c in "#;":
                state = "COMMENT"
            elif c not in _WS:
                state, key, lkw = "KEY", [c], None
        elif state == "KEY":
            if c in "\n\r":
                state, key = "PRE_KEY", []
            elif c == "=":
                state, lvw = "PRE_VALUE", None
            else:
                if c not in _WS:
                    lkw = None
                elif lkw is None:
                    lkw = len(key)
                key.append(c)
        elif state == "PRE_VALUE":
            if c in "\n\r":
                push(False)
                state, key, value = "PRE_KEY", [], []
            elif c == "'":
                state = "SINGLE"
            elif c == '"':
                state = "DOUBLE"
            elif c == "\\":
                state = "VALUE_ESCAPE"
            elif c not in _WS:
                state = "VALUE"
                value.append(c)
        elif state == "VALUE":
            if c in "\n\r":
                push(True)
                state, key, value = "PRE_KEY", [], []
            elif c == "\\":
                state, lvw = "VALUE_ESCAPE", None
            else:
                if c not in _WS:
                    lvw = None
                elif lvw is None:
                    lvw = len(value)
                value.append(c)
        elif state == "VALUE_ESCAPE":
            state = "VALUE"
            if c not in "\n\r":
                value.append(c)
        elif state == "SINGLE":
            if c == "'":
                state = "PRE_VALUE"
            else:
                value.append(c)
        elif state == "DOUBLE":
            if c == '"':
                state = "PRE_VALUE"
            elif c == "\\":
                state = "DOUBLE_ESCAPE"
            else:
                value.append(c)
        elif state == "DOUBLE_ESCAPE":
            state = "DOUBLE"
            if c in '"\\`$':
                value.append(c)
            elif c != "\n":
                value += ["\\", c]
        elif state == "COMMENT":
            if c == "\\":
                state = "COMMENT_ESCAPE"
            elif c in "\n\r":
                state = "PRE_KEY"
        elif state == "COMMENT_ESCAPE":
            state = "PRE_KEY" if c in "\n\r" else "COMMENT"
    if state not in ("PRE_KEY", "KEY", "COMMENT", "COMMENT_ESCAPE"):
        push(state == "VALUE")
    return out


_SOUP = st.lists(
    st.sampled_from([*"ab=#; \t\\\"'\n\r\0$`[]\ufeff", "\r\n", "\\\n", "\\\\"]), max_size=60
).map("".join)


@given(_SOUP)
@settings(max_examples=1500, deadline=None, database=None)
def test_logical_lines_match_config_parse(text: str) -> None:
    phys = physical_lines(text)
    assert [c for c, _ in phys] == _ref_read_lines(text)
    assert "".join(c + e for c, e in phys) == text
    found = logical_lines(text)
    assert [ll.text for ll in found if not ll.is_comment] == _ref_config_parse(text)
    # every physical line is in exactly one entry: its lines, or its comments
    owned = sorted(i for ll in found for i in (*ll.lines, *ll.comments))
    assert owned == list(range(len(phys)))


@given(_SOUP)
@settings(max_examples=1500, deadline=None, database=None)
def test_env_assignments_match_parse_env_file_internal(text: str) -> None:
    assert [(a.key, a.value) for a in env_assignments(text)] == _ref_env_file(text)


# ---- cost: an attacker writes these files --------------------------------------------------------


def _cpu_seconds(fn, *args) -> float:
    """CPU time of the quicker of two runs (other work may share this machine)."""
    best = float("inf")
    for _ in range(2):
        start = time.process_time()
        fn(*args)
        best = min(best, time.process_time() - start)
    return best


def _fast(fn, *args) -> None:
    assert _cpu_seconds(fn, *args) < 0.5, fn.__name__


UNIT_FLOODS = [
    "[Service]\nEnvironment=A=" + "x" * 1_000_000 + " CUDA_VISIBLE_DEVICES=-1\n",
    "[Service]\nEnvironment=" + "A=1 \\\n" * 100_000 + "CUDA_VISIBLE_DEVICES=-1\n",
    "[Service]\n" + "Environment=A=1 \\\n# c \\\n" * 50_000 + "B=2\n",
    "[Service]\nExecStart=" + "\\" * 1_000_001 + "\n",
    "[Service]\n" + "#" * 1_000_000 + "\n" + "\n" * 100_000,
    "\r\n\0" * 100_000,
]


@pytest.mark.parametrize("text", UNIT_FLOODS)
def test_unit_files_are_read_in_linear_time(text: str) -> None:
    _fast(logical_lines, text)
    _fast(directives, text)


@pytest.mark.parametrize("text", UNIT_FLOODS[:2])
def test_unit_files_are_edited_in_linear_time(text: str) -> None:
    assert _cpu_seconds(remove_assignments, text, [CUDA], "hid it") < 1
    assert not sets_any(remove_assignments(text, [CUDA], "hid it"), [CUDA])


ENV_FLOODS = [
    "A=" + "x" * 1_000_000 + "\n",
    "A=" + "x \\\n" * 100_000 + "\n",
    'A="' + "\\\\" * 500_000 + '"\n',
    "A=" + "\\x" * 500_000 + "\n",
    "A='" + "x\n" * 100_000 + "'\n",
    "# " + "\\" * 1_000_000 + "\n" + "B=1\n" * 100_000,
    " \t\r\n" * 250_000,
    "=" * 1_000_000,
]


@pytest.mark.parametrize("text", ENV_FLOODS)
def test_environment_files_are_read_in_linear_time(text: str) -> None:
    _fast(environment_file, text)


def test_environment_files_are_edited_in_linear_time() -> None:
    env = "A=1\n" * 100_000 + "CUDA_VISIBLE_DEVICES=-1\n"
    assert _cpu_seconds(remove_assignments, env, [CUDA], "hid it", "env") < 1
    assert not sets_any(remove_assignments(env, [CUDA], "hid it", "env"), [CUDA], "env")


def test_kind_is_checked() -> None:
    with pytest.raises(ValueError):
        unitfile.remove_assignments("A=1", ["A"], "x", "ini")  # type: ignore[arg-type]
