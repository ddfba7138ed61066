"""Hostile inputs against the probe, `collect` and `diagnose-bundle`, each measured.

Every attack builds what another local user, an HTTP client of Ollama or a pasted log could
put in front of the tool, runs the real command (the CLI, or the probe as root in a private
mount namespace), and returns an `Outcome`: whether the attack got what it wanted, plus wall
time, peak RSS and exit code. tests/hostile/ asserts each one fails; bench/hostile.py prints
the figures (issue 6 asks for them before and after).

The local-user attacks need root (a private mount namespace with tmpfs over /home, /root and
/etc/systemd/system, and `setpriv` to act as an unprivileged uid that has no passwd entry);
nothing outside the namespace is touched.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "cases"
ATTACKER_UID = 4242  # no passwd entry: an ordinary local user nobody configured
SYSTEM_PYTHON = "/usr/bin/python3"  # readable by any uid (the venv's may live under /root)


@dataclass
class Outcome:
    attack: str
    succeeded: bool  # the attacker got what they wanted
    detail: str
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    exit_code: int | None = None
    extra: dict = field(default_factory=dict)

    def row(self) -> str:
        verdict = "ATTACK WORKS" if self.succeeded else "blocked"
        return (f"{self.attack:<34} {verdict:<13} {self.seconds:8.2f}s {self.peak_rss_mb:8.1f} MB"
                f"  exit {self.exit_code!s:<4} {self.detail}")


@dataclass
class Run:
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mb: float
    timed_out: bool


def run_measured(argv: list[str], timeout: float = 120, env: dict | None = None,
                 cwd: Path | None = None) -> Run:
    """Run a command; wall time and the child's own peak RSS (wait4, not the whole tree)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                            env=full_env, cwd=cwd or ROOT, start_new_session=True)
    timed_out = False
    rusage = None
    status = 0
    deadline = t0 + timeout
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            pid, status, rusage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.02)
    seconds = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    err.seek(0)
    rss = rusage.ru_maxrss / 1024 if rusage else 0.0
    return Run(None if timed_out else proc.returncode, out.read().decode(errors="replace"),
               err.read().decode(errors="replace"), seconds, rss, timed_out)


def cli(*args: str, timeout: float = 120, env: dict | None = None, cwd: Path | None = None) -> Run:
    return run_measured([sys.executable, "-m", "ollama_gpu_fix.cli", *args], timeout, env, cwd)


def outcome(name: str, run: Run, succeeded: bool, detail: str, **extra) -> Outcome:
    if run.timed_out:
        detail = f"killed after {run.seconds:.0f}s; " + detail
    return Outcome(name, succeeded, detail, run.seconds, run.peak_rss_mb, run.returncode, extra)


def can_use_namespaces() -> str:
    """'' when the local-user attacks can run here, else why not."""
    if os.geteuid() != 0:
        return "needs root (private mount namespace, another uid)"
    for tool in ("unshare", "setpriv"):
        if not shutil.which(tool):
            return f"needs {tool}"
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"needs {SYSTEM_PYTHON}"
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"],
                           capture_output=True)
    if probe.returncode != 0:
        return "no mount namespaces here: " + probe.stderr.decode(errors="replace").strip()
    return ""


# ---- the sandbox: a private view of /home, /root, /etc/systemd/system and /etc/passwd ---------

SANDBOX_SETUP = r"""
set -e
mount -t tmpfs -o mode=755 none /home
mkdir -p "$OGF_SB/rootkeep" && mount --bind /root "$OGF_SB/rootkeep"
mount -t tmpfs -o mode=700 none /root
# this machine's Python may live under /root (pyenv): keep it reachable
if [ -d "$OGF_SB/rootkeep/.pyenv" ]; then
    mkdir /root/.pyenv && mount --bind "$OGF_SB/rootkeep/.pyenv" /root/.pyenv
fi
mkdir -p /etc/systemd/system && mount -t tmpfs -o mode=755 none /etc/systemd/system
cp /etc/passwd "$OGF_SB/passwd"
echo "ollama:x:4300:4300::/home/ollama:/bin/false" >> "$OGF_SB/passwd"
mount --bind "$OGF_SB/passwd" /etc/passwd
mkdir -p /home/evil/bin /home/ollama/.ollama/logs
chown -R 4242:4242 /home/evil
chown -R 4300:4300 /home/ollama
"""


def in_sandbox(script: str, timeout: float = 120, env: dict | None = None) -> Run:
    """Run SCRIPT (sh) as root inside a private mount namespace prepared by SANDBOX_SETUP."""
    with tempfile.TemporaryDirectory(prefix="ogf-hostile-") as sb:
        full = SANDBOX_SETUP + "\n" + script
        return run_measured(["unshare", "-m", "--propagation", "private", "sh", "-c", full],
                            timeout, {"OGF_SB": sb, "OGF_PY": sys.executable, **(env or {})})


def collect_in_sandbox(setup: str, timeout: float = 120, env: dict | None = None) -> tuple[Run, dict]:
    """SETUP (as root, inside the sandbox), then `collect` as root; returns the bundle read back."""
    script = setup + r"""
"$OGF_PY" -m ollama_gpu_fix.cli collect "$OGF_SB/bundle" >"$OGF_SB/collect.out" 2>&1 || true
cd "$OGF_SB/bundle" 2>/dev/null && for f in *; do printf '@@FILE %s %s\n' "$f" "$(stat -c %a "$f")"; cat "$f"; done
"""
    run = in_sandbox(script, timeout, env)
    files: dict[str, dict] = {}
    current = None
    for line in run.stdout.splitlines():
        if line.startswith("@@FILE "):
            _, name, mode = line.split(" ", 2)
            current = files.setdefault(name, {"mode": mode, "text": ""})
        elif current is not None:
            current["text"] += line + "\n"
    return run, files


ATTACKER_SERVER = r"""
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        body = {"version": "0.33.0"} if self.path == "/api/version" else {"models": [
            {"name": "qwen2.5:0.5b", "model": "qwen2.5:0.5b", "size": 1000, "size_vram": 1000}]}
        data = json.dumps(body).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(data)))
        self.end_headers(); self.wfile.write(data)
HTTPServer(("127.0.0.1", 18434), H).serve_forever()
"""


def start_attacker_server(extra_arg: str = "") -> str:
    """Shell that starts a process named `ollama` with `serve` in its arguments, as uid 4242."""
    return (
        f"cp {SYSTEM_PYTHON} /home/evil/bin/ollama && chown 4242:4242 /home/evil/bin/ollama\n"
        f"cat > /home/evil/srv.py <<'EOF'\n{ATTACKER_SERVER}EOF\n"
        "setpriv --reuid 4242 --regid 4242 --clear-groups env -i PATH=/usr/bin:/bin "
        "CUDA_VISIBLE_DEVICES=-1 OLLAMA_LLM_LIBRARY=cpu OLLAMA_HOST=127.0.0.1:18434 "
        f"/home/evil/bin/ollama /home/evil/srv.py serve {extra_arg} &\n"
        "ATK=$!\ntrap 'kill $ATK 2>/dev/null' EXIT\n"
        "for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/18434) 2>/dev/null && break; "
        "curl -s -m 1 127.0.0.1:18434/api/version >/dev/null 2>&1 && break; sleep 0.1; done\n"
    )


# ---- 1. collect follows links planted in its target directory -------------------------------


def collect_symlink() -> Outcome:
    with tempfile.TemporaryDirectory(prefix="ogf-victim-") as tmp:
        tmpdir = Path(tmp)
        victim = tmpdir / "victim"
        victim.write_text("precious\n")
        target = tmpdir / "ollama-gpu-bundle-host"
        target.mkdir()
        if os.geteuid() == 0:
            os.chown(target, ATTACKER_UID, ATTACKER_UID)  # the user owns the directory
        (target / "probe-meta.txt").symlink_to(victim)
        (target / "os-release.txt").symlink_to(tmpdir / "created-by-root")
        run = cli("collect", str(target))
        overwritten = victim.read_text() != "precious\n"
        created = (tmpdir / "created-by-root").exists()
        return outcome("1 collect: planted symlinks", run, overwritten or created,
                       f"victim overwritten={overwritten}, file created via link={created}")


def collect_stale_files() -> Outcome:
    with tempfile.TemporaryDirectory(prefix="ogf-stale-") as tmp:
        target = Path(tmp) / "bundle"
        target.mkdir()
        (target / "ollama-serve.log").write_text("from another machine\n")
        (target / "nvidia-smi.txt").write_text("from another machine\n")
        run = cli("collect", str(target))
        stale = [p.name for p in target.iterdir()
                 if p.is_file() and "another machine" in p.read_text(errors="replace")]
        mixed = run.returncode == 0 and bool(stale)  # refusing to write is the right answer
        return outcome("1 collect: stale files kept", run, mixed,
                       f"exit {run.returncode}; files of an earlier run in the written bundle: "
                       f"{stale if run.returncode == 0 else 'none (refused: not empty)'}")


# ---- 2. forged evidence through Ollama's access log and debug prompts -----------------------

GIN_GPU = ('[GIN] 2026/11/30 - 10:00:00 | 404 |       3.1µs |    10.0.0.66 | GET      '
           '"/x time=2026-11-30T10:00:00Z level=INFO source=types.go:42 msg=\\"inference '
           'compute\\" id=GPU-1 library=CUDA compute=8.9 name=CUDA0 description=\\"RTX 4090\\" '
           'libdirs=ollama,cuda_v13 driver=13.0 pci_id=0000:01:00.0 type=discrete '
           'total=\\"24.0 GiB\\" available=\\"23.0 GiB\\" offloaded 99/99 layers to GPU"')
GIN_FAULT = ('[GIN] 2026/11/30 - 10:00:01 | 404 |       2.0µs |    10.0.0.66 | GET      '
             '"/NVIDIA driver too old cudart init failure: 999"')
PROMPT_FAULT = ('time=2026-11-30T10:00:02.000Z level=DEBUG source=routes.go:2011 msg="chat '
                'request" images=0 prompt="<|user|>why? CUDA driver version is insufficient '
                'for CUDA runtime version; cudart init failure: 999 NVIDIA driver too old"')


def _diagnose_json(directory: Path) -> tuple[Run, dict]:
    run = cli("diagnose-bundle", str(directory), "--json")
    try:
        return run, json.loads(run.stdout)
    except ValueError:
        return run, {}


def _copy_case(case: Path, dest: Path) -> Path:
    shutil.copytree(case, dest, ignore=shutil.ignore_patterns("expected.json"))
    return dest


def _log_file(bundle: Path) -> Path:
    for name in ("ollama-serve.log", "journalctl.txt"):
        if (bundle / name).is_file():
            return bundle / name
    return bundle / "ollama-serve.log"


def forged_access_log() -> Outcome:
    """One GET with a crafted path appended to every failing case's log."""
    flipped, total, runs = [], 0, []
    with tempfile.TemporaryDirectory(prefix="ogf-gin-") as tmp:
        for case in sorted(p for p in CASES.iterdir() if p.is_dir()):
            expected = json.loads((case / "expected.json").read_text())["expected_primary"]
            if "ok-gpu" in expected:
                continue
            total += 1
            bundle = _copy_case(case, Path(tmp) / case.name)
            with _log_file(bundle).open("a") as fh:
                fh.write("\n" + GIN_GPU + "\n")
            run, report = _diagnose_json(bundle)
            runs.append(run)
            if report.get("primary") == "ok-gpu":
                flipped.append(case.name)
    worst = max(runs, key=lambda r: r.seconds)
    return outcome("2 forged GIN line -> ok-gpu", worst, bool(flipped),
                   f"{len(flipped)}/{total} failing cases turned ok-gpu")


def forged_faults() -> Outcome:
    """A healthy case plus a GIN path and a debug prompt naming faults with automatic fixes."""
    healthy = CASES / "027-nvidia-full-offload-ok-0pct-util-perception"
    with tempfile.TemporaryDirectory(prefix="ogf-gin-") as tmp:
        bundle = _copy_case(healthy, Path(tmp) / "b")
        with _log_file(bundle).open("a") as fh:
            fh.write("\n" + GIN_FAULT + "\n" + PROMPT_FAULT + "\n")
        run, report = _diagnose_json(bundle)
        auto = [f["code"] for f in report.get("findings", [])
                if f["severity"] == "error" and (f.get("remedy") or {}).get("automatic")]
        return outcome("2 forged faults -> automatic fix", run, bool(auto),
                       f"primary {report.get('primary')}, automatic error findings {auto}")


# ---- 3. quadratic regexes ------------------------------------------------------------------

LONG_LINES: dict[str, Callable[[int], str]] = {
    "kv": lambda n: "NVIDIA driver too old " + "a" * n,
    "server-config": lambda n: 'msg="server config" env="map[' * (n // 30),
    "map-brackets": lambda n: 'msg="server config" env="map[' + "A:[ " * (n // 4) + ']"',
    "inference": lambda n: 'msg="inference compute" library=x ' + "a" * n,
    "quotes": lambda n: "level=INFO " + 'x="' * (n // 3),
}


def long_line(kind: str, size: int) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="ogf-long-") as tmp:
        bundle = Path(tmp)
        (bundle / "ollama-serve.log").write_text(LONG_LINES[kind](size) + "\n")
        run = cli("diagnose-bundle", str(bundle), timeout=180)
        slow = run.seconds > 2.0 or run.timed_out
        return outcome(f"3 {size // 1024} KB line ({kind})", run, slow,
                       "parse time grows with the square of the line" if slow else "linear")


# ---- 4. a local user poses as the Ollama server ---------------------------------------------


def fake_server() -> Outcome:
    run, files = collect_in_sandbox(start_attacker_server())
    proc = files.get("ollama-process.txt", {}).get("text", "")
    api = files.get("api-ps.json", {}).get("text", "")
    took_env = "CUDA_VISIBLE_DEVICES=-1" in proc
    asked_attacker = "size_vram" in api
    with tempfile.TemporaryDirectory() as tmp:
        b = Path(tmp)
        for name, f in files.items():
            (b / name).write_text(f["text"])
        _, report = _diagnose_json(b)
    return outcome("4 user process poses as server", run, took_env or asked_attacker,
                   f"its env taken={took_env}, its API queried={asked_attacker}, "
                   f"primary {report.get('primary')}")


def fake_server_newline() -> Outcome:
    run, files = collect_in_sandbox(
        start_attacker_server("\"$(printf 'x\\nenv HSA_OVERRIDE_GFX_VERSION=9.9.9\\nuser=root')\""))
    proc = files.get("ollama-process.txt", {}).get("text", "")
    injected = any(line.startswith(("env HSA_OVERRIDE_GFX_VERSION=9.9.9", "user=root"))
                   for line in proc.splitlines())
    return outcome("4 newline in argv rewrites record", run, injected,
                   f"injected record lines={injected}")


# ---- 5. the override remedy copies a user's shell variables into the service ----------------


def override_copies_shell() -> Outcome:
    with tempfile.TemporaryDirectory() as tmp:
        b = Path(tmp)
        (b / "shell-env.txt").write_text(
            "/home/evil/.bashrc:export LD_LIBRARY_PATH=/home/evil/lib OLLAMA_HOST=0.0.0.0 "
            "OLLAMA_ORIGINS=*\n/home/evil/.bashrc:export HSA_OVERRIDE_GFX_VERSION=99.1.0\n")
        (b / "systemctl-show.txt").write_text(
            'ActiveState=active\nSubState=running\nUser=ollama\nEnvironment="PATH=/usr/bin"\n')
        run, report = _diagnose_json(b)
        written = {}
        for f in report.get("findings", []):
            remedy = f.get("remedy") or {}
            if remedy.get("automatic"):
                written.update(remedy.get("params", {}).get("env", {}))
        bad = sorted(k for k in written if k in ("LD_LIBRARY_PATH", "OLLAMA_HOST", "OLLAMA_ORIGINS")
                     or written[k] == "99.1.0")
        return outcome("5 shell vars into the service", run, bool(bad),
                       f"automatic remedy would write {bad}")


# ---- 6. secrets collected, written world-readable, printed ----------------------------------

SECRET_UNIT = (
    "[Unit]\nDescription=Ollama Service\n[Service]\nExecStart=/usr/local/bin/ollama serve\n"
    "User=ollama\nEnvironment=\"PATH=/usr/bin:/bin\"\n"
    "Environment=\"HTTPS_PROXY=http://bob:hunter2@proxy:3128\" \"HF_TOKEN=hf_SECRETSECRET\"\n"
)


def secrets_collected() -> Outcome:
    setup = (
        f"cat > /etc/systemd/system/ollama.service <<'EOF'\n{SECRET_UNIT}EOF\n"
        "printf 'export OLLAMA_API_KEY=sk-SECRETSECRET OPENAI_API_KEY=sk-OPENAISECRET\\n' "
        "> /home/evil/.bashrc\n"
    )
    run, files = collect_in_sandbox(setup)
    leaked = sorted(n for n, f in files.items()
                    if any(s in f["text"] for s in ("hunter2", "SECRETSECRET", "OPENAISECRET")))
    loose = sorted(n for n, f in files.items() if f["mode"] not in ("600", "400"))
    return outcome("6 secrets in the bundle", run, bool(leaked or loose),
                   f"secret values in {leaked}; files readable by others: {len(loose)}")


def secrets_printed() -> Outcome:
    with tempfile.TemporaryDirectory() as tmp:
        b = Path(tmp)
        (b / "systemctl-cat.txt").write_text("# /etc/systemd/system/ollama.service\n" + SECRET_UNIT)
        (b / "ollama-serve.log").write_text(
            'time=2026-11-30T10:00:00Z level=INFO source=routes.go:1554 msg="server config" '
            'env="map[CUDA_VISIBLE_DEVICES:-1 HTTPS_PROXY:http://bob:hunter2@proxy:3128 '
            'HF_TOKEN:hf_SECRETSECRET OLLAMA_HOST:http://127.0.0.1:11434]"\n')
        run = cli("diagnose-bundle", str(b))
        jrun, report = _diagnose_json(b)
        text_leak = "hunter2" in run.stdout or "SECRETSECRET" in run.stdout
        json_leak = "hunter2" in jrun.stdout or "SECRETSECRET" in jrun.stdout
        return outcome("6 secrets in the report", run, text_leak or json_leak,
                       f"in text report={text_leak}, in JSON={json_leak}")


# ---- 7. the probe follows links while reading as root ---------------------------------------


def probe_follows_links() -> Outcome:
    setup = (
        "printf 'export OLLAMA_ROOT_ONLY=root-history-line\\n' > /root/.bash_history\n"
        "chmod 600 /root/.bash_history\n"
        "setpriv --reuid 4242 --regid 4242 --clear-groups ln -s /root/.bash_history "
        "/home/evil/.bashrc\n"
        "printf 'root:$6$SHADOWHASH:19000:0:99999:7:::\\n' > /root/shadow-like\n"
        "chmod 600 /root/shadow-like\n"
        "setpriv --reuid 4300 --regid 4300 --clear-groups ln -s /root/shadow-like "
        "/home/ollama/.ollama/logs/server.log\n"
    )
    run, files = collect_in_sandbox(setup)
    leaked = sorted(n for n, f in files.items()
                    if "root-history-line" in f["text"] or "SHADOWHASH" in f["text"])
    return outcome("7 probe follows planted links", run, bool(leaked),
                   f"root-only content in {leaked}")


# ---- 8. a local user stalls the probe -------------------------------------------------------


def sparse_bashrc(size_mib: int = 64) -> Outcome:
    """12 minutes per GiB before the fix; a bounded read takes the same time for any size."""
    setup = (f"truncate -s {size_mib}M /home/evil/.bashrc && chown 4242:4242 /home/evil/.bashrc\n")
    run, files = collect_in_sandbox(setup, timeout=300)
    return outcome(f"8 sparse {size_mib} MiB ~/.bashrc", run, run.seconds > 10,
                   f"collect took {run.seconds:.1f}s")


def collect_timeout_message() -> Outcome:
    with tempfile.TemporaryDirectory() as tmp:
        bindir = Path(tmp) / "bin"
        bindir.mkdir()
        (bindir / "lspci").write_text("#!/bin/sh\nsleep 8\n")
        (bindir / "lspci").chmod(0o755)
        run = cli("collect", str(Path(tmp) / "b"), timeout=60,
                  env={"PATH": f"{bindir}:{os.environ.get('PATH', '')}",
                       "OLLAMA_GPU_FIX_PROBE_TIMEOUT": "2"})
        lines = run.stderr.strip().splitlines()
        return outcome("8 collect timeout message", run,
                       len(lines) != 1 or len(run.stderr) > 300 or run.returncode != 2,
                       f"stderr {len(run.stderr)} bytes in {len(lines)} lines (exit {run.returncode})")


# ---- 9. diagnose-bundle has no bound on the whole --------------------------------------------


def hardlinked_copies(count: int = 500, size_mib: int = 4) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="ogf-links-") as tmp:
        b = Path(tmp)
        line = b'time=2026-11-30T10:00:00Z level=INFO source=x.go:1 msg="gpu" library=cuda\n'
        first = b / "log-0000.log"
        with first.open("wb") as fh:
            for _ in range(size_mib * 1024 * 1024 // len(line)):
                fh.write(line)
        for i in range(1, count):
            os.link(first, b / f"log-{i:04d}.log")
        run = cli("diagnose-bundle", str(b), timeout=300)
        return outcome(f"9 {count} hard-linked {size_mib} MiB logs", run,
                       run.peak_rss_mb > 512 or run.timed_out,
                       f"peak RSS {run.peak_rss_mb:.0f} MB")


# ---- 10. terminal injection -----------------------------------------------------------------


def terminal_injection() -> Outcome:
    with tempfile.TemporaryDirectory() as tmp:
        b = Path(tmp)
        (b / "nvidia-smi.txt").write_text(
            "Failed to initialize NVML: \x1b[2K\r\x1b[1APrimary:   ok-gpu\x1b[8m hidden\n")
        (b / "evil\x1b[31m\rname.log").write_text(
            "time=x level=ERROR source=a.go:1 msg=\"NVIDIA driver too old\x1b]0;owned\x07\"\n")
        run = cli("diagnose-bundle", str(b))
        raw = [c for c in ("\x1b", "\r", "\x07") if c in run.stdout]
        return outcome("10 escapes in text output", run, bool(raw),
                       f"raw control characters printed: {[hex(ord(c)) for c in raw]}")


# ---- beyond the list -------------------------------------------------------------


def fifo_in_bundle() -> Outcome:
    """A named pipe called ollama-serve.log: opening it blocks until someone writes."""
    with tempfile.TemporaryDirectory() as tmp:
        b = Path(tmp)
        os.mkfifo(b / "ollama-serve.log")
        (b / "nvidia-smi.txt").write_text("NVIDIA-SMI has failed\n")
        run = cli("diagnose-bundle", str(b), timeout=20)
        return outcome("+ FIFO in the bundle", run, run.timed_out or run.returncode != 0,
                       f"exit {run.returncode}, output {len(run.stdout)} bytes")


def device_link_in_bundle() -> Outcome:
    """A bundle file that is a link to a device or to a file outside the bundle."""
    with tempfile.TemporaryDirectory() as tmp:
        b = Path(tmp)
        (b / "zero.log").symlink_to("/dev/zero")
        (b / "ollama-serve.log").symlink_to("/etc/passwd")
        run = cli("diagnose-bundle", str(b), "--json", timeout=60)
        followed = "root:x:0:0" in run.stdout or run.peak_rss_mb > 200 or run.timed_out
        return outcome("+ links to /dev/zero, /etc/passwd", run, followed,
                       f"followed={followed}")


def many_files() -> Outcome:
    with tempfile.TemporaryDirectory() as tmp:
        b = Path(tmp)
        for i in range(20000):
            (b / f"f{i:05d}.txt").write_text("x\n")
        run = cli("diagnose-bundle", str(b), timeout=120)
        return outcome("+ 20000 files in a bundle", run, run.seconds > 10 or run.timed_out,
                       f"took {run.seconds:.1f}s")


def deep_json() -> Outcome:
    with tempfile.TemporaryDirectory() as tmp:
        b = Path(tmp)
        (b / "api-ps.json").write_text('{"models":' + "[" * 200000 + "]" * 200000 + "}")
        run = cli("diagnose-bundle", str(b), timeout=60)
        return outcome("+ 200000-deep JSON", run, run.returncode != 0 or run.timed_out,
                       f"exit {run.returncode}")


def bidi_names() -> Outcome:
    with tempfile.TemporaryDirectory() as tmp:
        b = Path(tmp)
        (b / "nvidia-smi.txt").write_text(
            "Failed to initialize NVML: Unknown \u202eupg-ko :yramirP\u202c Error\n")
        run = cli("diagnose-bundle", str(b))
        raw = "\u202e" in run.stdout
        return outcome("+ bidi override in evidence", run, raw, f"raw U+202E printed={raw}")


ALL: list[tuple[str, Callable[[], Outcome], bool]] = [
    # (name, attack, needs the sandbox)
    ("collect_symlink", collect_symlink, False),
    ("collect_stale_files", collect_stale_files, False),
    ("forged_access_log", forged_access_log, False),
    ("forged_faults", forged_faults, False),
    ("long_line_kv_48k", lambda: long_line("kv", 48 * 1024), False),
    ("long_line_kv_96k", lambda: long_line("kv", 96 * 1024), False),
    ("long_line_server_config", lambda: long_line("server-config", 192 * 1024), False),
    ("long_line_map", lambda: long_line("map-brackets", 192 * 1024), False),
    ("long_line_inference", lambda: long_line("inference", 96 * 1024), False),
    ("long_line_quotes", lambda: long_line("quotes", 96 * 1024), False),
    ("fake_server", fake_server, True),
    ("fake_server_newline", fake_server_newline, True),
    ("override_copies_shell", override_copies_shell, False),
    ("secrets_collected", secrets_collected, True),
    ("secrets_printed", secrets_printed, False),
    ("probe_follows_links", probe_follows_links, True),
    ("sparse_bashrc", sparse_bashrc, True),
    ("collect_timeout_message", collect_timeout_message, False),
    ("hardlinked_copies", hardlinked_copies, False),
    ("terminal_injection", terminal_injection, False),
    ("fifo_in_bundle", fifo_in_bundle, False),
    ("device_link_in_bundle", device_link_in_bundle, False),
    ("many_files", many_files, False),
    ("deep_json", deep_json, False),
    ("bidi_names", bidi_names, False),
]


def resource_limits() -> None:
    """Keep a runaway attack from taking the machine with it."""
    resource.setrlimit(resource.RLIMIT_AS, (8 * 1024**3, 8 * 1024**3))
