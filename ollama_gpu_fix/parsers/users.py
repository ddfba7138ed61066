"""groups.txt."""
from collections.abc import Mapping
from ollama_gpu_fix.snapshot import UserIds

def parse(sections: Mapping[str, str]) -> list[UserIds] | None:
    return None  # TODO(parsers)
