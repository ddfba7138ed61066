"""Render a diagnosis for people (text) and for programs (JSON). Pure: no host access."""

from __future__ import annotations

import json
import re
from typing import Any

from ollama_gpu_fix.findings import Diagnosis
from ollama_gpu_fix.hostplatform import platform
from ollama_gpu_fix.records import fields, is_record
from ollama_gpu_fix.snapshot import Line, Snapshot

NVIDIA, AMD, INTEL = "10de", "1002", "8086"
# Characters a terminal acts on: C0/C1 controls (escape sequences, carriage return, bell) and
# the Unicode bidi controls that reorder what a reader sees (CVE-2021-42574 "Trojan Source").
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """Text safe to print: every control character shown as an escape, never acted on."""
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                            else f"\\u{ord(m.group()):04x}", text)
VENDOR_NAMES = {NVIDIA: "NVIDIA", AMD: "AMD", INTEL: "Intel", "1af4": "virtio", "1234": "QEMU"}


def _plain(value: Any) -> Any:
    if isinstance(value, Line):
        return str(value)
    if is_record(value):
        return {name: _plain(getattr(value, name)) for name in fields(value)}
    if hasattr(type(value), "__dataclass_fields__"):
        import dataclasses  # only a dataclass given here needs it (diagnose-bundle gives none)

        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def summary(snapshot: Snapshot) -> dict[str, Any]:
    """The facts a user wants first: what machine, which GPUs, which driver stack, which Ollama."""
    gpus: list[dict[str, Any]] = []
    for dev in snapshot.pci or []:
        if dev.is_gpu:
            gpus.append(
                {
                    "address": dev.address,
                    "vendor": VENDOR_NAMES.get(dev.vendor_id or "", dev.vendor_id),
                    "device_id": dev.device_id,
                    "name": dev.name,
                    "driver": dev.driver,
                }
            )
    smi = snapshot.nvidia_smi
    nvidia = [
        {
            "name": g.name,
            "memory_total_mib": g.memory_total_mib,
            "compute_cap": g.compute_cap,
            "bus_id": g.bus_id,
        }
        for g in (smi.gpus if smi else [])
    ]
    rocm = snapshot.rocm
    unit = snapshot.unit
    osr = snapshot.os
    version = snapshot.ollama_version
    return {
        "os": (osr.pretty_name or " ".join(filter(None, [osr.id, osr.version_id])))
        if osr
        else None,
        "kernel": snapshot.kernel.release if snapshot.kernel else None,
        "platform": platform(snapshot),
        "systemd": snapshot.probe.systemd if snapshot.probe else None,
        "gpus": gpus,
        "nvidia_gpus": nvidia,
        "nvidia_driver": (smi.driver_version if smi else None)
        or (snapshot.nvidia_kernel.version if snapshot.nvidia_kernel else None),
        "cuda_driver_api": smi.cuda_version if smi else None,
        "cuda_toolkit": snapshot.cuda.nvcc_version if snapshot.cuda else None,
        "rocm": rocm.version if rocm else None,
        "amd_gfx": sorted({a.gfx for a in (rocm.agents + rocm.kfd_nodes) if a.gfx}) if rocm else [],
        "ollama_version": version.version if version else None,
        "ollama_installed": _ollama_installed(snapshot),
        # where the model ran, measured on the live host (None: not observed)
        "observed": snapshot.observation.summary if snapshot.observation else None,
        "service": None
        if unit is None
        else {
            "active": unit.active_state,
            "sub": unit.sub_state,
            "user": unit.user,
            "dropins": unit.dropin_paths,
        },
    }


def _ollama_installed(snapshot: Snapshot) -> bool | None:
    if snapshot.probe and "ollama" in snapshot.probe.tools:
        return snapshot.probe.tools["ollama"] is not None
    if snapshot.ollama_version and snapshot.ollama_version.client_version:
        return True
    return None


def to_json(snapshot: Snapshot, diagnosis: Diagnosis, **extra: Any) -> dict[str, Any]:
    """The JSON report: the keys ARCHITECTURE.md promises, plus a human summary."""
    return {
        "findings": [f.to_json() for f in diagnosis.findings],
        "primary": diagnosis.primary,
        "placement": diagnosis.placement,
        "chain": diagnosis.chain,
        "summary": summary(snapshot),
        "problems": list(snapshot.problems),
        "snapshot": _plain(snapshot),
        **extra,
    }


def dumps(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=False, default=str)


def render_text(snapshot: Snapshot, diagnosis: Diagnosis, host: str | None = None) -> str:
    """A short report: the machine, then findings (primary first) with evidence and the fix."""
    s = summary(snapshot)
    out: list[str] = []
    title = f"== {host} ==" if host else "== ollama-gpu-fix diagnosis =="
    out.append(title)
    out.append(f"OS:        {s['os'] or 'unknown'}  (kernel {s['kernel'] or 'unknown'})")
    out.append(
        f"Platform:  {s['platform']}" + ("" if s["systemd"] is not False else ", no systemd")
    )
    if s["nvidia_gpus"]:
        for g in s["nvidia_gpus"]:
            mem = f", {g['memory_total_mib']} MiB" if g["memory_total_mib"] else ""
            cc = f", compute capability {g['compute_cap']}" if g["compute_cap"] else ""
            out.append(f"GPU:       {g['name']}{mem}{cc}")
    else:
        for g in s["gpus"]:
            out.append(
                f"GPU:       {g['vendor']} {g['name'] or g['device_id'] or ''} at {g['address']}"
                f" (driver {g['driver'] or 'none'})"
            )
    if not s["gpus"] and not s["nvidia_gpus"]:
        out.append("GPU:       none found" if snapshot.pci is not None else "GPU:       not known")
    out.append(
        "Driver:    NVIDIA {d}, CUDA {c}; toolkit {t}; ROCm {r}{g}".format(
            d=s["nvidia_driver"] or "-",
            c=s["cuda_driver_api"] or "-",
            t=s["cuda_toolkit"] or "-",
            r=s["rocm"] or "-",
            g=(" (" + ", ".join(s["amd_gfx"]) + ")") if s["amd_gfx"] else "",
        )
    )
    installed = s["ollama_installed"]
    if installed is False:
        out.append("Ollama:    not installed")
    else:
        svc = s["service"]
        if svc and svc["active"]:
            state = f"service {svc['active']}/{svc['sub']}"
        elif snapshot.unit is not None and snapshot.unit.missing:
            state = "no ollama.service"
        else:
            state = "service state not known"
        out.append(f"Ollama:    {s['ollama_version'] or 'version unknown'}, {state}")
    if s["observed"]:
        out.append(f"Observed:  {s['observed'][:300]}")
    out.append(f"Primary:   {diagnosis.primary}")
    if diagnosis.placement:
        ran = diagnosis.placement
        how = "; ".join(dict.fromkeys(
            src["detail"] for src in ran["sources"] if src["rank"] == ran["rank"]
            and src["where"] == ran["where"]))
        out.append(f"Model ran: {ran['where']}" + (f" ({ran['rank']}: {how})" if how else ""))
    chain = diagnosis.chain or []
    first = next((link for link in chain if link["state"] == "broken"),
                 next((link for link in chain if link["state"] == "unknown"), None))
    if first:
        out.append(f"Path:      first {first['state']} link: {first['link']}")
    ordered = sorted(diagnosis.findings, key=lambda f: f.code != diagnosis.primary)
    for finding in ordered:
        out.append(f"  [{finding.severity}] {finding.code}: {finding.summary}")
        for line in finding.evidence[:6]:
            out.append(f"      | {str(line)[:300]}")
        if finding.remedy:
            how = "fix" if finding.remedy.automatic else "advice"
            out.append(f"      {how}: {finding.remedy.summary}")
    if snapshot.problems:
        out.append("Not read:")
        out += [f"  - {problem[:300]}" for problem in snapshot.problems[:20]]
        if len(snapshot.problems) > 20:
            out.append(f"  - ... and {len(snapshot.problems) - 20} more (see the JSON report)")
    return "\n".join(printable(line) for line in out)
