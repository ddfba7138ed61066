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
from ollama_gpu_fix.snapshot import ComputeDevice, Line, LogEvent, OllamaLog

_PREFIX = re.compile(
    r"^(?:(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d\S*)\s+"
    r"\S+\s+[\w.\-/]+(?:\[\d+\])?:\s)"
)
_KV = re.compile(r'(?P<k>[A-Za-z_][\w.]*|"[^"]+")=(?P<v>"(?:[^"\\]|\\.)*"|[^\s"]*)')
_OFFLOAD = sig.BY_ID["offloaded-layers"].pattern
_COMPUTE_FIELDS = (
    "library", "id", "variant", "compute", "driver", "name", "description", "type", "total",
    "available",
)
# Server config maps print every known variable; "map[A:1 B: C:x]" with values without spaces
# except inside brackets. Keys are upper-case identifiers.
_MAP_ENTRY = re.compile(r"(?:^|\s)(?P<k>[A-Z][A-Z0-9_]*):(?P<v>\[[^\]]*\]|\S*)")


def strip_prefix(text: str) -> str:
    return _PREFIX.sub("", text, count=1)


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
        name
        for name in sections
        if name not in SECTIONS and name.endswith((".txt", ".log")) and name != "expected.json"
    )
    return named + free


def _last_run(lines: list[str]) -> int:
    """Index of the first line of the last server run (0 when there is one run or none)."""
    starts = [i for i, t in enumerate(lines) if sig.RUN_START.search(t)]
    start = 0
    previous = -1000
    for index in starts:
        # "server config" and "Listening on" a few lines apart belong to one start
        if index - previous >= 30:
            start = index
        previous = index
    if not starts:
        discoveries = [i for i, t in enumerate(lines) if sig.DISCOVERY_START.search(t)]
        start = discoveries[-1] if discoveries else 0
    return start


def _compute(line: Line, text: str) -> ComputeDevice:
    fields = key_values(text)
    return ComputeDevice(**{k: fields.get(k) for k in _COMPUTE_FIELDS}, raw=line)


def _scan(name: str, lines: Iterable[str], log: OllamaLog) -> None:
    for text in lines:
        line = Line(name, text)
        if sig.INFERENCE_COMPUTE.search(text) and "library=" in text:
            log.compute.append(_compute(line, text))
            continue
        config = sig.SERVER_CONFIG.search(text)
        if config:
            log.server_env = parse_server_env(config.group("env"))
            log.server_env_line = line
            continue
        listening = sig.LISTENING.search(text)
        if listening:
            log.version = listening.group("version")
        vram = sig.TOTAL_VRAM.search(text)
        if vram:
            log.total_vram = vram.group("vram")
        offload = _OFFLOAD.search(text)
        if offload:
            log.layers_offloaded = (int(offload.group("on_gpu")), int(offload.group("total")))
        matched = False
        for signature in sig.SIGNATURES if sig.ANY_SIGNATURE.search(text) else ():
            match = signature.pattern.search(text)
            if match:
                fields = key_values(text)
                fields.update({k: v for k, v in match.groupdict().items() if v is not None})
                log.events.append(LogEvent(signature.id, line, fields))
                matched = True
        if not matched and sig.GPU_WORDS.search(text) and len(log.gpu_lines) < 200:
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
