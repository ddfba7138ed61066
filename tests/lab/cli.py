"""tests/lab/run: boot the lab, diagnose every host over SSH, fix every host twice with
deploys/fix_gpu.py, tear down, print the verdict.

The last line is always `lab: H hosts, primary-correct P/H, converged C/H, second-run changes K`:
converged = the first fix run ended as the profile says (verified on the GPU, or its
documented refusal), the second changed nothing, protected paths and after_checks held, and
the host is no worse than before the fix (tests/lab/noworse.py); K = hosts the second run
changed (-1: unknown, the lab could not run or the second run printed no results).
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path

from tests.lab import diagnose_run, fix_run
from tests.lab.lab import Lab, prerequisites


def _raise_interrupt(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tests/lab/run", description=__doc__)
    ap.add_argument("--only", nargs="*", help="profile names (default: all)")
    ap.add_argument("--hold", action="store_true",
                    help="keep the lab up after diagnosing until Enter or Ctrl-C")
    args = ap.parse_args(argv)
    why = prerequisites()
    if why:
        print(f"lab: cannot run: {why}", file=sys.stderr)
        print("lab: 0 hosts, primary-correct 0/0, converged 0/0, second-run changes -1")
        return 2
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    t0 = time.monotonic()
    lab = Lab(args.only)
    n = len(lab.profiles)
    correct = 0
    converged = 0
    changes = -1
    rc = 1
    left: list[str] = []
    try:
        lab.up()
        with tempfile.TemporaryDirectory(prefix="ogf-lab-reports-") as tmp:
            result = diagnose_run.run(Path(tmp))
            print(result.output[-6000:], file=sys.stderr)
            for p in lab.profiles:
                got = result.primaries.get(p.name)
                ok = got == p.expected_primary
                correct += ok
                print(f"lab: {p.name:<28} expected {p.expected_primary:<28} got {got}"
                      f"{'' if ok else '   <-- MISMATCH'}", file=sys.stderr)
            print(f"lab: diagnose took {result.seconds:.1f}s (pyinfra exit {result.returncode})",
                  file=sys.stderr)
            converged, changes = fix_twice(lab, Path(tmp))
        if args.hold:
            print("lab: holding; press Enter to tear down", file=sys.stderr)
            try:
                input()
            except EOFError:
                pass
        rc = 0 if correct == n and converged == n and changes == 0 else 1
    except KeyboardInterrupt:
        print("lab: interrupted, tearing down", file=sys.stderr)
        rc = 130
    except Exception as err:  # the verdict line must still be printed
        print(f"lab: error: {err}", file=sys.stderr)
        rc = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        left = lab.down()
        signal.signal(signal.SIGINT, signal.default_int_handler)
    print(f"lab: wall time {time.monotonic() - t0:.0f}s, teardown "
          f"{'clean' if not left else 'LEFT ' + ', '.join(left)}", file=sys.stderr)
    if left:
        rc = rc or 1
    print(f"lab: {n} hosts, primary-correct {correct}/{n}, converged {converged}/{n}, "
          f"second-run changes {changes}")
    return rc


def fix_twice(lab: Lab, tmp: Path) -> tuple[int, int]:
    """deploys/fix_gpu.py over every host, twice; (converged hosts, hosts the second changed).
    Under each host that did not converge: every check that failed, and the judge's notes."""
    twice = fix_run.fix_twice(lab, tmp)
    print(twice.first.stderr[-6000:], file=sys.stderr)
    for p in lab.profiles:
        judged = twice.judged[p.name]
        print(f"lab: fix {p.name:<28} expected {p.expected_fix:<16} "
              f"{'ok' if judged.converged else 'NOT CONVERGED'}: {judged.why}"
              f"{'; second run changed it' if judged.second_run_changes else ''}",
              file=sys.stderr)
        for line in judged.problems:
            print(f"lab:     {line}", file=sys.stderr)
        for line in judged.notes:
            print(f"lab:     note: {line}", file=sys.stderr)
    print(f"lab: fix took {twice.first.seconds:.1f}s, second run {twice.second.seconds:.1f}s",
          file=sys.stderr)
    for line in generation_lines(twice):
        print(line, file=sys.stderr)
    return twice.converged, twice.second_run_changes


def generation_lines(twice: fix_run.Twice) -> list[str]:
    """How many generations each run asked of the hosts' Ollama (its /api/generate requests),
    and per host of the second run that planned nothing and verified: a no-op run's count."""
    def total(index: int) -> str:
        counts = [pair[index] for pair in twice.generations.values()]
        known = [c for c in counts if c is not None]
        return f"{sum(known)}" + (f" ({len(counts) - len(known)} hosts unknown)"
                                  if len(known) < len(counts) else "")

    noop = {name: pair[1] for name, pair in twice.generations.items()
            if (r := twice.second.reports.get(name, {})).get("result") == "verified"
            and not (r.get("plan") or {}).get("steps")}
    per = sorted({c for c in noop.values() if c is not None})
    hosts = ", ".join(f"{name} {'?' if a is None else a}/{'?' if b is None else b}"
                      for name, (a, b) in sorted(twice.generations.items()))
    return [f"lab: /api/generate requests: run 1 {total(0)}, run 2 {total(1)}; no-op verified "
            f"hosts in run 2: {len(noop)}, generations per host {per or '-'}",
            f"lab:   per host (run 1/run 2): {hosts}"]


if __name__ == "__main__":
    sys.exit(main())
