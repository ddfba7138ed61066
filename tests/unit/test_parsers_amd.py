"""rocminfo, rocm-smi, ROCm version, KFD topology and vulkaninfo parsers."""

from __future__ import annotations

from pathlib import Path

import pytest

from ollama_gpu_fix.parsers import rocm, vulkan

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sections"


def sample(name: str, case: str) -> dict[str, str]:
    return {name: (FIXTURES / name / case).read_text(encoding="utf-8")}


def test_absent_files_give_none() -> None:
    assert rocm.parse({"lspci.txt": ""}) is None
    assert vulkan.parse({"lspci.txt": ""}) is None


@pytest.mark.parametrize(
    ("value", "gfx"),
    [
        (100301, "gfx1031"),
        (100300, "gfx1030"),
        (90010, "gfx90a"),
        (90012, "gfx90c"),
        (110003, "gfx1103"),
        (110501, "gfx1151"),
        (120001, "gfx1201"),
        (90006, "gfx906"),
        (0, None),
        (None, None),
        (101699, None),
    ],
)
def test_gfx_from_target_version(value: int | None, gfx: str | None) -> None:
    assert rocm.gfx_from_target_version(value) == gfx


def test_rocminfo_gpu_agent_only() -> None:
    result = rocm.parse(sample("rocminfo.txt", "rx6700xt.txt"))
    assert result is not None and result.error is None
    assert len(result.agents) == 1  # the CPU agent is skipped
    agent = result.agents[0]
    assert agent.gfx == "gfx1031" and agent.name == "AMD Radeon RX 6700 XT"
    assert agent.uuid == "GPU-XX" and agent.node == 1
    assert agent.vendor_id == "1002" and agent.device_id == "73df"
    assert agent.raw is not None and "gfx1031" in agent.raw.text


def test_rocminfo_kfd_permission_error() -> None:
    result = rocm.parse(sample("rocminfo.txt", "kfd-denied.txt"))
    assert result is not None and result.agents == []
    assert result.error is not None
    assert result.error.text == "Unable to open /dev/kfd read-write: Permission denied"


def test_rocm_smi_and_version() -> None:
    smi = rocm.parse(sample("rocm-smi.txt", "concise.txt"))
    assert smi is not None and len(smi.smi_devices) == 1
    assert smi.smi_devices[0].startswith("0       1     0x73df")
    version = rocm.parse(sample("rocm-version.txt", "6.1.2.txt"))
    assert version is not None and version.version == "6.1.2"


def test_kfd_topology_skips_cpu_nodes() -> None:
    result = rocm.parse(sample("kfd-topology.txt", "cpu-and-gfx1031.txt"))
    assert result is not None
    assert len(result.kfd_nodes) == 1
    node = result.kfd_nodes[0]
    assert node.node == 1 and node.gfx == "gfx1031" and node.simd_count == 80
    assert node.vendor_id == "1002" and node.device_id == "73df"
    assert node.drm_render_minor == 128
    assert node.raw is not None and node.raw.text == "gfx_target_version 100301"


def test_kfd_topology_pasted_grep() -> None:
    result = rocm.parse(sample("kfd-topology.txt", "grep-mi250.txt"))
    assert result is not None
    assert [(n.node, n.gfx) for n in result.kfd_nodes] == [(2, "gfx90a")]


def test_all_rocm_sections_merge() -> None:
    sections: dict[str, str] = {}
    for name, case in (
        ("rocminfo.txt", "rx6700xt.txt"),
        ("rocm-smi.txt", "concise.txt"),
        ("rocm-version.txt", "6.1.2.txt"),
        ("kfd-topology.txt", "cpu-and-gfx1031.txt"),
    ):
        sections.update(sample(name, case))
    result = rocm.parse(sections)
    assert result is not None
    assert result.version == "6.1.2"
    assert result.agents[0].gfx == result.kfd_nodes[0].gfx == "gfx1031"


def test_vulkan_summary_hybrid() -> None:
    result = vulkan.parse(sample("vulkaninfo.txt", "hybrid-summary.txt"))
    assert result is not None and result.error is None
    assert [d.index for d in result.devices] == [0, 1, 2]
    igpu, dgpu, cpu = result.devices
    assert igpu.device_type == "PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU" and igpu.vendor_id == "8086"
    assert dgpu.name == "AMD Radeon RX 6700 XT (RADV NAVI22)"
    assert dgpu.device_type == "PHYSICAL_DEVICE_TYPE_DISCRETE_GPU"
    assert (dgpu.vendor_id, dgpu.driver_name, dgpu.api_version) == ("1002", "radv", "1.3.255")
    assert cpu.device_type == "PHYSICAL_DEVICE_TYPE_CPU" and cpu.driver_name == "llvmpipe"


def test_vulkan_loader_error() -> None:
    result = vulkan.parse(sample("vulkaninfo.txt", "incompatible-driver.txt"))
    assert result is not None and result.devices == []
    assert result.error is not None and "Found no drivers" in result.error.text


def test_vulkan_old_api_version_format() -> None:
    text = "GPU0:\n\tapiVersion     = 4206847 (1.3.255)\n\tvendorID = 0x10DE\n"
    result = vulkan.parse({"vulkaninfo.txt": text})
    assert result is not None
    assert result.devices[0].api_version == "1.3.255" and result.devices[0].vendor_id == "10de"
