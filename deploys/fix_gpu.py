"""Entry point of the fix: `pyinfra -y @local deploys/fix_gpu.py` (root or --sudo), or an
INVENTORY instead of @local; `--dry` prints the plan and the diff and changes nothing.

Probe once, diagnose, plan (policy knobs: README "Fix"), apply with pyinfra operations,
restart Ollama only if something changed, verify that the model runs on the GPU, and write
`<report_dir>/<host>.json`. The code is ollama_gpu_fix.deploy.fix (installed with the package).
"""

from ollama_gpu_fix.deploy.fix import fix_host

fix_host()
