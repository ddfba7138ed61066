"""Reports of a run (or a rollout) -> one row per host, and the text table across hosts.

Pure: reads report dicts (docs/report-schema.md), never a host. The fleet page
(ollama_gpu_fix.fleetpage) and the end-of-run table both read these rows.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from ollama_gpu_fix.report import printable

# lspci's names start with the vendor's legal name: "AMD Advanced Micro Devices, Inc. [AMD/ATI]
# Navi 22 [Radeon RX 6700/6700 XT]" reads as "AMD Navi 22 [Radeon RX 6700/6700 XT]"
_VENDOR_PREFIX = re.compile(r"(?<=^AMD )Advanced Micro Devices, Inc\. \[AMD/ATI\] |"
                            r"(?<=^NVIDIA )NVIDIA Corporation |(?<=^Intel )Intel Corporation ")

# the order a table lists outcomes in: what needs a person first
OUTCOME_ORDER = ("failed", "rolled back", "interrupted", "refused", "applied",
                 "reboot required", "planned", "diagnosed", "verified", "not run")


def _get(data: Any, *path: str) -> Any:  # noqa: ANN401 - JSON
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _list(value: Any) -> list[Any]:  # noqa: ANN401 - JSON
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:  # noqa: ANN401 - JSON
    """A string field as printable text ("" for anything that is not a string)."""
    return printable(value)[:300] if isinstance(value, str) else ""


def _gpu(report: dict[str, Any]) -> str:
    """The GPU by the name a person knows: nvidia-smi's, else the PCI name without the
    vendor's legal name."""
    summary = _get(report, "diagnosis_before", "summary") or report.get("summary")
    summary = summary if isinstance(summary, dict) else {}
    named = [_text(g.get("name")) for g in _list(summary.get("nvidia_gpus"))
             if isinstance(g, dict)]
    if not any(named):
        named = [_VENDOR_PREFIX.sub("", " ".join(filter(None, [
            _text(g.get("vendor")), _text(g.get("name")) or _text(g.get("device_id"))])))
                 for g in _list(summary.get("gpus")) if isinstance(g, dict)]
    named = [n for n in named if n]
    if not named:
        return "none found"
    return named[0] + (f" (+{len(named) - 1})" if len(named) > 1 else "")


def _seconds(report: dict[str, Any]) -> float | None:
    try:
        start = datetime.fromisoformat(str(report["started_at"]))
        end = datetime.fromisoformat(str(report["ended_at"]))
    except (KeyError, TypeError, ValueError):
        return None
    return max(0.0, (end - start).total_seconds())


def _number(value: Any) -> float | None:  # noqa: ANN401 - JSON
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else None


def _steps(report: dict[str, Any]) -> list[str]:
    """The plan's actions this run carried out (any operation changed the host), or, when
    nothing changed, the actions it planned or refused, marked so."""
    steps = [s for s in _list(_get(report, "plan", "steps")) if isinstance(s, dict)]
    applied = any(isinstance(s, dict) and s.get("changed")
                  for s in _list(report.get("steps_applied")))
    if applied:
        return [_text(s.get("action")) for s in steps if not s.get("refused")]
    if report.get("mode") == "dry":
        return [_text(s.get("action")) + (" (refused)" if s.get("refused") else " (planned)")
                for s in steps]
    return [_text(s.get("action")) + " (refused)" for s in steps if s.get("refused")]


def _evidence(report: dict[str, Any]) -> list[str]:
    findings = _list(_get(report, "diagnosis_before", "findings") or report.get("findings"))
    primary = report.get("primary")
    out = []
    for finding in findings:
        if isinstance(finding, dict) and finding.get("code") == primary:
            out.append(f"{_text(finding.get('code'))}: {_text(finding.get('summary'))}")
            out += [f"  | {_text(line)}" for line in _list(finding.get("evidence"))[:6]]
    return out


def _when(value: Any) -> str:  # noqa: ANN401 - JSON
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "?"
    try:
        return datetime.fromtimestamp(value, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):
        return "?"


def _watchdog(report: dict[str, Any]) -> str:
    """What the host's watchdog last said: a fallback since the fix, with when and why."""
    state = report.get("watchdog_state") or _get(report, "snapshot", "watchdog")
    if not isinstance(state, dict):
        return ""
    if state.get("fallback") is True:
        return (f"fell back {_when(state.get('fell_back_at'))}"
                f" ({_text(state.get('code')) or '?'})")
    status = _text(state.get("status"))
    return f"{status}, checked {_when(state.get('checked_at'))}" if status else ""


def row(host: str, report: dict[str, Any] | None) -> dict[str, Any]:
    """One host's line: what it has, what was wrong, what was done, whether it was proven."""
    if report is None:
        return {"host": host, "gpu": "", "cause": "", "steps": [], "result": "not run",
                "state": "untouched", "verification": "", "tokens_before": None,
                "tokens_after": None, "seconds": None, "mode": "", "wave": None,
                "reason": "", "evidence": [], "plan": [], "file": None, "watchdog": ""}
    verification = report.get("verification")
    verification = verification if isinstance(verification, dict) else {}
    before = _get(report, "snapshot", "observation", "tokens_per_s")
    plan = []
    for step in _list(_get(report, "plan", "steps")):
        if isinstance(step, dict):
            refused = _text(step.get("refused"))
            plan.append(f"{_text(step.get('action'))}: {_text(step.get('summary'))}"
                        + (f" (refused: {refused})" if refused else ""))
    plan += [f"advice: {_text(a)}" for a in _list(_get(report, "plan", "advice"))]
    return {
        "host": printable(host),
        "gpu": _gpu(report),
        "cause": _text(report.get("primary")),
        "steps": _steps(report),
        "result": _text(report.get("result")) or "not run",
        "state": _text(report.get("state")),
        "verification": _text(verification.get("reason")),
        "tokens_before": _number(before),
        "tokens_after": _number(verification.get("tokens_per_s")),
        "seconds": _seconds(report),
        "mode": _text(report.get("mode")),
        "wave": _text(_get(report, "rollout", "wave")) or None,
        "reason": _text(report.get("reason")),
        "evidence": _evidence(report),
        "plan": plan,
        "file": _text(report.get("_file")) or None,
        "watchdog": _watchdog(report),
    }


def rows(reports: dict[str, dict[str, Any] | None]) -> list[dict[str, Any]]:
    """Rows sorted as a reader triages: outcomes needing a person first, then by host."""
    out = [row(host, report) for host, report in reports.items()]
    rank = {name: i for i, name in enumerate(OUTCOME_ORDER)}
    return sorted(out, key=lambda r: (rank.get(r["result"], 0), r["host"]))


def counts(table: list[dict[str, Any]], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in table:
        out[r[key] or "-"] = out.get(r[key] or "-", 0) + 1
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def text_table(table: list[dict[str, Any]]) -> str:
    """The table printed after a multi-host run: one line per host, then counts."""
    head = ("host", "GPU", "cause", "step taken", "result", "tok/s before", "after", "time")
    lines = [head]
    for r in table:
        lines.append((r["host"], r["gpu"], r["cause"] or "-",
                      ", ".join(r["steps"]) or "-", r["result"], _rate(r["tokens_before"]),
                      _rate(r["tokens_after"]),
                      "-" if r["seconds"] is None else f"{r['seconds']:.0f} s"))
    cells = [[printable(str(c))[:48] for c in line] for line in lines]
    widths = [max(len(line[i]) for line in cells) for i in range(len(head))]
    out = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
           for line in cells]
    out.insert(1, "  ".join("-" * w for w in widths))
    outcome = ", ".join(f"{n} {k}" for k, n in counts(table, "result").items())
    out.append(f"{len(table)} hosts: {outcome}")
    return "\n".join(out)
