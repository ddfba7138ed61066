"""ollama.service: the managed drop-in, what hides the GPU removed where it is set, groups."""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import systemd

from ollama_gpu_fix.deploy.operations import group_members, managed_file, remove_env_assignments
from ollama_gpu_fix.deploy.remedies import Applied
from ollama_gpu_fix.dropin import DROPIN_NAME, DROPIN_PATH, render


@deploy("Ollama service environment")
def service_env(
    env: dict[str, str], unset: list[str], edit: dict[str, list[str]], reasons: list[str]
) -> Applied:
    """Remove EDIT's variables from the files that set them, write the managed drop-in with
    ENV and UnsetEnvironment=UNSET (only when there is something to set)."""
    applied = Applied()
    why = f"hides or overrides the GPU; managed in {DROPIN_NAME}" if env else "hides the GPU"
    for path, names in sorted(edit.items()):
        op = remove_env_assignments(
            name=f"Remove {', '.join(names)} where set: {path}", path=path, names=names, why=why
        )
        applied.unit.append(op)
        applied.rollback.append((op, path))
    if env or unset:
        content = render(env, unset, reasons)
        op = managed_file(name=f"Write {DROPIN_PATH}", path=DROPIN_PATH, content=content)
        applied.unit.append(op)
        applied.rollback.append((op, DROPIN_PATH))
    applied.restart += applied.unit
    applied.ops += applied.unit
    return applied


@deploy("GPU device groups")
def gpu_groups(users: list[str], groups: list[str]) -> Applied:
    """Put USERS into the GROUPS that own /dev/kfd and /dev/dri/* (read at process start:
    ollama must restart)."""
    op = group_members(name=f"Add {', '.join(users)} to {', '.join(groups)}", users=users,
                       groups=groups)
    return Applied(restart=[op], ops=[op])


@deploy("Start Ollama")
def start_service() -> Applied:
    op = systemd.service(name="Enable and start ollama.service", service="ollama.service",
                         running=True, enabled=True)
    return Applied(ops=[op])
