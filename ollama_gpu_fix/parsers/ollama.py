"""ollama-version.txt, ollama-libs.txt, ollama-process.txt, shell-env.txt, api-ps.json, ollama-ps.txt."""
from collections.abc import Mapping
from ollama_gpu_fix.snapshot import (
    LoadedModel, OllamaLibs, OllamaProcess, OllamaVersion, ShellEnvAssignment,
)

def parse_version(sections: Mapping[str, str]) -> OllamaVersion | None:
    return None  # TODO(parsers)

def parse_libs(sections: Mapping[str, str]) -> OllamaLibs | None:
    return None  # TODO(parsers)

def parse_process(sections: Mapping[str, str]) -> OllamaProcess | None:
    return None  # TODO(parsers)

def parse_shell_env(sections: Mapping[str, str]) -> list[ShellEnvAssignment] | None:
    return None  # TODO(parsers)

def parse_loaded_models(sections: Mapping[str, str]) -> list[LoadedModel] | None:
    return None  # TODO(parsers)
