"""Which log lines are evidence: only the shapes Ollama and its engines really write.

Ollama's journal also carries text that other people choose: the gin access log prints every
request path (`[GIN] ... | GET "/<anything>"`), and with OLLAMA_DEBUG=1 the server logs
prompts as slog values (`msg="chat request" prompt="..."`, server/routes.go). A signature
found there would let one unauthenticated HTTP request steer a fix that runs as root. So a
line counts only when it has one of these shapes, and only its trusted parts are searched:

- slog text (every era since 0.1.3x, Windows server.log, docker logs):
  `time=... level=... source=file.go:N msg="..." key=value ...`. Trusted: the msg and the
  values of TRUSTED_KEYS (discovery and load fields). Values of other keys (prompt, model,
  ...) are blanked before any signature sees the line. Pasted excerpts cut at the front
  (`runner.go:396 msg=...`, `inference compute" id=...`) are read the same way.
- Go's standard log of 0.1.x: `2024/01/14 19:50:06 gpu.go:88: Detecting GPU type`.
- lines the engines print raw (ggml, llama.cpp, Ollama's own C discovery code, the ROCm
  runtime with AMD_LOG_LEVEL): `ggml_cuda_init: ...`, `load_tensors: ...`, `  Device 0: ...`,
  `CUDA error: ...`, `cudaSetDevice err: 999`, `:1:rocdevice.cpp:621: ...`.
- the CLI's own error output, pasted by users: `Error: llama runner process has terminated`.
- a message alone, as users reformat a paste (`dropping integrated GPU; to enable, ...`,
  `NvRmMemInitNvmap failed with Permission denied`): only when a known signature matches at
  its very start, so no free text becomes evidence.

An elision a user wrote at the front (`[...]`, `...`) is dropped first; a line that is a
command the user typed (`$ ollama serve`) is not log output.

Never evidence: gin access-log lines, llama-server's request/response logs, the model
metadata llama.cpp prints at load (`llama_model_loader: - kv ...`, `print_info: ...`: a model
file's author writes those values), anything else.
Everything here is linear in the line: a hand-written scanner, regexes anchored at the start
of the line, and lines capped at MAX_LINE before any of it runs.
"""

from __future__ import annotations

import re

from ollama_gpu_fix.knowledge.environment import GPU_ENV_NAMES
from ollama_gpu_fix.knowledge.log_signatures import SIGNATURES, TRUSTED_KEYS
from ollama_gpu_fix.records import field, record

# Longest line any parser looks at. Ollama's longest real lines (the server config map, the
# era-B device dumps at DEBUG) stay under 8 KiB; journald itself cuts lines at 48 KiB.
MAX_LINE = 16 * 1024

_STDLOG = re.compile(r"\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)? [\w.-]+\.go:\d+: ")
_STDLOG_NO_DATE = re.compile(r"[a-z_]{1,32}\.go:\d{1,5}: ")
_SOURCE_FRAGMENT = re.compile(r"[\w.-]+\.go:\d+ (?=msg=)")
# A C/C++ function or file prefix as llama.cpp, ggml and Ollama's C code print it.
_ENGINE = re.compile(
    r"(?:[a-z_][a-z0-9_]*: |[a-z_][a-z0-9_]*:\s*$"  # ggml_cuda_init: ... / llama_model_load:
    r"|:\d+:[\w.-]+\.(?:cpp|c|h|hpp):\d+: "  # ROCm runtime, AMD_LOG_LEVEL (:1:rocdevice.cpp:621:)
    r"|[\w.-]+\.(?:cu|cpp|c):\d+: "  # ggml-cuda.cu:123: ...
    r"|Device \d+: |(?:CUDA|ROCm|Vulkan|SYCL)\d+: |ggml_\w+"
    r"|(?:CUDA|ROCm|HIP|rocBLAS|hip|Vulkan) error\b|hipError\w+|cuda\w+ err: )"
)
# llama.cpp server functions that echo HTTP requests and bodies (with --verbose).
_REQUEST_ECHO = re.compile(r"(?:request|response|log_server_r|srv|slot|prompt)\b")
# llama.cpp's dump of a model's own metadata at load (ggml-org/llama.cpp src/llama-model-loader.cpp
# "- kv %3d: %42s %-16s = %s", src/llama-model.cpp print_info, llm_load_print_meta before it):
# its values come from whoever made the model file, so they are never evidence.
_METADATA = re.compile(
    r"(?:llama_model_loader: - (?:kv|type)\b|print_info: |llm_load_print_meta: )")
_CLI_ERROR = re.compile(r"Error: ")
_STD_LEVEL = re.compile(r"(?:DEBUG|INFO|WARN|ERROR) ")
_FIRST_PAIR = re.compile(r" [A-Za-z_][\w.]*=")
_ELISION = re.compile(r"(?:\[(?:\.\.\.|\u2026)\]|\.\.\.|\u2026) *")
_PROMPT = re.compile(r"(?:[$#>\u276f]|\S+@\S+[:~][^$#]*[$#]) ")  # $ ollama serve, root@h:~# ...
_GIN = "[GIN]"
# llama.cpp common/log.cpp: elapsed time and a level letter before the message.
_LLAMA_PREFIX = re.compile(r"\d{1,6}\.\d{2}\.\d{3}\.\d{3} [DIWEN] ")


@record
class LogRecord:
    """One evidence line: its shape, its message and trusted fields, the text to match on."""

    shape: str  # slog, stdlog, engine, cli
    msg: str
    fields: dict[str, str] = field(default_factory=dict)
    text: str = ""  # the line with untrusted values blanked: what signatures may match


def classify(text: str) -> LogRecord | None:
    """The evidence a line may give, or None when it is not a shape Ollama writes."""
    line = text[:MAX_LINE].strip()
    elided = _ELISION.match(line)
    if elided:
        line = line[elided.end() :]
    stamped = _LLAMA_PREFIX.match(line)
    if stamped:  # llama-server's own log (Ollama 0.30+ runs it): `0.00.006.542 E load_backend:`
        line = line[stamped.end() :]
    if not line or line.startswith(_GIN) or "| [GIN]" in line[:64] or _PROMPT.match(line):
        return None
    if line.startswith("time=") or " msg=" in line or line.startswith("msg="):
        return _slog(line)
    match = _STDLOG.match(line)
    if match:
        msg = line[match.end() :]
        leveled = _STD_LEVEL.match(msg)
        if leveled:  # 0.2-0.3: slog through the std logger, `INFO server config env=...`
            rest = msg[leveled.end() :]
            first = _FIRST_PAIR.search(rest)
            head = rest[: first.start()] if first else rest
            pairs = scan_pairs(rest, first.start()) if first else []
            return _record("stdlog", head.strip(), rest, pairs)
        return LogRecord("stdlog", msg, {}, msg)
    match = _SOURCE_FRAGMENT.match(line)
    if match:
        return _slog(line[match.end() :])
    match = _STDLOG_NO_DATE.match(line)
    if match:  # Go's std log pasted without its date: `routes.go:891: warning: ...`
        msg = line[match.end() :]
        return LogRecord("stdlog", msg, {}, msg)
    if _ENGINE.match(line):
        head = line.split(":", 1)[0]
        if _REQUEST_ECHO.match(head) or _METADATA.match(line):
            return None
        return LogRecord("engine", line, {}, line)
    if _CLI_ERROR.match(line):
        return LogRecord("cli", line, {}, line)
    if line.startswith('env="map['):  # the server config line pasted from its env= on
        return _record("slog", "server config", line, scan_pairs(line, 0))
    for msg in _BARE_MESSAGES:  # a slog line reformatted without quotes: `inference compute id=`
        if line.startswith(msg + " ") and _FIRST_PAIR.match(line, len(msg)):
            return _record("slog", msg, line, scan_pairs(line, len(msg) + 1))
    if line.startswith('{"timestamp":'):
        return _engine_json(line)
    fragment = _fragment(line)
    if fragment is None and any(s.pattern.match(line) for s in SIGNATURES):
        return LogRecord("message", line, {}, line)
    return fragment


# Messages whose fields are evidence when a paste lost the quotes of msg="...".
_BARE_MESSAGES = ("inference compute",)
# The JSON log of the 0.1.x llama.cpp server (ext_server): only its `message` is read, and only
# from functions that are not the request log (which echoes prompts).
_JSON_MESSAGE = re.compile(r'"function":"(?P<function>\w{1,64})".{0,200}?"message":"'
                           r'(?P<message>[^"\\]{1,1024})"')


def _engine_json(line: str) -> LogRecord | None:
    found = _JSON_MESSAGE.search(line)
    if not found or _REQUEST_ECHO.match(found.group("function")) \
            or found.group("function").startswith(("log_server", "update_slots", "launch_slot")):
        return None
    message = found.group("message")
    return LogRecord("engine", message, {}, message)


def _fragment(line: str) -> LogRecord | None:
    """A slog line pasted without its head: `inference compute" id=GPU-1 library=cuda ...`.

    The head is the tail of the msg value; it may hold no quote, brace or backslash (a JSON
    request body echoed by a server has them), and a key=value pair must follow it."""
    quote = line.find('" ')
    if quote <= 0:
        return None
    head = line[:quote]
    if any(c in head for c in '"{}\\=[]') or "=" not in line[quote:]:
        return None
    pairs = scan_pairs(line, quote + 2)
    if not pairs:
        return None
    return _record("slog", head, line, pairs)


def _slog(line: str) -> LogRecord | None:
    pairs = scan_pairs(line, 0)
    if not any(key == "msg" for key, *_ in pairs):
        return None
    msg = next(value for key, value, *_ in pairs if key == "msg")
    return _record("slog", msg, line, pairs)


def _record(shape: str, msg: str, line: str, pairs: list[tuple[str, str, int, int]]) -> LogRecord:
    fields: dict[str, str] = {}
    kept: list[str] = []
    cursor = 0
    for key, value, start, end in pairs:
        if key == "msg" or trusted_key(key) or (key == "request" and msg == "load"):
            # `msg=load request="{... GPULayers:...}"`: the runner's own load plan
            fields[key] = value
            continue
        kept.append(line[cursor:start])  # blank the value of a key no evidence comes from
        kept.append('""')
        cursor = end
    kept.append(line[cursor:])
    fields.pop("msg", None)
    return LogRecord(shape, msg, fields, "".join(kept))


def extend(record: LogRecord, continuation: str) -> None:
    """Add the pairs of a continuation line (a slog line wrapped by a paste) to its record."""
    more = _record(record.shape, record.msg, continuation, scan_pairs(continuation, 0))
    record.fields.update(more.fields)
    record.text += " " + more.text


def trusted_key(key: str) -> bool:
    return key in TRUSTED_KEYS or key.startswith(("layers.", "memory.")) or key in GPU_ENV_NAMES


# Tokens of a slog line, each matched anchored at the current position (so the whole scan is
# one pass): a Go-quoted string (unrolled loop, unterminated runs to the end) or a bare word.
_QUOTED = r'"[^"\\]*(?:\\.[^"\\]*)*"?'
_KEY = re.compile(r" *(" + _QUOTED + r'|[^ ="]+)(=?)')
_VALUE = re.compile(_QUOTED + r"|[^ ]*")
_SKIP = re.compile(r"[^ ]*")
_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": " ", "t": " ", '"': '"', "\\": "\\"}


def _unquote(token: str) -> str:
    if not token.startswith('"'):
        return token
    body = token[1:-1] if len(token) > 1 and token.endswith('"') and not token.endswith('\\"') \
        else token[1:]
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), body)


def scan_pairs(line: str, start: int) -> list[tuple[str, str, int, int]]:
    """slog `key=value key="quoted \\"value\\""` pairs: (key, value, value start, value end).

    One pass: every token is matched anchored where the last one ended. A quoted key
    (`"total vram"="0 B"`) is allowed, words that are not pairs are skipped, an unterminated
    quote runs to the end of the line."""
    pairs: list[tuple[str, str, int, int]] = []
    i, n = start, len(line)
    while i < n:
        key = _KEY.match(line, i)
        if key is None or key.end() == i:  # a stray quote or '=': skip the word
            i = _SKIP.match(line, i + 1).end()
            continue
        i = key.end()
        if not key.group(2):
            continue
        value = _VALUE.match(line, i)
        vstart, i = i, value.end()
        pairs.append((_unquote(key.group(1)), _unquote(value.group()), vstart, i))
    return pairs


def parse_server_env(text: str) -> dict[str, str]:
    """`map[A:1 B: C:[x y] D:v]` (Go's %v of a map) -> {A: 1, B: '', C: '[x y]', D: v}.

    One pass; a value in brackets may hold spaces, anything else ends at a space."""
    body = text[4:] if text.startswith("map[") else text
    if body.endswith("]"):
        body = body[:-1]
    env: dict[str, str] = {}
    i, n = 0, len(body)
    while i < n:
        while i < n and body[i] == " ":
            i += 1
        colon = body.find(":", i)
        space = body.find(" ", i)
        if colon < 0 or (0 <= space < colon):
            i = n if space < 0 else space + 1  # a word that is not KEY:value
            continue
        key, i = body[i:colon], colon + 1
        if i < n and body[i] == "[":
            end = body.find("]", i)
            end = n - 1 if end < 0 else end
            value, i = body[i : end + 1], end + 1
        else:
            end = body.find(" ", i)
            end = n if end < 0 else end
            value, i = body[i:end], end
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            env[key] = value
    return env
