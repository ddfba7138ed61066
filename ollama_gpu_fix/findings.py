"""What a diagnosis says: Findings with codes from failure-modes.md, and the one primary code."""

from __future__ import annotations

from typing import Any, Literal

from ollama_gpu_fix.records import field, record
from ollama_gpu_fix.snapshot import Line

# Every code of ../shared/design/failure-modes.md, in the order their fixes must come: when
# several hold, the earliest one is primary (no point fixing groups before the driver loads).
CODE_ORDER: tuple[str, ...] = (
    "ollama-not-installed",
    "ollama-build-without-gpu",
    "wsl1-unsupported",
    "wsl2-amd-unsupported",
    "rocm-hip-sdk-missing",
    "jetson-unsupported",
    "container-no-gpu-access",
    "wsl2-linux-driver-in-guest",
    "wsl2-passthrough-broken",
    "nvidia-no-driver",
    "nvidia-driver-mismatch",
    "nvidia-driver-too-old",
    "cuda-runtime-mismatch",
    "nvidia-uvm-broken",
    "gpu-too-old",
    "rocm-driver-too-old",
    "rocm-missing",
    "device-permissions",
    "override-not-applied",
    "env-forces-cpu",
    "rocm-gfx-unsupported",
    "vulkan-needed",
    "hybrid-igpu-selected",
    "igpu-disabled",
    "ollama-not-running",
    "vram-insufficient",
    "other",
    "no-gpu",
    "ok-gpu",
    "not-enough-evidence",
)
CODES = frozenset(CODE_ORDER)
# Codes that describe a healthy or expected state rather than a fault.
BENIGN = frozenset({"ok-gpu", "no-gpu", "not-enough-evidence"})

Severity = Literal["error", "warning", "info"]


@record
class Remedy:
    """The fix a finding calls for. `action` names the remedy deploy that applies it."""

    action: str  # e.g. "nvidia-driver-upgrade", "systemd-dropin-env", "advise"
    summary: str  # one sentence a user can act on
    automatic: bool = False  # fix_gpu.py applies it (subject to policy), else advice only
    params: dict[str, Any] = field(default_factory=dict)  # e.g. {"env": {"OLLAMA_VULKAN": "1"}}


@record
class Finding:
    code: str
    severity: Severity
    summary: str
    evidence: list[Line] = field(default_factory=list)
    remedy: Remedy | None = None

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"unknown finding code {self.code!r}")

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "summary": self.summary,
            "evidence": [str(line) for line in self.evidence],
            "remedy": None
            if self.remedy is None
            else {
                "action": self.remedy.action,
                "summary": self.remedy.summary,
                "automatic": self.remedy.automatic,
                "params": self.remedy.params,
            },
        }


@record
class Diagnosis:
    findings: list[Finding]
    primary: str
    placement: dict[str, Any] | None = None  # placement.Placement.as_dict(): where it ran
    chain: list[dict[str, Any]] | None = None  # rules/path.chain: each link's state

    @property
    def primary_finding(self) -> Finding | None:
        return next((f for f in self.findings if f.code == self.primary), None)


def choose_primary(findings: list[Finding]) -> str:
    """The code whose fix must come first.

    Errors explain why Ollama is not on the GPU; among them the earliest in CODE_ORDER wins.
    Without errors the verdict is ok-gpu / no-gpu when shown (with no GPU, nothing else
    decides whether Ollama can use one), else the earliest info, else the earliest warning.
    """
    errors = [f.code for f in findings if f.severity == "error"]
    if errors:
        return min(errors, key=CODE_ORDER.index)
    for code in ("ok-gpu", "no-gpu"):
        if any(f.code == code for f in findings):
            return code
    for severity in ("info", "warning"):
        codes = [f.code for f in findings if f.severity == severity]
        if codes:
            return min(codes, key=CODE_ORDER.index)
    return "not-enough-evidence"
