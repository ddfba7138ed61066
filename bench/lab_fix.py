"""Bench: what a second `deploys/fix_gpu.py` costs once a host is fixed (issue 7).

Boots the lab (tests/lab), fixes every host once, then in one invocation and with medians of
REPEAT runs each:
- on a healthy host (--one): deploys/diagnose.py vs the no-op fix (probe, plan with nothing
  to change, verification by a timed generation): the ratio is the price of the proof;
- the no-op fix on that host alone vs on every host in parallel;
- the SSH exec requests each host's own sshd logged for one no-op fix of every host;
- what the preflight costs (issue 12): on hosts whose plan still has steps after the first
  fix (the preflight refused them), `--dry` (probe, plan, preflight) against diagnose alone,
  for a host whose plan has apt work (--apt-host: apt simulated in a scratch configuration)
  and one whose plan only edits the service (--service-host).
Needs root, like the lab. Usage: python bench/lab_fix.py [--repeat N] [--one HOST]
[--only PROFILE ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.lab_diagnose import counts, timed  # noqa: E402
from tests.lab import fix_run  # noqa: E402
from tests.lab.lab import Lab, prerequisites  # noqa: E402

CPU: dict[str, list[float]] = {}  # run label -> the controller's CPU seconds per run


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_fix(limit: str | list[str] | None, repeat: int) -> tuple[list[float], set[str]]:
    names = [limit] if isinstance(limit, str) else limit or []
    label = limit if isinstance(limit, str) else "all" if limit is None else "verified"
    times, changed = [], set()
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            cpu = _children_cpu()
            run = fix_run.run(Path(tmp), [arg for n in names for arg in ("--limit", n)])
            CPU.setdefault(label, []).append(_children_cpu() - cpu)
            times.append(run.seconds)
            changed |= run.changed
    return times, changed


def timed_dry(host: str, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            times.append(fix_run.run(Path(tmp), ["--limit", host, "--dry"]).seconds)
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--one", default="nvidia-healthy")
    ap.add_argument("--apt-host", default="real-held-package")
    ap.add_argument("--service-host", default="real-readonly-etc")
    ap.add_argument("--only", nargs="*", help="profiles to boot (default: all)")
    args = ap.parse_args()
    why = prerequisites()
    if why:
        print(f"bench: cannot run: {why}", file=sys.stderr)
        return 2
    lab = Lab(args.only)
    try:
        lab.up()
        with tempfile.TemporaryDirectory() as tmp:
            first = fix_run.run(Path(tmp))
        subprocess.run(["sync"])
        before = counts(lab)
        _, changed_once = timed_fix(None, 1)
        after = counts(lab)
        diagnose = timed([args.one], args.repeat)
        one, changed_one = timed_fix(args.one, args.repeat)
        every, changed_every = timed_fix(None, args.repeat)
        # pyinfra runs one operation on every host before the next: a fault host's bounded
        # wait (apt lock, rollback) sets the pace of all; the hosts that end verified alone:
        fine = sorted(h for h, r in first.reports.items() if r.get("result") == "verified")
        healthy, changed_fine = timed_fix(fine, args.repeat)
        execs = {h: after[h][0] - before[h][0] for h in after}
        med = statistics.median
        preflight = {}
        for label, name in (("apt", args.apt_host), ("service", args.service_host)):
            if name in first.reports:
                alone = med(timed([name], args.repeat))
                dry = med(timed_dry(name, args.repeat))
                preflight[label] = {"host": name, "diagnose_s": round(alone, 2),
                                    "dry_fix_with_preflight_s": round(dry, 2),
                                    "ratio": round(dry / alone, 2)}
        result = {
            "hosts": len(lab.hosts), "repeat": args.repeat,
            "first_fix_all_hosts_s": round(first.seconds, 2),
            "diagnose_one_host_s": round(med(diagnose), 2),
            "noop_fix_one_host_s": round(med(one), 2),
            "ratio_noop_fix_over_diagnose": round(med(one) / med(diagnose), 2),
            "noop_fix_all_hosts_s": round(med(every), 2),
            "ratio_all_hosts_over_one": round(med(every) / med(one), 2),
            "verified_hosts": len(fine),
            "noop_fix_verified_hosts_s": round(med(healthy), 2),
            "ratio_verified_hosts_over_one": round(med(healthy) / med(one), 2),
            "controller_cpu_s_noop_fix_one_host": round(med(CPU[args.one]), 2),
            "controller_cpu_s_noop_fix_all_hosts": round(med(CPU["all"][1:]), 2),
            "hosts_changed_by_a_noop_run": sorted(changed_once | changed_one | changed_every | changed_fine),
            "exec_requests_per_host_per_noop_fix": execs,
            "preflight": preflight,
        }
    finally:
        lab.down()
    print(json.dumps(result, indent=1))
    execs = list(result["exec_requests_per_host_per_noop_fix"].values())
    print(f"bench: on {args.one}: diagnose {result['diagnose_one_host_s']}s, no-op fix "
          f"{result['noop_fix_one_host_s']}s (x{result['ratio_noop_fix_over_diagnose']}); "
          f"no-op fix of {result['hosts']} hosts in parallel {result['noop_fix_all_hosts_s']}s "
          f"(x{result['ratio_all_hosts_over_one']} one host), of the {len(fine)} verified hosts "
          f"{result['noop_fix_verified_hosts_s']}s (x{result['ratio_verified_hosts_over_one']});"
          f" SSH exec requests per host "
          f"{min(execs)}..{max(execs)}; hosts changed by a no-op run: "
          f"{len(result['hosts_changed_by_a_noop_run'])}")
    for label, row in result["preflight"].items():
        print(f"bench: preflight ({label} plan) on {row['host']}: diagnose {row['diagnose_s']}s,"
              f" --dry with preflight {row['dry_fix_with_preflight_s']}s (x{row['ratio']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
