"""Where a host runs: it decides which GPU path can work and which fixes apply at all.

native, wsl2, wsl1, container, jetson or unknown (a bundle that names none of them).
"""

from __future__ import annotations

from ollama_gpu_fix.snapshot import Snapshot


def platform(snapshot: Snapshot) -> str:
    """native, wsl2, wsl1, container, jetson or unknown: where Ollama's GPU path differs."""
    if snapshot.kernel and snapshot.kernel.wsl:
        return snapshot.kernel.wsl
    if snapshot.tegra and snapshot.tegra.release:
        return "jetson"
    container = snapshot.probe.container if snapshot.probe else None
    if (container and container != "none") or snapshot.container_run:
        return "container"
    if snapshot.probe or snapshot.kernel:
        return "native"
    return "unknown"
