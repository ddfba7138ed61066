"""NVIDIA: the CUDA toolkit (a stale CUDA 11 purged, 12.4+ from NVIDIA's repository), the
driver branch Ollama needs, and nvidia_uvm after suspend.

Package names, branches and flavours: NVIDIA driver installation guide (network repository,
kernel modules: open modules for Turing and newer, 580 the last branch for Maxwell, Pascal
and Volta), NVIDIA/ansible-role-nvidia-driver (cuda-keyring, PR #59), ollama/ollama@v0.33.0-rc2
docs/gpu.mdx ("Linux Suspend Resume": reload nvidia_uvm).
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from ollama_gpu_fix.deploy.operations import (
    CUDA_KEYRING,
    apt_idle,
    apt_purge,
    cuda_keyring,
    reachable,
)
from ollama_gpu_fix.deploy.remedies import Applied

# A purge of old toolkits must never take the driver in use (or its libraries) with it.
PROTECT = ["nvidia-driver", "libnvidia-", "cuda-drivers", "nvidia-kernel", "nvidia-open",
           "nvidia-dkms", "xserver-xorg-video-nvidia", "cuda-keyring", "cuda-compat", "linux-"]


def _install(packages: list[str], repo_url: str, lock_timeout: int, what: str):
    """NVIDIA's repository (cuda-keyring), apt update only when something is missing, the
    packages; returns the install operation."""
    cuda_keyring(name="NVIDIA's CUDA repository (cuda-keyring)", repo_url=repo_url)

    def missing() -> bool:
        return any(p not in host.get_fact(DebPackages) for p in packages)

    apt.update(name="apt update", _if=missing)
    return apt.packages(name=f"Install {what}", packages=packages,
                        extra_install_args=f"-o DPkg::Lock::Timeout={lock_timeout}")


@deploy("CUDA toolkit")
def cuda_toolkit(
    purge: list[str], ldconf_remove: list[str], install: list[str], repo_url: str,
    lock_timeout: int = 120,
) -> Applied:
    applied = Applied()
    applied.ops.append(apt_idle(name="Wait for apt", timeout=lock_timeout))
    if install:
        applied.ops.append(reachable(name="NVIDIA's repository answers",
                                     url=repo_url.rstrip("/") + "/" + CUDA_KEYRING,
                                     knob="nvidia_repo_url"))
    changed = []
    if purge:
        changed.append(apt_purge(name=f"Purge {', '.join(purge)}", packages=purge,
                                 protect=PROTECT, lock_timeout=lock_timeout))
    for path in ldconf_remove:
        changed.append(files.file(name=f"Remove {path}", path=path, present=False))
    if changed:
        changed.append(server.shell(name="ldconfig", commands=["ldconfig"],
                                    _if=any_changed(*changed)))
    if install:
        changed.append(_install(install, repo_url, lock_timeout, ", ".join(install)))
    applied.restart += changed
    applied.ops += changed
    return applied


@deploy("NVIDIA driver")
def nvidia_driver(packages: list[str], headers: list[str], repo_url: str,
                  lock_timeout: int = 120) -> Applied:
    applied = Applied()
    applied.ops.append(apt_idle(name="Wait for apt", timeout=lock_timeout))
    applied.ops.append(reachable(name="NVIDIA's repository answers",
                                 url=repo_url.rstrip("/") + "/" + CUDA_KEYRING,
                                 knob="nvidia_repo_url"))
    op = _install(headers + packages, repo_url, lock_timeout, "the NVIDIA driver")
    applied.reboot.append(op)
    applied.ops.append(op)
    return applied


@deploy("nvidia_uvm after suspend")
def nvidia_uvm_reload() -> Applied:
    """Stop ollama (it holds the module), reload nvidia_uvm, start ollama."""
    ops = [
        systemd.service(name="Stop ollama", service="ollama.service", running=False),
        server.modprobe(name="Unload nvidia_uvm", module="nvidia_uvm", present=False),
        server.modprobe(name="Load nvidia_uvm", module="nvidia_uvm"),
        systemd.service(name="Start ollama", service="ollama.service", running=True),
    ]
    return Applied(ops=ops)
