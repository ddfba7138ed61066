"""Outcome rules: the GPU works, there is no GPU, or the model does not fit."""

from __future__ import annotations

from collections.abc import Iterator

from ollama_gpu_fix.findings import Finding, Remedy
from ollama_gpu_fix.rules.context import Context
from ollama_gpu_fix.snapshot import Line


def vram_insufficient(ctx: Context) -> Iterator[Finding]:
    evidence: list[Line] = []
    log = ctx.s.log
    offload = log.layers_offloaded if log else None
    if offload and 0 < offload[0] < offload[1]:
        evidence += ctx.lines("offloaded-layers")
    elif offload and offload[0] == 0 and offload[1] > 0 and ctx.gpu_compute:
        evidence += ctx.lines("offloaded-layers") + [c.raw for c in ctx.gpu_compute if c.raw]
    evidence += ctx.lines("gpu-out-of-memory")
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
                "advise",
                "Use a smaller model or quantisation, a smaller num_ctx, or free the VRAM other"
                " processes hold; OLLAMA_GPU_OVERHEAD if estimates are off. Not a driver fix.",
            ),
        )


def ok_gpu(ctx: Context) -> Iterator[Finding]:
    if not ctx.gpu_in_use:
        return
    evidence = [c.raw for c in ctx.gpu_compute if c.raw]
    evidence += ctx.lines("offloaded-layers", "cuda-found", "hsa-override-set")
    for model in ctx.s.loaded_models or []:
        if model.gpu_fraction and model.raw:
            evidence.append(model.raw)
    yield Finding("ok-gpu", "info", "Ollama found a GPU and runs models on it.", evidence)


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


RULES = (vram_insufficient, ok_gpu, no_gpu)
