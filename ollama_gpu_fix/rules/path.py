"""The GPU path as a chain of links, and the rules that read it by mechanism, not by wording.

Links (knowledge/error_families.LINKS): hardware, kernel driver, device access, runtime,
Ollama's backend, discovery, scheduler fit. A link is broken when a finding's code belongs to it
or an error of its component family was printed; ok when something downstream of it worked
(a GPU in use proves every link); else unknown. The primary is the first broken link's code
(findings.CODE_ORDER already orders codes that way). When the model ran off the GPU and no link
is proven broken, the answer names the first unknown link and what would decide it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ollama_gpu_fix import actions as act
from ollama_gpu_fix.findings import Finding, Remedy
from ollama_gpu_fix.knowledge import error_families as fam
from ollama_gpu_fix.placement import OBSERVED, PLANNED
from ollama_gpu_fix.records import record
from ollama_gpu_fix.rules.context import Context
from ollama_gpu_fix.snapshot import Line

# The link each failure code breaks (a code not here breaks none: ok-gpu, no-gpu, ...).
CODE_LINKS: dict[str, str] = {
    "ollama-not-installed": "ollama-backend",
    "ollama-build-without-gpu": "ollama-backend",
    "wsl1-unsupported": "kernel-driver",
    "wsl2-amd-unsupported": "kernel-driver",
    "rocm-hip-sdk-missing": "runtime",
    "jetson-unsupported": "ollama-backend",
    "container-no-gpu-access": "device-access",
    "wsl2-linux-driver-in-guest": "runtime",
    "wsl2-passthrough-broken": "kernel-driver",
    "nvidia-no-driver": "kernel-driver",
    "nvidia-driver-mismatch": "runtime",
    "nvidia-driver-too-old": "runtime",
    "cuda-runtime-mismatch": "runtime",
    "nvidia-uvm-broken": "kernel-driver",
    "gpu-too-old": "ollama-backend",
    "rocm-driver-too-old": "kernel-driver",
    "rocm-missing": "runtime",
    "device-permissions": "device-access",
    "override-not-applied": "discovery",
    "env-forces-cpu": "discovery",
    "rocm-gfx-unsupported": "ollama-backend",
    "vulkan-needed": "ollama-backend",
    "hybrid-igpu-selected": "discovery",
    "igpu-disabled": "discovery",
    "ollama-not-running": "discovery",
    "vram-insufficient": "scheduler",
}
# What decides a link that the evidence leaves unknown.
DECIDES: dict[str, str] = {
    "hardware": "`lspci -nn | grep -Ei 'vga|3d|display'` (or `nvidia-smi -L`)",
    "kernel-driver": "`nvidia-smi` (NVIDIA) or `ls -l /dev/kfd` and `dmesg | grep -i amdgpu` "
                     "(AMD)",
    "device-access": "`ls -l /dev/nvidia* /dev/kfd /dev/dri` and `id ollama` (in a container: "
                     "its --gpus/--device flags)",
    "runtime": "`ldconfig -p | grep -E 'libcuda|libamdhip64|libvulkan'` and the driver version",
    "ollama-backend": "`ls /usr/local/lib/ollama` (the cuda_*/rocm*/vulkan backends) and the "
                      "`load_backend` lines of the server log",
    "discovery": "the server log from its start with OLLAMA_DEBUG=1 (the discovery and "
                 "`inference compute` lines) and the service's environment",
    "scheduler": "`ollama ps` while the model runs and the model's size against free VRAM",
}


@record
class LinkState:
    link: str
    state: str  # ok, broken, unknown
    why: str
    evidence: list[Line]

    def as_dict(self) -> dict:
        return {"link": self.link, "state": self.state, "why": self.why,
                "evidence": [str(line) for line in self.evidence[:4]]}


def _on_platform(ctx: Context, link: str, code: str) -> str:
    """The kernel driver (and its libraries) of a container or a WSL2 guest is the host's: the
    same symptom there is the missing GPU hand-over, not a missing driver. On a Jetson, a CUDA
    error of Ollama's generic runtime is the runtime not built for Tegra."""
    if ctx.jetson and link in ("runtime", "ollama-backend", "kernel-driver"):
        return "jetson-unsupported"
    if link not in ("kernel-driver", "device-access", "runtime"):
        return code
    if code in ("nvidia-no-driver", "other") and ctx.platform == "container":
        return "container-no-gpu-access"
    if code == "nvidia-no-driver" and ctx.platform == "wsl2":
        return "wsl2-passthrough-broken"
    return code


# An engine's own check failing while it computes (ggml's CUDA_CHECK / HIP_CHECK abort, the
# runner dying): fatal even after discovery found the GPU, unlike a probe's passing complaint.
_FATAL = re.compile(r"current device:|in function ggml_|\bCUDA error\b|\bHIP error\b"
                    r"|runner process has terminated|\bSIGABRT\b")


def family_errors(ctx: Context) -> Iterator[Finding]:
    """Errors by component: each family's error lands on its link with the code its name or
    number means; an unknown message of a known family is still an error of that link."""
    if ctx.placement.where == "gpu" and ctx.placement.rank == OBSERVED:
        return  # the model ran on the GPU: an error printed on the way did not stop it
    by_code: dict[str, list[tuple[str, str, Line]]] = {}
    for family, meaning, label, line in ctx.component_errors:
        if ctx.gpu_in_use and not _FATAL.search(line.text):
            continue  # the GPU was found and nothing shows the model off it: a passing error
        if family.vendor == "amd" and ctx.has_nvidia and not ctx.has_amd:
            continue  # Ollama probes ROCm on every host: its complaints on an NVIDIA one
        if family.vendor == "nvidia" and ctx.has_amd and not ctx.has_nvidia:
            continue  # and CUDA on every host
        code = _on_platform(ctx, meaning.link, meaning.code)
        by_code.setdefault(code, []).append((meaning.link, label, line))
    for code, hits in by_code.items():
        link, label = hits[0][0], hits[0][1]
        yield Finding(
            code,
            "error",
            f"The GPU path breaks at the {link} link: {label} (an error of the GPU stack's own"
            " component, by its name, number or the library it could not load).",
            list(dict.fromkeys(line for _, _, line in hits))[:8],
            Remedy(act.ADVISE, f"Fix the {link} link first; what decides it: {DECIDES[link]}."),
        )


def backend_without_gpu(ctx: Context) -> Iterator[Finding]:
    """A GPU is there and planned for, yet the runner that ran had only CPU code: the build
    (or the bundle's layout) has no backend for it. A backend that failed to load is a family
    error instead (its reason names the missing library)."""
    p = ctx.placement
    cpu_runner = [s for s in p.sightings if s.rank == OBSERVED and s.where == "cpu"
                  and s.source in ("backends", "runner")]
    if not cpu_runner:
        return
    if any(f.id == "load-backend" for f, *_ in ctx.component_errors):
        return
    if any(s.where == "cpu" and s.rank in (PLANNED, 1) for s in p.sightings):
        return  # the plan or discovery had already chosen the CPU: the runner followed it
    gpu_seen = [s for s in p.sightings if s.where != "cpu" and s.rank in (PLANNED, 1)]
    libs = ctx.s.ollama_libs
    no_gpu_libs = bool(libs and libs.files and not libs.variants)
    if ctx.hardware_known and not (ctx.has_nvidia or ctx.has_amd or ctx.has_intel):
        return  # no GPU in the machine: CPU code is all it can run
    evidence = [s.line for s in cpu_runner if s.line] + [s.line for s in gpu_seen if s.line]
    if no_gpu_libs:
        evidence += libs.raw[:2]
    yield Finding(
        "ollama-build-without-gpu",
        "error",
        "A GPU is there, but the runner Ollama started had only CPU code: this Ollama build or"
        " its library directory has no backend for the GPU.",
        list(dict.fromkeys(evidence + _driver_lines(ctx)[:2]))[:8],  # noqa: RUF005
        Remedy(act.ADVISE, "Install Ollama's GPU build (the official bundle with lib/ollama/"
               "cuda_*, rocm or vulkan; for a distribution package its -cuda/-rocm variant),"
               " then check `load_backend: loaded CUDA/ROCm backend` in the log."),
    )


def _driver_lines(ctx: Context) -> list[Line]:
    """Ollama's own driver probes that found a device (`device count 1`, `CUDA driver
    version: 13.0`): the driver answered."""
    out = []
    for line, text, _ in (ctx.s.log.records if ctx.s.log else []):
        if text.startswith(("CUDA driver version:", "device count ")) and not text.endswith(" 0"):
            out.append(line)
    return out


def model_exceeds_vram(ctx: Context) -> Iterator[Finding]:
    """Off the GPU (or split) and the model is larger than all the VRAM there is: the scheduler
    fit is the broken link, whatever else is true."""
    p = ctx.placement
    if p.where not in ("cpu", "partial") or p.rank < PLANNED:
        return
    vram = _total_vram_bytes(ctx)
    sizes = [(m.size, m.raw) for m in ctx.s.loaded_models or [] if m.size]
    big = [(size, raw) for size, raw in sizes if vram and size > vram]
    partial = p.where == "partial"
    if not big and not partial:
        return
    evidence = [raw for _, raw in big if raw] + p.evidence
    if big:
        evidence.append(Line("vram", f"total VRAM {vram / 2**30:.1f} GiB"))
    yield Finding(
        "vram-insufficient",
        "error",
        "The model (with its context) does not fit the GPU's memory, so the rest runs on the CPU"
        f" ({p.summary()}).",
        list(dict.fromkeys(evidence))[:8],
        Remedy(act.ADVISE, "Use a smaller model or quantisation, a smaller num_ctx, or free the"
               " VRAM other processes hold; OLLAMA_GPU_OVERHEAD if estimates are off. Not a"
               " driver fix."),
    )


def _total_vram_bytes(ctx: Context) -> float:
    smi = ctx.s.nvidia_smi
    total = sum((g.memory_total_mib or 0) for g in (smi.gpus if smi else [])) * 2**20
    if total:
        return total
    for c in ctx.gpu_compute:
        text = (c.total or "").replace('"', "").split()
        units = {"MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
        if len(text) == 2 and text[1] in units:
            try:
                total += float(text[0]) * units[text[1]]
            except ValueError:
                continue
    if total:
        return total
    names = " ".join(g.name or "" for g in (smi.gpus if smi else []))
    found = re.search(r"(\d{1,3})GB\b", names)  # "Tesla V100-SXM2-32GB"
    return int(found.group(1)) * 2**30 if found else 0.0


def chain(ctx: Context, findings: list[Finding]) -> list[LinkState]:
    """Each link ok / broken / unknown with its evidence."""
    broken: dict[str, Finding] = {}
    for f in findings:
        link = CODE_LINKS.get(f.code)
        if link and f.severity == "error" and link not in broken:
            broken[link] = f
    p = ctx.placement
    in_use = p.where == "gpu" and p.rank >= PLANNED
    detected = any(s.where != "cpu" and s.rank == 1 and s.source == "discovery"
                   for s in p.sightings)
    present = ctx.has_nvidia or ctx.has_amd or ctx.has_intel
    states = []
    for index, link in enumerate(fam.LINKS):
        if link in broken:
            f = broken[link]
            states.append(LinkState(link, "broken", f"{f.code}: {f.summary}", f.evidence[:3]))
            continue
        downstream_ok = in_use or (detected and fam.LINKS.index("discovery") >= index)
        own = _own_proof(ctx, link)
        if link == "hardware" and present:
            states.append(LinkState(link, "ok", "a GPU is in the evidence", []))
        elif own:
            states.append(LinkState(link, "ok", own[0], own[1]))
        elif downstream_ok:
            states.append(LinkState(link, "ok", "a later link worked (the GPU was "
                                    + ("used" if in_use else "found by discovery") + ")",
                                    p.evidence[:1] if in_use else []))
        else:
            states.append(LinkState(link, "unknown", f"not shown; decides: {DECIDES[link]}",
                                    []))
    return states


def _own_proof(ctx: Context, link: str) -> tuple[str, list[Line]] | None:
    """A link shown working by its own tool: the loaded kernel module answering, the
    user-space driver's CUDA version."""
    smi, kern, rocm = ctx.s.nvidia_smi, ctx.s.nvidia_kernel, ctx.s.rocm
    if link == "kernel-driver":
        if kern and kern.version:
            return f"NVIDIA kernel module {kern.version} loaded", kern.raw[:1]
        if smi and smi.driver_version and not smi.error:
            return f"nvidia-smi answers (driver {smi.driver_version})", smi.raw[:1]
        if rocm and rocm.kfd_nodes:
            return "the KFD lists the GPU", []
    if link == "runtime" and smi and smi.cuda_version and smi.cuda_version != "N/A" \
            and not smi.error and ctx.platform != "container":
        return f"libcuda answers (CUDA {smi.cuda_version})", smi.raw[:1]
    return None


def first_unknown(ctx: Context, findings: list[Finding]) -> Finding | None:
    """Seen or planned off the GPU, on a machine with a GPU, and no link proven broken: say so
    as a fault, with the CPU evidence, naming the first link not shown working."""
    p = ctx.placement
    if p.where not in ("cpu", "partial") or any(f.severity == "error" for f in findings):
        return None
    if any(f.code == "no-gpu" for f in findings):
        return None
    present = ctx.has_nvidia or ctx.has_amd or ctx.has_intel
    if p.rank < OBSERVED and not present:
        return None
    states = chain(ctx, findings)
    unknown = next((s for s in states if s.state == "unknown"), None)
    where = unknown.link if unknown else "discovery"
    return Finding(
        "other",
        "error",
        f"The model ran on the CPU ({p.summary()}) and no link of the GPU path is proven broken;"
        f" the first link not shown working is {where}.",
        p.evidence or [s.line for s in p.sightings if s.line][:3],
        Remedy(act.ADVISE, f"Decide the {where} link: {DECIDES[where]}."),
    )


RULES = (family_errors, backend_without_gpu, model_exceeds_vram)
