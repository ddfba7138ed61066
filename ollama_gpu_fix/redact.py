"""Keep secrets out of bundles and reports: only GPU and Ollama settings keep their values.

Units, the server's environment, shell profiles, container command lines and Ollama's
`server config` line hold whatever the host's owner put there: proxy passwords, HF_TOKEN,
API keys. Bundles get pasted into tickets and reports get printed, so every variable that is
not on the allowlist of knowledge.environment keeps its name and loses its value. Applied to
every section as soon as it is read (a live probe, `collect`, a pasted bundle), before
anything is parsed, written or printed. Pure text in, text out; linear in the input.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from ollama_gpu_fix.knowledge.environment import REDACTED, is_kept, redact_value
from ollama_gpu_fix.parsers.log_lines import MAX_LINE, parse_server_env, scan_pairs
from ollama_gpu_fix.parsers.systemd import split_word_spans

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _assignment(word: str) -> tuple[str, str] | None:
    name, eq, value = word.partition("=")
    if eq and _NAME.fullmatch(name):
        return name, value
    return None


# ---- systemd: Environment= in `systemctl cat` and `systemctl show` --------------------------


def _systemd_value(value: str) -> str:
    """Rewrite the words of one Environment= value whose variable is not kept."""
    out: list[str] = []
    cursor = 0
    for word, start, end in split_word_spans(value):
        pair = _assignment(word)
        if pair is None or is_kept(pair[0]):
            continue
        out.append(value[cursor:start])
        out.append(f'"{pair[0]}={REDACTED}"')
        cursor = end
    out.append(value[cursor:])
    return "".join(out)


def systemd_text(text: str) -> str:
    lines = []
    for line in text.split("\n"):
        key, eq, value = line.partition("=")
        if eq and key.strip() == "Environment":
            line = key + eq + _systemd_value(value)
        lines.append(line)
    return "\n".join(lines)


# ---- shell words: profiles, container command lines --------------------------------------

_SHELL_WORD = re.compile(r"""(?:[^\s'"\\;&|]+|'[^']*'?|"(?:[^"\\]|\\.)*"?|\\.?)+""")


def _unquote_shell(word: str) -> str:
    out = []
    for part in re.finditer(r"""'([^']*)'?|"((?:[^"\\]|\\.)*)"?|\\(.?)|([^'"\\]+)""", word):
        single, double, escaped, bare = part.groups()
        if double is not None:
            out.append(re.sub(r"\\(.)", r"\1", double))
        else:
            out.append(next(x for x in (single, escaped, bare) if x is not None))
    return "".join(out)


def shell_line(text: str) -> str:
    """A shell line with each `NAME=value` (or csh `setenv NAME value`) whose NAME is not kept
    rewritten as `NAME=<redacted>`; words that are neither stay as they are."""
    words = list(_SHELL_WORD.finditer(text))
    replace: dict[int, str] = {}  # word index -> replacement
    for index, match in enumerate(words):
        word = _unquote_shell(match.group())
        if word == "setenv" and index + 2 < len(words):
            name = _unquote_shell(words[index + 1].group())
            if _NAME.fullmatch(name) and not is_kept(name):
                replace[index + 2] = REDACTED
            continue
        flag = ""
        pair = _assignment(word)
        if pair is None and word.startswith("-") and "=" in word:  # --env=NAME=value
            flag, _, rest = word.partition("=")
            flag, pair = flag + "=", _assignment(rest)
        if pair is not None and not is_kept(pair[0]):
            replace[index] = f"{flag}{pair[0]}={REDACTED}"
    out: list[str] = []
    cursor = 0
    for index, match in enumerate(words):
        if index in replace:
            out += [text[cursor : match.start()], replace[index]]
            cursor = match.end()
    out.append(text[cursor:])
    return "".join(out)


def shell_env_text(text: str) -> str:
    """shell-env.txt: `FILE:LINE` (the probe) or bare profile lines (pasted)."""
    lines = []
    for line in text.split("\n"):
        head, sep, body = line.partition(":")
        if sep and head.startswith("/"):
            lines.append(head + sep + shell_line(body))
        else:
            lines.append(shell_line(line))
    return "\n".join(lines)


_COMPOSE_ENV = re.compile(r"^(\s+)([A-Za-z_][A-Za-z0-9_]*)(\s*:\s*)(\S.*)$")


# A log line of Ollama (slog or Go's std log), maybe behind compose's `service  | ` prefix.
_PASTED_LOG = re.compile(r"(?:[\w.-]{1,64} {0,32}\| )?(?:time=|\d{4}/\d{2}/\d{2} \d)")


def container_text(text: str) -> str:
    """docker/podman command lines (`-e NAME=value`) and compose `environment:` entries."""
    lines = []
    for line in text.split("\n"):
        if _PASTED_LOG.match(line):  # the container's log pasted under its command
            lines.append(log_text(line))
            continue
        mapping = _COMPOSE_ENV.match(line)
        if mapping and mapping.group(2).isupper() and not is_kept(mapping.group(2)):
            line = mapping.group(1) + mapping.group(2) + mapping.group(3) + REDACTED
        else:
            line = shell_line(line)
        lines.append(line)
    return "\n".join(lines)


# ---- the server's environment and Ollama's log --------------------------------------------


def process_text(text: str) -> str:
    """ollama-process.txt: `env NAME=value` lines."""
    lines = []
    for line in text.split("\n"):
        if line.startswith("env "):
            name, eq, value = line[4:].partition("=")
            if eq:
                line = f"env {name}={redact_value(name, value)}"
        lines.append(line)
    return "\n".join(lines)


def _server_config(line: str) -> str:
    """`msg="server config" env="map[K:V ...]"`: values of variables that are not kept."""
    cut = line[:MAX_LINE]
    for key, value, start, end in scan_pairs(cut, 0):
        if key != "env" or not value.startswith("map["):
            continue
        env = parse_server_env(value)
        items = " ".join(f"{k}:{redact_value(k, v)}" for k, v in env.items())
        quoted = '"map[' + items.replace("\\", "\\\\").replace('"', '\\"') + ']"'
        return cut[:start] + quoted + cut[end:]
    return line


def log_text(text: str) -> str:
    if "server config" not in text:
        return text
    return "\n".join(
        _server_config(line) if "server config" in line else line for line in text.split("\n")
    )


_BY_SECTION: dict[str, Callable[[str], str]] = {
    "systemctl-cat.txt": systemd_text,
    "systemctl-show.txt": systemd_text,
    "ollama-process.txt": process_text,
    "shell-env.txt": shell_env_text,
    "docker-run.txt": container_text,
}


def redact_sections(sections: Mapping[str, str]) -> dict[str, str]:
    """Every section with the values of non-GPU variables replaced by <redacted>."""
    out: dict[str, str] = {}
    for name, text in sections.items():
        rule = _BY_SECTION.get(name)
        if rule is None and name.endswith((".log", ".txt")):
            rule = log_text
        out[name] = rule(text) if rule else text
    return out
