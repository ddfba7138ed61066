"""deploys/fix_gpu.py's use of the observation: the model the verification runs, and when the
observation made before the diagnosis is the verification (a run that changes nothing)."""

from __future__ import annotations

import json
from pathlib import Path

from ollama_gpu_fix.deploy.facts import OllamaGpuProbe, probe_script
from ollama_gpu_fix.deploy.fix import _observed_verification, _verify_settings
from ollama_gpu_fix.parsers import build_snapshot
from ollama_gpu_fix.policy import policy_from_host_data
from ollama_gpu_fix.rules import diagnose

MODEL = "qwen2.5:0.5b"
OBSERVED = (
    "ogf-verify v2 nonce=oabc\n--ogf-oabc-- observe\nmode=generate\nmodel=qwen2.5:0.5b\n"
    "--ogf-oabc-- wait\nup=1 after=0s\n--ogf-oabc-- generate\n"
    + json.dumps({"model": MODEL, "done": True, "eval_count": 4, "eval_duration": 88000000})
    + "\n--ogf-oabc-- ps\n"
    + json.dumps({"models": [{"name": MODEL, "size": 1000, "size_vram": 1000}]})
    + "\n--ogf-oabc-- server\nsystemd=yes\nload=loaded\nactive=active\nmainpid=1180\n"
    "api=http://127.0.0.1:11434 unit\nollama_uid=997\nunsafe_path=\nlistener=1180 997 ollama\n"
    "exe=1180 0 -rwxr-xr-x\n1180 1 ollama\n1 0 systemd\n\n"
)
TAGS = json.dumps({"models": [{"name": "big:7b", "size": 5}, {"name": MODEL, "size": 9}]})


def _policy(tmp_path: Path, **data: object):  # noqa: ANN202
    return policy_from_host_data({"report_dir": str(tmp_path / "r"), **data}, tmp_path)


def _sections(observation: str = OBSERVED) -> dict[str, str]:
    return {"api-tags.json": TAGS, "observation.txt": observation,
            "ollama-serve.log": "level=INFO msg=x\n"}


def test_the_observation_is_the_verification_of_a_run_that_changes_nothing(tmp_path: Path) -> None:
    sections = _sections()
    snap = build_snapshot(sections)
    seen = _observed_verification(snap, sections, _policy(tmp_path))
    assert seen == (OBSERVED, "level=INFO msg=x\n")


def test_the_verification_runs_what_the_observation_ran(tmp_path: Path) -> None:
    """Not the smallest by /api/tags (big:7b here): the model the observation measured."""
    snap = build_snapshot(_sections())
    settings = _verify_settings(snap, diagnose(snap), _policy(tmp_path), local=False)
    assert settings["model"] == MODEL
    bare = build_snapshot({"api-tags.json": TAGS})
    assert _verify_settings(bare, diagnose(bare), _policy(tmp_path), local=False)["model"] == \
        "big:7b"


def test_no_observation_to_reuse_then_the_verification_generates(tmp_path: Path) -> None:
    policy = _policy(tmp_path)
    for sections in ({"api-tags.json": TAGS},
                     _sections("skipped=no local model to run\n"),
                     _sections(OBSERVED.replace("mode=generate", "mode=look"))):
        assert _observed_verification(build_snapshot(sections), sections, policy) is None
    foreign = OBSERVED.replace("listener=1180 997 ollama", "listener=812 65534 python3")
    sections = _sections(foreign.replace("exe=1180", "exe=812").replace("1180 1 ollama\n1 0",
                                                                        "812 1 python3\n1 0"))
    assert _observed_verification(build_snapshot(sections), sections, policy) is None
    sections = _sections()
    snap = build_snapshot(sections)
    for knob in ({"verify_cpu_baseline": True}, {"verify_pull": True},
                 {"verify_model": "llama3:8b"}):
        assert _observed_verification(snap, sections, _policy(tmp_path, **knob)) is None, knob
    assert _observed_verification(snap, sections, _policy(tmp_path, verify_model=MODEL))


def test_the_probe_command_carries_the_observation_settings() -> None:
    plain = OllamaGpuProbe().command()
    assert plain == probe_script() and "export OGF_OBSERVE" not in plain
    asked = OllamaGpuProbe().command(observe="generate", model="qwen2.5:0.5b", tokens=4,
                                     timeout=60)
    assert asked.startswith("#!/bin/sh\n# ollama-gpu-fix probe")
    for line in ("export OGF_OBSERVE=generate\n", "export OGF_OBSERVE_MODEL=qwen2.5:0.5b\n",
                 "export OGF_OBSERVE_TOKENS=4\n", "export OGF_OBSERVE_TIMEOUT=60\n"):
        assert line in asked
    hostile = OllamaGpuProbe().command(observe="look", model="x'; rm -rf /; '")
    assert "export OGF_OBSERVE_MODEL='x'\"'\"'; rm -rf /; '\"'\"''\n" in hostile
