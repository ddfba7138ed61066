"""Diagnosis: rules over a Snapshot produce Findings; the earliest fix in CODE_ORDER is primary.

Each module holds the rules of one failure family; a rule takes the shared Context and yields
Findings with their evidence. Rules never raise into the caller: a bug in one rule becomes an
`other` finding naming it, and the remaining rules still run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ollama_gpu_fix.findings import Diagnosis, Finding, choose_primary
from ollama_gpu_fix.rules import amd, nvidia, outcome, platforms, service, vulkan
from ollama_gpu_fix.rules.context import Context
from ollama_gpu_fix.snapshot import Line, Snapshot

Rule = Callable[[Context], Iterable[Finding]]
RULES: tuple[Rule, ...] = (
    *service.RULES,
    *platforms.RULES,
    *nvidia.RULES,
    *amd.RULES,
    *vulkan.RULES,
    *outcome.RULES,
)
_FAILURE_EVENTS = (
    "discovery-failure",
    "discovery-timeout",
    "cuda-lib-load-failed",
    "cuda-no-device",
    "rocm-no-device",
    "no-compatible-gpus",
)


def diagnose(snapshot: Snapshot) -> Diagnosis:
    ctx = Context(snapshot)
    findings: list[Finding] = []
    for rule in RULES:
        try:
            findings.extend(rule(ctx))
        except Exception as exc:  # noqa: BLE001 - one broken rule must not hide the others
            findings.append(
                Finding("other", "warning", f"rule {rule.__name__} failed: {exc!r}", [])
            )
    findings.extend(_unexplained(ctx, findings))
    return Diagnosis(findings=findings, primary=choose_primary(findings))


def _unexplained(ctx: Context, findings: list[Finding]) -> Iterable[Finding]:
    """GPU trouble in the evidence that no specific rule explains: quote it verbatim."""
    if any(f.severity == "error" for f in findings) or ctx.gpu_in_use:
        return
    evidence: list[Line] = ctx.lines(*_FAILURE_EVENTS)
    if ctx.cpu_fallback:
        evidence += [c.raw for c in ctx.compute if c.raw]
    if not evidence or any(f.code == "no-gpu" for f in findings):
        return
    log = ctx.s.log
    evidence += log.gpu_lines[-10:] if log else []
    yield Finding(
        "other",
        "error",
        "Ollama fell back to the CPU for a reason none of the known causes explains.",
        list(dict.fromkeys(evidence)),
    )
