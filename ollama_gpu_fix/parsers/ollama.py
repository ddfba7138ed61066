"""ollama-version.txt, ollama-libs.txt, ollama-process.txt, shell-env.txt, api-ps.json,
ollama-ps.txt.

The version decides the era (log lines, lib layout, defaults); the lib/ollama listing shows
which GPU backends and rocBLAS gfx targets are installed; the running process shows the
environment the server really has (a shell profile is read by logins, never by systemd);
/api/ps and `ollama ps` show where the loaded model actually sits (size_vram vs size).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from typing import Any

from ollama_gpu_fix.parsers.kernel import first_int, section_lines
from ollama_gpu_fix.snapshot import (
    Line,
    LoadedModel,
    OllamaLibs,
    OllamaProcess,
    OllamaVersion,
    ShellEnvAssignment,
)

_VERSION = r"(\d+\.\d+\.\d+(?:[-+][\w.]+)?)"

# ---- ollama -v ----------------------------------------------------------------------------


def parse_version(sections: Mapping[str, str]) -> OllamaVersion | None:
    """`ollama version is X` (server answered), `Warning: client version is Y`."""
    if "ollama-version.txt" not in sections:
        return None
    result = OllamaVersion()
    server = client = None
    unreachable = False
    for line, text in section_lines(sections, "ollama-version.txt"):
        match = re.search(r"client version is\s+" + _VERSION, text)
        if match:
            client = client or match.group(1)
            result.raw.append(line)
            continue
        match = re.search(r"ollama version(?: is)?\s+" + _VERSION, text, re.I)
        if match:
            server = server or match.group(1)
            result.raw.append(line)
            continue
        if re.search(r"could not connect to (?:a running )?ollama|connection refused", text, re.I):
            unreachable = True
            result.raw.append(line)
    if unreachable:
        result.server_reachable = False
    elif server:
        result.server_reachable = True
    result.client_version = client or server
    result.version = (server if not unreachable else None) or client
    return result


# ---- lib/ollama listing -------------------------------------------------------------------

_ROOT = re.compile(r"^(.*?/lib/ollama|/usr/share/ollama/lib)(?=/|$)")
_VARIANT = re.compile(r"^(cuda_v\d+|cuda_jetpack\d+|rocm(?:_v[\d_]+)?|vulkan|mlx\w*|oneapi\w*)$")
_TENSILE = re.compile(r"TensileLibrary_lazy_(gfx[0-9a-f]+)\.dat")


def parse_libs(sections: Mapping[str, str]) -> OllamaLibs | None:
    if "ollama-libs.txt" not in sections:
        return None
    libs = OllamaLibs()
    directory: str | None = None
    for line, text in section_lines(sections, "ollama-libs.txt"):
        text = text.replace("\\", "/")
        header = re.match(r"^(/\S+):$", text)  # `ls -R` style headers (pasted)
        if header:
            directory = header.group(1)
            continue
        path = text.split(" -> ")[0].split()[-1] if text.split() else ""
        if not path.startswith("/") and directory and re.match(r"^[\w.+-]+$", path):
            path = directory.rstrip("/") + "/" + path
        root = _ROOT.match(path)
        if not root:
            continue
        libs.raw.append(line)
        libs.files.append(path)
        if root.group(1) not in libs.roots:
            libs.roots.append(root.group(1))
        rel = path[len(root.group(1)) :].strip("/").split("/")
        if rel and rel[0] and (len(rel) > 1 or _VARIANT.match(rel[0])):
            if rel[0] not in libs.variants and ".so" not in rel[0]:
                libs.variants.append(rel[0])
        for gfx in _TENSILE.findall(path):
            if gfx not in libs.rocblas_targets:
                libs.rocblas_targets.append(gfx)
    libs.rocblas_targets.sort()
    return libs


# ---- the running server --------------------------------------------------------------------


def _process_records(sections: Mapping[str, str]) -> list[OllamaProcess]:
    """Every `ollama serve` record (records start at `pid=`)."""
    records: list[OllamaProcess] = []
    proc: OllamaProcess | None = None
    for line, text in section_lines(sections, "ollama-process.txt"):
        key, sep, value = text.partition("=")
        if text.startswith("env "):
            key, sep = "env", " "
        if key == "pid" and sep:
            proc = OllamaProcess()
            records.append(proc)
        if proc is None:
            continue
        proc.raw.append(line)
        if key == "pid":
            proc.pid = first_int(value)
        elif key == "user":
            proc.user = value.strip() or None
        elif key == "parent":
            proc.parent = value.strip() or None
        elif key == "cmdline":
            proc.cmdline = value.strip() or None
        elif key == "trusted":
            proc.trusted = value.strip() == "yes"
        elif key == "trust":
            proc.trust = value.strip() or None
        elif key == "cgroup":
            in_unit = value.rstrip().endswith("/system.slice/ollama.service")
            proc.under_systemd = in_unit or bool(proc.under_systemd)
        elif key == "env":
            name, eq, val = text[4:].partition("=")
            if eq and name.strip():
                proc.environment[name.strip()] = val
    return records


def parse_process(sections: Mapping[str, str]) -> OllamaProcess | None:
    """The server: the first record the probe trusted (a pasted record, without a trust line,
    is taken as the user gave it); None when no trusted server runs."""
    if "ollama-process.txt" not in sections:
        return None
    for proc in _process_records(sections):
        if proc.trusted is not False:
            return proc
    return OllamaProcess()


def parse_foreign_processes(sections: Mapping[str, str]) -> list[OllamaProcess] | None:
    """`ollama serve` processes of other users: reported, never believed."""
    if "ollama-process.txt" not in sections:
        return None
    return [p for p in _process_records(sections) if p.trusted is False]


_SHELL_VARS = re.compile(
    r"^(HSA_OVERRIDE_GFX_VERSION\w*|OLLAMA_\w+|CUDA_VISIBLE_DEVICES|HIP_VISIBLE_DEVICES"
    r"|ROCR_VISIBLE_DEVICES|GGML_VK_VISIBLE_DEVICES|GPU_DEVICE_ORDINAL|LD_LIBRARY_PATH"
    r"|CUDA_\w+|NVIDIA_\w+|HIP_\w+|ROCR_\w+|HSA_\w+|GGML_\w+)$"
)


def _shell_words(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=True)
    except ValueError:
        return text.split()


def parse_shell_env(sections: Mapping[str, str]) -> list[ShellEnvAssignment] | None:
    """`FILE:LINE` lines: GPU variables set in shell profiles (export A=1, A="1", setenv A 1)."""
    if "shell-env.txt" not in sections:
        return None
    found: list[ShellEnvAssignment] = []
    for line, text in section_lines(sections, "shell-env.txt"):
        match = re.match(r"^(/[^:]+):(?:\d+:)?(.*)$", text)
        if not match:
            continue
        file, body = match.group(1), match.group(2).strip()
        if body.startswith("#"):
            continue
        words = _shell_words(body)
        if len(words) >= 3 and words[0] == "setenv":  # csh
            words = [f"{words[1]}={words[2]}"]
        for word in words:
            name, eq, value = word.partition("=")
            if eq and _SHELL_VARS.match(name):
                found.append(ShellEnvAssignment(file=file, name=name, value=value, raw=line))
    return found


# ---- loaded models --------------------------------------------------------------------------


def processor_of(size: int | None, size_vram: int | None) -> str | None:
    """The PROCESSOR column exactly as `ollama ps` computes it (cmd/cmd.go)."""
    if size is None or size_vram is None:
        return None
    if size_vram == 0:
        return "100% CPU"
    if size_vram == size:
        return "100% GPU"
    if size_vram > size or size == 0:
        return "Unknown"
    cpu = round((size - size_vram) / size * 100)
    return f"{cpu}%/{100 - cpu}% CPU/GPU"


def _int_field(entry: Mapping[str, Any], key: str) -> int | None:
    value = entry.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _from_api(text: str) -> list[LoadedModel] | None:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        return None
    models = []
    for entry in data["models"]:
        if not isinstance(entry, dict):
            continue
        name = entry.get("name") or entry.get("model")
        if not isinstance(name, str):
            continue
        size, vram = _int_field(entry, "size"), _int_field(entry, "size_vram")
        try:
            compact = json.dumps(entry, separators=(",", ":"), ensure_ascii=False)
        except (ValueError, TypeError, RecursionError):
            compact = name
        models.append(
            LoadedModel(
                name=name,
                size=size,
                size_vram=vram,
                processor=processor_of(size, vram),
                raw=Line("api-ps.json", compact),
            )
        )
    return models


_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}  # fmt: skip
_PROCESSOR = re.compile(r"\d+%/\d+% CPU/GPU|\d+% [CG]PU|Unknown")
_SIZE = re.compile(r"(?P<size>\d+(?:\.\d+)?)\s*(?P<unit>[KMGT]?i?B)$", re.IGNORECASE)
_CELLS = re.compile(r"\t+| {2,}")


def _from_table(sections: Mapping[str, str]) -> list[LoadedModel]:
    """`ollama ps` read by its header, whatever columns this version prints (NAME ID SIZE
    PROCESSOR UNTIL; CONTEXT since 0.6): tabwriter pads cells with two or more spaces, and a
    row whose cells do not line up still gives its name and PROCESSOR. Sizes are decimal
    (format.HumanBytes); size_vram is not printed."""
    models = []
    header: list[str] | None = None
    for line, text in section_lines(sections, "ollama-ps.txt"):
        cells = [c.strip() for c in _CELLS.split(text.strip()) if c.strip()]
        if "NAME" in cells and "PROCESSOR" in cells:
            header = cells
            continue
        if header is None or not cells:
            continue
        row = dict(zip(header, cells, strict=False)) if len(cells) == len(header) else {}
        processor = row.get("PROCESSOR")
        if processor is None or not _PROCESSOR.fullmatch(processor):
            found = _PROCESSOR.search(text)
            processor = found.group() if found else None
        if processor is None:
            continue
        size = None
        sized = _SIZE.match(row.get("SIZE", ""))
        if sized:
            factor = _UNITS.get(sized.group("unit").upper())
            size = int(float(sized.group("size")) * factor) if factor else None
        models.append(LoadedModel(name=row.get("NAME", cells[0]), size=size,
                                  processor=processor, raw=line))
    return models


def parse_loaded_models(sections: Mapping[str, str]) -> list[LoadedModel] | None:
    """/api/ps when it parses, else `ollama ps`; None when neither says anything."""
    if "api-ps.json" in sections:
        models = _from_api(sections["api-ps.json"])
        if models is not None:
            return models
    if "ollama-ps.txt" in sections:
        return _from_table(sections)
    return None


def parse_installed_models(sections: Mapping[str, str]) -> dict[str, int | None] | None:
    """/api/tags: the models the server has, name -> size in bytes."""
    if "api-tags.json" not in sections:
        return None
    try:
        data = json.loads(sections["api-tags.json"])
    except (ValueError, RecursionError):
        return None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list):
        return None
    found: dict[str, int | None] = {}
    for entry in models:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            found[entry["name"]] = _int_field(entry, "size")
    return found
