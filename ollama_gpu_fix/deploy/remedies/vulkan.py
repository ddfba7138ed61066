"""Vulkan: the loader and Mesa's drivers (RADV for AMD, ANV for Intel), which Ollama's Vulkan
backend needs beside its own lib/ollama/vulkan (ollama/ollama@v0.33.0-rc2:docs/gpu.mdx "Most
Linux distributions require installing additional components"; Debian: libvulkan1,
mesa-vulkan-drivers). OLLAMA_VULKAN=1 (opt-in releases) goes through the managed drop-in."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import apt

from ollama_gpu_fix import actions as act
from ollama_gpu_fix.deploy.operations import apt_idle, journal
from ollama_gpu_fix.deploy.remedies import Applied


@deploy("Vulkan")
def vulkan_packages(packages: list[str], lock_timeout: int = 120) -> Applied:
    idle = apt_idle(name="Wait for apt", timeout=lock_timeout)
    begin = journal(name="Journal: Vulkan packages", action=act.VULKAN_PACKAGES, phase="begin")

    def missing() -> bool:
        return any(p not in host.get_fact(DebPackages) for p in packages)

    update = apt.update(name="apt update", _if=missing)
    install = apt.packages(name=f"Install {', '.join(packages)}", packages=packages,
                           extra_install_args=f"-o DPkg::Lock::Timeout={lock_timeout}")
    done = journal(name="Journal: Vulkan packages done", action=act.VULKAN_PACKAGES,
                   phase="done")
    return Applied(restart=[install], ops=[idle, begin, update, install, done])
