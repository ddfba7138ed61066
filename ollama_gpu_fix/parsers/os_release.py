"""os-release.txt."""
from collections.abc import Mapping
from ollama_gpu_fix.snapshot import OsRelease

def parse(sections: Mapping[str, str]) -> OsRelease | None:
    return None  # TODO(parsers)
