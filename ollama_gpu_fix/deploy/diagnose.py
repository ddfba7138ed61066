"""Diagnose the current pyinfra host: one probe fact (one remote command), pure parsing and
rules, a text report in pyinfra's output and a JSON report written on the controller.

The probe observes without generating: /api/ps, the API's listener and the GPU's process list
as found (snapshot.observation, mode "look"). With host data `observe_generate=true` it runs
the fix's bounded generation first (verify_model or the smallest local model, verify_tokens).

Deploy files are exec'd by pyinfra once per host; deploys/diagnose.py and deploys/fix_gpu.py
both call diagnose_host, so they run the very same diagnosis.
"""

from __future__ import annotations

import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyinfra import context, logger
from pyinfra.api.exceptions import DeployError
from pyinfra.api.host import Host

from ollama_gpu_fix import report, runs
from ollama_gpu_fix.deploy import cliguard
from ollama_gpu_fix.deploy.connections import absolute_shell
from ollama_gpu_fix.deploy.facts import OBSERVE_TIMEOUT, OllamaGpuProbe
from ollama_gpu_fix.deploy.progress import waiting
from ollama_gpu_fix.findings import Diagnosis
from ollama_gpu_fix.parsers import build_snapshot
from ollama_gpu_fix.policy import Policy, PolicyError, policy_from_host_data, report_dir_problem
from ollama_gpu_fix.rules import diagnose
from ollama_gpu_fix.snapshot import Snapshot

DEFAULT_REPORT_DIR = "reports"


@dataclass(frozen=True)
class Settings:
    """Host data this code reads, validated."""

    report_dir: Path
    observe_generate: bool = False  # a bounded generation before reading /api/ps
    verify_model: str | None = None
    verify_tokens: int = 4
    use_watchdog_state: bool = False  # read the watchdog's last check instead of probing


@dataclass
class HostDiagnosis:
    host: str
    sections: dict[str, str]
    snapshot: Snapshot
    diagnosis: Diagnosis
    report_path: Path


def validate_host_data(data: dict[str, Any], cwd: str | os.PathLike[str]) -> Settings:
    """Check the policy knobs before anything runs; a bad value is a clear DeployError."""
    raw = data.get("report_dir", DEFAULT_REPORT_DIR)
    if raw is None:
        raw = DEFAULT_REPORT_DIR
    if isinstance(raw, os.PathLike):
        raw = os.fspath(raw)
    if not isinstance(raw, str) or not raw.strip() or "\x00" in raw:
        raise DeployError(
            f"host data report_dir must be a non-empty string path (a directory on the "
            f"controller), got {raw!r}"
        )
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = Path(cwd) / path
    problem = report_dir_problem(path)
    if problem:
        raise DeployError(f"host data report_dir={raw!r}: {problem}")
    # the observation's knobs, checked as the fix checks them (ollama_gpu_fix.policy)
    wanted = {k: data.get(k) for k in ("observe_generate", "verify_model", "verify_tokens",
                                       "use_watchdog_state")}
    try:
        policy: Policy = policy_from_host_data({"report_dir": str(path), **wanted}, cwd)
    except PolicyError as exc:
        raise DeployError(str(exc)) from exc
    return Settings(report_dir=path, observe_generate=policy.observe_generate,
                    verify_model=policy.verify_model, verify_tokens=policy.verify_tokens,
                    use_watchdog_state=policy.use_watchdog_state)


def bad_host_data(host: Host, message: str) -> None:
    """A bad knob: one line. One host: pyinfra's own error line (exit 1). A fleet: this host
    fails with that line, the others go on (raising would stop them all)."""
    if len(host.state.inventory) == 1:
        raise DeployError(message)
    from ollama_gpu_fix.deploy.operations import refuse

    logger.error(f"{host.print_prefix}{message}")
    refuse(name="Refuse", why=message, quiet=True)


def nothing_to_confirm(host: Host) -> None:
    """A read-only run has nothing for pyinfra's "Press enter to execute" to guard: without a
    terminal (cron, CI, a pipe) answer it ourselves instead of dying on EOFError."""
    if host.state.check_for_changes and not sys.stdin.isatty():
        sys.stdin = io.StringIO("\n")


def diagnose_host(host: Host | None = None) -> HostDiagnosis | None:
    """Probe the current host once, diagnose, print the text report, write the JSON report.

    Changes nothing on the host: the only remote command is the read-only probe fact. HOST
    defaults to pyinfra's current host (`pyinfra INVENTORY ollama_gpu_fix.deploy.diagnose.
    diagnose_host` needs no argument).
    """
    host = context.host if host is None else host
    cliguard.install(host.state)
    nothing_to_confirm(host)
    absolute_shell(host)
    try:
        settings = validate_host_data(host.data.dict(), host.state.cwd or os.getcwd())
    except DeployError as exc:
        bad_host_data(host, str(exc))
        return None
    if settings.use_watchdog_state:
        done = _from_watchdog(host, settings)
        if done is not None:
            return done
    with waiting(host, "the probe"):
        sections = host.get_fact(
            OllamaGpuProbe, observe="generate" if settings.observe_generate else "look",
            model=settings.verify_model or "", tokens=settings.verify_tokens,
            timeout=OBSERVE_TIMEOUT) or {}
    snapshot = build_snapshot(sections)
    diagnosis = diagnose(snapshot)
    text = report.render_text(snapshot, diagnosis, host=host.name)
    if not sections:
        text += "\n  (the probe returned no evidence: see the errors above)"
    logger.info("\n%s\n", text)

    run = runs.current("diagnose")
    path = run.path_for(settings.report_dir, host.name)
    data = {**runs.envelope(run, host.name), "result": "diagnosed",
            **report.to_json(snapshot, diagnosis, probe_sections=sorted(sections))}
    try:
        runs.write(run, path, data)
    except OSError as exc:
        raise DeployError(f"cannot write the report {path}: {exc.strerror or exc}") from exc
    logger.info(f"{host.print_prefix}report: {path}")
    return HostDiagnosis(host.name, sections, snapshot, diagnosis, path)


def _from_watchdog(host: Host, settings: Settings) -> HostDiagnosis | None:
    """The watchdog's last check instead of a probe (one small read); None when the host has
    none (then it is probed as usual)."""
    from ollama_gpu_fix.deploy.facts import WatchdogLastCheck

    text = host.get_fact(WatchdogLastCheck)
    sections = {"watchdog.json": text} if text else {}
    snapshot = build_snapshot(sections)
    state = snapshot.watchdog
    if not state:
        logger.info(f"{host.print_prefix}no watchdog state here: probing instead")
        return None
    diagnosis = Diagnosis(findings=[], primary=str(state.get("code") or (
        "ok-gpu" if state.get("status") == "OK" else "not-enough-evidence")))
    logger.info(f"{host.print_prefix}watchdog: {state.get('status')}: "
                f"{report.printable(str(state.get('summary', '')))[:300]}")
    run = runs.current("diagnose")
    path = run.path_for(settings.report_dir, host.name)
    data = {**runs.envelope(run, host.name), "result": "diagnosed", "source": "watchdog",
            "primary": diagnosis.primary, "watchdog_state": state}
    try:
        runs.write(run, path, data)
    except OSError as exc:
        raise DeployError(f"cannot write the report {path}: {exc.strerror or exc}") from exc
    logger.info(f"{host.print_prefix}report: {path}")
    return HostDiagnosis(host.name, sections, snapshot, diagnosis, path)


def load_json_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


safe_file_name = runs.safe_file_name  # where it was (tests, earlier callers)
