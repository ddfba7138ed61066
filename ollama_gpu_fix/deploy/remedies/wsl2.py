"""WSL2: never a Linux driver in the guest.

NVIDIA's CUDA on WSL user guide: "the CUDA driver installed on Windows host will be stubbed
inside the WSL 2 as libcuda.so, therefore users must not install any NVIDIA GPU Linux driver
within WSL 2", and not the cuda, cuda-12-x or cuda-drivers meta-packages
(https://docs.nvidia.com/cuda/wsl-user-guide/).
"""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import server
from pyinfra.operations.util import any_changed

from ollama_gpu_fix import actions as act
from ollama_gpu_fix.deploy.operations import apt_idle, apt_purge, journal
from ollama_gpu_fix.deploy.remedies import Applied


@deploy("Linux driver in WSL2")
def wsl2_purge_guest_driver(packages: list[str], lock_timeout: int = 120) -> Applied:
    idle = apt_idle(name="Wait for apt", timeout=lock_timeout)
    begin = journal(name="Journal: purge the guest driver", action=act.WSL2_PURGE_GUEST_DRIVER,
                    phase="begin")
    purge = apt_purge(name=f"Purge {', '.join(packages)}", packages=packages,
                      family="wsl-guest-driver", lock_timeout=lock_timeout)
    cache = server.shell(name="ldconfig", commands=["ldconfig"], _if=any_changed(purge))
    done = journal(name="Journal: guest driver purged", action=act.WSL2_PURGE_GUEST_DRIVER,
                   phase="done")
    return Applied(restart=[purge], ops=[idle, begin, purge, cache, done])
