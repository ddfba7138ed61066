"""systemctl-cat.txt and systemctl-show.txt."""
from collections.abc import Mapping
from ollama_gpu_fix.snapshot import SystemdUnit

def parse(sections: Mapping[str, str]) -> SystemdUnit | None:
    return None  # TODO(parsers)
