"""The fleet page: one HTML file a person opens from disk after a run or a rollout.

Self-contained (inline CSS and JS, no network) because it is read on machines that may reach
nothing, and mailed or attached as it is. Host names, evidence and reasons come from the hosts,
so everything is autoescaped, the JS reads its data from a JSON block that cannot close its
<script>, and a Content-Security-Policy lets only this page's own style and script run.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from ollama_gpu_fix import runs
from ollama_gpu_fix.fleet import OUTCOME_ORDER, counts, rows, text_table

# a badge colour per result: what needs a person stands out
TONE = {"failed": "bad", "rolled back": "bad", "interrupted": "bad", "refused": "warn",
        "reboot required": "warn", "applied": "good", "verified": "good", "planned": "info",
        "diagnosed": "info", "not run": "none"}


def _csp_hash(text: str) -> Markup:
    """The CSP source that allows exactly this inline <style> or <script> body."""
    digest = hashlib.sha256(str(text).encode("utf-8")).digest()
    return Markup("'sha256-{}'").format(base64.b64encode(digest).decode("ascii"))


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


_ENV = Environment(
    loader=PackageLoader("ollama_gpu_fix", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=StrictUndefined,
)
_ENV.filters.update(csp_hash=_csp_hash, rate=_rate, duration=_duration)


def render(rows: list[dict[str, Any]], title: str, meta: dict[str, Any]) -> str:
    """The page for ROWS (fleet.rows); META (run or rollout id, mode, time...) is shown under
    TITLE in the caller's order, empty values left out."""
    rank = {name: i for i, name in enumerate(OUTCOME_ORDER)}
    results = sorted({r["result"] for r in rows}, key=lambda r: (rank.get(r, -1), r))
    by_result = counts(rows, "result")
    chart = [{"host": r["host"], "before": r["tokens_before"], "after": r["tokens_after"]}
             for r in rows if r["tokens_before"] is not None or r["tokens_after"] is not None]
    return _ENV.get_template("fleet.html.j2").render(
        rows=rows, title=title, meta={k: v for k, v in meta.items() if v not in (None, "")},
        by_result={r: by_result.get(r, 0) for r in results}, by_cause=counts(rows, "cause"),
        results=results, chart=chart, tone=TONE,
    )

def write(path: Path, html: str, report_dir: Path | None = None) -> None:
    """Write the page atomically and 0600 (it quotes host logs), in a directory that is the
    user's own (ollama_gpu_fix.runs.write_text): below REPORT_DIR, or where the user asked."""
    runs.write_text(path, html, report_dir)


def publish(report_dir: Path, run_id: str, mode: str, hosts: list[str], page: Path,
            title: str, log: Callable[[str], None], heading: str = "") -> None:
    """After a run over several hosts (a plain pyinfra run, a rollout): its table across the
    hosts, logged after HEADING, and its page, written to PAGE beside its reports."""
    found = runs.run_reports(report_dir, run_id=run_id)
    table = rows({h: found.get(h) for h in hosts})
    log(heading + text_table(table))
    try:
        write(page, render(table, title, {"run_id": run_id, "mode": mode, "time": runs.now()}),
              report_dir)
        log(f"--> fleet page: {page}")
    except OSError as exc:
        log(f"--> cannot write the fleet page {page}: {exc}")
