"""Platform rules: WSL 1/2, containers and Jetson change which GPU path can work at all."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ollama_gpu_fix import actions as act
from ollama_gpu_fix.findings import Finding, Remedy
from ollama_gpu_fix.knowledge import packages as pk
from ollama_gpu_fix.rules.context import Context
from ollama_gpu_fix.snapshot import Line

WSL_LIB = "/usr/lib/wsl/"
# L4T releases Ollama ships a JetPack runner for (cuda_jetpack5 = R35, cuda_jetpack6 = R36):
# ollama/ollama@v0.33.0-rc2:discover/gpu.go (JETSON_JETPACK), scripts/install.sh.
JETPACK_RELEASES = ("R35", "R36")
_LIBCUDA = re.compile(r"lib(?:cuda|nvidia-ml)\.so\.\d+\.\d+")


def wsl1(ctx: Context) -> Iterator[Finding]:
    if ctx.platform == "wsl1":
        yield Finding(
            "wsl1-unsupported",
            "error",
            "This is WSL 1, which has no GPU passthrough.",
            (ctx.s.kernel.raw[:1] if ctx.s.kernel else []) or ctx.platform_trace,
            Remedy(act.ADVISE, "Convert the distribution: `wsl --set-version <distro> 2`."),
        )


def _guest_libcuda(ctx: Context) -> list[Line]:
    out = [
        lib.raw or Line("ldconfig.txt", lib.path)
        for lib in ctx.s.libs or []
        if _LIBCUDA.search(lib.path) and not lib.path.startswith(WSL_LIB)
    ]
    for event in ctx.events("libcuda-missing-symbol", "nvidia-no-devices", "cuda-lib-load-failed",
                            "gpu-library-picked", "gpu-libraries-discovered"):
        paths = event.fields.get("paths") or event.line.text
        # a versioned driver library beside /usr/lib/wsl/lib: the guest has its own driver
        if any(_LIBCUDA.search(p) and not p.startswith(WSL_LIB) for p in paths.split()):
            out.append(event.line)
    return list(dict.fromkeys(out))


def _guest_driver_packages(ctx: Context) -> list[Line]:
    """Packages that put a Linux driver (and its libcuda) into a WSL guest (the one table:
    knowledge.packages, which the purge step reads too)."""
    installed = ctx.s.packages or {}
    return [Line("packages.txt", f"{name} {installed[name]}")
            for name in pk.wsl_guest_driver_packages(installed)]


def wsl2_guest_driver(ctx: Context) -> Iterator[Finding]:
    platform = ctx.platform
    packages = _guest_driver_packages(ctx)
    libs = _guest_libcuda(ctx)
    if platform == "wsl2":
        evidence = packages + libs
    elif platform == "unknown" and ctx.gpu_compute and ctx.lines("libcuda-missing-symbol"):
        # A pre-CUDA-11 libcuda rejected while a CUDA device still comes up with a current
        # driver: two driver stacks at once. On bare metal a driver install replaces libcuda
        # in place; the usual way to get both is a Linux driver in a WSL2 guest beside the
        # Windows one injected at /usr/lib/wsl/lib (ollama#5988).
        evidence = libs
    else:
        return
    if not evidence:
        return
    yield Finding(
        "wsl2-linux-driver-in-guest",
        "error",
        "A Linux NVIDIA driver / libcuda is installed inside WSL2 and shadows the Windows"
        " driver's /usr/lib/wsl/lib/libcuda.so.",
        (ctx.s.kernel.raw[:1] if ctx.s.kernel else []) + evidence,
        Remedy(
            act.WSL2_PURGE_GUEST_DRIVER,
            "Purge the guest's nvidia-driver/libnvidia/cuda-drivers packages and stray"
            " libcuda.so.*; keep only the toolkit from NVIDIA's wsl-ubuntu repository.",
            True,
            {"packages": [ln.text.split()[0] for ln in packages]},
        ),
    )


def wsl2_passthrough(ctx: Context) -> Iterator[Finding]:
    if ctx.platform != "wsl2" or ctx.gpu_compute:
        return
    evidence = [
        e.line
        for e in ctx.events(
            "nvml-init-failed", "cuda-init-500", "nvidia-no-devices", "cuda-no-device"
        )
        # a stale guest libcuda failing is the guest-driver case, not the passthrough
        if not (_LIBCUDA.search(e.line.text) and WSL_LIB not in e.line.text)
    ]
    smi = ctx.s.nvidia_smi
    if smi and smi.error:
        evidence.append(smi.error)
    if ctx.probe_absent("/dev/dxg"):
        evidence += ctx.probe_line("/dev/dxg")
    if ctx.has_amd and not ctx.has_nvidia:
        return
    if evidence:
        # a Linux driver in the guest breaks NVML/libcuda the same way: it is the cause then
        guest = bool(_guest_driver_packages(ctx) or _guest_libcuda(ctx))
        yield Finding(
            "wsl2-passthrough-broken",
            "warning" if guest else "error",
            "The Windows host's GPU driver does not reach this WSL2 guest"
            + (" (the Linux driver installed in the guest is the likely cause)." if guest else "."),
            evidence,
            Remedy(
                act.ADVISE,
                "Update the Windows NVIDIA driver, run `wsl --shutdown`, check /dev/dxg.",
            ),
        )


def wsl2_amd(ctx: Context) -> Iterator[Finding]:
    if ctx.platform == "wsl2" and ctx.has_amd and not ctx.has_nvidia:
        evidence = ctx.probe_line("/dev/kfd") + (ctx.s.kernel.raw[:1] if ctx.s.kernel else [])
        yield Finding(
            "wsl2-amd-unsupported",
            "error",
            "Ollama has no GPU path for AMD GPUs inside WSL2.",
            evidence,
            Remedy(
                act.ADVISE,
                "Run Ollama on the Windows side and point OLLAMA_HOST in WSL at it"
                " (bind it to a specific address on Windows, not 0.0.0.0).",
            ),
        )


def container(ctx: Context) -> Iterator[Finding]:
    s = ctx.s
    in_container = ctx.platform == "container"
    evidence: list[Line] = []
    smi = s.nvidia_smi
    cuda_na = [ln for ln in (smi.raw if smi else []) if re.search(r"CUDA Version:\s*N/A", ln.text)]
    if cuda_na and not ctx.gpu_compute and ctx.platform in ("container", "unknown"):
        # NVML answers but libcuda is absent: the container runtime injected only the utility
        # libraries (NVIDIA_DRIVER_CAPABILITIES without compute; ollama PR #1306)
        evidence += cuda_na
    env = ctx.service_env or {}
    caps = env.get("NVIDIA_DRIVER_CAPABILITIES")
    if caps is not None and not {"compute", "all"} & set(caps.split(",")):
        evidence += ctx.env_line("NVIDIA_DRIVER_CAPABILITIES")
    run = s.container_run
    if run and run.errors:
        evidence += run.errors  # the runtime refused to give the container the GPU
    rocm = s.rocm
    if rocm and rocm.error and "No such file" in rocm.error.text and (
            in_container or "docker exec" in " ".join(r.text for r in rocm.raw[:2])):
        evidence.append(rocm.error)  # /dev/kfd was not passed into the container
    if rocm and rocm.error and "Operation not permitted" in rocm.error.text:
        # EPERM, not EACCES: a device cgroup (a container's device policy) refuses the node;
        # group membership cannot help
        evidence.append(rocm.error)
    if run:
        caps = run.env.get("NVIDIA_DRIVER_CAPABILITIES")
        if caps is not None and not {"compute", "all"} & set(caps.split(",")):
            evidence += run.raw
        if ctx.has_nvidia and not run.gpus_flag and run.runtime != "nvidia":
            evidence += run.raw
        if ctx.has_amd and not any(d.startswith("/dev/kfd") for d in run.devices):
            evidence += run.raw
    if in_container and not ctx.gpu_compute:
        evidence += ctx.lines(
            "amd-kfd-not-loaded", "cuda-init-500", "cuda-no-device", "rocm-no-device"
        )
    handed = bool(run and (run.gpus_flag or run.runtime == "nvidia"
                           or any(d.startswith(("/dev/kfd", "/dev/dri")) for d in run.devices)))
    if in_container and ctx.cpu_fallback and not ctx.gpu_compute and not evidence \
            and not handed:
        # inside a container the GPU's kernel driver is the host's: a discovery that found
        # nothing is first of all a container that was not handed the GPU
        evidence += ctx.lines("no-compatible-gpus") + ctx.placement.evidence[:2]
        evidence += ctx.platform_trace if evidence else []
    if in_container and not ctx.gpu_compute and s.dev_nodes is not None:
        nodes = {d.path for d in s.dev_nodes}
        if ctx.has_nvidia and not any(p.startswith("/dev/nvidia") for p in nodes):
            evidence.append(Line("dev-nodes.txt", "no /dev/nvidia* device node in the container"))
        if ctx.has_amd and "/dev/kfd" not in nodes:
            evidence.append(Line("dev-nodes.txt", "no /dev/kfd device node in the container"))
    if evidence:
        yield Finding(
            "container-no-gpu-access",
            "error",
            "Ollama runs in a container that was not given the GPU (or only NVML, not CUDA).",
            list(dict.fromkeys(evidence)),
            Remedy(
                "container-toolkit",
                "Install nvidia-container-toolkit, `nvidia-ctk runtime configure`, and run with"
                " --gpus=all and NVIDIA_DRIVER_CAPABILITIES=compute,utility (AMD: --device"
                " /dev/kfd --device /dev/dri).",
                automatic=in_container is False,
            ),
        )


def jetson(ctx: Context) -> Iterator[Finding]:
    """Jetson with Ollama's generic CUDA runtimes: they fail against the Tegra driver (error
    35, "driver too old or missing", with a working driver), the JetPack build does not."""
    if not ctx.jetson or ctx.gpu_in_use:
        return
    tegra = ctx.s.tegra
    release = tegra.release if tegra else None
    libs = ctx.s.ollama_libs
    paths = " ".join(e.fields.get("paths", "") for e in ctx.events("gpu-libraries-discovered"))
    has_jetpack = bool(libs and any("jetpack" in v for v in libs.variants)) or "jetpack" in paths
    generic = (libs is not None or bool(paths)) and not has_jetpack
    supported = release in (None, *JETPACK_RELEASES)
    failing = ctx.cpu_fallback or ctx.lines(
        "cuda-lib-load-failed", "cuda-no-device", "cuda-driver-insufficient",
        "cudart-insufficient-driver", "cudart-set-device-error", "jetpack-not-detected",
    )
    if failing and (not supported or generic):
        smi = ctx.s.nvidia_smi
        marker = (tegra.raw[:1] if tegra else []) + [
            ln for ln in (smi.raw if smi else []) if "nvgpu" in ln.text][:1]
        yield Finding(
            "jetson-unsupported",
            "error",
            f"Jetson{' ' + release if release else ''} running Ollama's generic CUDA runtimes;"
            " they need the JetPack-specific build.",
            marker + (libs.raw[:3] if libs else []) + ctx.lines(
                "gpu-libraries-discovered", "cudart-insufficient-driver", "jetpack-not-detected"),
            Remedy(
                act.ADVISE, "Install Ollama's JetPack 5/6 bundle (R35/R36) or set JETSON_JETPACK."
            ),
        )


def jetson_permissions(ctx: Context) -> Iterator[Finding]:
    """Tegra's memory manager: CUDA cannot start unless the user can open /dev/nvmap (the
    video group on L4T)."""
    evidence = ctx.lines("tegra-nvmap-permission")
    if evidence and not ctx.gpu_in_use:
        user = ctx.service_user
        yield Finding(
            "device-permissions",
            "error",
            f"The service user {user!r} cannot open the Jetson's /dev/nvmap (not in video).",
            evidence,
            Remedy(act.GPU_GROUPS, f"Add {user} to video (and render), then restart ollama.",
                   True, {"user": user, "groups": ["render", "video"]}),
        )


RULES = (wsl1, wsl2_amd, wsl2_guest_driver, wsl2_passthrough, container, jetson,
         jetson_permissions)
