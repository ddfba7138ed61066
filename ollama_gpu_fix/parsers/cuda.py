"""nvcc-version.txt, cuda-toolkits.txt, packages.txt."""
from collections.abc import Mapping
from ollama_gpu_fix.snapshot import CudaInstall

def parse(sections: Mapping[str, str]) -> CudaInstall | None:
    return None  # TODO(parsers)

def parse_packages(sections: Mapping[str, str]) -> dict[str, str] | None:
    return None  # TODO(parsers)
