"""The probe fact, for `pyinfra @local fact facts.ollama_probe.OllamaGpuProbe` from a checkout.

It lives in the installed package (ollama_gpu_fix.deploy.facts) so other deploys can use it.
"""

from ollama_gpu_fix.deploy.facts import OllamaGpuProbe, probe_script

__all__ = ["OllamaGpuProbe", "probe_script"]
