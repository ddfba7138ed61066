"""The GPU's own process list from NVML (nvidia-ml-py, imported as pynvml). Needs no pyinfra:
it runs where the GPU is (pyinfra @local, or the device capture in tests/fixtures/h200)."""

from __future__ import annotations

from ollama_gpu_fix.verdict import GpuProcess


def nvml_processes() -> list[GpuProcess] | None:
    """Processes holding GPU memory, from NVML itself (pynvml), when this machine is the host
    (pyinfra @local) and has an NVIDIA driver; None otherwise."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None
    found: list[GpuProcess] = []
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
                used = proc.usedGpuMemory
                name = ""
                try:
                    name = pynvml.nvmlSystemGetProcessName(proc.pid)
                    name = name.decode() if isinstance(name, bytes) else name
                except pynvml.NVMLError:
                    pass
                found.append(GpuProcess(proc.pid, name, used // 2**20 if used else None, "nvml"))
    except pynvml.NVMLError:
        return None
    finally:
        pynvml.nvmlShutdown()
    return found
