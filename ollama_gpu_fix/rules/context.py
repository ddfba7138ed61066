"""Facts derived once from a Snapshot, shared by every rule (so no rule re-derives them)."""

from __future__ import annotations

import re
from functools import cached_property
from typing import TYPE_CHECKING

from ollama_gpu_fix.hostplatform import platform
from ollama_gpu_fix.knowledge import amd, nvidia
from ollama_gpu_fix.knowledge import error_families as fam
from ollama_gpu_fix.knowledge import log_signatures as sig
from ollama_gpu_fix.knowledge.versions import era_of, parse_version
from ollama_gpu_fix.parsers.traces import IMAGE_TAG
from ollama_gpu_fix.placement import DETECTED, PLANNED, Placement, determine
from ollama_gpu_fix.snapshot import ComputeDevice, Line, LogEvent, Snapshot

if TYPE_CHECKING:
    from packaging.version import Version  # built by knowledge.versions, when there is one

INTEL_VENDOR = "8086"
_CC = re.compile(r"compute capability (\d{1,2}\.\d)")
_GFX = re.compile(r"\bgfx[0-9a-f]{3,4}\b")


class Context:
    """Read-only view over a Snapshot with the derived facts rules ask about."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.s = snapshot

    # ---- log ----------------------------------------------------------------------------
    def events(self, *ids: str) -> list[LogEvent]:
        log = self.s.log
        return [e for e in log.events if e.signature in ids] if log else []

    def lines(self, *ids: str) -> list[Line]:
        return [e.line for e in self.events(*ids)]

    @cached_property
    def compute(self) -> list[ComputeDevice]:
        return list(self.s.log.compute) if self.s.log else []

    @cached_property
    def gpu_compute(self) -> list[ComputeDevice]:
        return [c for c in self.compute if not c.is_cpu]

    # ---- Ollama ---------------------------------------------------------------------------
    @cached_property
    def version(self) -> Version | None:
        v = self.s.ollama_version
        return parse_version(v.version if v else None) or parse_version(
            self.s.log.version if self.s.log else None
        ) or self._image_version()

    def _image_version(self) -> Version | None:
        """The version an `ollama/ollama:X.Y.Z` image tag names (a container paste). Never on
        a live host: there the tag could come from a prompt in the log, text an HTTP client
        writes, and the probe reads the version from the binary itself."""
        if self.s.probe:
            return None
        line = dict(self.s.traces or []).get("image")
        found = IMAGE_TAG.search(line.text) if line else None
        return parse_version(found.group(1)) if found else None

    @cached_property
    def era(self) -> str | None:
        era = era_of(self.version)
        if era or not self.s.log:
            return era
        lines = [e.line for e in self.s.log.events[:50]] + [c.raw for c in self.compute if c.raw]
        text = "\n".join(line.text for line in lines)
        if "libdirs=" in text or "discovering available GPUs" in text:
            return "B"  # B or C: the runner-era field set
        if "source=gpu.go" in text or "source=amd_linux.go" in text:
            return "A"
        return None

    @cached_property
    def service_user(self) -> str:
        unit, proc = self.s.unit, self.s.process
        return (
            (unit.user if unit and unit.user else None)
            or (proc.user if proc and proc.user else None)
            or "ollama"
        )

    @cached_property
    def service_env(self) -> dict[str, str] | None:
        """The environment the server really has: its /proc, else systemd's, else the log's."""
        proc = self.s.process
        if proc and proc.pid is not None and proc.environment is not None:
            return dict(proc.environment)
        unit = self.s.unit
        if unit and (unit.environment or unit.active_state):
            return dict(unit.environment)
        if unit and (unit.fragment or unit.dropins):
            merged: dict[str, str] = {}  # what systemd will pass once (re)loaded
            for f in ([unit.fragment] if unit.fragment else []) + unit.dropins:
                merged.update(f.environment)
            return merged
        if self.s.log and self.s.log.server_env is not None:
            # the log prints every known variable, unset ones with an empty value
            return {k: v for k, v in self.s.log.server_env.items() if v not in ("", "[]")}
        return None

    def env_line(self, name: str) -> list[Line]:
        """Evidence lines where a variable is set for the server."""
        out: list[Line] = []
        proc, unit = self.s.process, self.s.unit
        if proc:
            out += [r for r in proc.raw if f"{name}=" in r.text]
        if unit:
            for f in ([unit.fragment] if unit.fragment else []) + unit.dropins:
                out += [r for r in f.lines if name in r.text]
            if not out:
                out += [r for r in unit.raw if name in r.text and r.source.startswith("systemctl")]
        if not out and self.s.log and self.s.log.server_env_line and self.s.log.server_env:
            if self.s.log.server_env.get(name):
                out.append(self.s.log.server_env_line)
        return out

    # ---- hardware -----------------------------------------------------------------------------
    def pci_gpus(self, vendor: str) -> list:
        return [d for d in (self.s.pci or []) if d.is_gpu and d.vendor_id == vendor]

    @cached_property
    def has_nvidia(self) -> bool:
        smi = self.s.nvidia_smi
        return bool(
            self.pci_gpus(nvidia.NVIDIA_VENDOR)
            or (smi and (smi.gpus or smi.driver_version or smi.error))
            or self.s.nvidia_kernel
            or any((c.library or "").lower() == "cuda" for c in self.compute)
            or any(d.path.startswith("/dev/nvidia") for d in self.s.dev_nodes or [])
            or self.events(*sig.NVIDIA_EVENTS)
        )

    @cached_property
    def amd_gfx(self) -> list[str]:
        """Physical gfx targets of AMD GPUs (KFD first: it is what Ollama reads)."""
        found: list[str] = []
        rocm = self.s.rocm
        for agent in (rocm.kfd_nodes + rocm.agents) if rocm else []:
            if agent.gfx and agent.gfx not in found:
                found.append(agent.gfx)
        for event in self.events(*sig.GFX_NAMED):
            gfx = event.fields.get("gpu_type") or event.fields.get("gfx_target")
            if gfx and _GFX.fullmatch(gfx) and gfx not in found:
                found.append(gfx)
        for _line, _text, fields in self.s.log.records if self.s.log else []:
            for key in ("compute", "gfx_target", "gpu_type"):  # any era's device fields
                gfx = fields.get(key) or ""
                if _GFX.fullmatch(gfx) and gfx not in found:
                    found.append(gfx)
        return found

    @cached_property
    def has_amd(self) -> bool:
        rocm = self.s.rocm
        return bool(
            self.pci_gpus(amd.AMD_VENDOR)
            or (rocm and (rocm.agents or rocm.kfd_nodes))
            or self.amd_gfx
            or any((c.library or "").lower() == "rocm" for c in self.compute)
            or self.events(*sig.AMD_EVENTS)
        )

    @cached_property
    def has_intel(self) -> bool:
        vk = self.s.vulkan
        return bool(
            self.pci_gpus(INTEL_VENDOR)
            or (vk and any(d.vendor_id == INTEL_VENDOR for d in vk.devices))
        )

    @cached_property
    def nvidia_driver(self) -> str | None:
        smi, kern = self.s.nvidia_smi, self.s.nvidia_kernel
        if smi and smi.driver_version:
            return smi.driver_version
        if kern and kern.version:
            return kern.version
        for event in self.events("nvidia-driver-too-old"):
            if event.fields.get("driver"):
                return event.fields["driver"]
        return None

    @cached_property
    def compute_caps(self) -> list[str]:
        smi = self.s.nvidia_smi
        caps = [g.compute_cap for g in (smi.gpus if smi else []) if g.compute_cap]
        caps += [
            c.compute for c in self.compute if (c.library or "").lower() == "cuda" and c.compute
        ]
        for _line, text, _fields in self.s.log.records if self.s.log else []:
            found = _CC.search(text) if "compute capability" in text else None
            if found:  # ggml_cuda_init's `Device 0: Tesla K80, compute capability 3.7`
                caps.append(found.group(1))
        return caps

    @cached_property
    def hardware_known(self) -> bool:
        """Did the evidence include a hardware inventory (so absence of a GPU means something)?"""
        return self.s.pci is not None

    # ---- outcome ------------------------------------------------------------------------------
    @cached_property
    def placement(self) -> Placement:
        """Where the model ran, from quantities (placement.py)."""
        return determine(self.s)

    @cached_property
    def component_errors(self) -> list[tuple[fam.Family, fam.Meaning, str, Line]]:
        """Every error line of a known component family (knowledge/error_families.py): the
        log's trusted text, dmesg, nvidia-smi. Scanned once per diagnosis; rules/path.py's
        rules all read it."""
        texts: list[tuple[str, Line]] = []
        if self.s.log:
            texts += [(text, line) for line, text, _ in self.s.log.records]
        texts += [(line.text, line) for line in (self.s.dmesg or [])[:5000]]
        smi = self.s.nvidia_smi
        if smi and smi.error:
            texts.append((smi.error.text, smi.error))
        out = []
        for text, line in texts:
            family = fam.match(text)
            if family:
                meaning, label = fam.meaning(family, text)
                out.append((family, meaning, label, line))
        return out

    @cached_property
    def observed_on_gpu(self) -> float | None:
        """Share of the model in VRAM as measured on the live host (snapshot.observation: after
        a bounded generation, from the service itself); 0.0 when the service's runner holds no
        GPU memory in the GPU's own list; None when nothing was measured."""
        obs = self.s.observation
        if obs is None or obs.untrusted or obs.on_gpu is None:
            return None
        return 0.0 if obs.runner_on_gpu is False else obs.on_gpu

    @cached_property
    def gpu_in_use(self) -> bool:
        """Evidence that Ollama found a GPU and, unless a load says otherwise, uses it."""
        if self.placement.where in ("cpu", "partial") and self.placement.rank >= PLANNED:
            return False  # seen or planned off the GPU: never ok-gpu, whatever discovery says
        offload = self.s.log.layers_offloaded if self.s.log else None
        if offload and offload[1] > 0 and offload[0] == 0 and not self.gpu_used:
            return False  # found, but the load put nothing on it
        if self.events("ggml-init-failed") and not self.gpu_used:
            return False  # discovery found it, the runner's own backend could not start it
        detected = self.placement.where == "gpu" and self.placement.rank >= DETECTED
        return bool(self.gpu_compute or self.gpu_used or detected)

    @cached_property
    def gpu_used(self) -> bool:
        """A model was seen on a GPU: /api/ps or `ollama ps`, layers offloaded, a GPU backend
        initialised, the scheduler placing the load on a GPU. Detection alone is not use."""
        models = self.s.loaded_models or []
        log = self.s.log
        if self.placement.rank >= PLANNED:
            return self.placement.where in ("gpu", "partial")
        offload = log.layers_offloaded if log else None
        if offload and offload[1] > 0:
            return offload[0] > 0
        return bool(
            any((m.gpu_fraction or 0) > 0 for m in models)
            or self.events("cuda-found")
            or (log and log.scheduled)
        )

    @cached_property
    def cpu_fallback(self) -> bool:
        """Live evidence that Ollama ended on the CPU."""
        log = self.s.log
        models = self.s.loaded_models or []
        if self.placement.where == "cpu":
            return True
        return (
            bool(
                (self.compute and not self.gpu_compute)
                or (log and log.total_vram and log.total_vram.strip() in ("0 B", "0B"))
                or self.events("no-compatible-gpus")
                or (models and all(m.gpu_fraction == 0 for m in models))
            )
            and not self.gpu_compute
        ) or self.observed_on_gpu == 0  # measured, even where discovery found a GPU

    @cached_property
    def platform(self) -> str:
        """Where the host runs; a bundle without OS facts may still name /usr/lib/wsl paths,
        Windows paths and DLLs, or NVML's Windows-only refusal."""
        where = platform(self.s)  # OS facts, else a trace in the pasted files
        if where != "unknown":
            return where
        smi = self.s.nvidia_smi
        if smi and smi.error and "blocked by the operating system" in smi.error.text:
            return "wsl2"  # NVML_ERROR_OPERATING_SYSTEM: GPU-PV refusing the guest
        return where

    @cached_property
    def platform_trace(self) -> list[Line]:
        """The pasted line that placed the platform (when no OS facts did)."""
        traced = dict(self.s.traces or [])
        return [traced[self.platform]] if self.platform in traced else []

    @cached_property
    def jetson(self) -> bool:
        """A Jetson (Tegra iGPU): nv_tegra_release, nvidia-smi's `Orin (nvgpu)`, nvmap."""
        smi = self.s.nvidia_smi
        names = [g.name or "" for g in (smi.gpus if smi else [])]
        names += [ln.text for ln in (smi.raw if smi else []) if "nvgpu" in ln.text]
        names += [c.name or "" for c in self.compute]
        tegra_lib = any("/tegra/libcuda" in text for _l, text, _f in
                        (self.s.log.records if self.s.log else []))
        return bool(
            (self.s.tegra and self.s.tegra.release)
            or any("nvgpu" in n or n.startswith(("Orin", "Xavier")) for n in names)
            or self.events("tegra-nvmap-permission")
            or tegra_lib  # JetPack's driver lives in /usr/lib/aarch64-linux-gnu/tegra
        )

    @cached_property
    def nvidia_module_version(self) -> tuple[str, Line] | None:
        """The loaded kernel module's version: /proc/driver/nvidia/version, else dmesg."""
        kern = self.s.nvidia_kernel
        if kern and kern.version:
            return kern.version, (kern.raw[0] if kern.raw else Line("proc", kern.version))
        for line in self.s.dmesg or []:
            found = nvidia.KERNEL_MODULE_LINE.search(line.text)
            if found:
                return found.group("version"), line
        return None

    @cached_property
    def nvidia_userspace_versions(self) -> list[tuple[str, Line]]:
        """Versions of libcuda.so.<v> / libnvidia-ml.so.<v> seen (libs, log paths, smi)."""
        out: list[tuple[str, Line]] = []
        for lib in self.s.libs or []:
            found = nvidia.VERSIONED_LIB.search(lib.path)
            if found:
                out.append((found.group("version"), lib.raw or Line("ldconfig.txt", lib.path)))
        for event in self.s.log.events if self.s.log else []:
            for found in nvidia.VERSIONED_LIB.finditer(event.line.text):
                out.append((found.group("version"), event.line))
        return out

    def probe_absent(self, path: str) -> bool:
        """The live probe looked for this file and it was not there."""
        return bool(self.s.probe and path in self.s.probe.absent_files)

    def tool_absent(self, tool: str) -> bool:
        return bool(
            self.s.probe and tool in self.s.probe.tools and self.s.probe.tools[tool] is None
        )

    def probe_line(self, needle: str) -> list[Line]:
        return [r for r in (self.s.probe.raw if self.s.probe else []) if needle in r.text]
