"""vulkaninfo.txt."""
from collections.abc import Mapping
from ollama_gpu_fix.snapshot import Vulkan

def parse(sections: Mapping[str, str]) -> Vulkan | None:
    return None  # TODO(parsers)
