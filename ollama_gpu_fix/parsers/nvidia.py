"""nvidia-smi.txt, nvidia-smi-query.csv, nvidia-smi-apps.csv, proc-driver-nvidia-version.txt."""
from collections.abc import Mapping
from ollama_gpu_fix.snapshot import ComputeApp, NvidiaKernelDriver, NvidiaSmi

def parse_smi(sections: Mapping[str, str]) -> NvidiaSmi | None:
    return None  # TODO(parsers)

def parse_apps(sections: Mapping[str, str]) -> list[ComputeApp] | None:
    return None  # TODO(parsers)

def parse_kernel_driver(sections: Mapping[str, str]) -> NvidiaKernelDriver | None:
    return None  # TODO(parsers)
