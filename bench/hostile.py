"""Hostile inputs (issue 6): each attack's outcome, wall time, peak RSS and exit code.

    .venv/bin/python bench/hostile.py            # every attack (the sandboxed ones need root)
    .venv/bin/python bench/hostile.py fake_server long_line_kv_96k

The attacks live in tests/hostile/attacks.py, which the tests in tests/hostile assert on.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.hostile import attacks  # noqa: E402


def main(names: list[str]) -> int:
    why = attacks.can_use_namespaces()
    for name, attack, sandboxed in attacks.ALL:
        if names and name not in names:
            continue
        if sandboxed and why:
            print(f"{name:<34} skipped: {why}")
            continue
        print(attack().row(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
