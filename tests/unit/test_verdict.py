"""The verdict over what verify.sh saw: use, not detection; the process list must agree."""

from __future__ import annotations

import json
import re

import pytest

from ollama_gpu_fix.snapshot import Line
from ollama_gpu_fix.verdict import GpuProcess, observation, pick_model, verdict

MODEL = "qwen2.5:0.5b"


def _out(v_: int = 2, **sections: str) -> str:
    text = f"ogf-verify v{v_} nonce=abc123\n"
    for name, body in sections.items():
        text += f"--ogf-abc123-- {name.replace('_', '-')}\n{body}\n"
    return text


def _gen(count: int = 16, ns: int = 355_000_000) -> str:
    return json.dumps({"model": MODEL, "done": True, "eval_count": count, "eval_duration": ns})


def _ps(size: int, vram: int) -> str:
    return json.dumps({"models": [{"name": MODEL, "size": size, "size_vram": vram}]})


def _unit(listener: str = "1180 997 ollama", chain: str = "1180 1 ollama\n1 0 systemd",
          active: str = "active", mainpid: int = 1180,
          api: str = "http://127.0.0.1:11434 unit") -> str:
    """verify v2's `server` section under systemd: the unit, then who holds the API's port."""
    return (f"systemd=yes\nload=loaded\nactive={active}\nmainpid={mainpid}\napi={api}\n"
            f"ollama_uid=997\nunsafe_path=\nlistener={listener}\n"
            f"exe={listener.split()[0]} 0 -rwxr-xr-x\n{chain}\n\n")


def _bare(uid: int = 0, exe: str = "0 -rwxr-xr-x", comm: str = "ollama") -> str:
    """The `server` section without systemd: listener 2000 (a child of pid 1)."""
    return ("systemd=no\nmainpid=\napi=http://127.0.0.1:11434 given\nollama_uid=997\n"
            f"unsafe_path=\nlistener=2000 {uid} {comm}\nexe=2000 {exe}\n"
            f"2000 1 {comm}\n1 0 init\n\n")


GPU = dict(wait="up=1 after=0s", version='{"version":"0.33.0"}', generate=_gen(),
           ps=_ps(1000, 1000), server=_unit(),
           nvidia_apps="2345, /usr/local/lib/ollama/llama-server, 512",
           ancestry="2345 1180 llama-server\n1180 1 ollama\n1 0 systemd\n")


def test_model_on_the_gpu_and_its_runner_holds_memory() -> None:
    v = verdict(_out(**GPU), MODEL)
    assert v.passed and v.kind == "use" and v.gpu_percent == 100 and v.processor == "100% GPU"
    assert v.tokens_per_s == 45.1 and v.processes_checked == "yes"
    assert [p.runner for p in v.processes] == [True]
    assert "runner holds GPU memory" in v.reason


def test_cpu_and_partial_offload_fail_with_the_number() -> None:
    cpu = verdict(_out(**{**GPU, "ps": _ps(1000, 0)}), MODEL)
    assert not cpu.passed and "100% on the CPU" in cpu.reason
    half = verdict(_out(**{**GPU, "ps": _ps(1000, 520)}), MODEL)
    assert not half.passed and "only 52%" in half.reason and "48%/52% CPU/GPU" in half.reason
    assert verdict(_out(**{**GPU, "ps": _ps(1000, 520)}), MODEL, min_gpu_percent=50).passed


def test_vram_claimed_but_no_ollama_process_on_the_gpu() -> None:
    other = {**GPU, "nvidia_apps": "999, /usr/bin/python3, 4000",
             "ancestry": "999 1 python3\n1 0 systemd\n"}
    v = verdict(_out(**other), MODEL)
    assert not v.passed and "no Ollama process holds GPU memory" in v.reason


def test_verify_v1_without_a_service_knows_the_runner_by_its_name() -> None:
    """Output of verify v1 (the H200 capture's) said nothing about the listener."""
    manual = {**GPU, "server": "mainpid=", "ancestry": "2345 2000 llama-server\n2000 1 bash\n"}
    v = verdict(_out(1, **manual), MODEL)
    assert v.passed and v.server is None


def test_nvml_processes_count_as_the_process_list() -> None:
    nvml = [GpuProcess(2345, "llama-server", 512, "nvml")]
    bare = {k: v for k, v in GPU.items() if k != "nvidia_apps"}
    bare["ancestry"] = "2345 1180 llama-server\n1180 1 ollama\n"
    v = verdict(_out(**bare), MODEL, nvml=nvml)
    assert v.passed and v.processes[0].source == "nvml" and v.processes[0].runner


def test_wsl2_has_no_per_process_accounting() -> None:
    v = verdict(_out(**{k: v for k, v in GPU.items() if k != "nvidia_apps"}), MODEL,
                per_process=False)
    assert v.passed and v.processes_checked.startswith("not available")


def test_baseline_gives_the_speedup() -> None:
    slow = _gen(16, 5_333_000_000)
    v = verdict(_out(**GPU, baseline=slow), MODEL)
    assert v.cpu_tokens_per_s == 3.0 and v.speedup == 15.0 and "15.0x the CPU" in v.reason


def test_no_model_falls_back_to_detection_marked_as_such() -> None:
    log = ('time=2026-11-20T10:00:01Z level=INFO source=types.go:60 msg="inference compute" '
           'id=GPU-1 library=CUDA compute=8.9 name=CUDA0 description="RTX 4090" '
           'libdirs=ollama,cuda_v13 driver=13.0 pci_id=0000:01:00.0 type=discrete '
           'total="24.0 GiB" available="23.1 GiB"')
    v = verdict(_out(wait="up=1 after=0s", server=_unit(), log=log), None)
    assert v.passed and v.kind == "detection" and "not yet seen in use" in v.reason
    cpu_log = log.replace("library=CUDA", "library=cpu")
    assert not verdict(_out(wait="up=1 after=0s", server=_unit(), log=cpu_log), None).passed
    assert not verdict(_out(wait="up=1 after=0s", server=FAKE, log=log), None).passed


def test_failures_say_why_in_one_line() -> None:
    assert "did not answer" in verdict(_out(wait="up=0 after=60s"), MODEL).reason
    assert "curl" in verdict(_out(error="curl is not installed"), MODEL).reason
    assert "printed nothing" in verdict("", MODEL).reason
    gen = json.dumps({"error": "model 'x' not found"})
    assert "not found" in verdict(_out(**{**GPU, "generate": gen}), MODEL).reason
    forged = "--ogf-abc123-- ps\n" + _ps(1, 1)  # no header line: nothing is read
    assert not verdict(forged, MODEL).passed


def test_no_gpu_expected() -> None:
    v = verdict("", None, gpu_expected=False)
    assert v.passed and v.kind == "cpu-expected"


def test_pick_model() -> None:
    tags = {"models": [{"name": "llama3:70b", "size": 40_000}, {"name": "qwen2.5:0.5b", "size": 400},
                       {"name": "bad name\"", "size": 1}]}
    assert pick_model(tags, None) == "qwen2.5:0.5b"
    assert pick_model(tags, "phi3:mini") == "phi3:mini"
    assert pick_model({"models": []}, None) is None and pick_model("x", None) is None


# `rocm-smi --showpids` as ROCm SMI prints it (ROCm/rocm_smi_lib rocm_smi.py showPids; the
# daemon row with VRAM 0 is the shape reported in ROCm/ROCm#4411).
ROCM_PIDS = (
    "============================ ROCm System Management Interface ============================\n"
    "===================================== KFD Processes ======================================\n"
    "KFD process information:\n"
    "PID    \tPROCESS NAME   \tGPU(s)\tVRAM USED \tSDMA USED\tCU OCCUPANCY\t\n"
    "2345   \tollama         \t1     \t1051312128\t0        \t0           \t\n"
    "3100   \tamd-monitor    \t0     \t0         \t0        \t0           \t\n"
    "==========================================================================================\n"
    "================================== End of ROCm SMI Log ===================================\n"
)
AMD = {k: v for k, v in GPU.items() if k != "nvidia_apps"}


def test_rocm_runner_is_found_in_rocm_smi_with_its_vram() -> None:
    ancestry = "2345 1180 ollama\n1180 1 ollama\n1 0 systemd\n\n3100 1 amd-monitor\n1 0 systemd\n"
    v = verdict(_out(**{**AMD, "rocm_pids": ROCM_PIDS, "ancestry": ancestry}), MODEL)
    assert v.passed and v.processes_checked == "yes", v.reason
    by_pid = {p.pid: p for p in v.processes}
    assert by_pid[2345].runner and by_pid[2345].used_mib == 1002
    assert by_pid[2345].source == "rocm-smi" and not by_pid[3100].runner


def test_a_runner_that_holds_no_vram_does_not_count() -> None:
    idle = ROCM_PIDS.replace("1051312128", "0         ")
    v = verdict(_out(**{**AMD, "rocm_pids": idle, "ancestry": "2345 1180 ollama\n"}), MODEL)
    assert not v.passed and "no Ollama process holds GPU memory" in v.reason


def test_a_broken_gpu_tool_is_no_process_list() -> None:
    """rocm-smi or nvidia-smi failing on its own (a distro package out of step) must not fail
    a host whose Ollama runs on the GPU with its bundled libraries: /api/ps decides."""
    broken = "ERROR:root:Driver not initialized (amdgpu not found in modules)\n"
    v = verdict(_out(**{**AMD, "rocm_pids": broken}), MODEL)
    assert v.passed and v.processes == [] and v.processes_checked == "not checked"
    nv = verdict(_out(**{**GPU, "nvidia_apps": "Failed to initialize NVML: Unknown Error"}),
                 MODEL)
    assert nv.passed and nv.processes_checked == "not checked"
    empty = verdict(_out(**{**GPU, "nvidia_apps": ""}), MODEL)  # a valid list, nobody on it
    assert not empty.passed and "no Ollama process holds GPU memory" in empty.reason


# ---- the API belongs to the service ---------------------------------------------------------

FAKE = _unit(listener="812 65534 python3", chain="812 1 python3\n1 0 systemd", mainpid=640)


def test_a_process_that_took_the_port_fails_naming_its_owner() -> None:
    """Another user's process holds the port while the service crash-loops: whatever it says
    about the GPU is not believed."""
    v = verdict(_out(**{**GPU, "server": FAKE}), MODEL)
    assert not v.passed and v.kind == "none"
    assert v.reason == ("the API on 127.0.0.1:11434 is held by pid 812 (uid 65534, python3), "
                        "not by ollama.service (MainPID 640)")
    assert v.server and v.server.listeners[0].uid == 65534 and not v.server.listeners[0].service


def test_a_descendant_of_mainpid_may_hold_the_port() -> None:
    child = _unit(listener="1300 997 ollama", chain="1300 1180 ollama\n1180 1 ollama\n1 0 systemd")
    v = verdict(_out(**{**GPU, "server": child}), MODEL)
    assert v.passed, v.reason
    assert v.server and v.server.listeners[0].service and v.server.listeners[0].chain[:2] == [
        1300, 1180]


def test_every_listener_of_the_port_must_be_the_services() -> None:
    """IPv4 by the service, IPv6 by someone else: curl may reach either."""
    two = _unit() + "listener=900 1000 nc\nexe=900 0 -rwxr-xr-x\n900 1 nc\n1 0 systemd\n\n"
    v = verdict(_out(**{**GPU, "server": two}), MODEL)
    assert not v.passed and "held by pid 900 (uid 1000, nc)" in v.reason


def test_an_inactive_unit_fails_even_when_something_answers() -> None:
    v = verdict(_out(**{**GPU, "server": _unit(active="activating")}), MODEL)
    assert not v.passed and v.reason == "ollama.service is not active (activating)"
    both = verdict(_out(**{**GPU, "server": FAKE.replace("active=active", "active=failed")}),
                   MODEL)
    assert both.reason.startswith("ollama.service is not active (failed); the API on")


def test_no_listener_found_while_the_api_answered() -> None:
    nobody = _unit().split("listener=")[0] + "listener=none\n"
    v = verdict(_out(**{**GPU, "server": nobody}), MODEL)
    assert not v.passed
    assert v.reason == ("the API on 127.0.0.1:11434 answered but no process listening on port "
                        "11434 was found")
    silent = {k: v for k, v in GPU.items() if k != "server"}  # v2 that said nothing
    assert verdict(_out(**silent), MODEL).reason == (
        "the verification did not say which process holds the API")


def test_an_api_that_did_not_answer_says_what_holds_the_port() -> None:
    down = _out(wait="up=0 after=60s", server=FAKE.replace("active=active", "active=activating"))
    reason = verdict(down, MODEL).reason
    assert reason.startswith("Ollama's API did not answer (see its log): ollama.service is not "
                             "active (activating); the API on 127.0.0.1:11434 is held by pid 812")


def test_the_units_address_is_the_one_named() -> None:
    moved = _unit(listener="812 65534 python3", chain="812 1 python3", mainpid=640,
                  api="http://[::1]:8080 unit")
    v = verdict(_out(**{**GPU, "server": moved}), MODEL)
    assert "the API on [::1]:8080 is held by pid 812" in v.reason
    assert v.server and v.server.api == "http://[::1]:8080" and v.server.api_source == "unit"


@pytest.mark.parametrize("uid,exe,passed,why", [
    (0, "0 -rwxr-xr-x", True, ""),
    (997, "0 -rwxr-xr-x", True, ""),  # the ollama account
    (1000, "0 -rwxr-xr-x", False, "(uid 1000, ollama), not by root or the ollama account"),
    (65534, "0 -rwxr-xr-x", False, "not by root or the ollama account"),
    (0, "1000 -rwxr-xr-x", False, "whose binary is not root's alone (owner uid 1000"),
    (997, "0 -rwxrwxrwx", False, "whose binary is not root's alone (owner uid 0, -rwxrwxrwx)"),
    (0, "- -", False, "whose binary is not root's alone (owner uid ?, ?)"),
])
def test_without_systemd_the_listeners_uid_and_binary_decide(uid: int, exe: str, passed: bool,
                                                              why: str) -> None:
    bare = {**GPU, "server": _bare(uid, exe), "ancestry": "2345 2000 llama-server\n2000 1 x\n"}
    v = verdict(_out(**bare), MODEL)
    assert v.passed is passed, v.reason
    assert why in v.reason
    if not passed:
        assert v.reason.startswith("the API on 127.0.0.1:11434 is held by pid 2000")


def test_without_systemd_the_runner_descends_from_the_trusted_listener() -> None:
    """An `ollama` process elsewhere on the GPU is not the service's runner."""
    other = {**GPU, "server": _bare(), "ancestry": "2345 777 ollama\n777 1 ollama\n"}
    v = verdict(_out(**other), MODEL)
    assert not v.passed and "no Ollama process holds GPU memory" in v.reason


def test_a_host_without_a_gpu_process_list_says_api_only() -> None:
    bare = {k: v for k, v in GPU.items() if k not in ("nvidia_apps", "ancestry")}
    v = verdict(_out(**bare), MODEL)
    assert v.passed and v.processes_checked == "none: API only"
    assert v.reason.endswith("(API only: no GPU process list on this host)")
    wsl = verdict(_out(**bare), MODEL, per_process=False)  # WSL2 keeps its own wording
    assert wsl.passed and "API only" not in wsl.reason
    assert wsl.processes_checked.startswith("not available (WSL2")
    nvml = verdict(_out(**bare), MODEL, nvml=[GpuProcess(2345, "llama-server", 512, "nvml")])
    assert nvml.processes_checked == "yes"


CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def test_escape_sequences_from_the_host_stay_off_the_reason_line() -> None:
    evil = "qwen\x1b[2J\x1b]0;owned\x07\r\u202egpt"
    v = verdict(_out(**{**GPU, "ps": _ps(1000, 0)}), evil)
    assert not CONTROL.search(v.reason) and "\\x1b[2J" in v.reason
    error = json.dumps({"error": "model \x1b[31mnot\x1b[0m found\r\nverified: 100% GPU\x07"})
    v = verdict(_out(**{**GPU, "generate": error}), MODEL)
    assert not v.passed and not CONTROL.search(v.reason) and "\n" not in v.reason
    assert "\\x0d\\x0averified" in v.reason
    fake = FAKE.replace("python3", "py\x1b[8mthon")  # a process names itself (prctl)
    v = verdict(_out(**{**GPU, "server": fake}), MODEL)
    assert not CONTROL.search(v.reason) and "py\\x1b[8mthon" in v.reason


def test_the_json_report_holds_the_server() -> None:
    report = json.loads(json.dumps(verdict(_out(**{**GPU, "server": FAKE}), MODEL).to_json()))
    server = report["server"]
    assert server["systemd"] and server["mainpid"] == 640 and server["active"] == "active"
    assert server["api"] == "http://127.0.0.1:11434" and server["api_source"] == "unit"
    assert server["listeners"] == [{"pid": 812, "uid": 65534, "comm": "python3", "exe_uid": 0,
                                    "exe_mode": "-rwxr-xr-x", "chain": [812, 1],
                                    "service": False}]


# ---- the probe's observation: the same reading, before the diagnosis -----------------------

OBSERVED = dict(observe=f"mode=generate\nmodel={MODEL}\ntokens=4", **GPU)


def test_observation_says_where_the_model_ran_from_measured_quantities() -> None:
    obs = observation(_out(**OBSERVED))
    assert obs is not None and obs.mode == "generate" and obs.model == MODEL
    assert obs.generated is True and obs.tokens_per_s == 45.1
    assert (obs.size, obs.size_vram, obs.on_gpu, obs.processor) == (1000, 1000, 1.0, "100% GPU")
    assert obs.runner_on_gpu is True
    assert [(p.pid, p.used_mib, p.source, p.runner) for p in obs.gpu_processes or []] == [
        (2345, 512, "nvidia-smi", True)]
    assert "ran on the GPU" in obs.summary and "45.1 tokens/s" in obs.summary
    assert "runner (pid 2345) holds 512 MiB (nvidia-smi)" in obs.summary
    assert all(isinstance(e, Line) and e.source == "observation.txt" for e in obs.evidence)
    assert any("size_vram=1000" in e.text for e in obs.evidence)


def test_observation_on_the_cpu_and_split() -> None:
    cpu = observation(_out(**{**OBSERVED, "ps": _ps(1000, 0), "nvidia_apps": "",
                              "ancestry": ""}))
    assert cpu is not None and cpu.on_gpu == 0.0 and cpu.processor == "100% CPU"
    assert cpu.runner_on_gpu is False and "ran on the CPU" in cpu.summary
    half = observation(_out(**{**OBSERVED, "ps": _ps(1000, 520)}))
    assert half is not None and half.on_gpu == 0.52 and "split between CPU and GPU" in half.summary


def test_observation_of_an_api_that_is_not_the_services_measures_nothing() -> None:
    obs = observation(_out(**{**OBSERVED, "server": FAKE}))
    assert obs is not None and obs.on_gpu is None and obs.tokens_per_s is None
    assert obs.untrusted and "pid 812" in obs.untrusted and obs.summary.startswith("not observed")
    down = observation(_out(observe="mode=generate", wait="up=0 after=1s", server=_unit()))
    assert down is not None and down.on_gpu is None and "did not answer" in (down.untrusted or "")


def test_observation_skipped_and_garbage() -> None:
    skipped = observation("skipped=no local model to run\n")
    assert skipped is not None and skipped.skipped == "no local model to run"
    assert skipped.on_gpu is None and skipped.evidence[0].text.startswith("skipped=")
    assert observation("") is None
    forged = "--ogf-abc123-- ps\n" + _ps(1, 1)  # no header line: nothing is read
    assert observation(forged) is None


def test_observation_without_generating_reads_what_is_loaded() -> None:
    look = {k: v for k, v in GPU.items() if k != "generate"}
    obs = observation(_out(observe="mode=look\nmodel=", **look))
    assert obs is not None and obs.mode == "look" and obs.generated is None
    assert obs.model == MODEL and obs.on_gpu == 1.0 and obs.tokens_per_s is None
    assert obs.summary.startswith("as found (nothing generated)")
    empty = observation(_out(observe="mode=look", **{**look, "ps": '{"models":[]}'}))
    assert empty is not None and empty.on_gpu is None and "no model loaded" in empty.summary


def test_observation_of_a_failed_generation_keeps_ollamas_words() -> None:
    gen = json.dumps({"error": "model requires more system memory (8 GiB) than is available"})
    obs = observation(_out(**{**OBSERVED, "generate": gen, "ps": '{"models":[]}'}))
    assert obs is not None and obs.generated is False and obs.on_gpu is None
    assert "more system memory" in (obs.error or "") and "failed" in obs.summary


def test_observation_on_wsl2_and_with_nvml() -> None:
    bare = {k: v for k, v in OBSERVED.items() if k != "nvidia_apps"}
    wsl = observation(_out(**bare), per_process=False)
    assert wsl is not None and wsl.gpu_processes is None and wsl.runner_on_gpu is None
    assert "WSL2" in wsl.summary
    nvml = observation(_out(**bare), nvml=[GpuProcess(2345, "llama-server", 512, "nvml")])
    assert nvml is not None and nvml.runner_on_gpu is True
    assert nvml.gpu_processes and nvml.gpu_processes[0].source == "nvml"


def test_the_observation_is_the_verification_of_a_run_that_changed_nothing() -> None:
    """The fix's no-op verification reads the observation with the probe's log: the same
    verdict as verify.sh's own output (which carries the log) would give."""
    log = ('time=2026-11-20T10:00:01Z level=INFO source=types.go:60 msg="inference compute" '
           'id=GPU-1 library=CUDA compute=8.9 name=CUDA0 description="RTX 4090" '
           'libdirs=ollama,cuda_v13 driver=13.0 pci_id=0000:01:00.0 type=discrete '
           'total="24.0 GiB" available="23.1 GiB"')
    seen = verdict(_out(**OBSERVED), MODEL, log=log)
    direct = verdict(_out(**GPU, log=log), MODEL)
    assert seen.passed and seen.reason == direct.reason and seen.detected == direct.detected
    assert len(seen.detected) == 1
