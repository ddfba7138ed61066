"""rocminfo.txt, rocm-smi.txt, rocm-version.txt, kfd-topology.txt.

What an AMD diagnosis needs is the gfx target of each GPU (does Ollama's bundle cover it, or
is an HSA_OVERRIDE_GFX_VERSION needed?) and whether the ROCm runtime can open /dev/kfd at all.
KFD topology gives the target even without ROCm: gfx_target_version = major*10000 +
minor*100 + stepping -> "gfx" + major + hex(minor) + hex(stepping) (100301 -> gfx1031,
90010 -> gfx90a); nodes with simd_count 0 are CPUs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ollama_gpu_fix.parsers.kernel import first_int, section_lines
from ollama_gpu_fix.snapshot import AmdAgent, Line, Rocm

_GFX = re.compile(r"\bgfx[0-9a-f]{3,4}\b")
_AGENT = re.compile(r"^\*+\s*$|^Agent\s+\d+\s*$")
_ERRORS = re.compile(
    r"Unable to open /dev/kfd|ROCk module is NOT loaded|HSA_STATUS_ERROR|hsa api call failure"
    r"|Permission denied|command not found|No such file|not member of|Failed to get"
    r"|Driver not initialized|amdgpu not found|ERROR",
    re.I,
)
_VENDOR_NAMES = {"amd": "1002", "intel": "8086", "nvidia": "10de"}


def gfx_from_target_version(value: int | None) -> str | None:
    """KFD gfx_target_version (100301) -> gfx target (gfx1031); None for 0 or nonsense."""
    if value is None or value <= 0:
        return None
    major, minor, stepping = value // 10000, (value // 100) % 100, value % 100
    if major > 63 or minor > 15 or stepping > 15:
        return None
    return f"gfx{major}{minor:x}{stepping:x}"


def _agents_from_rocminfo(lines: list[tuple[Line, str]], rocm: Rocm) -> None:
    block: dict[str, tuple[str, Line]] = {}
    blocks = [block]
    for line, text in lines:
        if _AGENT.match(text):
            if block:
                block = {}
                blocks.append(block)
            continue
        key, sep, value = text.partition(":")
        key, value = key.strip().lower(), value.strip()
        if sep and key and value and key not in block:
            block[key] = (value, line)
        if rocm.error is None and _ERRORS.search(text):
            rocm.error = line
            rocm.raw.append(line)
    for blk in blocks:
        kind = blk.get("device type", ("", None))[0].upper()
        name = blk.get("name", ("", None))[0]
        gfx = _GFX.search(name)
        if kind != "GPU" and not (kind == "" and gfx):
            continue
        raw = blk.get("name", (None, None))[1]
        chip = blk.get("chip id", ("", None))[0]
        chip_hex = re.search(r"0x([0-9a-fA-F]+)", chip)
        vendor = blk.get("vendor name", ("", None))[0].lower()
        agent = AmdAgent(
            gfx=gfx.group() if gfx else None,
            name=blk.get("marketing name", (None, None))[0],
            uuid=blk.get("uuid", (None, None))[0],
            node=first_int(blk.get("node", ("", None))[0]),
            vendor_id=_VENDOR_NAMES.get(vendor),
            device_id=chip_hex.group(1).lower().zfill(4) if chip_hex else None,
            raw=raw,
        )
        rocm.agents.append(agent)
        if raw is not None:
            rocm.raw.append(raw)


def _kfd_nodes(lines: list[tuple[Line, str]], rocm: Rocm) -> None:
    nodes: dict[int, dict[str, tuple[int | None, Line]]] = {}
    current: int | None = None
    for line, text in lines:
        header = re.match(r"^==\s*node\s+(\d+)", text)
        if header:
            current = int(header.group(1))
            nodes.setdefault(current, {})
            continue
        # `grep gfx_target_version /sys/class/kfd/kfd/topology/nodes/*/properties` (pasted)
        grep = re.match(r"^\S*/nodes/(\d+)/properties:(.*)$", text)
        if grep:
            current = int(grep.group(1))
            nodes.setdefault(current, {})
            text = grep.group(2).strip()
        parts = text.split()
        if current is None or len(parts) != 2 or not re.fullmatch(r"-?\d+", parts[1]):
            continue
        nodes[current].setdefault(parts[0], (int(parts[1]), line))
    for node, props in nodes.items():
        simd = props.get("simd_count", (None, None))[0]
        target = props.get("gfx_target_version", (None, None))
        gfx = gfx_from_target_version(target[0])
        if simd == 0 or (simd is None and gfx is None):
            continue  # a CPU node
        vendor = props.get("vendor_id", (None, None))[0]
        device = props.get("device_id", (None, None))[0]
        raw = target[1] or next((ln for _, ln in props.values()), None)
        rocm.kfd_nodes.append(
            AmdAgent(
                gfx=gfx,
                node=node,
                vendor_id=f"{vendor:04x}" if vendor else None,
                device_id=f"{device:04x}" if device else None,
                drm_render_minor=props.get("drm_render_minor", (None, None))[0],
                simd_count=simd,
                raw=raw,
            )
        )
        if raw is not None:
            rocm.raw.append(raw)


def parse(sections: Mapping[str, str]) -> Rocm | None:
    names = ("rocminfo.txt", "rocm-smi.txt", "rocm-version.txt", "kfd-topology.txt")
    if not any(name in sections for name in names):
        return None
    rocm = Rocm()
    for line, text in section_lines(sections, "rocm-version.txt"):
        match = re.search(r"\d+\.\d+(?:\.\d+)?", text)
        if match and rocm.version is None:
            rocm.version = match.group()
            rocm.raw.append(line)
    _agents_from_rocminfo(section_lines(sections, "rocminfo.txt"), rocm)
    for line, text in section_lines(sections, "rocm-smi.txt"):
        if re.match(r"^\d+\s+\S", text):
            rocm.smi_devices.append(text)
            rocm.raw.append(line)
        elif rocm.error is None and re.search(r"ERROR|not found|Permission denied", text, re.I):
            rocm.error = line
            rocm.raw.append(line)
    _kfd_nodes(section_lines(sections, "kfd-topology.txt"), rocm)
    return rocm
