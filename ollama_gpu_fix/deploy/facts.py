"""The one pyinfra fact that gathers all evidence of a host in one remote command.

pyinfra 3.10 pays one round trip per fact call and caches nothing, so the whole probe is one
POSIX-sh script (ollama_gpu_fix/probe.sh). pyinfra runs a fact's command as `sh -c '<command>'`
(quoted with shlex.quote), so the command is the script text itself. The script always exits 0
and prints valid UTF-8, because a non-zero fact fails the host and pyinfra decodes output
strictly. process() is pure: it only cuts the stream into bundle sections.
"""

from __future__ import annotations

from importlib import resources

from pyinfra.api import FactBase

from ollama_gpu_fix.bundle import split_stream


def probe_script() -> str:
    """The probe's source, shipped as package data of ollama_gpu_fix."""
    return resources.files("ollama_gpu_fix").joinpath("probe.sh").read_text(encoding="utf-8")


class OllamaGpuProbe(FactBase[dict[str, str]]):
    """Every evidence section of the host: {bundle file name: text}; {} when nothing came back."""

    @staticmethod
    def default() -> dict[str, str]:
        return {}

    def command(self) -> str:
        return probe_script()

    def process(self, output: list[str]) -> dict[str, str]:
        return split_stream(output)
