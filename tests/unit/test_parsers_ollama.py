"""ollama -v, lib/ollama listing, running process, shell profiles, loaded models, containers."""

from __future__ import annotations

from pathlib import Path

from ollama_gpu_fix.parsers import containers, ollama

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sections"


def sample(name: str, case: str) -> dict[str, str]:
    return {name: (FIXTURES / name / case).read_text(encoding="utf-8")}


def test_absent_files_give_none() -> None:
    for parser in (
        ollama.parse_version,
        ollama.parse_libs,
        ollama.parse_process,
        ollama.parse_shell_env,
        ollama.parse_loaded_models,
        containers.parse,
    ):
        assert parser({"lspci.txt": ""}) is None


def test_version_server_answered() -> None:
    version = ollama.parse_version(sample("ollama-version.txt", "server.txt"))
    assert version is not None
    assert (version.version, version.client_version, version.server_reachable) == (
        "0.12.3",
        "0.12.3",
        True,
    )


def test_version_server_unreachable() -> None:
    version = ollama.parse_version(sample("ollama-version.txt", "unreachable.txt"))
    assert version is not None
    assert version.server_reachable is False
    assert version.version == "0.5.1" and version.client_version == "0.5.1"


def test_version_client_server_differ() -> None:
    version = ollama.parse_version(sample("ollama-version.txt", "mismatch.txt"))
    assert version is not None
    assert (version.version, version.client_version) == ("0.5.1", "0.5.4")


def test_version_not_installed() -> None:
    version = ollama.parse_version({"ollama-version.txt": "bash: ollama: command not found\n"})
    assert version is not None and version.version is None and version.server_reachable is None


def test_libs_variants_roots_and_rocblas() -> None:
    libs = ollama.parse_libs(sample("ollama-libs.txt", "rocm-v7.txt"))
    assert libs is not None
    assert libs.roots == ["/usr/local/lib/ollama", "/usr/lib/ollama"]  # a mixed install
    assert libs.variants == ["cuda_v12", "cuda_v13", "rocm_v7_2", "vulkan", "rocm"]
    assert libs.rocblas_targets == ["gfx1030", "gfx1100"]
    assert "/usr/local/lib/ollama/libggml-base.so" in libs.files


def test_process_first_record() -> None:
    proc = ollama.parse_process(sample("ollama-process.txt", "manual-serve.txt"))
    assert proc is not None
    assert (proc.pid, proc.user, proc.parent) == (4242, "alice", "bash")
    assert proc.under_systemd is False and proc.cmdline == "ollama serve"
    assert proc.environment == {
        "OLLAMA_HOST": "0.0.0.0:11434",
        "HSA_OVERRIDE_GFX_VERSION": "10.3.0",
    }
    assert all(line.text != "pid=1180" for line in proc.raw)  # one record per process


def test_only_a_trusted_process_is_the_server() -> None:
    text = (
        "pid=4242\nuser=mallory\nparent=bash\ncmdline=ollama serve\ntrusted=no\n"
        "pid=1180\nuser=ollama\nparent=systemd\ncgroup=0::/system.slice/ollama.service\n"
        "cmdline=/usr/local/bin/ollama serve\ntrusted=yes\ntrust=mainpid\n"
        "env CUDA_VISIBLE_DEVICES=0\n"
    )
    sections = {"ollama-process.txt": text}
    proc = ollama.parse_process(sections)
    assert proc is not None and (proc.pid, proc.trusted, proc.trust) == (1180, True, "mainpid")
    assert proc.environment == {"CUDA_VISIBLE_DEVICES": "0"}
    foreign = ollama.parse_foreign_processes(sections)
    assert [(p.pid, p.user, p.trusted) for p in foreign or []] == [(4242, "mallory", False)]


def test_no_trusted_process_means_no_server() -> None:
    sections = {"ollama-process.txt": "pid=4242\nuser=mallory\ncmdline=ollama serve\ntrusted=no\n"}
    proc = ollama.parse_process(sections)
    assert proc is not None and proc.pid is None and proc.environment == {}


def test_process_under_systemd() -> None:
    text = "pid=1180\nuser=ollama\nparent=systemd\ncgroup=0::/system.slice/ollama.service\n"
    proc = ollama.parse_process({"ollama-process.txt": text})
    assert proc is not None and proc.under_systemd is True and proc.environment == {}


def test_shell_env() -> None:
    found = ollama.parse_shell_env(sample("shell-env.txt", "bashrc.txt"))
    assert found is not None
    assert [(a.file, a.name, a.value) for a in found] == [
        ("/home/alice/.bashrc", "HSA_OVERRIDE_GFX_VERSION", "10.3.0"),
        ("/home/alice/.bashrc", "OLLAMA_HOST", "0.0.0.0:11434"),
        ("/etc/environment", "CUDA_VISIBLE_DEVICES", "-1"),
        ("/home/alice/.zshrc", "LD_LIBRARY_PATH", "/usr/local/cuda-11.8/lib64:$LD_LIBRARY_PATH"),
    ]


def test_processor_of_matches_ollama_ps() -> None:
    assert ollama.processor_of(100, 0) == "100% CPU"
    assert ollama.processor_of(100, 100) == "100% GPU"
    assert ollama.processor_of(100, 52) == "48%/52% CPU/GPU"
    assert ollama.processor_of(100, 200) == "Unknown"
    assert ollama.processor_of(None, 1) is None


def test_loaded_models_api_ps() -> None:
    models = ollama.parse_loaded_models(sample("api-ps.json", "partial.json"))
    assert models is not None and [m.name for m in models] == ["llama3.1:70b", "qwen2.5:7b"]
    big, small = models
    assert big.size == 46_000_000_000 and big.size_vram == 23_920_000_000
    assert big.processor == "48%/52% CPU/GPU" and big.gpu_fraction == 0.52
    assert small.processor == "100% GPU" and small.gpu_fraction == 1.0
    assert big.raw is not None and big.raw.source == "api-ps.json"
    assert ollama.parse_loaded_models(sample("api-ps.json", "empty.json")) == []


def test_loaded_models_garbage_json() -> None:
    assert ollama.parse_loaded_models(sample("api-ps.json", "curl-error.json")) is None
    assert ollama.parse_loaded_models({"api-ps.json": '{"models": 3}'}) is None
    assert ollama.parse_loaded_models({"api-ps.json": "[" * 100_000}) is None
    odd = ollama.parse_loaded_models(
        {"api-ps.json": '{"models":[1,{"name":"m","size":true,"size_vram":"x"},{"size":1}]}'}
    )
    assert odd is not None and [(m.name, m.size, m.size_vram) for m in odd] == [("m", None, None)]


def test_loaded_models_ollama_ps_table() -> None:
    models = ollama.parse_loaded_models(sample("ollama-ps.txt", "partial.txt"))
    assert models is not None
    assert [(m.name, m.size, m.processor) for m in models] == [
        ("llama3.1:70b", 46_000_000_000, "48%/52% CPU/GPU"),
        ("qwen2.5:7b", 5_400_000_000, "100% GPU"),
    ]
    assert models[0].size_vram is None  # not printed by `ollama ps`
    ctx = ollama.parse_loaded_models(sample("ollama-ps.txt", "context-column.txt"))
    assert ctx is not None and ctx[0].processor == "100% CPU" and ctx[0].name == "gemma3:4b"


def test_loaded_models_api_preferred_then_table_fallback() -> None:
    sections = sample("ollama-ps.txt", "context-column.txt")
    sections.update(sample("api-ps.json", "partial.json"))
    models = ollama.parse_loaded_models(sections)
    assert models is not None and models[0].name == "llama3.1:70b"
    sections.update(sample("api-ps.json", "curl-error.json"))
    fallback = ollama.parse_loaded_models(sections)
    assert fallback is not None and fallback[0].name == "gemma3:4b"


def test_docker_run_nvidia_without_compute() -> None:
    run = containers.parse(sample("docker-run.txt", "nvidia-utility-only.txt"))
    assert run is not None
    assert run.gpus_flag is True
    assert run.env == {"NVIDIA_DRIVER_CAPABILITIES": "utility"}
    assert run.image == "ollama/ollama:0.1.12" and len(run.raw) == 2


def test_docker_run_rocm_devices() -> None:
    run = containers.parse(sample("docker-run.txt", "rocm.txt"))
    assert run is not None and run.gpus_flag is False
    assert run.devices == ["/dev/kfd", "/dev/dri"]
    assert run.env == {"HSA_OVERRIDE_GFX_VERSION": "10.3.0"}
    assert run.image == "ollama/ollama:rocm"


def test_docker_run_cdi_runtime_and_command() -> None:
    text = "podman run --rm --device nvidia.com/gpu=all --runtime=nvidia -it ollama/ollama serve -x"
    run = containers.parse({"docker-run.txt": text})
    assert run is not None and run.gpus_flag is True and run.runtime == "nvidia"
    assert run.devices == ["nvidia.com/gpu=all"] and run.image == "ollama/ollama"


def test_compose_nvidia_reservation_and_list_env_quotes() -> None:
    run = containers.parse(sample("docker-run.txt", "compose.txt"))
    assert run is not None
    assert run.gpus_flag is True and run.runtime == "nvidia"
    assert run.image == "ollama/ollama:latest"
    assert run.env["NVIDIA_VISIBLE_DEVICES"] == "all"
    assert run.env["HSA_OVERRIDE_GFX_VERSION"] == '"10.3.0"'  # list form keeps the quotes
    assert run.devices == []


def test_compose_amd_devices_and_mapping_env() -> None:
    run = containers.parse(sample("docker-run.txt", "compose-amd-mapping.txt"))
    assert run is not None and run.gpus_flag is False
    assert run.devices == ["/dev/kfd", "/dev/dri"]
    assert run.env == {"HSA_OVERRIDE_GFX_VERSION": "11.0.0", "OLLAMA_DEBUG": "1"}
    assert run.image == "ollama/ollama:rocm"
