"""lspci.txt and pci-devices.txt, merged by PCI address.

The PCI bus is the one witness that a GPU exists whatever the drivers think, and sysfs says
which kernel driver is bound to it (`-` = none: the classic "card present, driver missing").
`lspci -nn` gives the human name, plain `lspci` (pasted) only the class and vendor names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ollama_gpu_fix.parsers.kernel import section_lines
from ollama_gpu_fix.snapshot import Line, PciDevice

_ADDR = r"(?P<addr>(?:[0-9a-fA-F]{4,8}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])"
_LSPCI = re.compile(
    _ADDR + r"\s+(?P<cls>[^:\[]+?)\s*(?:\[(?P<code>[0-9a-fA-F]{4})\])?:\s*(?P<rest>.*)$"
)
_IDS = re.compile(r"\[(?P<vendor>[0-9a-fA-F]{4}):(?P<device>[0-9a-fA-F]{4})\]")
_REV = re.compile(r"\s*\((?:rev|prog-if)\s[^)]*\)")
_SYSFS = re.compile(  # any field may be `-` when sysfs did not let the probe read it
    _ADDR + r"\s+(?:0x)?(?P<vendor>[0-9a-fA-F]{4}|-)\s+(?:0x)?(?P<device>[0-9a-fA-F]{4}|-)"
    r"\s+(?:0x)?(?P<cls>[0-9a-fA-F]{4,6}|-)(?:\s+(?P<driver>\S+))?"
)
_DRIVER_IN_USE = re.compile(r"^Kernel driver in use:\s*(\S+)")

# class names of plain `lspci` (no -nn) -> class code
_CLASS_NAMES = {
    "vga compatible controller": "0300",
    "3d controller": "0302",
    "display controller": "0380",
    "xga compatible controller": "0301",
}
_VENDOR_NAMES = (
    ("nvidia", "10de"),
    ("advanced micro devices", "1002"),
    ("amd/ati", "1002"),
    ("ati technologies", "1002"),
    ("intel corporation", "8086"),
    ("moore threads", "1ed5"),
    ("red hat, inc.", "1af4"),
    ("vmware", "15ad"),
    ("microsoft corporation", "1414"),
)


def normalize_address(addr: str) -> str:
    """0000:01:00.0 form: lower case, 4-digit domain added or shortened (nvidia-smi: 8)."""
    addr = addr.lower()
    parts = addr.split(":")
    if len(parts) == 2:
        return "0000:" + addr
    if len(parts) == 3 and len(parts[0]) > 4:
        return parts[0][-4:] + ":" + parts[1] + ":" + parts[2]
    return addr


def _from_lspci(line: Line, text: str) -> PciDevice | None:
    match = _LSPCI.match(text)
    if not match:
        return None
    rest = match.group("rest")
    dev = PciDevice(address=normalize_address(match.group("addr")), raw=line)
    ids = list(_IDS.finditer(rest))
    if ids:
        last = ids[-1]
        dev.vendor_id = last.group("vendor").lower()
        dev.device_id = last.group("device").lower()
        rest = rest[: last.start()] + rest[last.end() :]
    code = match.group("code")
    dev.class_code = code.lower() if code else _CLASS_NAMES.get(match.group("cls").strip().lower())
    name = _REV.sub("", rest).strip()
    dev.name = name or None
    if dev.vendor_id is None:
        low = name.lower()
        dev.vendor_id = next((vid for word, vid in _VENDOR_NAMES if low.startswith(word)), None)
    return dev


def parse(sections: Mapping[str, str]) -> list[PciDevice] | None:
    if "lspci.txt" not in sections and "pci-devices.txt" not in sections:
        return None
    devices: dict[str, PciDevice] = {}
    last: PciDevice | None = None
    for line, text in section_lines(sections, "lspci.txt"):
        dev = _from_lspci(line, text)
        if dev is not None:
            last = devices.setdefault(dev.address, dev)
            continue
        driver = _DRIVER_IN_USE.match(text)  # lspci -k / -v detail line of the last device
        if driver and last is not None:
            last.driver = driver.group(1)
    for line, text in section_lines(sections, "pci-devices.txt"):
        match = _SYSFS.match(text)
        if not match:
            continue
        addr = normalize_address(match.group("addr"))
        dev = devices.setdefault(addr, PciDevice(address=addr, raw=line))
        for attr, group in (
            ("vendor_id", "vendor"),
            ("device_id", "device"),
            ("class_code", "cls"),
        ):
            value = match.group(group)
            if value != "-":
                setattr(dev, attr, value[:4].lower())
        driver = match.group("driver")
        dev.driver = driver if driver and driver != "-" else None
    return list(devices.values())
