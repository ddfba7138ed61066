"""Diagnosis: rules over a Snapshot produce Findings; the earliest fix in CODE_ORDER is primary."""

from __future__ import annotations

from ollama_gpu_fix.findings import Diagnosis, Finding, choose_primary
from ollama_gpu_fix.snapshot import Snapshot


def diagnose(snapshot: Snapshot) -> Diagnosis:
    findings: list[Finding] = []  # TODO(rules)
    return Diagnosis(findings=findings, primary=choose_primary(findings))
