"""lspci.txt and pci-devices.txt."""
from collections.abc import Mapping
from ollama_gpu_fix.snapshot import PciDevice

def parse(sections: Mapping[str, str]) -> list[PciDevice] | None:
    return None  # TODO(parsers)
