"""AMD rules: ROCm missing, gfx outside Ollama's list, device permissions, old amdgpu driver."""

from __future__ import annotations

from collections.abc import Iterator

from ollama_gpu_fix.findings import Finding, Remedy
from ollama_gpu_fix.knowledge import amd
from ollama_gpu_fix.knowledge.environment import writable
from ollama_gpu_fix.rules.context import Context
from ollama_gpu_fix.snapshot import Line

GPU_GROUPS = ("render", "video")


def rocm_missing(ctx: Context) -> Iterator[Finding]:
    if not ctx.has_amd or ctx.platform == "wsl2":
        return
    evidence: list[Line] = []
    for event in ctx.events("amd-gfx-unsupported"):
        if not event.fields.get("supported", "").strip():
            evidence.append(event.line)  # "supported types:[]": no rocBLAS files at all
    evidence += ctx.lines("amd-no-rocm-lib", "amd-comgr")
    if ctx.platform != "container":
        evidence += ctx.lines("amd-kfd-not-loaded")
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
                "rocm",
                "Install ROCm 6.1.2+ (libamdhip64, comgr, rocBLAS) and Ollama's ROCm bundle.",
                automatic=True,
            ),
        )


def gfx_unsupported(ctx: Context) -> Iterator[Finding]:
    """A gfx Ollama does not bundle, which a HSA_OVERRIDE_GFX_VERSION maps onto one it does."""
    if not ctx.has_amd or ctx.gpu_compute:
        return
    evidence: list[Line] = [
        e.line for e in ctx.events("amd-gfx-unsupported") if e.fields.get("supported", "").strip()
    ]
    evidence += ctx.lines("amd-no-rocblas-target", "hip-no-binary")
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
    if not evidence or (ctx.amd_gfx and not overrides):
        return  # no override lands on a bundled target: vulkan-needed speaks for it
    values = {o.value for _, o in overrides.values()}
    # one override for every AMD GPU: the global variable, the only one Ollama's own
    # pre-filter reads (ollama/ollama@v0.33.0-rc2:discover/amd.go); a mixed machine needs
    # per-device variables, whose index is the KFD node: advice, not automatic
    mixed = len(values) > 1
    if not mixed:
        env = {"HSA_OVERRIDE_GFX_VERSION": values.pop()}
    else:
        env = {f"HSA_OVERRIDE_GFX_VERSION_{i}": o.value for i, (_, o) in overrides.items()}
    sure = all(o.confidence != "inferred" for _, o in overrides.values())
    automatic = bool(env) and sure and not mixed and all(writable(k, v) for k, v in env.items())
    shown = " ".join(f"{k}={v}" for k, v in env.items()) or "HSA_OVERRIDE_GFX_VERSION"
    yield Finding(
        "rocm-gfx-unsupported",
        "error",
        f"The AMD GPU ({', '.join(ctx.amd_gfx) or 'gfx unknown'}) is outside Ollama's ROCm"
        " targets; an override maps it onto a compatible one.",
        evidence,
        Remedy(
            "service-env",
            f"Set {shown} in an ollama.service drop-in."
            + ("" if sure else " (The value is inferred from the GPU family: try it by hand.)"),
            automatic,
            {"env": env},
        ),
    )


def permissions(ctx: Context) -> Iterator[Finding]:
    evidence = ctx.lines("amd-permission", "amd-tensile-no-devices")
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
                "service-groups",
                f"Add {user} (and the login user) to render and video, then restart ollama.",
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
            Remedy("advise", "Upgrade amdgpu with amdgpu-install (ROCm 7 era) and reboot."),
        )


def windows_hip(ctx: Context) -> Iterator[Finding]:
    evidence = ctx.lines("amd-windows-hip")
    if evidence and not ctx.gpu_compute:
        yield Finding(
            "rocm-hip-sdk-missing",
            "error",
            "(Windows) The HIP runtime Ollama's ROCm backend needs is missing or too old.",
            evidence,
            Remedy("advise", "Update the AMD driver / HIP SDK; Linux fixes do not apply."),
        )


RULES = (rocm_missing, gfx_unsupported, permissions, driver_too_old, windows_hip)
