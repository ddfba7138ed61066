"""The environment variables this tool knows: one table for what is read, kept, and written.

Three uses, one list, so they cannot drift:
- reading: which variables of the server, the unit and the shell profiles are GPU settings;
- redaction: values of every other variable (proxy passwords, HF_TOKEN, API keys) never
  leave the host in a bundle or a report, only the name does;
- writing: the only variables a remedy may put into the service's drop-in, each with the one
  value shape it accepts. Everything else a diagnosis finds is advice.

Sources: ollama/ollama@v0.33.0-rc2:envconfig/config.go (OLLAMA_* and the visible-device
variables Ollama reads and prints in `server config`), docs/gpu.mdx (CUDA_VISIBLE_DEVICES,
ROCR_VISIBLE_DEVICES, HSA_OVERRIDE_GFX_VERSION[_N], GGML_VK_VISIBLE_DEVICES, OLLAMA_VULKAN),
discover/runner.go (OLLAMA_IGPU_ENABLE, GGML_CUDA_INIT), discover/gpu.go (JETSON_JETPACK),
docs/docker.mdx (NVIDIA_VISIBLE_DEVICES, NVIDIA_DRIVER_CAPABILITIES).
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Variables that select, hide, or configure the GPU path of Ollama and the runtimes it loads.
GPU_ENV_NAMES: frozenset[str] = frozenset(
    {
        "CUDA_VISIBLE_DEVICES",
        "NVIDIA_VISIBLE_DEVICES",
        "NVIDIA_DRIVER_CAPABILITIES",
        "HIP_VISIBLE_DEVICES",
        "ROCR_VISIBLE_DEVICES",
        "GPU_DEVICE_ORDINAL",
        "GGML_VK_VISIBLE_DEVICES",
        "HSA_OVERRIDE_GFX_VERSION",
        "OLLAMA_VULKAN",
        "OLLAMA_IGPU_ENABLE",
        "OLLAMA_LLM_LIBRARY",
        "OLLAMA_GPU_OVERHEAD",
        "OLLAMA_SCHED_SPREAD",
        "OLLAMA_FLASH_ATTENTION",
        "OLLAMA_DEBUG",
        "OLLAMA_INTEL_GPU",
        "OLLAMA_NEW_ENGINE",
        "OLLAMA_LIBRARY_PATH",
        "JETSON_JETPACK",
        "LD_LIBRARY_PATH",
        "GGML_CUDA_INIT",
        "CUDA_ERROR_LEVEL",
        "AMD_LOG_LEVEL",
    }
)
# HSA_OVERRIDE_GFX_VERSION_<KFD node> (ROCm 6.2+, ROCm/ROCT-Thunk-Interface PR #104).
PER_DEVICE_OVERRIDE = re.compile(r"HSA_OVERRIDE_GFX_VERSION_\d{1,3}")

# Ollama settings that are not secrets and help a diagnosis: addresses, paths, sizes, policies.
OLLAMA_SETTINGS: frozenset[str] = frozenset(
    {
        "OLLAMA_HOST",
        "OLLAMA_MODELS",
        "OLLAMA_KEEP_ALIVE",
        "OLLAMA_CONTEXT_LENGTH",
        "OLLAMA_NUM_PARALLEL",
        "OLLAMA_MAX_LOADED_MODELS",
        "OLLAMA_MAX_QUEUE",
        "OLLAMA_LOAD_TIMEOUT",
        "OLLAMA_ORIGINS",
        "OLLAMA_NOPRUNE",
        "OLLAMA_NOHISTORY",
        "OLLAMA_MULTIUSER_CACHE",
        "OLLAMA_KV_CACHE_TYPE",
        "OLLAMA_TMPDIR",
        "OLLAMA_RUNNERS_DIR",
        "LLAMA_ARG_FIT",
        "LLAMA_ARG_FIT_TARGET",
        "PATH",
    }
)


def is_gpu_setting(name: str) -> bool:
    return name in GPU_ENV_NAMES or PER_DEVICE_OVERRIDE.fullmatch(name) is not None


def is_kept(name: str) -> bool:
    """May this variable's value appear in a bundle or report? (Otherwise: name only.)"""
    return is_gpu_setting(name) or name in OLLAMA_SETTINGS


REDACTED = "<redacted>"


def redact_value(name: str, value: str) -> str:
    """The value as a bundle may hold it: kept settings as they are, everything else hidden.

    OLLAMA_HOST keeps its address but never a `user:password@` part."""
    if not is_kept(name):
        return REDACTED
    if name == "OLLAMA_HOST" and "@" in value:
        scheme, sep, rest = value.rpartition("://")
        return (scheme + sep if sep else "") + REDACTED + "@" + rest.rpartition("@")[2]
    return value


# ---- what a remedy may write into ollama.service ---------------------------------------------

_DEVICE = r"(?:\d{1,2}|GPU-[0-9a-fA-F-]{8,40})"
_DEVICE_LIST = re.compile(_DEVICE + r"(?:," + _DEVICE + r")*")
_OVERRIDE = re.compile(r"\d{1,2}\.\d{1,2}\.\d{1,2}")


def _override_ok(value: str) -> bool:
    from ollama_gpu_fix.knowledge.amd import OVERRIDE_VALUES  # the gfx table is the authority

    return _OVERRIDE.fullmatch(value) is not None and value in OVERRIDE_VALUES


WRITABLE: dict[str, Callable[[str], bool]] = {
    "HSA_OVERRIDE_GFX_VERSION": _override_ok,
    "OLLAMA_VULKAN": lambda v: v == "1",
    "OLLAMA_IGPU_ENABLE": lambda v: v == "1",
    "GGML_VK_VISIBLE_DEVICES": lambda v: _DEVICE_LIST.fullmatch(v) is not None,
    "CUDA_VISIBLE_DEVICES": lambda v: _DEVICE_LIST.fullmatch(v) is not None,
    "ROCR_VISIBLE_DEVICES": lambda v: _DEVICE_LIST.fullmatch(v) is not None,
}


def writable(name: str, value: str) -> bool:
    """May a remedy set NAME=VALUE in the service's environment without a person deciding?"""
    if PER_DEVICE_OVERRIDE.fullmatch(name):
        return _override_ok(value)
    check = WRITABLE.get(name)
    return bool(check and isinstance(value, str) and check(value))


def trusted_origin(origin: str, service_user: str | None = None) -> bool:
    """May a value found in ORIGIN be written into the service by root? Only what root or the
    service's own account wrote: a unit file, the running server, the system's and root's own
    shell files, the service user's home. Another user's ~/.bashrc is that user's wish, which
    root must not carry into a system service (it is named as advice instead).

    ORIGIN is a path (`/home/alice/.bashrc`, `/etc/profile.d/x.sh`, a unit file) or a word for
    a source that is not a file (`process`, `unit`, `knowledge`)."""
    if origin in ("process", "unit", "knowledge", "log"):
        return True
    if origin.startswith(("/etc/", "/root/", "/usr/lib/systemd/", "/lib/systemd/", "/run/systemd/")):
        return True
    if service_user and origin.startswith(f"/home/{service_user}/"):
        return True
    return origin.startswith("/usr/share/ollama/") and service_user in (None, "ollama")
