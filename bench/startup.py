"""Bench: `diagnose-bundle CASE --json` as a whole process against a bare `python -c pass`
of the same interpreter (issue 13, item 7: at most 3x its wall time).

Run: `.venv/bin/python bench/startup.py [--repeat 30] [--max-ratio 3.0] [CASE ...]` from the
repo root. In one run it alternates, REPEAT times, a bare interpreter and diagnose-bundle on
each case (tests/cases names or paths; default: a few representative ones), then prints the
medians and their ratio per case and over all cases. Exits 1 when a case's ratio of median
wall times exceeds --max-ratio. The CPU time (user + system) of the same processes is printed
too: on a loaded machine it moves less than the wall time. The editable install's .pth finder
runs in both processes, so its cost is in the baseline too.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# log only; log with a version (packaging); journal only; nvidia-smi + log; journal + unit file
CASES = (
    "013-intel-arc-b580-vulkan-ok",
    "102-runners-cpu-only-4090-0.5.6",
    "002-amd-rx6750-gfx1031-unsupported",
    "004-windows-nvidia-rtx2080ti-driver-531-ok",
    "039-amd-780m-systemd-override-conf-not-applied",
)


def timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one whole process; it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def case_dir(name: str, root: Path) -> Path:
    path = Path(name)
    return path.resolve() if path.is_dir() else root / "tests" / "cases" / name


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="*", help=f"default: {' '.join(CASES)}")
    ap.add_argument("--repeat", type=int, default=30, help="runs of each process (default 30)")
    ap.add_argument("--max-ratio", type=float, default=3.0,
                    help="fail when a case's median wall time exceeds this many bare"
                         " interpreters (default 3.0)")
    ap.add_argument("--python", default=sys.executable, help="interpreter (default: this one)")
    ap.add_argument("--root", type=Path, default=ROOT,
                    help="checkout whose ollama_gpu_fix runs (default: this one)")
    args = ap.parse_args()
    root = args.root.resolve()
    cases = [case_dir(name, root) for name in args.cases or CASES]
    missing = [str(c) for c in cases if not c.is_dir()]
    if missing:
        print(f"bench: no such case: {', '.join(missing)}", file=sys.stderr)
        return 2
    # as installed: pip compiles bytecode at install time (PYTHONDONTWRITEBYTECODE, set on some
    # machines, would otherwise make every run compile the package's source again)
    subprocess.run([args.python, "-m", "compileall", "-q", str(root / "ollama_gpu_fix")],
                   check=True, stdout=subprocess.DEVNULL)
    bare_cmd = [args.python, "-c", "pass"]
    diag_cmds = {c.name: [args.python, "-m", "ollama_gpu_fix.cli", "diagnose-bundle", str(c),
                          "--json"] for c in cases}
    for cmd in diag_cmds.values():  # warm the page cache; a broken case fails here, not later
        timed(cmd, root)
    bare: list[tuple[float, float]] = []
    diag: dict[str, list[tuple[float, float]]] = {name: [] for name in diag_cmds}
    for _ in range(args.repeat):
        for name, cmd in diag_cmds.items():
            bare.append(timed(bare_cmd, root))
            diag[name].append(timed(cmd, root))

    def median(runs: list[tuple[float, float]], which: int) -> float:
        return statistics.median(run[which] for run in runs)

    bare_wall, bare_cpu = median(bare, 0), median(bare, 1)
    print(f"{args.python} (cwd {root}), {args.repeat} runs each, alternating")
    print(f"python -c pass: median {bare_wall * 1000:.1f} ms wall, {bare_cpu * 1000:.1f} ms CPU")
    worst = 0.0
    for name, runs in diag.items():
        wall, cpu = median(runs, 0), median(runs, 1)
        worst = max(worst, wall / bare_wall)
        print(f"diagnose-bundle {name} --json: median {wall * 1000:.1f} ms wall"
              f" ({wall / bare_wall:.2f}x), {cpu * 1000:.1f} ms CPU ({cpu / bare_cpu:.2f}x)")
    every = [run for runs in diag.values() for run in runs]
    wall, cpu = median(every, 0), median(every, 1)
    print(f"diagnose-bundle over {len(diag)} cases: median {wall * 1000:.1f} ms wall"
          f" ({wall / bare_wall:.2f}x), {cpu * 1000:.1f} ms CPU ({cpu / bare_cpu:.2f}x);"
          f" worst case {worst:.2f}x (max {args.max_ratio:g}x)")
    if worst > args.max_ratio:
        print(f"bench: FAIL: diagnose-bundle takes {worst:.2f}x a bare interpreter"
              f" (> {args.max_ratio:g}x)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
