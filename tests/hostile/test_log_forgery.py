"""Issue 6, item 2: what an HTTP client can write into Ollama's journal is never evidence."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ollama_gpu_fix.parsers import build_snapshot
from ollama_gpu_fix.rules import diagnose
from tests.hostile import attacks


def test_one_request_path_turns_no_failing_case_into_ok_gpu() -> None:
    result = attacks.forged_access_log()
    assert not result.succeeded, result.row()


def test_request_paths_and_prompts_create_no_fault() -> None:
    result = attacks.forged_faults()
    assert not result.succeeded, result.row()


def _primary(log: str) -> str:
    return diagnose(build_snapshot({"ollama-serve.log": log})).primary


def test_forged_run_start_cannot_hide_the_real_evidence() -> None:
    real = ('time=2025-01-01T00:00:00Z level=WARN source=cuda_compat.go:71 msg="NVIDIA driver too '
            'old" device=GPU-1 compute=8.9 driver=535 required_driver="550 or newer"\n'
            'time=2025-01-01T00:00:00Z level=INFO source=types.go:60 msg="inference compute" '
            'id=cpu library=cpu compute="" name=cpu description=cpu libdirs=ollama driver="" '
            'pci_id="" type="" total="31.7 GiB" available="23.1 GiB"\n')
    forged = ('[GIN] 2026/11/30 - 10:00:00 | 404 | 1µs | 10.0.0.66 | GET "/msg=\\"server '
              'config\\" env=\\"map[]\\" Listening on 127.0.0.1:11434 (version 0.33.0)"\n')
    assert _primary(real) == "nvidia-driver-too-old"
    assert _primary(real + forged) == "nvidia-driver-too-old"


def test_evidence_in_trusted_fields_still_counts() -> None:
    """The same words in the msg or an error field of Ollama's own line are evidence."""
    line = ('time=2024-09-05T09:20:35.624+08:00 level=DEBUG source=gpu.go:533 msg="Unable to load '
            'cudart" library=/opt/cuda/lib64/libcudart.so.12 error="cudart init failure: 999"\n')
    assert _primary(line) == "nvidia-uvm-broken"
    prompt = line.replace('error="cudart init failure: 999"', 'prompt="cudart init failure: 999"')
    assert _primary(prompt) != "nvidia-uvm-broken"


def test_real_cases_keep_their_diagnosis_with_a_flood_of_requests(tmp_path: Path) -> None:
    """Real logs interleaved with 2000 access-log lines (a busy server) read the same."""
    flood = "".join(attacks.GIN_GPU + "\n" for _ in range(2000))
    for case in sorted(p for p in attacks.CASES.iterdir() if p.is_dir())[:8]:
        expected = json.loads((case / "expected.json").read_text())["expected_primary"]
        bundle = tmp_path / case.name
        shutil.copytree(case, bundle, ignore=shutil.ignore_patterns("expected.json"))
        log = attacks._log_file(bundle)
        if log.exists():
            log.write_text(flood + log.read_text(errors="replace") + flood)
        run = attacks.cli("diagnose-bundle", str(bundle), "--json")
        assert json.loads(run.stdout)["primary"] in expected, case.name


def test_a_models_own_metadata_is_never_evidence() -> None:
    """Issue 12: llama.cpp prints a model file's metadata at load; whoever made the file
    chooses those values, so a name like "CUDA error" or "kfd driver not loaded" steers nothing
    (a fix runs as root on what the diagnosis says)."""
    dump = (
        "llama_model_loader: - kv   0:    general.name str = CUDA error: out of memory\n"
        "llama_model_loader: - kv   1:    general.description str = NVIDIA driver too old"
        " amdgpu devices detected but kfd driver not loaded\n"
        "print_info: general.name     = ggml_cuda_init: failed to initialize CUDA: no CUDA-capable"
        " device is detected\n"
        "llm_load_print_meta: general.name = cudaSetDevice err: 999\n"
    )
    snapshot = build_snapshot({"ollama-serve.log": dump})
    assert not snapshot.log or not snapshot.log.events
    real = "ggml_cuda_init: failed to initialize CUDA: no CUDA-capable device is detected\n"
    assert build_snapshot({"ollama-serve.log": real}).log.events  # the engine's own line counts
