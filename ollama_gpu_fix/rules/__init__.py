"""Diagnosis: rules over a Snapshot produce Findings; the earliest fix in CODE_ORDER is primary.

Each module holds the rules of one failure family; a rule takes the shared Context and yields
Findings with their evidence. Rules never raise into the caller: a bug in one rule becomes an
`other` finding naming it, and the remaining rules still run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ollama_gpu_fix import actions as act
from ollama_gpu_fix.findings import Diagnosis, Finding, Remedy, choose_primary
from ollama_gpu_fix.rules import amd, nvidia, outcome, path, platforms, service, vulkan
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
# By mechanism (rules/path.py): they add a finding only for a code no rule above gave as an
# error (a specific rule's remedy is the better one).
MECHANISMS: tuple[Rule, ...] = path.RULES
_FAILURE_EVENTS = (
    "ggml-init-failed",
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
    specific = {f.code for f in findings if f.severity == "error"}
    explained = {line for f in findings if f.severity == "error" for line in f.evidence}
    for rule in MECHANISMS:
        try:
            for found in rule(ctx):
                found.evidence = [ln for ln in found.evidence if ln not in explained]
                if found.code not in specific and found.evidence:
                    findings.append(found)
        except Exception as exc:  # noqa: BLE001
            findings.append(
                Finding("other", "warning", f"rule {rule.__name__} failed: {exc!r}", [])
            )
    unknown = path.first_unknown(ctx, findings)
    if unknown:  # the failures printed on the way are the first thing to read
        unknown.evidence = list(dict.fromkeys(ctx.lines(*_FAILURE_EVENTS) + unknown.evidence))
    findings.extend([unknown] if unknown else _unexplained(ctx, findings))
    if not findings:
        findings.append(_not_enough(ctx))
    _advice_only_off_linux(ctx, findings)
    return Diagnosis(findings=findings, primary=choose_primary(findings),
                     placement=ctx.placement.as_dict(),
                     chain=[link.as_dict() for link in path.chain(ctx, findings)])


def _advice_only_off_linux(ctx: Context, findings: list[Finding]) -> None:
    """On Windows and macOS the cause stays, but no systemd drop-in or apt step applies:
    every remedy becomes advice for that platform (a container's fix is on its host or in
    its run command, which the container rule says itself)."""
    where = ctx.platform
    if where not in ("windows", "macos"):
        return
    name = {"windows": "Windows", "macos": "macOS"}[where]
    for finding in findings:
        remedy = finding.remedy
        if remedy is None or (not remedy.automatic and remedy.summary.startswith(f"({name})")):
            continue
        finding.remedy = Remedy(
            act.ADVISE,
            f"({name}) {remedy.summary} Set variables for the Ollama app (user environment,"
            " then quit and restart Ollama); the Linux service fixes do not apply.",
            False,
            remedy.params,
        )


def _not_enough(ctx: Context) -> Finding:
    """Neither GPU use nor a GPU failure in the evidence: say what would decide."""
    s = ctx.s
    have = ", ".join(s.sections) or "nothing"
    wanted = []
    if not s.log:
        wanted.append("Ollama's server log from its start (`journalctl -u ollama -b`, or"
                      " server.log), with OLLAMA_DEBUG=1")
    elif not ctx.compute:
        wanted.append("the log from the server's start: its `inference compute` lines")
    if s.loaded_models is None:
        wanted.append("`ollama ps` while a model is loaded")
    if s.nvidia_smi is None and s.rocm is None:
        wanted.append("`nvidia-smi` (NVIDIA) or `rocminfo` (AMD)")
    return Finding(
        "not-enough-evidence",
        "info",
        "The evidence shows neither GPU use nor a GPU failure.",
        [Line("bundle", f"files read: {have}")],
        Remedy(act.ADVISE, "Collect " + "; ".join(wanted or ["`ollama-gpu-fix collect`"]) + "."),
    )


def _unexplained(ctx: Context, findings: list[Finding]) -> Iterable[Finding]:
    """GPU trouble in the evidence that no specific rule explains: quote it verbatim."""
    if any(f.severity == "error" for f in findings) or ctx.gpu_in_use:
        return
    evidence: list[Line] = ctx.lines(*_FAILURE_EVENTS)
    if ctx.cpu_fallback:
        if ctx.observed_on_gpu == 0 and ctx.s.observation:
            evidence += ctx.s.observation.evidence[:3]
        evidence += [c.raw for c in ctx.compute if c.raw] + ctx.lines("zero-vram")
        evidence += [m.raw for m in ctx.s.loaded_models or [] if m.gpu_fraction == 0 and m.raw]
    if not evidence or any(f.code == "no-gpu" for f in findings):
        return
    log = ctx.s.log
    evidence += log.gpu_lines[-10:] if log else []
    yield Finding(
        "other",
        "error",
        "Ollama runs on the CPU (no usable GPU found, or the model placed on the CPU) and the"
        " evidence does not say why; it is quoted below.",
        list(dict.fromkeys(evidence)),
        Remedy(act.ADVISE, "Restart Ollama with OLLAMA_DEBUG=1 and read its discovery lines from"
               " the start (`journalctl -u ollama -b`); check `nvidia-smi` or `rocminfo` and"
               " `ollama ps` while a model runs."),
    )
