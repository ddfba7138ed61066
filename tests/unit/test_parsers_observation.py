"""observation.txt -> Snapshot.observation: where the model ran, measured on the live host, as
the rules and the report read it (the reading itself is verdict.observation's, test_verdict)."""

from __future__ import annotations

import json

from ollama_gpu_fix import report
from ollama_gpu_fix.bundle import STREAM_HEADER, split_stream
from ollama_gpu_fix.parsers import build_snapshot
from ollama_gpu_fix.rules import diagnose
from ollama_gpu_fix.rules.context import Context
from ollama_gpu_fix.sections import SECTIONS

MODEL = "qwen2.5:0.5b"
PROC_NATIVE = "Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org) #1 SMP\n"
PROC_WSL2 = ("Linux version 5.15.153.1-microsoft-standard-WSL2 (root@941d701f84f1) (gcc (GCC)"
             " 11.2.0) #1 SMP Fri Mar 29 23:14:13 UTC 2024\n")
PCI_H100 = "0000:00:06.0 0x10de 0x2330 0x030200 nvidia\n"
SERVER = ("systemd=yes\nload=loaded\nactive=active\nmainpid=1180\n"
          "api=http://127.0.0.1:11434 unit\nollama_uid=997\nunsafe_path=\n"
          "listener=1180 997 ollama\nexe=1180 0 -rwxr-xr-x\n1180 1 ollama\n1 0 systemd\n\n")
COMPUTE = ('time=2026-11-20T10:00:01Z level=INFO source=types.go:60 msg="inference compute" '
           'id=GPU-1 library=CUDA compute=9.0 name=CUDA0 description="NVIDIA H100 80GB HBM3" '
           'libdirs=ollama,cuda_v13 driver=13.0 pci_id=0000:00:06.0 type=discrete '
           'total="79.6 GiB" available="79.1 GiB"\n')


def observed(vram: int = 1000, rate_ns: int = 88_000_000, mode: str = "generate",
             apps: str = "2345, /usr/local/lib/ollama/llama-server, 1002",
             server: str = SERVER) -> str:
    """observation.txt as the probe prints it (verify.sh's output, its own nonce)."""
    parts = {
        "observe": f"mode={mode}\nmodel={MODEL}\ntokens=4",
        "wait": "up=1 after=0s",
        "version": '{"version":"0.33.0"}',
        "generate": json.dumps({"model": MODEL, "done": True, "eval_count": 4,
                                "eval_duration": rate_ns}) if mode == "generate" else None,
        "ps": json.dumps({"models": [{"name": MODEL, "model": MODEL, "size": 1000,
                                      "size_vram": vram}]}),
        "server": server,
        "nvidia-apps": apps,
        "ancestry": "2345 1180 llama-server\n1180 1 ollama\n1 0 systemd\n",
    }
    text = "ogf-verify v2 nonce=oabc\n"
    for name, body in parts.items():
        if body is not None:
            text += f"--ogf-oabc-- {name}\n{body}\n"
    return text


def bundle(obs: str, log: str = COMPUTE, proc: str = PROC_NATIVE) -> dict[str, str]:
    return {"proc-version.txt": proc, "pci-devices.txt": PCI_H100, "ollama-serve.log": log,
            "observation.txt": obs}


def test_the_section_is_a_bundle_file_after_api_tags() -> None:
    assert SECTIONS.index("observation.txt") == SECTIONS.index("api-tags.json") + 1


def test_no_section_no_observation() -> None:
    assert build_snapshot({"proc-version.txt": PROC_NATIVE}).observation is None


def test_the_probe_stream_keeps_the_verification_inside_its_section() -> None:
    """The observation's own `--ogf-oNONCE--` markers are not the probe's: split_stream keeps
    them inside observation.txt, for the observation's reader."""
    stream = ["ogf-probe v2 nonce=abc", "--ogf-abc-- proc-version.txt", PROC_NATIVE.strip(),
              "--ogf-abc-- observation.txt", *observed().splitlines(),
              "--ogf-abc-- ollama-serve.log", COMPUTE.strip()]
    assert STREAM_HEADER.match(stream[0])
    sections = split_stream(stream)
    assert sections["observation.txt"].startswith("ogf-verify v2 nonce=oabc\n--ogf-oabc-- observe")
    obs = build_snapshot(sections).observation
    assert obs is not None and obs.on_gpu == 1.0 and obs.tokens_per_s == 45.5


def test_a_rule_reads_where_the_model_ran_before_the_log() -> None:
    snap = build_snapshot(bundle(observed()))
    ctx = Context(snap)
    assert ctx.observed_on_gpu == 1.0 and ctx.gpu_used and not ctx.cpu_fallback
    diagnosis = diagnose(snap)
    assert diagnosis.primary == "ok-gpu"
    ok = next(f for f in diagnosis.findings if f.code == "ok-gpu")
    assert ok.evidence[0].source == "observation.txt"
    assert ok.evidence[0].text.startswith(f"observed: {MODEL} ran on the GPU (100% GPU")
    assert "Ollama found a GPU and runs models on it." == ok.summary


def test_measured_cpu_outranks_a_log_that_shows_a_load_on_the_gpu() -> None:
    """The log says 25/25 layers were offloaded, the measurement says 0 bytes in VRAM and no
    runner in the GPU's list: the model ran on the CPU."""
    log = COMPUTE + "load_tensors: offloaded 25/25 layers to GPU\n"
    snap = build_snapshot(bundle(observed(vram=0, rate_ns=1_333_000_000, apps=""), log=log))
    ctx = Context(snap)
    assert ctx.observed_on_gpu == 0.0 and not ctx.gpu_used and not ctx.gpu_in_use
    assert ctx.cpu_fallback
    assert snap.observation is not None and snap.observation.tokens_per_s == 3.0
    diagnosis = diagnose(snap)
    assert diagnosis.primary != "ok-gpu"
    cpu = next(f for f in diagnosis.findings if f.code == diagnosis.primary)
    assert cpu.evidence[0].source == "observation.txt" and "ran on the CPU" in cpu.evidence[0].text


def test_vram_claimed_without_the_runner_in_the_gpus_list_is_not_use() -> None:
    snap = build_snapshot(bundle(observed(apps="999, /usr/bin/python3, 4000")))
    assert snap.observation is not None and snap.observation.runner_on_gpu is False
    assert Context(snap).observed_on_gpu == 0.0


def test_a_split_model_is_evidence_of_vram_insufficient() -> None:
    diagnosis = diagnose(build_snapshot(bundle(observed(vram=520))))
    vram = next(f for f in diagnosis.findings if f.code == "vram-insufficient")
    assert vram.evidence[0].source == "observation.txt"
    assert "split between CPU and GPU" in vram.evidence[0].text


def test_an_untrusted_api_measures_nothing() -> None:
    foreign = SERVER.replace("listener=1180 997 ollama", "listener=812 65534 python3").replace(
        "exe=1180", "exe=812").replace("1180 1 ollama\n1 0", "812 1 python3\n1 0")
    snap = build_snapshot(bundle(observed(server=foreign)))
    assert snap.observation is not None and snap.observation.on_gpu is None
    assert snap.observation.untrusted and Context(snap).observed_on_gpu is None


def test_wsl2_reads_no_process_list() -> None:
    snap = build_snapshot(bundle(observed(apps=""), proc=PROC_WSL2))
    assert snap.observation is not None and snap.observation.runner_on_gpu is None
    assert Context(snap).observed_on_gpu == 1.0


def test_the_report_says_what_was_observed() -> None:
    snap = build_snapshot(bundle(observed()))
    text = report.render_text(snap, diagnose(snap), host="h1")
    line = next(ln for ln in text.splitlines() if ln.startswith("Observed:  "))
    assert f"{MODEL} ran on the GPU" in line and "45.5 tokens/s" in line
    assert "runner (pid 2345) holds 1002 MiB (nvidia-smi)" in line
    data = report.to_json(snap, diagnose(snap))
    assert data["summary"]["observed"] == snap.observation.summary
    assert data["snapshot"]["observation"]["on_gpu"] == 1.0
    assert data["snapshot"]["observation"]["evidence"][0].startswith("observation.txt: ")
