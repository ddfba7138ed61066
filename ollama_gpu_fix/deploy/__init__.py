"""The pyinfra side of ollama-gpu-fix: the probe fact and the deploy functions.

Installed with the package, so any pyinfra deploy can use them:

    from pyinfra import host
    from ollama_gpu_fix.deploy.diagnose import diagnose_host

    diagnose_host(host)

The repository's facts/ and deploys/ are thin entry points over this package. The pure core
(parsers, rules, knowledge, reports) lives beside it and imports no pyinfra.
"""
