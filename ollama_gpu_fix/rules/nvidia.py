"""NVIDIA rules: no driver, driver too old or mismatched, stale CUDA runtime, UVM after suspend."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ollama_gpu_fix import actions as act
from ollama_gpu_fix.findings import Finding, Remedy
from ollama_gpu_fix.knowledge import nvidia
from ollama_gpu_fix.knowledge import packages as pk
from ollama_gpu_fix.rules.context import Context
from ollama_gpu_fix.snapshot import Line

_LIBCUDA_VERSION = re.compile(r"libcuda\.so\.(\d+)\.(\d+)")
# A CUDA runtime Ollama did not bring: NVIDIA's PhysX folder on Windows' PATH (cudart64_30_9,
# cudart64_65; ollama#4984), a CUDA 10/11 toolkit, a system CUDA under /usr/local/cuda.
_FOREIGN_RUNTIME = re.compile(
    r"PhysX|cudart64_(?:[1-9]\d?|10\d)(?:_\d+)?\.dll|cuda-?1[01]\b|/usr/local/cuda", re.I)
_CC_BELOW_3 = re.compile(r"Compute Capability detected: [12]\.\d")


def _nvml_code_lines(ctx: Context, code: int) -> list[Line]:
    """0.1.x `nvml vram init failure: N` lines with this NVML return code, outside WSL2 (a
    guest's own Linux driver failing there is the WSL2 rules' case)."""
    if ctx.platform == "wsl2":
        return []
    return [e.line for e in ctx.events("nvml-init-code")
            if e.fields.get("nvml_code") == str(code) and "/usr/lib/wsl/" not in e.line.text]


def _driver_remedy(ctx: Context, summary: str) -> Remedy:
    return Remedy(
        act.NVIDIA_DRIVER,
        summary,
        automatic=True,
        params={"branch": nvidia.RECOMMENDED_DRIVER_BRANCH, "reboot": True},
    )


def no_driver(ctx: Context) -> Iterator[Finding]:
    if not ctx.has_nvidia or ctx.platform in ("wsl2", "wsl1"):
        return
    s = ctx.s
    evidence: list[Line] = []
    pci = ctx.pci_gpus(nvidia.NVIDIA_VENDOR)
    unbound = [d for d in pci if d.driver not in ("nvidia",)]
    if pci and unbound and (s.modules is not None or any(d.driver for d in pci) or s.probe):
        loaded = {m.name for m in s.modules or []}
        if "nvidia" not in loaded or any(d.driver == "nouveau" for d in unbound):
            evidence += [d.raw for d in unbound if d.raw]
    if pci and ctx.probe_absent("/proc/driver/nvidia/version"):
        evidence += ctx.probe_line("/proc/driver/nvidia/version")
    smi = s.nvidia_smi
    if smi and smi.error and "communicate with the NVIDIA driver" in smi.error.text:
        evidence.append(smi.error)
    if pci and ctx.tool_absent("nvidia-smi") and evidence:
        evidence += ctx.probe_line("tool.nvidia-smi=")
    # "no nvidia devices detected by library X" / "no CUDA-capable device is detected":
    # libcuda loads but the kernel side is missing (unless the environment hides the GPU)
    evidence += _nvml_code_lines(ctx, nvidia.NVML_DRIVER_NOT_LOADED)
    hidden = "CUDA_VISIBLE_DEVICES" in (ctx.service_env or {})
    if not ctx.gpu_compute and ctx.platform not in ("container",) and not hidden:
        evidence += ctx.lines("nvidia-no-devices", "cuda-no-device")
    # a loaded driver is proof enough, whatever sysfs says of the PCI binding
    if ctx.nvidia_module_version or (smi and smi.driver_version):
        return
    if any((c.library or "").lower() == "cuda" for c in ctx.gpu_compute):
        return
    if evidence:
        secure = bool(s.secure_boot and s.secure_boot.enabled)
        if secure:
            evidence += s.secure_boot.raw[:1]
        mok = "; Secure Boot is on: enroll the DKMS MOK key at that reboot" if secure else ""
        yield Finding(
            "nvidia-no-driver",
            "error",
            "An NVIDIA GPU is present but the NVIDIA kernel driver is not loaded"
            " (not installed, blocked by nouveau or Secure Boot, or its module failed).",
            evidence,
            _driver_remedy(ctx, f"Install the NVIDIA driver (R580 branch) and reboot{mok}."),
        )


def driver_too_old(ctx: Context) -> Iterator[Finding]:
    if not ctx.has_nvidia:
        return
    evidence = ctx.lines(
        "nvidia-driver-too-old",
        "cuda-driver-insufficient",
        "cuda-old-driver",
        "cudart-insufficient-driver",
    )
    evidence += ctx.lines("cuda-kernel-image-invalid")
    stale_lib = ctx.lines("libcuda-missing-symbol")
    if stale_lib and not ctx.gpu_compute:
        evidence += stale_lib  # the only libcuda there is lacks the v3 API: a pre-CUDA-11 driver
    driver = ctx.nvidia_driver
    major = nvidia.driver_major(driver)
    needed = None
    if major is not None:
        caps = ctx.compute_caps or [None]
        need = [nvidia.required_driver(ctx.version, cap) for cap in caps]
        need = [n for n in need if n]
        if need:
            needed = max(n[0] for n in need)
            if major < needed:
                smi = ctx.s.nvidia_smi
                raw = (smi.raw[:1] if smi and smi.raw else []) or (
                    ctx.s.nvidia_kernel.raw[:1] if ctx.s.nvidia_kernel else []
                )
                evidence += raw
                evidence.append(
                    Line(
                        "knowledge",
                        f"Ollama {ctx.version} needs NVIDIA driver >= {needed}"
                        f" (source: {need[0][1]})",
                    )
                )
    if not evidence or (ctx.gpu_compute and not ctx.lines("nvidia-driver-too-old")):
        return
    found = f"NVIDIA driver {driver} is" if driver else "The installed NVIDIA driver is"
    want = f" (>= {needed})" if needed else ""
    yield Finding(
        "nvidia-driver-too-old",
        "error",
        f"{found} older than Ollama's bundled CUDA runtime needs{want}.",
        evidence,
        _driver_remedy(
            ctx,
            f"Upgrade the NVIDIA driver to the R{nvidia.RECOMMENDED_DRIVER_BRANCH} branch"
            " (policy-gated) and reboot; a CUDA 12.4+ toolkit comes with it where asked.",
        ),
    )


def driver_mismatch(ctx: Context) -> Iterator[Finding]:
    run = ctx.s.container_run
    if not ctx.has_nvidia and not (run and any("nvidia" in ln.text for ln in run.errors)):
        return
    evidence = ctx.lines("nvidia-version-mismatch", "cuda-forward-compat")
    evidence += _nvml_code_lines(ctx, nvidia.NVML_LIB_RM_VERSION_MISMATCH)
    s = ctx.s
    run = s.container_run
    # the container runtime's hook names the host's driver: the fault is on the host
    evidence += [ln for ln in (run.errors if run else []) if "version mismatch" in ln.text.lower()]
    if s.nvidia_smi and s.nvidia_smi.error and "mismatch" in s.nvidia_smi.error.text.lower():
        evidence.append(s.nvidia_smi.error)
    module = ctx.nvidia_module_version
    if module and ctx.platform not in ("wsl2", "container"):
        kernel, banner = module
        i386 = {lib.path for lib in s.libs or [] if lib.arch == "i386"}
        for version, line in ctx.nvidia_userspace_versions:
            if line.text in i386 or version == kernel:
                continue
            # the kernel module's banner (/proc or dmesg) against every versioned libcuda /
            # libnvidia-ml seen: a driver upgrade without reboot, or two driver installs
            if version.split(".")[:2] != kernel.split(".")[:2]:
                evidence += [line, banner]
    # a stale libcuda beside a driver that works: on bare metal that is a half-replaced driver
    if ctx.gpu_compute and ctx.platform == "native":
        evidence += ctx.lines("libcuda-missing-symbol")
    if evidence:
        yield Finding(
            "nvidia-driver-mismatch",
            "error",
            "The loaded NVIDIA kernel module and the user-space driver libraries differ"
            " (typically a driver upgrade without reboot).",
            evidence,
            Remedy(act.REBOOT_HOST, "Reboot; if it persists, reinstall matching driver packages."),
        )


def cuda_runtime_mismatch(ctx: Context) -> Iterator[Finding]:
    """A CUDA 11 (or foreign) runtime where Ollama's loader can see it."""
    if not ctx.has_nvidia:
        return
    s = ctx.s
    installed = s.packages or {}
    stale: list[Line] = [Line("packages.txt", f"{name} {installed[name]}")
                         for name in pk.stale_cuda_packages(installed)]
    for tk in s.cuda.toolkits if s.cuda else []:
        if tk.package is None and _stale_version(tk.version):
            stale.append(tk.raw or Line("cuda-toolkits.txt", f"{tk.path} {tk.version}"))
    if s.cuda and _stale_version(s.cuda.nvcc_version):
        stale += s.cuda.raw[:1]
    env = ctx.service_env or {}
    on_path = [line for line in ctx.env_line("LD_LIBRARY_PATH")
               if pk.stale_cuda_paths(_path_words(line.text))]
    on_path += [
        Line("cuda-toolkits.txt", f"ld.so.conf names {path}")
        for path in (s.cuda.ld_conf_paths if s.cuda else [])
        if pk.stale_cuda_paths([path])
    ]
    foreign = [
        e.line
        for e in ctx.events("cuda-lib-load-failed", "gpu-library-picked")
        if _FOREIGN_RUNTIME.search(e.fields.get("library") or e.fields.get("path")
                                   or e.line.text)
    ]
    tiny = [e.line for e in ctx.events("cuda-gpu-too-old") if _CC_BELOW_3.search(e.line.text)]
    if foreign and tiny:
        foreign += tiny  # compute capability 1.x from a runtime that cannot describe the GPU
    if not stale and not foreign and not on_path and not pk.stale_cuda_paths(
            env.get("LD_LIBRARY_PATH", "").split(":")):
        return
    blocking = bool(on_path or foreign) or ctx.era == "A"
    title = ("A CUDA runtime from outside Ollama was picked" if foreign and not stale else
             "A stale CUDA 10/11 toolkit is installed"
             + (" and on the server's library path" if on_path or foreign else ""))
    severity = "error" if blocking and not ctx.gpu_in_use else "warning"
    yield Finding(
        "cuda-runtime-mismatch",
        severity,
        title + "; Ollama must load its own bundled CUDA 12/13 runtime.",
        stale + on_path + foreign,
        Remedy(
            act.CUDA_TOOLKIT,
            "Purge the CUDA 11 toolkit (nvidia-cuda-toolkit, cuda-*-11-*, /usr/local/cuda-11*)"
            " and install cuda-toolkit-12-4 or newer from NVIDIA's repository.",
            automatic=True,
            params={"install": "cuda-toolkit-12-4", "purge": [ln.text.split()[0] for ln in stale]},
        ),
    )


def uvm_broken(ctx: Context) -> Iterator[Finding]:
    evidence = ctx.lines("cuda-unknown-999")
    if evidence and not ctx.gpu_compute:
        yield Finding(
            "nvidia-uvm-broken",
            "error",
            "CUDA initialisation fails with error 999: the nvidia_uvm state is broken,"
            " typically after suspend/resume.",
            evidence,
            Remedy(
                act.NVIDIA_UVM_RELOAD,
                "Stop ollama, `rmmod nvidia_uvm && modprobe nvidia_uvm`, start ollama; set"
                " `options nvidia NVreg_PreserveVideoMemoryAllocations=1` to prevent it.",
                automatic=True,
            ),
        )


def fabric_not_ready(ctx: Context) -> Iterator[Finding]:
    """CUDA 802: the GPUs are there, but an NVSwitch system's fabric is not up yet."""
    evidence = ctx.lines("cuda-system-not-ready")
    if evidence and not ctx.gpu_used:
        yield Finding(
            "other",
            "error",
            "CUDA reports the system is not yet initialized (error 802): on NVSwitch machines"
            " (HGX/DGX) the NVIDIA fabric manager is not running.",
            evidence,
            Remedy(act.ADVISE, "Install and start nvidia-fabricmanager of the same version as the"
                   " driver on the host (systemctl enable --now nvidia-fabricmanager)."),
        )


def gpu_too_old(ctx: Context) -> Iterator[Finding]:
    evidence = [e.line for e in ctx.events("cuda-gpu-too-old")
                if not _CC_BELOW_3.search(e.line.text)]  # 1.x: a foreign runtime's answer
    evidence += ctx.lines("amd-too-old")
    for event in ctx.events("cuda-cc-not-compiled"):
        evidence.append(event.line)
    for cap in ctx.compute_caps:
        try:
            if float(cap) < nvidia.MIN_COMPUTE_CAP:
                evidence.append(Line("nvidia-smi-query.csv", f"compute capability {cap}"))
        except ValueError:
            continue
    if evidence and not ctx.gpu_compute:
        yield Finding(
            "gpu-too-old",
            "error",
            "The GPU's architecture is below what this Ollama build supports.",
            evidence,
            Remedy(
                act.ADVISE,
                "Use a release built for this GPU (compute capability 5.0+ for current"
                " Ollama), or Vulkan where the GPU has it.",
            ),
        )


RULES = (no_driver, driver_too_old, driver_mismatch, cuda_runtime_mismatch, uvm_broken,
         fabric_not_ready, gpu_too_old)


def _stale_version(text: str | None) -> bool:
    release = pk.cuda_release_of_path(f"/cuda-{text}") if text else None
    return pk.is_stale(release)


def _path_words(text: str) -> list[str]:
    """The directories of an LD_LIBRARY_PATH as it appears in an evidence line."""
    return [p for word in text.replace('"', " ").replace("=", " ").split() for p in word.split(":")]
