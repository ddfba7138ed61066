"""One parser per bundle section: raw text in, typed records (ollama_gpu_fix.snapshot) out.

Every parser is pure, takes the whole {file name: text} mapping, returns None when none of
the files it reads is present, and never raises: odd lines are kept as raw evidence and
unknown fields stay None. `build_snapshot` is the only entry point the rest of the code uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib import import_module
from typing import Any

from ollama_gpu_fix.snapshot import Snapshot

# Snapshot field -> (module of this package, function, the files it reads). A parser returns
# None when none of its files is present, so build_snapshot does not even import its module:
# diagnose-bundle on a log-only bundle loads the log parsers and nothing else (issue 13: the
# whole process within 3x a bare interpreter; the other parsers' regexes cost ~10 ms to
# compile). None: the log parser also reads free-form files (any *.txt/*.log), always run.
_TABLE: dict[str, tuple[str, str, tuple[str, ...] | None]] = {
    "probe": ("probe_meta", "parse", ("probe-meta.txt",)),
    "os": ("os_release", "parse", ("os-release.txt",)),
    "kernel": ("kernel", "parse_proc_version", ("proc-version.txt",)),
    "pci": ("pci", "parse", ("lspci.txt", "pci-devices.txt")),
    "modules": ("kernel", "parse_modules", ("lsmod.txt",)),
    "nvidia_smi": ("nvidia", "parse_smi", ("nvidia-smi.txt", "nvidia-smi-query.csv")),
    "nvidia_apps": ("nvidia", "parse_apps", ("nvidia-smi-apps.csv", "nvidia-smi.txt")),
    "nvidia_kernel": ("nvidia", "parse_kernel_driver", ("proc-driver-nvidia-version.txt",)),
    "cuda": ("cuda", "parse", ("nvcc-version.txt", "cuda-toolkits.txt", "packages.txt")),
    "packages": ("cuda", "parse_packages", ("packages.txt", "cuda-toolkits.txt")),
    "rocm": (
        "rocm",
        "parse",
        ("rocminfo.txt", "rocm-smi.txt", "rocm-version.txt", "kfd-topology.txt"),
    ),
    "vulkan": ("vulkan", "parse", ("vulkaninfo.txt",)),
    "secure_boot": ("devices", "parse_secure_boot", ("mokutil.txt",)),
    "users": ("users", "parse", ("groups.txt",)),
    "dev_nodes": ("devices", "parse_dev_nodes", ("dev-nodes.txt",)),
    "libs": ("devices", "parse_ldconfig", ("ldconfig.txt",)),
    "tegra": ("devices", "parse_tegra", ("nv-tegra-release.txt",)),
    "ollama_version": ("ollama", "parse_version", ("ollama-version.txt",)),
    "ollama_libs": ("ollama", "parse_libs", ("ollama-libs.txt",)),
    "unit": ("systemd", "parse", ("systemctl-cat.txt", "systemctl-show.txt")),
    "unit_failures": (
        "systemd",
        "parse_unit_failures",
        ("journalctl.txt", "ollama-serve.log", "systemctl-status.txt"),
    ),
    "process": ("ollama", "parse_process", ("ollama-process.txt",)),
    "foreign_processes": ("ollama", "parse_foreign_processes", ("ollama-process.txt",)),
    "shell_env": ("ollama", "parse_shell_env", ("shell-env.txt",)),
    "loaded_models": ("ollama", "parse_loaded_models", ("api-ps.json", "ollama-ps.txt")),
    "installed_models": ("ollama", "parse_installed_models", ("api-tags.json",)),
    "observation": ("observation", "parse", ("observation.txt",)),
    "log": ("ollama_log", "parse", None),
    "dmesg": ("kernel", "parse_dmesg", ("dmesg.txt",)),
    "container_run": ("containers", "parse", ("docker-run.txt",)),
    "watchdog": ("watchdog_state", "parse", ("watchdog.json",)),
    # platform and packaging traces: any file may hold one (a pasted excerpt)
    "traces": ("traces", "parse", None),
}


def parser_of(field_name: str) -> Callable[[Mapping[str, str]], Any]:
    """The parser of one Snapshot field, its module imported now (at first use)."""
    module, function, _ = _TABLE[field_name]
    return getattr(import_module(f"{__name__}.{module}"), function)


def reads(field_name: str) -> tuple[str, ...] | None:
    """The files the parser of one field reads (None: it may read any free-form file)."""
    return _TABLE[field_name][2]


class _Parsers(Mapping[str, Callable[[Mapping[str, str]], Any]]):
    """Snapshot field -> parser, in Snapshot order; a parser's module is imported on lookup."""

    def __getitem__(self, field_name: str) -> Callable[[Mapping[str, str]], Any]:
        return parser_of(field_name)

    def __iter__(self) -> Iterator[str]:
        return iter(_TABLE)

    def __len__(self) -> int:
        return len(_TABLE)


# Snapshot field -> parser, for callers that call parsers themselves (tests, benches).
PARSERS: Mapping[str, Callable[[Mapping[str, str]], Any]] = _Parsers()


def build_snapshot(sections: Mapping[str, str], problems: Iterable[str] = ()) -> Snapshot:
    """Parse every section into one Snapshot.

    A parser bug degrades to "not known" and leaves its trace in `problems` (as
    node_exporter reports a failed collector), so it never looks like a missing file."""
    snapshot = Snapshot(sections=sorted(sections), problems=list(problems))
    for field_name, (_, _, files) in _TABLE.items():
        if files is not None and not any(name in sections for name in files):
            setattr(snapshot, field_name, None)  # what the parser returns: not imported
            continue
        parser = parser_of(field_name)  # outside the try: a missing module is a bug, not evidence
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
