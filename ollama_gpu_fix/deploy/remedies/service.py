"""ollama.service: the managed drop-in, what hides the GPU removed where it is set, groups,
start. Restarts are decided once, after every step, from the running service's own state
(ollama_gpu_fix.deploy.service.restart_ollama)."""

from __future__ import annotations

from pyinfra.api import deploy

from ollama_gpu_fix.deploy import service
from ollama_gpu_fix.deploy.operations import group_members
from ollama_gpu_fix.deploy.remedies import Applied
from ollama_gpu_fix.dropin import DROPIN_PATH


@deploy("Ollama service environment")
def service_env(
    env: dict[str, str], unset: list[str], edit: dict[str, list[str]], reasons: list[str]
) -> Applied:
    """Remove EDIT's variables from the files that set them and write the managed drop-in
    with ENV and UnsetEnvironment=UNSET, as one checked change (deploy/service.py)."""
    op = service.service_environment(
        name=f"Write {DROPIN_PATH}" + (f"; edit {', '.join(sorted(edit))}" if edit else ""),
        env=env, unset=unset, edit=edit, reasons=reasons)
    return Applied(restart=[op], ops=[op])


@deploy("GPU device groups")
def gpu_groups(users: list[str], groups: list[str]) -> Applied:
    """Put USERS into the GROUPS that own /dev/kfd and /dev/dri/* (read at process start:
    ollama must restart)."""
    op = group_members(name=f"Add {', '.join(users)} to {', '.join(groups)}", users=users,
                       groups=groups)
    return Applied(restart=[op], ops=[op])


@deploy("Start Ollama")
def start_service() -> Applied:
    op = service.start_service(name="Enable and start ollama.service")
    return Applied(ops=[op])
