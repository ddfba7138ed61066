"""Deploy entry points: `pyinfra INVENTORY deploys/<name>.py`.

They are thin: the code they run is ollama_gpu_fix.deploy, installed with the package.
"""
