"""AMD: the kernel side. Ollama bundles the ROCm user space (lib/ollama/rocm*), so what a host
needs is an amdgpu kernel driver new enough for it: amdgpu-dkms from AMD's repository, with
the running kernel's headers (repository, key, source, pin and suites: knowledge/packages.py).
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import apt

from ollama_gpu_fix import actions as act
from ollama_gpu_fix.deploy.operations import amd_repository, apt_idle, journal
from ollama_gpu_fix.deploy.remedies import Applied


@deploy("amdgpu kernel driver")
def amdgpu_driver(packages: list[str], headers: list[str], repo_url: str, suite: str,
                  key_url: str, source: str = "add", lock_timeout: int = 120) -> Applied:
    applied = Applied()
    applied.ops.append(apt_idle(name="Wait for apt", timeout=lock_timeout))
    applied.ops.append(journal(name="Journal: amdgpu driver", action=act.AMDGPU_DRIVER,
                               phase="begin"))
    applied.ops.append(amd_repository(name="AMD's amdgpu repository", repo_url=repo_url,
                                      suite=suite, key_url=key_url, source=source))
    wanted = headers + packages

    def missing() -> bool:
        return any(p not in host.get_fact(DebPackages) for p in wanted)

    applied.ops.append(apt.update(name="apt update", _if=missing))
    op = apt.packages(name="Install amdgpu-dkms", packages=wanted,
                      extra_install_args=f"-o DPkg::Lock::Timeout={lock_timeout}")
    applied.ops.append(op)
    applied.reboot.append(op)
    applied.ops.append(journal(name="Journal: amdgpu driver done", action=act.AMDGPU_DRIVER,
                               phase="done"))
    return applied
