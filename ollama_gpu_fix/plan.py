"""Diagnosis + snapshot + policy -> Plan: which remedy runs, with which arguments, or why not.

Pure (as ubuntu-drivers splits choosing from installing): the pyinfra side applies a Step by
calling the deploy its `action` names (ollama_gpu_fix.actions) with `params` as keyword
arguments, so the JSON report shows the literal call. A step the policy or the platform forbids
stays in the plan with `refused` saying which knob (or which manual step) allows it. When the
primary finding's own fix cannot run, nothing else runs either: fixing the second cause first
would change a host without getting Ollama onto the GPU.

No change without evidence a user cannot plant: every step carries the lines of the host's own
state that justify it (actions.Action.evidence_from) and is refused without them; a value the
fix writes comes only from root's or the service user's own files, or from the knowledge
tables, and an HSA override must be the one the table gives for this host's GPUs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from packaging.version import Version

from ollama_gpu_fix import actions as act
from ollama_gpu_fix.actions import DRIVER, MODULE, PACKAGES, REBOOT, SERVICE
from ollama_gpu_fix.dropin import DROPIN_PATH, ROLLED_BACK
from ollama_gpu_fix.findings import CODE_ORDER, Diagnosis, Finding
from ollama_gpu_fix.knowledge import amd, nvidia
from ollama_gpu_fix.knowledge import packages as pk
from ollama_gpu_fix.knowledge.environment import is_gpu_setting, trusted_origin, writable
from ollama_gpu_fix.policy import Policy
from ollama_gpu_fix.rules.context import Context
from ollama_gpu_fix.snapshot import Line, Snapshot

# kept for importers: the vocabulary lives in ollama_gpu_fix.actions
__all__ = ["Plan", "Step", "plan", "SERVICE", "MODULE", "PACKAGES", "DRIVER", "REBOOT"]


@dataclass
class Step:
    action: str  # a name of ollama_gpu_fix.actions.ACTIONS: the remedy deploy that applies it
    params: dict[str, Any]  # exactly that deploy's keyword arguments
    codes: list[str]  # the findings it fixes
    summary: str
    needs_reboot: bool = False
    refused: str | None = None  # why it does not run, naming the knob or the manual step
    evidence: list[str] = field(default_factory=list)  # host-state lines that justify it
    files: list[str] = field(default_factory=list)  # every file it writes or edits

    @property
    def changes(self) -> str:
        return act.action(self.action).changes

    @property
    def undo(self) -> str:
        return act.action(self.action).undo

    @property
    def checks(self) -> frozenset[str]:
        return act.action(self.action).checks

    @property
    def fingerprint(self) -> str:
        """Names this exact change (action and arguments): a rolled-back one is not retried."""
        text = json.dumps([self.action, self.params], sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "changes": self.changes, "undo": self.undo,
                "checks": sorted(self.checks), "fingerprint": self.fingerprint}


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
            s.action == act.REBOOT_HOST for s in self.runnable
        )

    @property
    def files(self) -> list[str]:
        return list(dict.fromkeys(f for s in self.runnable for f in s.files))

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
        self.s, self.policy, self.local = s, policy, local
        self.ctx = Context(s)
        self.platform = self.ctx.platform
        self.systemd = bool(s.probe and s.probe.systemd) or bool(s.unit and s.unit.active_state)
        osr = s.os
        self.distro = (osr.id, osr.version_id) if osr and osr.id and osr.version_id else None
        self.arch_raw = s.probe.arch if s.probe and s.probe.arch else None
        self.arch = pk.NVIDIA_ARCHES.get(self.arch_raw or "")
        self.packages = s.packages or {}
        self.kernel = s.kernel.release if s.kernel else None
        unit = s.unit
        self.service_user = (unit.user if unit and unit.user else None) or "ollama"

    def apt_problem(self) -> str | None:
        """Why package remedies cannot run here, or None."""
        if self.distro is None:
            return "the distribution is not known (no os-release in the evidence)"
        if self.distro not in pk.APT_DISTROS:
            names = ", ".join(f"{d} {v}" for d, v in sorted(pk.APT_DISTROS))
            found = f"{self.distro[0]} {self.distro[1]}"
            return f"{found} is not supported by the package remedies ({names})"
        if self.arch is None:
            return f"architecture {self.arch_raw or 'unknown'} is not supported (x86_64, aarch64)"
        return None

    def nvidia_repo(self) -> tuple[str, str]:
        """(repository key of knowledge.packages.REPOSITORIES, its URL for this host)."""
        if self.platform == "wsl2":
            return "nvidia-wsl", self.policy.nvidia_wsl_repo_url
        distro = pk.APT_DISTROS.get(self.distro) if self.distro else None
        return "nvidia", self.policy.nvidia_repo_url.format(
            distro=distro or "unknown", arch=self.arch or "x86_64")

    def service_env_files(self) -> list[tuple[str, str]]:
        """(path, kind) of every file that sets ollama.service's environment."""
        unit = self.s.unit
        files = [(f.path, "unit") for f in ([unit.fragment] if unit and unit.fragment else [])]
        files += [(f.path, "unit") for f in (unit.dropins if unit else [])]
        files += [(p, "env") for p in (unit.environment_files if unit else [])]
        return files


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
    env_evidence: list[str] = []
    for finding in errors:
        remedy = finding.remedy
        if remedy is None:
            continue
        if not remedy.automatic:
            _advise(result, diagnosis, finding, remedy.summary)
            continue
        translate = _TRANSLATORS.get(remedy.action)
        steps = translate(finding, host, result) if translate else []
        if not steps:  # nothing this tool may change fixes it (alone: see _block_on_primary)
            result.advice.append(f"{finding.code}: {remedy.summary}")
            continue
        for step in steps:
            step.evidence = step.evidence + _evidence(step.action, finding.evidence)
            if step.action == act.SERVICE_ENV:  # one drop-in for every variable
                for name, value in step.params["env"].items():
                    env.setdefault(name, value)
                unset += [n for n in step.params["unset"] if n not in unset]
                env_codes += [c for c in step.codes if c not in env_codes]
                env_evidence += [e for e in step.evidence if e not in env_evidence]
                continue
            result.steps.append(step)
    if env or unset or env_codes:
        step = _service_env_step(env, unset, env_codes, host)
        step.evidence = env_evidence
        result.steps.insert(0, step)
    for step in result.steps:
        if step.changes in (PACKAGES, DRIVER):
            step.params["lock_timeout"] = policy.apt_lock_timeout
    _gate(result, host)
    _reboot(result, host)
    _block_on_primary(result, diagnosis, errors)
    return result


def _advise(result: Plan, diagnosis: Diagnosis, finding: Finding, summary: str) -> None:
    result.advice.append(f"{finding.code}: {summary}")
    if finding.code == diagnosis.primary and result.blocked is None:
        result.blocked = f"{finding.code} needs a person: {summary}"


def _block_on_primary(result: Plan, diagnosis: Diagnosis, errors: list[Finding]) -> None:
    """Nothing runs when the primary cause's own fix cannot: every step for it refused, or
    none at all (its values were not the tool's to write, and no other finding's step sets
    them)."""
    if result.blocked is not None:
        return
    primary_steps = [s for s in result.steps if diagnosis.primary in s.codes]
    if primary_steps and all(s.refused for s in primary_steps):
        result.blocked = f"{diagnosis.primary}: {primary_steps[0].refused}"
        return
    primary = next((f for f in errors if f.code == diagnosis.primary), None)
    if primary is not None and primary.remedy and primary.remedy.automatic and not primary_steps:
        if not any(s.refused is None for s in result.steps):
            result.blocked = f"{primary.code} needs a person: {primary.remedy.summary}"


def _evidence(action_name: str, lines: list[Line]) -> list[str]:
    """The finding's lines that count for this action: the host's own state (a log line counts
    only for service and module steps), never the knowledge tables' own lines."""
    allowed = act.action(action_name).evidence_from
    return [str(line) for line in lines if line.source in allowed]


# ---- translators: a finding's remedy -> steps with the literal deploy arguments ---------------


def _service_env_step(
    env: dict[str, str], unset: list[str], codes: list[str], host: _Host
) -> Step:
    """Set ENV and remove UNSET where they are set: drop-ins and EnvironmentFile= are edited
    (by logical lines, as systemd reads them), what the vendor unit sets is removed with
    UnsetEnvironment= in the managed drop-in (the vendor unit is never edited)."""
    unit = host.s.unit
    # what the managed drop-in already holds stays (a later fix adds to it, never drops it)
    managed = next((f for f in unit.dropins if f.path == DROPIN_PATH), None) if unit else None
    if managed is not None:
        kept = {k: v for k, v in managed.environment.items() if writable(k, v)}
        env = {**kept, **env}
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
    kept_unset = set(managed.unset) if managed is not None else set()
    unset_in_dropin = sorted(
        n for n in unset
        if n in vendor_sets or n in kept_unset or (n in inherited and n not in edited)
    )
    shown = ", ".join([f"{k}={v}" for k, v in sorted(env.items())] + [f"unset {n}" for n in unset])
    files = ([DROPIN_PATH] if env or unset_in_dropin or managed is not None else []) + sorted(edits)
    where = "; edit " + ", ".join(sorted(edits)) if edits else ""
    what = f"Write {DROPIN_PATH} ({shown}){where}; " if files else ""
    return Step(
        act.SERVICE_ENV,
        {"env": dict(sorted(env.items())), "unset": unset_in_dropin, "edit": edits,
         "reasons": codes},
        list(codes),
        f"{what}daemon-reload, restart ollama" + ("" if files else " (its files already say"
                                                  " the right thing; systemd never read them)")
        + ".",
        files=files,
    )


def _service_env(finding: Finding, host: _Host, result: Plan) -> list[Step]:
    """The variables a finding wants set or unset, each checked: a value is written only when
    it is a GPU setting this tool knows, came from root's or the service user's own files (or
    from the knowledge tables), and, for an HSA override, is the value for this host's GPUs."""
    params = finding.remedy.params if finding.remedy else {}
    origins: dict[str, str] = params.get("origins", {})
    env: dict[str, str] = {}
    for name, value in params.get("env", {}).items():
        origin = origins.get(name, "")
        why = None
        if not writable(name, value):
            why = "not a GPU setting this tool writes"
        elif origin and not trusted_origin(origin, host.service_user):
            why = f"set in {origin}, a file of another user"
        elif name.startswith("HSA_OVERRIDE_GFX_VERSION"):
            why = _override_problem(value, host)
        if why:
            result.advice.append(f"{finding.code}: {name}={value} is not written ({why})")
            continue
        env[name] = value
    unset = [n for n in params.get("unset", []) if is_gpu_setting(n)]
    if not env and not unset and not params.get("reload"):
        return []
    # reload only: the files already say the right thing; systemd never read them (the restart
    # that follows every service step reloads and restarts when NeedDaemonReload says so)
    return [Step(act.SERVICE_ENV, {"env": env, "unset": unset}, [finding.code], "")]


def _override_problem(value: str, host: _Host) -> str | None:
    gfx = host.ctx.amd_gfx
    if not gfx:
        return "no AMD GPU's gfx target is known on this host to check it against"
    if not amd.override_fits(value, gfx, host.ctx.version):
        wanted = ", ".join(f"{g}: {amd.override_value_for(g, host.ctx.version) or 'none'}"
                           for g in gfx)
        return f"not the override for this host's GPUs ({wanted})"
    return None


def _groups(finding: Finding, host: _Host, result: Plan) -> list[Step]:
    owners: list[str] = []
    for node in host.s.dev_nodes or []:
        if node.path == "/dev/kfd" or node.path.startswith("/dev/dri/"):
            if node.group and node.group not in owners and node.group != "root":
                owners.append(node.group)
    groups = owners or ["render", "video"]
    users = [host.service_user] + (
        [host.policy.login_user] if host.policy.login_user not in (None, host.service_user) else []
    )
    return [Step(act.GPU_GROUPS, {"users": users, "groups": groups}, [finding.code],
                 f"Add {', '.join(users)} to {', '.join(groups)} (the groups that own the GPU "
                 "device nodes) with usermod, which edits /etc/group and /etc/gshadow; restart"
                 " ollama.", files=["/etc/group", "/etc/gshadow"])]


def _start(finding: Finding, host: _Host, result: Plan) -> list[Step]:
    return [Step(act.START_SERVICE, {}, [finding.code], "Enable and start ollama.service.")]


def _cuda_toolkit(finding: Finding, host: _Host, result: Plan) -> list[Step]:
    """Purge what is CUDA < 12 by the package table, remove the ld.so.conf lines and the
    service's LD_LIBRARY_PATH that name a CUDA < 12 directory, install the current toolkit.
    Nothing stale found: no step (a finding without such evidence changes nothing)."""
    stale = pk.stale_cuda_packages(host.packages)
    ldconf: dict[str, list[str]] = {}
    for line in host.s.cuda.raw if host.s.cuda else []:
        kind, _, rest = line.text.partition(" ")
        path, _, entry = rest.partition(" ")
        if kind == "ldconf" and path.startswith("/etc/ld.so.conf") and pk.stale_cuda_paths(
                [entry.strip()]):
            ldconf.setdefault(path, []).append(entry.strip())
    steps: list[Step] = []
    library_path = [v for v in _env_values(host, "LD_LIBRARY_PATH")
                    if pk.stale_cuda_paths(v.split(":"))]
    if library_path:
        steps.append(Step(act.SERVICE_ENV, {"env": {}, "unset": ["LD_LIBRARY_PATH"]},
                          [finding.code], ""))
    if not stale and not ldconf:
        return steps
    want = host.policy.cuda_min_version
    toolkit = pk.cuda_toolkit_package(want)
    driver = host.s.nvidia_smi.driver_version if host.s.nvidia_smi else None
    floor = nvidia.CUDA_TOOLKIT_MIN_DRIVER.get(f"{want.major}.{want.minor}")
    install = [toolkit]
    note = ""
    if not driver or (floor and Version(_numeric(driver)) < Version(floor)):
        install = []
        note = (f" (not installing {toolkit}: driver {driver} is below its floor {floor})"
                if driver else f" (not installing {toolkit}: no working driver reported)")
    repo, url = host.nvidia_repo()
    removed = "; ".join(f"remove {', '.join(lines)} from {path}" for path, lines in
                        sorted(ldconf.items()))
    steps.append(Step(
        act.CUDA_TOOLKIT,
        {"purge": stale, "ldconf_remove": {p: sorted(set(v)) for p, v in sorted(ldconf.items())},
         "install": install, "repo": repo if install else None,
         "repo_url": url if install else None},
        [finding.code],
        f"Purge {', '.join(stale) or 'no package'}"
        + (f"; {removed}" if removed else "")
        + (f"; install {toolkit} from {pk.REPOSITORIES[repo].name}" if install else "")
        + note + ".",
        files=sorted(ldconf),
    ))
    return steps


def _nvidia_driver(finding: Finding, host: _Host, result: Plan) -> list[Step]:
    gpus = host.s.nvidia_smi.gpus if host.s.nvidia_smi else []
    branch = host.policy.nvidia_driver_branch or nvidia.RECOMMENDED_DRIVER_BRANCH
    packages, flavour = pk.nvidia_driver_packages([g.compute_cap for g in gpus if g.compute_cap],
                                                  branch)
    headers = [pk.kernel_headers(host.kernel)] if host.kernel and host.platform == "native" else []
    repo, url = host.nvidia_repo()
    return [Step(
        act.NVIDIA_DRIVER,
        {"packages": packages, "headers": headers, "repo": repo, "repo_url": url},
        [finding.code],
        f"Install the NVIDIA driver ({flavour}) from {pk.REPOSITORIES[repo].name}"
        + (f" with {headers[0]}" if headers else "") + ".",
        needs_reboot=True,
    )]


def _uvm(finding: Finding, host: _Host, result: Plan) -> list[Step]:
    return [Step(act.NVIDIA_UVM_RELOAD, {}, [finding.code],
                 "Stop ollama, reload nvidia_uvm, start ollama again (also when the reload"
                 " fails).")]


def _wsl2_purge(finding: Finding, host: _Host, result: Plan) -> list[Step]:
    packages = pk.wsl_guest_driver_packages(host.packages)
    if not packages:
        return []
    return [Step(act.WSL2_PURGE_GUEST_DRIVER, {"packages": packages}, [finding.code],
                 f"Purge the Linux driver in this WSL2 guest ({', '.join(packages)}); the Windows"
                 " driver provides /usr/lib/wsl/lib/libcuda.so.")]


def _rocm(finding: Finding, host: _Host, result: Plan) -> list[Step]:
    texts = " ".join(line.text for line in finding.evidence)
    kernel_side = "kfd driver not loaded" in texts or (
        host.s.probe is not None and "/dev/kfd" in host.s.probe.absent_files
    ) or finding.code == "rocm-driver-too-old"
    if not kernel_side:
        return []  # Ollama's own ROCm bundle is missing: advice (the tool does not install Ollama)
    suite = pk.AMD_SUITES.get(host.distro[1] if host.distro else "", "")
    headers = [pk.kernel_headers(host.kernel)] if host.kernel and host.platform == "native" else []
    repo = pk.AMDGPU
    return [Step(
        act.AMDGPU_DRIVER,
        {"packages": list(pk.AMDGPU_DRIVER_PACKAGES), "headers": headers,
         "repo_url": host.policy.amdgpu_repo_url, "suite": suite,
         "key_url": host.policy.rocm_repo_key_url},
        [finding.code],
        f"Install the amdgpu kernel driver (amdgpu-dkms) from {repo.name}"
        + (f" with {headers[0]}" if headers else "") + f" ({repo.keyring}, {repo.source_file},"
        f" {repo.pin_file} unless a source for it is already configured).",
        needs_reboot=True,
        files=[repo.keyring, repo.source_file, repo.pin_file or ""],
    )]


def _vulkan(finding: Finding, host: _Host, result: Plan) -> list[Step]:
    steps = _service_env(finding, host, result)
    missing = [p for p in pk.VULKAN_PACKAGES if p not in host.packages]
    if missing and (host.s.packages is not None):
        # the host's own package list (dpkg) is the evidence that they are missing
        steps.append(Step(act.VULKAN_PACKAGES, {"packages": missing}, [finding.code],
                          f"Install the Vulkan loader and Mesa driver ({', '.join(missing)}).",
                          evidence=[f"packages.txt: {p} is not installed" for p in missing]))
    return steps


def _reboot_step(finding: Finding, host: _Host, result: Plan) -> list[Step]:
    return [Step(act.REBOOT_HOST, {}, [finding.code], "Reboot.")]


_TRANSLATORS = {
    act.SERVICE_ENV: _service_env,
    act.GPU_GROUPS: _groups,
    act.START_SERVICE: _start,
    act.CUDA_TOOLKIT: _cuda_toolkit,
    act.NVIDIA_DRIVER: _nvidia_driver,
    act.NVIDIA_UVM_RELOAD: _uvm,
    act.WSL2_PURGE_GUEST_DRIVER: _wsl2_purge,
    act.AMDGPU_DRIVER: _rocm,
    act.VULKAN_PACKAGES: _vulkan,
    act.REBOOT_HOST: _reboot_step,
}


# ---- policy and platform --------------------------------------------------------------------


def _gate(result: Plan, host: _Host) -> None:
    apt = host.apt_problem()
    secure_boot = bool(host.s.secure_boot and host.s.secure_boot.enabled)
    rolled_back = set(host.s.probe.rolled_back) if host.s.probe else set()
    for step in result.steps:
        knob = act.action(step.action).knob
        if step.fingerprint in rolled_back:
            step.refused = (
                "an earlier run made this change and rolled it back (Ollama was not on the GPU"
                f" with it); remove {ROLLED_BACK} to try it again"
            )
        elif not step.evidence and step.action != act.REBOOT_HOST:
            step.refused = ("no line of this host's own state shows the cause (log text alone"
                            " does not justify this change)")
        elif host.platform == "container":
            step.refused = ("this host is a container: the fix belongs to the machine that runs"
                            " it (pass the GPU in, set the variable on the container)")
        elif step.changes == MODULE and host.platform != "native":
            step.refused = "a kernel module can be reloaded only on the machine itself"
        elif act.SYSTEMD in step.checks and not host.systemd:
            step.refused = ("no systemd runs here: set the environment where `ollama serve` is"
                            " started (WSL: enable systemd in /etc/wsl.conf)")
        elif step.changes in (PACKAGES, DRIVER) and apt:
            step.refused = f"cannot install or remove packages: {apt}"
        elif knob and step.changes != REBOOT and not getattr(host.policy, knob):
            what = "package changes are" if step.changes == PACKAGES else "a driver change is"
            step.refused = f"{what} not allowed (set {knob}=true)"
        elif act.KERNEL_MODULE in step.checks and secure_boot:
            step.refused = (
                "Secure Boot is on and a DKMS-built module is unsigned: enroll a Machine Owner"
                " Key first (mokutil --import, confirm at the next boot), use signed modules"
                " (Ubuntu: linux-modules-nvidia-<branch>-<flavour>), or turn Secure Boot off"
                " (AMD documents the same for amdgpu-dkms)"
            )
        elif step.action == act.REBOOT_HOST and not _can_reboot(host):
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
    if not driver or any(s.action == act.REBOOT_HOST for s in result.steps):
        return
    step = Step(act.REBOOT_HOST, {}, driver[0].codes,
                "Reboot to load the new kernel module, then verify.")
    if not _can_reboot(host):
        step.refused = _no_reboot(host)
    result.steps.append(step)


# ---- small helpers ---------------------------------------------------------------------------


def _env_values(host: _Host, name: str) -> list[str]:
    values = []
    unit = host.s.unit
    for f in ([unit.fragment] if unit and unit.fragment else []) + (unit.dropins if unit else []):
        if name in f.environment:
            values.append(f.environment[name])
    proc = host.s.process
    if proc and proc.trusted is not False and name in proc.environment:
        values.append(proc.environment[name])
    if unit and name in unit.environment:
        values.append(unit.environment[name])
    return values


def _numeric(version: str) -> str:
    digits = ""
    for part in version.split("."):
        if not part.isdigit():
            break
        digits += ("." if digits else "") + part
    return digits or "0"
