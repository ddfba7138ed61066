"""fix_gpu: probe once, diagnose, plan, apply with pyinfra operations, restart Ollama only if
something changed, verify, and write the host's JSON report.

Runs in pyinfra's prepare stage per host (as every deploy file does): the probe and the plan
are decided here, the operations registered here run at execution, where the verification
decides whether the host passes. --dry stops after the plan and pyinfra's diff.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyinfra
from pyinfra import logger
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.api.host import Host
from pyinfra.connectors.local import LocalConnector
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed

from ollama_gpu_fix import report
from ollama_gpu_fix.deploy.connections import tolerate_lost_connections
from ollama_gpu_fix.deploy.diagnose import safe_file_name, write_json_report
from ollama_gpu_fix.deploy.facts import OllamaGpuProbe
from ollama_gpu_fix.deploy.operations import reboot, refuse
from ollama_gpu_fix.deploy.remedies import Applied, preflight, registry
from ollama_gpu_fix.deploy.verify import verify_gpu
from ollama_gpu_fix.findings import Diagnosis
from ollama_gpu_fix.hostplatform import platform
from ollama_gpu_fix.parsers import build_snapshot
from ollama_gpu_fix.plan import Plan, Step, plan
from ollama_gpu_fix.policy import Policy, PolicyError, knobs, policy_from_host_data
from ollama_gpu_fix.rules import diagnose
from ollama_gpu_fix.snapshot import Snapshot
from ollama_gpu_fix.verdict import Verdict, pick_model


def _policy(host: Host) -> Policy | None:
    """The host's policy; None (and this host fails at execution, the others go on) when a
    knob is bad: raising here would stop pyinfra for every host of the inventory."""
    try:
        return policy_from_host_data(host.data.dict(), host.state.cwd or ".")
    except PolicyError as exc:
        logger.error(f"{host.print_prefix}{exc}; nothing will be changed on this host")
        refuse(name="Refuse", why=f"{exc}; nothing was changed")
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
        lines.append(f"     {state}")
    for advice in the_plan.advice:
        lines.append(f"  advice: {advice}")
    if the_plan.blocked:
        lines.append(f"  nothing will be applied: {the_plan.blocked}")
    elif the_plan.reboot_required:
        lines.append("  a reboot is required before the GPU can work")
    return "\n".join(report.printable(line) for line in lines)


class FixReport:
    """The host's JSON report: the diagnosis before, the plan, the steps applied, the
    verification and the diagnosis after (written at prepare, completed at execution)."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path, self.data = path, data
        self.applied: list[tuple[Step, Applied]] = []
        self.write()

    def write(self) -> None:
        try:
            write_json_report(self.path, self.data)
        except OSError as exc:
            raise DeployError(f"cannot write the report {self.path}: {exc.strerror or exc}") \
                from exc

    def refused(self, reason: str) -> None:
        """A preflight check stopped the host before any change."""
        self.data["result"] = "refused"
        self.data["reason"] = reason
        self.write()

    def record(self, result: Verdict, rolled_back: bool, after: dict[str, Any] | None) -> None:
        self.data["steps_applied"] = [
            {"action": step.action, "codes": step.codes, "changed": any(
                op.is_complete() and op.did_change() for op in applied.ops)}
            for step, applied in self.applied
        ]
        self.data["verification"] = result.to_json()
        self.data["rolled_back"] = rolled_back
        self.data["result"] = "verified" if result.passed else (
            "rolled back" if rolled_back else "failed")
        if after is not None:
            self.data["diagnosis_after"] = after
        self.write()


def _diagnosis_json(snapshot: Snapshot, diagnosis: Diagnosis) -> dict[str, Any]:
    return {"primary": diagnosis.primary, "findings": [f.to_json() for f in diagnosis.findings],
            "summary": report.summary(snapshot), "problems": list(snapshot.problems)}


def _is_local(host: Host) -> bool:
    return isinstance(host.connector, LocalConnector) or host.name == "@local"


def _verify_settings(snapshot: Snapshot, diagnosis: Diagnosis, policy: Policy,
                     local: bool) -> dict[str, Any]:
    meta = snapshot.probe
    api = next((r.text.split("=", 1)[1] for r in (meta.raw if meta else [])
                if r.text.startswith("api=") and r.text != "api=skipped"), None)
    model = policy.verify_model or pick_model(
        {"models": [{"name": n, "size": s} for n, s in (snapshot.installed_models or {}).items()]},
        None,
    )
    return {
        "api": api or "http://127.0.0.1:11434",
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
def fix_host(host: Host) -> Plan:
    """The whole fix for one host (see the module docstring)."""
    tolerate_lost_connections()
    _confirmable(host)
    policy = _policy(host)
    if policy is None:
        return Plan(blocked="bad host data")
    sections = host.get_fact(OllamaGpuProbe) or {}
    snapshot = build_snapshot(sections)
    diagnosis = diagnose(snapshot)
    local = _is_local(host)
    the_plan = plan(diagnosis, snapshot, policy, local=local)
    logger.info("\n%s\n%s\n", report.render_text(snapshot, diagnosis, host=host.name),
                render_plan(the_plan, host.name))
    fix_report = FixReport(
        policy.report_dir / f"{safe_file_name(host.name)}.json",
        {
            "host": host.name,
            "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "policy": {k: _plain_value(getattr(policy, k)) for k in knobs()},
            "diagnosis_before": _diagnosis_json(snapshot, diagnosis),
            "plan": the_plan.to_json(),
            "result": "planned",
            "primary": diagnosis.primary,
            "snapshot": report._plain(snapshot),
        },
    )
    if the_plan.blocked or not sections:
        reason = the_plan.blocked or "the probe returned no evidence"
        fix_report.data.update(result="refused", reason=reason)
        fix_report.write()
        refuse(name="Refuse", why=f"nothing was changed: {reason}")
        return the_plan
    preflight(the_plan.runnable, policy, on_fail=fix_report.refused)
    remedies = registry()
    total = Applied()
    for step in the_plan.runnable:
        if step.action == "reboot":
            continue
        applied = remedies[step.action](**step.params)
        fix_report.applied.append((step, applied))
        total.add(applied)
    if total.unit:
        systemd.daemon_reload(name="systemctl daemon-reload", _if=any_changed(*total.unit))
    if total.restart:
        systemd.service(name="Restart ollama", service="ollama.service", running=True,
                        restarted=True, _if=any_changed(*total.restart))
    reboot_step = next((s for s in the_plan.runnable if s.action == "reboot"), None)
    if reboot_step is not None:
        gate = any_changed(*total.reboot) if total.reboot else (lambda: True)
        reboot(name="Reboot (new kernel module)", _if=gate)
    elif the_plan.reboot_required:
        refused = next(s.refused for s in the_plan.steps if s.action == "reboot")
        fix_report.data.update(result="reboot required", reason=refused)
        fix_report.write()
        refuse(name="Refuse", why=f"not verified: {refused}")
        return the_plan
    settings = _verify_settings(snapshot, diagnosis, policy, local)
    settings["fingerprints"] = [s.fingerprint for s in the_plan.runnable if s.changes == "service"]

    def changed_service() -> list[str]:
        return [path for op, path in total.rollback if op.is_complete() and op.did_change()]

    def record(result: Verdict, rolled_back: bool) -> None:
        after = None
        if any(op.is_complete() and op.did_change() for op in total.ops):
            fresh = build_snapshot(host.get_fact(OllamaGpuProbe) or {})
            after = _diagnosis_json(fresh, diagnose(fresh))
        fix_report.record(result, rolled_back, after)

    verify_gpu(name="Verify: the model runs on the GPU", settings=settings, record=record,
               changed_service=changed_service)
    return the_plan


@deploy("Verify Ollama's GPU")
def verify_host(host: Host) -> None:
    """Read-only: probe, then the verification fix_host ends with; the report says so."""
    tolerate_lost_connections()
    policy = _policy(host)
    if policy is None:
        return
    sections = host.get_fact(OllamaGpuProbe) or {}
    snapshot = build_snapshot(sections)
    diagnosis = diagnose(snapshot)
    logger.info("\n%s\n", report.render_text(snapshot, diagnosis, host=host.name))
    fix_report = FixReport(
        policy.report_dir / f"{safe_file_name(host.name)}.json",
        {"host": host.name, "mode": "verify",
         "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
         "diagnosis_before": _diagnosis_json(snapshot, diagnosis), "result": "planned",
         "primary": diagnosis.primary},
    )
    settings = _verify_settings(snapshot, diagnosis, policy, _is_local(host))
    verify_gpu(name="Verify: the model runs on the GPU", settings=settings,
               record=lambda result, rolled_back: fix_report.record(result, rolled_back, None))


def _plain_value(value: Any) -> Any:
    return value if isinstance(value, (bool, int, str, type(None))) else str(value)
