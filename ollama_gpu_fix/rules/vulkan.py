"""Vulkan and integrated-GPU rules: GPUs with no CUDA/ROCm path, and Ollama's iGPU policy."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ollama_gpu_fix import actions as act
from ollama_gpu_fix.findings import Finding, Remedy
from ollama_gpu_fix.knowledge import amd
from ollama_gpu_fix.knowledge.environment import writable
from ollama_gpu_fix.knowledge.versions import (
    IGPU_POLICY,
    VULKAN_BUNDLED,
    VULKAN_DEFAULT_ON,
    in_range,
)
from ollama_gpu_fix.rules.context import Context
from ollama_gpu_fix.snapshot import Line

VULKAN_PACKAGES = ["libvulkan1", "mesa-vulkan-drivers"]
_DISCRETE_BRAND = re.compile(r"NVIDIA|GeForce|RTX|Quadro|Tesla|Radeon RX|Radeon PRO|Arc A", re.I)


def _no_rocm_path(ctx: Context) -> list[str]:
    """AMD gfx targets this Ollama cannot run with ROCm, even with an override."""
    out = []
    for gfx in ctx.amd_gfx:
        if amd.supported(gfx, ctx.version) is False and amd.override_for(gfx, ctx.version) is None:
            out.append(gfx)
        elif ctx.version is None and gfx == "gfx803":
            out.append(gfx)
    return out


def _vulkan_remedy(ctx: Context) -> Remedy:
    env = {}
    if ctx.version is None or in_range(ctx.version, VULKAN_BUNDLED, VULKAN_DEFAULT_ON):
        env["OLLAMA_VULKAN"] = "1"
    if ctx.version is not None and not in_range(ctx.version, VULKAN_BUNDLED, None):
        summary = f"Upgrade Ollama to {VULKAN_BUNDLED}+ (Vulkan backend) and set OLLAMA_VULKAN=1."
    elif env:
        summary = "Set OLLAMA_VULKAN=1 in a drop-in and install the Vulkan loader and driver."
    else:
        summary = "Install the Vulkan loader and driver (Vulkan is on by default here)."
    return Remedy(act.VULKAN_PACKAGES, summary, True, {"env": env, "packages": VULKAN_PACKAGES})


def vulkan_needed(ctx: Context) -> Iterator[Finding]:
    if ctx.gpu_compute or ctx.events("igpu-dropped"):
        return  # Vulkan found the GPU (an iGPU dropped by policy: igpu-disabled speaks)
    env = ctx.service_env or {}
    enabled = env.get("OLLAMA_VULKAN", "").strip().lower() in ("1", "true")
    evidence = ctx.lines("vulkan-disabled")
    stranded = _no_rocm_path(ctx)
    if stranded:
        evidence.append(
            Line(
                "knowledge",
                f"{', '.join(stranded)}: no ROCm target in Ollama {ctx.version}"
                " and no override lands on one; Vulkan is the supported path",
            )
        )
    intel_only = ctx.has_intel and not ctx.has_nvidia and not ctx.has_amd
    if intel_only and (ctx.cpu_fallback or not ctx.s.log):
        evidence += [d.raw for d in ctx.pci_gpus("8086") if d.raw]
    silent = (
        not ctx.hardware_known
        and not ctx.has_nvidia
        and not ctx.has_amd
        and ctx.cpu_fallback
        and ctx.era in ("B", "C")
        and not ctx.events("igpu-dropped")
        # from v0.30 Vulkan is on by default: a silent CPU result there is not "enable Vulkan"
        and not in_range(ctx.version, VULKAN_DEFAULT_ON, None)
    )
    if silent:
        # Runner-era discovery logs every CUDA/ROCm device it fails on; a CPU-only result with
        # no such line means no CUDA/ROCm GPU answered at all: what is left is Vulkan (#13023)
        evidence += [c.raw for c in ctx.compute if c.raw] or ctx.lines("zero-vram")
    if not evidence or (enabled and not stranded and not intel_only):
        return
    yield Finding(
        "vulkan-needed",
        "error",
        "This GPU has no CUDA/ROCm path in this Ollama; it runs through Vulkan"
        + (", which is not enabled." if not enabled else ", whose loader/driver is missing."),
        evidence,
        _vulkan_remedy(ctx),
    )


def hybrid(ctx: Context) -> Iterator[Finding]:
    dropped = [
        e
        for e in ctx.events("igpu-dropped")
        if _DISCRETE_BRAND.search(e.fields.get("description", "") + e.fields.get("name", ""))
    ]
    chosen_igpu = [
        c
        for c in ctx.gpu_compute
        if re.search(r"Intel|UHD|Iris|Graphics Controller", c.description or c.name or "", re.I)
    ]
    if dropped or (chosen_igpu and ctx.has_nvidia):
        pin = dropped[0].fields.get("id") if dropped else None
        if pin is not None and not writable("GGML_VK_VISIBLE_DEVICES", pin):
            pin = None  # a device id the tool cannot check is advice
        yield Finding(
            "hybrid-igpu-selected",
            "error",
            "On this hybrid machine Ollama runs on the integrated GPU and drops the discrete one.",
            [e.line for e in dropped] + [c.raw for c in chosen_igpu if c.raw],
            Remedy(
                act.SERVICE_ENV,
                "Pin the discrete GPU (GGML_VK_VISIBLE_DEVICES / CUDA_VISIBLE_DEVICES) or"
                " prime-select it; disable the iGPU in firmware as a last resort.",
                pin is not None,
                {"env": {"GGML_VK_VISIBLE_DEVICES": pin}} if pin is not None else {},
            ),
        )


def igpu_disabled(ctx: Context) -> Iterator[Finding]:
    if ctx.gpu_compute:
        return
    dropped = [
        e
        for e in ctx.events("igpu-dropped")
        if not _DISCRETE_BRAND.search(e.fields.get("description", "") + e.fields.get("name", ""))
    ]
    evidence = [e.line for e in dropped]
    small = ctx.lines("amd-igpu-small")
    if small and not evidence:
        yield Finding(
            "igpu-disabled",
            "error",
            "Ollama skipped the integrated Radeon GPU: less than 1 GiB of VRAM is carved out.",
            small,
            Remedy(act.ADVISE, "Raise the UMA frame buffer size in the firmware (BIOS) setup."),
        )
        return
    env = ctx.service_env or {}
    if (
        not evidence
        and in_range(ctx.version, IGPU_POLICY, None)
        and env.get("OLLAMA_IGPU_ENABLE") != "1"
        and ctx.cpu_fallback
    ):
        for gfx in ctx.amd_gfx:
            if gfx in amd.INTEGRATED and gfx not in amd.IGPU_ALLOWED_BY_DEFAULT:
                evidence.append(
                    Line(
                        "knowledge",
                        f"{gfx} is an integrated GPU; Ollama"
                        f" {ctx.version} drops iGPUs unless OLLAMA_IGPU_ENABLE=1",
                    )
                )
    if evidence:
        yield Finding(
            "igpu-disabled",
            "error",
            "Ollama dropped the integrated GPU by policy.",
            evidence,
            Remedy(
                act.SERVICE_ENV,
                "Set OLLAMA_IGPU_ENABLE=1 in a drop-in.",
                True,
                {"env": {"OLLAMA_IGPU_ENABLE": "1"}},
            ),
        )


RULES = (vulkan_needed, hybrid, igpu_disabled)
