"""Bench: a 16-host rollout in waves against the same 16 hosts changed all at once (issue 14).

In one invocation: boot the lab's 16 rollout hosts (tests/lab/test_rollout.py's list, no
fault), fix them all at once with one `pyinfra -y inventories/lab.py deploys/fix_gpu.py`, tear
the lab down, boot the same hosts fresh, and roll the fix out with `ollama-gpu-fix rollout
--canary 1 --wave-size 25%` (a canary and waves of 4). Reports wall time, the controller's CPU
seconds, the hosts verified, and the ratio: what waiting for each wave's verification costs
against the risk it removes (a regression stops at the canary or one wave, not at 16 hosts).
Needs root, like the lab. Usage: python bench/rollout.py [--wave-size 25%] [--canary 1]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ollama_gpu_fix import runs  # noqa: E402
from tests.lab import config, fix_run  # noqa: E402
from tests.lab.lab import Lab, prerequisites  # noqa: E402
from tests.lab.test_rollout import HOSTS  # noqa: E402


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _verified(report_dir: Path) -> int:
    return sum(1 for r in runs.latest_by_host(report_dir).values() if r.get("result") == "verified")


def all_at_once(tmp: Path) -> dict:
    cpu = _children_cpu()
    run = fix_run.run(tmp / "all")
    return {"seconds": run.seconds, "cpu": _children_cpu() - cpu,
            "verified": _verified(tmp / "all"), "waves": 1}


def in_waves(tmp: Path, canary: str, wave_size: str) -> dict:
    reports = tmp / "waves"
    reports.mkdir(mode=0o700)
    inventory = str(config.INVENTORY_PATH.relative_to(config.REPO_ROOT))
    cpu, t0 = _children_cpu(), time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "ollama_gpu_fix.cli", "rollout", inventory,
                           "--canary", canary, "--wave-size", wave_size, "--report-dir",
                           str(reports)], cwd=config.REPO_ROOT, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=3600)
    seconds = time.monotonic() - t0
    state = next((runs.load(p) for p in (reports / "rollouts").glob("*.json")), None) or {}
    waves = len(state.get("waves") or [])
    return {"seconds": seconds, "cpu": _children_cpu() - cpu, "verified": _verified(reports),
            "waves": waves, "rc": proc.returncode,
            "tail": proc.stdout[-1500:] if proc.returncode else ""}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--canary", default="1")
    ap.add_argument("--wave-size", default="25%")
    args = ap.parse_args()
    why = prerequisites()
    if why:
        print(f"bench: cannot run: {why}", file=sys.stderr)
        return 2
    results = {}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        tmp.chmod(0o700)
        for label, fn in (("all at once", lambda: all_at_once(tmp)),
                          ("in waves", lambda: in_waves(tmp, args.canary, args.wave_size))):
            lab = Lab(HOSTS)
            try:
                lab.up()
                results[label] = fn()
            finally:
                lab.down()
    print(f"{'16 hosts':<12} {'wall s':>8} {'ctl CPU s':>10} {'verified':>9} {'waves':>6}")
    for label, r in results.items():
        print(f"{label:<12} {r['seconds']:>8.1f} {r['cpu']:>10.1f} {r['verified']:>9} "
              f"{r['waves']:>6}")
        if r.get("tail"):
            print(r["tail"])
    ratio = results["in waves"]["seconds"] / results["all at once"]["seconds"]
    cpu = results["in waves"]["cpu"] / max(results["all at once"]["cpu"], 0.001)
    print(f"in waves / all at once: wall {ratio:.2f}x, controller CPU {cpu:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
