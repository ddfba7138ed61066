"""The one pyinfra fact that gathers all evidence of a host in one remote command.

pyinfra 3.10 pays one round trip per fact call and caches nothing, so the whole probe is one
POSIX-sh script (ollama_gpu_fix/probe.sh). pyinfra runs a fact's command as `sh -c '<command>'`
(quoted with shlex.quote), so the command is the script text itself. The script always exits 0
and prints valid UTF-8, because a non-zero fact fails the host and pyinfra decodes output
strictly. process() is pure: it only cuts the stream into bundle sections.
"""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase

from ollama_gpu_fix.bundle import split_stream
from ollama_gpu_fix.scripts import library, script


def probe_script() -> str:
    """probe.sh with the shared helpers (shlib.sh), shipped as package data of ollama_gpu_fix."""
    return script("probe")


OBSERVE_MODES = ("", "look", "generate")
OBSERVE_TIMEOUT = 60  # seconds the observation's generation may take (a CPU is slow)


class OllamaGpuProbe(FactBase[dict[str, str]]):
    """Every evidence section of the host: {bundle file name: text}; {} when nothing came back.

    OBSERVE "generate" adds the observation (observation.txt): a bounded generation of TOKENS
    tokens with MODEL ("" = the smallest local one), then /api/ps, the API's listener and the
    GPU's process list, as the verification reads them; "look" the same without generating."""

    @staticmethod
    def default() -> dict[str, str]:
        return {}

    def command(self, observe: str = "", model: str = "", tokens: int = 4,
                timeout: int = OBSERVE_TIMEOUT) -> str:
        if observe not in OBSERVE_MODES:
            raise ValueError(f"observe must be one of {OBSERVE_MODES}, got {observe!r}")
        if not observe:
            return probe_script()
        settings = {"OGF_OBSERVE": observe, "OGF_OBSERVE_MODEL": model or "",
                    "OGF_OBSERVE_TOKENS": str(int(tokens)),
                    "OGF_OBSERVE_TIMEOUT": str(int(timeout))}
        exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in settings.items())
        # after the header comment: the command's first lines still say what it is
        text = probe_script()
        cut = text.index("\n\n") + 1 if text.startswith("#") and "\n\n" in text else 0
        return text[:cut] + exports + text[cut:]

    def process(self, output: list[str]) -> dict[str, str]:
        return split_stream(output)


class WatchdogLastCheck(FactBase[str]):
    """The watchdog's last check on the host (root's regular file, at most 64 KiB; "" when
    there is none): what `use_watchdog_state` reads instead of a probe."""

    PATH = "/var/lib/ollama-gpu-fix/watchdog/last-check.json"

    @staticmethod
    def default() -> str:
        return ""

    def command(self) -> str:
        path = self.PATH
        return (f"if [ -f {path} ] && [ ! -L {path} ] && [ \"$(stat -c %u {path})\" = 0 ]; "
                f"then head -c 65536 {path}; fi; true")

    def process(self, output: list[str]) -> str:
        return "\n".join(output)


def verify_script() -> str:
    """verify.sh after the shared helpers (shlib.sh): the one remote command's text."""
    return script("verify")


class GpuVerification(FactBase[str]):
    """What verify.sh saw: the model run, /api/ps, the GPU's process list, the fresh log.

    A fact, not an operation, so it counts as no change and inherits the op's sudo; it runs
    only at execution time (the verify operation asks for it then), never in --dry."""

    @staticmethod
    def default() -> str:
        return ""

    def command(self, api: str, model: str, tokens: int, wait: int, baseline: bool,
                pull: bool) -> str:
        settings = {
            "OGF_API": api, "OGF_MODEL": model, "OGF_TOKENS": str(int(tokens)),
            "OGF_WAIT": str(int(wait)), "OGF_BASELINE": "1" if baseline else "0",
            "OGF_PULL": "1" if pull else "0",
        }
        exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in settings.items())
        return exports + verify_script()

    def process(self, output: list[str]) -> str:
        return "\n".join(output) + "\n"


class AptLockHolders(FactBase[list[str]]):
    """Processes holding apt's or dpkg's lock (`FILE PID COMM` each), matched in /proc/locks
    by device and inode (shlib.sh ogf_lock_holders)."""

    @staticmethod
    def default() -> list[str]:
        return []

    def command(self) -> str:
        return library() + "ogf_lock_holders; true\n"

    def process(self, output: list[str]) -> list[str]:
        return [line.strip() for line in output if line.strip()]


class AptSimulatedRemovals(FactBase[list[str]]):
    """Packages `apt-get -s purge PACKAGES` would remove: what a purge takes with it."""

    @staticmethod
    def default() -> list[str]:
        return []

    def command(self, packages: list[str]) -> str:
        names = " ".join(shlex.quote(p) for p in packages)
        return f"LC_ALL=C apt-get -s -q purge {names} 2>&1 | grep -E '^(Purg|Remv) ' || true"

    def process(self, output: list[str]) -> list[str]:
        return [line.split()[1] for line in output if len(line.split()) > 1]


class UrlProblem(FactBase[str]):
    """'' when URL answers, else curl's own words for why not (a repository is unreachable)."""

    @staticmethod
    def default() -> str:
        return ""

    def command(self, url: str) -> str:
        quoted = shlex.quote(url)
        return (f"curl -sS -o /dev/null -m 15 -r 0-0 {quoted} 2>&1 | head -c 300;"
                f" command -v curl >/dev/null || echo 'curl is not installed'; true")

    def process(self, output: list[str]) -> str:
        return " ".join(line.strip() for line in output if line.strip())


class BootIdentity(FactBase[str]):
    """Which boot this is: the kernel's boot_id and when PID 1 started.

    pyinfra's own reboot check compares uptimes, which a container shares with its host
    kernel; PID 1's start time changes with every boot of a machine or a container."""

    @staticmethod
    def default() -> str:
        return ""

    def command(self) -> str:
        return ("printf '%s %s\\n' \"$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)\""
                " \"$(cut -d' ' -f22 /proc/1/stat 2>/dev/null)\"")

    def process(self, output: list[str]) -> str:
        return " ".join(output).strip()
