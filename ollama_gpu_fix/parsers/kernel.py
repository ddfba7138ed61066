"""proc-version.txt, lsmod.txt, dmesg.txt."""
from collections.abc import Mapping
from ollama_gpu_fix.snapshot import KernelModule, KernelVersion, Line

def parse_proc_version(sections: Mapping[str, str]) -> KernelVersion | None:
    return None  # TODO(parsers)

def parse_modules(sections: Mapping[str, str]) -> list[KernelModule] | None:
    return None  # TODO(parsers)

def parse_dmesg(sections: Mapping[str, str]) -> list[Line] | None:
    return None  # TODO(parsers)
