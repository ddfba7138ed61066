"""docker-run.txt."""
from collections.abc import Mapping
from ollama_gpu_fix.snapshot import ContainerRun

def parse(sections: Mapping[str, str]) -> ContainerRun | None:
    return None  # TODO(parsers)
