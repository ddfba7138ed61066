"""nvidia-smi.txt, nvidia-smi-query.csv, nvidia-smi-apps.csv, proc-driver-nvidia-version.txt.

nvidia-smi's header is the quickest witness of the driver branch and of whether libcuda is
reachable (`CUDA Version: N/A` in a container without the compute capability); its errors
(`NVIDIA-SMI has failed ...`, `Failed to initialize NVML: Driver/library version mismatch`)
name whole failure modes. The query CSV is exact; the table is read leniently because users
paste it (a prompt line first, two lines of it, several runs: the last header wins).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping

from ollama_gpu_fix.parsers.kernel import section_lines
from ollama_gpu_fix.snapshot import ComputeApp, NvidiaGpu, NvidiaKernelDriver, NvidiaSmi

_DRIVER = re.compile(r"Driver Version:\s*([0-9][0-9.]*)")
_CUDA = re.compile(r"CUDA Version:\s*([0-9][0-9.]*|N/A)", re.I)
_SMI_ERRORS = re.compile(
    r"NVIDIA-SMI has failed|Failed to initialize NVML|No devices were found"
    r"|couldn't communicate with the NVIDIA driver|Unable to determine the device handle"
    r"|nvidia-smi: (?:command )?not found|command not found: nvidia-smi"
    r"|couldn't find libnvidia-ml|Unknown Error"
    r"|NVML: (?:Driver/library version mismatch|Insufficient Permissions)",
    re.I,
)
_BUS = r"([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7])"
# Jetson's iGPU has no PCI bus id: `|   0  Orin (nvgpu)   N/A  | N/A   N/A |`
_GPU_ROW = re.compile(r"^\|\s*(\d+)\s+(.+?)\s+(?:On|Off|N/A)\s+\|\s*(?:" + _BUS + r"|N/A\b)")
_LIST_ROW = re.compile(r"^GPU (\d+): (.+?) \(UUID: (GPU-[0-9A-Fa-f-]+)\)")  # nvidia-smi -L
_MEM_ROW = re.compile(r"(\d+)\s*MiB\s*/\s*(\d+)\s*MiB")
_PROC_ROW = re.compile(
    r"^\|\s*(\d+|N/A)\s+(?:\S+\s+\S+\s+)?(\d+|N/A)\s+[CGM+]+\s+(.+?)\s+(\d+|N/A)\s*(?:MiB)?\s*\|$"
)
_NA = {
    "",
    "[n/a]",
    "n/a",
    "[not supported]",
    "not supported",
    "[unknown error]",
    "[insufficient permissions]",
}

# --query-gpu field -> NvidiaGpu attribute (the probe's order is the fallback for no header)
_QUERY_FIELDS = (
    "index",
    "name",
    "driver_version",
    "memory.total",
    "memory.used",
    "compute_cap",
    "pci.bus_id",
    "uuid",
)
_FIELD_ATTR = {
    "index": "index",
    "name": "name",
    "driver_version": "driver_version",
    "memory.total": "memory_total_mib",
    "memory.used": "memory_used_mib",
    "compute_cap": "compute_cap",
    "pci.bus_id": "bus_id",
    "uuid": "uuid",
    "gpu_uuid": "uuid",
    "gpu_name": "name",
    "gpu_bus_id": "bus_id",
}
_INT_ATTRS = {"index", "memory_total_mib", "memory_used_mib"}


def _int(value: str) -> int | None:
    match = re.match(r"\s*(\d+)", value)
    return int(match.group(1)) if match else None


def _header_key(cell: str) -> str:
    """`memory.total [MiB]` -> `memory.total` (the unit in brackets dropped)."""
    cell = cell.strip()
    if cell.endswith("]") and "[" in cell:
        cell = cell[: cell.rfind("[")].rstrip()
    return cell.lower()


def _csv_rows(text: str) -> list[list[str]]:
    try:
        return [[c.strip() for c in row] for row in csv.reader([text], skipinitialspace=True)]
    except csv.Error:
        return [[c.strip() for c in text.split(",")]]


def _parse_query(sections: Mapping[str, str], smi: NvidiaSmi) -> list[NvidiaGpu]:
    gpus = []
    header: list[str] | None = None
    for line, text in section_lines(sections, "nvidia-smi-query.csv"):
        cells = _csv_rows(text)[0] if text else []
        keys = [_header_key(c) for c in cells]
        if "index" in keys or "name" in keys or "uuid" in keys and "pci.bus_id" in keys:
            header = keys
            smi.raw.append(line)
            continue
        if _SMI_ERRORS.search(text):
            smi.raw.append(line)
            smi.error = smi.error or line
            continue
        if len(cells) < 2 or not re.match(r"^\d+$", cells[0]):
            continue
        smi.raw.append(line)
        gpu = NvidiaGpu(raw=line)
        for key, cell in zip(header or _QUERY_FIELDS, cells, strict=False):
            attr = _FIELD_ATTR.get(key)
            if attr is None or cell.lower() in _NA:
                continue
            setattr(gpu, attr, _int(cell) if attr in _INT_ATTRS else cell)
        gpus.append(gpu)
    return gpus


def _merge(table: list[NvidiaGpu], query: list[NvidiaGpu]) -> list[NvidiaGpu]:
    """Query rows are exact; table rows fill what they lack (matched by index, else bus id)."""
    if not query:
        return table
    for gpu in query:
        twin = next(
            (t for t in table if t.index is not None and t.index == gpu.index), None
        ) or next((t for t in table if t.bus_id and t.bus_id == gpu.bus_id), None)
        if twin is None:
            continue
        for attr in ("name", "memory_total_mib", "memory_used_mib", "bus_id", "uuid"):
            if getattr(gpu, attr) is None:
                setattr(gpu, attr, getattr(twin, attr))
    return query


def parse_smi(sections: Mapping[str, str]) -> NvidiaSmi | None:
    if "nvidia-smi.txt" not in sections and "nvidia-smi-query.csv" not in sections:
        return None
    smi = NvidiaSmi()
    table: list[NvidiaGpu] = []
    current: NvidiaGpu | None = None
    for line, text in section_lines(sections, "nvidia-smi.txt"):
        driver, cuda = _DRIVER.search(text), _CUDA.search(text)
        if driver or cuda:
            smi.raw.append(line)
            if driver:
                smi.driver_version = driver.group(1).rstrip(".")
            if cuda:
                smi.cuda_version = (
                    cuda.group(1).upper() if cuda.group(1).lower() == "n/a" else cuda.group(1)
                )
            continue
        if _SMI_ERRORS.search(text):
            smi.raw.append(line)
            smi.error = smi.error or line
            continue
        if "NVML library version" in text:
            smi.raw.append(line)
            continue
        row = _GPU_ROW.match(text)
        if row:
            smi.raw.append(line)
            current = NvidiaGpu(
                index=int(row.group(1)), name=row.group(2).strip(), bus_id=row.group(3) or None,
                raw=line,
            )
            table.append(current)
            continue
        listed = _LIST_ROW.match(text)
        if listed:
            smi.raw.append(line)
            current = NvidiaGpu(
                index=int(listed.group(1)), name=listed.group(2), uuid=listed.group(3), raw=line
            )
            table.append(current)
            continue
        mem = _MEM_ROW.search(text)
        if mem and current is not None and current.memory_total_mib is None:
            smi.raw.append(line)
            current.memory_used_mib, current.memory_total_mib = int(mem.group(1)), int(mem.group(2))
    smi.gpus = _merge(table, _parse_query(sections, smi))
    for gpu in smi.gpus:
        if gpu.driver_version is None:
            gpu.driver_version = smi.driver_version
    if smi.driver_version is None:
        smi.driver_version = next((g.driver_version for g in smi.gpus if g.driver_version), None)
    return smi


def _apps_from_csv(sections: Mapping[str, str]) -> list[ComputeApp]:
    apps = []
    for line, text in section_lines(sections, "nvidia-smi-apps.csv"):
        cells = _csv_rows(text)[0]
        if len(cells) < 2 or not re.match(r"^\d+$", cells[0]):
            continue  # header, "No running processes found", errors
        used = _int(cells[2]) if len(cells) > 2 and cells[2].lower() not in _NA else None
        apps.append(
            ComputeApp(pid=int(cells[0]), process_name=cells[1], used_memory_mib=used, raw=line)
        )
    return apps


def _apps_from_table(sections: Mapping[str, str]) -> list[ComputeApp] | None:
    """The `Processes:` box of the plain table; None when the paste does not include it."""
    apps: list[ComputeApp] = []
    seen = False
    for line, text in section_lines(sections, "nvidia-smi.txt"):
        if re.search(r"\|\s*Processes:", text):
            seen = True
            continue
        if not seen:
            continue
        match = _PROC_ROW.match(text)
        if match and match.group(2) != "N/A" and not text.lstrip("| ").startswith("GPU"):
            used = match.group(4)
            apps.append(
                ComputeApp(
                    pid=int(match.group(2)),
                    process_name=match.group(3).strip(),
                    used_memory_mib=int(used) if used.isdigit() else None,
                    raw=line,
                )
            )
    return apps if seen else None


def parse_apps(sections: Mapping[str, str]) -> list[ComputeApp] | None:
    """Processes holding GPU memory: the apps CSV, else the table's `Processes:` box."""
    if "nvidia-smi-apps.csv" in sections:
        return _apps_from_csv(sections)
    return _apps_from_table(sections)


_NVRM = re.compile(r"NVRM version:.*?(\d{2,4}\.\d+(?:\.\d+)*)\b")


def parse_kernel_driver(sections: Mapping[str, str]) -> NvidiaKernelDriver | None:
    """/proc/driver/nvidia/version: the loaded module's version and open/proprietary flavour."""
    if "proc-driver-nvidia-version.txt" not in sections:
        return None
    result = NvidiaKernelDriver()
    for line, text in section_lines(sections, "proc-driver-nvidia-version.txt"):
        result.raw.append(line)
        match = _NVRM.search(text)
        if match and result.version is None:
            result.version = match.group(1)
            if "Open Kernel Module" in text:
                result.flavour = "Open Kernel Module"
            elif "Kernel Module" in text:
                result.flavour = "Kernel Module"
    return result
