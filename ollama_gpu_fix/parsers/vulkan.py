"""vulkaninfo.txt: `vulkaninfo --summary` (the full report is read the same way).

Vulkan is Ollama's path for GPUs that CUDA/ROCm do not cover (RDNA1, Polaris, Intel), and
the device list shows which GPU Vulkan would pick on a hybrid machine (an iGPU listed first,
llvmpipe only = no usable driver). A loader error (`ERROR_INCOMPATIBLE_DRIVER`, "Found no
drivers") means no Vulkan at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ollama_gpu_fix.parsers.kernel import section_lines
from ollama_gpu_fix.snapshot import Vulkan, VulkanDevice

_GPU_HEADER = re.compile(r"^GPU(\d+)\s*:?\s*$")
_KEY = re.compile(r"^(\w+)\s*=\s*(.*)$")
_FATAL = re.compile(
    r"ERROR_[A-Z_]+|Cannot create Vulkan instance|Found no drivers|failed with"
    r"|vulkaninfo: (?:command )?not found|command not found: vulkaninfo",
    re.I,
)
_ATTRS = {
    "deviceName": "name",
    "deviceType": "device_type",
    "vendorID": "vendor_id",
    "driverName": "driver_name",
    "apiVersion": "api_version",
}


def _value(attr: str, value: str) -> str | None:
    value = value.strip()
    if attr == "vendor_id":
        match = re.match(r"(?:0x)?([0-9a-fA-F]+)", value)
        return match.group(1).lower().zfill(4) if match else None
    if attr == "api_version":  # "1.3.255" or "4206847 (1.3.255)" (older vulkaninfo)
        match = re.search(r"\d+\.\d+\.\d+", value)
        return match.group() if match else value or None
    return value or None


def parse(sections: Mapping[str, str]) -> Vulkan | None:
    if "vulkaninfo.txt" not in sections:
        return None
    result = Vulkan()
    current: VulkanDevice | None = None
    by_index: dict[int, VulkanDevice] = {}
    first_error = None
    for line, text in section_lines(sections, "vulkaninfo.txt"):
        header = _GPU_HEADER.match(text)
        if header:
            index = int(header.group(1))
            current = by_index.get(index)
            if current is None:
                current = by_index[index] = VulkanDevice(index=index, raw=line)
                result.devices.append(current)
                result.raw.append(line)
            continue
        if _FATAL.search(text) and result.error is None:
            result.error = line
            result.raw.append(line)
            continue
        if first_error is None and re.search(r"\bERROR\b", text):
            first_error = line
        match = _KEY.match(text)
        if current is not None and match and match.group(1) in _ATTRS:
            attr = _ATTRS[match.group(1)]
            if getattr(current, attr) is None:
                setattr(current, attr, _value(attr, match.group(2)))
                result.raw.append(line)
    if result.error is None and not result.devices and first_error is not None:
        result.error = first_error
        result.raw.append(first_error)
    return result
