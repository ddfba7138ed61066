"""Typed records of what a host's evidence says: the output of parsing, the input of diagnosis.

Every record keeps the raw lines it was built from (`Line`: section + text), so a finding can
quote its evidence verbatim. A field that the evidence does not give stays None / empty:
"unknown" is never guessed. Parsers (ollama_gpu_fix.parsers) build these; nothing here reads
a host.

Where the model ran, measured: `Snapshot.observation` (an `Observation`, from the probe's
`observation.txt`: a bounded generation on a live host, then /api/ps, the GPU's process list
and the API's listener, bound to the service exactly as the verification is). A rule reads it
before any log wording:

    obs = snapshot.observation
    if obs is not None and obs.on_gpu is not None:   # measured, from the service itself
        obs.on_gpu        # size_vram / size of the model in /api/ps: 0.0 CPU, 1.0 all in VRAM
        obs.runner_on_gpu # True: the service's runner holds GPU memory; False: the GPU's own
                          # list was read and it does not; None: no list on this host
        obs.tokens_per_s  # the generation's eval rate (None without a generation)
        obs.evidence      # Line("observation.txt", ...) to quote in a finding

`on_gpu` is None when nothing was measured: no observation asked (a bundle, `collect`), the
API not the service's own (`untrusted` says why), no model loaded or runnable (`skipped`).
`loaded_models` stays /api/ps as the probe found it before the observation.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from ollama_gpu_fix.records import field, record


# Records are compared by their fields nowhere and printed through report.to_json: only
# __init__ is generated (eq=False, repr=False). They are records (ollama_gpu_fix.records), not
# dataclasses: diagnose-bundle must start within 3x a bare interpreter (bench/startup.py), and
# `import dataclasses` alone is ~20 ms of it.
@record(frozen=True)
class Line:
    """One line of evidence and the bundle file it came from."""

    source: str
    text: str

    def __str__(self) -> str:
        return f"{self.source}: {self.text}"


# ---- probe bookkeeping --------------------------------------------------------------------


@record(eq=False, repr=False)
class ProbeMeta:
    """What only a live probe knows: which tools and files are absent, who ran it, where."""

    version: str | None = None
    uid: int | None = None
    tools: dict[str, str | None] = field(default_factory=dict)  # name -> path, None = absent
    absent_files: list[str] = field(default_factory=list)
    container: str | None = None  # docker, podman, lxc, systemd-nspawn, wsl, ... ; "none"
    systemd: bool | None = None  # /run/systemd/system exists (booted with systemd)
    arch: str | None = None
    rolled_back: list[str] = field(default_factory=list)  # fingerprints of undone fixes
    transaction: str | None = None  # "open": an earlier fix was interrupted (its journal)
    watchdog_files: dict[str, str] = field(default_factory=dict)  # installed path -> sha256
    watchdog_timer: str | None = None  # "enabled/active" (is-enabled/is-active of its timer)
    python3: str | None = None  # /usr/bin/python3's version, "3.11" (the watchdog runs it)
    # who listens on the API's port: "server" (the service or its child), "foreign:PID"
    api_owner: str | None = None
    raw: list[Line] = field(default_factory=list)


# ---- OS and platform ----------------------------------------------------------------------


@record(eq=False, repr=False)
class OsRelease:
    id: str | None = None  # ubuntu, debian, rhel, rocky, fedora, arch, ...
    id_like: list[str] = field(default_factory=list)
    version_id: str | None = None
    version_codename: str | None = None
    pretty_name: str | None = None
    raw: list[Line] = field(default_factory=list)


@record(eq=False, repr=False)
class KernelVersion:
    release: str | None = None  # e.g. 6.8.0-45-generic, 5.15.153.1-microsoft-standard-WSL2
    wsl: Literal["wsl1", "wsl2"] | None = None
    raw: list[Line] = field(default_factory=list)


# ---- PCI and kernel modules ---------------------------------------------------------------


@record(eq=False, repr=False)
class PciDevice:
    address: str  # 0000:01:00.0 (domain added when the source omits it)
    vendor_id: str | None = None  # lower-case hex without 0x: 10de, 1002, 8086
    device_id: str | None = None
    class_code: str | None = None  # 4 hex digits: 0300 VGA, 0302 3D, 0380 display
    driver: str | None = None  # nvidia, amdgpu, nouveau, i915, xe, vfio-pci, ...
    name: str | None = None  # human name from lspci, when known
    raw: Line | None = None

    @property
    def is_gpu(self) -> bool:
        return bool(self.class_code) and self.class_code.startswith("03")


@record(eq=False, repr=False)
class KernelModule:
    name: str
    size: int | None = None
    refcount: int | None = None
    raw: Line | None = None


# ---- NVIDIA -------------------------------------------------------------------------------


@record(eq=False, repr=False)
class NvidiaGpu:
    index: int | None = None
    name: str | None = None
    driver_version: str | None = None
    memory_total_mib: int | None = None
    memory_used_mib: int | None = None
    compute_cap: str | None = None  # "9.0"
    bus_id: str | None = None
    uuid: str | None = None
    raw: Line | None = None


@record(eq=False, repr=False)
class NvidiaSmi:
    """nvidia-smi (plain table and/or --query-gpu csv)."""

    driver_version: str | None = None
    cuda_version: str | None = None  # "13.0"; "N/A" when libcuda is not reachable
    gpus: list[NvidiaGpu] = field(default_factory=list)
    error: Line | None = None  # "Failed to initialize NVML: ...", "NVIDIA-SMI has failed ..."
    raw: list[Line] = field(default_factory=list)


@record(eq=False, repr=False)
class ComputeApp:
    pid: int | None
    process_name: str
    used_memory_mib: int | None = None
    raw: Line | None = None


@record(eq=False, repr=False)
class NvidiaKernelDriver:
    """/proc/driver/nvidia/version: the loaded kernel module."""

    version: str | None = None  # "580.95.05"
    flavour: str | None = None  # "Open Kernel Module", "Kernel Module"
    raw: list[Line] = field(default_factory=list)


@record(eq=False, repr=False)
class CudaToolkit:
    version: str | None  # "12.4", "11.8"
    path: str | None = None  # /usr/local/cuda-11.8
    package: str | None = None  # nvidia-cuda-toolkit, cuda-toolkit-12-4
    raw: Line | None = None


@record(eq=False, repr=False)
class CudaInstall:
    """nvcc --version plus the toolkits and CUDA/NVIDIA packages found on the host."""

    nvcc_version: str | None = None  # "12.4"
    nvcc_path: str | None = None
    toolkits: list[CudaToolkit] = field(default_factory=list)
    packages: dict[str, str] = field(default_factory=dict)  # package name -> version
    raw: list[Line] = field(default_factory=list)
    # library dirs that /etc/ld.so.conf(.d) lines naming cuda put on the loader path
    ld_conf_paths: list[str] = field(default_factory=list)


# ---- AMD ----------------------------------------------------------------------------------


@record(eq=False, repr=False)
class AmdAgent:
    """One GPU agent from rocminfo or one KFD topology node."""

    gfx: str | None = None  # gfx1031
    name: str | None = None  # marketing name
    uuid: str | None = None
    node: int | None = None
    vendor_id: str | None = None
    device_id: str | None = None
    drm_render_minor: int | None = None
    simd_count: int | None = None
    raw: Line | None = None


@record(eq=False, repr=False)
class Rocm:
    """rocminfo, rocm-smi, /opt/rocm/.info/version and KFD topology, merged."""

    version: str | None = None  # "6.1.2" from rocm-version.txt
    agents: list[AmdAgent] = field(default_factory=list)  # GPU agents from rocminfo
    kfd_nodes: list[AmdAgent] = field(default_factory=list)  # GPU nodes (simd_count > 0)
    smi_devices: list[str] = field(default_factory=list)  # device lines of rocm-smi
    error: Line | None = None  # rocminfo failing to open /dev/kfd, etc.
    raw: list[Line] = field(default_factory=list)


# ---- Vulkan, secure boot, Jetson ------------------------------------------------------------


@record(eq=False, repr=False)
class VulkanDevice:
    index: int | None = None
    name: str | None = None
    device_type: str | None = None  # PHYSICAL_DEVICE_TYPE_DISCRETE_GPU / INTEGRATED_GPU / CPU
    vendor_id: str | None = None  # lower-case hex
    driver_name: str | None = None
    api_version: str | None = None
    raw: Line | None = None


@record(eq=False, repr=False)
class Vulkan:
    devices: list[VulkanDevice] = field(default_factory=list)
    error: Line | None = None
    raw: list[Line] = field(default_factory=list)


@record(eq=False, repr=False)
class SecureBoot:
    enabled: bool | None = None
    raw: list[Line] = field(default_factory=list)


@record(eq=False, repr=False)
class TegraRelease:
    release: str | None = None  # "R36"
    revision: str | None = None  # "4.0"
    raw: list[Line] = field(default_factory=list)


# ---- users, devices, libraries -----------------------------------------------------------------


@record(eq=False, repr=False)
class UserIds:
    user: str
    uid: int | None = None
    gid: int | None = None
    groups: list[str] = field(default_factory=list)
    raw: Line | None = None


@record(eq=False, repr=False)
class DevNode:
    path: str  # /dev/kfd, /dev/dri/renderD128, /dev/nvidia0, /dev/dxg
    mode: str | None = None  # crw-rw----
    owner: str | None = None
    group: str | None = None
    raw: Line | None = None


@record(eq=False, repr=False)
class SharedLib:
    soname: str  # libcuda.so.1
    path: str  # /usr/lib/x86_64-linux-gnu/libcuda.so.1
    arch: str | None = None  # "x86-64", "i386"
    raw: Line | None = None


# ---- Ollama -------------------------------------------------------------------------------------


@record(eq=False, repr=False)
class OllamaVersion:
    version: str | None = None  # server version when it answered, else client version
    client_version: str | None = None
    server_reachable: bool | None = None  # False: "could not connect to a running Ollama"
    raw: list[Line] = field(default_factory=list)


@record(eq=False, repr=False)
class OllamaLibs:
    """Ollama's bundled lib/ollama directories."""

    roots: list[str] = field(default_factory=list)  # /usr/local/lib/ollama, /usr/lib/ollama
    variants: list[str] = field(default_factory=list)  # cuda_v12, cuda_v13, rocm, vulkan, ...
    rocblas_targets: list[str] = field(default_factory=list)  # gfx from TensileLibrary_lazy_*.dat
    files: list[str] = field(default_factory=list)
    raw: list[Line] = field(default_factory=list)


@record(eq=False, repr=False)
class UnitFile:
    path: str
    environment: dict[str, str] = field(default_factory=dict)  # Environment= in this file
    unset: list[str] = field(default_factory=list)  # UnsetEnvironment= in this file
    lines: list[Line] = field(default_factory=list)


@record(eq=False, repr=False)
class SystemdUnit:
    """`systemctl cat ollama` plus `systemctl show ollama -p ...`."""

    fragment: UnitFile | None = None
    dropins: list[UnitFile] = field(default_factory=list)
    exec_start: str | None = None
    user: str | None = None
    group: str | None = None
    active_state: str | None = None  # active, inactive, failed
    sub_state: str | None = None
    environment: dict[str, str] = field(default_factory=dict)  # effective, from `show`
    dropin_paths: list[str] = field(default_factory=list)  # loaded drop-ins, from `show`
    need_daemon_reload: bool | None = None
    missing: bool | None = None  # "No files found for ollama.service"
    environment_files: list[str] = field(default_factory=list)  # EnvironmentFile= paths
    main_pid: int | None = None
    raw: list[Line] = field(default_factory=list)


@record(eq=False, repr=False)
class OllamaProcess:
    """A running `ollama serve` process as seen in /proc.

    `trusted` says whether it is the service's own (its unit's main PID or cgroup, or a
    process of root, the ollama account or the unit's User= running a binary only root can
    write); only a trusted process's environment and address are taken as the server's."""

    pid: int | None = None
    user: str | None = None
    cmdline: str | None = None
    parent: str | None = None  # parent's comm: systemd, bash, docker-init, ...
    under_systemd: bool | None = None  # cgroup is ollama.service
    environment: dict[str, str] = field(default_factory=dict)  # GPU-relevant variables only
    trusted: bool | None = None  # None: a bundle from before the probe said (pasted)
    trust: str | None = None  # mainpid, cgroup, uid
    raw: list[Line] = field(default_factory=list)


@record(eq=False, repr=False)
class ShellEnvAssignment:
    """A GPU-relevant variable set in a shell profile (read by logins, never by systemd)."""

    file: str
    name: str
    value: str
    raw: Line | None = None


@record(eq=False, repr=False)
class LoadedModel:
    name: str
    size: int | None = None  # bytes
    size_vram: int | None = None
    processor: str | None = None  # "100% GPU", "48%/52% CPU/GPU", "100% CPU"
    raw: Line | None = None

    @property
    def gpu_fraction(self) -> float | None:
        """Share of the model in VRAM: from /api/ps sizes, else the `ollama ps` PROCESSOR text."""
        if self.size and self.size_vram is not None and self.size > 0:
            return min(self.size_vram / self.size, 1.0)
        text = (self.processor or "").strip()
        if text == "100% GPU":
            return 1.0
        if text == "100% CPU":
            return 0.0
        match = re.match(r"(\d+)%/(\d+)% CPU/GPU", text)
        return int(match.group(2)) / 100 if match else None


@record(eq=False, repr=False)
class ObservedProcess:
    """A process in the GPU's own process list during the observation."""

    pid: int
    name: str
    used_mib: int | None = None  # GPU memory it holds (None: the tool does not say)
    source: str = "nvidia-smi"  # nvidia-smi, nvml, rocm-smi, kfd
    runner: bool = False  # the service's own process (MainPID or below it) holding memory
    raw: Line | None = None


@record(eq=False, repr=False)
class Observation:
    """Where the model ran, measured on the live host (module docstring: how a rule reads it).

    mode "generate": a bounded generation ran first (the fix; diagnose with observe_generate);
    "look": /api/ps, the process list and the listener as found, nothing generated."""

    mode: str  # generate | look
    model: str | None = None  # the model run (look: the one /api/ps lists)
    skipped: str | None = None  # why nothing was observed (no local model, API not trusted)
    untrusted: str | None = None  # why the API's answers are not the service's (then no value)
    generated: bool | None = None  # the generation answered done (None: look, or not asked)
    error: str | None = None  # the generation's failure, in Ollama's words
    tokens_per_s: float | None = None  # eval_count / eval_duration of the generation
    size: int | None = None  # /api/ps size of the model, bytes
    size_vram: int | None = None  # /api/ps size_vram
    on_gpu: float | None = None  # size_vram / size, 0.0 to 1.0; None: not measured
    processor: str | None = None  # as `ollama ps` prints it: "100% GPU", "100% CPU", ...
    gpu_processes: list[ObservedProcess] | None = None  # None: no GPU process list here
    runner_on_gpu: bool | None = None  # the service's runner holds GPU memory (None: no list)
    summary: str = ""  # one line: where the model ran, and what says so
    evidence: list[Line] = field(default_factory=list)


# ---- Ollama's log -------------------------------------------------------------------------------


@record(eq=False, repr=False)
class ComputeDevice:
    """One `msg="inference compute"` line (era A fields or era B/C fields)."""

    library: str | None = None  # cuda, rocm, cpu (era A); CUDA, ROCm, Vulkan, cpu (B/C)
    id: str | None = None
    variant: str | None = None
    compute: str | None = None  # "8.6", "gfx1030"
    driver: str | None = None
    name: str | None = None
    description: str | None = None
    type: str | None = None  # discrete, iGPU
    total: str | None = None  # "12.0 GiB"
    available: str | None = None
    raw: Line | None = None

    @property
    def is_cpu(self) -> bool:
        return (self.library or "").lower() == "cpu"


@record(eq=False, repr=False)
class LogEvent:
    """A log line that matched a known signature (knowledge.log_signatures)."""

    signature: str  # signature id, e.g. "nvidia-driver-too-old"
    line: Line
    fields: dict[str, str] = field(default_factory=dict)  # captured key=value pairs


@record(eq=False, repr=False)
class OllamaLog:
    compute: list[ComputeDevice] = field(default_factory=list)  # of the last discovery run
    events: list[LogEvent] = field(default_factory=list)
    server_env: dict[str, str] | None = None  # from msg="server config" env="map[...]"
    server_env_line: Line | None = None
    version: str | None = None  # from a `Listening on ... (version X)` line
    total_vram: str | None = None  # "0 B" from low-vram / vram-based-context lines
    layers_offloaded: tuple[int, int] | None = None  # (on GPU, total) of the last load
    layers_line: Line | None = None  # the line layers_offloaded comes from
    scheduled: list[Line] = field(default_factory=list)  # sched `gpu memory` lines, 0.11.5+
    model_memory: str | None = None  # `total memory` size="5.0 GiB" of the last load
    gpu_lines: list[Line] = field(default_factory=list)  # other lines that speak of GPUs
    line_count: int = 0
    # every evidence line of the last run with its trusted text and fields (placement.py and
    # the error families read these, never the raw line): (line, trusted text, fields)
    records: list[tuple[Line, str, dict[str, str]]] = field(default_factory=list)


# ---- containers ---------------------------------------------------------------------------------


@record(eq=False, repr=False)
class ContainerRun:
    raw: list[Line] = field(default_factory=list)
    gpus_flag: bool = False  # --gpus / deploy.resources.reservations.devices
    devices: list[str] = field(default_factory=list)  # --device /dev/kfd ...
    env: dict[str, str] = field(default_factory=dict)
    runtime: str | None = None
    image: str | None = None
    errors: list[Line] = field(default_factory=list)  # the runtime refusing the GPU


# ---- the snapshot -------------------------------------------------------------------------------


@record(eq=False, repr=False)
class Snapshot:
    """Everything known about one host. A None field means the evidence was not collected."""

    probe: ProbeMeta | None = None
    os: OsRelease | None = None
    kernel: KernelVersion | None = None
    pci: list[PciDevice] | None = None
    modules: list[KernelModule] | None = None
    nvidia_smi: NvidiaSmi | None = None
    nvidia_apps: list[ComputeApp] | None = None
    nvidia_kernel: NvidiaKernelDriver | None = None
    cuda: CudaInstall | None = None
    packages: dict[str, str] | None = None  # GPU-related installed packages: name -> version
    rocm: Rocm | None = None
    vulkan: Vulkan | None = None
    secure_boot: SecureBoot | None = None
    users: list[UserIds] | None = None
    dev_nodes: list[DevNode] | None = None
    libs: list[SharedLib] | None = None
    tegra: TegraRelease | None = None
    ollama_version: OllamaVersion | None = None
    ollama_libs: OllamaLibs | None = None
    unit: SystemdUnit | None = None
    unit_failures: list[Line] | None = None  # systemd: ollama.service exited / failed
    process: OllamaProcess | None = None  # the server: the service's own process
    foreign_processes: list[OllamaProcess] | None = None  # `ollama serve` of other users
    shell_env: list[ShellEnvAssignment] | None = None
    loaded_models: list[LoadedModel] | None = None  # api-ps.json, else `ollama ps`
    installed_models: dict[str, int | None] | None = None  # api-tags.json: name -> size
    observation: Observation | None = None  # observation.txt: where the model ran, measured
    log: OllamaLog | None = None
    dmesg: list[Line] | None = None
    traces: list[tuple[str, Line]] | None = None  # (platform, line): parsers/traces.py
    container_run: ContainerRun | None = None
    watchdog: dict[str, Any] | None = None  # watchdog.json: the watchdog's last check
    sections: list[str] = field(default_factory=list)  # bundle files that were present
    # what could not be read or parsed, and why (a failed reader is reported, never silent)
    problems: list[str] = field(default_factory=list)
