"""Keep one lab host running across reboots: the job systemd-nspawn@.service does elsewhere.

`systemd-nspawn --boot` exits with status 133 when the container reboots; with no systemd on
this machine nothing restarts it, so this supervisor does (a driver install followed by a
reboot must work as on a real machine). SIGTERM/SIGINT are passed to the running nspawn,
which powers the container off; then the supervisor exits. Usage: supervise.py NSPAWN-ARGV...
"""

from __future__ import annotations

import signal
import subprocess
import sys

REBOOT = 133


def main(argv: list[str]) -> int:
    stopping = False
    child: subprocess.Popen | None = None

    def forward(signum, frame):  # noqa: ARG001
        nonlocal stopping
        stopping = True
        if child and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        rc = child.wait()
        if stopping or rc != REBOOT:
            return rc
        print("supervise: container rebooted, starting it again", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
