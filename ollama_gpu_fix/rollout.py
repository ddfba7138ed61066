"""`ollama-gpu-fix rollout INVENTORY`: a canary first, then waves; each wave's verification
gates the next, and the rollout stops at the first wave that takes it over its failure budget.

Every wave is one `pyinfra -y INVENTORY ollama_gpu_fix.deploy.fix.fix_host --limit HOST...`
(pyinfra does the SSH, the parallelism and the operations; this module only chooses hosts and
reads the reports the waves write). All waves share the rollout's id (OGF_RUN_ID), so their
reports (mode `rollout`, docs/report-schema.md) are one run in the index. The rollout's own
state (`<report_dir>/rollouts/<inventory key>.json`: the waves, where it stopped) lets a
second invocation resume: hosts already verified are skipped, later waves run.

Waves are planned here, purely (`plan_waves`); the driver (`run`) is the only part that
starts processes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ollama_gpu_fix import fleet, runs

DONE = "verified"  # the only result that lets a host count as rolled out


class RolloutError(ValueError):
    """A usage mistake: one line, nothing run."""


@dataclass(frozen=True)
class Inventory:
    hosts: list[str]  # in inventory order
    groups: dict[str, list[str]]  # group -> its hosts, in inventory order


def load_inventory(spec: str, cwd: str | None = None) -> Inventory:
    """Hosts and groups of a pyinfra inventory, read by pyinfra itself (nothing connects)."""
    import logging

    from pyinfra.api import State
    from pyinfra.context import ctx_state
    from pyinfra_cli.inventory import make_inventory

    cwd = cwd or os.getcwd()
    path = os.path.join(cwd, spec)
    quiet = logging.getLogger("pyinfra")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # its "neither an inventory file..." warning: ours says it
    try:
        with ctx_state.use(State()):
            inventory = make_inventory(path if os.path.isfile(path) else spec, cwd=cwd)
    finally:
        quiet.setLevel(level)
    hosts = [h.name for h in inventory]
    if not hosts:
        raise RolloutError(f"no host matched the inventory {spec!r} (a misspelled file name?)")
    groups: dict[str, list[str]] = {}
    for host in inventory:
        for group in host.groups:
            groups.setdefault(group, []).append(host.name)
    return Inventory(hosts, groups)


def parse_wave_size(text: str, total: int) -> int:
    """`N` hosts or `P%` of the inventory (rounded up), at least 1."""
    raw = text.strip()
    try:
        if raw.endswith("%"):
            percent = float(raw[:-1])
            if not 0 < percent <= 100:
                raise ValueError
            return max(1, math.ceil(total * percent / 100))
        size = int(raw)
        if size < 1:
            raise ValueError
        return size
    except ValueError:
        raise RolloutError(f"--wave-size must be a number of hosts (5) or a percentage of the "
                           f"inventory (25%), got {text!r}") from None


def plan_waves(inventory: Inventory, canary: str, wave_size: str) -> list[list[str]]:
    """[canary, wave 1, wave 2, ...]: the canary is a group of the inventory or its first N
    hosts; the rest, in inventory order, in waves of WAVE_SIZE."""
    hosts = inventory.hosts
    if canary.isdigit():
        count = int(canary)
        if count < 1:
            raise RolloutError("--canary must be at least 1 host")
        first = hosts[:count]
    elif canary in inventory.groups:
        first = inventory.groups[canary]
    else:
        known = ", ".join(sorted(g for g in inventory.groups if g != "all")) or "none"
        raise RolloutError(f"--canary {canary!r} is neither a number of hosts nor a group of "
                           f"the inventory (groups: {known})")
    rest = [h for h in hosts if h not in first]
    size = parse_wave_size(wave_size, len(hosts))
    return [list(first)] + [rest[i:i + size] for i in range(0, len(rest), size)]


def state_path(report_dir: Path, inventory_spec: str, cwd: str) -> Path:
    """One state per inventory: its absolute path (or the host list given) names it."""
    spec = inventory_spec
    if os.path.exists(os.path.join(cwd, spec)):
        spec = os.path.realpath(os.path.join(cwd, spec))
    key = hashlib.sha256(spec.encode()).hexdigest()[:16]
    return report_dir / "rollouts" / f"{key}.json"


def load_state(path: Path) -> dict[str, Any] | None:
    data = runs.load(path)
    if not data or not isinstance(data.get("waves"), list) or not runs.valid_run_id(
            str(data.get("rollout_id", ""))):
        return None
    return data


def save_state(path: Path, state: dict[str, Any]) -> None:
    runs.write_text(path, json.dumps(state, indent=1) + "\n", path.parent.parent)


def failures(results: dict[str, str]) -> list[str]:
    return sorted(h for h, r in results.items() if r != DONE)


def judge_wave(wave: list[str], reports: dict[str, dict[str, Any]]) -> dict[str, str]:
    """host -> result of this wave (a host without a report: pyinfra never reached it)."""
    return {h: str((reports.get(h) or {}).get("result") or "no report") for h in wave}


def _pyinfra(inventory: str, hosts: list[str], report_dir: Path, extra: list[str],
             dry: bool) -> list[str]:
    cmd = [sys.executable, "-c", "import sys; from pyinfra_cli.main import main; "
           "sys.argv[0] = 'pyinfra'; sys.exit(main())", "-y", inventory,
           "ollama_gpu_fix.deploy.fix.fix_host", "--data", f"report_dir={report_dir}"]
    for host in hosts:
        cmd += ["--limit", host]
    if dry:
        cmd.append("--dry")
    return cmd + extra


def _run_wave(cmd: list[str], env: dict[str, str], log: Any) -> int:  # noqa: ANN401
    """Run one wave's pyinfra, its output passed through; Ctrl-C reaches it too (same
    process group) and is answered after it ended."""
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        # a terminal's Ctrl-C reached pyinfra too: let it write its reports as interrupted
        # (a second SIGINT would cut that short); only a signal sent to us alone is passed on
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        raise


def run(inventory_spec: str, canary: str = "1", wave_size: str = "25%", max_failed: int = 0,
        dry: bool = False, report_dir: str = "reports", extra: list[str] | None = None,
        log: Any = print) -> int:  # noqa: ANN401 - print-like
    """The rollout (module docstring). Exit: 0 every host verified, 1 stopped over the failure
    budget (later hosts untouched), 2 a usage mistake, 130 interrupted."""
    cwd = os.getcwd()
    reports = Path(report_dir).expanduser()
    if not reports.is_absolute():
        reports = Path(cwd) / reports
    if max_failed < 0:
        raise RolloutError("--max-failed must be 0 or more")
    inventory = load_inventory(inventory_spec, cwd)
    spath = state_path(reports, inventory_spec, cwd)
    state = None if dry else load_state(spath)
    if state is not None and state.get("finished"):
        state = None  # a finished rollout: this is a new one
    if state is None:
        waves = plan_waves(inventory, canary, wave_size)
        state = {"rollout_id": runs.new_run_id(), "inventory": inventory_spec,
                 "waves": waves, "hosts": {}, "started_at": runs.now(), "stopped": None,
                 "finished": False, "max_failed": max_failed}
        resumed = False
    else:
        waves = [[h for h in wave if h in inventory.hosts] for wave in state["waves"]]
        known = {h for wave in waves for h in wave}
        new = [h for h in inventory.hosts if h not in known]
        if new:
            waves.append(new)  # hosts added to the inventory since: a last wave
        state["waves"], state["max_failed"] = waves, max_failed
        resumed = True
    rollout_id = state["rollout_id"]
    env = {**os.environ, "OGF_RUN_ID": rollout_id}
    label = ["canary"] + [f"wave {n}" for n in range(1, len(waves))]
    log(f"rollout {rollout_id}: {len(inventory.hosts)} hosts in {len(waves)} waves"
        + (" (resumed: verified hosts are skipped)" if resumed else ""))
    for name, wave in zip(label, waves, strict=True):
        log(f"  {name}: {', '.join(wave)}")
    if dry:
        return _dry(inventory_spec, waves, label, reports, extra or [], env, log)
    save_state(spath, state)
    stopped = None
    try:
        for number, (name, wave) in enumerate(zip(label, waves, strict=True)):
            todo = [h for h in wave if state["hosts"].get(h) != DONE]
            if not todo:
                log(f"--> rollout: {name}: every host already verified")
                continue
            log(f"--> rollout: {name}: {', '.join(todo)}")
            env["OGF_ROLLOUT_WAVE"] = str(number)
            _run_wave(_pyinfra(inventory_spec, todo, reports, extra or [], False), env, log)
            results = judge_wave(todo, runs.run_reports(reports, run_id=rollout_id,
                                                         mode="rollout"))
            state["hosts"].update(results)
            save_state(spath, state)
            failed = failures(state["hosts"])
            log(f"--> rollout: {name}: " + ", ".join(f"{h} {r}" for h, r in results.items()))
            if len(failed) > max_failed:
                stopped = {"wave": number, "name": name, "failed": failed}
                later = [h for w in waves[number + 1:] for h in w]
                log(f"--> rollout stopped after {name}: {len(failed)} failed "
                    f"({', '.join(failed)}) > --max-failed {max_failed}; "
                    f"{len(later)} later hosts untouched")
                break
    except KeyboardInterrupt:
        state["stopped"] = {"interrupted": True}
        save_state(spath, state)
        _summary(reports, rollout_id, inventory.hosts, log)
        log("--> rollout interrupted (Ctrl-C): run the same command again to resume")
        return 130
    state["stopped"] = stopped
    state["finished"] = stopped is None
    state["ended_at"] = runs.now()
    save_state(spath, state)
    _summary(reports, rollout_id, inventory.hosts, log)
    if stopped:
        log("--> fix the cause on the failed hosts, then run the same command again: verified "
            "hosts are skipped")
        return 1
    return 0


def _summary(reports: Path, rollout_id: str, hosts: list[str], log: Any) -> None:  # noqa: ANN401
    from ollama_gpu_fix import fleetpage

    fleetpage.publish(reports, rollout_id, "rollout", hosts, page_path(reports, rollout_id),
                      f"Rollout {rollout_id}", log, heading="\n")


def page_path(reports: Path, run_id: str) -> Path:
    return reports / "pages" / f"{run_id}.html"


def _dry(inventory_spec: str, waves: list[list[str]], label: list[str], reports: Path,
         extra: list[str], env: dict[str, str], log: Any) -> int:  # noqa: ANN401
    """Every host's plan (one read-only pyinfra --dry over all of them), by wave."""
    env = {**env, "OGF_ROLLOUT_WAVE": "dry"}
    hosts = [h for wave in waves for h in wave]
    code = _run_wave(_pyinfra(inventory_spec, hosts, reports, extra, True), env, log)
    found = runs.run_reports(reports, run_id=env["OGF_RUN_ID"])
    for name, wave in zip(label, waves, strict=True):
        log(f"--> {name}")
        for host in wave:
            row = fleet.row(host, found.get(host))
            log(f"    {host}: {row['cause'] or '?'} -> {row['result']}")
            for line in row["plan"] or ["nothing to change"]:
                log(f"        {line}")
    return 0 if code == 0 else code
