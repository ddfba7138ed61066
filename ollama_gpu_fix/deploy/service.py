"""ollama.service as systemd runs it: its environment edited as systemd reads it, checked
against systemd's own view after the edit, and restarted when the running server differs
from its unit (not merely when this run wrote a file).

- `service_environment`: the managed drop-in and the line edits of other drop-ins and
  EnvironmentFile= files, each through change.sh (root's own files, compare-and-swap, journal);
  then daemon-reload and `systemctl show` compared with the view before: when anything but
  the intended variables moved, the edit is undone on the spot and the host fails naming it.
- `restart_ollama`: restarts when systemd says the unit changed on disk (NeedDaemonReload),
  when the running server's environment or groups differ from what the fix intends, when the
  unit is not running, or when an earlier operation of this run changed what it reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyinfra import host, logger, state
from pyinfra.api import FactBase, FunctionCommand
from pyinfra.api.operation import OperationMeta

from ollama_gpu_fix.deploy.guard import fail_host, host_operation
from ollama_gpu_fix.deploy.rootfiles import RootFiles, change, file_states, put, sha256_text
from ollama_gpu_fix.dropin import DROPIN_NAME, DROPIN_PATH, render
from ollama_gpu_fix.knowledge.environment import is_gpu_setting
from ollama_gpu_fix.parsers.systemd import parse_environment, split_words
from ollama_gpu_fix.unitfile import remove_assignments
from ollama_gpu_fix.unitprops import parse_show, unexpected_changes

UNIT = "ollama.service"


class UnitProperties(FactBase[dict[str, str]]):
    """Every property of ollama.service as systemd sees it (`systemctl show`)."""

    @staticmethod
    def default() -> dict[str, str]:
        return {}

    def command(self) -> str:
        return f"systemctl show --no-pager {UNIT} 2>/dev/null | head -c 262144; true"

    def process(self, output: list[str]) -> dict[str, str]:
        return parse_show(output)


@dataclass
class ServiceState:
    """What systemd and /proc say about the running server."""

    props: dict[str, str] = field(default_factory=dict)
    environ: dict[str, str] | None = None  # the main process's GPU variables; None: no process
    gids: set[int] = field(default_factory=set)  # its supplementary and primary groups
    groups: dict[str, int] = field(default_factory=dict)  # group name -> gid on the host

    @classmethod
    def from_json(cls, data: dict | None) -> ServiceState:
        data = data or {}
        return cls(dict(data.get("props") or {}), data.get("environ"),
                   set(data.get("gids") or []), dict(data.get("groups") or {}))


class RunningService(FactBase[dict]):
    """The unit's state, and its main process's GPU environment and groups (root reads them
    from /proc; only variables this tool knows are kept). Plain data (pyinfra's fixtures
    hold facts as JSON): ServiceState.from_json reads it."""

    @staticmethod
    def default() -> dict:
        return {}

    def command(self, groups: list[str]) -> str:
        names = " ".join(g for g in groups if g.replace("-", "").replace("_", "").isalnum())
        return (
            f"systemctl show --no-pager {UNIT} -p NeedDaemonReload,ActiveState,SubState,MainPID,"
            "Environment,UnsetEnvironment,UnitFileState 2>/dev/null | sed 's/^/prop /';"
            f" p=$(systemctl show -p MainPID --value {UNIT} 2>/dev/null);"
            " case $p in ''|0|*[!0-9]*) ;; *)"
            "  echo process;"
            "  tr '\\n\\000' '?\\n' </proc/$p/environ 2>/dev/null | head -c 262144 |"
            "   sed -n 's/^\\(\\(CUDA_\\|NVIDIA_\\|HIP_\\|ROCR_\\|HSA_\\|GGML_\\|OLLAMA_\\|GPU_\\|"
            "LD_LIBRARY_PATH\\|JETSON_\\|AMD_\\)[A-Za-z0-9_]*=.*\\)/env \\1/p';"
            "  grep -E '^(Gid|Groups):' /proc/$p/status 2>/dev/null;;"
            " esac;"
            f" for g in {names}; do getent group \"$g\" | cut -d: -f1,3 | sed 's/^/group /'; done;"
            " true"
        )

    def process(self, output: list[str]) -> dict:
        found = ServiceState()
        for line in output:
            kind, _, rest = line.partition(" ")
            if kind == "prop":
                found.props.update(parse_show([rest]))
            elif line == "process":
                found.environ = {}
            elif kind == "env" and found.environ is not None:
                name, _, value = rest.partition("=")
                found.environ[name] = value
            elif line.startswith(("Gid:", "Groups:")):
                found.gids.update(int(w) for w in line.split()[1:] if w.isdigit())
            elif kind == "group":
                name, _, gid = rest.partition(":")
                if gid.isdigit():
                    found.groups[name] = int(gid)
        return {"props": found.props, "environ": found.environ, "gids": sorted(found.gids),
                "groups": found.groups}


def restart_reasons(now: ServiceState, intended: dict[str, str | None],
                    groups: list[str]) -> list[str]:
    """Why the running server must restart to become what its unit and this fix say."""
    props = now.props
    if not props:
        return []
    reasons = []
    if props.get("NeedDaemonReload") == "yes":
        reasons.append("its unit files changed on disk since systemd read them")
    if props.get("ActiveState") != "active":
        reasons.append(f"it is {props.get('ActiveState') or 'not loaded'}")
        return reasons
    environ = now.environ
    if environ is None:
        return reasons
    unit_env = parse_environment(props.get("Environment", ""))
    unset = set(split_words(props.get("UnsetEnvironment", "")))
    for name in sorted(set(intended) | {n for n in unit_env if is_gpu_setting(n)}):
        want = intended[name] if name in intended else (
            None if name in unset else unit_env.get(name))
        if environ.get(name) != want:
            got = environ.get(name)
            reasons.append(f"the running server has {name}="
                           f"{'(unset)' if got is None else got}, its unit"
                           f" {'unsets it' if want is None else 'says ' + want}")
    for group in groups:
        gid = now.groups.get(group)
        if gid is not None and gid not in now.gids:
            reasons.append(f"the running server is not in group {group}")
    return reasons


# ---- operations ------------------------------------------------------------------------------


def _kind(path: str) -> str:
    """A drop-in or unit file, or an EnvironmentFile (their syntaxes differ)."""
    return "unit" if "/systemd/" in path and path.endswith((".conf", ".service")) else "env"


@host_operation()
def service_environment(
    env: dict[str, str], unset: list[str], edit: dict[str, list[str]], reasons: list[str],
    step: int = 0,
):
    """The managed drop-in holds ENV and UnsetEnvironment=UNSET; EDIT's variables are removed
    (logical lines, a comment naming why) where they are set. Undone at once when systemd's
    view of the unit moved anywhere else.

    + env: variables to set in the managed drop-in
    + unset: variables the drop-in unsets (what the vendor unit or another user's file sets)
    + edit: {file: [variables]} to remove where they are set
    + reasons: the finding codes, written into the drop-in's header
    """
    files = file_states(host.get_fact(RootFiles, paths=[DROPIN_PATH, *sorted(edit)]))
    why = f"hides or overrides the GPU; managed in {DROPIN_NAME}" if env else "hides the GPU"
    writes: list[tuple[str, str, str, int, str]] = []  # path, new, mode, gid, old sha
    olds: dict[str, str | None] = {}
    for path, names in sorted(edit.items()):
        st = files.get(path)
        if st is None or st.state == "absent":
            continue
        if not st.editable:
            yield from fail_host(f"nothing was changed: {path}: {st.why or 'too large to edit'}")
            return
        new = remove_assignments(st.text(), names, why, kind=_kind(path))
        if new != st.text():
            writes.append((path, new, st.octal_mode, st.gid or 0, st.sha256))
            olds[path] = st.text()
    st = files.get(DROPIN_PATH)
    if env or unset:
        content = render(env, unset, reasons)
        if st is None or st.state == "unsafe":
            why_not = st.why if st else "change.sh gave no answer"
            yield from fail_host(f"nothing was changed: {DROPIN_PATH}: {why_not}")
            return
        if st.state == "absent" or st.text() != content:
            writes.insert(0, (DROPIN_PATH, content, "644", 0, st.sha256))
            olds[DROPIN_PATH] = st.text() if st.state == "ok" else None
    if not writes:
        host.noop(f"{DROPIN_PATH} and the files it overrides are as wanted")
        return
    intended = set(env) | set(unset) | {n for names in edit.values() for n in names}
    seen: dict[str, dict[str, str]] = {}
    yield change("step", "service_env", "begin")
    yield FunctionCommand(_capture, (seen, "before"), {})
    for path, new, mode, gid, old_sha in writes:
        yield put(path, new, mode, gid, old_sha)
    yield change("daemon-reload")
    yield FunctionCommand(_capture, (seen, "after"), {})
    if state.is_executing and "before" in seen and "after" in seen:
        moved = unexpected_changes(seen["before"], seen["after"], intended, DROPIN_PATH)
        if moved:
            for path, new, mode, gid, _ in reversed(writes):
                old = olds[path]
                if old is None:
                    yield change("remove", path, sha256_text(new))
                else:
                    yield put(path, old, mode, gid, sha256_text(new))
            yield change("daemon-reload")
            yield from fail_host(
                "the edit changed more than the GPU variables ("
                + "; ".join(moved[:4]) + "): undone, nothing else was changed; check these"
                " unit files by hand")
            return
    yield change("step", "service_env", "done")


def _capture(state, host, seen: dict, key: str) -> bool:  # noqa: ANN001 - pyinfra's signature
    seen[key] = host.get_fact(UnitProperties)
    return True


@host_operation()
def start_service():
    """ollama.service enabled and running."""
    now = ServiceState.from_json(host.get_fact(RunningService, groups=[]))
    props = now.props
    if props.get("ActiveState") == "active" and props.get("UnitFileState") == "enabled":
        host.noop(f"{UNIT} is enabled and running")
        return
    yield change("step", "start_service", "begin")
    yield change("start")
    yield change("step", "start_service", "done")


@host_operation()
def restart_ollama(
    intended: dict[str, str | None], groups: list[str],
    changed: Callable[[], list[OperationMeta]] | None = None,
):
    """Restart ollama.service when the running server is not what its unit and this fix say.

    + intended: variables the server must have (None: must not have)
    + groups: groups the server must be in
    + changed: this run's operations whose change the server reads at start
    """
    now = ServiceState.from_json(host.get_fact(RunningService, groups=groups))
    reasons = restart_reasons(now, intended, groups)
    done = [op for op in (changed() if changed else []) if op.is_complete() and op.did_change()]
    if done:
        reasons.insert(0, "this run changed what it reads at start")
    if not reasons:
        host.noop(f"{UNIT} runs as its unit says")
        return
    logger.info(f"{getattr(host, 'print_prefix', '')}restarting {UNIT}: {reasons[0]}")
    reload = "reload" if now.props.get("NeedDaemonReload") == "yes" else "as-is"
    yield change("restart", reload)


@host_operation()
def reload_uvm():
    """Stop ollama, reload nvidia_uvm, start ollama: one remote command that starts it again
    on every path and keeps modprobe's status."""
    yield change("step", "nvidia_uvm_reload", "begin")
    yield change("reload-uvm")
    yield change("step", "nvidia_uvm_reload", "done")


def intended_environment(steps: list[Any]) -> dict[str, str | None]:
    """What the running server must hold after the service steps: set values, unset names."""
    intended: dict[str, str | None] = {}
    for step in steps:
        if step.action != "service_env":
            continue
        for names in step.params["edit"].values():
            intended.update({n: None for n in names})
        intended.update({n: None for n in step.params["unset"]})
        intended.update(step.params["env"])
    return intended
