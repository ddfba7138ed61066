"""nvidia-smi (table, query CSV, apps), /proc/driver/nvidia/version and CUDA install parsers."""

from __future__ import annotations

from pathlib import Path

from ollama_gpu_fix.parsers import cuda, nvidia

ROOT = Path(__file__).parents[1]
FIXTURES = ROOT / "fixtures" / "sections"
CASES = ROOT / "cases"


def sample(name: str, case: str) -> dict[str, str]:
    return {name: (FIXTURES / name / case).read_text(encoding="utf-8")}


def test_absent_files_give_none() -> None:
    for parser in (
        nvidia.parse_smi,
        nvidia.parse_apps,
        nvidia.parse_kernel_driver,
        cuda.parse,
        cuda.parse_packages,
    ):
        assert parser({"os-release.txt": "ID=debian\n"}) is None


def test_smi_table_580() -> None:
    smi = nvidia.parse_smi(sample("nvidia-smi.txt", "h100-580.txt"))
    assert smi is not None and smi.error is None
    assert smi.driver_version == "580.95.05" and smi.cuda_version == "13.0"
    assert len(smi.gpus) == 1
    gpu = smi.gpus[0]
    assert gpu.index == 0 and gpu.name == "NVIDIA H100 80GB HBM3"
    assert gpu.bus_id == "00000000:1A:00.0"
    assert (gpu.memory_used_mib, gpu.memory_total_mib) == (41234, 81559)
    assert gpu.driver_version == "580.95.05"
    assert any("Driver Version" in line.text for line in smi.raw)


def test_smi_table_old_layout_two_gpus_after_prompt() -> None:
    smi = nvidia.parse_smi(sample("nvidia-smi.txt", "rtx3090-535-old-layout.txt"))
    assert smi is not None
    assert smi.driver_version == "535.129.03" and smi.cuda_version == "12.2"
    assert [g.bus_id for g in smi.gpus] == ["00000000:01:00.0", "00000000:02:00.0"]
    assert [g.memory_used_mib for g in smi.gpus] == [602, 3]


def test_smi_journald_prefixed_paste() -> None:
    smi = nvidia.parse_smi(sample("nvidia-smi.txt", "journald-prefixed.txt"))
    assert smi is not None
    assert smi.driver_version == "550.54.14" and smi.cuda_version == "12.4"
    assert smi.gpus[0].name == "NVIDIA GeForce RTX 4090"
    assert smi.gpus[0].memory_total_mib == 24564


def test_smi_errors() -> None:
    failed = nvidia.parse_smi(sample("nvidia-smi.txt", "failed-driver.txt"))
    assert failed is not None and failed.error is not None
    assert failed.error.text.startswith("NVIDIA-SMI has failed")
    assert failed.driver_version is None and failed.gpus == []
    mismatch = nvidia.parse_smi(sample("nvidia-smi.txt", "nvml-mismatch.txt"))
    assert mismatch is not None and mismatch.error is not None
    assert "Driver/library version mismatch" in mismatch.error.text
    assert any("NVML library version: 550.120" in line.text for line in mismatch.raw)


def test_case_031_two_containers_last_header_wins() -> None:
    text = CASES / "031-docker-nvidia-driver-capabilities-missing-compute/nvidia-smi.txt"
    smi = nvidia.parse_smi({"nvidia-smi.txt": text.read_text(encoding="utf-8")})
    assert smi is not None
    assert smi.driver_version == "470.182.03"
    assert smi.cuda_version == "N/A"  # the stock image without the compute capability
    assert len(smi.raw) == 2 and smi.error is None


def test_case_036_wsl_header_driver_not_smi_version() -> None:
    text = CASES / "036-docker-wsl-gtx970-cc52-gpu-too-old/nvidia-smi.txt"
    smi = nvidia.parse_smi({"nvidia-smi.txt": text.read_text(encoding="utf-8")})
    assert smi is not None
    assert smi.driver_version == "546.33"  # Driver Version:, not the NVIDIA-SMI 545.36 tool
    assert smi.cuda_version == "12.3" and smi.gpus == []


def test_query_csv_with_header() -> None:
    smi = nvidia.parse_smi(sample("nvidia-smi-query.csv", "h100x2.csv"))
    assert smi is not None and smi.driver_version == "580.95.05" and smi.cuda_version is None
    assert [g.index for g in smi.gpus] == [0, 1]
    first = smi.gpus[0]
    assert first.compute_cap == "9.0" and first.memory_total_mib == 81559
    assert first.memory_used_mib == 0 and first.uuid.startswith("GPU-5b1e4c1a")
    assert smi.gpus[1].bus_id == "00000000:1B:00.0"


def test_query_csv_without_header_and_na() -> None:
    smi = nvidia.parse_smi(sample("nvidia-smi-query.csv", "gtx970-noheader-na.csv"))
    assert smi is not None
    gpu = smi.gpus[0]
    assert gpu.name == "NVIDIA GeForce GTX 970" and gpu.compute_cap == "5.2"
    assert gpu.memory_used_mib is None and gpu.memory_total_mib == 4096
    assert smi.driver_version == "470.182.03"


def test_query_csv_error() -> None:
    smi = nvidia.parse_smi(sample("nvidia-smi-query.csv", "failed.csv"))
    assert smi is not None and smi.error is not None and smi.gpus == []


def test_table_and_query_merge() -> None:
    sections = sample("nvidia-smi.txt", "h100-580.txt")
    sections.update(sample("nvidia-smi-query.csv", "h100x2.csv"))
    smi = nvidia.parse_smi(sections)
    assert smi is not None
    assert smi.cuda_version == "13.0"  # only the table says it
    assert len(smi.gpus) == 2 and smi.gpus[0].compute_cap == "9.0"  # the query is exact


def test_apps_csv_and_table() -> None:
    apps = nvidia.parse_apps(sample("nvidia-smi-apps.csv", "ollama.csv"))
    assert apps is not None
    assert [(a.pid, a.process_name, a.used_memory_mib) for a in apps] == [
        (1180, "/usr/local/bin/ollama", 41224),
        (2211, "/usr/lib/xorg/Xorg", None),
    ]
    assert nvidia.parse_apps(sample("nvidia-smi-apps.csv", "none.csv")) == []
    table = nvidia.parse_apps(sample("nvidia-smi.txt", "h100-580.txt"))
    assert table is not None and table[0].pid == 1180 and table[0].used_memory_mib == 41224
    assert nvidia.parse_apps(sample("nvidia-smi.txt", "rtx3090-535-old-layout.txt")) == []
    # a paste without the Processes box says nothing about processes
    assert nvidia.parse_apps(sample("nvidia-smi.txt", "journald-prefixed.txt")) is None


def test_kernel_driver_open_and_proprietary() -> None:
    open_km = nvidia.parse_kernel_driver(sample("proc-driver-nvidia-version.txt", "open-580.txt"))
    assert open_km is not None
    assert open_km.version == "580.95.05" and open_km.flavour == "Open Kernel Module"
    prop = nvidia.parse_kernel_driver(
        sample("proc-driver-nvidia-version.txt", "proprietary-535.txt")
    )
    assert prop is not None and prop.version == "535.129.03" and prop.flavour == "Kernel Module"


def test_nvcc_version_and_path() -> None:
    plain = cuda.parse(sample("nvcc-version.txt", "cuda-12.4.txt"))
    assert plain is not None and plain.nvcc_version == "12.4" and plain.nvcc_path is None
    pasted = cuda.parse(sample("nvcc-version.txt", "pasted-path.txt"))
    assert pasted is not None and pasted.nvcc_version == "11.8"
    assert pasted.nvcc_path == "/usr/local/cuda-11.8/bin/nvcc"
    sections = sample("nvcc-version.txt", "cuda-12.4.txt")
    sections["probe-meta.txt"] = "probe=2\ntool.nvcc=/usr/local/cuda/bin/nvcc\n"
    with_meta = cuda.parse(sections)
    assert with_meta is not None and with_meta.nvcc_path == "/usr/local/cuda/bin/nvcc"


def test_cuda_toolkits_probe_format() -> None:
    result = cuda.parse(sample("cuda-toolkits.txt", "probe-stale-11.txt"))
    assert result is not None
    assert [(t.path, t.version) for t in result.toolkits] == [
        ("/usr/local/cuda", "12.4"),
        ("/usr/local/cuda-11.8", "11.8"),
        ("/usr/local/cuda-12.4", "12.4"),
        ("/opt/cuda-x", None),
    ]
    assert result.ld_conf_paths == [
        "/usr/local/cuda-11.8/targets/x86_64-linux/lib",
        "/usr/local/cuda-12/targets/x86_64-linux/lib",
    ]
    assert cuda.parse_packages(sample("cuda-toolkits.txt", "probe-stale-11.txt")) is None


def test_cuda_toolkits_pasted_dpkg_and_paths() -> None:
    sections = sample("cuda-toolkits.txt", "pasted-dpkg.txt")
    result = cuda.parse(sections)
    assert result is not None
    assert ("/usr/local/cuda-11.8", "11.8") in [(t.path, t.version) for t in result.toolkits]
    distro = [t for t in result.toolkits if t.package == "nvidia-cuda-toolkit"]
    assert distro and distro[0].version == "11.8"
    assert result.packages["nvidia-cuda-toolkit"] == "11.8.89~11.8.0-5~deb12u1"
    assert "libcudart11.0" in result.packages  # :amd64 arch suffix dropped
    assert "cuda-toolkit-12-2" not in result.packages  # rc = removed
    packages = cuda.parse_packages(sections)
    assert packages is not None and "nvidia-cuda-toolkit" in packages


def test_packages_probe_format_and_rpm() -> None:
    packages = cuda.parse_packages(sample("packages.txt", "debian-nvidia.txt"))
    assert packages is not None
    assert packages["nvidia-driver"] == "535.183.01-1~deb12u1"
    assert packages["ollama"] == "0.12.3" and packages["nvidia-container-toolkit"] == "1.16.2-1"
    install = cuda.parse(sample("packages.txt", "debian-nvidia.txt"))
    assert install is not None
    assert "ollama" not in install.packages and "libcuda1" in install.packages
    assert [(t.package, t.version) for t in install.toolkits] == [("cuda-toolkit-12-4", "12.4")]
    rpm = cuda.parse_packages(sample("packages.txt", "rpm-qa-pasted.txt"))
    assert rpm == {"cuda-toolkit-12-4": "12.4.1-1", "rocm-hip-runtime": "6.1.2.60102-119.el9"}
    assert cuda.parse_packages({"packages.txt": ""}) == {}


def test_smi_list_output_pasted() -> None:
    text = (
        "$ nvidia-smi -L\n"
        "GPU 0: NVIDIA GeForce RTX 5090 (UUID: GPU-1b2c3d4e-aaaa-bbbb-cccc-000000000001)\n"
        "GPU 1: NVIDIA GeForce RTX 5090 (UUID: GPU-1b2c3d4e-aaaa-bbbb-cccc-000000000002)\n"
    )
    smi = nvidia.parse_smi({"nvidia-smi.txt": text})
    assert smi is not None and smi.driver_version is None
    assert [(g.index, g.name) for g in smi.gpus] == [
        (0, "NVIDIA GeForce RTX 5090"),
        (1, "NVIDIA GeForce RTX 5090"),
    ]
    assert smi.gpus[1].uuid == "GPU-1b2c3d4e-aaaa-bbbb-cccc-000000000002"
