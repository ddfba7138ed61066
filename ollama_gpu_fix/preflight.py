"""Preflight: before the first change, may this plan run on this host? Pure.

`spec(plan, snapshot)` says what the remote preflight (preflight.sh, one command) must check
for the plan's steps (actions.Action.checks); `judge(spec, output)` reads what it printed and
returns the problems (any one refuses the host, naming the reason, before anything changes)
and the decisions the steps need: a repository the host already has a source for is reused,
a file another user controls is never edited (its variables are unset in the managed drop-in
instead, or the step becomes advice).

What is simulated and why: apt installs and purges in a scratch configuration (the host's
sources, plus the one the plan would add): held packages, unresolvable or conflicting
packages, missing kernel headers, broken or conflicting sources, and every package apt would
remove beyond the ones the diagnosis named (remedy-anchor: NVIDIA/ansible-role-nvidia-driver
PR #59 for the Signed-By conflict; apt-get(8) for `-s`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ollama_gpu_fix import actions as act
from ollama_gpu_fix.bundle import split_sections
from ollama_gpu_fix.dropin import DROPIN_PATH
from ollama_gpu_fix.knowledge import packages as pk
from ollama_gpu_fix.plan import Plan, Step
from ollama_gpu_fix.snapshot import Snapshot
from ollama_gpu_fix.verdict import parse_server

HEADER = re.compile(r"^ogf-preflight v(?P<version>\d+) nonce=(?P<nonce>[A-Za-z0-9]+)$")
SECTIONS = ("files", "envfiles", "port", "accounts", "secureboot", "kernel", "systemd",
            "lock", "sources", "repo-match", "apt")
PACKAGE_ACTIONS = (act.CUDA_TOOLKIT, act.NVIDIA_DRIVER, act.WSL2_PURGE_GUEST_DRIVER,
                   act.AMDGPU_DRIVER, act.VULKAN_PACKAGES)


@dataclass
class Spec:
    """What the remote preflight checks: the settings preflight.sh reads."""

    files: list[str] = field(default_factory=list)
    edits: list[str] = field(default_factory=list)  # the files among them that are edited
    fallback_only: list[str] = field(default_factory=list)  # checked, written only if needed
    envfiles: list[str] = field(default_factory=list)
    port: str = ""
    users: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    apt: bool = False
    install: list[str] = field(default_factory=list)
    purge: list[str] = field(default_factory=list)
    purge_family: str = "stale-cuda"
    replaces_driver: str = ""  # nvidia or amdgpu: installing a driver may remove the old one
    repo_uri: str = ""
    repo_kind: str = ""
    repo_fetch: str = ""
    repo_suite: str = ""
    repo_knob: str = ""
    kernel_module: bool = False
    check_port: bool = False
    lock_wait: int = 120

    def environment(self) -> dict[str, str]:
        return {
            "OGF_FILES": " ".join(self.files), "OGF_ENVFILES": " ".join(self.envfiles),
            "OGF_PORT": self.port, "OGF_USERS": " ".join(self.users),
            "OGF_GROUPS": " ".join(self.groups), "OGF_APT": "1" if self.apt else "0",
            "OGF_INSTALL": " ".join(self.install), "OGF_PURGE": " ".join(self.purge),
            "OGF_REPO_URI": self.repo_uri, "OGF_REPO_KIND": self.repo_kind,
            "OGF_REPO_FETCH": self.repo_fetch, "OGF_REPO_SUITE": self.repo_suite,
            "OGF_LOCK_WAIT": str(self.lock_wait),
        }


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)  # each refuses the host
    dropin_unsafe: str = ""  # why the managed drop-in cannot be written (when only a fallback)
    reuse: str | None = None  # the host's own source file for the plan's repository
    unsafe_edits: dict[str, str] = field(default_factory=dict)  # file -> why root may not
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def spec(the_plan: Plan, snapshot: Snapshot, api: str | None = None,
         lock_wait: int = 120) -> Spec:
    """What must be checked before this plan's first change (LOCK_WAIT: seconds to wait for
    another apt or dpkg, the knob apt_lock_timeout)."""
    out = Spec(lock_wait=lock_wait)
    steps = the_plan.runnable
    unit = snapshot.unit
    for step in steps:
        checks = step.checks
        if act.FILES in checks:
            out.files += [f for f in step.files if f and f not in out.files]
        if step.action == act.SERVICE_ENV:
            out.edits += sorted(step.params["edit"])
            if step.params["edit"] and DROPIN_PATH not in out.files:
                out.files.append(DROPIN_PATH)  # the fallback when an edit is not root's
                out.fallback_only.append(DROPIN_PATH)
        if act.USERS in checks:
            out.users += [u for u in step.params.get("users", []) if u not in out.users]
            out.groups += [g for g in step.params.get("groups", []) if g not in out.groups]
        if act.PORT in checks:
            out.check_port = True
        if act.KERNEL_MODULE in checks:
            out.kernel_module = True
        if act.APT in checks:
            out.apt = True
            _apt(out, step)
    if any(act.SYSTEMD in s.checks for s in steps) and unit:
        out.envfiles = list(unit.environment_files)
    host_value = (unit.environment.get("OLLAMA_HOST") if unit else None) or next(
        (f.environment["OLLAMA_HOST"] for f in reversed(
            ([unit.fragment] if unit and unit.fragment else []) + (unit.dropins if unit else []))
         if "OLLAMA_HOST" in f.environment), None)
    out.port = _hostport(api) if api else ollama_hostport(host_value)
    return out


def ollama_hostport(value: str | None) -> str:
    """OLLAMA_HOST as Ollama reads it (envconfig.Host: an optional scheme, a host that may be
    an [IPv6] address, the default port 11434, 80/443 for a bare http/https), as host:port for
    a client on the same machine (0.0.0.0 and :: are asked on loopback)."""
    text = (value or "").strip().strip("\"'")
    port = "11434"
    scheme, sep, rest = text.partition("://")
    if not sep:
        rest = text
    elif scheme == "https":
        port = "443"
    elif scheme == "http":
        port = "80"
    rest = rest.split("/", 1)[0].rpartition("@")[2]
    if rest.startswith("["):
        hostname, _, tail = rest[1:].partition("]")
        port = tail[1:] if tail.startswith(":") and tail[1:].isdigit() else port
        hostname = f"[{hostname}]"
    elif rest.count(":") == 1:
        hostname, _, maybe = rest.partition(":")
        port = maybe if maybe.isdigit() else port
    else:
        hostname = f"[{rest}]" if ":" in rest else rest
    if hostname in ("", "0.0.0.0"):
        hostname = "127.0.0.1"
    elif hostname in ("[::]", "[::0]"):
        hostname = "[::1]"
    return f"{hostname}:{port}"


def _apt(out: Spec, step: Step) -> None:
    params = step.params
    out.install += [p for p in params.get("headers", []) + params.get("install", [])
                    + params.get("packages", []) if p not in out.install]
    if step.action == act.CUDA_TOOLKIT:
        out.purge += [p for p in params["purge"] if p not in out.purge]
        out.install = [p for p in out.install if p not in params["purge"]]
    if step.action == act.NVIDIA_DRIVER:
        out.replaces_driver = "nvidia"
    elif step.action == act.AMDGPU_DRIVER:
        out.replaces_driver = "amdgpu"
    if step.action == act.WSL2_PURGE_GUEST_DRIVER:
        out.purge += [p for p in params["packages"] if p not in out.purge]
        out.install = [p for p in out.install if p not in params["packages"]]
        out.purge_family = "wsl-guest-driver"
    repo_url = params.get("repo_url")
    if step.action in (act.CUDA_TOOLKIT, act.NVIDIA_DRIVER) and repo_url:
        repo = pk.REPOSITORIES[params.get("repo") or "nvidia"]
        out.repo_uri, out.repo_kind = repo_url, "keyring-deb"
        out.repo_fetch = repo_url.rstrip("/") + "/" + str(repo.keyring_package)
        out.repo_knob = repo.url_knob
    elif step.action == act.AMDGPU_DRIVER:
        out.repo_uri, out.repo_kind = params["repo_url"], "key"
        out.repo_fetch, out.repo_suite = params["key_url"], params["suite"]
        out.repo_knob = str(pk.AMDGPU.key_url_knob)


def _hostport(api: str) -> str:
    rest = api.split("://", 1)[-1]
    return rest.split("/", 1)[0]


# ---- judging what preflight.sh printed --------------------------------------------------------


def judge(want: Spec, output: str, installed: dict[str, str] | None = None) -> Verdict:
    """The problems (each one line, naming the reason) and decisions, from preflight.sh."""
    sections = split_sections(output.splitlines(), HEADER, SECTIONS)
    verdict = Verdict()
    if not sections:
        verdict.problems.append("the preflight printed nothing (sh, or the connection, failed)")
        return verdict
    _files(want, sections.get("files", ""), verdict, the_dropin=_writes_dropin(want))
    _envfiles(sections.get("envfiles", ""), verdict)
    if want.check_port:
        _port(sections.get("port", ""), verdict)
    for line in sections.get("accounts", "").splitlines():
        kind, _, rest = line.partition(" ")
        name, _, state = rest.partition(" ")
        if state == "absent":
            knob = " (host data login_user)" if kind == "user" and name != want.users[0] else ""
            verdict.problems.append(f"{kind} {name} does not exist on this host{knob}")
    if want.apt:
        _apt_verdict(want, sections, verdict, installed or {})
    return verdict


def _writes_dropin(want: Spec) -> bool:
    return DROPIN_PATH in want.files and DROPIN_PATH not in want.fallback_only


def _files(want: Spec, text: str, verdict: Verdict, the_dropin: bool) -> None:
    for line in text.splitlines():
        fields = line.split("\t")
        if fields[0] != "unsafe" or len(fields) != 3:
            continue
        why, path = fields[1], fields[2]
        if path in want.edits:
            verdict.unsafe_edits[path] = why  # neutralised in the managed drop-in instead
        elif path == DROPIN_PATH and not the_dropin:
            verdict.dropin_unsafe = why  # needed only if an edit must fall back to it
        else:
            verdict.problems.append(f"cannot write {path}: {why}")
    if verdict.unsafe_edits and verdict.dropin_unsafe:
        path = sorted(verdict.unsafe_edits)[0]
        verdict.problems.append(f"cannot edit {path} ({verdict.unsafe_edits[path]}) nor write"
                                f" {DROPIN_PATH} instead ({verdict.dropin_unsafe})")


def _envfiles(text: str, verdict: Verdict) -> None:
    for line in text.splitlines():
        kind, _, rest = line.partition("\t")
        path, _, owner = rest.partition("\t")
        if kind in ("fifo", "device", "directory"):
            verdict.problems.append(
                f"EnvironmentFile {path} is not a regular file (a {kind}): ollama.service"
                " would hang or fail at its next start; remove it or fix the unit first")
        elif owner.startswith("other:"):
            verdict.notes.append(f"EnvironmentFile {path} is controlled by someone other than"
                                 f" root ({owner[6:].strip()}): whoever controls it controls"
                                 " ollama.service's environment")


def _port(text: str, verdict: Verdict) -> None:
    """Free, or held by ollama.service itself (which the restart frees for itself): anything
    else is another user's server, which this tool never stops."""
    server = parse_server(text)
    if server is None:
        return
    owners = dict(line[6:].split(" ", 1) for line in text.splitlines()
                  if line.startswith("owner=") and " " in line)
    foreign = [listener for listener in server.listeners if not listener.service]
    if foreign:
        first = foreign[0]
        port = server.hostport.rsplit(":", 1)[-1]
        verdict.problems.append(
            f"port {port} is held by pid {first.pid} (user {owners.get(str(first.pid), '?')},"
            f" uid {'?' if first.uid is None else first.uid}: {first.comm or '?'}), not by"
            " ollama.service: stop it first (this tool never stops another user's process)")


_APT_ERROR = re.compile(r"^(?:E|Err|W): ?(.*)$|^Err:\d+ (.*)$")
_URI = re.compile(r"(https?|file|ftp)://[^\s]+")


def _lock(text: str, verdict: Verdict) -> None:
    holders = [line[7:] for line in text.splitlines() if line.startswith("holder ")]
    waited = next((line[7:] for line in text.splitlines() if line.startswith("waited=")), "?")
    if holders:
        verdict.problems.append(
            f"apt is busy (lock held: {'; '.join(holders[:2])}) after {waited} s: nothing was"
            " changed; run again when it is done (apt_lock_timeout sets the wait)")


def _apt_verdict(want: Spec, sections: dict[str, str], verdict: Verdict,
                 installed: dict[str, str]) -> None:
    _lock(sections.get("lock", ""), verdict)
    sources = _sources(sections.get("sources", ""))
    matches = [ln.split(" ", 1)[1] for ln in sections.get("repo-match", "").splitlines()
               if ln.startswith("match ")]
    if matches:
        verdict.reuse = matches[0]
    parts = _apt_parts(sections.get("apt", ""))
    for line in parts.get("head", []):
        if line.startswith("fetch-failed "):
            url, _, why = line[13:].partition(" ")
            verdict.problems.append(f"{url} does not answer ({why.strip()[:160]}): set"
                                    f" {want.repo_knob or 'its URL'} to a mirror this host can"
                                    " reach")
        elif line.startswith("error:"):
            verdict.problems.append(f"preflight {line}")
    update = parts.get("apt-get update")
    if update is not None and _rc(update) != 0:
        verdict.problems.append("apt-get update fails: " + _update_errors(update, sources))
    sim = parts.get("apt-get simulate", [])
    if sim and _rc(sim) != 0:
        errors = [_APT_ERROR.match(ln) for ln in sim]
        said = "; ".join(m.group(1) or m.group(2) for m in errors if m)[:300]
        missing = re.findall(r"Unable to locate package (\S+)|Package '?([^' ]+)'? has no "
                             r"installation candidate", "\n".join(sim))
        names = [a or b for a, b in missing]
        headers = [n for n in names if n.startswith("linux-headers-")]
        if headers:
            verdict.problems.append(
                f"the kernel headers {headers[0]} (for the running kernel) are in no configured"
                " repository: DKMS cannot build the module; install them or boot a kernel that"
                " has them")
        else:
            verdict.problems.append(f"apt cannot carry out the plan: {said or 'see apt-get -s'}")
    held = _held_changed(sim) | (set(parts.get("held", [])) & set(want.purge + want.install))
    if held:
        verdict.problems.append(f"held package(s) {', '.join(sorted(held))} would change: apt-mark"
                                " unhold them first, or keep them and fix by hand")
    taken = _removals(sim)
    same = _same_family(want.purge_family)
    replaced = _replaced_driver(want.replaces_driver)
    extra = sorted(n for n, v in taken.items()
                   if n not in want.purge and not same(n, v or installed.get(n, ""))
                   and not replaced(n))
    if extra:
        verdict.problems.append(
            f"the plan would also remove {', '.join(extra)} (which depend on what it purges):"
            " refused; remove them yourself first, or keep the old toolkit")
    audit = [ln for ln in parts.get("audit", []) if ln.strip()]
    if audit:
        verdict.problems.append(f"dpkg reports unfinished packages ({audit[0].strip()[:120]}):"
                                " run dpkg --configure -a first")
    for line in parts.get("writable", []):
        if line.strip():
            verdict.problems.append(f"apt cannot write {line.strip()}")


def _apt_parts(text: str) -> dict[str, list[str]]:
    parts: dict[str, list[str]] = {"head": []}
    current = parts["head"]
    for line in text.splitlines():
        if line.startswith("== "):
            name = line[3:].split(":", 1)[0].strip()
            current = parts.setdefault(name, [])
            continue
        current.append(line)
    return parts


def _rc(lines: list[str]) -> int:
    for line in reversed(lines):
        if line.startswith("rc=") and line[3:].strip().isdigit():
            return int(line[3:])
    return 0


def _sources(text: str) -> list[tuple[str, str]]:
    """(file, URI) of every source of the host."""
    found = []
    for line in text.splitlines():
        path, _, entry = line.partition("\t")
        for match in _URI.finditer(entry):
            found.append((path, match.group(0)))
    return found


def _update_errors(lines: list[str], sources: list[tuple[str, str]]) -> str:
    """apt's errors, each with the source file that names the failing repository."""
    said = []
    for line in lines:
        if not re.match(r"^(?:E:|Err:|W: (?:GPG error|Failed to fetch|The repository))", line):
            continue
        if "Some index files failed to download" in line:
            continue
        where = sorted({path.rsplit("/", 1)[-1] for path, uri in sources
                        if uri.rstrip("/") in line or _host_path(uri) in line})
        said.append((", ".join(where) + ": " if where else "") + line.split(":", 1)[-1].strip())
    return "; ".join(dict.fromkeys(said))[:400] or "see apt-get update"


def _host_path(uri: str) -> str:
    return uri.split("://", 1)[-1].rstrip("/")


def _held_changed(lines: list[str]) -> set[str]:
    held: set[str] = set()
    inside = False
    for line in lines:
        if line.startswith("The following held packages will be changed"):
            inside = True
            continue
        if inside:
            if line.startswith("  "):
                held.update(line.split())
                continue
            inside = False
    return held


def _removals(lines: list[str]) -> dict[str, str]:
    """`Remv NAME [VERSION]` / `Purg NAME [VERSION]` lines of apt-get -s."""
    taken = {}
    for line in lines:
        match = re.match(r"^(?:Remv|Purg) (\S+)(?: \[([^\]]*)\])?", line)
        if match:
            taken[match.group(1)] = match.group(2) or ""
    return taken


def _replaced_driver(vendor: str) -> Any:
    """A driver install replaces the driver it upgrades: those removals are the point."""
    if vendor == "nvidia":
        return pk.wsl_guest_driver_part  # every part of NVIDIA's Linux driver
    if vendor == "amdgpu":
        return lambda name: name.startswith(("amdgpu-dkms", "amdgpu-core"))
    return lambda name: False


def _same_family(family: str) -> Any:
    if family == "wsl-guest-driver":
        return lambda name, version: pk.wsl_guest_driver_part(name)
    return lambda name, version: not pk.protected(name) and pk.is_stale(
        pk.cuda_release_of_package(name, version))


# ---- the plan after the preflight ------------------------------------------------------------


def apply(the_plan: Plan, verdict: Verdict) -> None:
    """The decisions the steps need: reuse the host's source; never edit a file another user
    controls (its variables are unset in the managed drop-in instead, or, for a value the fix
    must set, which an EnvironmentFile would override, the step becomes advice)."""
    for step in the_plan.runnable:
        if step.action in (act.CUDA_TOOLKIT, act.NVIDIA_DRIVER, act.AMDGPU_DRIVER):
            step.params["source"] = f"reuse:{verdict.reuse}" if verdict.reuse else "add"
        if step.action != act.SERVICE_ENV or not verdict.unsafe_edits:
            continue
        edit = step.params["edit"]
        for path, why in verdict.unsafe_edits.items():
            names = edit.pop(path, None)
            if not names:
                continue
            conflicting = [n for n in names if n in step.params["env"]]
            if conflicting and not path.endswith((".conf", ".service")):
                step.refused = (f"{path} sets {', '.join(conflicting)} and root may not edit it"
                                f" ({why}); EnvironmentFile= wins over the drop-in's"
                                " Environment=, so fix that file yourself")
                continue
            step.params["unset"] = sorted(set(step.params["unset"]) | set(names) - set(
                step.params["env"]))
            the_plan.advice.append(f"{path} is not edited ({why}): its"
                                   f" {', '.join(names)} is unset in {DROPIN_PATH} instead")
        step.files = [f for f in step.files if f not in verdict.unsafe_edits]
