"""Read-only diagnosis: `pyinfra @local deploys/diagnose.py` (or an INVENTORY instead of @local).

Runs ONE remote command per host (the probe fact) and no operation, so it changes nothing on
any host. Prints a text report per host and writes `<report_dir>/<host>.json` on the controller.
"""

from ollama_gpu_fix.deploy.diagnose import diagnose_host

diagnose_host()
