"""Outcome rules: the GPU works, there is no GPU, or the model does not fit."""

from __future__ import annotations

from collections.abc import Iterator

from ollama_gpu_fix import actions as act
from ollama_gpu_fix.findings import Finding, Remedy
from ollama_gpu_fix.rules.context import Context
from ollama_gpu_fix.snapshot import Line


def vram_insufficient(ctx: Context) -> Iterator[Finding]:
    evidence: list[Line] = []
    log = ctx.s.log
    offload = log.layers_offloaded if log else None
    layers = [log.layers_line] if log and log.layers_line else []
    if offload and 0 < offload[0] < offload[1]:
        evidence += layers
    elif offload and offload[0] == 0 and offload[1] > 0 and ctx.gpu_compute and _short(ctx):
        evidence += layers + [c.raw for c in ctx.gpu_compute if c.raw]
    evidence += ctx.lines("gpu-out-of-memory")
    observed = ctx.observed_on_gpu
    if observed is not None and 0 < observed < 1 and ctx.s.observation:
        evidence += ctx.s.observation.evidence[:2]
    for model in ctx.s.loaded_models or []:
        if model.gpu_fraction is not None and 0 < model.gpu_fraction < 1:
            evidence.append(
                model.raw
                or Line(
                    "api-ps.json", f"{model.name} size={model.size} size_vram={model.size_vram}"
                )
            )
    if evidence:
        yield Finding(
            "vram-insufficient",
            "error",
            "The model does not fit in free VRAM, so part of it runs on the CPU.",
            evidence,
            Remedy(
                act.ADVISE,
                "Use a smaller model or quantisation, a smaller num_ctx, or free the VRAM other"
                " processes hold; OLLAMA_GPU_OVERHEAD if estimates are off. Not a driver fix.",
            ),
        )


def _short(ctx: Context) -> bool:
    """Could the load not fit? False when the GPU reported more free memory than the whole
    load took (`total memory`): then 0 layers means the GPU backend failed, not VRAM."""
    log = ctx.s.log
    need = _bytes(log.model_memory) if log and log.model_memory else None
    free = max((_bytes(c.available or "") or 0 for c in ctx.gpu_compute), default=0)
    return not (need and free and free > need)


def _bytes(text: str) -> float | None:
    parts = text.replace('"', "").split()
    units = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
    if len(parts) != 2 or parts[1] not in units:
        return None
    try:
        return float(parts[0]) * units[parts[1]]
    except ValueError:
        return None


def gpu_reports_no_memory(ctx: Context) -> Iterator[Finding]:
    """A GPU that reports 0 B of VRAM gets no layer: a driver or backend that cannot read the
    device's memory (Vulkan heaps on an APU, a fork's query; ollama-musa#22)."""
    zero = [e.line for e in ctx.events("gpu-zero-memory")
            if (e.fields.get("total") or "").strip() in ("0 B", "0B")]
    if zero and not ctx.gpu_used:
        yield Finding(
            "other",
            "error",
            "The GPU was found but reports 0 B of memory, so no layer can be offloaded.",
            zero + ctx.lines("gpu-zero-memory")[:2],
            Remedy(act.ADVISE, "Update the GPU driver (and Ollama); on an APU raise the VRAM"
                   " carve-out in the firmware; report the device to Ollama's tracker."),
        )


def cpu_lacks_vector_extensions(ctx: Context) -> Iterator[Finding]:
    lines = ctx.lines("cpu-no-vector-extensions")
    if lines and not ctx.gpu_used:
        yield Finding(
            "other",
            "error",
            "The CPU lacks AVX, which this Ollama's GPU runners require: GPU inference is"
            " disabled (common in VMs without CPU passthrough).",
            lines,
            Remedy(act.ADVISE, "Pass the host CPU's flags to the VM (host-passthrough), or use an"
                   " Ollama release whose GPU runners do not need AVX."),
        )


def smi_insufficient_permissions(ctx: Context) -> Iterator[Finding]:
    lines = ctx.lines("smi-insufficient-permissions")
    if lines and not ctx.gpu_used:
        yield Finding(
            "other",
            "error",
            "nvidia-smi may not read the GPU's memory ([Insufficient Permissions]: a MIG"
            " instance or a restricted container), so Ollama cannot size the GPU.",
            lines,
            Remedy(act.ADVISE, "Run on a full GPU or a MIG instance with a compute profile given"
                   " to the container, or upgrade Ollama (it reads memory through NVML now)."),
        )


def ok_gpu(ctx: Context) -> Iterator[Finding]:
    if not ctx.gpu_in_use:
        return
    evidence: list[Line] = []
    if ctx.observed_on_gpu and ctx.s.observation:  # measured first: where the model ran
        evidence += ctx.s.observation.evidence[:3]
    evidence += [c.raw for c in ctx.gpu_compute if c.raw]
    evidence += ctx.lines("offloaded-layers", "cuda-found", "hsa-override-set")
    log = ctx.s.log
    if log and log.layers_line and log.layers_line not in evidence:
        evidence.append(log.layers_line)
    for model in ctx.s.loaded_models or []:
        if model.gpu_fraction and model.raw:
            evidence.append(model.raw)
    if log_scheduled := (ctx.s.log.scheduled if ctx.s.log else []):
        evidence += log_scheduled[:2]
    summary = ("Ollama found a GPU and runs models on it." if ctx.gpu_used else
               "Ollama found a GPU (detected, not yet seen in use: no model load in the"
               " evidence; `ollama ps` while a model runs would show it).")
    yield Finding("ok-gpu", "info", summary, evidence)


def no_gpu(ctx: Context) -> Iterator[Finding]:
    if not ctx.hardware_known or ctx.has_nvidia or ctx.has_amd or ctx.has_intel:
        return
    if ctx.gpu_in_use:
        return
    gpu_nodes = [
        d
        for d in ctx.s.dev_nodes or []
        if d.path.startswith(("/dev/nvidia", "/dev/kfd", "/dev/dri/renderD", "/dev/dxg"))
    ]
    if gpu_nodes and ctx.platform != "wsl2":
        return
    evidence = [
        Line(
            "pci-devices.txt",
            f"{len(ctx.s.pci or [])} PCI devices, none a GPU of NVIDIA, AMD or Intel",
        )
    ]
    yield Finding(
        "no-gpu", "info", "No usable GPU in this machine: CPU-only is expected.", evidence
    )


RULES = (vram_insufficient, gpu_reports_no_memory, cpu_lacks_vector_extensions,
         smi_insufficient_permissions, ok_gpu, no_gpu)
