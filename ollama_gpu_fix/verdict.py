"""Is the model on the GPU? The verdict over what verify.sh saw on the host. Pure.

Use, not detection: a fresh `inference compute` line that is not `cpu` says a GPU was found;
/api/ps `size_vram` says how much of a loaded model sits in VRAM (the PROCESSOR column of
`ollama ps` is computed from it), and the GPU's own process list says whether Ollama's runner
holds GPU memory. Only without any local model does the verdict fall back to the startup log,
marked "detection". Every answer counts only when the API belongs to the service: the process
holding its listening socket must be the unit's MainPID or below it (without systemd: root's or
the ollama account's, running a binary only root can change), else nothing it said is believed.
Sources: ollama/ollama@v0.33.0-rc2:api/types.go (ProcessModelResponse, GenerateResponse
durations in nanoseconds), cmd/cmd.go (PROCESSOR), llm/llama_server.go and @v0.5.2:llm/server.go
(the runner process per era).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ollama_gpu_fix.bundle import split_sections
from ollama_gpu_fix.parsers import build_snapshot
from ollama_gpu_fix.parsers.ollama import processor_of
from ollama_gpu_fix.report import printable
from ollama_gpu_fix.snapshot import Line, Observation, ObservedProcess

VERIFY_HEADER = re.compile(r"^ogf-verify v(?P<version>\d+) nonce=(?P<nonce>[A-Za-z0-9]+)$")
VERIFY_SECTIONS = (
    "error", "observe", "wait", "version", "pull", "generate", "ps", "server", "nvidia-apps",
    "kfd-pids", "rocm-pids", "ancestry", "baseline", "log",
)
# Names Ollama's runner has in a GPU's process list, per era (the kernel's comm is 15 bytes).
RUNNER_NAMES = ("ollama", "ollama_llama_server", "ollama_llama_se", "llama-server")
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")


@dataclass
class GpuProcess:
    pid: int
    name: str
    used_mib: int | None = None
    source: str = "nvidia-smi"  # nvidia-smi, nvml, rocm-smi, kfd
    runner: bool = False  # Ollama's server or a child of it


@dataclass
class Listener:
    """A process holding the API's listening socket, as verify.sh found it."""

    pid: int
    uid: int | None = None
    comm: str = ""
    exe_uid: int | None = None  # the owner of its binary (/proc/PID/exe)
    exe_mode: str | None = None  # that binary's `ls -l` mode
    chain: list[int] = field(default_factory=list)  # itself, its parent, ... up to pid 1
    service: bool = False  # the service's own (see Server)


@dataclass
class Server:
    """Whom the API belongs to: verify.sh's `server` section (verify v2).

    With the systemd unit, a listener is the service's when it is MainPID or descends from it;
    without one, when its uid is root's or the ollama account's and its binary is root's and
    writable by no one else (another user cannot start such a process)."""

    systemd: bool
    load: str | None = None  # LoadState
    active: str | None = None  # ActiveState
    mainpid: int | None = None
    api: str | None = None  # the URL asked
    api_source: str | None = None  # unit (its OLLAMA_HOST), given (OGF_API), default
    ollama_uid: int | None = None
    unsafe_path: list[str] = field(default_factory=list)  # PATH directories not used
    listeners: list[Listener] = field(default_factory=list)

    @property
    def unit(self) -> bool:
        """The unit decides (systemd runs and knows ollama.service)."""
        return self.systemd and self.load != "not-found"

    @property
    def hostport(self) -> str:
        return (self.api or "").split("://", 1)[-1] or "?"


@dataclass
class Verdict:
    passed: bool
    kind: str  # use | detection | cpu-expected | none
    reason: str  # one line: what passed or what failed
    model: str | None = None
    tokens_per_s: float | None = None
    size: int | None = None
    size_vram: int | None = None
    gpu_percent: int | None = None
    processor: str | None = None
    processes: list[GpuProcess] = field(default_factory=list)
    processes_checked: str = "not checked"
    cpu_tokens_per_s: float | None = None
    speedup: float | None = None
    detected: list[str] = field(default_factory=list)  # inference compute lines
    server: Server | None = None  # whom the API belongs to (None: verify v1 did not say)
    # made over the probe's observation (a run that changed nothing: no second generation)
    from_observation: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def valid_model(name: str | None) -> bool:
    return bool(name) and _MODEL.fullmatch(name or "") is not None


def pick_model(tags: Any, wanted: str | None) -> str | None:
    """WANTED when given, else the smallest local model in a /api/tags body."""
    if wanted:
        return wanted if valid_model(wanted) else None
    models = tags.get("models") if isinstance(tags, dict) else None
    sized = [
        (m.get("size") if isinstance(m.get("size"), int) else 1 << 62, m.get("name"))
        for m in models or []
        if isinstance(m, dict) and isinstance(m.get("name"), str) and valid_model(m.get("name"))
    ]
    return min(sized)[1] if sized else None


def _json(text: str | None) -> Any:
    try:
        return json.loads(text or "")
    except (ValueError, RecursionError):
        return None


def _rate(result: Any) -> float | None:
    if not isinstance(result, dict):
        return None
    count, duration = result.get("eval_count"), result.get("eval_duration")
    if isinstance(count, int) and isinstance(duration, int) and duration > 0:
        return round(count / duration * 1e9, 1)
    return None


def _ancestry(text: str) -> dict[int, list[tuple[int, str]]]:
    """`pid ppid comm` chains (a blank line ends each) -> {first pid: [(pid, comm), ...]}."""
    chains: dict[int, list[tuple[int, str]]] = {}
    chain: list[tuple[int, str]] = []
    for line in text.split("\n") + [""]:
        parts = line.split(None, 2)
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            chain.append((int(parts[0]), parts[2] if len(parts) > 2 else ""))
            continue
        if chain:
            chains[chain[0][0]] = chain
            chain = []
    return chains


def _rocm_smi_pids(text: str) -> list[GpuProcess]:
    """`rocm-smi --showpids`: after "KFD process information:" and its header, one row per
    KFD process, tab-separated PID, PROCESS NAME, GPU(s), VRAM USED (bytes), ...
    (ROCm/rocm_smi_lib python_smi_tools/rocm_smi.py showPids). A process that only opened
    /dev/kfd (a monitoring daemon: ROCm/ROCm#4411) shows VRAM 0: it holds no GPU memory."""
    found: list[GpuProcess] = []
    rows = False
    for line in text.split("\n"):
        if line.startswith("KFD process information:"):
            rows = True
            continue
        cells = [c.strip() for c in line.split("\t")] if "\t" in line else line.split()
        if not rows or len(cells) < 4 or not cells[0].isdigit():
            continue
        used = int(cells[3]) // 2**20 if cells[3].isdigit() else None
        found.append(GpuProcess(int(cells[0]), cells[1], used, "rocm-smi"))
    return found


def _processes(sections: dict[str, str], nvml: list[GpuProcess] | None) -> list[GpuProcess]:
    """Each process once. NVML (read by the controller after verify.sh ended, when the CPU
    baseline may have unloaded the model) counts only where nvidia-smi listed none."""
    found: dict[int, GpuProcess] = {}
    for line in sections.get("nvidia-apps", "").split("\n"):
        cells = [c.strip() for c in line.split(",")]
        if len(cells) >= 2 and cells[0].isdigit():
            used = int(cells[2]) if len(cells) > 2 and cells[2].isdigit() else None
            found.setdefault(int(cells[0]), GpuProcess(int(cells[0]), cells[1], used))
    for proc in _rocm_smi_pids(sections.get("rocm-pids", "")):
        found.setdefault(proc.pid, proc)
    for line in sections.get("kfd-pids", "").split():
        if line.isdigit():
            found.setdefault(int(line), GpuProcess(int(line), "", None, "kfd"))
    if not any(p.source == "nvidia-smi" for p in found.values()):
        for proc in nvml or []:
            found.setdefault(proc.pid, proc)
    return list(found.values())


def _ps_entry(sections: dict[str, str], model: str | None) -> dict[str, Any] | None:
    """MODEL's entry in the `ps` section's /api/ps body (None: not listed); without a model,
    the first entry (what is loaded)."""
    ps = _json(sections.get("ps"))
    models = ps.get("models") if isinstance(ps, dict) else None
    entries = [m for m in models if isinstance(m, dict)] if isinstance(models, list) else []
    if model is None:
        return entries[0] if entries else None
    return next((m for m in entries if model in (m.get("name"), m.get("model"))), None)


def _mark_runners(processes: list[GpuProcess], sections: dict[str, str],
                  server: Server | None) -> None:
    """Mark the processes that are Ollama's: descended from the service (MainPID, or without a
    unit the trusted listener; verify v1 output without systemd: known by the runner's name
    only) and holding memory (0: it opened the device, holds nothing)."""
    chains = _ancestry(sections.get("ancestry", ""))
    if server is not None:
        server_pid = server.mainpid if server.unit else (
            server.listeners[0].pid if server.listeners else None)
    else:
        main = re.search(r"mainpid=(\d+)", sections.get("server", ""))
        server_pid = int(main.group(1)) if main and main.group(1) != "0" else None
    for proc in processes:
        chain = chains.get(proc.pid, [])
        names = [c for _, c in chain] + [proc.name.rsplit("/", 1)[-1]]
        in_service = server_pid is not None and any(pid == server_pid for pid, _ in chain)
        ours = in_service or (server_pid is None and any(n in RUNNER_NAMES for n in names))
        proc.runner = ours and proc.used_mib != 0


def _checked(sections: dict[str, str], nvml: list[GpuProcess] | None, per_process: bool) -> str:
    """Whether the GPU's own process list was read: yes, not available (WSL2), none (API only),
    or not checked (a tool that failed on its own)."""
    if not per_process:
        return "not available (WSL2 reports no per-process GPU memory)"
    if _listed(sections) or nvml is not None:
        return "yes"
    if not any(name in sections for name in ("nvidia-apps", "kfd-pids", "rocm-pids")):
        return "none: API only"
    return "not checked"


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def _safe_binary(listener: Listener) -> bool:
    """Root's binary, writable by no one else (the probe's ogf_safe_mode for root)."""
    mode = listener.exe_mode or ""
    return (listener.exe_uid == 0 and len(mode) >= 10
            and mode[5] != "w" and mode[8] != "w")


def parse_server(text: str | None) -> Server | None:
    """The `server` section of verify v2 (None when there is none).

    `key=value` lines, then per listener `listener=PID UID COMM`, `exe=PID UID MODE` and its
    parent chain (`pid ppid comm` lines, as the ancestry section)."""
    if text is None:
        return None
    keys: dict[str, str] = {}
    listeners: dict[int, Listener] = {}
    for line in text.split("\n"):
        key, eq, value = line.partition("=")
        if not eq or not key.isidentifier():
            continue
        if key == "listener":
            pid, _, rest = value.partition(" ")
            uid, _, comm = rest.partition(" ")
            if pid.isdigit():
                listeners.setdefault(int(pid), Listener(int(pid), _int(uid), comm))
        elif key == "exe":
            pid, uid, mode = (value.split() + ["", "", ""])[:3]
            if pid.isdigit() and int(pid) in listeners:
                listeners[int(pid)].exe_uid = _int(uid)
                listeners[int(pid)].exe_mode = mode if mode != "-" else None
        else:
            keys.setdefault(key, value)
    api, _, source = keys.get("api", "").partition(" ")
    server = Server(
        systemd=keys.get("systemd") == "yes", load=keys.get("load") or None,
        active=keys.get("active") or None, mainpid=_int(keys.get("mainpid")) or None,
        api=api or None, api_source=source or None, ollama_uid=_int(keys.get("ollama_uid")),
        unsafe_path=keys.get("unsafe_path", "").split(), listeners=list(listeners.values()),
    )
    chains = _ancestry(text)
    for listener in server.listeners:
        listener.chain = [pid for pid, _ in chains.get(listener.pid, [])]
        if server.unit:
            listener.service = server.mainpid is not None and server.mainpid in listener.chain
        else:
            listener.service = (listener.uid is not None
                                and listener.uid in (0, server.ollama_uid)
                                and _safe_binary(listener))
    return server


def held_by(server: Server, listener: Listener) -> str:
    """One clause: who holds the API instead of the service."""
    who = (f"the API on {server.hostport} is held by pid {listener.pid} "
           f"(uid {'?' if listener.uid is None else listener.uid}, {listener.comm or '?'})")
    if server.unit:
        main = f"MainPID {server.mainpid}" if server.mainpid else "no MainPID"
        return f"{who}, not by ollama.service ({main})"
    if listener.uid is None or listener.uid not in (0, server.ollama_uid):
        return f"{who}, not by root or the ollama account"
    return (f"{who}, whose binary is not root's alone (owner uid "
            f"{'?' if listener.exe_uid is None else listener.exe_uid}, {listener.exe_mode or '?'})")


def _binding(server: Server, answered: bool) -> str:
    """Why the API is not the service's ('' when it is): the unit not active, nobody found
    listening while the API answered, or a listener that is not the service's own."""
    problems = []
    if server.unit and server.active != "active":
        problems.append(f"ollama.service is not active ({server.active or 'unknown'})")
    if answered and not server.listeners and not server.api:
        problems.append("the verification did not say which process holds the API")
    elif answered and not server.listeners:
        port = server.hostport.rsplit(":", 1)[-1]
        problems.append(f"the API on {server.hostport} answered but no process listening on "
                        f"port {port} was found")
    foreign = [listener for listener in server.listeners if not listener.service]
    if foreign:
        problems.append(held_by(server, foreign[0]))
    return "; ".join(problems)


def _listed(sections: dict[str, str]) -> bool:
    """Did a GPU tool give a process list (possibly empty), not an error? A broken nvidia-smi
    or rocm-smi must not fail a host whose Ollama runs on the GPU with its own libraries."""
    if "kfd-pids" in sections:
        return True
    if "KFD process information:" in sections.get("rocm-pids", ""):
        return True
    if "nvidia-apps" in sections:
        lines = [line for line in sections["nvidia-apps"].split("\n") if line.strip()]
        return all(line.split(",", 1)[0].strip().isdigit() for line in lines)
    return False


def verdict(
    output: str,
    model: str | None,
    min_gpu_percent: int = 100,
    nvml: list[GpuProcess] | None = None,
    per_process: bool = True,
    gpu_expected: bool = True,
    log: str | None = None,
) -> Verdict:
    """The verdict over verify.sh's OUTPUT for MODEL.

    PER_PROCESS False: the platform has no per-process GPU accounting (WSL2's WDDM), so the
    process list is not asked. GPU_EXPECTED False: the host has no GPU: CPU is the answer.
    LOG: Ollama's log when OUTPUT carries none (the probe's observation: the probe read it).
    The reason is one printable line: what the host said (model names, API errors, process
    names) cannot move the cursor, rewrite the line or reorder what a reader sees."""
    result = _verdict(output, model, min_gpu_percent, nvml, per_process, gpu_expected, log)
    result.reason = printable(result.reason)
    return result


def _version(output: str) -> int:
    """The header's version (split_sections reads the first header line, so this does)."""
    for line in output.splitlines():
        match = VERIFY_HEADER.match(line.strip())
        if match:
            return int(match["version"])
    return 0


def _verdict(
    output: str,
    model: str | None,
    min_gpu_percent: int,
    nvml: list[GpuProcess] | None,
    per_process: bool,
    gpu_expected: bool,
    log_text: str | None = None,
) -> Verdict:
    sections = split_sections(output.splitlines(), VERIFY_HEADER, VERIFY_SECTIONS)
    if not gpu_expected:
        return Verdict(True, "cpu-expected", "no GPU in this machine: CPU is expected")
    if "error" in sections:
        return Verdict(False, "none", sections["error"].strip())
    if not sections:
        return Verdict(False, "none", "the verification printed nothing (sh or curl failed)")
    # verify v2 says whom the API belongs to; v1 output (older captures) did not
    server = None
    if _version(output) >= 2:  # said nothing: no listener known, nothing believed
        server = parse_server(sections.get("server")) or Server(systemd=False)
    answered = "up=1" in sections.get("wait", "")
    bound = _binding(server, answered) if server else ""
    if not answered:
        return Verdict(False, "none", "Ollama's API did not answer (see its log)"
                       + (f": {bound}" if bound else ""), server=server)
    if bound:
        return Verdict(False, "none", bound, server=server)
    log_text = sections.get("log", "") if log_text is None else log_text
    log = build_snapshot({"ollama-serve.log": log_text}).log
    detected = [c.raw.text for c in (log.compute if log else []) if c.raw]
    gpus = [c for c in (log.compute if log else []) if not c.is_cpu]
    if not model:
        if gpus:
            return Verdict(True, "detection", "no local model to run: Ollama's startup log shows "
                           f"{len(gpus)} GPU(s) ({gpus[0].library}) - detected, not yet seen in"
                           " use", detected=detected, server=server)
        return Verdict(False, "detection", "no local model to run, and Ollama's startup log"
                       " shows no GPU", detected=detected, server=server)
    result = _json(sections.get("generate"))
    if not isinstance(result, dict) or result.get("error") or not result.get("done"):
        error = result.get("error") if isinstance(result, dict) else None
        why = error or (sections.get("generate") or "no answer").strip()[:200]
        return Verdict(False, "use", f"generating with {model} failed: {why}", model=model,
                       detected=detected, server=server)
    out = Verdict(False, "use", "", model=model, tokens_per_s=_rate(result), detected=detected,
                  server=server)
    entry = _ps_entry(sections, model)
    if entry is None:
        out.reason = f"{model} ran but /api/ps does not list it"
        return out
    size, vram = entry.get("size"), entry.get("size_vram")
    out.size = size if isinstance(size, int) else None
    out.size_vram = vram if isinstance(vram, int) else None
    out.processor = processor_of(out.size, out.size_vram)
    if out.size and out.size_vram is not None:
        out.gpu_percent = min(100, round(out.size_vram * 100 / out.size))
    baseline = _json(sections.get("baseline"))
    out.cpu_tokens_per_s = _rate(baseline)
    if out.cpu_tokens_per_s and out.tokens_per_s:
        out.speedup = round(out.tokens_per_s / out.cpu_tokens_per_s, 1)
    out.processes = _processes(sections, nvml)
    _mark_runners(out.processes, sections, server)
    out.processes_checked = _checked(sections, nvml, per_process)
    rate = f"{out.tokens_per_s} tokens/s" if out.tokens_per_s else "rate unknown"
    if out.gpu_percent is None:
        out.reason = f"/api/ps gave no size/size_vram for {model}"
    elif out.gpu_percent == 0:
        out.reason = f"{model} runs 100% on the CPU ({rate}; size_vram 0 of {out.size} bytes)"
    elif out.gpu_percent < min_gpu_percent:
        out.reason = (f"only {out.gpu_percent}% of {model} is on the GPU ({out.processor}; "
                      f"min_gpu_percent={min_gpu_percent})")
    elif out.processes_checked == "yes" and not any(p.runner for p in out.processes):
        out.reason = (f"/api/ps says {out.processor} but no Ollama process holds GPU memory "
                      f"({len(out.processes)} GPU process(es) seen)")
    else:
        out.passed = True
        speed = f", {out.speedup}x the CPU" if out.speedup else ""
        held = " and its runner holds GPU memory" if out.processes_checked == "yes" else ""
        only = (" (API only: no GPU process list on this host)"
                if out.processes_checked == "none: API only" else "")
        out.reason = f"{model}: {out.processor}{held}, {rate}{speed}{only}"
    return out


# ---- the probe's observation: the same reading, as evidence for the diagnosis ---------------

OBSERVATION = "observation.txt"


def observation(text: str, per_process: bool = True,
                nvml: list[GpuProcess] | None = None) -> Observation | None:
    """The probe's `observation.txt` (verify.sh's output for the service as it was, or one
    `skipped=` line) as a Snapshot record: where the model ran, from /api/ps after the
    generation, the GPU's process list and the generation's rate. Nothing the API said counts
    unless its listener is the service's own (the verdict's binding). None: no such text.

    PER_PROCESS False (WSL2): the GPU's process list says nothing about the runner. NVML: the
    controller's own list (pyinfra @local), used where nvidia-smi listed none."""
    stripped = text.strip()
    if not stripped:
        return None
    first = stripped.splitlines()[0].strip()
    if first.startswith("skipped="):
        why = printable(first[len("skipped="):][:300])
        return Observation(mode="generate", skipped=why, summary=f"not observed: {why}",
                           evidence=[Line(OBSERVATION, printable(first[:300]))])
    sections = split_sections(text.splitlines(), VERIFY_HEADER, VERIFY_SECTIONS)
    if not sections:
        return None
    keys = dict(line.partition("=")[::2] for line in sections.get("observe", "").splitlines()
                if "=" in line)
    mode = "generate" if keys.get("mode") == "generate" else "look"
    asked = keys.get("model") if valid_model(keys.get("model")) else None
    obs = Observation(mode=mode, model=asked)
    server = parse_server(sections.get("server")) or Server(systemd=False)
    answered = "up=1" in sections.get("wait", "")
    if not answered:
        obs.untrusted = "Ollama's API did not answer"
    else:
        obs.untrusted = _binding(server, answered) or None
    if obs.untrusted:
        obs.untrusted = printable(obs.untrusted)
        obs.summary = f"not observed: {obs.untrusted}"
        obs.evidence = [Line(OBSERVATION, obs.summary)]
        return obs
    evidence: list[Line] = []
    if mode == "generate":
        result = _json(sections.get("generate"))
        if isinstance(result, dict) and result.get("done") and not result.get("error"):
            obs.generated = True
            obs.tokens_per_s = _rate(result)
            evidence.append(Line(OBSERVATION, printable(
                f"generate {asked}: eval_count={result.get('eval_count')} eval_duration="
                f"{result.get('eval_duration')} ns ({obs.tokens_per_s or '?'} tokens/s)")))
        else:
            obs.generated = False
            error = result.get("error") if isinstance(result, dict) else None
            obs.error = printable(str(error or (sections.get("generate") or "no answer")
                                      .strip())[:200])
            evidence.append(Line(OBSERVATION, f"generate {asked}: {obs.error}"))
    entry = _ps_entry(sections, asked if mode == "generate" else None)
    if mode == "look" and asked:
        entry = _ps_entry(sections, asked) or entry
    if entry is not None:
        name = entry.get("name") or entry.get("model")
        obs.model = name if isinstance(name, str) and valid_model(name) else obs.model
        size, vram = entry.get("size"), entry.get("size_vram")
        obs.size = size if isinstance(size, int) and not isinstance(size, bool) else None
        obs.size_vram = vram if isinstance(vram, int) and not isinstance(vram, bool) else None
        obs.processor = processor_of(obs.size, obs.size_vram)
        if obs.size and obs.size > 0 and obs.size_vram is not None:
            obs.on_gpu = round(min(obs.size_vram / obs.size, 1.0), 4)
        evidence.append(Line(OBSERVATION, printable(
            f"/api/ps {obs.model}: size={obs.size} size_vram={obs.size_vram}"
            f" ({obs.processor or '?'})")))
    processes = _processes(sections, nvml)
    _mark_runners(processes, sections, server)
    checked = _checked(sections, nvml, per_process)
    if checked == "yes":
        obs.gpu_processes = [
            ObservedProcess(p.pid, printable(p.name[:200]), p.used_mib, p.source, p.runner,
                            Line(OBSERVATION, printable(
                                f"{p.source}: pid {p.pid} {p.name[:200]} "
                                f"{'?' if p.used_mib is None else p.used_mib} MiB"
                                + (" (the service's runner)" if p.runner else ""))))
            for p in processes]
        obs.runner_on_gpu = any(p.runner for p in processes)
        evidence += [p.raw for p in obs.gpu_processes if p.raw][:8]
    obs.summary = printable(_observed(obs, checked, entry is not None))
    obs.evidence = [Line(OBSERVATION, obs.summary)] + evidence
    return obs


def _observed(obs: Observation, checked: str, listed: bool) -> str:
    """One line: where the model ran, and what says so."""
    how = "observed" if obs.mode == "generate" else "as found (nothing generated)"
    if obs.generated is False:
        return f"{how}: generating with {obs.model} failed: {obs.error}"
    if not listed:
        if obs.mode == "look":
            return f"{how}: no model loaded (/api/ps lists none)"
        return f"{how}: {obs.model} ran but /api/ps does not list it"
    if obs.on_gpu is None:
        return f"{how}: /api/ps gave no size/size_vram for {obs.model}"
    runners = [p for p in obs.gpu_processes or [] if p.runner]
    where = ("on the CPU" if obs.on_gpu == 0 else "on the GPU" if obs.on_gpu >= 1
             else "split between CPU and GPU")
    if checked == "yes" and not runners and obs.on_gpu > 0:
        where = "on the CPU, though /api/ps claims VRAM"  # the GPU's own list outweighs it
    rate = f", {obs.tokens_per_s} tokens/s" if obs.tokens_per_s else ""
    line = (f"{how}: {obs.model} ran {where} ({obs.processor}: size_vram {obs.size_vram} of"
            f" {obs.size} bytes){rate}")
    if checked == "yes" and runners:
        p = runners[0]
        line += (f"; the service's runner (pid {p.pid}) holds "
                 f"{'?' if p.used_mib is None else p.used_mib} MiB ({p.source})")
    elif checked == "yes":
        line += (f"; no process of the service holds GPU memory ({len(obs.gpu_processes or [])}"
                 " in the GPU's process list)")
    elif checked.startswith("not available"):
        line += "; no per-process GPU memory on WSL2"
    else:
        line += "; no GPU process list on this host"
    return line
