"""NVIDIA: the CUDA toolkit (a stale CUDA 11 purged, 12.4+ from NVIDIA's repository), the
driver branch Ollama needs, and nvidia_uvm after suspend.

Package names, branches and flavours come from ollama_gpu_fix/knowledge/packages.py (one
table, cited there); nvidia_uvm: ollama/ollama@v0.33.0-rc2 docs/gpu.mdx ("Linux Suspend
Resume": reload nvidia_uvm).
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import apt, server
from pyinfra.operations.util import any_changed

from ollama_gpu_fix import actions as act
from ollama_gpu_fix.deploy import service
from ollama_gpu_fix.deploy.operations import (
    apt_idle,
    apt_purge,
    cuda_keyring,
    journal,
    remove_lines,
)
from ollama_gpu_fix.deploy.remedies import Applied


def _install(packages: list[str], repo_url: str, source: str, lock_timeout: int, what: str):
    """NVIDIA's repository (cuda-keyring, or the host's own source), apt update only when
    something is missing, the packages; returns the operations."""
    keyring = cuda_keyring(name="NVIDIA's CUDA repository (cuda-keyring)", repo_url=repo_url,
                           source=source)

    def missing() -> bool:
        return any(p not in host.get_fact(DebPackages) for p in packages)

    update = apt.update(name="apt update", _if=missing)
    install = apt.packages(name=f"Install {what}", packages=packages,
                           extra_install_args=f"-o DPkg::Lock::Timeout={lock_timeout}")
    return [keyring, update, install]


@deploy("CUDA toolkit")
def cuda_toolkit(
    purge: list[str], ldconf_remove: dict[str, list[str]], install: list[str],
    repo: str | None, repo_url: str | None, source: str = "add", lock_timeout: int = 120,
) -> Applied:
    applied = Applied()
    applied.ops.append(apt_idle(name="Wait for apt", timeout=lock_timeout))
    applied.ops.append(journal(name="Journal: CUDA toolkit", action=act.CUDA_TOOLKIT,
                               phase="begin"))
    changed = []
    if purge:
        changed.append(apt_purge(name=f"Purge {', '.join(purge)}", packages=purge,
                                 lock_timeout=lock_timeout))
    for path, lines in sorted(ldconf_remove.items()):
        changed.append(remove_lines(name=f"Remove {', '.join(lines)} from {path}", path=path,
                                    lines=lines))
    if changed:
        changed.append(server.shell(name="ldconfig", commands=["ldconfig"],
                                    _if=any_changed(*changed)))
    if install and repo_url:
        changed += _install(install, repo_url, source, lock_timeout, ", ".join(install))
    applied.ops += changed
    applied.restart += changed
    applied.ops.append(journal(name="Journal: CUDA toolkit done", action=act.CUDA_TOOLKIT,
                               phase="done"))
    return applied


@deploy("NVIDIA driver")
def nvidia_driver(packages: list[str], headers: list[str], repo: str, repo_url: str,
                  source: str = "add", lock_timeout: int = 120) -> Applied:
    applied = Applied()
    applied.ops.append(apt_idle(name="Wait for apt", timeout=lock_timeout))
    applied.ops.append(journal(name="Journal: NVIDIA driver", action=act.NVIDIA_DRIVER,
                               phase="begin"))
    ops = _install(headers + packages, repo_url, source, lock_timeout, "the NVIDIA driver")
    applied.reboot.append(ops[-1])
    applied.ops += ops
    applied.ops.append(journal(name="Journal: NVIDIA driver done", action=act.NVIDIA_DRIVER,
                               phase="done"))
    return applied


@deploy("nvidia_uvm after suspend")
def nvidia_uvm_reload() -> Applied:
    """Stop ollama (it holds the module), reload nvidia_uvm, start ollama: one command."""
    op = service.reload_uvm(name="Stop ollama, reload nvidia_uvm, start ollama")
    return Applied(ops=[op])
