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
    traced = dict(snapshot.traces or [])  # pasted excerpts: the first platform a trace names
    return next((p for p in TRACE_ORDER if p in traced), "unknown")


# Which trace decides when a paste holds several: a container's log on a WSL2 or Windows
# machine is a container's problem first.
TRACE_ORDER = ("container", "wsl1", "wsl2", "windows", "macos")
