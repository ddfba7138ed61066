"""Ollama's server log (ollama-serve.log, journalctl.txt and any free-form *.txt/*.log).

Only lines in a shape Ollama or its engines write are evidence (parsers/log_lines.py): the
gin access log and prompt values are text an HTTP client chooses. Only the last server run
in each file counts: a log tail usually holds several restarts and the newest one is the
state the user is asking about. Lines may carry journald or syslog prefixes, may be cut at
either end (pasted from an issue), and may come from any era.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ollama_gpu_fix.knowledge import log_signatures as sig
from ollama_gpu_fix.parsers.kernel import strip_prefix
from ollama_gpu_fix.parsers.log_lines import (
    MAX_LINE,
    LogRecord,
    classify,
    extend,
    parse_server_env,
)
from ollama_gpu_fix.sections import LOG_SECTIONS, SECTIONS
from ollama_gpu_fix.snapshot import ComputeDevice, Line, LogEvent, OllamaLog

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
# Substrings a line must hold to be worth classifying at all (cheap, C speed): every
# signature's keywords plus the run markers. Most lines of a real log are request lines.
_WORTH = re.compile(
    sig.KEYWORDS.pattern + r"|server config|listening on|inference compute|detecting gpu",
    re.IGNORECASE,
)
MAX_RECORDS = 20_000  # evidence lines kept per bundle (a day of a busy server's GPU lines)
_LISTENING = re.compile(r"Listening on (?P<addr>\S+) \(version (?P<version>[^)]{1,40})\)")
_COMPOSE_PREFIX = re.compile(r"[\w.-]{1,64}(?:-\d+)?\s{0,32}\| ")


def _log_files(sections: Mapping[str, str]) -> list[str]:
    named = [name for name in LOG_SECTIONS if name in sections]
    free = sorted(
        name for name in sections if name not in SECTIONS and name.endswith((".txt", ".log"))
    )
    return named + free


def _is_run_start(record: LogRecord, marker: str) -> bool:
    if marker == "config":
        return record.msg == "server config"
    if marker == "listening":
        return record.msg.startswith("Listening on ")
    return sig.DISCOVERY_START.match(record.msg) is not None


def _last_run(records: list[tuple[str, LogRecord]]) -> int:
    """Index of the first record of the last server run (0 when there is one run or none).

    A run starts with `server config` (every era since 0.1.3x prints it first), else with
    `Listening on`, else (a pasted excerpt) with the last discovery start. Only trusted line
    shapes count: a forged marker could otherwise hide the real evidence."""
    for marker in ("config", "listening", "discovery"):
        for index in range(len(records) - 1, -1, -1):
            if _is_run_start(records[index][1], marker):
                return index
    return 0


def _records(text: str) -> list[tuple[str, LogRecord]]:
    """(original line, record) for every evidence line worth a look, in order."""
    out: list[tuple[str, LogRecord]] = []
    pending: tuple[str, LogRecord] | None = None
    for raw in text.split("\n"):
        raw = raw.rstrip()[:MAX_LINE]
        if not raw.strip():
            continue
        clean = strip_prefix(raw)
        compose = _COMPOSE_PREFIX.match(clean)
        if compose and not clean.startswith("|"):
            clean = clean[compose.end() :]
        # a slog line wrapped by the paste: continuation lines are indented key=value pairs
        if pending and raw[:1] in " \t" and re.match(r"\s+[\w.]+=", raw):
            extend(pending[1], clean.strip())
            continue
        if not _WORTH.search(clean):
            pending = None
            continue
        record = classify(clean)
        if record is None:
            pending = None
            continue
        pending = (raw, record) if record.shape == "slog" else None
        out.append((raw, record))
    return out


def _scan(name: str, records: list[tuple[str, LogRecord]], log: OllamaLog) -> None:
    for raw, record in records:
        line = Line(name, raw)
        msg, fields = record.msg, record.fields
        if len(log.records) < MAX_RECORDS:
            log.records.append((line, record.text, fields))
        if msg == "inference compute" or msg.endswith("inference compute"):
            if "library" in fields:
                log.compute.append(
                    ComputeDevice(**{k: fields.get(k) for k in _COMPUTE_FIELDS}, raw=line)
                )
                continue
        if msg == "server config" and "env" in fields:
            log.server_env = parse_server_env(fields["env"])
            log.server_env_line = line
            continue
        listening = _LISTENING.match(msg) if msg.startswith("Listening on") else None
        if listening:
            log.version = listening.group("version")
        if msg == "gpu memory" and (fields.get("library") or "cpu").lower() != "cpu":
            log.scheduled.append(line)  # the scheduler placing a load on this GPU
        if msg == "total memory" and fields.get("size"):
            log.model_memory = fields["size"]
        if "layers.offload" in fields and "layers.model" in fields and log.layers_offloaded is None:
            on_gpu, total = fields["layers.offload"], fields["layers.model"]
            if on_gpu.isdigit() and total.isdigit():  # the estimate before `offloaded N/M`
                log.layers_offloaded = (int(on_gpu), int(total))
                log.layers_line = line
        vram = fields.get("total vram") or fields.get("total_vram")
        if vram:
            log.total_vram = vram
        text = record.text
        if "offloaded" in text:
            offload = sig.BY_ID["offloaded-layers"].pattern.search(text)
            if offload:
                log.layers_offloaded = (int(offload.group("on_gpu")), int(offload.group("total")))
                log.layers_line = line
        matched = False
        if sig.KEYWORDS.search(text.lower()):
            for signature in sig.SIGNATURES:
                match = signature.pattern.search(text)
                if match:
                    matched = True
                    captured = dict(fields)
                    captured.update({k: v for k, v in match.groupdict().items() if v is not None})
                    log.events.append(LogEvent(signature.id, line, captured))
        if not matched and len(log.gpu_lines) < 200 and sig.GPU_WORDS.search(text):
            log.gpu_lines.append(line)


def parse(sections: Mapping[str, str]) -> OllamaLog | None:
    files = _log_files(sections)
    if not files:
        return None
    log = OllamaLog()
    for name in files:
        text = sections[name]
        log.line_count += text.count("\n") + (0 if text.endswith("\n") else 1)
        records = _records(text)
        _scan(name, records[_last_run(records) :], log)
    return log
