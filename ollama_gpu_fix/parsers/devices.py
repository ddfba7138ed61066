"""mokutil.txt, dev-nodes.txt, ldconfig.txt, nv-tegra-release.txt."""
from collections.abc import Mapping
from ollama_gpu_fix.snapshot import DevNode, SecureBoot, SharedLib, TegraRelease

def parse_secure_boot(sections: Mapping[str, str]) -> SecureBoot | None:
    return None  # TODO(parsers)

def parse_dev_nodes(sections: Mapping[str, str]) -> list[DevNode] | None:
    return None  # TODO(parsers)

def parse_ldconfig(sections: Mapping[str, str]) -> list[SharedLib] | None:
    return None  # TODO(parsers)

def parse_tegra(sections: Mapping[str, str]) -> TegraRelease | None:
    return None  # TODO(parsers)
