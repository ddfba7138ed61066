"""observation.txt: where the model ran, measured on the live host (Snapshot.observation).

The probe prints it when the fix (or diagnose with observe_generate) asks: verify.sh's own
output for the service as it was (a bounded generation, /api/ps, the API's listener, the GPU's
process list), or one `skipped=` line. The reading is the verification's (verdict.observation),
so the diagnosis and the verification agree on what "on the GPU" means.
"""

from __future__ import annotations

from collections.abc import Mapping

from ollama_gpu_fix.parsers import kernel
from ollama_gpu_fix.snapshot import Observation

SECTION = "observation.txt"


def parse(sections: Mapping[str, str]) -> Observation | None:
    if SECTION not in sections:
        return None
    # verdict reads logs through build_snapshot (this package): imported here, not at the top
    from ollama_gpu_fix.verdict import observation

    version = kernel.parse_proc_version(sections)
    wsl2 = bool(version and version.wsl == "wsl2")
    return observation(sections[SECTION], per_process=not wsl2)
