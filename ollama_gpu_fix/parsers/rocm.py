"""rocminfo.txt, rocm-smi.txt, rocm-version.txt, kfd-topology.txt."""
from collections.abc import Mapping
from ollama_gpu_fix.snapshot import Rocm

def parse(sections: Mapping[str, str]) -> Rocm | None:
    return None  # TODO(parsers)
