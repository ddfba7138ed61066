"""Bench: what the controller pays per host, from 1 to 128 SSH hosts (issue 15).

Hosts are lightweight: one sshd per network namespace (`ogfs-hN`, a veth pair to the bridge
`ogfs-br0`, 10.214.0.0/16), all over this machine's own filesystem (identical hosts). A
throwaway ed25519 key is authorized for root through each sshd's AuthorizedKeysFile (a
bench-owned file), the host key is pinned in a bench-written known_hosts, and each sshd logs at
DEBUG1 into its own file, where its exec requests are counted (bench/lab_diagnose.py's regexes).

Before any measurement the no-op fix runs `--dry` on one host: this machine (no GPU, no Ollama)
must get a plan with no step, else the bench stops. Then, for each N of --sizes, one inventory
of N hosts (report_dir: a fresh temp dir per run) and `pyinfra -y INVENTORY deploys/diagnose.py`
and `... deploys/fix_gpu.py` (the no-op fix), each measured as one child process: wall time,
CPU seconds and peak RSS (os.wait4's rusage of the pyinfra process), SSH exec requests and
logins per host (sshd's logs), and the CPU the hosts spent (the sshds' reaped children,
/proc/PID/stat cutime+cstime: on this machine hosts and controller share the cores). Then at
the largest N the same runs with explicit --parallel values. Prints one table, marginal cost per
host ((cost(N) - cost(1)) / (N - 1)) and the ratios, all from this one invocation.

--profile N runs both deploys once at N hosts under cProfile (files kept in --keep-dir).
Everything it creates is named ogfs-* (never the lab's ogf-*) and removed at the end, even on
failure; `--cleanup` removes what a killed run left. Needs root. Usage:
python bench/scale.py [--sizes 1 16 64 128] [--parallel 32 128] [--host-latency 2] [--aged 500]
[--repeat 1] [--code DIR ...] [--profile 128] [--json] [--cleanup]
"""

from __future__ import annotations

import argparse
import json
import os
import pprint
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.lab_diagnose import EXEC, SESSION, SUBSYSTEM  # noqa: E402

PREFIX = "ogfs"  # never the lab's "ogf-": tests/lab/hostlock.py sweeps those
BRIDGE = f"{PREFIX}-br0"
BRIDGE_ADDR = "10.214.0.1"
NETMASK_BITS = 16
# sshd's StrictModes wants every directory above authorized_keys root's and not writable by
# others (/tmp is 1777): the sshd side lives in /run, the reports in a temp dir
RUN_PARENT = Path("/run")
RUN_GLOB = f"{PREFIX}-scale-*"
MADE_PRIVSEP = RUN_PARENT / f"{PREFIX}-bench-made-run-sshd"  # we created /run/sshd
SSHD = "/usr/sbin/sshd"
DEPLOYS = {"diagnose": "deploys/diagnose.py", "fix": "deploys/fix_gpu.py"}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"scale: {msg}", file=sys.stderr, flush=True)


def busy() -> bool:
    """The CI or the lab runs on this machine (its numbers and ours would both suffer)."""
    return any(subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode == 0
               for pattern in (".ci/run", "tests/lab"))


def wait_quiet(limit: float = 2400) -> None:
    """Poll every 30 s while the CI or the lab runs, up to LIMIT seconds."""
    start = time.monotonic()
    if busy():
        log("the CI or the lab is running: waiting for it (every 30 s)")
    while busy():
        if time.monotonic() - start > limit:
            raise SystemExit(f"scale: the CI or the lab still runs after {limit:.0f} s; stopped")
        time.sleep(30)


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and res.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {res.stderr.strip() or res.returncode}")
    return res


def address(index: int) -> str:
    """Host INDEX (1-based) in 10.214.0.0/16, never the bridge's .1."""
    return f"10.214.{index // 200}.{10 + index % 200}"


def netns(index: int) -> str:
    return f"{PREFIX}-h{index}"


# -- cleanup: by name and by network namespace, so it also finds what a killed run left -----

def _our_netns() -> list[str]:
    out = ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines()
            if re.fullmatch(rf"{PREFIX}-h\d+", line.split()[0] if line.split() else "")]


def _our_links() -> list[str]:
    names = []
    for line in ip("-o", "link", "show", check=False).stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(f"{PREFIX}-"):
            names.append(name)
    return names


def _pids_in(namespaces: list[str]) -> list[int]:
    """Processes whose network namespace is one of ours (the sshds and their sessions)."""
    inodes = set()
    for name in namespaces:
        try:
            inodes.add(os.stat(f"/run/netns/{name}").st_ino)
        except OSError:
            pass
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if os.stat(proc / "ns/net").st_ino in inodes:
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def _kill(pids: list[int]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = []
        for pid in pids:
            try:
                os.kill(pid, sig)
                alive.append(pid)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while alive and time.monotonic() < deadline:
            for pid in list(alive):
                try:
                    os.waitpid(pid, os.WNOHANG)  # ours: reap it; not ours: ChildProcessError
                except ChildProcessError:
                    pass
                if not Path(f"/proc/{pid}").exists() or _zombie(pid):
                    alive.remove(pid)
            time.sleep(0.05)
        pids = alive
        if not pids:
            return


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def cleanup(run_dirs: list[Path] | None = None) -> list[str]:
    """Remove every ogfs-* namespace, link and process in them, and RUN_DIRS (all of the
    bench's run directories when None). Returns what is still left (empty when clean)."""
    spaces = _our_netns()
    _kill(_pids_in(spaces))
    for name in spaces:
        ip("netns", "del", name, check=False)
    for name in _our_links():
        if name != BRIDGE:
            ip("link", "del", name, check=False)
    ip("link", "del", BRIDGE, check=False)
    if run_dirs is None:
        run_dirs = [*RUN_PARENT.glob(RUN_GLOB), *Path(tempfile.gettempdir()).glob(RUN_GLOB)]
    for folder in run_dirs:
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)
    if MADE_PRIVSEP.exists() and not any(RUN_PARENT.glob(RUN_GLOB)):
        try:
            Path("/run/sshd").rmdir()
        except OSError:
            pass
        MADE_PRIVSEP.unlink(missing_ok=True)
    return _our_netns() + _our_links() + [str(p) for p in _pids_in(_our_netns())]


# -- the hosts ------------------------------------------------------------------------------

SSHD_CONFIG = """\
# bench/scale.py: one of these sshds per network namespace, all over this machine's files
Port 22
HostKey {run}/ssh_host_ed25519_key
PidFile none
AuthorizedKeysFile {run}/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
MaxStartups 1000
MaxSessions 1000
LogLevel DEBUG1
Subsystem sftp internal-sftp
# every command goes through {run}/command.sh (latency, replay), then runs as it was sent
ForceCommand /bin/sh {run}/command.sh
"""

COMMAND_SH = """\
# bench/scale.py: sshd's ForceCommand for every command of the bench's hosts.
# A host that answers later (a real GPU host's generation, a far network): sleep the seconds in
# latency first (no CPU). With replay on, the probe (a read-only fact, the same command text on
# every host) runs for real once per command text and is answered from that copy afterwards:
# SSH, the exec request, the transfer and the controller's work stay real, the hosts' CPU
# (which this machine's cores would otherwise share with the controller) is not spent.
sleep "$(cat {run}/latency)"
case "$SSH_ORIGINAL_COMMAND" in
*"ogf-probe v2 nonce="*)
    if [ -s {run}/replay ]; then
        key={run}/cache/$(printf %s "$SSH_ORIGINAL_COMMAND" | md5sum | cut -c1-32)
        if [ ! -s "$key" ]; then
            /bin/sh -c "$SSH_ORIGINAL_COMMAND" > "$key.$$" && mv "$key.$$" "$key"
        fi
        exec cat "$key"
    fi ;;
esac
exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"
"""

# Runs pyinfra and reports its rusage: a child's ru_maxrss counts the RSS of the process that
# forked it (Linux records the old mm's high-water mark at exec), so pyinfra is this small
# launcher's child, never the bench's (whose RSS grows with what it reads)
LAUNCHER = """\
import json, os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, ru = os.wait4(pid, 0)
with open(sys.argv[1], "w") as fh:
    json.dump({"rc": os.waitstatus_to_exitcode(status), "cpu": ru.ru_utime + ru.ru_stime,
               "maxrss_kib": ru.ru_maxrss}, fh)
"""


@dataclass
class Fleet:
    run: Path  # sshd configs, keys, known_hosts, logs, inventories (root's, 0700, in /run)
    reports: Path  # the runs' report dirs (0700, in the temp dir)
    sshd: dict[int, subprocess.Popen] = field(default_factory=dict)

    @property
    def key(self) -> Path:
        return self.run / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.run / "known_hosts"

    def log_of(self, index: int) -> Path:
        return self.run / "logs" / f"h{index}.log"

    def up(self, count: int) -> None:
        if not Path(SSHD).is_file():
            log("installing openssh-server (apt)")
            subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                            "openssh-server"], check=True, stdout=subprocess.DEVNULL,
                           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if not Path("/run/sshd").is_dir():  # sshd's privilege separation directory
            Path("/run/sshd").mkdir(mode=0o755)
            MADE_PRIVSEP.touch(mode=0o600)
        (self.run / "logs").mkdir(mode=0o700)
        for name in ("id_ed25519", "ssh_host_ed25519_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                            f"{PREFIX}-scale", "-f", str(self.run / name)], check=True)
        shutil.copy(self.run / "id_ed25519.pub", self.run / "authorized_keys")
        (self.run / "authorized_keys").chmod(0o600)
        host_key = (self.run / "ssh_host_ed25519_key.pub").read_text().split()[:2]
        self.known_hosts.write_text("".join(f"{address(i)} {host_key[0]} {host_key[1]}\n"
                                            for i in range(1, count + 1)))
        (self.run / "latency").write_text("0\n")
        (self.run / "replay").write_text("")
        (self.run / "cache").mkdir(mode=0o700)
        (self.run / "command.sh").write_text(COMMAND_SH.format(run=self.run))
        config = self.run / "sshd_config"
        config.write_text(SSHD_CONFIG.format(run=self.run))
        subprocess.run([SSHD, "-t", "-f", str(config)], check=True)
        ip("link", "add", BRIDGE, "type", "bridge")
        ip("addr", "add", f"{BRIDGE_ADDR}/{NETMASK_BITS}", "dev", BRIDGE)
        ip("link", "set", BRIDGE, "up")
        for i in range(1, count + 1):
            self._host(i, config)
        deadline = time.monotonic() + 60
        for i in range(1, count + 1):
            while not _answers(address(i)):
                if time.monotonic() > deadline or self.sshd[i].poll() is not None:
                    raise RuntimeError(f"sshd of {netns(i)} did not come up: "
                                       f"{self.log_of(i).read_text()[-500:]}")
                time.sleep(0.05)
        log(f"{count} hosts up ({address(1)}..{address(count)})")

    def _host(self, i: int, config: Path) -> None:
        name, veth, peer = netns(i), f"{PREFIX}-v{i}", f"{PREFIX}-p{i}"
        ip("netns", "add", name)
        ip("link", "add", veth, "type", "veth", "peer", "name", peer)
        ip("link", "set", peer, "netns", name)
        ip("link", "set", veth, "master", BRIDGE)
        ip("link", "set", veth, "up")
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "link", "set", peer, "name", "eth0")
        ip("-n", name, "addr", "add", f"{address(i)}/{NETMASK_BITS}", "dev", "eth0")
        ip("-n", name, "link", "set", "eth0", "up")
        # `ip netns exec` execs sshd: the pid is sshd's, whose reaped sessions are the host
        # side's CPU (/proc/PID/stat cutime, cstime)
        self.sshd[i] = subprocess.Popen(
            ["ip", "netns", "exec", name, SSHD, "-D", "-f", str(config), "-E",
             str(self.log_of(i)), "-o", f"ListenAddress={address(i)}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)

    def inventory(self, count: int, report_dir: Path) -> Path:
        path = self.run / f"inventory-{count}.py"
        hosts = [(f"h{i}", {
            "ssh_hostname": address(i), "ssh_user": "root", "ssh_key": str(self.key),
            "ssh_known_hosts_file": str(self.known_hosts),
            "ssh_strict_host_key_checking": "yes", "ssh_allow_agent": False,
            "ssh_look_for_keys": False, "report_dir": str(report_dir),
        }) for i in range(1, count + 1)]
        path.write_text('"""bench/scale.py: N sshds in ogfs-h* namespaces (generated)."""\n\n'
                        "scale = " + pprint.pformat(hosts, width=96, sort_dicts=False) + "\n")
        return path

    def mark(self, count: int) -> dict[int, tuple[int, float]]:
        """Per host: (its sshd log's size, its sessions' CPU seconds) now."""
        return {i: (self.log_of(i).stat().st_size, _reaped_cpu(self.sshd[i].pid))
                for i in range(1, count + 1)}

    def since(self, mark: dict[int, tuple[int, float]]) -> dict[int, tuple[int, int, int, float]]:
        """Per host since MARK: (exec requests, sftp subsystems, logins, sessions' CPU s)."""
        out = {}
        for i, (size, cpu) in mark.items():
            with open(self.log_of(i), "rb") as fh:
                fh.seek(size)
                text = fh.read().decode(errors="replace")
            out[i] = (len(EXEC.findall(text)), len(SUBSYSTEM.findall(text)),
                      len(SESSION.findall(text)), _reaped_cpu(self.sshd[i].pid) - cpu)
        return out


def _answers(addr: str) -> bool:
    try:
        with socket.create_connection((addr, 22), timeout=0.5) as sock:
            return sock.recv(4).startswith(b"SSH")
    except OSError:
        return False


def _open_fds(launcher: int) -> int:
    """Open file descriptors of the launcher's child (pyinfra), 0 when it is not there."""
    try:
        children = Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()
        return max((len(os.listdir(f"/proc/{c}/fd")) for c in children), default=0)
    except OSError:
        return 0


def _reaped_cpu(pid: int) -> float:
    """CPU seconds of PID's children it has waited for (/proc/PID/stat cutime + cstime)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[13]) + int(fields[14])) / CLK_TCK  # fields 16, 17 of stat(5)


# -- one measured pyinfra run -----------------------------------------------------------------

def pyinfra_exe() -> str:
    beside = Path(sys.executable).parent / "pyinfra"
    return str(beside) if beside.is_file() else shutil.which("pyinfra") or "pyinfra"


@dataclass
class Sample:
    deploy: str
    hosts: int
    parallel: str
    history: int  # earlier runs already in the report_dir's index.json
    latency: float  # seconds each host's command waited before it ran (ForceCommand)
    code: str  # the checkout whose code ran
    wall: float
    cpu: float
    rss_mib: float
    fds: int
    rc: int
    execs: list[int]
    sftp: list[int]
    logins: list[int]
    host_cpu: float
    results: dict[str, int]
    indexed: int


def age(report_dir: Path, runs: int, count: int) -> set[str]:
    """An index.json as a report_dir has it after RUNS earlier runs of COUNT hosts (the lines
    only: nothing reads those runs' files while a run writes)."""
    index = {"schema": "ollama-gpu-fix/index", "schema_version": 1, "runs": []}
    for r in range(runs):
        run_id = f"2026{1 + r // 28 % 12:02d}{1 + r % 28:02d}T{r % 24:02d}0000Z-{r:06x}"
        stamp = run_id.split("-")[0]
        index["runs"].append({
            "run_id": run_id, "mode": "diagnose", "started_at": "2026-01-01T00:00:00+00:00",
            "ended_at": "2026-01-01T00:01:00+00:00",
            "hosts": {f"h{i}": {"file": f"h{i}/{stamp}-diagnose.json", "result": "diagnosed",
                                "primary": "no-gpu"} for i in range(1, count + 1)}})
    path = report_dir / "index.json"
    path.write_text(json.dumps(index, indent=1) + "\n")
    path.chmod(0o600)
    return {r["run_id"] for r in index["runs"]}


def measure(fleet: Fleet, deploy: str, count: int, parallel: int | None = None,
            extra: list[str] | None = None, profile: Path | None = None,
            timeout: float = 1800, history: int = 0, latency: float = 0.0,
            code: Path = REPO, replay: bool = False) -> tuple[Sample, Path]:
    (fleet.run / "latency").write_text(f"{latency}\n")
    (fleet.run / "replay").write_text("1\n" if replay else "")
    report_dir = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-r-", dir=fleet.reports))
    aged = age(report_dir, history, count) if history else set()
    inventory = fleet.inventory(count, report_dir)
    cmd = [pyinfra_exe(), "-y", str(inventory), DEPLOYS[deploy], *(extra or [])]
    if parallel:
        cmd[1:1] = ["--parallel", str(parallel)]
    if profile is not None:
        cmd = [sys.executable, "-m", "cProfile", "-o", str(profile), *cmd]
    mark = fleet.mark(count)
    out_path = report_dir.with_suffix(".log")
    # this checkout's code, not the venv's; bytecode cached as an operator's install has it
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
           "PYTHONPATH": str(code)}
    usage = report_dir.with_suffix(".rusage")
    t0 = time.monotonic()
    with open(out_path, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-S", "-c", LAUNCHER, str(usage), *cmd],
                                cwd=code, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        fds = 0  # the most file descriptors pyinfra held at once (sampled 5 times a second)
        try:
            while proc.poll() is None:
                fds = max(fds, _open_fds(proc.pid))
                if time.monotonic() - t0 > timeout:
                    raise subprocess.TimeoutExpired(cmd, timeout)
                time.sleep(0.2)
        except BaseException:  # past the timeout, or the bench is interrupted: end that run
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if not isinstance(sys.exc_info()[1], subprocess.TimeoutExpired):
                raise
    wall = time.monotonic() - t0
    ru = json.loads(usage.read_text()) if usage.exists() else {"rc": -9, "cpu": 0, "maxrss_kib": 0}
    time.sleep(0.3)  # the sessions' processes end and are reaped by their sshd
    diff = fleet.since(mark)
    results: dict[str, int] = {}
    for host_dir in report_dir.iterdir():
        for report in host_dir.glob("*.json") if host_dir.is_dir() else []:
            data = json.loads(report.read_text())
            key = str(data.get("result"))
            if deploy == "fix" and (data.get("plan") or {}).get("steps"):
                key += " WITH STEPS"
            results[key] = results.get(key, 0) + 1
    indexed = 0  # this run's hosts the index lists with their report's result, at exit
    try:
        index = json.loads((report_dir / "index.json").read_text())
        for entry in [r for r in index["runs"] if r["run_id"] not in aged]:
            for host, line in entry["hosts"].items():
                report = json.loads((report_dir / line["file"]).read_text())
                indexed += report.get("result") == line.get("result") and report["host"] == host
    except (OSError, ValueError, KeyError) as exc:
        log(f"index of {report_dir}: {exc}")
    label = "this" if code == REPO else code.name.removeprefix(f"{PREFIX}-bench-")
    sample = Sample(deploy, count, str(parallel or "default"), history, latency, label, wall,
                    ru["cpu"], ru["maxrss_kib"] / 1024, fds, ru["rc"],
                    [int(d[0]) for d in diff.values()], [int(d[1]) for d in diff.values()],
                    [int(d[2]) for d in diff.values()], sum(d[3] for d in diff.values()),
                    results, indexed)
    return sample, report_dir


def dry_check(fleet: Fleet) -> None:
    """The no-op fix must plan nothing on this machine: one host, --dry, read its report."""
    sample, report_dir = measure(fleet, "fix", 1, extra=["--dry"])
    reports = [json.loads(p.read_text()) for p in report_dir.glob("*/*.json")]
    steps = [s for r in reports for s in (r.get("plan") or {}).get("steps") or []]
    if len(reports) != 1 or steps or reports[0].get("mode") != "dry":
        out = report_dir.with_suffix(".log").read_text()[-3000:]
        raise SystemExit(f"scale: ABORT: the fix would not be a no-op on this machine "
                         f"({len(reports)} reports, steps {steps!r}):\n{out}")
    log(f"--dry on one host: primary {reports[0].get('primary')!r}, plan has no step "
        f"(result {reports[0].get('result')!r}); the no-op fix is safe to run here")


# -- the table --------------------------------------------------------------------------------

def _median(samples: list[Sample]) -> Sample:
    """The sample of median wall time (its CPU and RSS come with it)."""
    return sorted(samples, key=lambda s: s.wall)[len(samples) // 2]


def table(samples: list[Sample]) -> str:
    rows = ["code    deploy    N    parallel  history  latency  wall s  ctl CPU s  ctl RSS MiB"
            "  ctl fds  exec/host  sftp/host  logins/host  hosts' CPU s  rc  indexed  results"]
    for s in samples:
        ex = f"{min(s.execs)}-{max(s.execs)}" if min(s.execs) != max(s.execs) else f"{s.execs[0]}"
        sf = f"{min(s.sftp)}-{max(s.sftp)}" if min(s.sftp) != max(s.sftp) else f"{s.sftp[0]}"
        lg = f"{min(s.logins)}-{max(s.logins)}" if min(s.logins) != max(s.logins) \
            else f"{s.logins[0]}"
        res = ", ".join(f"{v} {k}" for k, v in sorted(s.results.items()))
        rows.append(f"{s.code:<7} {s.deploy:<9} {s.hosts:<4} {s.parallel:<9} {s.history:>7}"
                    f" {s.latency:>7.1f}s {s.wall:>6.1f} {s.cpu:>10.2f} {s.rss_mib:>12.0f}"
                    f" {s.fds:>8} {ex:>10} {sf:>10}"
                    f" {lg:>12} {s.host_cpu:>13.1f} {s.rc:>3} {s.indexed:>8}  {res}")
    return "\n".join(rows)


def marginal(samples: list[Sample]) -> tuple[str, dict]:
    lines, out = [], {}
    for code, deploy in sorted({(s.code, s.deploy) for s in samples}):
        by_n = {s.hosts: s for s in samples if s.deploy == deploy and s.code == code
                and s.parallel == "default" and not s.history and not s.latency}
        if 1 not in by_n:
            continue
        one = by_n[1]
        prev = one
        for n in sorted(by_n):
            if n == 1:
                continue
            s = by_n[n]
            row = {"wall_s": (s.wall - one.wall) / (n - 1), "cpu_s": (s.cpu - one.cpu) / (n - 1),
                   "rss_mib": (s.rss_mib - one.rss_mib) / (n - 1),
                   # between this size and the one before: grows with N when superlinear
                   "cpu_s_step": (s.cpu - prev.cpu) / (n - prev.hosts),
                   "rss_mib_step": (s.rss_mib - prev.rss_mib) / (n - prev.hosts),
                   "cpu_ratio_vs_1": s.cpu / one.cpu, "wall_ratio_vs_1": s.wall / one.wall}
            out[f"{code}/{deploy}/{n}"] = row
            lines.append(f"{code:<7} {deploy:<9} N={n:<4} per extra host: wall {row['wall_s'] * 1000:6.0f}"
                         f" ms, CPU {row['cpu_s'] * 1000:6.1f} ms, RSS {row['rss_mib']:5.2f} MiB"
                         f" | since N={prev.hosts}: CPU {row['cpu_s_step'] * 1000:6.1f} ms,"
                         f" RSS {row['rss_mib_step']:5.2f} MiB | x{row['cpu_ratio_vs_1']:.1f} CPU,"
                         f" x{row['wall_ratio_vs_1']:.1f} wall vs N=1")
            prev = s
    return "\n".join(lines), out


def parse_cost() -> str:
    """The controller's per-host parse+diagnose+report CPU for this machine's probe vs a real
    H100 host's (tests/fixtures/h100/probe.txt): the bench's hosts are small."""
    from ollama_gpu_fix import report
    from ollama_gpu_fix.bundle import split_stream
    from ollama_gpu_fix.deploy.facts import OllamaGpuProbe
    from ollama_gpu_fix.parsers import build_snapshot
    from ollama_gpu_fix.rules import diagnose

    here = subprocess.run(["/bin/sh", "-c", OllamaGpuProbe().command(observe="look")],
                          capture_output=True, text=True).stdout
    h100 = (REPO / "tests/fixtures/h100/probe.txt").read_text()
    out = []
    for label, text in (("this machine", here), ("real H100 capture", h100)):
        lines = text.splitlines()
        t0, n = time.process_time(), 20
        for _ in range(n):
            snap = build_snapshot(split_stream(lines))
            diag = diagnose(snap)
            report.render_text(snap, diag, host="h")
            json.dumps(report.to_json(snap, diag), default=str)
        ms = (time.process_time() - t0) / n * 1000
        out.append(f"{label} ({len(text) // 1024} KiB probe): {ms:.1f} ms")
    return "parse+diagnose+report per host, in-process: " + "; ".join(out)


def profile(fleet: Fleet, count: int, keep: Path, codes: list[Path]) -> None:
    import pstats

    for code in codes:
        for deploy in DEPLOYS:
            label = "this" if code == REPO else code.name.removeprefix(f"{PREFIX}-bench-")
            path = keep / f"{label}-{deploy}-{count}.prof"
            sample, _ = measure(fleet, deploy, count, profile=path, code=code)
            print(f"\n== cProfile, {label}: {deploy} at N={count}: wall {sample.wall:.1f}s "
                  f"(profiled), CPU {sample.cpu:.1f}s, rc {sample.rc}; {path}")
            _top(pstats.Stats(str(path)))


def _top(stats) -> None:  # noqa: ANN001 - pstats.Stats
    """The functions that cost the most themselves, then ours and pyinfra's by total."""
    stats.sort_stats("tottime").print_stats(18)
    stats.sort_stats("cumulative").print_stats(r"ollama_gpu_fix|pyinfra", 25)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 64, 128])
    ap.add_argument("--parallel", type=int, nargs="*", default=[32, 128],
                    help="explicit --parallel values also run at the largest size")
    ap.add_argument("--repeat", type=int, default=1, help="runs per cell (median by wall)")
    ap.add_argument("--deploys", nargs="+", default=list(DEPLOYS), choices=list(DEPLOYS))
    ap.add_argument("--aged", type=int, default=0, metavar="RUNS",
                    help="also run at the largest size with RUNS earlier runs in index.json")
    ap.add_argument("--replay", action="store_true",
                    help="hosts answer the probe from a copy of its first real answer (the "
                         "controller's work is the same; this machine's cores are not spent "
                         "on 128 probes)")
    ap.add_argument("--host-latency", type=float, default=0.0, metavar="S",
                    help="also run the --parallel cells with hosts that answer S seconds later")
    ap.add_argument("--code", type=Path, nargs="*", default=[],
                    help="other checkouts (e.g. an export of the commit before) measured in "
                         "the size and --aged cells, alternating with this one")
    ap.add_argument("--profile", type=int, metavar="N", help="only profile both deploys at N")
    ap.add_argument("--keep-dir", type=Path, default=Path(tempfile.gettempdir()) / f"{PREFIX}-bench-out",
                    help="where --profile and --json files go")
    ap.add_argument("--json", action="store_true", help="also write the samples as JSON")
    ap.add_argument("--cleanup", action="store_true", help="remove what a killed run left")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("scale: needs root (network namespaces, sshd)", file=sys.stderr)
        return 2
    if args.cleanup:
        left = cleanup()
        print("scale: clean" if not left else f"scale: still there: {left}")
        return 1 if left else 0
    if _our_netns() or BRIDGE in _our_links():
        print("scale: ogfs-* objects exist (another bench run, or a killed one: --cleanup)",
              file=sys.stderr)
        return 2
    wait_quiet()
    run = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-scale-", dir=RUN_PARENT))
    reports = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-scale-"))
    fleet = Fleet(run, reports)
    samples: list[Sample] = []
    try:
        largest = args.profile or max(args.sizes)
        fleet.up(largest)
        dry_check(fleet)
        if args.profile:
            args.keep_dir.mkdir(parents=True, exist_ok=True)
            profile(fleet, args.profile, args.keep_dir, [REPO, *(c.resolve() for c in args.code)])
            return 0
        # (deploy, N, --parallel, history, latency, also the other checkouts)
        cells = [(d, n, None, 0, 0.0, True) for n in sorted(args.sizes) for d in args.deploys]
        cells += [(d, largest, None, args.aged, 0.0, True) for d in args.deploys if args.aged]
        cells += [(d, largest, p, 0, 0.0, False) for p in args.parallel for d in args.deploys]
        cells += [(d, largest, p, 0, args.host_latency, False) for p in [None, *args.parallel]
                  for d in args.deploys if args.host_latency]
        others = [c.resolve() for c in args.code]
        for deploy, n, par, history, latency, compare in cells:
            codes = [REPO, *others] if compare else [REPO]
            taken: dict[Path, list[Sample]] = {c: [] for c in codes}
            for _ in range(args.repeat):
                for code in codes:
                    while True:  # a cell the CI or the lab ran beside is measured again
                        wait_quiet()
                        sample, _ = measure(fleet, deploy, n, parallel=par, history=history,
                                            latency=latency, code=code, replay=args.replay)
                        if not busy():
                            break
                        log("the CI or the lab started during this cell: measuring it again")
                    log(f"{sample.code} {deploy} N={n} parallel={par or 'default'} history="
                        f"{history} latency={latency}: {sample.wall:.1f}s wall, {sample.cpu:.2f}s"
                        f" CPU, {sample.rss_mib:.0f} MiB, rc {sample.rc}, indexed "
                        f"{sample.indexed}")
                    taken[code].append(sample)
            samples += [_median(runs) for runs in taken.values()]
    finally:
        left = cleanup([run, reports])
        if left:
            log(f"NOT CLEAN, still there: {left}")
    cpus = os.cpu_count()
    hosts = ("replayed their first real probe (--replay)" if args.replay
             else "ran the real probe")
    print(f"\n{len(samples)} cells, median of {args.repeat} by wall; {cpus} CPUs shared by the "
          f"controller and every host's sshd; the hosts {hosts}; pyinfra's default --parallel "
          f"here is min(20 x {cpus}, N)")
    print(table(samples))
    text, rows = marginal(samples)
    print("\nmarginal cost per host ((cost(N) - cost(1)) / (N - 1)):\n" + text)
    print("\n" + parse_cost())
    if args.json:
        args.keep_dir.mkdir(parents=True, exist_ok=True)
        path = args.keep_dir / f"scale-{time.strftime('%Y%m%dT%H%M%S')}.json"
        path.write_text(json.dumps({"samples": [s.__dict__ for s in samples],
                                    "marginal": rows}, indent=1))
        print(f"samples: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
