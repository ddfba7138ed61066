"""AMD rules: ROCm missing, gfx outside Ollama's list, device permissions, old amdgpu driver."""

from __future__ import annotations

from collections.abc import Iterator

from ollama_gpu_fix import actions as act
from ollama_gpu_fix.findings import Finding, Remedy
from ollama_gpu_fix.knowledge import amd
from ollama_gpu_fix.knowledge import log_signatures as sig
from ollama_gpu_fix.knowledge.environment import writable
from ollama_gpu_fix.knowledge.versions import VULKAN_BUNDLED, in_range
from ollama_gpu_fix.rules.context import Context
from ollama_gpu_fix.snapshot import Line

GPU_GROUPS = ("render", "video")


def rocm_missing(ctx: Context) -> Iterator[Finding]:
    if not ctx.has_amd or ctx.platform == "wsl2":
        return
    evidence: list[Line] = []
    for event in ctx.events(*sig.GFX_UNSUPPORTED):
        if not _supported_list(event.fields):
            evidence.append(event.line)  # "supported types:[]": no rocBLAS files at all
    evidence += ctx.lines("amd-no-rocm-lib", "amd-comgr")
    if ctx.platform != "container":
        evidence += ctx.lines("amd-kfd-not-loaded")
        if evidence or ctx.lines("amd-kfd-not-loaded"):
            # the host's own state: the live probe found no /dev/kfd (the kernel side)
            evidence += ctx.probe_line("absent=/dev/kfd")
    libs = ctx.s.ollama_libs
    needs_rocm = [
        g for g in ctx.amd_gfx if amd.supported(g, ctx.version) or amd.override_for(g, ctx.version)
    ]
    if libs and libs.roots and needs_rocm and not any(v.startswith("rocm") for v in libs.variants):
        evidence.append(
            Line("ollama-libs.txt", f"no rocm* directory under {', '.join(libs.roots)}")
        )
    if evidence and not ctx.gpu_compute:
        yield Finding(
            "rocm-missing",
            "error",
            "The ROCm runtime or Ollama's ROCm backend is missing or incomplete.",
            evidence,
            Remedy(
                act.AMDGPU_DRIVER,
                "Install ROCm 6.1.2+ (libamdhip64, comgr, rocBLAS) and Ollama's ROCm bundle.",
                automatic=True,
            ),
        )


def gfx_unsupported(ctx: Context) -> Iterator[Finding]:
    """A gfx Ollama does not bundle, which a HSA_OVERRIDE_GFX_VERSION maps onto one it does."""
    if not ctx.has_amd or ctx.gpu_compute:
        return
    evidence: list[Line] = [
        e.line for e in ctx.events(*sig.GFX_UNSUPPORTED) if _supported_list(e.fields)
    ]
    evidence += ctx.lines("amd-no-rocblas-target", "hip-no-binary", "rocblas-no-arch")
    # any era's discovery dropping a device it names by gfx as unsupported (0.12's bootstrap:
    # `removing unsupported or overlapping GPU combination ... compute=gfx1031`)
    for line, text, fields in ctx.s.log.records if ctx.s.log else []:
        if any(fields.get(k, "").startswith("gfx") for k in ("compute", "gfx_target", "gpu_type")) \
                and "unsupported" in text.lower() and line not in evidence:
            evidence.append(line)
    has_override = "HSA_OVERRIDE_GFX_VERSION" in (ctx.service_env or {})
    overrides: dict[int, tuple[str, amd.Override]] = {}  # device index -> (gfx, override)
    for index, gfx in enumerate(ctx.amd_gfx):
        mapped = None if amd.supported(gfx, ctx.version) else amd.override_for(gfx, ctx.version)
        if mapped is None:
            continue
        overrides[index] = (gfx, mapped)
        if not evidence and amd.supported(gfx, ctx.version) is False and not has_override:
            evidence.append(
                Line(
                    "knowledge",
                    f"{gfx} is not among Ollama {ctx.version}'s ROCm targets;"
                    f" HSA_OVERRIDE_GFX_VERSION={mapped.value} maps it to a bundled one"
                    f" (source: {mapped.source})",
                )
            )
    if evidence and ctx.amd_gfx and not overrides:
        # no override lands on a bundled target; where this Ollama has Vulkan, vulkan-needed
        # speaks for it. A build of unknown version (a fork, a distro package) that printed its
        # own target list: the list is the fact, and the fix is a build with this target.
        if ctx.version is None or not in_range(ctx.version, VULKAN_BUNDLED, None):
            yield Finding(
                "rocm-gfx-unsupported",
                "error",
                f"The AMD GPU ({', '.join(ctx.amd_gfx)}) is not among this build's ROCm targets,"
                " and no HSA_OVERRIDE_GFX_VERSION maps it onto one of them.",
                evidence,
                Remedy(act.ADVISE, "Use a build (or rocBLAS library set) that has kernels for "
                       f"{', '.join(ctx.amd_gfx)}, or Ollama's Vulkan backend (0.12.11+)."),
            )
        return
    if not evidence or (ctx.amd_gfx and not overrides):
        return  # no override lands on a bundled target: vulkan-needed speaks for it
    values = {o.value for _, o in overrides.values()}
    # one override for every AMD GPU: the global variable, the only one Ollama's own
    # pre-filter reads (ollama/ollama@v0.33.0-rc2:discover/amd.go); a mixed machine needs
    # per-device variables, whose index is the KFD node: advice, not automatic
    mixed = len(values) > 1
    if not values:
        env = {}  # the gfx is not in the evidence: the value cannot be chosen for the user
    elif not mixed:
        env = {"HSA_OVERRIDE_GFX_VERSION": values.pop()}
    else:
        env = {f"HSA_OVERRIDE_GFX_VERSION_{i}": o.value for i, (_, o) in overrides.items()}
    sure = all(o.confidence != "inferred" for _, o in overrides.values())
    automatic = bool(env) and sure and not mixed and all(writable(k, v) for k, v in env.items())
    shown = " ".join(f"{k}={v}" for k, v in env.items()) or (
        "HSA_OVERRIDE_GFX_VERSION for the GPU's gfx (rocminfo names it; 10.3.0 for RDNA2)")
    yield Finding(
        "rocm-gfx-unsupported",
        "error",
        f"The AMD GPU ({', '.join(ctx.amd_gfx) or 'gfx unknown'}) is outside Ollama's ROCm"
        " targets; an override maps it onto a compatible one.",
        evidence,
        Remedy(
            act.SERVICE_ENV,
            f"Set {shown} in an ollama.service drop-in."
            + ("" if sure else " (The value is inferred from the GPU family: try it by hand.)"),
            automatic,
            {"env": env},
        ),
    )


def _supported_list(fields: dict[str, str]) -> str:
    """The targets an `amdgpu is not supported` line lists: in the msg on Linux, in the
    supported_types key on Windows (discover/amd_windows.go)."""
    return (fields.get("supported") or fields.get("supported_types", "")).strip("[] ")


def _bundle(ctx: Context) -> amd.GfxBundle:
    """This Ollama's ROCm targets; a dev build (0.0.0) or an unknown version: the newest."""
    known = ctx.version if ctx.version and ctx.version.release != (0, 0, 0) else None
    return (amd.bundle_for(known) if known else None) or amd.GFX_BUNDLES[-1]


def override_lands_nowhere(ctx: Context) -> Iterator[Finding]:
    """HSA_OVERRIDE_GFX_VERSION set to a target this Ollama has no kernels for (often the
    GPU's own gfx, e.g. 11.0.3 on a gfx1103): discovery passes, the load puts nothing on it."""
    offload = ctx.s.log.layers_offloaded if ctx.s.log else None
    failed = ctx.cpu_fallback or bool(offload and offload[1] and offload[0] == 0)
    known = bool(ctx.version and ctx.version.release != (0, 0, 0))
    if ctx.gpu_used or not (failed or known):
        return  # an unknown build with no failed load: its own target list is unknown
    bundle = _bundle(ctx)
    for event in ctx.events("hsa-override-set"):
        value = event.fields.get("HSA_OVERRIDE_GFX_VERSION", "")
        target = amd.gfx_from_override(value)
        if target is None or target in bundle.targets:
            continue
        physical = [c.compute for c in ctx.compute if (c.compute or "").startswith("gfx")]
        better = [o.value for g in physical for o in [amd.override_for(g, None)] if o]
        yield Finding(
            "rocm-gfx-unsupported",
            "error",
            f"HSA_OVERRIDE_GFX_VERSION={value} presents the GPU as {target}, which Ollama's"
            " ROCm build has no kernels for.",
            [event.line] + [c.raw for c in ctx.compute if c.raw] + ctx.lines("offloaded-layers"),
            Remedy(
                act.SERVICE_ENV,
                f"Set HSA_OVERRIDE_GFX_VERSION to a bundled target ({better[0]} for"
                f" {physical[0]})." if better and physical else
                "Set HSA_OVERRIDE_GFX_VERSION to a target Ollama bundles (see its ROCm list).",
                False,
                {"env": {"HSA_OVERRIDE_GFX_VERSION": better[0]}} if better else {},
            ),
        )
        return


def mixed_override(ctx: Context) -> Iterator[Finding]:
    """One global HSA_OVERRIDE_GFX_VERSION on AMD GPUs of different gfx: it presents every
    one as the same target, and a GPU it does not fit fails (per-device variables
    HSA_OVERRIDE_GFX_VERSION_<n> exist: ROCm's ROCR runtime; ollama#8473, #10033)."""
    rocm = [c for c in ctx.compute if (c.library or "").lower() == "rocm" and c.compute]
    gfx = list(dict.fromkeys(c.compute for c in rocm if c.compute))
    env = ctx.service_env or {}
    lines = ctx.lines("hsa-override-set")
    value = env.get("HSA_OVERRIDE_GFX_VERSION") or next(
        (e.fields.get("HSA_OVERRIDE_GFX_VERSION") for e in ctx.events("hsa-override-set")), None)
    if len(gfx) < 2 or not value or any(k.startswith("HSA_OVERRIDE_GFX_VERSION_") for k in env):
        return
    target = amd.gfx_from_override(value)
    misfit = [g for g in gfx if g != target and getattr(amd.override_for(g, None), "value",
                                                             None) != value]
    if not misfit or target is None:
        return
    per_device = {f"HSA_OVERRIDE_GFX_VERSION_{i}": o.value for i, g in enumerate(gfx)
                  for o in [amd.override_for(g, None)] if o}
    yield Finding(
        "rocm-gfx-unsupported",
        "warning" if ctx.gpu_used else "error",
        f"One global HSA_OVERRIDE_GFX_VERSION={value} presents every AMD GPU ({', '.join(gfx)})"
        f" as {target}; it does not fit {', '.join(misfit)}.",
        lines[:1] + [c.raw for c in rocm if c.raw],
        Remedy(
            act.ADVISE,
            "Give each GPU its own override (HSA_OVERRIDE_GFX_VERSION_<n>, n = the KFD node"
            " order) or hide the GPU it does not fit (ROCR_VISIBLE_DEVICES); a GPU with no"
            " ROCm path can use Vulkan.",
            False,
            {"env": per_device},
        ),
    )


def permissions(ctx: Context) -> Iterator[Finding]:
    evidence = ctx.lines("amd-permission", "amd-tensile-no-devices")
    rocm = ctx.s.rocm
    if rocm and rocm.error and "permission denied" in rocm.error.text.lower():
        evidence.append(rocm.error)  # rocminfo: Unable to open /dev/kfd read-write
    user = ctx.service_user
    ids = next((u for u in ctx.s.users or [] if u.user == user), None)
    static: list[Line] = []
    if ids is not None and (ctx.has_amd or ctx.has_intel):
        for node in ctx.s.dev_nodes or []:
            if not (node.path == "/dev/kfd" or node.path.startswith("/dev/dri/renderD")):
                continue
            if not node.mode or len(node.mode) < 10 or node.mode[7:9] == "rw":
                continue  # world read-write: no group needed
            if node.group and node.group not in ids.groups and node.owner != user:
                static.append(node.raw or Line("dev-nodes.txt", node.path))
        if static and ids.raw:
            static.append(ids.raw)
    for node in ctx.s.dev_nodes or []:
        # root-only (crw-------): no group membership opens it; the node needs a udev rule
        # giving it a group (render/video) and mode 0660 (ROCm/ROCT-Thunk-Interface#36)
        if (node.path == "/dev/kfd" or node.path.startswith("/dev/dri/renderD")) and (
                node.mode and len(node.mode) >= 10 and node.mode[4:10] == "------"
                and node.owner == "root"):
            static.append(node.raw or Line("dev-nodes.txt", node.path))
    if ctx.gpu_compute:
        return
    evidence += static
    if evidence:
        yield Finding(
            "device-permissions",
            "error",
            f"The service user {user!r} cannot open the GPU device nodes"
            " (not in the render/video groups).",
            evidence,
            Remedy(
                act.GPU_GROUPS,
                f"Add {user} (and the login user) to render and video, then restart ollama."
                + (" The node is root-only: add a udev rule giving it a group and mode 0660"
                   ' (KERNEL=="kfd", GROUP="render", MODE="0660").'
                   if any(ln.text.lstrip().startswith("crw-------") for ln in evidence) else ""),
                True,
                {"user": user, "groups": list(GPU_GROUPS)},
            ),
        )


def driver_too_old(ctx: Context) -> Iterator[Finding]:
    if not ctx.has_amd or ctx.gpu_compute:
        return
    evidence = ctx.lines("discovery-timeout")
    if ctx.has_nvidia and not ctx.has_amd:
        return
    if evidence:
        yield Finding(
            "rocm-driver-too-old",
            "error",
            "GPU discovery timed out on an AMD GPU: the amdgpu kernel driver is older than"
            " the ROCm that Ollama bundles.",
            evidence,
            Remedy(act.ADVISE, "Upgrade amdgpu with amdgpu-install (ROCm 7 era) and reboot."),
        )


def windows_hip(ctx: Context) -> Iterator[Finding]:
    evidence = ctx.lines("amd-windows-hip")
    if evidence and not ctx.gpu_compute:
        yield Finding(
            "rocm-hip-sdk-missing",
            "error",
            "(Windows) The HIP runtime Ollama's ROCm backend needs is missing or too old.",
            evidence,
            Remedy(act.ADVISE, "Update the AMD driver / HIP SDK; Linux fixes do not apply."),
        )


RULES = (rocm_missing, gfx_unsupported, override_lands_nowhere, mixed_override, permissions,
         driver_too_old, windows_hip)
