"""The preflight as one pyinfra fact: one remote command, read-only, run at prepare time so
that `--dry` shows a refusal too (ollama_gpu_fix/preflight.py judges what it prints)."""

from __future__ import annotations

import shlex
from functools import cache
from importlib import resources

from pyinfra.api import FactBase

from ollama_gpu_fix.deploy.rootfiles import change_script
from ollama_gpu_fix.scripts import library


@cache
def preflight_script() -> str:
    """shlib.sh, change.sh's functions (OGF_CHANGE_LIB=1), then preflight.sh: the checks use
    the very functions that later write and that the verification trusts."""
    lib = library()
    body = resources.files("ollama_gpu_fix").joinpath("preflight.sh").read_text(encoding="utf-8")
    return "\n".join([lib, "OGF_CHANGE_LIB=1", change_script(), body])


class Preflight(FactBase[str]):
    """What preflight.sh printed for these settings (ollama_gpu_fix.preflight.Spec)."""

    @staticmethod
    def default() -> str:
        return ""

    def command(self, settings: dict[str, str]) -> str:
        exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(settings.items()))
        return exports + preflight_script()

    def process(self, output: list[str]) -> str:
        return "\n".join(output) + "\n"
