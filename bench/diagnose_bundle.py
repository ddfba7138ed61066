"""Benchmark: `ollama-gpu-fix diagnose-bundle` per bundle (whole process) and parser throughput.

Run: `.venv/bin/python bench/diagnose_bundle.py` from the repo root. Prints one line per
measurement; the target is < 200 ms per whole process (issue 2). Numbers are medians of
several runs in one invocation, so ratios between lines are comparable, absolute values
depend on the machine.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ollama_gpu_fix.bundle import read_bundle
from ollama_gpu_fix.parsers import build_snapshot, ollama_log
from ollama_gpu_fix.rules import diagnose

ROOT = Path(__file__).resolve().parent.parent
CASES = sorted(p for p in (ROOT / "tests" / "cases").iterdir() if p.is_dir())
REPEAT = 5


def _median_seconds(fn, repeat: int = REPEAT) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def whole_process(bundle: Path) -> float:
    cmd = [sys.executable, "-m", "ollama_gpu_fix.cli", "diagnose-bundle", str(bundle), "--json"]
    return _median_seconds(lambda: subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True))


def big_log(lines: int) -> str:
    """A long journal: one server start, then model loads and requests, a failure at the end."""
    head = [
        'time=2026-11-20T10:00:00Z level=INFO source=routes.go:1500 msg="server config" env="map[OLLAMA_HOST:http://127.0.0.1:11434]"',
        'time=2026-11-20T10:00:00Z level=INFO source=runner.go:67 msg="discovering available GPUs..."',
        'time=2026-11-20T10:00:01Z level=INFO source=types.go:60 msg="inference compute" id=GPU-1 library=CUDA compute=8.9 name=CUDA0 description="NVIDIA GeForce RTX 4090" libdirs=ollama,cuda_v13 driver=13.0 pci_id=0000:01:00.0 type=discrete total="24.0 GiB" available="23.1 GiB"',
    ]
    sample = [
        'time=2026-11-20T10:00:02Z level=INFO source=server.go:400 msg="starting runner" cmd=/usr/local/lib/ollama/llama-server',
        "load_tensors: offloaded 29/29 layers to GPU",
        '[GIN] 2026/11/20 - 10:00:03 | 200 |  1.2s | 127.0.0.1 | POST "/api/generate"',
    ]
    body = head + [sample[i % len(sample)] for i in range(lines - len(head))]
    body.append(
        'time=2026-11-20T11:00:00Z level=WARN source=cuda_compat.go:80 msg="NVIDIA driver too old" driver=535 required_driver="550 or newer"'
    )
    return "\n".join(body) + "\n"


def main() -> int:
    # as installed: pip compiles bytecode at install time (PYTHONDONTWRITEBYTECODE, set on some
    # machines, would otherwise make every run compile the package's source again)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "ollama_gpu_fix")],
                   check=True)
    bare = _median_seconds(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True),
                           repeat=15)
    per_bundle = []
    for case in CASES:
        seconds = whole_process(case)
        per_bundle.append(seconds)
        print(f"diagnose-bundle {case.name}: {seconds * 1000:.0f} ms (whole process)")
    print(
        f"diagnose-bundle over {len(CASES)} bundles: median {statistics.median(per_bundle) * 1000:.0f} ms,"
        f" max {max(per_bundle) * 1000:.0f} ms per whole process (target < 200 ms)"
    )
    median = statistics.median(per_bundle)
    print(f"python -c pass: {bare * 1000:.0f} ms; diagnose-bundle whole process / bare python ="
          f" {median / bare:.2f}x (target <= 3x)")

    text = big_log(40_000)
    size_mb = len(text.encode()) / 1e6
    seconds = _median_seconds(lambda: ollama_log.parse({"ollama-serve.log": text}), 3)
    print(
        f"log parser: {40_000 / seconds:,.0f} lines/s, {size_mb / seconds:.1f} MB/s"
        f" ({size_mb:.1f} MB, {seconds * 1000:.0f} ms)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        huge = Path(tmp) / "ollama-serve.log"
        with huge.open("w") as fh:
            for _ in range(50):
                fh.write(text)  # ~4 MB x 50 = a 200 MB log; only its tail is read
        size = huge.stat().st_size / 1e6
        seconds = _median_seconds(lambda: diagnose(build_snapshot(read_bundle(tmp).sections)), 3)
        print(f"{size:.0f} MB log bundle: read+parse+diagnose {seconds * 1000:.0f} ms (tail only)")
    sections = [read_bundle(c).sections for c in CASES]
    seconds = _median_seconds(lambda: [diagnose(build_snapshot(s)) for s in sections])
    print(f"in-process parse+diagnose: {len(CASES) / seconds:,.0f} bundles/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
