"""Service rules: is Ollama installed and running, and does its environment help or hide the GPU."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ollama_gpu_fix import actions as act
from ollama_gpu_fix.findings import Finding, Remedy
from ollama_gpu_fix.knowledge.environment import trusted_origin, writable
from ollama_gpu_fix.rules.context import Context
from ollama_gpu_fix.snapshot import Line

# Variables that hide every GPU of a vendor when set to these values (ollama-anchor.md 2.1,
# 2.2, 2.3 and 2.4: "force CPU with invalid ID -1"; OLLAMA_LLM_LIBRARY other than a GPU dir).
HIDING_VALUES = {
    "CUDA_VISIBLE_DEVICES": ("-1", ""),
    "HIP_VISIBLE_DEVICES": ("-1", ""),
    "ROCR_VISIBLE_DEVICES": ("-1", ""),
    "GPU_DEVICE_ORDINAL": ("-1", ""),
    "GGML_VK_VISIBLE_DEVICES": ("-1",),
    "OLLAMA_VULKAN": ("0", "false"),
}
GPU_LIBRARIES = ("cuda", "rocm", "vulkan", "cuda_jetpack")


def not_installed(ctx: Context) -> Iterator[Finding]:
    s = ctx.s
    evidence: list[Line] = []
    if ctx.tool_absent("ollama") and not (s.process and s.process.pid):
        if s.unit is None or s.unit.missing or not s.unit.fragment:
            evidence += ctx.probe_line("tool.ollama=")
    version = s.ollama_version
    if version and not version.client_version and not version.version:
        evidence += [r for r in version.raw if "not found" in r.text.lower()]
    if evidence and not ctx.gpu_in_use:
        # with no GPU at all, the answer to "why not on the GPU" is no-gpu; this is a note
        no_gpu = ctx.hardware_known and not (ctx.has_nvidia or ctx.has_amd or ctx.has_intel)
        yield Finding(
            "ollama-not-installed",
            "info" if no_gpu else "error",
            "Ollama is not installed on this host"
            + (" (and it has no GPU Ollama could use)." if no_gpu else "."),
            evidence,
            Remedy(
                act.ADVISE,
                "Install Ollama (official install script or package); this tool"
                " does not install it unless asked.",
            ),
        )


def not_running(ctx: Context) -> Iterator[Finding]:
    s = ctx.s
    squatted = [r for r in (s.probe.raw if s.probe else []) if r.text.startswith("api-owner=")
                and s.probe and (s.probe.api_owner or "").startswith("foreign:")]
    if s.process and s.process.pid and not squatted:
        return
    # the service's process may be caught alive between its start and its crash (another
    # process holds its port): what serves the port decides, not that instant's ActiveState
    evidence: list[Line] = list(squatted)
    unit = s.unit
    crash_looping = bool(unit and unit.active_state == "activating"
                         and unit.sub_state == "auto-restart")
    if unit and unit.fragment and (
            unit.active_state in ("inactive", "failed", "deactivating") or crash_looping):
        # systemd's own state (a unit waiting to restart after its process exited is
        # crash-looping: older log lines of a good start say nothing about now)
        evidence += [r for r in unit.raw if r.text.startswith(("ActiveState=", "SubState="))]
    version = s.ollama_version
    if version and version.server_reachable is False:
        evidence += [r for r in version.raw if "could not connect" in r.text.lower()]
    log = s.log
    if s.unit_failures and not (log and (log.version or log.compute)):
        # systemd says the unit keeps exiting, and no Ollama start is in the evidence
        evidence += s.unit_failures[-4:]
    foreign = s.foreign_processes or []
    if not evidence or ctx.tool_absent("ollama"):
        return
    summary = "Ollama is installed but its server is not running or not reachable."
    if foreign:
        # another user's `ollama serve`: its settings and answers are not the service's
        users = ", ".join(sorted({p.user or "?" for p in foreign}))
        summary += (
            f" An `ollama serve` of another user ({users}) runs outside the service; this"
            " tool does not trust its environment or its API."
        )
        evidence += [ln for p in foreign for ln in p.raw if ln.text.startswith(("pid=", "user="))]
    yield Finding(
        "ollama-not-running",
        "error",
        summary,
        evidence,
        Remedy(act.START_SERVICE, "Enable and start ollama.service; read its last log lines.",
               True),
    )


def env_forces_cpu(ctx: Context) -> Iterator[Finding]:
    env = ctx.service_env
    evidence: list[Line] = []
    unset: list[str] = []
    if env:
        for name, hiding in HIDING_VALUES.items():
            if name in env and env[name].strip().strip("\"'") in hiding:
                if name == "OLLAMA_VULKAN" and not _vulkan_is_the_path(ctx):
                    continue
                if name == "GGML_VK_VISIBLE_DEVICES" and not _vulkan_is_the_path(ctx):
                    continue
                unset.append(name)
                evidence += ctx.env_line(name) or [Line("environment", f"{name}={env[name]}")]
        library = env.get("OLLAMA_LLM_LIBRARY", "").strip().lower()
        if library and not library.startswith(GPU_LIBRARIES):
            unset.append("OLLAMA_LLM_LIBRARY")
            evidence += ctx.env_line("OLLAMA_LLM_LIBRARY")
    skipped = [e for e in ctx.events("library-skipped-by-request")
               if _GPU_DIR.search(e.fields.get("libDir", ""))]
    if skipped:  # Ollama itself says the user's OLLAMA_LLM_LIBRARY left its GPU backends out
        unset.append("OLLAMA_LLM_LIBRARY")
        evidence += [e.line for e in skipped] + ctx.env_line("OLLAMA_LLM_LIBRARY")
    for event in ctx.events("visible-devices-override"):
        if any(v.strip() in ("-1", "") for k, v in event.fields.items() if k.endswith("DEVICES")):
            evidence.append(event.line)
    if evidence and not ctx.gpu_compute:
        yield Finding(
            "env-forces-cpu",
            "error",
            "The server's own environment hides or disables the GPU: "
            + ", ".join(dict.fromkeys(unset or ["a *_VISIBLE_DEVICES override"]))
            + ".",
            list(dict.fromkeys(evidence)),
            Remedy(
                act.SERVICE_ENV,
                "Remove the variable from the unit/drop-in and restart.",
                True,
                {"unset": unset},
            ),
        )


_GPU_DIR = re.compile(r"/(?:cuda|rocm|vulkan|jetpack)[\w.-]*$")


def _vulkan_is_the_path(ctx: Context) -> bool:
    return not ctx.has_nvidia and (ctx.has_intel or ctx.has_amd)


def override_not_applied(ctx: Context) -> Iterator[Finding]:
    s = ctx.s
    env = ctx.service_env
    evidence: list[Line] = []
    wanted: dict[str, str] = {}
    origins: dict[str, str] = {}  # where each wanted value was found (who wrote it)
    # 1. set in a shell profile, which systemd never reads
    # (only root's, the system's and the service user's own files: another user's ~/.bashrc is
    # that user's wish for the shells they start, not a setting of the system service)
    for item in s.shell_env or []:
        if not trusted_origin(item.file, _user(ctx)):
            continue
        if env is not None and env.get(item.name) != item.value:
            evidence.append(item.raw or Line("shell-env.txt", f"{item.file}:{item.name}"))
            wanted[item.name] = item.value
            origins[item.name] = item.file
    unit, proc = s.unit, s.process
    # 2. written in a unit file but not in the manager's view (no daemon-reload)
    if unit:
        written: dict[str, tuple[str, Line | None]] = {}
        written_in: dict[str, str] = {}
        for f in ([unit.fragment] if unit.fragment else []) + unit.dropins:
            for name, value in f.environment.items():
                written[name] = (value, f.lines[0] if f.lines else None)
                written_in[name] = f.path
        shown = unit.active_state is not None or bool(unit.environment)
        for name, (value, line) in written.items():
            if name == "PATH":
                continue
            if shown and unit.environment.get(name) != value:
                evidence += [ln for ln in [line] if ln]
                wanted[name] = value
                origins[name] = written_in[name]
            elif (
                proc
                and proc.pid
                and proc.environment is not None
                and (proc.environment.get(name) != value)
            ):
                # 3. the manager knows it but the running server predates it, or was started
                # by hand outside the service
                evidence += [ln for ln in [line] if ln] + proc.raw[:3]
                wanted[name] = value
                origins[name] = written_in[name]
        # 4. the server's own `server config` line (it lists every variable it reads, unset
        # ones empty) shows a different value: the running server never got the unit's
        logged = s.log.server_env if s.log else None
        if (logged is not None and s.log and s.log.server_env_line and not (proc and proc.pid)
                and not shown):  # systemctl show, when there, is the manager's own view
            for name, (value, line) in written.items():
                if value.strip("\"'") in HIDING_VALUES.get(name, ()):
                    continue  # a variable that hides the GPU not reaching the server helps
                if name in logged and logged[name] != value and name not in wanted:
                    evidence += [ln for ln in [line] if ln] + [s.log.server_env_line]
                    wanted[name] = value
                    origins[name] = written_in[name]
        if unit.need_daemon_reload:
            evidence += [r for r in unit.raw if r.text.startswith("NeedDaemonReload=")]
    # 4. quoted values: systemd keeps inner quotes, ROCm rejects them (#5090)
    for name in ("HSA_OVERRIDE_GFX_VERSION",):
        value = (env or {}).get(name, "")
        if value[:1] in ("'", '"') or value.startswith('\\"'):
            evidence += ctx.env_line(name)
            wanted[name] = value.strip("\\\"'")
            origins[name] = "unit"
    evidence += ctx.lines("hsa-override-invalid")
    no_systemd = bool(s.probe and s.probe.systemd is False)  # a unit file there is inert
    if proc and proc.pid and proc.under_systemd is False and unit and unit.fragment \
            and not no_systemd:
        evidence += [r for r in proc.raw if r.text.startswith(("parent=", "cgroup="))]
    if not evidence or ctx.gpu_compute:
        return
    # only GPU settings this tool knows, with values it can check, are written for the user;
    # anything else found (LD_LIBRARY_PATH from a home directory, OLLAMA_HOST=0.0.0.0, ...) is
    # reported for a person to decide
    user = _user(ctx)
    env = {k: v for k, v in wanted.items()
           if writable(k, v) and trusted_origin(origins.get(k, "unit"), user)}
    others = sorted(k for k in wanted if k not in env)
    # systemd never read the unit's files since they changed: reloading and restarting is the
    # fix even when there is nothing to write
    reload = bool(unit and unit.need_daemon_reload)
    summary = "Put it in an ollama.service drop-in (unquoted), daemon-reload and restart the"
    summary += " service; do not start `ollama serve` by hand."
    if others:
        named = ", ".join(f"{k} (from {origins.get(k, 'the unit')})" for k in others)
        summary += f" Not written automatically (decide yourself): {named}."
    yield Finding(
        "override-not-applied",
        "error",
        "A GPU setting was written where the running server never sees it"
        + (f" ({', '.join(wanted)})" if wanted else "")
        + ".",
        list(dict.fromkeys(evidence)),
        Remedy(act.SERVICE_ENV, summary, bool(env) or reload,
               {"env": env, "advice_only": others, "reload": reload,
                "origins": {k: origins.get(k, "unit") for k in wanted}}),
    )


def _user(ctx: Context) -> str | None:
    unit = ctx.s.unit
    return unit.user if unit and unit.user else None


_GPU_RUNNER = ("cuda", "rocm", "vulkan", "metal", "oneapi", "jetpack", "musa", "sycl")


def build_without_gpu(ctx: Context) -> Iterator[Finding]:
    """The installed Ollama has no backend for any GPU: its runner list (0.1.x-0.5.x) holds
    only CPU variants, or its lib/ollama has no cuda_*/rocm*/vulkan directory beside an
    NVIDIA GPU. A distro or Nix package built without acceleration, a lone binary without its
    lib directory, an image without the GPU runners (failure-modes: ollama-build-without-gpu)."""
    if ctx.gpu_used:
        return
    if ctx.hardware_known and not (ctx.has_nvidia or ctx.has_amd or ctx.has_intel):
        return  # no GPU here: a CPU build is the right one
    evidence: list[Line] = []
    for event in ctx.events("runners-listed"):
        runners = event.fields.get("runners", "").replace(",", " ").split()
        if runners and not any(r.lower().startswith(_GPU_RUNNER) for r in runners):
            evidence.append(event.line)
    libs = ctx.s.ollama_libs
    if libs and libs.roots and ctx.has_nvidia and not ctx.has_amd and not any(
            v.lower().startswith(_GPU_RUNNER) for v in libs.variants):
        evidence.append(Line("ollama-libs.txt",
                             f"no cuda_*/vulkan directory under {', '.join(libs.roots)}"))
    if evidence:
        yield Finding(
            "ollama-build-without-gpu",
            "error",
            "This Ollama has no GPU backend: only CPU runners are installed.",
            evidence,
            Remedy(act.ADVISE, "Install the GPU build of the same package (ollama-cuda,"
                   " ollama-rocm, the Nix package with acceleration) or the official bundle"
                   " with its lib/ollama directory; this tool does not swap packages."),
        )


RULES = (not_installed, build_without_gpu, not_running, env_forces_cpu, override_not_applied)
