"""One parser per bundle section: raw text in, typed records (ollama_gpu_fix.snapshot) out.

Every parser is pure, takes the whole {file name: text} mapping, returns None when none of
the files it reads is present, and never raises: odd lines are kept as raw evidence and
unknown fields stay None. `build_snapshot` is the only entry point the rest of the code uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ollama_gpu_fix.parsers import (
    containers,
    cuda,
    devices,
    kernel,
    nvidia,
    observation,
    ollama,
    ollama_log,
    os_release,
    pci,
    probe_meta,
    rocm,
    systemd,
    users,
    vulkan,
)
from ollama_gpu_fix.snapshot import Snapshot

# Snapshot field -> parser. The parsers decide which files they read.
PARSERS: dict[str, Callable[[Mapping[str, str]], Any]] = {
    "probe": probe_meta.parse,
    "os": os_release.parse,
    "kernel": kernel.parse_proc_version,
    "pci": pci.parse,
    "modules": kernel.parse_modules,
    "nvidia_smi": nvidia.parse_smi,
    "nvidia_apps": nvidia.parse_apps,
    "nvidia_kernel": nvidia.parse_kernel_driver,
    "cuda": cuda.parse,
    "packages": cuda.parse_packages,
    "rocm": rocm.parse,
    "vulkan": vulkan.parse,
    "secure_boot": devices.parse_secure_boot,
    "users": users.parse,
    "dev_nodes": devices.parse_dev_nodes,
    "libs": devices.parse_ldconfig,
    "tegra": devices.parse_tegra,
    "ollama_version": ollama.parse_version,
    "ollama_libs": ollama.parse_libs,
    "unit": systemd.parse,
    "unit_failures": systemd.parse_unit_failures,
    "process": ollama.parse_process,
    "foreign_processes": ollama.parse_foreign_processes,
    "shell_env": ollama.parse_shell_env,
    "loaded_models": ollama.parse_loaded_models,
    "installed_models": ollama.parse_installed_models,
    "observation": observation.parse,
    "log": ollama_log.parse,
    "dmesg": kernel.parse_dmesg,
    "container_run": containers.parse,
}


def build_snapshot(sections: Mapping[str, str], problems: Iterable[str] = ()) -> Snapshot:
    """Parse every section into one Snapshot.

    A parser bug degrades to "not known" and leaves its trace in `problems` (as
    node_exporter reports a failed collector), so it never looks like a missing file."""
    snapshot = Snapshot(sections=sorted(sections), problems=list(problems))
    for field_name, parser in PARSERS.items():
        try:
            value = parser(sections)
        except Exception as exc:  # noqa: BLE001 - a parser must never take the diagnosis down
            value = None
            snapshot.problems.append(
                f"the {field_name} reader failed on this evidence ({type(exc).__name__}: "
                f"{str(exc)[:200]}); treated as not known"
            )
        setattr(snapshot, field_name, value)
    return snapshot
