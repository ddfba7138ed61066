"""Catalog of the GPUs lab hosts play: the identifiers real hardware reports.

PCI ids match pci.ids; VRAM, compute capability and gfx targets match the vendors' tables
(ollama-anchor.md 2.1 and 6.2). Shims and the Ollama double read these through the host's
hardware.json, so every tool on a host tells the same story.
"""

from __future__ import annotations

GPUS: dict[str, dict] = {
    # Identity and readings of the real H100 captured in tests/fixtures/h100 (nvidia-smi, NVML).
    "h100-sxm": {
        "vendor": "nvidia", "pci_vendor": "0x10de", "pci_device": "0x2330", "class": "0x030200",
        "subsystem_vendor": "0x10de", "subsystem_device": "0x16c1", "revision": "0xa1",
        "name": "NVIDIA H100 80GB HBM3", "vram_mib": 81559, "compute_cap": "9.0",
        "uuid": "GPU-e46b1a73-5972-80ed-5f43-c46d1c9f5ddf", "power_cap_w": 700,
        "idle_power_w": 75, "temp_c": 51, "captures": "h100",
    },
    "h100-pcie": {
        "vendor": "nvidia", "pci_vendor": "0x10de", "pci_device": "0x2331", "class": "0x030200",
        "subsystem_vendor": "0x10de", "subsystem_device": "0x1626", "revision": "0xa1",
        "name": "NVIDIA H100 PCIe", "vram_mib": 81559, "compute_cap": "9.0",
        "uuid": "GPU-5ac7e7b0-1c7e-5d56-a5d2-3f6f2a4ad3b1", "power_cap_w": 350,
        "idle_power_w": 48, "temp_c": 33,
    },
    "rtx-4090": {
        "vendor": "nvidia", "pci_vendor": "0x10de", "pci_device": "0x2684", "class": "0x030000",
        "subsystem_vendor": "0x1043", "subsystem_device": "0x889d", "revision": "0xa1",
        "name": "NVIDIA GeForce RTX 4090", "vram_mib": 24564, "compute_cap": "8.9",
        "uuid": "GPU-2f0b9c3e-8d7a-4e61-b1c2-7a9d5e3f6c10", "power_cap_w": 450,
        "idle_power_w": 21, "temp_c": 36,
    },
    "rtx-3060": {
        "vendor": "nvidia", "pci_vendor": "0x10de", "pci_device": "0x2503", "class": "0x030000",
        "subsystem_vendor": "0x1462", "subsystem_device": "0x397d", "revision": "0xa1",
        "name": "NVIDIA GeForce RTX 3060", "vram_mib": 12288, "compute_cap": "8.6",
        "uuid": "GPU-bca32961-2a44-3c18-c167-8306f3d51df9", "power_cap_w": 170,
        "idle_power_w": 15, "temp_c": 41,
    },
    "rx-6700xt": {
        "vendor": "amd", "pci_vendor": "0x1002", "pci_device": "0x73df", "class": "0x030000",
        "subsystem_vendor": "0x1da2", "subsystem_device": "0xe445", "revision": "0xc1",
        "name": "AMD Radeon RX 6700 XT", "marketing": "AMD Radeon RX 6700 XT",
        "vram_mib": 12272, "gfx": "gfx1031", "gfx_target_version": 100301,
        "simd_count": 80, "cu_count": 40, "drm_render_minor": 128,
    },
    "rx-7900xtx": {
        "vendor": "amd", "pci_vendor": "0x1002", "pci_device": "0x744c", "class": "0x030000",
        "subsystem_vendor": "0x1002", "subsystem_device": "0x0e3b", "revision": "0xc8",
        "name": "AMD Radeon RX 7900 XTX", "marketing": "Radeon RX 7900 XTX",
        "vram_mib": 24560, "gfx": "gfx1100", "gfx_target_version": 110000,
        "simd_count": 192, "cu_count": 96, "drm_render_minor": 128,
    },
    "rx-5700xt": {
        "vendor": "amd", "pci_vendor": "0x1002", "pci_device": "0x731f", "class": "0x030000",
        "subsystem_vendor": "0x1682", "subsystem_device": "0x5701", "revision": "0xc1",
        "name": "AMD Radeon RX 5700 XT", "marketing": "AMD Radeon RX 5700 XT",
        "vram_mib": 8176, "gfx": "gfx1010", "gfx_target_version": 100100,
        "simd_count": 80, "cu_count": 40, "drm_render_minor": 128,
    },
    # Pascal (compute capability 6.1): Ollama >= 0.30 needs driver 570+, and 580 is the last
    # branch for it (proprietary modules only).
    "gtx-1080": {
        "vendor": "nvidia", "pci_vendor": "0x10de", "pci_device": "0x1b80", "class": "0x030000",
        "subsystem_vendor": "0x1043", "subsystem_device": "0x8591", "revision": "0xa1",
        "name": "NVIDIA GeForce GTX 1080", "vram_mib": 8192, "compute_cap": "6.1",
        "uuid": "GPU-7f3c2a1e-60f1-4a1b-9c7e-1080abcdef01", "power_cap_w": 180,
        "idle_power_w": 9, "temp_c": 38,
    },
    # Polaris (gfx803): in no ROCm bundle of any Ollama release; Vulkan only.
    "rx-580": {
        "vendor": "amd", "pci_vendor": "0x1002", "pci_device": "0x67df", "class": "0x030000",
        "subsystem_vendor": "0x1da2", "subsystem_device": "0xe366", "revision": "0xe7",
        "name": "AMD Radeon RX 580", "marketing": "Radeon RX 580 Series",
        "vram_mib": 8192, "gfx": "gfx803", "gfx_target_version": 80003,
        "simd_count": 144, "cu_count": 36, "drm_render_minor": 128,
    },
    # Phoenix iGPU (gfx1103), the Radeon 780M: an integrated GPU with 2 GiB carved out.
    "radeon-780m": {
        "vendor": "amd", "pci_vendor": "0x1002", "pci_device": "0x15bf", "class": "0x030000",
        "subsystem_vendor": "0x1043", "subsystem_device": "0x1f63", "revision": "0xc7",
        "name": "AMD Radeon 780M", "marketing": "AMD Radeon 780M Graphics",
        "vram_mib": 2048, "gfx": "gfx1103", "gfx_target_version": 110003,
        "simd_count": 24, "cu_count": 12, "drm_render_minor": 128, "integrated": True,
    },
}

# A q35-like chipset every host has besides its GPU (address, vendor, device, class, driver).
CHIPSET = [
    ("0000:00:00.0", "0x8086", "0x29c0", "0x060000", "-"),
    ("0000:00:1f.0", "0x8086", "0x2918", "0x060100", "lpc_ich"),
    ("0000:00:1f.2", "0x8086", "0x2922", "0x010601", "ahci"),
]
