"""Ollama's server log (ollama-serve.log, journalctl.txt and any free-form *.txt/*.log).

Only the last server run in each file counts: a log tail usually holds several restarts and
the newest one is the state the user is asking about. Lines may carry journald or syslog
prefixes, may be cut at either end (pasted from an issue), and may come from any era.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ollama_gpu_fix.bundle import LOG_SECTIONS, SECTIONS
from ollama_gpu_fix.knowledge import log_signatures as sig
from ollama_gpu_fix.parsers.kernel import strip_prefix
from ollama_gpu_fix.snapshot import ComputeDevice, Line, LogEvent, OllamaLog

_KV = re.compile(r'(?P<k>[A-Za-z_][\w.]*|"[^"]+")=(?P<v>"(?:[^"\\]|\\.)*"|[^\s"]*)')
_OFFLOAD = sig.BY_ID["offloaded-layers"].pattern
_COMPUTE_FIELDS = (
    "library",
    "id",
    "variant",
    "compute",
    "driver",
    "name",
    "description",
    "type",
    "total",
    "available",
)
# Server config maps print every known variable; "map[A:1 B: C:x]" with values without spaces
# except inside brackets. Keys are upper-case identifiers.
_MAP_ENTRY = re.compile(r"(?:^|\s)(?P<k>[A-Z][A-Z0-9_]*):(?P<v>\[[^\]]*\]|\S*)")


def key_values(text: str) -> dict[str, str]:
    """slog `key=value key="quoted value"` pairs; later keys win."""
    out: dict[str, str] = {}
    for match in _KV.finditer(text):
        key = match.group("k").strip('"')
        value = match.group("v")
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = value[1:-1].replace('\\"', '"')
        out[key] = value
    return out


def parse_server_env(text: str) -> dict[str, str]:
    return {m.group("k"): m.group("v") for m in _MAP_ENTRY.finditer(text)}


def _log_files(sections: Mapping[str, str]) -> list[str]:
    named = [name for name in LOG_SECTIONS if name in sections]
    free = sorted(
        name for name in sections if name not in SECTIONS and name.endswith((".txt", ".log"))
    )
    return named + free


def _last_run(lines: list[str]) -> int:
    """Index of the first line of the last server run (0 when there is one run or none).

    A run starts with `server config` (every era since 0.1.3x prints it first), else with
    `Listening on`, else (a pasted excerpt) with the last discovery start.
    """
    for marker in (sig.SERVER_CONFIG, sig.LISTENING, sig.DISCOVERY_START):
        for index in range(len(lines) - 1, -1, -1):
            if marker.search(lines[index]):
                return index
    return 0


def _compute(line: Line, text: str) -> ComputeDevice:
    fields = key_values(text)
    return ComputeDevice(**{k: fields.get(k) for k in _COMPUTE_FIELDS}, raw=line)


def _scan(name: str, lines: Iterable[str], log: OllamaLog) -> None:
    # cheap substring tests first: most lines of a real log are request lines
    for text in lines:
        line = Line(name, text)
        if "inference compute" in text and "library=" in text:
            log.compute.append(_compute(line, text))
            continue
        if 'msg="server config"' in text:
            config = sig.SERVER_CONFIG.search(text)
            if config:
                log.server_env = parse_server_env(config.group("env"))
                log.server_env_line = line
                continue
        if "Listening on" in text:
            listening = sig.LISTENING.search(text)
            if listening:
                log.version = listening.group("version")
        if "vram" in text:
            vram = sig.TOTAL_VRAM.search(text)
            if vram:
                log.total_vram = vram.group("vram")
        if "offloaded" in text:
            offload = _OFFLOAD.search(text)
            if offload:
                log.layers_offloaded = (int(offload.group("on_gpu")), int(offload.group("total")))
        if sig.KEYWORDS.search(text.lower()) and sig.ANY_SIGNATURE.search(text):
            for signature in sig.SIGNATURES:
                match = signature.pattern.search(text)
                if match:
                    fields = key_values(text)
                    fields.update({k: v for k, v in match.groupdict().items() if v is not None})
                    log.events.append(LogEvent(signature.id, line, fields))
        elif len(log.gpu_lines) < 200 and sig.GPU_WORDS.search(text):
            log.gpu_lines.append(line)


def parse(sections: Mapping[str, str]) -> OllamaLog | None:
    files = _log_files(sections)
    if not files:
        return None
    log = OllamaLog()
    for name in files:
        lines = [strip_prefix(t.rstrip()) for t in sections[name].split("\n")]
        lines = [t for t in lines if t.strip()]
        log.line_count += len(lines)
        _scan(name, lines[_last_run(lines) :], log)
    return log
