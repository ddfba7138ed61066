"""probe-meta.txt: the probe's own bookkeeping."""
from collections.abc import Mapping
from ollama_gpu_fix.snapshot import ProbeMeta

def parse(sections: Mapping[str, str]) -> ProbeMeta | None:
    return None  # TODO(parsers)
