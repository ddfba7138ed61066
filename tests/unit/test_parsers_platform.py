"""probe-meta, os-release, proc-version, lsmod, dmesg and PCI parsers over real-shaped samples."""

from __future__ import annotations

from pathlib import Path

from ollama_gpu_fix.parsers import kernel, os_release, pci, probe_meta

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sections"


def sample(name: str, case: str) -> dict[str, str]:
    return {name: (FIXTURES / name / case).read_text(encoding="utf-8")}


def test_absent_files_give_none() -> None:
    for parser in (
        probe_meta.parse,
        os_release.parse,
        kernel.parse_proc_version,
        kernel.parse_modules,
        kernel.parse_dmesg,
        pci.parse,
    ):
        assert parser({"unrelated.txt": "x"}) is None


def test_probe_meta_tools_absent_files_and_flags() -> None:
    meta = probe_meta.parse(sample("probe-meta.txt", "wsl2-root.txt"))
    assert meta is not None
    assert meta.version == "1" and meta.uid == 0 and meta.arch == "x86_64"
    assert meta.systemd is True and meta.container == "wsl"
    assert meta.tools["ollama"] == "/usr/local/bin/ollama"
    assert "nvcc" in meta.tools and meta.tools["nvcc"] is None  # looked up, absent
    assert "/dev/kfd" in meta.absent_files
    assert len(meta.raw) == 13


def test_probe_meta_systemd_no_and_odd_values() -> None:
    meta = probe_meta.parse({"probe-meta.txt": "systemd=no\nuid=abc\ngarbage line\n"})
    assert meta is not None and meta.systemd is False and meta.uid is None


def test_os_release_ubuntu_and_rocky() -> None:
    ubuntu = os_release.parse(sample("os-release.txt", "ubuntu-2404.txt"))
    assert ubuntu is not None
    assert (ubuntu.id, ubuntu.version_id, ubuntu.version_codename) == ("ubuntu", "24.04", "noble")
    assert ubuntu.id_like == ["debian"] and ubuntu.pretty_name == "Ubuntu 24.04.1 LTS"
    rocky = os_release.parse(sample("os-release.txt", "rocky-9.txt"))
    assert rocky is not None
    assert rocky.id == "rocky" and rocky.id_like == ["rhel", "centos", "fedora"]
    assert rocky.version_id == "9.4" and rocky.version_codename is None


def test_os_release_pasted_lsb_release() -> None:
    osr = os_release.parse(sample("os-release.txt", "lsb-release-pasted.txt"))
    assert osr is not None
    assert (osr.id, osr.version_id, osr.version_codename) == ("ubuntu", "22.04", "jammy")


def test_proc_version_wsl_detection() -> None:
    wsl2 = kernel.parse_proc_version(sample("proc-version.txt", "wsl2.txt"))
    assert wsl2 is not None and wsl2.wsl == "wsl2"
    assert wsl2.release == "5.15.153.1-microsoft-standard-WSL2"
    wsl1 = kernel.parse_proc_version(sample("proc-version.txt", "wsl1.txt"))
    assert wsl1 is not None and wsl1.wsl == "wsl1" and wsl1.release == "4.4.0-19041-Microsoft"
    native = kernel.parse_proc_version(sample("proc-version.txt", "ubuntu.txt"))
    assert native is not None and native.wsl is None and native.release == "6.8.0-45-generic"
    uname = kernel.parse_proc_version(sample("proc-version.txt", "uname-a.txt"))
    assert uname is not None and uname.release == "6.11.4-201.fc40.x86_64"


def test_proc_version_old_wsl2_kernel_without_suffix() -> None:
    old = kernel.parse_proc_version(
        {"proc-version.txt": "Linux version 4.19.128-microsoft-standard (oe-user@oe-host) #1 SMP\n"}
    )
    assert old is not None and old.wsl == "wsl2"


def test_modules_proc_modules_and_lsmod() -> None:
    mods = kernel.parse_modules(sample("lsmod.txt", "proc-modules.txt"))
    assert mods is not None
    assert [m.name for m in mods] == ["nvidia_uvm", "nvidia_drm", "nvidia_modeset", "nvidia"]
    assert mods[0].size == 1802240 and mods[3].refcount == 84
    pasted = kernel.parse_modules(sample("lsmod.txt", "lsmod-pasted.txt"))
    assert pasted is not None and pasted[0].name == "amdgpu" and pasted[0].refcount == 27
    assert all(m.name != "Module" for m in pasted)


def test_dmesg_keeps_gpu_lines_only_and_verbatim() -> None:
    lines = kernel.parse_dmesg(sample("dmesg.txt", "nvrm.txt"))
    assert lines is not None
    texts = [line.text for line in lines]
    assert not any("usb 1-1" in t for t in texts)
    assert any("API mismatch" in t for t in texts)
    assert any("GPU has fallen off the bus" in t for t in texts)
    journal = kernel.parse_dmesg(sample("dmesg.txt", "amdgpu-journal.txt"))
    assert journal is not None and len(journal) == 3
    assert journal[0].text.startswith("Nov 21 10:00:01 box kernel:")  # evidence stays verbatim


def test_strip_prefix_journald_syslog_and_dmesg() -> None:
    assert kernel.strip_prefix("Apr 19 16:54:17 host ollama[1180]: hello") == "hello"
    assert kernel.strip_prefix("2025-04-19T16:54:17+0200 host ollama[1180]: hi") == "hi"
    assert kernel.strip_prefix("Nov 21 10:00:01 box kernel: [   12.5] NVRM: x") == "NVRM: x"
    assert kernel.strip_prefix("crw-rw---- 1 root render 235, 0 Nov 21 10:00 /dev/kfd") == (
        "crw-rw---- 1 root render 235, 0 Nov 21 10:00 /dev/kfd"
    )


def test_pci_lspci_nn_hybrid() -> None:
    devices = pci.parse(sample("lspci.txt", "hybrid-nn.txt"))
    assert devices is not None
    gpus = [d for d in devices if d.is_gpu]
    assert [(d.address, d.vendor_id, d.device_id) for d in gpus] == [
        ("0000:00:02.0", "8086", "a780"),
        ("0000:01:00.0", "10de", "2684"),
    ]
    assert gpus[1].class_code == "0300"
    assert gpus[1].name == "NVIDIA Corporation AD102 [GeForce RTX 4090]"
    assert not devices[1].is_gpu  # the USB controller


def test_pci_plain_lspci_infers_class_and_vendor() -> None:
    devices = pci.parse(sample("lspci.txt", "plain-amd.txt"))
    assert devices is not None and len(devices) == 1
    amd = devices[0]
    assert amd.vendor_id == "1002" and amd.class_code == "0300" and amd.device_id is None
    assert amd.is_gpu


def test_pci_lspci_k_driver_line() -> None:
    devices = pci.parse(sample("lspci.txt", "nnk-h100.txt"))
    assert devices is not None and devices[0].driver == "nvidia"
    assert devices[0].class_code == "0302"


def test_pci_devices_sysfs_and_merge_by_address() -> None:
    sections = sample("pci-devices.txt", "h100-nodriver.txt")
    sections.update(sample("lspci.txt", "nnk-h100.txt"))
    devices = pci.parse(sections)
    assert devices is not None
    by_addr = {d.address: d for d in devices}
    assert len(by_addr) == len(devices) == 4  # 1a:00.0 from both sources merged
    h100 = by_addr["0000:1a:00.0"]
    assert h100.name == "NVIDIA Corporation GH100 [H100 SXM5 80GB]"  # from lspci
    assert h100.driver is None  # sysfs says `-`: no driver bound, it wins over lspci -k
    assert by_addr["0000:1b:00.0"].driver == "nvidia"
    assert by_addr["0000:03:00.0"].class_code == "0300" and by_addr["0000:03:00.0"].is_gpu
    assert not by_addr["0000:00:00.0"].is_gpu


def test_normalize_address() -> None:
    assert pci.normalize_address("01:00.0") == "0000:01:00.0"
    assert pci.normalize_address("00000000:1A:00.0") == "0000:1a:00.0"


def test_pci_devices_unreadable_fields() -> None:
    devices = pci.parse({"pci-devices.txt": "0000:01:00.0 0x10de - - -\n"})
    assert devices is not None and len(devices) == 1
    dev = devices[0]
    assert dev.vendor_id == "10de" and dev.device_id is None and dev.class_code is None
    assert dev.driver is None and not dev.is_gpu
