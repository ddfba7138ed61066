"""probe.sh behaviour: POSIX shells, missing tools, failing and hanging tools, bad bytes, no writes.

The probe runs on hosts we do not control, so these tests run the real script under dash,
busybox sh and a PATH with (almost) nothing on it, and check the stream still parses.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import pytest

from ollama_gpu_fix.bundle import SECTIONS, STREAM_HEADER, split_stream

PROBE = Path(str(resources.files("ollama_gpu_fix").joinpath("probe.sh")))
TOOLS = (
    "nvidia-smi nvcc rocminfo rocm-smi vulkaninfo mokutil lspci systemctl journalctl ollama "
    "curl wget dpkg-query rpm pacman ldconfig timeout python3 sudo"
).split()
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


def run_probe(
    shell: list[str] | None = None,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[bytes]:
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/root", **(env or {})}
    return subprocess.run(
        [*(shell or ["sh"]), str(PROBE)],
        capture_output=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def check_stream(stdout: bytes) -> dict[str, str]:
    """The stream contract: UTF-8, header first, every header names a known section."""
    text = stdout.decode("utf-8")  # strict, as pyinfra decodes
    lines = text.splitlines()
    match = STREAM_HEADER.match(lines[0])
    assert match, lines[:2]
    marker = f"--ogf-{match['nonce']}-- "
    names = [line[len(marker) :] for line in lines if line.startswith(marker)]
    assert names, "no sections"
    unknown = [n for n in names if n not in SECTIONS]
    assert not unknown, unknown
    assert len(names) == len(set(names)), "a section printed twice"
    order = [SECTIONS.index(n) for n in names]
    assert order == sorted(order), "sections out of SECTIONS order"
    sections = split_stream(lines)
    assert set(sections) == set(names)
    return sections


def meta(sections: dict[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in sections["probe-meta.txt"].splitlines():
        key, _, value = line.partition("=")
        out.setdefault(key, []).append(value)
    return out


def tool_dir(tmp_path: Path, names: list[str]) -> Path:
    """A directory holding only the named tools (symlinks to the real ones)."""
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    for name in names:
        # the real binary, not a wrapper (pyenv shims need bash and more on PATH)
        real = os.path.realpath(sys.executable) if name == "python3" else shutil.which(name)
        assert real, name
        (d / name).symlink_to(os.path.realpath(real))
    return d


def fake_tool(d: Path, name: str, body: str) -> Path:
    path = d / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


# ---- the real host ---------------------------------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
def test_probe_exits_0_and_prints_valid_sections(shell: list[str]) -> None:
    proc = run_probe(shell)
    assert proc.returncode == 0, proc.stderr
    sections = check_stream(proc.stdout)
    for name in ("probe-meta.txt", "proc-version.txt", "pci-devices.txt", "shell-env.txt"):
        assert name in sections
    m = meta(sections)
    assert m["probe"] == ["2"]
    assert m["systemd"][0] in ("yes", "no")
    assert set(TOOLS) <= {k.removeprefix("tool.") for k in m if k.startswith("tool.")}
    assert re.fullmatch(r"\d+", m["uid"][0])


def test_nonce_is_random_per_run() -> None:
    first = run_probe().stdout.split(b"\n", 1)[0]
    second = run_probe().stdout.split(b"\n", 1)[0]
    assert first != second


def test_pci_devices_format_matches_sysfs() -> None:
    sections = check_stream(run_probe().stdout)
    sysfs = sorted(p.name for p in Path("/sys/bus/pci/devices").iterdir())
    lines = sections["pci-devices.txt"].splitlines()
    assert [line.split()[0] for line in lines] == sysfs
    for line in lines:
        assert len(line.split()) == 5, line


@pytest.mark.parametrize("shell", SHELLS)
def test_syntax_is_posix(shell: list[str]) -> None:
    proc = subprocess.run([*shell, "-n", str(PROBE)], capture_output=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(not shutil.which("checkbashisms"), reason="no checkbashisms")
def test_no_bashisms() -> None:
    proc = subprocess.run(["checkbashisms", str(PROBE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="no shellcheck")
def test_shellcheck_posix() -> None:
    proc = subprocess.run(
        ["shellcheck", "-s", "sh", "-S", "warning", "-x", str(PROBE)], capture_output=True,
        text=True, cwd=PROBE.parents[1]
    )
    assert proc.returncode == 0, proc.stdout


def test_script_fits_one_argv_element() -> None:
    """pyinfra sends it as `sh -c '<script>'`: one argument, quoted; Linux caps one at 128 KiB."""
    import shlex

    from ollama_gpu_fix.deploy.facts import probe_script

    assert len(shlex.quote(probe_script())) < 100 * 1024


# ---- missing tools ---------------------------------------------------------------------------


@pytest.mark.parametrize("tools", [["sh", "cat", "ls"], ["sh"]], ids=["sh-cat-ls", "sh-only"])
def test_probe_with_every_tool_missing(tmp_path: Path, tools: list[str]) -> None:
    bindir = tool_dir(tmp_path, tools)
    proc = run_probe([str(bindir / "sh")], env={"PATH": str(bindir), "OGF_PROBE_PATH": str(bindir)})
    assert proc.returncode == 0, proc.stderr
    sections = check_stream(proc.stdout)
    m = meta(sections)
    for tool in TOOLS:
        if tool != "nvcc":  # nvcc is also looked for at /usr/local/cuda/bin/nvcc
            assert m[f"tool.{tool}"] == [""], tool
    # what needs no tool is still there: sysfs, /proc and plain files read by the shell
    for name in ("os-release.txt", "proc-version.txt", "pci-devices.txt", "shell-env.txt"):
        assert name in sections, name
    if Path("/etc/os-release").exists():
        assert sections["os-release.txt"] == Path("/etc/os-release").read_text()
    for name in ("lspci.txt", "nvidia-smi.txt", "packages.txt", "ollama-version.txt"):
        assert name not in sections, name  # not known, so not printed


# ---- failing, hanging and garbage-printing tools ---------------------------------------------


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    d = tmp_path / "fake"
    d.mkdir()
    return d


def test_failing_tools_do_not_fail_the_probe(tmp_path: Path, fake_bin: Path) -> None:
    fake_tool(
        fake_bin,
        "nvidia-smi",
        "echo 'NVIDIA-SMI has failed because it could not "
        "communicate with the NVIDIA driver.'; exit 9",
    )
    fake_tool(fake_bin, "rocminfo", "echo 'ROCk module is NOT loaded' >&2; exit 1")
    fake_tool(fake_bin, "lspci", "exit 1")
    fake_tool(fake_bin, "dmesg", "echo 'dmesg: read kernel buffer failed' >&2; exit 1")
    path = f"{fake_bin}:/usr/bin:/bin"
    proc = run_probe(env={"OGF_PROBE_PATH": path, "PATH": path})
    assert proc.returncode == 0
    sections = check_stream(proc.stdout)
    assert "could not communicate" in sections["nvidia-smi.txt"]
    assert "could not communicate" in sections["nvidia-smi-query.csv"]
    assert "ROCk module is NOT loaded" in sections["rocminfo.txt"]
    assert sections["lspci.txt"] == ""
    assert "dmesg.txt" not in sections  # dmesg refused: not known


def test_invalid_utf8_from_tools_becomes_valid_utf8(fake_bin: Path) -> None:
    fake_tool(fake_bin, "nvidia-smi", r"printf 'bad \377\376 byte \342\200\224 dash\n'")
    path = f"{fake_bin}:/usr/bin:/bin"
    proc = run_probe(env={"OGF_PROBE_PATH": path, "PATH": path})
    sections = check_stream(proc.stdout)  # strict decode inside
    assert "dash" in sections["nvidia-smi.txt"]
    assert "\u2014" in sections["nvidia-smi.txt"]  # valid UTF-8 survives


@pytest.mark.parametrize("keep", [["python3"], ["tr"], []], ids=["python3", "tr", "read-loop"])
def test_utf8_fallbacks_without_iconv(tmp_path: Path, keep: list[str]) -> None:
    bindir = tool_dir(tmp_path, ["sh", *keep])
    script = f"OGF_SHLIB_DIR={PROBE.parent} OGF_PROBE_LIB=1 . {PROBE}; printf 'ok \\377 \\342\\200\\224\\n' | ogf_utf8"
    proc = subprocess.run(
        [str(bindir / "sh"), "-c", script],
        capture_output=True,
        env={"PATH": str(bindir), "OGF_PROBE_PATH": str(bindir)},
    )
    if keep:
        out = proc.stdout.decode("utf-8")  # strict
        assert out.startswith("ok ")
    else:
        # no iconv, python3 or tr: bytes pass through as they are (documented limit)
        assert proc.stdout.startswith(b"ok ")


def test_hanging_tool_is_bounded_by_timeout(fake_bin: Path) -> None:
    fake_tool(fake_bin, "vulkaninfo", "sleep 60")
    path = f"{fake_bin}:/usr/bin:/bin"
    start = time.monotonic()
    proc = run_probe(env={"OGF_PROBE_PATH": path, "PATH": path}, timeout=50)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0
    assert elapsed < 30, elapsed
    assert "vulkaninfo.txt" in check_stream(proc.stdout)


# ---- a running `ollama serve`: process, environment, OLLAMA_HOST, API --------------------------


SERVE_API = """
import http.server, sys
body = b'{"models":[{"name":"llama3:8b","size":100,"size_vram":100}]}'
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(sys.argv[2], "a") as seen:
            seen.write(f"{self.client_address[0]} {self.path}\\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def _fake_install(tmp_path: Path, serve: str) -> Path:
    root = tmp_path / "inst"
    (root / "bin").mkdir(parents=True)
    (root / "lib" / "ollama" / "cuda_v12").mkdir(parents=True)
    (root / "lib" / "ollama" / "cuda_v12" / "libggml-cuda.so").write_text("")
    return fake_tool(
        root / "bin",
        "ollama",
        'case "$1" in\n'
        f"serve) {serve} ;;\n"
        '-v) echo "ollama version is 0.12.3 host=$OLLAMA_HOST" ;;\n'
        'ps) echo "NAME    ID    SIZE    PROCESSOR    UNTIL" ;;\n'
        "esac",
    )


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ollama_server_process_env_and_api(tmp_path: Path) -> None:
    """A fake `ollama serve` with OLLAMA_HOST=0.0.0.0:PORT whose child holds the API: the probe
    reads its /proc entry and environment and asks 127.0.0.1:PORT (never 0.0.0.0) for /api/ps."""
    port = _free_port()
    seen = tmp_path / "seen.txt"
    (tmp_path / "api.py").write_text(SERVE_API)
    ollama = _fake_install(tmp_path, f"python3 {tmp_path / 'api.py'} {port} {seen} & "
                                     "while :; do sleep 1; done")
    root = ollama.parents[1]
    env = {
        "PATH": "/usr/bin:/bin",
        "OLLAMA_HOST": f"0.0.0.0:{port}",
        "CUDA_VISIBLE_DEVICES": "-1",
        "SECRET_TOKEN": "not-for-the-probe",
    }
    serve = subprocess.Popen([str(ollama), "serve"], env=env, start_new_session=True)
    try:
        for _ in range(50):
            time.sleep(0.1)
            if _listening(port):
                break
        path = f"{root / 'bin'}:/usr/bin:/bin"
        proc = run_probe(env={"OGF_PROBE_PATH": path, "PATH": path})
    finally:
        os.killpg(serve.pid, 9)
        serve.wait()
    sections = check_stream(proc.stdout)
    records = re.split(r"^pid=", sections["ollama-process.txt"], flags=re.M)
    mine = next(r for r in records if r.startswith(f"{serve.pid}\n"))
    assert f"env OLLAMA_HOST=0.0.0.0:{port}" in mine
    assert "env CUDA_VISIBLE_DEVICES=-1" in mine
    assert "SECRET_TOKEN" not in mine
    assert "cmdline=" in mine and "serve" in mine
    assert re.search(r"^user=\S+$", mine, re.M)
    assert re.search(r"^cgroup=", mine, re.M)
    assert sections["api-ps.json"].strip() == SERVE_API.split("body = b'")[1].split("'")[0]
    assert any(s.startswith("127.0.0.1 /api/ps") for s in seen.read_text().splitlines())
    assert f"host=http://127.0.0.1:{port}" in sections["ollama-version.txt"]
    assert "NAME" in sections["ollama-ps.txt"]
    assert "api-owner=server" in sections["probe-meta.txt"]
    libs = sections["ollama-libs.txt"].splitlines()
    assert str(root / "lib" / "ollama" / "cuda_v12" / "libggml-cuda.so") in libs


def test_an_api_on_the_port_that_is_not_the_servers_is_never_asked(tmp_path: Path) -> None:
    """Issue 12: another process holds the port (another user's server, a fake, while the
    service restarts): its answers are not the service's, so the probe asks it nothing."""
    port = _free_port()
    seen = tmp_path / "seen.txt"
    (tmp_path / "api.py").write_text(SERVE_API)
    stranger = subprocess.Popen(["python3", str(tmp_path / "api.py"), str(port), str(seen)],
                                start_new_session=True)
    ollama = _fake_install(tmp_path, "while :; do sleep 1; done")
    serve = subprocess.Popen([str(ollama), "serve"], start_new_session=True,
                             env={"PATH": "/usr/bin:/bin", "OLLAMA_HOST": f"127.0.0.1:{port}"})
    try:
        for _ in range(50):
            time.sleep(0.1)
            if _listening(port):
                break
        path = f"{ollama.parent}:/usr/bin:/bin"
        proc = run_probe(env={"OGF_PROBE_PATH": path, "PATH": path})
    finally:
        for child in (serve, stranger):
            os.killpg(child.pid, 9)
            child.wait()
    sections = check_stream(proc.stdout)
    assert f"api-owner=foreign:{stranger.pid}" in sections["probe-meta.txt"]
    assert "api=skipped" in sections["probe-meta.txt"] and "api-ps.json" not in sections
    assert not seen.exists() or "/api/ps" not in seen.read_text()


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_api_host_mapping() -> None:
    cases = {
        "": "http://127.0.0.1:11434",
        "0.0.0.0": "http://127.0.0.1:11434",
        "0.0.0.0:8080": "http://127.0.0.1:8080",
        "http://0.0.0.0:11434": "http://127.0.0.1:11434",
        '"0.0.0.0:11434"': "http://127.0.0.1:11434",
        ":11434": "http://127.0.0.1:11434",
        "[::]:11434": "http://[::1]:11434",
        "myhost": "http://myhost:11434",
        "http://myhost": "http://myhost:80",
        "https://myhost": "https://myhost:443",
        "10.0.0.5:9999/x": "http://10.0.0.5:9999",
    }
    script = [f"OGF_SHLIB_DIR={PROBE.parent} OGF_PROBE_LIB=1 . {PROBE}"]
    for value in cases:
        quoted = value.replace("'", "'\\''")
        script.append(f"PROC_HOST='{quoted}'; UNIT_HOST=; ogf_api_host; echo \"$API_URL\"")
    out = subprocess.run(["sh", "-c", "\n".join(script)], capture_output=True, text=True)
    assert out.stdout.splitlines() == list(cases.values())


def test_unit_environment_host() -> None:
    script = (
        f"OGF_SHLIB_DIR={PROBE.parent} OGF_PROBE_LIB=1 . {PROBE}\n"
        "printf '%s\\n' 'Environment=PATH=/usr/bin OLLAMA_HOST=0.0.0.0:1234 X=1' | ogf_env_host\n"
        "printf '%s\\n' '[Service]' 'Environment=\"OLLAMA_HOST=0.0.0.0\"' "
        "'#Environment=\"OLLAMA_HOST=9.9.9.9\"' | ogf_env_host\n"
    )
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert out.stdout.splitlines() == ["0.0.0.0:1234", "0.0.0.0"]


# ---- read-only ---------------------------------------------------------------------------------


def test_probe_writes_nothing(tmp_path: Path) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    proc = run_probe(cwd=work, env={"HOME": str(work), "TMPDIR": str(work)})
    assert proc.returncode == 0
    assert list(work.iterdir()) == []


def test_every_redirection_goes_to_dev_null_or_a_descriptor() -> None:
    """Static check: no `>` / `>>` to a file; reads (`<`) are fine."""
    bad = []
    for number, line in enumerate(PROBE.read_text().splitlines(), 1):
        code = line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""
        code = re.sub(r"'[^']*'", "''", code)  # ignore quoted text (printf formats)
        for m in re.finditer(r"\d?>>?\s*(\S+)", code):
            target = m.group(1)
            if not (target.startswith("/dev/null") or target.startswith("&")):
                bad.append(f"{number}: {line.strip()}")
    assert not bad, bad


# ---- the observation (OGF_OBSERVE): a bounded generation, /api/ps, the process list ------------

OBSERVE_API = """
import http.server, json, sys
TAGS = {"models": [{"name": "big:70b", "model": "big:70b", "size": 40000000000, "details": {}},
                   {"name": "small:0.5b", "model": "small:0.5b", "size": 397821319,
                    "details": {"family": "qwen2"}}]}
PS = {"models": [{"name": "small:0.5b", "model": "small:0.5b", "size": 1000, "size_vram": 1000}]}
class H(http.server.BaseHTTPRequestHandler):
    def _send(self, obj):
        data = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def _seen(self, text):
        with open(sys.argv[2], "a") as seen:
            seen.write(text + "\\n")
    def do_GET(self):
        self._seen(f"GET {self.path}")
        self._send({"/api/tags": TAGS, "/api/ps": PS}.get(self.path, {"version": "0.12.3"}))
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self._seen(f"POST {self.path} {body}")
        self._send({"model": "small:0.5b", "done": True, "eval_count": 4,
                    "eval_duration": 88000000})
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def _observe_probe(tmp_path: Path, observe: str, stranger: bool = False,
                   model: str = "", assume: str = "1") -> tuple[dict[str, str], str]:
    """The probe with OGF_OBSERVE against a fake `ollama serve` whose child holds the API (or,
    STRANGER, another process holds the port): its sections and the requests the API saw."""
    port = _free_port()
    seen = tmp_path / "seen.txt"
    (tmp_path / "api.py").write_text(OBSERVE_API)
    api = f"python3 {tmp_path / 'api.py'} {port} {seen}"
    children = []
    if stranger:
        children.append(subprocess.Popen(api.split(), start_new_session=True))
        ollama = _fake_install(tmp_path, "while :; do sleep 1; done")
    else:
        ollama = _fake_install(tmp_path, f"{api} & while :; do sleep 1; done")
    children.append(subprocess.Popen([str(ollama), "serve"], start_new_session=True,
                                     env={"PATH": "/usr/bin:/bin",
                                          "OLLAMA_HOST": f"127.0.0.1:{port}"}))
    try:
        for _ in range(50):
            time.sleep(0.1)
            if _listening(port):
                break
        path = f"{ollama.parent}:/usr/bin:/bin"
        proc = run_probe(env={"OGF_PROBE_PATH": path, "PATH": path, "OGF_OBSERVE": observe,
                              "OGF_OBSERVE_MODEL": model, "OGF_OBSERVE_TOKENS": "3",
                              "OGF_OBSERVE_TIMEOUT": "20", "OGF_PROBE_ASSUME_GPU": assume})
    finally:
        for child in children:
            os.killpg(child.pid, 9)
            child.wait()
    return check_stream(proc.stdout), seen.read_text() if seen.exists() else ""


def test_observe_generates_once_with_the_smallest_model_then_reads_ps_and_the_server(
        tmp_path: Path) -> None:
    from ollama_gpu_fix.parsers import build_snapshot

    sections, seen = _observe_probe(tmp_path, "generate")
    text = sections["observation.txt"]
    assert text.startswith("ogf-verify v2 nonce=o")  # its own nonce, inside the section
    posts = [line for line in seen.splitlines() if line.startswith("POST")]
    assert len(posts) == 1 and posts[0].startswith("POST /api/generate ")
    assert '"model":"small:0.5b"' in posts[0] and '"num_predict":3' in posts[0]
    obs = build_snapshot(sections).observation
    assert obs is not None and obs.untrusted is None, obs and obs.summary
    assert obs.model == "small:0.5b" and obs.generated and obs.tokens_per_s == 45.5
    assert obs.on_gpu == 1.0 and obs.processor == "100% GPU"


def test_observe_look_generates_nothing(tmp_path: Path) -> None:
    from ollama_gpu_fix.parsers import build_snapshot

    sections, seen = _observe_probe(tmp_path, "look")
    assert "POST" not in seen and "GET /api/ps" in seen
    obs = build_snapshot(sections).observation
    assert obs is not None and obs.mode == "look" and obs.generated is None
    assert obs.model == "small:0.5b" and obs.on_gpu == 1.0


@pytest.mark.skipif(os.path.exists("/dev/nvidiactl") or os.path.exists("/dev/kfd")
                    or bool(glob.glob("/dev/dri/renderD*")), reason="this machine has a GPU")
def test_observe_without_any_gpu_device_generates_nothing(tmp_path: Path) -> None:
    from ollama_gpu_fix.parsers import build_snapshot

    pci = [Path(d, "class").read_text().strip() + ":" + Path(d, "vendor").read_text().strip()
           for d in glob.glob("/sys/bus/pci/devices/*")]
    if any(c.startswith("0x03") and c.endswith(("0x10de", "0x1002", "0x8086")) for c in pci):
        pytest.skip("this machine has a GPU on its PCI bus")
    sections, seen = _observe_probe(tmp_path, "generate", assume="")
    assert "POST" not in seen
    obs = build_snapshot(sections).observation
    assert obs is not None and obs.mode == "look" and obs.on_gpu == 1.0


def test_observe_asks_nothing_of_an_api_that_is_not_the_servers(tmp_path: Path) -> None:
    sections, seen = _observe_probe(tmp_path, "generate", stranger=True)
    assert sections["observation.txt"].startswith("skipped=")
    assert seen == ""


def test_observe_never_sends_a_model_name_outside_ollamas_characters(tmp_path: Path) -> None:
    sections, seen = _observe_probe(tmp_path, "generate", model='x","prompt":"owned')
    posts = [line for line in seen.splitlines() if line.startswith("POST")]
    assert len(posts) == 1 and '"model":"small:0.5b"' in posts[0] and "owned" not in posts[0]


def test_without_observe_the_probe_has_no_observation() -> None:
    sections = check_stream(run_probe().stdout)
    assert "observation.txt" not in sections
