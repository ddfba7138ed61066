"""One pyinfra @deploy per remedy family, and the one registry from a plan step's action
(ollama_gpu_fix.actions) to the deploy that applies it: a step's params are exactly that
deploy's keyword arguments.

Each deploy returns Applied: which of its operations changed something Ollama reads at start
(the restart follows them, and the running service's own state), and which driver operations
need a reboot before anything can be verified.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pyinfra.api.operation import OperationMeta

from ollama_gpu_fix import actions as act


@dataclass
class Applied:
    restart: list[OperationMeta] = field(default_factory=list)  # Ollama reads it at start
    reboot: list[OperationMeta] = field(default_factory=list)  # a changed kernel module
    ops: list[OperationMeta] = field(default_factory=list)  # every operation, for the report

    def add(self, other: Applied) -> None:
        for name in ("restart", "reboot", "ops"):
            getattr(self, name).extend(getattr(other, name))


def registry() -> dict[str, Callable[..., Applied]]:
    from ollama_gpu_fix.deploy.remedies import amd, nvidia, service, vulkan, wsl2

    return {
        act.SERVICE_ENV: service.service_env,
        act.GPU_GROUPS: service.gpu_groups,
        act.START_SERVICE: service.start_service,
        act.CUDA_TOOLKIT: nvidia.cuda_toolkit,
        act.NVIDIA_DRIVER: nvidia.nvidia_driver,
        act.NVIDIA_UVM_RELOAD: nvidia.nvidia_uvm_reload,
        act.WSL2_PURGE_GUEST_DRIVER: wsl2.wsl2_purge_guest_driver,
        act.AMDGPU_DRIVER: amd.amdgpu_driver,
        act.VULKAN_PACKAGES: vulkan.vulkan_packages,
    }
