"""Verification as a pyinfra operation: prove at execution time that the model runs on the GPU.

It runs verify.sh on the host through a fact (one remote command; a fact is not a change),
makes the verdict (ollama_gpu_fix.verdict) and yields nothing when the GPU does the work, so
a run that changed nothing still counts as no change. When the GPU does not, it fails the
host with the reason in one line; if this run changed the service environment it first
restores the previous files, restarts Ollama and verifies again ("rolled back").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from pyinfra import host, logger, state
from pyinfra.api import FunctionCommand, QuoteString, StringCommand, operation

from ollama_gpu_fix.deploy.facts import GpuVerification
from ollama_gpu_fix.deploy.operations import fail_host, restore_commands
from ollama_gpu_fix.dropin import ROLLED_BACK, STATE_DIR
from ollama_gpu_fix.nvml import nvml_processes
from ollama_gpu_fix.verdict import Verdict, verdict


@operation()
def verify_gpu(
    settings: dict[str, Any],
    record: Callable[[Verdict, bool], None] | None = None,
    changed_service: Callable[[], list[str]] | None = None,
):
    """Run a model and check /api/ps and the GPU's process list; fail the host if the model
    is not on the GPU (after rolling back this run's service changes).

    + settings: api, model, tokens, wait, baseline, pull, min_gpu_percent, per_process,
      gpu_expected, local (see ollama_gpu_fix.deploy.fix)
    + record: called with the verdict and whether a rollback happened (the JSON report)
    + changed_service: the service files this run changed (restored on failure)
    """
    if not state.is_executing:
        return  # nothing to verify before anything ran (--dry, change detection)
    result = _run(settings)
    rolled_back = False
    paths = changed_service() if changed_service and not result.passed else []
    if paths:
        for path in paths:
            yield from restore_commands(path)
        yield StringCommand("systemctl", "daemon-reload")
        yield StringCommand("systemctl", "restart", "ollama.service")
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        for fingerprint in settings.get("fingerprints", []):
            yield StringCommand("mkdir", "-p", STATE_DIR)
            yield StringCommand("echo", QuoteString(f"{fingerprint} {stamp}"), ">>",
                                QuoteString(ROLLED_BACK))
        rolled_back = True
        again = _run(settings)
        result.reason += f"; rolled back {', '.join(paths)} (" + (
            f"verified again: {again.reason})" if again.passed else f"still: {again.reason})"
        )
    if record:
        record(result, rolled_back)
    if result.passed:
        line = f"on the GPU: {result.reason}" if result.kind == "use" else result.reason
        host.log_styled(f"verified: {line}", fg="green", log_func=logger.info)
        host.noop(line)
        return
    yield FunctionCommand(fail_host, (f"not on the GPU: {result.reason}",), {})


def _run(settings: dict[str, Any]) -> Verdict:
    if not settings["gpu_expected"]:
        return Verdict(True, "cpu-expected", "no GPU in this machine: CPU is expected")
    output = host.get_fact(
        GpuVerification,
        api=settings["api"],
        model=settings.get("model") or "",
        tokens=settings["tokens"],
        wait=settings["wait"],
        baseline=settings["baseline"],
        pull=settings["pull"],
    )
    return verdict(
        output,
        settings.get("model"),
        min_gpu_percent=settings["min_gpu_percent"],
        nvml=nvml_processes() if settings.get("local") else None,
        per_process=settings["per_process"],
        gpu_expected=settings["gpu_expected"],
    )
