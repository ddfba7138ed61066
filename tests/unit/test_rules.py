"""Diagnosis rules over small, realistic bundles: one scenario per failure mode and its traps.

Each bundle is what a user (or the probe) would hand over; the assertion is the primary code
and the fix a user would be told to apply. Log lines are real ones from ollama-anchor.md
section 3 and the linked issues.
"""

from __future__ import annotations

import pytest

from ollama_gpu_fix.parsers import build_snapshot
from ollama_gpu_fix.rules import diagnose

OS_UBUNTU = 'NAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\nID_LIKE=debian\n'
PROC_NATIVE = (
    "Linux version 6.8.0-45-generic (buildd@lcy02-amd64-115) (gcc 13.2.0) #45-Ubuntu SMP\n"
)
PROC_WSL2 = (
    "Linux version 5.15.153.1-microsoft-standard-WSL2 (root@941d701f84f1) (gcc (GCC) 11.2.0)"
    " #1 SMP Fri Mar 29 23:14:13 UTC 2024\n"
)
PCI_4090 = "0000:01:00.0 0x10de 0x2684 0x030000 nvidia\n0000:00:02.0 0x1af4 0x1050 0x030000 -\n"
PCI_4090_NODRIVER = "0000:01:00.0 0x10de 0x2684 0x030000 -\n"
PCI_6700XT = "0000:03:00.0 0x1002 0x73df 0x030000 amdgpu\n"
PCI_NONE = "0000:00:01.0 0x8086 0x7000 0x060100 -\n0000:00:02.0 0x1234 0x1111 0x030000 bochs-drm\n"
SMI_535 = (
    "| NVIDIA-SMI 535.183.01             Driver Version: 535.183.01   CUDA Version: 12.2     |\n"
)
SMI_580 = (
    "| NVIDIA-SMI 580.95.05              Driver Version: 580.95.05      CUDA Version: 13.0     |\n"
)
QUERY_P40 = (
    "index, name, driver_version, memory.total [MiB], memory.used [MiB], compute_cap,"
    " pci.bus_id, uuid\n"
    "0, Tesla P40, 535.183.01, 24576 MiB, 0 MiB, 6.1, 00000000:01:00.0, GPU-1\n"
)
META_NATIVE = (
    "probe=2\nuid=0\narch=x86_64\nsystemd=yes\ncontainer=none\ntool.ollama=/usr/local/bin/ollama\n"
)
KFD_1031 = (
    "== node 0\ncpu_cores_count 16\nsimd_count 0\ngfx_target_version 0\n"
    "== node 1\nsimd_count 80\nvendor_id 4098\ndevice_id 29663\ngfx_target_version 100301\n"
    "drm_render_minor 128\n"
)
KFD_1010 = KFD_1031.replace("100301", "100100")
KFD_1100 = KFD_1031.replace("100301", "110000")
KFD_803 = KFD_1031.replace("100301", "80003")
UNIT = (
    "# /etc/systemd/system/ollama.service\n[Unit]\nDescription=Ollama Service\n"
    "After=network-online.target\n\n[Service]\nExecStart=/usr/local/bin/ollama serve\n"
    "User=ollama\nGroup=ollama\nRestart=always\nRestartSec=3\n"
    'Environment="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"\n\n'
    "[Install]\nWantedBy=default.target\n"
)


def _log(*lines: str, version: str = "0.33.0") -> str:
    head = [
        'time=2026-11-20T10:00:00.000Z level=INFO source=routes.go:1500 msg="server config"'
        ' env="map[CUDA_VISIBLE_DEVICES: HSA_OVERRIDE_GFX_VERSION: OLLAMA_HOST:http://127.0.0.1:11434'
        ' OLLAMA_VULKAN:true]"',
        "time=2026-11-20T10:00:00.001Z level=INFO source=routes.go:1550 msg="
        f'"Listening on 127.0.0.1:11434 (version {version})"',
        'time=2026-11-20T10:00:00.002Z level=INFO source=runner.go:67 msg="discovering available GPUs..."',
    ]
    return "\n".join(head + list(lines)) + "\n"


CPU_ONLY = (
    'time=2026-11-20T10:00:01Z level=INFO source=types.go:60 msg="inference compute" id=cpu'
    ' library=cpu compute="" name=cpu description=cpu libdirs=ollama driver="" pci_id="" type=""'
    ' total="31.2 GiB" available="28.0 GiB"'
)
CUDA_OK = (
    'time=2026-11-20T10:00:01Z level=INFO source=types.go:60 msg="inference compute"'
    ' id=GPU-5a3c filter_id="" library=CUDA compute=8.9 name=CUDA0'
    ' description="NVIDIA GeForce RTX 4090" libdirs=ollama,cuda_v13 driver=13.0'
    ' pci_id=0000:01:00.0 type=discrete total="24.0 GiB" available="23.1 GiB"'
)


def findings(files: dict[str, str]):
    return diagnose(build_snapshot(files))


# ---- NVIDIA -------------------------------------------------------------------------------


def test_era_c_driver_floor_line_means_driver_too_old() -> None:
    log = _log(
        'time=2026-11-20T10:00:01Z level=WARN source=cuda_compat.go:80 msg="NVIDIA driver too old"'
        ' device=GPU-1 compute=8.6 driver=535 required_driver="550 or newer"',
        CPU_ONLY,
    )
    d = findings({"ollama-serve.log": log, "nvidia-smi.txt": SMI_535})
    assert d.primary == "nvidia-driver-too-old"
    assert d.primary_finding.remedy.automatic


def test_driver_below_floor_without_any_log_line() -> None:
    """Era C filters old drivers silently at INFO (#17290): the table must catch it."""
    d = findings(
        {
            "probe-meta.txt": META_NATIVE,
            "pci-devices.txt": PCI_4090,
            "nvidia-smi.txt": SMI_535,
            "nvidia-smi-query.csv": QUERY_P40,
            "ollama-version.txt": "ollama version is 0.33.0\n",
        }
    )
    assert d.primary == "nvidia-driver-too-old"
    assert any("570" in line.text for line in d.primary_finding.evidence)  # CC 6.1 needs 570


def test_current_driver_with_working_cuda_is_ok() -> None:
    d = findings({"nvidia-smi.txt": SMI_580, "ollama-serve.log": _log(CUDA_OK)})
    assert d.primary == "ok-gpu"


def test_cuda_runtime_insufficient_line() -> None:
    log = _log(
        "ggml_cuda_init: failed to initialize CUDA: CUDA driver version is insufficient for"
        " CUDA runtime version",
        CPU_ONLY,
    )
    assert findings({"ollama-serve.log": log}).primary == "nvidia-driver-too-old"


def test_nvidia_gpu_without_driver_from_sysfs() -> None:
    d = findings(
        {
            "probe-meta.txt": META_NATIVE
            + "tool.nvidia-smi=\nabsent=/proc/driver/nvidia/version\n",
            "pci-devices.txt": PCI_4090_NODRIVER,
            "lsmod.txt": "",
            "ollama-serve.log": _log(CPU_ONLY),
        }
    )
    assert d.primary == "nvidia-no-driver"


def test_nvidia_smi_cannot_talk_to_driver() -> None:
    smi = (
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure"
        " that the latest NVIDIA driver is installed and running.\n"
    )
    assert findings({"nvidia-smi.txt": smi}).primary == "nvidia-no-driver"


def test_driver_library_mismatch_after_upgrade() -> None:
    smi = (
        "Failed to initialize NVML: Driver/library version mismatch\nNVML library version: 580.95\n"
    )
    assert findings({"nvidia-smi.txt": smi}).primary == "nvidia-driver-mismatch"


def test_stale_cuda11_on_loader_path_is_runtime_mismatch() -> None:
    log = (
        'time=2024-05-01T10:00:00Z level=INFO source=gpu.go:127 msg="looking for compatible GPUs"\n'
        'time=2024-05-01T10:00:00Z level=INFO source=gpu.go:310 msg="Unable to load cudart"'
        ' library=/usr/local/cuda-11.8/lib64/libcudart.so.11.8.89 error="your nvidia driver is'
        ' too old or missing"\n'
        'time=2024-05-01T10:00:00Z level=INFO source=gpu.go:347 msg="no compatible GPUs were'
        ' discovered"\n'
    )
    d = findings({"ollama-serve.log": log, "nvidia-smi.txt": SMI_580})
    assert d.primary == "cuda-runtime-mismatch"
    assert d.primary_finding.remedy.params["install"] == "cuda-toolkit-12-4"


def test_suspend_resume_999() -> None:
    log = (
        'time=2024-03-01T08:00:00Z level=WARN source=gpu.go:228 msg="unknown error initializing'
        " cuda driver library /usr/lib/x86_64-linux-gnu/libcuda.so.550.54.14: cuda driver library"
        ' init failure: 999"\n'
    )
    assert findings({"ollama-serve.log": log}).primary == "nvidia-uvm-broken"


def test_kepler_too_old() -> None:
    log = 'time=2024-06-01T00:00:00Z level=INFO source=gpu.go:250 msg="[0] CUDA GPU is too old. Compute Capability detected: 3.7"\n'
    assert findings({"ollama-serve.log": log}).primary == "gpu-too-old"


# ---- AMD ------------------------------------------------------------------------------------


def test_gfx1031_on_current_ollama_gets_override_10_3_0() -> None:
    log = _log(
        'time=2026-11-20T10:00:01Z level=WARN source=amd.go:120 msg="dropping ROCm device — no'
        ' rocblas support for gfx target" gfx_target=gfx1031 supported=map[gfx1030:true]'
        ' hint="set HSA_OVERRIDE_GFX_VERSION to map to a supported target"',
        CPU_ONLY,
    )
    d = findings({"ollama-serve.log": log, "kfd-topology.txt": KFD_1031})
    assert d.primary == "rocm-gfx-unsupported"
    assert d.primary_finding.remedy.params["env"] == {"HSA_OVERRIDE_GFX_VERSION": "10.3.0"}


def test_gfx1031_from_hardware_alone() -> None:
    d = findings(
        {
            "kfd-topology.txt": KFD_1031,
            "pci-devices.txt": PCI_6700XT,
            "ollama-version.txt": "ollama version is 0.33.0\n",
        }
    )
    assert d.primary == "rocm-gfx-unsupported"


def test_rdna1_on_current_ollama_needs_vulkan_not_an_override() -> None:
    d = findings(
        {
            "kfd-topology.txt": KFD_1010,
            "pci-devices.txt": "0000:03:00.0 0x1002 0x731f 0x030000 amdgpu\n",
            "ollama-version.txt": "ollama version is 0.31.5\n",
            "ollama-serve.log": _log(CPU_ONLY, version="0.31.5"),
        }
    )
    assert d.primary == "vulkan-needed"
    assert "rocm-gfx-unsupported" not in [f.code for f in d.findings]


def test_polaris_in_opt_in_vulkan_era_sets_ollama_vulkan() -> None:
    log = _log(
        'time=2025-12-01T00:00:00Z level=INFO source=runner.go:80 msg="experimental Vulkan'
        ' support disabled.  To enable, set OLLAMA_VULKAN=1"',
        CPU_ONLY,
        version="0.13.5",
    )
    d = findings({"ollama-serve.log": log, "kfd-topology.txt": KFD_803})
    assert d.primary == "vulkan-needed"
    assert d.primary_finding.remedy.params["env"] == {"OLLAMA_VULKAN": "1"}


def test_kfd_permission_denied_from_groups_and_nodes() -> None:
    d = findings(
        {
            "kfd-topology.txt": KFD_1100,
            "groups.txt": "uid=998(ollama) gid=998(ollama) groups=998(ollama)\n",
            "dev-nodes.txt": "crw-rw---- 1 root render 235, 0 Nov 21 10:00 /dev/kfd\n",
            "systemctl-cat.txt": UNIT,
            "ollama-version.txt": "ollama version is 0.33.0\n",
        }
    )
    assert d.primary == "device-permissions"
    assert d.primary_finding.remedy.params == {"user": "ollama", "groups": ["render", "video"]}


def test_empty_supported_list_means_rocm_missing() -> None:
    log = (
        'time=2024-08-01T00:00:00Z level=WARN source=amd_windows.go:140 msg="amdgpu is not'
        ' supported (supported types:[])" gpu_type=gfx1103 gpu=0 library=C:\\Users\\x\\rocm\n'
    )
    assert findings({"ollama-serve.log": log}).primary == "rocm-missing"


def test_amd_discovery_timeout_is_old_amdgpu() -> None:
    log = _log(
        'time=2026-01-01T00:00:30Z level=INFO source=runner.go:90 msg="failure during GPU discovery"'
        ' OLLAMA_LIBRARY_PATH="[/usr/local/lib/ollama /usr/local/lib/ollama/rocm]"'
        ' extra_envs=map[GGML_CUDA_INIT:1] error="failed to finish discovery before timeout"',
        CPU_ONLY,
        version="0.18.2",
    )
    assert findings({"ollama-serve.log": log, "pci-devices.txt": PCI_6700XT}).primary == (
        "rocm-driver-too-old"
    )


# ---- service environment ------------------------------------------------------------------------


def test_cuda_visible_devices_minus_one_in_dropin() -> None:
    cat = UNIT + (
        "\n# /etc/systemd/system/ollama.service.d/gpu.conf\n[Service]\n"
        'Environment="CUDA_VISIBLE_DEVICES=-1"\n'
    )
    show = (
        "ActiveState=active\nSubState=running\nUser=ollama\n"
        "Environment=PATH=/usr/bin CUDA_VISIBLE_DEVICES=-1\n"
        "DropInPaths=/etc/systemd/system/ollama.service.d/gpu.conf\n"
    )
    d = findings(
        {
            "systemctl-cat.txt": cat,
            "systemctl-show.txt": show,
            "nvidia-smi.txt": SMI_580,
            "ollama-serve.log": _log(CPU_ONLY),
        }
    )
    assert d.primary == "env-forces-cpu"
    assert d.primary_finding.remedy.params["unset"] == ["CUDA_VISIBLE_DEVICES"]


def test_override_in_bashrc_is_not_applied() -> None:
    d = findings(
        {
            "kfd-topology.txt": KFD_1031,
            "shell-env.txt": "/root/.bashrc:export HSA_OVERRIDE_GFX_VERSION=10.3.0\n",
            "systemctl-cat.txt": UNIT,
            "systemctl-show.txt": "ActiveState=active\nUser=ollama\nEnvironment=PATH=/usr/bin\n",
            "ollama-version.txt": "ollama version is 0.33.0\n",
            "ollama-serve.log": _log(CPU_ONLY),
        }
    )
    assert d.primary == "override-not-applied"
    assert d.primary_finding.remedy.params["env"] == {"HSA_OVERRIDE_GFX_VERSION": "10.3.0"}


def test_quoted_override_value_is_not_applied() -> None:
    """#5090: escaped quotes survive systemd's unquoting and reach libhsakmt, which rejects them."""
    cat = UNIT + (
        "\n# /etc/systemd/system/ollama.service.d/override.conf\n[Service]\n"
        'Environment="HSA_OVERRIDE_GFX_VERSION=\\"10.3.0\\""\n'
    )
    d = findings({"systemctl-cat.txt": cat, "kfd-topology.txt": KFD_1031})
    assert d.primary == "override-not-applied"
    assert d.primary_finding.remedy.params["env"] == {"HSA_OVERRIDE_GFX_VERSION": "10.3.0"}


def test_plainly_quoted_override_is_fine_for_systemd() -> None:
    """Environment=X="10.3.0" is unquoted by systemd (>= v228): not a finding of its own."""
    cat = UNIT + (
        "\n# /etc/systemd/system/ollama.service.d/override.conf\n[Service]\n"
        'Environment=HSA_OVERRIDE_GFX_VERSION="10.3.0"\n'
    )
    d = findings({"systemctl-cat.txt": cat, "kfd-topology.txt": KFD_1031})
    assert "override-not-applied" not in [f.code for f in d.findings]


def test_not_installed_and_not_running() -> None:
    meta = "probe=2\nuid=0\nsystemd=yes\ncontainer=none\ntool.ollama=\n"
    # no GPU and no Ollama: the answer to "why not on the GPU" is no-gpu (the README says so);
    # the missing Ollama is a note
    bare = findings({"probe-meta.txt": meta, "pci-devices.txt": PCI_NONE})
    assert bare.primary == "no-gpu"
    assert [f.severity for f in bare.findings if f.code == "ollama-not-installed"] == ["info"]
    assert findings({"probe-meta.txt": meta, "pci-devices.txt": PCI_4090}).primary == (
        "ollama-not-installed"
    )
    down = {
        "probe-meta.txt": META_NATIVE,
        "pci-devices.txt": PCI_4090,
        "nvidia-smi.txt": SMI_580,
        "systemctl-cat.txt": UNIT,
        "systemctl-show.txt": "ActiveState=failed\nSubState=failed\nUser=ollama\n",
        "ollama-version.txt": "Warning: could not connect to a running Ollama instance\n"
        "Warning: client version is 0.33.0\n",
    }
    assert findings(down).primary == "ollama-not-running"


# ---- platforms ------------------------------------------------------------------------------


def test_wsl2_guest_driver_from_packages() -> None:
    d = findings(
        {
            "proc-version.txt": PROC_WSL2,
            "packages.txt": "nvidia-driver-550 550.120-0ubuntu0.24.04.1\n"
            "libnvidia-compute-550 550.120-0ubuntu0.24.04.1\n",
            "ollama-serve.log": _log(CPU_ONLY),
        }
    )
    assert d.primary == "wsl2-linux-driver-in-guest"
    assert "nvidia-driver-550" in d.primary_finding.remedy.params["packages"]


def test_wsl2_passthrough_broken() -> None:
    log = (
        'time=2024-09-01T00:00:00Z level=INFO source=gpu.go:600 msg="no nvidia devices detected'
        ' by library /usr/lib/wsl/lib/libcuda.so.1"\n'
    )
    assert findings({"ollama-serve.log": log}).primary == "wsl2-passthrough-broken"


def test_wsl1() -> None:
    proc = "Linux version 4.4.0-19041-Microsoft (Microsoft@Microsoft.com) (gcc version 5.4.0) #1237-Microsoft\n"
    assert findings({"proc-version.txt": proc}).primary == "wsl1-unsupported"


def test_container_without_compute_capability() -> None:
    d = findings(
        {
            "probe-meta.txt": "probe=2\ncontainer=docker\ntool.ollama=/bin/ollama\n",
            "ollama-process.txt": "pid=1\nuser=root\ncmdline=/bin/ollama serve\n"
            "env NVIDIA_DRIVER_CAPABILITIES=utility\nenv NVIDIA_VISIBLE_DEVICES=all\n",
            "nvidia-smi.txt": "| NVIDIA-SMI 550.54.14   Driver Version: 550.54.14   CUDA Version: N/A |\n",
            "ollama-serve.log": _log(CPU_ONLY),
        }
    )
    assert d.primary == "container-no-gpu-access"


# ---- outcomes ---------------------------------------------------------------------------------------


def test_no_gpu_machine_says_cpu_is_expected() -> None:
    d = findings(
        {
            "probe-meta.txt": META_NATIVE,
            "pci-devices.txt": PCI_NONE,
            "os-release.txt": OS_UBUNTU,
            "proc-version.txt": PROC_NATIVE,
            "ollama-serve.log": _log(CPU_ONLY),
        }
    )
    assert d.primary == "no-gpu"


def test_partial_offload_from_api_ps() -> None:
    ps = '{"models":[{"name":"llama3:70b","model":"llama3:70b","size":42000000000,"size_vram":14000000000}]}'
    d = findings({"api-ps.json": ps, "nvidia-smi.txt": SMI_580, "ollama-serve.log": _log(CUDA_OK)})
    assert d.primary == "vram-insufficient"


def test_partial_offload_from_ollama_ps_table() -> None:
    table = (
        "NAME          ID              SIZE     PROCESSOR          UNTIL\n"
        "llama3:70b    bcfb190ca3a7    42 GB    48%/52% CPU/GPU    4 minutes from now\n"
    )
    assert findings({"ollama-ps.txt": table, "nvidia-smi.txt": SMI_580}).primary == (
        "vram-insufficient"
    )


def test_igpu_dropped_by_policy() -> None:
    log = _log(
        'time=2026-11-20T10:00:01Z level=INFO source=runner.go:396 msg="dropping integrated GPU;'
        ' to enable, set OLLAMA_IGPU_ENABLE=1" id=0 library=Vulkan name=Vulkan0'
        ' description="AMD Radeon 780M Graphics"',
        CPU_ONLY,
    )
    d = findings({"ollama-serve.log": log})
    assert d.primary == "igpu-disabled"
    assert d.primary_finding.remedy.params["env"] == {"OLLAMA_IGPU_ENABLE": "1"}


def test_unexplained_fallback_is_other_with_evidence() -> None:
    log = _log(
        'time=2026-11-20T10:00:01Z level=INFO source=runner.go:90 msg="failure during GPU discovery"'
        ' OLLAMA_LIBRARY_PATH="[/usr/local/lib/ollama /usr/local/lib/ollama/cuda_v13]"'
        ' error="runner crashed"',
        CPU_ONLY,
    )
    d = findings({"ollama-serve.log": log, "nvidia-smi.txt": SMI_580})
    assert d.primary == "other"
    assert any("failure during GPU discovery" in ln.text for ln in d.primary_finding.evidence)


@pytest.mark.parametrize("garbage", ["", "\x00\x01\x02", "inference compute library=", "{" * 50])
def test_garbage_never_raises(garbage: str) -> None:
    files = {name: garbage for name in ("ollama-serve.log", "nvidia-smi.txt", "api-ps.json")}
    assert findings(files).primary


def test_cudart_error_35_is_insufficient_driver() -> None:
    log = (
        'time=2024-02-01T00:00:00Z level=INFO source=gpu.go:300 msg="Unable to load cudart"'
        ' library=/tmp/ollama1/runners/cuda_v12/libcudart.so.12 error="cudart init failure: 35"\n'
    )
    assert findings({"ollama-serve.log": log}).primary == "nvidia-driver-too-old"


def test_no_cuda_device_on_bare_metal_with_secure_boot_is_no_driver() -> None:
    d = findings(
        {
            "probe-meta.txt": META_NATIVE + "absent=/proc/driver/nvidia/version\n",
            "pci-devices.txt": PCI_4090_NODRIVER,
            "mokutil.txt": "SecureBoot enabled\n",
            "ollama-serve.log": _log(
                "ggml_cuda_init: failed to initialize CUDA: no CUDA-capable device is detected",
                CPU_ONLY,
            ),
        }
    )
    assert d.primary == "nvidia-no-driver"
    assert "MOK" in d.primary_finding.remedy.summary


def test_gpu_out_of_memory_is_vram_not_driver() -> None:
    log = _log(CUDA_OK, "CUDA error: out of memory\n  current device: 0, in function alloc")
    assert findings({"ollama-serve.log": log}).primary == "vram-insufficient"


def test_cpu_buffer_allocation_failure_is_not_vram() -> None:
    log = _log(
        CUDA_OK,
        "ggml_backend_cpu_buffer_type_alloc_buffer: failed to allocate CPU buffer of size 4000000",
    )
    assert findings({"ollama-serve.log": log}).primary == "ok-gpu"


def test_silent_cpu_result_on_vulkan_default_era_is_not_vulkan_needed() -> None:
    """From v0.30 Vulkan is on by default; a silent CPU result there is not 'enable Vulkan'."""
    assert findings({"ollama-serve.log": _log(CPU_ONLY, version="0.33.0")}).primary == "other"


def test_loaded_driver_beats_an_unreadable_pci_binding() -> None:
    """sysfs may not show the driver link (containers, odd kernels); a loaded module decides."""
    d = findings(
        {
            "probe-meta.txt": META_NATIVE,
            "pci-devices.txt": PCI_4090_NODRIVER,
            "proc-driver-nvidia-version.txt": "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.90.07  Release Build  (dvs-builder@U16-I3-B03-4-3)  Fri May 31 09:30:47 UTC 2024\n",
            "nvidia-smi.txt": SMI_580.replace("580.95.05", "550.90.07").replace("13.0", "12.4"),
            "ollama-serve.log": _log(CUDA_OK),
        }
    )
    assert d.primary == "ok-gpu"
    assert "nvidia-no-driver" not in [f.code for f in d.findings]


def test_wsl2_guest_driver_is_the_cause_not_the_passthrough() -> None:
    d = findings(
        {
            "proc-version.txt": PROC_WSL2,
            "packages.txt": "nvidia-driver-550 550.120-0ubuntu0.24.04.1\n",
            "nvidia-smi.txt": "Failed to initialize NVML: N/A\n",
            "ollama-serve.log": _log(CPU_ONLY),
        }
    )
    assert d.primary == "wsl2-linux-driver-in-guest"
    passthrough = [f for f in d.findings if f.code == "wsl2-passthrough-broken"]
    assert all(f.severity == "warning" for f in passthrough)


def test_service_caught_alive_while_another_user_holds_its_port_is_not_running() -> None:
    """A crash-looping service whose process the probe caught between start and crash:
    alice's `ollama serve` holds the port, so the service serves nothing (the lab's
    real-foreign-serve host, where this race made the fix verify instead of refusing)."""
    files = {
        "probe-meta.txt": "probe=2\nuid=0\nsystemd=yes\ncontainer=none\n"
                          "tool.ollama=/usr/local/bin/ollama\nmainpid=1180\nserver=1180\n"
                          "api=skipped\napi-owner=foreign:4242\n",
        "ollama-process.txt": "pid=4242\nuser=alice\nparent=bash\ncmdline=ollama serve\n"
                              "trusted=no\n"
                              "pid=1180\nuser=ollama\nparent=systemd\n"
                              "cgroup=0::/system.slice/ollama.service\n"
                              "cmdline=/usr/local/bin/ollama serve\ntrusted=yes\ntrust=mainpid\n",
        "systemctl-show.txt": "ActiveState=active\nSubState=running\nMainPID=1180\nNRestarts=4\n",
    }
    d = findings(files)
    assert d.primary == "ollama-not-running"
    assert any("api-owner=foreign:4242" in ln.text for ln in d.primary_finding.evidence)
    assert "alice" in d.primary_finding.summary
