"""Verification as a pyinfra operation: prove at execution time that the model runs on the GPU,
then commit this run's transaction, or roll it back through the journal.

It runs verify.sh on the host through a fact (one remote command; a fact is not a change),
makes the verdict (ollama_gpu_fix.verdict) and, on a run that changed nothing, yields nothing
when the GPU does the work, so a no-op run still counts as no change. When the GPU does not
and this run (or an interrupted one it resumed) changed something, every file the transaction
changed is put back as it was found (change.sh rollback: root's own files, temp file + rename,
mode and owner), Ollama restarts, the verification runs again, and the report says "rolled
back" with the state the host was left in. Package changes are not undone: the plan said so.
A run whose plan changed nothing is verified by the probe's observation (the same reading of
the same service, made before the diagnosis): no second generation runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyinfra import host, logger, state

from ollama_gpu_fix.deploy.facts import GpuVerification
from ollama_gpu_fix.deploy.guard import fail_host, host_operation
from ollama_gpu_fix.deploy.rootfiles import change
from ollama_gpu_fix.nvml import nvml_processes
from ollama_gpu_fix.report import printable
from ollama_gpu_fix.verdict import Verdict, verdict


@host_operation()
def verify_gpu(
    settings: dict[str, Any],
    record: Callable[[Verdict, bool, str], None] | None = None,
    changed: Callable[[], bool] | None = None,
    observed: Callable[[], tuple[str, str] | None] | None = None,
):
    """Run a model and check /api/ps and the GPU's process list; commit this run's
    transaction, or roll it back and fail the host when the model is not on the GPU.

    + settings: api, model, tokens, wait, baseline, pull, min_gpu_percent, per_process,
      gpu_expected, local, journaled, fingerprints (see ollama_gpu_fix.deploy.fix)
    + record: called with the verdict, whether a rollback happened and the host's state
    + changed: whether this run (or the interrupted one it resumed) changed anything
    + observed: the probe's observation and Ollama's log, when nothing was to change: the
      verdict is made over them instead of generating again
    """
    if not state.is_executing:
        return  # nothing to verify before anything ran (--dry, change detection)
    seen = observed() if observed is not None else None
    result = _run(settings, seen)
    journaled = bool(settings.get("journaled"))
    rolled_back = False
    if result.passed:
        where = "verified"
        if journaled:
            yield change("commit", "verified")
    elif journaled and changed is not None and changed():
        yield change("rollback", "restart")
        for fingerprint in settings.get("fingerprints", []):
            yield change("remember", fingerprint)
        yield change("commit", "rolled-back")
        rolled_back = True
        again = _run(settings)
        result.reason += "; rolled back (" + (
            f"verified again: {again.reason})" if again.passed else f"still: {again.reason})")
        where = ("rolled back: as found" if again.passed or again.kind == "use"
                 else f"needs a person: {again.reason}")
    else:
        where = "as found" if not (changed and changed()) else f"needs a person: {result.reason}"
        if journaled:
            yield change("commit", "failed")
    if record:
        record(result, rolled_back, where)
    if result.passed:
        line = f"on the GPU: {result.reason}" if result.kind == "use" else result.reason
        host.log_styled(printable(f"verified: {line}"), fg="green", log_func=logger.info)
        host.noop(printable(line))
        return
    yield from fail_host(f"not on the GPU: {result.reason}")


def _run(settings: dict[str, Any], observed: tuple[str, str] | None = None) -> Verdict:
    if not settings["gpu_expected"]:
        return Verdict(True, "cpu-expected", "no GPU in this machine: CPU is expected")
    judged = {"min_gpu_percent": settings["min_gpu_percent"],
              "nvml": nvml_processes() if settings.get("local") else None,
              "per_process": settings["per_process"], "gpu_expected": settings["gpu_expected"]}
    if observed is not None:
        output, log = observed
        result = verdict(output, settings.get("model"), log=log, **judged)
        result.from_observation = True
        if result.passed:
            result.reason += " (observed before the diagnosis; nothing was changed)"
        return result
    output = host.get_fact(
        GpuVerification,
        api=settings["api"],
        model=settings.get("model") or "",
        tokens=settings["tokens"],
        wait=settings["wait"],
        baseline=settings["baseline"],
        pull=settings["pull"],
    )
    return verdict(output, settings.get("model"), **judged)
