"""ollama-serve.log, journalctl.txt and free-form *.txt/*.log evidence."""
from collections.abc import Mapping
from ollama_gpu_fix.snapshot import OllamaLog

def parse(sections: Mapping[str, str]) -> OllamaLog | None:
    return None  # TODO(log)
