"""Diagnosis + snapshot + policy -> Plan: which remedy runs, with which arguments, or why not.

Pure (as ubuntu-drivers splits choosing from installing): the pyinfra side applies a Step by
calling the deploy its `action` names with `params` as keyword arguments, so the JSON report
shows the literal call. A step the policy or the platform forbids stays in the plan with
`refused` saying which knob (or which manual step) allows it. When the primary finding's own
fix cannot run, nothing else runs either: fixing the second cause first would change a host
without getting Ollama onto the GPU.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from packaging.version import Version

from ollama_gpu_fix.dropin import DROPIN_PATH, ROLLED_BACK
from ollama_gpu_fix.findings import CODE_ORDER, Diagnosis, Finding
from ollama_gpu_fix.hostplatform import platform
from ollama_gpu_fix.knowledge import nvidia
from ollama_gpu_fix.knowledge.environment import is_gpu_setting, writable
from ollama_gpu_fix.policy import Policy
from ollama_gpu_fix.snapshot import Snapshot

# What a step changes, for the policy and for the report ("can it be undone?").
SERVICE, MODULE, PACKAGES, DRIVER, REBOOT = "service", "module", "packages", "driver", "reboot"
UNDO = {
    SERVICE: "rolled back automatically if verification fails",
    MODULE: "a module reload is what a reboot would do; nothing to undo",
    PACKAGES: "package changes are not undone automatically",
    DRIVER: "a driver change is not undone automatically",
    REBOOT: "a reboot cannot be undone",
}

# Distributions the package remedies know (NVIDIA's and AMD's repository layouts).
APT_DISTROS = {("debian", "12"), ("debian", "13"), ("ubuntu", "22.04"), ("ubuntu", "24.04")}
# Debian uses AMD's Ubuntu suites (ROCm/amdgpu-docs conf.py: debian_version_numbers).
AMD_SUITES = {"12": "jammy", "13": "noble", "22.04": "jammy", "24.04": "noble"}
ARCHES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "sbsa", "arm64": "sbsa"}

# Installed packages that carry a CUDA 10/11 toolkit (NVIDIA's repo names and Debian/Ubuntu's)
_STALE_CUDA_PKG = re.compile(
    r"^(?:nvidia-cuda-toolkit|nvidia-cuda-dev|libcudart1[01](?:\.\d+)?|libcublas1[01]"
    r"|cuda-toolkit-1[01]-\d+|cuda-1[01]-\d+|cuda-[a-z-]+-1[01]-\d+)$"
)
# A Linux driver inside WSL2 (NVIDIA's WSL guide: install no Linux driver in the guest).
_GUEST_DRIVER_PKG = re.compile(
    r"^(?:nvidia-driver-\d+(?:-open|-server)?|nvidia-utils-\d+(?:-server)?|nvidia-driver"
    r"|libnvidia-compute-\d+(?:-server)?|cuda-drivers(?:-\d+)?|cuda|cuda-\d+-\d+|nvidia-open"
    r"|nvidia-dkms-\d+(?:-open)?|libcuda1|nvidia-kernel-dkms|nvidia-kernel-\S+)$"
)
_VULKAN_PKGS = ["libvulkan1", "mesa-vulkan-drivers"]


@dataclass
class Step:
    action: str  # the remedy deploy that applies it (ollama_gpu_fix.deploy.remedies.REMEDIES)
    params: dict[str, Any]  # exactly that deploy's keyword arguments
    codes: list[str]  # the findings it fixes
    summary: str
    changes: str = SERVICE
    needs_reboot: bool = False
    refused: str | None = None  # why it does not run, naming the knob or the manual step

    @property
    def undo(self) -> str:
        return UNDO[self.changes]

    @property
    def fingerprint(self) -> str:
        """Names this exact change (action and arguments): a rolled-back one is not retried."""
        text = json.dumps([self.action, self.params], sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "undo": self.undo, "fingerprint": self.fingerprint}


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)  # in order; refused ones included
    advice: list[str] = field(default_factory=list)  # what a person must do
    blocked: str | None = None  # the primary's fix cannot run: nothing runs

    @property
    def runnable(self) -> list[Step]:
        return [] if self.blocked else [s for s in self.steps if s.refused is None]

    @property
    def reboot_required(self) -> bool:
        return any(s.needs_reboot for s in self.runnable) and not any(
            s.action == "reboot" for s in self.runnable
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "steps": [s.to_json() for s in self.steps],
            "advice": list(self.advice),
            "blocked": self.blocked,
            "reboot_required": self.reboot_required,
        }


class _Host:
    """What the plan needs to know about the host, derived once."""

    def __init__(self, snapshot: Snapshot, policy: Policy, local: bool) -> None:
        s = snapshot
        self.s, self.policy = s, policy
        self.platform = platform(s)
        self.systemd = bool(s.probe and s.probe.systemd) or bool(s.unit and s.unit.active_state)
        self.local = local
        osr = s.os
        self.distro = (osr.id, osr.version_id) if osr and osr.id and osr.version_id else None
        arch = s.probe.arch if s.probe and s.probe.arch else None
        self.arch = ARCHES.get(arch or "")
        self.arch_raw = arch
        self.packages = s.packages or {}
        self.kernel = s.kernel.release if s.kernel else None
        unit = s.unit
        self.service_user = (unit.user if unit and unit.user else None) or "ollama"

    def apt_problem(self) -> str | None:
        """Why package remedies cannot run here, or None."""
        if self.distro is None:
            return "the distribution is not known (no os-release in the evidence)"
        if self.distro not in APT_DISTROS:
            names = ", ".join(f"{d} {v}" for d, v in sorted(APT_DISTROS))
            found = f"{self.distro[0]} {self.distro[1]}"
            return f"{found} is not supported by the package remedies ({names})"
        if self.arch is None:
            return f"architecture {self.arch_raw or 'unknown'} is not supported (x86_64, aarch64)"
        return None

    def nvidia_repo(self) -> str:
        if self.platform == "wsl2":
            return self.policy.nvidia_wsl_repo_url
        distro = f"{self.distro[0]}{self.distro[1].replace('.', '')}" if self.distro else "?"
        return self.policy.nvidia_repo_url.format(distro=distro, arch=self.arch or "x86_64")


def plan(diagnosis: Diagnosis, snapshot: Snapshot, policy: Policy, local: bool = False) -> Plan:
    """The steps that fix this host, in the order they must run (LOCAL: pyinfra runs on it)."""
    host = _Host(snapshot, policy, local)
    result = Plan()
    errors = sorted(
        (f for f in diagnosis.findings if f.severity == "error"),
        key=lambda f: CODE_ORDER.index(f.code),
    )
    env: dict[str, str] = {}
    unset: list[str] = []
    env_codes: list[str] = []
    for finding in errors:
        remedy = finding.remedy
        if remedy is None:
            continue
        if not remedy.automatic:
            result.advice.append(f"{finding.code}: {remedy.summary}")
            if finding.code == diagnosis.primary:
                result.blocked = f"{finding.code} needs a person: {remedy.summary}"
            continue
        translate = _TRANSLATORS.get(remedy.action)
        steps = translate(finding, host) if translate else []
        if not steps:  # nothing this tool can change fixes it
            result.advice.append(f"{finding.code}: {remedy.summary}")
            if finding.code == diagnosis.primary:
                result.blocked = f"{finding.code} needs a person: {remedy.summary}"
            continue
        for step in steps:
            if step.action == "service_env":  # one drop-in for every variable
                for name, value in step.params["env"].items():
                    env.setdefault(name, value)
                unset += [n for n in step.params["unset"] if n not in unset]
                env_codes += [c for c in step.codes if c not in env_codes]
                continue
            result.steps.append(step)
    if env or unset:
        result.steps.insert(0, _service_env_step(env, unset, env_codes, host))
    for step in result.steps:
        if step.changes in (PACKAGES, DRIVER) and step.action != "nvidia_uvm_reload":
            step.params["lock_timeout"] = policy.apt_lock_timeout
    _gate(result, host)
    _reboot(result, host)
    primary_steps = [s for s in result.steps if diagnosis.primary in s.codes]
    if result.blocked is None and primary_steps and all(s.refused for s in primary_steps):
        result.blocked = f"{diagnosis.primary}: {primary_steps[0].refused}"
    return result


# ---- translators: a finding's remedy -> steps with the literal deploy arguments ---------------


def _service_env_step(
    env: dict[str, str], unset: list[str], codes: list[str], host: _Host
) -> Step:
    """Set ENV and remove UNSET where they are set: drop-ins and EnvironmentFile= are edited,
    what the vendor unit sets is removed with UnsetEnvironment= in the managed drop-in."""
    unit = host.s.unit
    # what the managed drop-in already holds stays (a later fix adds to it, never drops it)
    managed = next((f for f in unit.dropins if f.path == DROPIN_PATH), None) if unit else None
    if managed is not None:
        env = {**{k: v for k, v in managed.environment.items() if writable(k, v)}, **env}
        unset = list(dict.fromkeys(managed.unset + unset))
    edits: dict[str, list[str]] = {}
    vendor_sets: set[str] = set()
    for f in ([unit.fragment] if unit and unit.fragment else []) + (unit.dropins if unit else []):
        if f.path == DROPIN_PATH:
            continue
        names = [
            n for n in f.environment if n in unset or (n in env and f.environment[n] != env[n])
        ]
        if not names:
            continue
        if ".d/" in f.path:
            edits[f.path] = sorted(names)
        else:
            vendor_sets.update(names)
    for path in unit.environment_files if unit else []:
        edits.setdefault(path, sorted(set(unset) | set(env)))
    proc = host.s.process
    inherited = set(proc.environment) if proc and proc.trusted is not False else set()
    edited = {n for names in edits.values() for n in names}
    kept = set(managed.unset) if managed is not None else set()
    unset_in_dropin = sorted(
        n for n in unset
        if n in vendor_sets or n in kept or (n in inherited and n not in edited)
    )
    shown = ", ".join([f"{k}={v}" for k, v in sorted(env.items())] + [f"unset {n}" for n in unset])
    return Step(
        "service_env",
        {"env": dict(sorted(env.items())), "unset": unset_in_dropin, "edit": edits,
         "reasons": codes},
        list(codes),
        f"Write {DROPIN_PATH} ({shown}), daemon-reload, restart ollama.",
    )


def _service_env(finding: Finding, host: _Host) -> list[Step]:
    params = finding.remedy.params if finding.remedy else {}
    env = {k: v for k, v in params.get("env", {}).items() if writable(k, v)}
    unset = [n for n in params.get("unset", []) if is_gpu_setting(n)]
    if not env and not unset:
        return []
    return [Step("service_env", {"env": env, "unset": unset}, [finding.code], "")]


def _groups(finding: Finding, host: _Host) -> list[Step]:
    owners: list[str] = []
    for node in host.s.dev_nodes or []:
        if node.path == "/dev/kfd" or node.path.startswith("/dev/dri/"):
            if node.group and node.group not in owners and node.group != "root":
                owners.append(node.group)
    groups = owners or ["render", "video"]
    users = [host.service_user] + (
        [host.policy.login_user] if host.policy.login_user not in (None, host.service_user) else []
    )
    return [Step("gpu_groups", {"users": users, "groups": groups}, [finding.code],
                 f"Add {', '.join(users)} to {', '.join(groups)} (the groups that own the GPU "
                 "device nodes), restart ollama.")]


def _start(finding: Finding, host: _Host) -> list[Step]:
    return [Step("start_service", {}, [finding.code], "Enable and start ollama.service.")]


def _cuda_toolkit(finding: Finding, host: _Host) -> list[Step]:
    stale = sorted(n for n in host.packages if _STALE_CUDA_PKG.match(n))
    ldconf = sorted({
        line.text.split()[1] for line in (host.s.cuda.raw if host.s.cuda else [])
        if line.text.startswith("ldconf ") and re.search(r"cuda-?1[01]", line.text)
    })
    want = host.policy.cuda_min_version
    toolkit = f"cuda-toolkit-{want.major}-{want.minor}"
    steps = []
    if any(re.search(r"cuda-?1[01]", v) for v in _env_lines(host, "LD_LIBRARY_PATH")):
        steps.append(
            Step("service_env", {"env": {}, "unset": ["LD_LIBRARY_PATH"]}, [finding.code], "")
        )
    driver = host.s.nvidia_smi.driver_version if host.s.nvidia_smi else None
    floor = nvidia.CUDA_TOOLKIT_MIN_DRIVER.get(f"{want.major}.{want.minor}")
    install = [toolkit]
    note = ""
    if driver and floor and Version(_numeric(driver)) < Version(floor):
        install = []
        note = f" (not installing {toolkit}: driver {driver} is below its floor {floor})"
    steps.append(Step(
        "cuda_toolkit",
        {"purge": stale, "ldconf_remove": ldconf, "install": install,
         "repo_url": host.nvidia_repo()},
        [finding.code],
        f"Purge {', '.join(stale) or 'no package'}"
        + (f", remove {', '.join(ldconf)}" if ldconf else "")
        + (f"; install {toolkit} from NVIDIA's repository" if install else "") + note + ".",
        changes=PACKAGES,
    ))
    return steps


def _nvidia_driver(finding: Finding, host: _Host) -> list[Step]:
    gpus = host.s.nvidia_smi.gpus if host.s.nvidia_smi else []
    caps = [g.compute_cap for g in gpus if g.compute_cap]
    old = any(_cc(c) < 7.5 for c in caps)
    branch = host.policy.nvidia_driver_branch or nvidia.RECOMMENDED_DRIVER_BRANCH
    if old:  # 580 is the last branch for Maxwell, Pascal and Volta; open modules need Turing
        packages = [f"cuda-drivers-{min(branch, 580)}"]
        flavour = f"proprietary {min(branch, 580)}"
    else:
        packages = [f"nvidia-driver-pinning-{branch}", "nvidia-open"]
        flavour = f"open kernel modules, branch {branch}"
    headers = [f"linux-headers-{host.kernel}"] if host.kernel and host.platform == "native" else []
    return [Step(
        "nvidia_driver",
        {"packages": packages, "headers": headers, "repo_url": host.nvidia_repo()},
        [finding.code],
        f"Install the NVIDIA driver ({flavour}) from NVIDIA's repository.",
        changes=DRIVER,
        needs_reboot=True,
    )]


def _uvm(finding: Finding, host: _Host) -> list[Step]:
    return [Step("nvidia_uvm_reload", {}, [finding.code],
                 "Stop ollama, reload nvidia_uvm, start ollama.", changes=MODULE)]


def _wsl2_purge(finding: Finding, host: _Host) -> list[Step]:
    packages = sorted(n for n in host.packages if _GUEST_DRIVER_PKG.match(n))
    if not packages:
        return []
    return [Step("wsl2_purge_guest_driver", {"packages": packages}, [finding.code],
                 f"Purge the Linux driver in this WSL2 guest ({', '.join(packages)}); the Windows"
                 " driver provides /usr/lib/wsl/lib/libcuda.so.", changes=PACKAGES)]


def _rocm(finding: Finding, host: _Host) -> list[Step]:
    texts = " ".join(line.text for line in finding.evidence)
    kernel_side = "kfd driver not loaded" in texts or (
        host.s.probe is not None and "/dev/kfd" in host.s.probe.absent_files
    ) or finding.code == "rocm-driver-too-old"
    if not kernel_side:
        return []  # Ollama's own ROCm bundle is missing: advice (the tool does not install Ollama)
    suite = AMD_SUITES.get(host.distro[1] if host.distro else "", "")
    return [Step(
        "amdgpu_driver",
        {"packages": ["amdgpu-dkms"], "repo_url": host.policy.amdgpu_repo_url, "suite": suite,
         "key_url": host.policy.rocm_repo_key_url},
        [finding.code],
        "Install the amdgpu kernel driver (amdgpu-dkms) from AMD's repository.",
        changes=DRIVER,
        needs_reboot=True,
    )]


def _vulkan(finding: Finding, host: _Host) -> list[Step]:
    steps = _service_env(finding, host)
    missing = [p for p in _VULKAN_PKGS if p not in host.packages]
    if missing and (host.s.packages is not None):
        steps.append(Step("vulkan_packages", {"packages": missing}, [finding.code],
                          f"Install the Vulkan loader and Mesa driver ({', '.join(missing)}).",
                          changes=PACKAGES))
    return steps


_TRANSLATORS = {
    "service-env": _service_env,
    "service-groups": _groups,
    "start-service": _start,
    "cuda-toolkit": _cuda_toolkit,
    "nvidia-driver": _nvidia_driver,
    "nvidia-uvm-reload": _uvm,
    "wsl2-purge-guest-driver": _wsl2_purge,
    "rocm": _rocm,
    "vulkan": _vulkan,
    "reboot": lambda f, h: [Step("reboot", {}, [f.code], "Reboot.", changes=REBOOT)],
}


# ---- policy and platform --------------------------------------------------------------------


def _gate(result: Plan, host: _Host) -> None:
    apt = host.apt_problem()
    secure_boot = bool(host.s.secure_boot and host.s.secure_boot.enabled)
    rolled_back = set(host.s.probe.rolled_back) if host.s.probe else set()
    for step in result.steps:
        if step.fingerprint in rolled_back:
            step.refused = (
                "an earlier run made this change and rolled it back (Ollama was not on the GPU"
                f" with it); remove {ROLLED_BACK} to try it again"
            )
        elif host.platform == "container":
            step.refused = ("this host is a container: the fix belongs to the machine that runs"
                            " it (pass the GPU in, set the variable on the container)")
        elif step.changes == MODULE and host.platform != "native":
            step.refused = "a kernel module can be reloaded only on the machine itself"
        elif step.changes == SERVICE and not host.systemd:
            step.refused = ("no systemd runs here: set the environment where `ollama serve` is"
                            " started (WSL: enable systemd in /etc/wsl.conf)")
        elif step.changes in (PACKAGES, DRIVER) and apt:
            step.refused = f"cannot install or remove packages: {apt}"
        elif step.changes == PACKAGES and not host.policy.allow_packages:
            step.refused = "package changes are not allowed (set allow_packages=true)"
        elif step.changes == DRIVER and not host.policy.allow_driver_change:
            step.refused = "a driver change is not allowed (set allow_driver_change=true)"
        elif step.action == "nvidia_driver" and secure_boot:
            step.refused = (
                "Secure Boot is on and a DKMS-built module is unsigned: enroll a Machine Owner"
                " Key first (mokutil --import, confirm at the next boot) or use signed modules"
                " (Ubuntu: linux-modules-nvidia-<branch>-<flavour>)"
            )
        elif step.action == "reboot" and not _can_reboot(host):
            step.refused = _no_reboot(host)


def _can_reboot(host: _Host) -> bool:
    return host.policy.allow_reboot and not host.local and host.platform == "native"


def _no_reboot(host: _Host) -> str:
    if host.platform == "wsl2":
        return "reboot required: run `wsl --shutdown` on Windows, then start the distribution"
    if host.local:
        return "reboot required: this is the machine pyinfra runs on; reboot it by hand"
    return "reboot required (set allow_reboot=true, or reboot by hand and run again)"


def _reboot(result: Plan, host: _Host) -> None:
    """A driver step that will run needs a reboot before anything can be verified."""
    driver = [s for s in result.steps if s.needs_reboot and s.refused is None]
    if not driver or any(s.action == "reboot" for s in result.steps):
        return
    step = Step("reboot", {}, driver[0].codes, "Reboot to load the new kernel module, then verify.",
                changes=REBOOT)
    if not _can_reboot(host):
        step.refused = _no_reboot(host)
    result.steps.append(step)


# ---- small helpers ---------------------------------------------------------------------------


def _env_lines(host: _Host, name: str) -> list[str]:
    values = []
    unit = host.s.unit
    for f in ([unit.fragment] if unit and unit.fragment else []) + (unit.dropins if unit else []):
        if name in f.environment:
            values.append(f.environment[name])
    if host.s.process and name in host.s.process.environment:
        values.append(host.s.process.environment[name])
    if unit and name in unit.environment:
        values.append(unit.environment[name])
    return values


def _numeric(version: str) -> str:
    match = re.match(r"\d+(?:\.\d+)*", version)
    return match.group() if match else "0"


def _cc(cap: str) -> float:
    try:
        return float(cap)
    except ValueError:
        return 99.0
