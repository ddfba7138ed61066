"""Bench: wall time of deploys/diagnose.py on one lab host vs all hosts in parallel, and the
SSH exec requests each host's sshd logged per diagnose (issue 3).

Boots the lab (tests/lab), runs `pyinfra -y inventories/lab.py deploys/diagnose.py` REPEAT
times on one host (--limit) and REPEAT times on all hosts, reports medians and their ratio,
then counts `request exec` lines (sshd LogLevel DEBUG1) in every host's own journal for one
all-host run. Needs root, like the lab. Usage: python bench/lab_diagnose.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.lab import diagnose_run  # noqa: E402
from tests.lab.hosts import Host  # noqa: E402
from tests.lab.lab import Lab, prerequisites  # noqa: E402

EXEC = re.compile(r"server_input_channel_req: channel \d+ request exec")
SUBSYSTEM = re.compile(r"server_input_channel_req: channel \d+ request subsystem")
SESSION = re.compile(r"Accepted publickey for root")


def sshd_log(host: Host) -> str:
    """The host's sshd messages, read from its persistent journal on the controller's side
    (reading them over SSH would add exec requests of our own)."""
    journal = host.merged / "var/log/journal"
    out = subprocess.run(["journalctl", "-D", str(journal), "-t", "sshd", "-o", "cat",
                          "--no-pager"], capture_output=True, text=True)
    return out.stdout


def counts(lab: Lab) -> dict[str, tuple[int, int, int]]:
    res = {}
    for h in lab.hosts:
        text = sshd_log(h)
        res[h.name] = (len(EXEC.findall(text)), len(SUBSYSTEM.findall(text)),
                       len(SESSION.findall(text)))
    return res


def timed(limit: list[str] | None, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            r = diagnose_run.run(Path(tmp), limit=limit)
            if r.returncode != 0:
                raise SystemExit("diagnose failed:\n" + r.output[-3000:])
            times.append(r.seconds)
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--one", default="nvidia-healthy", help="host for the single-host run")
    args = ap.parse_args()
    why = prerequisites()
    if why:
        print(f"bench: cannot run: {why}", file=sys.stderr)
        return 2
    lab = Lab()
    try:
        lab.up()
        # Let journald flush (sshd messages of the provisioning SSH sessions) before counting.
        subprocess.run(["sync"])
        before = counts(lab)
        timed(None, 1)
        after = counts(lab)
        one = timed([args.one], args.repeat)
        allh = timed(None, args.repeat)
        per_host = {h: tuple(a - b for a, b in zip(after[h], before[h], strict=True))
                    for h in after}
        execs = [v[0] for v in per_host.values()]
        result = {
            "hosts": len(lab.hosts), "repeat": args.repeat,
            "one_host_s": round(statistics.median(one), 2),
            "all_hosts_s": round(statistics.median(allh), 2),
            "ratio_all_over_one": round(statistics.median(allh) / statistics.median(one), 2),
            "exec_requests_per_host_per_diagnose": {h: v[0] for h, v in per_host.items()},
            "sftp_subsystem_requests_per_host": {h: v[1] for h, v in per_host.items()},
            "ssh_logins_per_host": {h: v[2] for h, v in per_host.items()},
            "exec_min_max": [min(execs), max(execs)],
        }
    finally:
        lab.down()
    print(json.dumps(result, indent=1))
    print(f"bench: diagnose on 1 host {result['one_host_s']}s, on {result['hosts']} hosts in "
          f"parallel {result['all_hosts_s']}s (x{result['ratio_all_over_one']}); SSH exec "
          f"requests per host per diagnose {result['exec_min_max'][0]}.."
          f"{result['exec_min_max'][1]} (sshd's own log)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
