"""The watchdog's verdict: is Ollama still on the GPU since it was fixed? Pure.

A fixed host does not stay fixed (a kernel update without the driver's module, an Ollama
upgrade that drops a runner, a model too large for VRAM). The watchdog reads the host as the
diagnosis does (the probe in "look" mode: no generation; the same trusted log reader and
signatures) and this module turns the snapshot and its diagnosis into:
- the node_exporter textfile metrics (`exposition`), in Prometheus' exposition format, with
  the names its conventions ask for (units in names, `_total` only for counters:
  https://prometheus.io/docs/practices/naming/);
- an exit status a monitoring system understands (`Check.status`, the Nagios plugin
  convention: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN;
  https://nagios-plugins.org/doc/guidelines.html#AEN78);
- the state the next check starts from (error lines already seen, when the fallback began,
  the last verification).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ollama_gpu_fix.findings import Diagnosis
from ollama_gpu_fix.snapshot import Snapshot

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATUS = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
# primaries that are not a fallback: the GPU does the work, there is none, or nothing to say
QUIET = {"ok-gpu", "no-gpu", "ollama-not-installed", "not-enough-evidence"}
MAX_SEEN = 2000  # error lines remembered between checks (a bounded state file)
_LABEL = re.compile(r"[^\x20-\x7e]")


@dataclass
class State:
    """What one check leaves for the next (the watchdog's state file, JSON)."""

    checked_at: float | None = None
    seen: list[str] = field(default_factory=list)  # sha256 of error lines already reported
    fell_back_at: float | None = None  # when the current fallback was first seen
    code: str | None = None  # its code
    verified_at: float | None = None  # the last proof that the model ran on the GPU
    tokens_per_s: float | None = None  # that proof's speed (a generation's; None: observed)

    @classmethod
    def loads(cls, text: str) -> State:
        """A state file as written by `dumps`; an empty state for anything else."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            return cls()
        if not isinstance(data, dict):
            return cls()
        out = cls()
        for name in ("checked_at", "fell_back_at", "verified_at", "tokens_per_s"):
            value = data.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and math.isfinite(value):
                setattr(out, name, float(value))
        if isinstance(data.get("code"), str):
            out.code = data["code"][:64]
        seen = data.get("seen")
        if isinstance(seen, list):
            out.seen = [s for s in seen if isinstance(s, str) and len(s) == 64][-MAX_SEEN:]
        return out

    def dumps(self) -> str:
        return json.dumps(asdict(self)) + "\n"


@dataclass
class Check:
    status: int
    summary: str  # one line: the first line a monitoring system shows
    code: str | None  # the failure-mode code of a fallback
    fallback: bool
    models: dict[str, float]  # loaded model -> share of it in VRAM (size_vram / size)
    new_errors: list[str]  # GPU error lines first seen in this check
    state: State
    ollama: bool  # Ollama is on this host (else the check stays quiet)
    cpu_seconds: float | None = None  # what this check cost (its process and the probe's)


def _error_lines(snapshot: Snapshot) -> list[tuple[str, str, str]]:
    """(sha256, text, failure code) of every GPU error line in trusted text (the log as the
    service wrote it, dmesg, nvidia-smi), read as the diagnosis reads them: the component
    families of knowledge/error_families.py (rules/context.py's `component_errors`)."""
    from ollama_gpu_fix.rules.context import Context

    out = []
    for _family, meaning, _label, line in Context(snapshot).component_errors:
        text = f"{meaning.code}: {line}"
        out.append((hashlib.sha256(text.encode("utf-8", "replace")).hexdigest(), text,
                    meaning.code))
    return out


def assess(snapshot: Snapshot, diagnosis: Diagnosis, before: State, now: float,
           generated: float | None = None) -> Check:
    """The check over one look at the host. BEFORE is the previous check's state; GENERATED
    the tokens/s of a generation this check ran (None: it only looked)."""
    state = State(checked_at=now, verified_at=before.verified_at,
                  tokens_per_s=before.tokens_per_s)
    from ollama_gpu_fix.report import _ollama_installed

    unit = snapshot.unit
    installed = not (diagnosis.primary == "ollama-not-installed"
                     or _ollama_installed(snapshot) is False)
    if not installed:
        return Check(OK, "no Ollama on this host: nothing to watch", None, False, {}, [],
                     state, False)
    models = {}
    for model in snapshot.loaded_models or []:
        share = model.gpu_fraction
        if share is not None:
            models[model.name] = round(share, 4)
    errors = _error_lines(snapshot)
    seen = set(before.seen)
    fresh = [(text, code) for digest, text, code in errors if digest not in seen]
    new = [text for text, _ in fresh]
    state.seen = ([d for d in before.seen if d in {e[0] for e in errors}]
                  + [d for d, _, _ in errors if d not in seen])[-MAX_SEEN:]
    # on a machine with no GPU the CPU is where a model belongs (the fix verified just that)
    off_gpu = {} if diagnosis.primary == "no-gpu" else {
        name: share for name, share in models.items() if share < 1.0}
    on_gpu = bool(models) and not off_gpu
    observed = snapshot.observation
    runner = observed.runner_on_gpu if observed is not None else None
    if on_gpu and runner is not False:
        state.verified_at = now  # a measurement: loaded, all in VRAM, its runner holds memory
        if generated is not None:
            state.tokens_per_s = generated
    failed = unit is not None and unit.active_state == "failed"
    fault = diagnosis.primary not in QUIET and diagnosis.primary != "ollama-not-running"
    fallback = bool(off_gpu) or (fault and not on_gpu) or bool(fresh) or failed
    code = None
    if fallback:
        code = ("ollama-not-running" if failed else diagnosis.primary if fault else
                fresh[0][1] if fresh else "vram-insufficient")
        state.code = code
        state.fell_back_at = before.fell_back_at if before.code == code and \
            before.fell_back_at else now
    if fallback:
        where = (", ".join(f"{n} {share:.0%} on the GPU" for n, share in off_gpu.items())
                 or (new[0][:160] if new else "no model on the GPU"))
        return Check(CRITICAL, f"fallback: {code}: {where}", code, True, models, new, state,
                     True)
    if unit is not None and unit.active_state not in (None, "active"):
        return Check(WARNING, f"ollama.service is {unit.active_state}: nothing serves",
                     None, False, models, new, state, True)
    if on_gpu:
        return Check(OK, "on the GPU: " + ", ".join(f"{n} 100%" for n in models), None, False,
                     models, new, state, True)
    return Check(OK, f"no model loaded; {diagnosis.primary}", None, False, models, new, state,
                 True)


def _label(value: str) -> str:
    """A label value in the exposition format: \\, " and newlines escaped, printable only."""
    value = _LABEL.sub("?", value[:128])
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _number(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def exposition(check: Check) -> str:
    """The textfile (node_exporter --collector.textfile.directory): one HELP and TYPE per
    family, then its samples."""
    lines: list[str] = []

    def family(name: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            text = ",".join(f'{k}="{_label(v)}"' for k, v in sorted(labels.items()))
            lines.append(f"{name}{{{text}}} {_number(value)}" if text else
                         f"{name} {_number(value)}")

    family("ollama_gpu_offload_ratio",
           "Share of a loaded model's weights in GPU memory (size_vram / size, Ollama /api/ps).",
           [({"model": name}, share) for name, share in sorted(check.models.items())])
    family("ollama_gpu_fallback",
           "1 when a loaded model is off the GPU or a GPU fault is seen; code names the cause.",
           [({"code": check.code}, 1)] if check.fallback else [({}, 0)])
    state = check.state
    if state.verified_at is not None:
        family("ollama_gpu_fix_last_verified_timestamp_seconds",
               "When the model was last proven on the GPU (fix verification or watchdog).",
               [({}, round(state.verified_at, 3))])
    if state.tokens_per_s is not None:
        family("ollama_gpu_fix_verify_tokens_per_second",
               "Generation speed of the last verification that generated.",
               [({}, round(state.tokens_per_s, 2))])
    if state.checked_at is not None:
        family("ollama_gpu_fix_watchdog_last_check_timestamp_seconds",
               "When the watchdog last checked this host.", [({}, round(state.checked_at, 3))])
    if check.cpu_seconds is not None:
        family("ollama_gpu_fix_watchdog_check_cpu_seconds",
               "CPU time the last check took (its process and the probe it ran).",
               [({}, round(check.cpu_seconds, 3))])
    if check.fallback and state.fell_back_at is not None:
        family("ollama_gpu_fix_fallback_since_timestamp_seconds",
               "When the current fallback was first seen.", [({}, round(state.fell_back_at, 3))])
    return "\n".join(lines) + "\n"


def record(check: Check) -> dict[str, Any]:
    """The last check as the fleet reads it (deploys/diagnose.py with use_watchdog_state)."""
    return {"status": STATUS[check.status], "summary": check.summary, "code": check.code,
            "fallback": check.fallback, "models": check.models, "new_errors": check.new_errors,
            "ollama": check.ollama, "cpu_seconds": check.cpu_seconds, **asdict(check.state),
            "seen": len(check.state.seen)}
