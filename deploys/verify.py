"""Read-only verification: `pyinfra -y @local deploys/verify.py` (or an INVENTORY).

Probes the host, runs the local model (or `verify_model`), reads /api/ps and the GPU's own
process list, and fails a host whose model is not on the GPU; changes nothing (a model load
is Ollama's own state). The code is ollama_gpu_fix.deploy.fix.verify_host.
"""

from ollama_gpu_fix.deploy.fix import verify_host

verify_host()
