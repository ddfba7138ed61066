"""verify.sh run for real: composed with shlib.sh, POSIX (dash, busybox), shellcheck clean, its
`server` section naming the process that holds the API's port, a fake curl early in PATH never
run, and the verdict over what it printed.

Ollama is not here. DOUBLE is a test double of Ollama's API (Python's http.server answering
/api/version, /api/generate, /api/ps): a thread of this test process on a free loopback port, so
verify.sh's /proc/net/tcp lookup finds this process as the listener, or the same code run as a
child process (a descendant of a given MainPID, or another user's process). This machine has no
systemd as PID 1, which is verify.sh's no-systemd branch; the systemd branch runs in a private
mount namespace holding /run/systemd/system, with a fake `systemctl` first in PATH.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import pytest

from ollama_gpu_fix.bundle import split_sections
from ollama_gpu_fix.deploy.facts import GpuVerification, verify_script
from ollama_gpu_fix.scripts import script
from ollama_gpu_fix.verdict import VERIFY_HEADER, VERIFY_SECTIONS, Verdict, verdict

PACKAGE = Path(str(resources.files("ollama_gpu_fix")))
MODEL = "qwen2.5:0.5b"
SHELLS = [
    pytest.param(["sh"], id="sh"),
    pytest.param(
        ["dash"], id="dash", marks=pytest.mark.skipif(not shutil.which("dash"), reason="no dash")
    ),
    pytest.param(
        ["busybox", "sh"],
        id="busybox",
        marks=pytest.mark.skipif(not shutil.which("busybox"), reason="no busybox"),
    ),
]
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
SYSTEM_PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

# The test double, as source: run in a thread here (serve(port) in this process) or as
# `python3 -c DOUBLE PORT` in a child process. OGF_GENERATE replaces /api/generate's answer.
DOUBLE = r'''
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "qwen2.5:0.5b"


class Handler(BaseHTTPRequestHandler):
    generate = os.environ.get("OGF_GENERATE") or json.dumps(
        {"model": MODEL, "done": True, "eval_count": 16, "eval_duration": 355000000})

    def _send(self, body):
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/api/version":
            self._send(json.dumps({"version": "0.33.0"}))
        elif self.path == "/api/ps":
            self._send(json.dumps({"models": [
                {"name": MODEL, "model": MODEL, "size": 1000, "size_vram": 1000}]}))
        else:
            self.send_error(404)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send(self.generate)

    def log_message(self, *args):
        pass


def server(port):
    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


if __name__ == "__main__":
    server(int(sys.argv[1])).serve_forever()
'''


def _double_module() -> dict:
    namespace: dict = {"__name__": "ollama_api_double"}
    exec(compile(DOUBLE, "ollama_api_double", "exec"), namespace)
    return namespace


@contextmanager
def api_in_this_process(generate: str | None = None, port: int = 0) -> Iterator[int]:
    """The double in a thread of this process: its port (this process holds the socket)."""
    module = _double_module()
    if generate is not None:
        module["Handler"].generate = generate
    httpd = module["server"](port)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def api_in_a_child(prefix: list[str] | None = None,
                   env: dict[str, str] | None = None) -> Iterator[tuple[int, int]]:
    """The double as a child process of this one (PREFIX: e.g. setpriv to another user; ENV:
    its environment): (its pid, its port) once it answers."""
    port = _free_port()
    proc = subprocess.Popen([*(prefix or []), SYSTEM_PYTHON, "-c", DOUBLE, str(port)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd="/", env=env)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("the API double did not start")
        yield proc.pid, port
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def composed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("verify") / "verify-composed.sh"
    path.write_text(script("verify"))
    return path


def run_verify(script_path: Path, port: int | None, shell: list[str] | None = None,
               path: str | None = None, systemd: bool = False,
               env: dict[str, str] | None = None) -> str:
    """verify.sh's stdout (strict UTF-8, as pyinfra decodes it), with OGF_API at PORT.
    SYSTEMD: in a private mount namespace where /run/systemd/system exists."""
    full_env = {"PATH": path or os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/root",
                "OGF_API": f"http://127.0.0.1:{port or 1}", "OGF_MODEL": MODEL,
                "OGF_TOKENS": "4", "OGF_WAIT": "5", "OGF_BASELINE": "0", "OGF_PULL": "0",
                **(env or {})}
    argv = [*(shell or ["sh"]), str(script_path)]
    if systemd:
        argv = ["unshare", "-m", "--propagation", "private", "/bin/sh", "-c",
                'mount -t tmpfs ogf /run && mkdir -p /run/systemd/system && exec "$@"', "sh",
                *argv]
    proc = subprocess.run(argv, capture_output=True, env=full_env, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode("utf-8")


def sections(output: str) -> dict[str, str]:
    return split_sections(output.splitlines(), VERIFY_HEADER, VERIFY_SECTIONS)


def server_keys(output: str) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for line in sections(output)["server"].splitlines():
        key, eq, value = line.partition("=")
        if eq:
            keys.setdefault(key, []).append(value)
    return keys


def gpu_tools_here() -> bool:
    """Would verify.sh find a GPU process list on this machine?"""
    dirs = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return (any(shutil.which(t, path=f"{os.environ.get('PATH', '')}:{dirs}")
                for t in ("nvidia-smi", "rocm-smi"))
            or os.path.isdir("/sys/class/kfd/kfd/proc"))


def check_passes_api_only(v: Verdict) -> None:
    assert v.passed, v.reason
    if not gpu_tools_here():
        assert v.processes_checked == "none: API only"
        assert v.reason.endswith("(API only: no GPU process list on this host)")


# ---- the script as it is sent ------------------------------------------------------------------


def test_the_command_is_shlib_then_verify() -> None:
    lib = (PACKAGE / "shlib.sh").read_text()
    body = (PACKAGE / "verify.sh").read_text()
    text = script("verify")
    head = body[: body.index("\n\n") + 1] if body.startswith("#!/bin/sh") else ""
    assert text.startswith("#!/bin/sh\n# ollama-gpu-fix verify")  # what it is, first
    assert text == head + lib + body[len(head):]
    assert verify_script() == text and script("verify") is text  # read once
    command = GpuVerification().command(api="http://127.0.0.1:11434", model=MODEL, tokens=4,
                                        wait=60, baseline=False, pull=False)
    assert command.endswith(text) and "export OGF_API=http://127.0.0.1:11434\n" in command
    assert len(shlex.quote(command)) < 100 * 1024  # one argv element
    with pytest.raises(ValueError):
        script("../probe")


@pytest.mark.parametrize("shell", SHELLS)
def test_syntax_is_posix(shell: list[str], composed: Path) -> None:
    for path in (composed, PACKAGE / "shlib.sh", PACKAGE / "verify.sh"):
        proc = subprocess.run([*shell, "-n", str(path)], capture_output=True)
        assert proc.returncode == 0, (path, proc.stderr)


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="no shellcheck")
def test_shellcheck_posix(composed: Path) -> None:
    for args in ([str(composed)], [str(PACKAGE / "shlib.sh")],
                 ["-x", str(PACKAGE / "verify.sh")]):
        proc = subprocess.run(["shellcheck", "-s", "sh", "-S", "warning", *args],
                              capture_output=True, text=True, cwd=PACKAGE.parent)
        assert proc.returncode == 0, proc.stdout


@pytest.mark.skipif(not shutil.which("checkbashisms"), reason="no checkbashisms")
def test_no_bashisms(composed: Path) -> None:
    proc = subprocess.run(["checkbashisms", str(composed)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---- no systemd (this machine) -----------------------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
def test_verify_names_this_process_as_the_listener(shell: list[str], composed: Path) -> None:
    with api_in_this_process() as port:
        out = run_verify(composed, port, shell)
    assert out.startswith("ogf-verify v2 nonce=")
    keys = server_keys(out)
    assert keys["systemd"] == ["no"] and keys["mainpid"] == [""]
    assert keys["api"] == [f"http://127.0.0.1:{port} given"]
    pid, uid, _comm = keys["listener"][0].split(" ", 2)
    assert (int(pid), int(uid)) == (os.getpid(), os.getuid())
    v = verdict(out, MODEL)
    assert v.server and v.server.listeners[0].chain[0] == os.getpid()
    assert v.server.listeners[0].chain[1] == os.getppid()
    if os.getuid() == 0:  # root's process, running root's python
        check_passes_api_only(v)
        assert v.server.listeners[0].service and v.server.listeners[0].exe_uid == 0


def test_verify_sh_run_on_its_own_reads_shlib_beside_it() -> None:
    """tests/fixtures/h200/capture.sh runs the file itself, not the composed text."""
    with api_in_this_process() as port:
        out = run_verify(PACKAGE / "verify.sh", port, ["dash"] if shutil.which("dash") else None)
    assert server_keys(out)["listener"][0].startswith(f"{os.getpid()} ")


@ROOT_ONLY
def test_a_fake_curl_early_in_path_never_runs(tmp_path: Path, composed: Path) -> None:
    """A directory other users can write (or another user's own) first in root's PATH, with a
    curl (and the output filters) that would forge every answer: none of them may run."""
    marker = tmp_path / "fake-ran"
    open_dir, foreign_dir = tmp_path / "world-writable", tmp_path / "nobodys"
    for d in (open_dir, foreign_dir):
        d.mkdir()
        for tool in ("curl", "tr", "iconv", "head", "timeout", "sleep", "systemctl"):
            fake = d / tool
            fake.write_text(f"#!/bin/sh\necho \"$0 $*\" >>{marker}\n"
                            "echo '{\"version\":\"forged\"}'\n")
            fake.chmod(0o755)
    open_dir.chmod(0o777)
    os.chown(foreign_dir, 65534, 65534)
    path = f"{open_dir}:{foreign_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    with api_in_this_process() as port:
        out = run_verify(composed, port, ["dash"] if shutil.which("dash") else None, path)
    assert not marker.exists(), marker.read_text()
    assert "up=1" in sections(out)["wait"] and "forged" not in out
    assert server_keys(out)["unsafe_path"] == [f"{open_dir} {foreign_dir}"]
    check_passes_api_only(verdict(out, MODEL))


@ROOT_ONLY
@pytest.mark.skipif(not shutil.which("setpriv"), reason="no setpriv")
def test_another_users_listener_fails_naming_it(composed: Path) -> None:
    """nobody's process answers on the port: 100% on the GPU, it says; not believed."""
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    with api_in_a_child(prefix) as (pid, port):
        out = run_verify(composed, port)
    v = verdict(out, MODEL)
    assert not v.passed and v.kind == "none"
    assert v.reason.startswith(f"the API on 127.0.0.1:{port} is held by pid {pid} (uid 65534, ")
    assert v.reason.endswith("not by root or the ollama account")


def test_escapes_in_an_api_error_stay_off_the_reason_line(composed: Path) -> None:
    error = json.dumps({"error": "\x1b]0;owned\x07\x1b[2J\rverified: 100% GPU\u202e"})
    with api_in_this_process(generate=error) as port:
        out = run_verify(composed, port)
    v = verdict(out, MODEL)
    if os.getuid() == 0:
        assert v.reason.startswith(f"generating with {MODEL} failed: "), v.reason
    assert not v.passed and not CONTROL.search(v.reason)


# ---- systemd (a private mount namespace and a fake systemctl) ----------------------------------


def _mount_namespaces() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "/bin/sh", "-c",
                            "mount -t tmpfs ogf /run"], capture_output=True)
    return probe.returncode == 0


SYSTEMD = pytest.mark.skipif(not _mount_namespaces(), reason="needs root and mount namespaces")


def fake_systemctl(tmp_path: Path, mainpid: int, port: int, active: str = "active") -> str:
    """A root-owned directory holding `systemctl show` for ollama.service: a PATH."""
    sbin = tmp_path / "sbin"
    sbin.mkdir(exist_ok=True)
    tool = sbin / "systemctl"
    tool.write_text(
        "#!/bin/sh\n"
        f"printf '%s\\n' MainPID={mainpid} ActiveState={active} LoadState=loaded \\\n"
        f"  'Environment=CUDA_VISIBLE_DEVICES=0 \"OLLAMA_HOST=0.0.0.0:{port}\" HOME=/x'\n"
    )
    tool.chmod(0o755)
    return f"{sbin}:{os.environ.get('PATH', '/usr/bin:/bin')}"


@SYSTEMD
def test_the_units_ollama_host_is_the_address_asked(tmp_path: Path, composed: Path) -> None:
    """OGF_API points elsewhere (a closed port): the unit's OLLAMA_HOST port is used."""
    with api_in_this_process() as port:
        path = fake_systemctl(tmp_path, os.getpid(), port)
        out = run_verify(composed, _free_port(), path=path, systemd=True)
    keys = server_keys(out)
    assert keys["systemd"] == ["yes"] and keys["active"] == ["active"]
    assert keys["api"] == [f"http://127.0.0.1:{port} unit"] and "up=1" in sections(out)["wait"]
    assert keys["mainpid"] == [str(os.getpid())]
    check_passes_api_only(verdict(out, MODEL))


@SYSTEMD
def test_the_services_own_ollama_host_comes_first(tmp_path: Path, composed: Path) -> None:
    """OLLAMA_HOST from an EnvironmentFile= is in MainPID's environment, not in Environment=
    (which names a closed port here): the process's own value is the address asked."""
    port, closed = _free_port(), _free_port()
    main = subprocess.Popen(["sleep", "60"], env={"OLLAMA_HOST": f"0.0.0.0:{port}"})
    try:
        with api_in_this_process(port=port):
            out = run_verify(composed, closed, path=fake_systemctl(tmp_path, main.pid, closed),
                             systemd=True)
    finally:
        main.kill()
        main.wait()
    assert server_keys(out)["api"] == [f"http://127.0.0.1:{port} unit"]
    assert "up=1" in sections(out)["wait"]
    v = verdict(out, MODEL)  # this process answers, not MainPID's tree
    assert not v.passed and v.reason.endswith(f"not by ollama.service (MainPID {main.pid})")


@SYSTEMD
def test_a_descendant_of_mainpid_passes_and_a_stranger_fails(tmp_path: Path,
                                                             composed: Path) -> None:
    with api_in_a_child() as (pid, port):
        out = run_verify(composed, None, path=fake_systemctl(tmp_path, os.getpid(), port),
                         systemd=True)
        check_passes_api_only(verdict(out, MODEL))  # the child of MainPID holds the port
        stranger = subprocess.Popen(["sleep", "60"])
        try:
            out = run_verify(composed, None, path=fake_systemctl(tmp_path, stranger.pid, port),
                             systemd=True)
        finally:
            stranger.kill()
            stranger.wait()
    v = verdict(out, MODEL)
    assert not v.passed and v.server and v.server.listeners[0].pid == pid
    comm = v.server.listeners[0].comm
    assert v.reason == (f"the API on 127.0.0.1:{port} is held by pid {pid} "
                        f"(uid {os.getuid()}, {comm}), not by ollama.service "
                        f"(MainPID {stranger.pid})")


@SYSTEMD
def test_an_inactive_unit_fails(tmp_path: Path, composed: Path) -> None:
    with api_in_this_process() as port:
        path = fake_systemctl(tmp_path, os.getpid(), port, active="activating")
        out = run_verify(composed, None, path=path, systemd=True)
    v = verdict(out, MODEL)
    assert not v.passed and v.reason == "ollama.service is not active (activating)"


def _listen_inode(port: int) -> int:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cells = line.split()
            if cells[1].endswith(f":{port:04X}") and cells[3] == "0A":
                return int(cells[9])
    raise AssertionError(f"nothing listens on {port}")


@SYSTEMD
def test_a_file_name_cannot_claim_the_socket_for_mainpid(tmp_path: Path, composed: Path) -> None:
    """Another process holds a file whose path reads, in an `ls -l` listing, as MainPID's fd
    directory holding the API's socket: the listener found is still the real holder."""
    opener = subprocess.Popen(  # started first: listed before the double
        [SYSTEM_PYTHON, "-c", "import os, sys, time\n"
         "os.dup2(os.open(sys.stdin.readline()[:-1].replace('\\0', '\\n'), os.O_RDONLY), 7)\n"
         "time.sleep(60)"], stdin=subprocess.PIPE, text=True)
    main = subprocess.Popen(["sleep", "60"])
    try:
        with api_in_a_child() as (pid, port):
            folder = tmp_path / f"x\n/proc/{main.pid}"
            folder.mkdir(parents=True)
            forged = folder / f"fd:\n3 -> socket:[{_listen_inode(port)}]"
            forged.write_text("")
            assert opener.stdin
            opener.stdin.write(str(forged).replace("\n", "\0") + "\n")
            opener.stdin.flush()
            for _ in range(250):
                if any(os.readlink(f"/proc/{opener.pid}/fd/{n}") == str(forged)
                       for n in os.listdir(f"/proc/{opener.pid}/fd")):
                    break
                time.sleep(0.02)
            else:
                pytest.fail("the forged file was not opened")
            out = run_verify(composed, None, path=fake_systemctl(tmp_path, main.pid, port),
                             systemd=True)
    finally:
        for proc in (opener, main):
            proc.kill()
            proc.wait()
    v = verdict(out, MODEL)
    assert v.server and [listener.pid for listener in v.server.listeners] == [pid]
    assert not v.passed and v.reason.endswith(f"(MainPID {main.pid})")
