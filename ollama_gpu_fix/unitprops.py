"""Did an edit change only what it meant to? `systemctl show` before and after, compared.

An edit of a unit file can change more than its author meant: a line continuation that
glues the next directive into an Environment= value, a drop-in that sorts after another and
wins, a stray `[Unit]` section. systemd's own view of the unit after `daemon-reload` is the
truth, so the fix compares every property of ollama.service before and after its edit and
undoes the edit when anything but the intended variables moved. Runtime properties (times,
PIDs, counters, memory, the state of a crash-looping unit) move on their own and are ignored;
ExecStart= is compared without its runtime fields (pid, start_time, status).
Source: systemd.exec(5) (Environment=, EnvironmentFile=, UnsetEnvironment=), systemctl(1) show.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ollama_gpu_fix.parsers.systemd import parse_environment, split_words

_RUNTIME = re.compile(
    r"Timestamp|^(?:InvocationID|MainPID|ExecMainPID|ControlPID|StatusText|StatusErrno"
    r"|StatusBusError|StatusVarlinkError|NRestarts|Result|ReloadResult|CleanResult"
    r"|ActiveState|SubState|FreezerState|NeedDaemonReload|ExecMainCode|ExecMainStatus|Job"
    r"|LiveMountResult|ExecMainHandoffTimestampMonotonic)$"
    r"|(?:Current|Peak|NSec|Bytes|Packets|Operations)$|^Effective|^MemoryAvailable"
)
# Properties whose word order means something (a later EnvironmentFile= wins).
_ORDERED = frozenset({"EnvironmentFiles"})
_EXEC_RUNTIME = re.compile(r"\s;\s(?:start_time|stop_time|pid|code|status)=[^;]*")


def parse_show(lines: Iterable[str]) -> dict[str, str]:
    """`systemctl show UNIT` -> {Property: value} (the last wins, as systemctl prints one)."""
    props: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and key.isalnum():
            props[key] = value.rstrip("\n")
    return props


def unexpected_changes(
    before: dict[str, str], after: dict[str, str], intended: Iterable[str], dropin: str
) -> list[str]:
    """What moved besides INTENDED (variable names) and the managed DROPIN appearing; one
    human line per property, empty when the edit did only what it meant to."""
    names = set(intended)
    found: list[str] = []
    for key in sorted(before.keys() | after.keys()):
        if _RUNTIME.search(key):
            continue
        old, new = before.get(key, ""), after.get(key, "")
        if key == "Environment":
            old_env, new_env = parse_environment(old), parse_environment(new)
            moved = sorted(n for n in old_env.keys() | new_env.keys()
                           if old_env.get(n) != new_env.get(n) and n not in names)
            if moved:
                found.append(f"Environment ({', '.join(moved)})")
        elif key == "UnsetEnvironment":
            moved = sorted((set(split_words(old)) ^ set(split_words(new))) - names)
            if moved:
                found.append(f"UnsetEnvironment ({', '.join(moved)})")
        elif key == "DropInPaths":
            old_paths, new_paths = set(old.split()), set(new.split())
            if (old_paths ^ new_paths) - {dropin}:
                found.append(f"DropInPaths ({old} -> {new})")
        elif key.startswith("Exec"):
            if _EXEC_RUNTIME.sub("", old) != _EXEC_RUNTIME.sub("", new):
                found.append(f"{key} ({_short(old)} -> {_short(new)})")
        elif key in _ORDERED:
            if old != new:
                found.append(f"{key} ({_short(old)} -> {_short(new)})")
        elif sorted(old.split()) != sorted(new.split()):
            # dependency lists (After=, Wants=, Names= ...) come from systemd's hash maps: their
            # order changes with a reload, their content does not
            found.append(f"{key} ({_short(old)} -> {_short(new)})")
    return found


def _short(value: str) -> str:
    value = value or "unset"
    return value if len(value) <= 60 else value[:57] + "..."
