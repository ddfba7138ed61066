"""The action vocabulary: one name per kind of change, from rule to plan to report.

A rule's Remedy.action, a plan Step.action, the remedy deploy that applies it
(ollama_gpu_fix.deploy.remedies.registry) and the JSON report all use these names. Each action
says what it changes (and so which knob gates it and whether it can be undone), which checks
the preflight must pass before it runs, and which evidence counts for it: only lines read from
the host's own state, never text another user or an HTTP client can write alone.
"""

from __future__ import annotations

from ollama_gpu_fix.records import record

# What a step changes: gates the policy knob and says whether a rollback can undo it.
SERVICE, MODULE, PACKAGES, DRIVER, REBOOT = "service", "module", "packages", "driver", "reboot"
UNDO = {
    SERVICE: "rolled back automatically if verification fails",
    MODULE: "a module reload is what a reboot would do; nothing to undo",
    PACKAGES: "package changes are not undone automatically",
    DRIVER: "a driver change is not undone automatically",
    REBOOT: "a reboot cannot be undone",
}
KNOB = {PACKAGES: "allow_packages", DRIVER: "allow_driver_change", REBOOT: "allow_reboot"}

# Preflight checks (ollama_gpu_fix/preflight.py): what must hold before the first change.
FILES = "files"  # every file the step writes: root's own, regular, writable (no ro mount, no +i)
APT = "apt"  # apt simulation of every install and purge; sources and keyrings reconciled
KERNEL_MODULE = "kernel-module"  # headers for the running kernel, Secure Boot off
PORT = "port"  # the API port is free or held by ollama.service itself
USERS = "users"  # every user and group the step names exists
SYSTEMD = "systemd"  # a running systemd manages ollama.service

# Sections of a probe whose lines are the host's own state. A log line alone never justifies a
# package or driver change: Ollama writes text its clients choose into the same log.
_STATE = frozenset({
    "probe-meta.txt", "os-release.txt", "proc-version.txt", "lspci.txt", "pci-devices.txt",
    "lsmod.txt", "nvidia-smi.txt", "nvidia-smi-query.csv", "proc-driver-nvidia-version.txt",
    "nvcc-version.txt", "cuda-toolkits.txt", "packages.txt", "rocminfo.txt", "rocm-smi.txt",
    "rocm-version.txt", "kfd-topology.txt", "vulkaninfo.txt", "mokutil.txt", "groups.txt",
    "dev-nodes.txt", "ldconfig.txt", "ollama-version.txt", "ollama-libs.txt",
    "systemctl-cat.txt", "systemctl-show.txt", "ollama-process.txt", "dmesg.txt",
    "nv-tegra-release.txt",
})
_LOG = frozenset({"ollama-serve.log", "api-ps.json", "ollama-ps.txt"})


@record(frozen=True)
class Action:
    name: str
    changes: str
    checks: frozenset[str]
    evidence_from: frozenset[str]  # sections whose lines justify it
    summary: str  # what it does, in a few words

    @property
    def undo(self) -> str:
        return UNDO[self.changes]

    @property
    def knob(self) -> str | None:
        return KNOB.get(self.changes)


def _a(name: str, changes: str, checks: set[str], evidence: frozenset[str], summary: str) -> Action:
    return Action(name, changes, frozenset(checks), evidence, summary)


SERVICE_ENV = "service_env"
GPU_GROUPS = "gpu_groups"
START_SERVICE = "start_service"
CUDA_TOOLKIT = "cuda_toolkit"
NVIDIA_DRIVER = "nvidia_driver"
NVIDIA_UVM_RELOAD = "nvidia_uvm_reload"
WSL2_PURGE_GUEST_DRIVER = "wsl2_purge_guest_driver"
AMDGPU_DRIVER = "amdgpu_driver"
VULKAN_PACKAGES = "vulkan_packages"
REBOOT_HOST = "reboot"
ADVISE = "advise"  # a person must act: never a step

ACTIONS: dict[str, Action] = {a.name: a for a in (
    _a(SERVICE_ENV, SERVICE, {FILES, SYSTEMD, PORT}, _STATE | _LOG | {"shell-env.txt"},
       "set or unset GPU variables of ollama.service in its managed drop-in"),
    _a(GPU_GROUPS, SERVICE, {USERS, SYSTEMD, PORT}, _STATE | _LOG,
       "add the service user to the groups that own the GPU device nodes"),
    _a(START_SERVICE, SERVICE, {SYSTEMD, PORT}, _STATE | _LOG,
       "enable and start ollama.service"),
    _a(CUDA_TOOLKIT, PACKAGES, {APT, FILES}, _STATE,
       "purge a CUDA 10/11 toolkit and install a current one"),
    _a(NVIDIA_DRIVER, DRIVER, {APT, KERNEL_MODULE}, _STATE,
       "install the NVIDIA driver branch Ollama needs"),
    _a(NVIDIA_UVM_RELOAD, MODULE, {SYSTEMD}, _STATE | _LOG,
       "stop ollama, reload nvidia_uvm, start ollama"),
    _a(WSL2_PURGE_GUEST_DRIVER, PACKAGES, {APT}, _STATE,
       "purge a Linux NVIDIA driver from a WSL2 guest"),
    _a(AMDGPU_DRIVER, DRIVER, {APT, KERNEL_MODULE}, _STATE,
       "install amdgpu-dkms from AMD's repository"),
    _a(VULKAN_PACKAGES, PACKAGES, {APT}, _STATE,
       "install the Vulkan loader and Mesa driver"),
    _a(REBOOT_HOST, REBOOT, set(), _STATE | _LOG, "reboot to load a new kernel module"),
)}


def action(name: str) -> Action:
    return ACTIONS[name]
