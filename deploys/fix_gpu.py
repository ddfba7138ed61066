"""Entry point of the fix: `pyinfra @local deploys/fix_gpu.py` (root or --sudo).

This version only diagnoses (the same code as deploys/diagnose.py) and changes nothing:
the remedy deploys (NVIDIA/CUDA, WSL2, ROCm, Vulkan, service environment) arrive in a later
version.
"""

from pyinfra import host, logger

from ollama_gpu_fix.deploy.diagnose import diagnose_host

result = diagnose_host(host)
logger.info(
    f"{host.print_prefix}fix_gpu.py: no fixes are applied in this version "
    f"(primary finding: {result.diagnosis.primary}); remedies arrive in a later version."
)
