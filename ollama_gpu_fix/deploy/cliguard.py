"""The user's mistakes under pyinfra's CLI get one clear line and an exit code that says so.

pyinfra 3.10 answers a misspelled inventory path with a warning, zero hosts and exit 0, and
Ctrl-C with exit 0 (pyinfra_cli/main.py `_handle_interrupt`): a script or a CI job cannot
tell either from success. Installed from config.py (before pyinfra loads the inventory) and
again when a deploy of this package starts (a wheel user without config.py):

- an inventory that matches no host is an error (exit 1);
- Ctrl-C exits 130 (128 + SIGINT, as a shell reports it), and every report still open says
  `interrupted` (ollama_gpu_fix.runs);
- long waits print progress (ollama_gpu_fix.deploy.progress).
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pyinfra

from ollama_gpu_fix import runs

_installed = {"signal": False, "inventory": False, "summary": False}
INTERRUPTED = "interrupted by the user (Ctrl-C)"


def _on_interrupt(signum: int, frame: Any) -> None:  # noqa: ANN401 - a frame
    """Finish the reports and the table, then leave at once. Not sys.exit: the signal lands in
    whichever greenlet runs (a deploy file loading, an operation), and a SystemExit raised
    there can leave gevent's hub waiting for ever (seen: a Ctrl-C during the prepare stage
    hung pyinfra after "Disconnecting from hosts"). Connections die with the process."""
    runs.interrupted(INTERRUPTED)
    print("Exiting upon user request!", file=sys.stderr)
    try:
        runs.finish_open_reports()
        fleet_summary()
        runs.flush_index()  # os._exit skips atexit: the index lines still waiting go now
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + signal.SIGINT)


def guard_inventory() -> None:
    """Wrap pyinfra_cli's make_inventory: an inventory with no host is an error."""
    if _installed["inventory"]:
        return
    try:
        from pyinfra_cli import cli as pyinfra_cli
        from pyinfra_cli.exceptions import CliError
    except ImportError:
        return
    original = pyinfra_cli.make_inventory

    def make_inventory(inventory: str, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        made = original(inventory, *args, **kwargs)
        if len(made) == 0:
            raise CliError(f"no host matched the inventory {inventory!r} (a misspelled file "
                           "name? it must be a file, a host or a comma-separated list)")
        return made

    pyinfra_cli.make_inventory = make_inventory
    _installed["inventory"] = True


def install(state: Any = None) -> None:  # noqa: ANN401 - pyinfra's State
    """Under pyinfra's CLI: the inventory guard, exit 130 on Ctrl-C, progress for STATE."""
    if not pyinfra.is_cli:
        return
    guard_inventory()
    if not _installed["summary"]:
        # registered before the first report is written, so it runs after the reports left
        # open are finished (atexit runs last-registered first)
        atexit.register(fleet_summary)
        _installed["summary"] = True
    if not _installed["signal"]:
        signal.signal(signal.SIGINT, _on_interrupt)
        _installed["signal"] = True
    if state is not None:
        from ollama_gpu_fix.deploy import progress

        progress.install(state)


def fleet_summary() -> None:
    """After a run over several hosts: one table across them, and the fleet page. (A rollout's
    waves leave this to the rollout, which prints it over all of its hosts.)"""
    if os.environ.get("OGF_ROLLOUT_WAVE"):
        return
    for run in list(runs._RUNS.values()):
        dirs = {Path(d) for d, _ in run.files}
        for report_dir in sorted(dirs):
            hosts = [h for d, h in run.files if Path(d) == report_dir]
            if len(hosts) < 2:
                continue
            from ollama_gpu_fix import fleetpage

            fleetpage.publish(report_dir, run.run_id, run.mode, hosts,
                              report_dir / "pages" / f"{run.run_id}-{run.mode}.html",
                              f"{run.mode} {run.run_id}",
                              lambda line: print(line, file=sys.stderr),
                              heading="\n--> Fleet summary:\n")
