"""docker-run.txt: the `docker run`/`podman run` line or compose service Ollama runs from.

A container only sees the GPU it is given: `--gpus`/CDI devices or a compose device
reservation for NVIDIA (plus NVIDIA_DRIVER_CAPABILITIES including `compute`), `--device
/dev/kfd --device /dev/dri` for AMD. Several commands in one file are merged (flags OR-ed,
devices and env collected, the last image wins); compose YAML is read line by line, so no
YAML library is needed and a half-pasted snippet still parses. In compose's list form
(`- KEY="v"`) the quotes stay in the value, exactly as compose passes them.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

from ollama_gpu_fix.parsers.kernel import section_lines
from ollama_gpu_fix.snapshot import ContainerRun, Line

_RUN = re.compile(r"\b(?:docker|podman|nerdctl)\s+(?:container\s+)?(?:run|create)\b")
_BOOL_FLAGS = {
    "-d", "--detach", "-i", "--interactive", "-t", "--tty", "--rm", "--privileged", "--init",
    "-P", "--publish-all", "--read-only", "--no-healthcheck", "--oom-kill-disable", "-q",
    "--quiet", "--help", "--replace", "--sig-proxy",
}  # fmt: skip


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=False)
    except ValueError:
        return text.split()


def _join_continuations(lines: list[tuple[Line, str]]) -> list[tuple[list[Line], str]]:
    out: list[tuple[list[Line], str]] = []
    pending: tuple[list[Line], str] | None = None
    for line, text in lines:
        if pending is not None:
            pending = (pending[0] + [line], pending[1] + " " + text)
        else:
            pending = ([line], text)
        if text.endswith(("\\", "`", "^")):  # sh, PowerShell, cmd continuations
            pending = (pending[0], pending[1][:-1])
            continue
        out.append(pending)
        pending = None
    if pending is not None:
        out.append(pending)
    return out


def _apply_run(words: list[str], run: ContainerRun) -> None:
    start = next((i + 1 for i, w in enumerate(words) if w in ("run", "create")), len(words))
    i = start
    while i < len(words):
        word = words[i]
        if word == "--":
            i += 1
            continue
        if not word.startswith("-") or word == "-":
            run.image = word
            return  # the rest is the container's command
        opt, eq, value = word.partition("=")
        takes_value = not eq and opt not in _BOOL_FLAGS and not re.fullmatch(r"-[dit]+", opt)
        if takes_value:
            value = words[i + 1] if i + 1 < len(words) else ""
            i += 1
        i += 1
        if opt == "--gpus":
            run.gpus_flag = True
        elif opt == "--device":
            device = value.split(":")[0] if value.startswith("/") else value
            if device and device not in run.devices:
                run.devices.append(device)
            if device.startswith("nvidia.com/gpu"):
                run.gpus_flag = True  # CDI
        elif opt in ("-e", "--env"):
            name, has_value, val = value.partition("=")
            if name and has_value:
                run.env[name] = val
        elif opt == "--runtime":
            run.runtime = value or None


def _apply_compose(lines: list[Line], raw: list[Line], run: ContainerRun) -> None:
    """Compose keys by indentation (a stack of open mapping keys)."""
    stack: list[tuple[int, str]] = []
    for line in lines:
        original = line.text
        stripped = original.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(original) - len(stripped)
        item = stripped.startswith("- ")
        body = stripped[2:].strip() if item else stripped
        while stack and (stack[-1][0] > indent or (stack[-1][0] == indent and not item)):
            stack.pop()
        path = [key for _, key in stack]
        key, colon, value = body.partition(":")
        is_key = bool(colon) and re.fullmatch(r"[\w.-]+", key.strip() or "-") is not None
        value = value.strip()
        parent = path[-1] if path else ""
        hit = True
        if item and parent == "environment":
            name, eq, val = _yaml_scalar(body).partition("=")
            if eq:
                run.env[name.strip()] = val
            elif is_key:
                run.env[key.strip()] = _yaml_scalar(value)
        elif item and parent == "devices" and "deploy" not in path and not is_key:
            device = _yaml_scalar(body).split(":")[0]
            if device and device not in run.devices:
                run.devices.append(device)
        elif parent == "environment" and is_key and not item:
            run.env[key.strip()] = _yaml_scalar(value)
        elif "deploy" in path and ("devices" in path or key.strip() in ("driver", "capabilities")):
            if "nvidia" in body or "gpu" in body:
                run.gpus_flag = True
        elif is_key and key.strip() == "image" and value:
            run.image = _yaml_scalar(value)
        elif is_key and key.strip() == "runtime" and value:
            run.runtime = _yaml_scalar(value)
        elif is_key and key.strip() == "gpus" and value:
            run.gpus_flag = True
        else:
            hit = False
        if hit:
            raw.append(line)
        if is_key and not value and not item:
            stack.append((indent, key.strip()))
        elif item and is_key and not value:
            stack.append((indent + 2, key.strip()))


def _yaml_scalar(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return re.split(r"\s+#", value, maxsplit=1)[0]


# What the runtimes print when they cannot give a container the GPU (docker, podman, CDI,
# nvidia-container-cli/-runtime hooks). Sources: moby daemon/oci "could not select device
# driver"; podman/container-device-interface "unresolvable CDI devices"; NVIDIA
# libnvidia-container "nvidia-container-cli: initialization error"; docker "unknown or invalid
# runtime name"; runc "error gathering device information"; https://github.com/projectbluefin/
# dakota/issues/376, https://github.com/NVIDIA/nvidia-container-toolkit/issues/154.
_RUNTIME_ERROR = re.compile(
    r"could not select device driver .{0,40}capabilities: \[\[gpu\]\]"
    r"|unresolvable CDI devices|nvidia-container-cli: ?(?:initialization|mount|ldcache) error"
    r"|unknown or invalid runtime name: nvidia|error gathering device information"
    r"|failed to create task for container.{0,200}nvidia|no such device.{0,40}/dev/(?:kfd|dri)"
    r"|error running hook.{0,80}nvidia",
    re.IGNORECASE,
)


def parse(sections: Mapping[str, str]) -> ContainerRun | None:
    if "docker-run.txt" not in sections:
        return None
    run = ContainerRun()
    lines = section_lines(sections, "docker-run.txt")
    other: list[Line] = []
    for group, text in _join_continuations(lines):
        command = _RUN.search(text)
        if command:
            run.raw.extend(group)
            _apply_run(_words(text[command.start() :]), run)
        else:
            other.extend(group)
        for line in group:
            if _RUNTIME_ERROR.search(line.text[:4096]):
                run.errors.append(line)
    _apply_compose(other, run.raw, run)
    return run
