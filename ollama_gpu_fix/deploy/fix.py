"""fix_gpu: a transaction per host. Probe once (observing first: a bounded generation, /api/ps
and the GPU's process list, bound to the service's listener, in the same remote command),
diagnose, plan, preflight, then apply with pyinfra operations through the journal, restart
Ollama when the running service differs from its unit, verify against the service itself,
commit or roll back, and write the report. When the plan changes nothing, the observation is
the verification: no second generation runs.

Runs in pyinfra's prepare stage per host (as every deploy file does): the probe, the plan and
the preflight (read-only facts) are decided here, so `--dry` shows a refusal too; the
operations registered here run at execution. Any error is this host's outcome (failed, with
the reason and the state it was left in), never an exception that stops the other hosts.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import pyinfra
from pyinfra import context, logger
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.api.host import Host
from pyinfra.connectors.local import LocalConnector

from ollama_gpu_fix import actions as act
from ollama_gpu_fix import preflight as pf
from ollama_gpu_fix import report, runs
from ollama_gpu_fix.deploy import cliguard
from ollama_gpu_fix.deploy import watchdog as wd
from ollama_gpu_fix.deploy.connections import absolute_shell, on_lost, tolerate_lost_connections
from ollama_gpu_fix.deploy.diagnose import bad_host_data, nothing_to_confirm
from ollama_gpu_fix.deploy.facts import OBSERVE_TIMEOUT, OllamaGpuProbe
from ollama_gpu_fix.deploy.guard import on_failure
from ollama_gpu_fix.deploy.operations import reboot, refuse, transaction
from ollama_gpu_fix.deploy.preflight import Preflight
from ollama_gpu_fix.deploy.progress import waiting
from ollama_gpu_fix.deploy.remedies import Applied, registry
from ollama_gpu_fix.deploy.service import intended_environment, restart_ollama
from ollama_gpu_fix.deploy.verify import verify_gpu
from ollama_gpu_fix.findings import Diagnosis
from ollama_gpu_fix.hostplatform import platform
from ollama_gpu_fix.nvml import nvml_processes
from ollama_gpu_fix.parsers import build_snapshot
from ollama_gpu_fix.plan import Plan, plan
from ollama_gpu_fix.policy import Policy, PolicyError, knobs, policy_from_host_data
from ollama_gpu_fix.rules import diagnose
from ollama_gpu_fix.snapshot import Snapshot
from ollama_gpu_fix.verdict import OBSERVATION, Verdict, observation, pick_model

# Steps after which the running server must be compared with its unit (and maybe restarted).
_RESTARTING = {act.SERVICE_ENV, act.GPU_GROUPS, act.START_SERVICE, act.CUDA_TOOLKIT,
               act.WSL2_PURGE_GUEST_DRIVER, act.VULKAN_PACKAGES}


def _policy(host: Host) -> Policy | None:
    """The host's policy; None when a knob is bad: one line (ollama_gpu_fix.deploy.diagnose.
    bad_host_data), and in a fleet this host fails, the others go on."""
    try:
        return policy_from_host_data(host.data.dict(), host.state.cwd or ".")
    except PolicyError as exc:
        bad_host_data(host, f"{exc}; nothing was changed")
        return None


def _confirmable(host: Host) -> None:
    """Without -y pyinfra asks "Press enter to execute"; without a terminal that dies on
    EOFError. Say what to do instead (unless this is a --dry run, which never asks)."""
    if (pyinfra.is_cli and host.state.check_for_changes and not sys.stdin.isatty()
            and "--dry" not in sys.argv):
        raise DeployError(
            "no terminal to confirm the changes: run with -y to apply them, or --dry to see the"
            " plan; nothing was changed"
        )


def render_plan(the_plan: Plan, host_name: str) -> str:
    lines = [f"Plan for {host_name}:"]
    if not the_plan.steps and not the_plan.advice:
        lines.append("  nothing to change")
    for number, step in enumerate(the_plan.steps, start=1):
        state = f"refused: {step.refused}" if step.refused else f"[{step.changes}] {step.undo}"
        lines.append(f"  {number}. {step.action} ({', '.join(step.codes)}): {step.summary}")
        if step.files:
            lines.append(f"     files: {', '.join(step.files)}")
        if step.evidence:
            lines.append(f"     because: {step.evidence[0]}"
                         + (f" (+{len(step.evidence) - 1} more)" if len(step.evidence) > 1 else ""))
        lines.append(f"     {state}")
    for advice in the_plan.advice:
        lines.append(f"  advice: {advice}")
    if the_plan.blocked:
        lines.append(f"  nothing will be applied: {the_plan.blocked}")
    elif the_plan.reboot_required:
        lines.append("  a reboot is required before the GPU can work")
    return "\n".join(report.printable(line) for line in lines)


def dry_run() -> bool:
    """`pyinfra --dry`: pyinfra 3.10 keeps the flag to its CLI's main, so read the argv."""
    return bool(pyinfra.is_cli and "--dry" in sys.argv)


class FixReport:
    """The host's report of this run (ollama_gpu_fix.runs, docs/report-schema.md): the
    diagnosis before, the plan, the preflight, the steps applied, the verification, the
    diagnosis after, the result and the state the host was left in (written at prepare,
    completed at execution; a run that ends first leaves it `interrupted`)."""

    def __init__(self, host: Host, report_dir: Path, mode: str, data: dict[str, Any]) -> None:
        self.run = runs.current(mode)
        self.path = self.run.path_for(report_dir, host.name)
        self.data = {**runs.envelope(self.run, host.name), **data}
        self.applied = Applied()
        self.run.on_interrupt[self.path] = self._interrupted
        on_lost(host, self.lost)
        self.write()
        logger.info(f"{host.print_prefix}report: {self.path}")

    def write(self) -> None:
        try:
            runs.write(self.run, self.path, self.data)
        except OSError as exc:
            raise DeployError(f"cannot write the report {self.path}: {exc.strerror or exc}") \
                from exc

    def _interrupted(self, data: dict[str, Any]) -> None:
        """At exit, a run that never reached this host's result: what had been applied so far,
        and, when an operation of it had failed (one of pyinfra's own, which reports to
        nobody), that it failed rather than was cut short."""
        changed = self._changed()
        data["steps_applied"] = self._steps()
        broken = [_op_name(op) for op in self.applied.ops if op.is_complete() and op.did_error()]
        if broken and not data.get("interrupted_by") and not runs.interrupted_by():
            data.update(result="failed", reason=f"an operation failed: {broken[0]}")
        data["state"] = ("as found" if not changed else
                         f"needs a person: {data['result']} after {', '.join(changed)}"
                         " (the next run resumes the journal)")

    def lost(self, reason: str) -> None:
        """The connection died: the host is not failed by what it did, it was cut off."""
        if runs.is_final(self.data):
            return
        self.data["interrupted_by"] = reason
        self.data["reason"] = reason

    def refused(self, reason: str, more: list[str] | None = None) -> None:
        """Stopped before the first change."""
        self.data.update(result="refused", reason=reason, state="as found",
                         reasons=[reason] + list(more or []))
        self.write()

    def failed(self, reason: str) -> None:
        """An operation failed this host at execution (guard.on_failure)."""
        if runs.is_final(self.data) or self.data.get("interrupted_by"):
            return  # the outcome was already written; this is its own failing line
        changed = self._changed()
        self.data["steps_applied"] = self._steps()
        self.data.update(result="failed", reason=reason, state=(
            "as found" if not changed else
            f"needs a person: {reason}; already changed: {', '.join(changed)}"))
        self.write()

    def _changed(self) -> list[str]:
        return [_op_name(op) for op in self.applied.ops if op.is_complete() and op.did_change()]

    def _steps(self) -> list[dict[str, Any]]:
        return [{"operation": _op_name(op), "changed": op.is_complete() and op.did_change(),
                 "failed": op.is_complete() and op.did_error()} for op in self.applied.ops]

    def record(self, result: Verdict, rolled_back: bool, after: dict[str, Any] | None,
               state: str) -> None:
        self.data["steps_applied"] = self._steps()
        self.data["verification"] = result.to_json()
        self.data["rolled_back"] = rolled_back
        self.data["result"] = "verified" if result.passed else (
            "rolled back" if rolled_back else "failed")
        self.data["state"] = state
        if not result.passed:
            self.data["reason"] = result.reason
        if after is not None:
            self.data["diagnosis_after"] = after
        self.write()


def _op_name(op: Any) -> str:
    """The name an operation was registered with (pyinfra keeps it in the state)."""
    try:
        return ", ".join(pyinfra.state.get_op_meta(op._hash).names) or "operation"
    except (AttributeError, KeyError, TypeError):
        return "operation"


def _diagnosis_json(snapshot: Snapshot, diagnosis: Diagnosis) -> dict[str, Any]:
    return {"primary": diagnosis.primary, "findings": [f.to_json() for f in diagnosis.findings],
            "summary": report.summary(snapshot), "problems": list(snapshot.problems)}


# One call line per remedy deploy. pyinfra names an operation by the line numbers of its call
# stack (not the files): two deploys called from one line would give operations of different
# modules the same name on different hosts, and pyinfra's ordering of the fleet a cycle.
_R = registry()
_CALLS = {
    act.SERVICE_ENV: lambda params: _R[act.SERVICE_ENV](**params),
    act.GPU_GROUPS: lambda params: _R[act.GPU_GROUPS](**params),
    act.START_SERVICE: lambda params: _R[act.START_SERVICE](**params),
    act.CUDA_TOOLKIT: lambda params: _R[act.CUDA_TOOLKIT](**params),
    act.NVIDIA_DRIVER: lambda params: _R[act.NVIDIA_DRIVER](**params),
    act.NVIDIA_UVM_RELOAD: lambda params: _R[act.NVIDIA_UVM_RELOAD](**params),
    act.WSL2_PURGE_GUEST_DRIVER: lambda params: _R[act.WSL2_PURGE_GUEST_DRIVER](**params),
    act.AMDGPU_DRIVER: lambda params: _R[act.AMDGPU_DRIVER](**params),
    act.VULKAN_PACKAGES: lambda params: _R[act.VULKAN_PACKAGES](**params),
}


def _is_local(host: Host) -> bool:
    return isinstance(host.connector, LocalConnector) or host.name == "@local"


def _api(snapshot: Snapshot) -> str | None:
    meta = snapshot.probe
    return next((r.text.split("=", 1)[1] for r in (meta.raw if meta else [])
                 if r.text.startswith("api=") and r.text != "api=skipped"), None)


def _verify_settings(snapshot: Snapshot, diagnosis: Diagnosis, policy: Policy,
                     local: bool) -> dict[str, Any]:
    observed = snapshot.observation
    model = policy.verify_model or (
        observed.model if observed and observed.mode == "generate" and observed.model else None
    ) or pick_model(
        {"models": [{"name": n, "size": s} for n, s in (snapshot.installed_models or {}).items()]},
        None,
    )
    return {
        "api": _api(snapshot) or "",
        "model": model,
        "tokens": policy.verify_tokens,
        "wait": policy.verify_timeout,
        "baseline": policy.verify_cpu_baseline,
        "pull": policy.verify_pull,
        "min_gpu_percent": policy.min_gpu_percent,
        "per_process": platform(snapshot) != "wsl2",
        "gpu_expected": diagnosis.primary != "no-gpu",
        "local": local,
    }


@deploy("Fix Ollama's GPU")
def fix_host(host: Host | None = None) -> Plan:
    """The whole fix for one host (see the module docstring); HOST defaults to pyinfra's
    current host (`pyinfra INVENTORY ollama_gpu_fix.deploy.fix.fix_host` needs no argument)."""
    host = context.host if host is None else host
    cliguard.install(host.state)
    tolerate_lost_connections()
    absolute_shell(host)
    _confirmable(host)
    try:
        return _fix(host)
    except DeployError:
        raise
    except Exception as exc:  # noqa: BLE001 - this host's outcome, never the fleet's
        reason = f"internal error while planning: {type(exc).__name__}: {exc}; nothing was changed"
        logger.error(f"{host.print_prefix}{report.printable(reason)}")
        refuse(name="Refuse", why=reason)
        return Plan(blocked=reason)


def observe_and_probe(host: Host, policy: Policy, local: bool) -> tuple[dict[str, str], Snapshot]:
    """The probe with the observation (one remote command): a bounded generation of
    verify_tokens tokens with verify_model (or the smallest local model), then /api/ps and the
    GPU's process list, read as the verification reads them. On @local, NVML's own process
    list completes a host where nvidia-smi lists none."""
    with waiting(host, "the probe (a bounded generation, /api/ps, the GPU's processes)"):
        sections = host.get_fact(OllamaGpuProbe, observe="generate",
                                 model=policy.verify_model or "", tokens=policy.verify_tokens,
                                 timeout=OBSERVE_TIMEOUT) or {}
    snapshot = build_snapshot(sections)
    if local and snapshot.observation is not None and OBSERVATION in sections:
        nvml = nvml_processes()
        if nvml is not None:
            snapshot.observation = observation(
                sections[OBSERVATION], per_process=platform(snapshot) != "wsl2", nvml=nvml)
    return sections, snapshot


def _observed_verification(snapshot: Snapshot, sections: dict[str, str],
                           policy: Policy) -> tuple[str, str] | None:
    """What the no-op verification reads instead of generating again: (the observation's
    output, Ollama's log as the probe read it), when the observation ran the model the
    verification would run (not with a CPU baseline or a pull to do: those need verify.sh)."""
    observed = snapshot.observation
    if (observed is None or observed.mode != "generate" or observed.skipped
            or observed.generated is None or OBSERVATION not in sections
            or policy.verify_cpu_baseline or policy.verify_pull):
        return None
    if policy.verify_model and observed.model != policy.verify_model:
        return None
    return sections[OBSERVATION], sections.get("ollama-serve.log", "")


def _fix(host: Host) -> Plan:
    policy = _policy(host)
    if policy is None:
        return Plan(blocked="bad host data")
    local = _is_local(host)
    sections, snapshot = observe_and_probe(host, policy, local)
    diagnosis = diagnose(snapshot)
    the_plan = plan(diagnosis, snapshot, policy, local=local)
    fix_report = FixReport(
        host, policy.report_dir, "dry" if dry_run() else "fix",
        {
            "policy": {k: _plain_value(getattr(policy, k)) for k in knobs()},
            "diagnosis_before": _diagnosis_json(snapshot, diagnosis),
            "plan": the_plan.to_json(),
            "result": "planned",
            "primary": diagnosis.primary,
            "snapshot": report._plain(snapshot),
        },
    )
    interrupted = bool(snapshot.probe and snapshot.probe.transaction == "open")
    if the_plan.blocked or not sections:
        reason = the_plan.blocked or "the probe returned no evidence"
        logger.info("\n%s\n%s\n", report.render_text(snapshot, diagnosis, host=host.name),
                    render_plan(the_plan, host.name))
        fix_report.refused(reason)
        refuse(name="Refuse", why=f"nothing was changed: {reason}")
        return the_plan
    steps = [s for s in the_plan.runnable if s.action != act.REBOOT_HOST]
    if steps:
        want = pf.spec(the_plan, snapshot, _api(snapshot), policy.apt_lock_timeout)
        output = host.get_fact(Preflight, settings=want.environment())
        checked = pf.judge(want, output, snapshot.packages)
        fix_report.data["preflight"] = {"problems": checked.problems, "notes": checked.notes,
                                        "reuse": checked.reuse,
                                        "not_edited": checked.unsafe_edits}
        if checked.passed:
            pf.apply(the_plan, checked)
            the_plan.advice += checked.notes
            primary = [s for s in the_plan.steps if diagnosis.primary in s.codes]
            if primary and all(s.refused for s in primary) and not the_plan.blocked:
                the_plan.blocked = f"{diagnosis.primary}: {primary[0].refused}"
        fix_report.data["plan"] = the_plan.to_json()
        logger.info("\n%s\n%s\n", report.render_text(snapshot, diagnosis, host=host.name),
                    render_plan(the_plan, host.name))
        if not checked.passed or the_plan.blocked:
            reasons = checked.problems or [str(the_plan.blocked)]
            more = f" (and {len(reasons) - 1} more: see the report)" if len(reasons) > 1 else ""
            fix_report.refused(reasons[0], reasons[1:])
            refuse(name="Preflight", why=f"refused before any change: {reasons[0]}{more}")
            return the_plan
        steps = [s for s in the_plan.runnable if s.action != act.REBOOT_HOST]
    else:
        logger.info("\n%s\n%s\n", report.render_text(snapshot, diagnosis, host=host.name),
                    render_plan(the_plan, host.name))
    return _apply(host, the_plan, steps, snapshot, diagnosis, policy, local, fix_report,
                  interrupted, _observed_verification(snapshot, sections, policy))


def _apply(host: Host, the_plan: Plan, steps: list, snapshot: Snapshot, diagnosis: Diagnosis,
           policy: Policy, local: bool, fix_report: FixReport, interrupted: bool,
           observed: tuple[str, str] | None = None) -> Plan:
    on_failure(host, fix_report.failed)
    total = fix_report.applied
    journaled = bool(steps) or interrupted
    if journaled:
        total.ops.append(transaction(name="Transaction: begin (or resume an interrupted one)",
                                     run_id=uuid.uuid4().hex[:12]))
    for step in steps:
        total.add(_CALLS[step.action](step.params))
    restarting = interrupted or any(s.action in _RESTARTING for s in steps)
    if restarting and (snapshot.probe is None or snapshot.probe.systemd is not False):
        groups = sorted({g for s in steps if s.action == act.GPU_GROUPS
                         for g in s.params["groups"]})
        total.ops.append(restart_ollama(
            name="Restart ollama.service if it differs from its unit",
            intended=intended_environment(steps), groups=groups,
            changed=lambda: list(total.restart)))
    reboot_step = next((s for s in the_plan.runnable if s.action == act.REBOOT_HOST), None)
    if reboot_step is not None:
        reboot(name="Reboot (new kernel module)")
    elif the_plan.reboot_required:
        refused = next(s.refused for s in the_plan.steps if s.action == act.REBOOT_HOST)

        def needs_reboot(why: str) -> None:
            """At execution (a run cut before this point was interrupted, not this): the
            changes are in, the proof waits for a reboot."""
            fix_report.data["steps_applied"] = fix_report._steps()
            fix_report.data.update(
                result="applied" if fix_report._changed() else "reboot required",
                reason=refused, state="needs a person: reboot", needs="reboot")
            fix_report.write()

        refuse(name="Refuse", why=f"not verified: {refused}", on_fail=needs_reboot)
        return the_plan
    settings = _verify_settings(snapshot, diagnosis, policy, local)
    settings["fingerprints"] = [s.fingerprint for s in steps if s.changes == act.SERVICE]
    settings["journaled"] = journaled
    # nothing to change: the observation before the diagnosis is the verification
    settings["observed"] = observed is not None and not journaled

    def changed() -> bool:
        return interrupted or any(op.is_complete() and op.did_change() for op in total.ops)

    def record(result: Verdict, rolled_back: bool, state: str) -> None:
        after = None
        if changed():
            fresh = build_snapshot(host.get_fact(OllamaGpuProbe) or {})
            after = _diagnosis_json(fresh, diagnose(fresh))
        fix_report.record(result, rolled_back, after, state)

    verify_gpu(name="Verify: the model runs on the GPU", settings=settings, record=record,
               changed=changed, observed=(lambda: observed) if settings["observed"] else None)
    _watchdog(host, snapshot, policy, fix_report)
    return the_plan


def _watchdog(host: Host, snapshot: Snapshot, policy: Policy, fix_report: FixReport) -> None:
    """After the verification (a failed host runs nothing more): the watchdog as the knob
    says, installed or updated on a verified host, removed when the knob is off."""
    if not wd.needed(snapshot, policy):
        return
    meta = snapshot.probe
    why = wd.refusal(snapshot) if policy.install_watchdog else None
    if why:
        logger.warning(f"{host.print_prefix}watchdog not installed: {why}")
        fix_report.data["watchdog"] = {"wanted": True, "installed": False, "reason": why}
        return
    fix_report.data["watchdog"] = {"wanted": policy.install_watchdog,
                                   "interval_s": policy.watchdog_interval,
                                   "textfile_dir": policy.watchdog_textfile_dir}
    wd.watchdog(name="Watchdog: " + ("install or update" if policy.install_watchdog
                                     else "remove"),
                install=policy.install_watchdog,
                files=wd.wanted(policy) if policy.install_watchdog else {},
                present=dict(meta.watchdog_files) if meta else {},
                timer=meta.watchdog_timer if meta else None,
                textfile_dir=policy.watchdog_textfile_dir)


@deploy("Verify Ollama's GPU")
def verify_host(host: Host | None = None) -> None:
    """Read-only: probe, then the verification fix_host ends with; the report says so."""
    host = context.host if host is None else host
    cliguard.install(host.state)
    nothing_to_confirm(host)
    tolerate_lost_connections()
    absolute_shell(host)
    policy = _policy(host)
    if policy is None:
        return
    sections = host.get_fact(OllamaGpuProbe) or {}
    snapshot = build_snapshot(sections)
    diagnosis = diagnose(snapshot)
    logger.info("\n%s\n", report.render_text(snapshot, diagnosis, host=host.name))
    fix_report = FixReport(
        host, policy.report_dir, "verify",
        {"diagnosis_before": _diagnosis_json(snapshot, diagnosis), "result": "planned",
         "primary": diagnosis.primary},
    )
    settings = _verify_settings(snapshot, diagnosis, policy, _is_local(host))
    settings["journaled"] = False
    verify_gpu(name="Verify: the model runs on the GPU", settings=settings,
               record=lambda result, rolled_back, state: fix_report.record(
                   result, rolled_back, None, state))


def _plain_value(value: Any) -> Any:
    return value if isinstance(value, (bool, int, str, type(None))) else str(value)
