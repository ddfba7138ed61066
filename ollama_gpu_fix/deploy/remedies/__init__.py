"""One pyinfra @deploy per remedy family, and the one registry from a plan step's action to
the deploy that applies it: a step's params are exactly that deploy's keyword arguments.

Each deploy returns Applied: which of its operations touched what ollama.service reads (the
fix then daemon-reloads and restarts only when one of them changed), which files a rollback
restores, and which driver operations need a reboot before anything can be verified.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyinfra.api.operation import OperationMeta


@dataclass
class Applied:
    unit: list[OperationMeta] = field(default_factory=list)  # unit files: daemon-reload
    restart: list[OperationMeta] = field(default_factory=list)  # ollama must restart
    rollback: list[tuple[OperationMeta, str]] = field(default_factory=list)  # (op, path)
    reboot: list[OperationMeta] = field(default_factory=list)  # a changed driver
    ops: list[OperationMeta] = field(default_factory=list)  # every operation, for the report

    def add(self, other: Applied) -> None:
        for name in ("unit", "restart", "rollback", "reboot", "ops"):
            getattr(self, name).extend(getattr(other, name))


def preflight(steps: list[Any], policy: Any, on_fail: Callable[[str], None] | None = None) -> None:
    """Before the first change: apt must be idle and every repository a step needs must
    answer, or the host stops here, unchanged, with one line."""
    from ollama_gpu_fix.deploy.operations import CUDA_KEYRING, apt_idle, reachable

    if any(s.changes in ("packages", "driver") and s.action != "nvidia_uvm_reload" for s in steps):
        apt_idle(name="Preflight: apt is idle", timeout=policy.apt_lock_timeout, on_fail=on_fail)
    urls: dict[str, str] = {}
    for step in steps:
        toolkit = step.action == "cuda_toolkit" and step.params["install"]
        if step.action == "nvidia_driver" or toolkit:
            urls[step.params["repo_url"].rstrip("/") + "/" + CUDA_KEYRING] = "nvidia_repo_url"
        elif step.action == "amdgpu_driver":
            urls[step.params["key_url"]] = "rocm_repo_key_url"
    for url, knob in urls.items():
        reachable(name=f"Preflight: {url} answers", url=url, knob=knob, on_fail=on_fail)


def registry() -> dict[str, Callable[..., Applied]]:
    from ollama_gpu_fix.deploy.remedies import amd, nvidia, service, vulkan, wsl2

    return {
        "service_env": service.service_env,
        "gpu_groups": service.gpu_groups,
        "start_service": service.start_service,
        "cuda_toolkit": nvidia.cuda_toolkit,
        "nvidia_driver": nvidia.nvidia_driver,
        "nvidia_uvm_reload": nvidia.nvidia_uvm_reload,
        "wsl2_purge_guest_driver": wsl2.wsl2_purge_guest_driver,
        "amdgpu_driver": amd.amdgpu_driver,
        "vulkan_packages": vulkan.vulkan_packages,
    }
