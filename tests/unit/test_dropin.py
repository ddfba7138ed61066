"""The managed drop-in and edits of the files that set what must go (ollama_gpu_fix.dropin)."""

from __future__ import annotations

import pytest

from ollama_gpu_fix.dropin import (
    DROPIN_PATH,
    MARK,
    DropinError,
    guess_kind,
    remove_assignments,
    render,
    sets_any,
)
from ollama_gpu_fix.parsers.systemd import parse


def _environment(text: str, path: str = DROPIN_PATH):
    unit = parse({"systemctl-cat.txt": f"# {path}\n{text}"})
    assert unit is not None
    (dropin,) = unit.dropins or [unit.fragment]
    return dropin


@pytest.mark.parametrize(
    ("env", "unset"),
    [({"HSA_OVERRIDE_GFX_VERSION": "10.3.0"}, []),
     ({"OLLAMA_VULKAN": "1", "OLLAMA_IGPU_ENABLE": "1"}, ["CUDA_VISIBLE_DEVICES"]),
     ({}, ["LD_LIBRARY_PATH", "OLLAMA_LLM_LIBRARY"]),
     ({"CUDA_VISIBLE_DEVICES": "GPU-e46b1a73-5972-80ed-5f43-c46d1c9f5ddf"}, [])],
)
def test_rendered_dropin_parses_back_to_the_same_environment(env, unset) -> None:
    text = render(env, unset, ["rocm-gfx-unsupported"])
    dropin = _environment(text)
    assert dropin.environment == env
    assert dropin.unset == sorted(unset)
    assert text.startswith("# Managed by ollama-gpu-fix")


@pytest.mark.parametrize(
    "env",
    [{"OLLAMA_HOST": "0.0.0.0"}, {"HSA_OVERRIDE_GFX_VERSION": "10.3.0\nExecStart=/bin/sh"},
     {"HSA_OVERRIDE_GFX_VERSION": '"10.3.0"'}, {"LD_LIBRARY_PATH": "/home/x"},
     {"GGML_VK_VISIBLE_DEVICES": "1%n"}],
)
def test_refuses_what_is_not_a_checked_gpu_setting(env) -> None:
    with pytest.raises(DropinError):
        render(env)


def test_unset_names_must_be_variable_names() -> None:
    with pytest.raises(DropinError):
        render({}, ["A B"])


UNIT = """[Service]
Environment="PATH=/usr/bin:/bin" "CUDA_VISIBLE_DEVICES=-1"
Environment="HSA_OVERRIDE_GFX_VERSION=\\"10.3.0\\""
Environment=OLLAMA_DEBUG=1
"""


def test_removal_keeps_the_rest_and_says_why() -> None:
    out = remove_assignments(UNIT, ["CUDA_VISIBLE_DEVICES", "HSA_OVERRIDE_GFX_VERSION"], "hid it")
    dropin = _environment(out, "/etc/systemd/system/ollama.service.d/override.conf")
    assert dropin.environment == {"PATH": "/usr/bin:/bin", "OLLAMA_DEBUG": "1"}
    assert f"{MARK} (hid it): \"CUDA_VISIBLE_DEVICES=-1\"" in out
    # a line left with nothing becomes the comment: an empty Environment= would reset PATH
    assert "Environment=\n" not in out and "Environment=\"\"" not in out
    assert remove_assignments(out, ["CUDA_VISIBLE_DEVICES"], "again") == out  # idempotent


def test_environment_files() -> None:
    text = "# defaults\nCUDA_VISIBLE_DEVICES=-1\nOLLAMA_MODELS=/srv/models\n"
    out = remove_assignments(text, ["CUDA_VISIBLE_DEVICES"], "hid the GPU")
    assert out == (
        "# defaults\n# ollama-gpu-fix removed (hid the GPU): CUDA_VISIBLE_DEVICES=-1\n"
        "#CUDA_VISIBLE_DEVICES=-1\nOLLAMA_MODELS=/srv/models\n"
    )
    assert sets_any(text, ["CUDA_VISIBLE_DEVICES"]) and not sets_any(out, ["CUDA_VISIBLE_DEVICES"])


def test_export_is_not_an_assignment_to_systemd() -> None:
    # env-file.c has no `export`: the key is "export CUDA_VISIBLE_DEVICES", which exec drops
    text = "export CUDA_VISIBLE_DEVICES=-1\n"
    assert not sets_any(text, ["CUDA_VISIBLE_DEVICES"])
    assert remove_assignments(text, ["CUDA_VISIBLE_DEVICES"], "hid the GPU") == text


def test_a_continued_environment_line_goes_whole() -> None:
    text = "[Service]\nEnvironment=OLLAMA_KEEP_ALIVE=1h \\\n    CUDA_VISIBLE_DEVICES=-1\nNoNewPrivileges=yes\n"
    out = remove_assignments(text, ["CUDA_VISIBLE_DEVICES"], "hid the GPU")
    assert out.endswith("\nEnvironment=OLLAMA_KEEP_ALIVE=1h\nNoNewPrivileges=yes\n")
    assert not any(line.endswith("\\") for line in out.splitlines())
    assert _environment(out).environment == {"OLLAMA_KEEP_ALIVE": "1h"}


@pytest.mark.parametrize(
    ("text", "kind"),
    [("[Service]\nUser=x\n", "unit"), ("Environment=A=1\n", "unit"), ("A=1\n", "env"),
     ("# [Service]\nA=1\n", "env"), ("", "env")],
)
def test_guess_kind(text: str, kind: str) -> None:
    assert guess_kind(text) == kind


def test_the_kind_can_be_given() -> None:
    # an environment file may hold a line that looks like a section header (systemd ignores it)
    text = "[cluster]\nCUDA_VISIBLE_DEVICES=-1\n"
    assert not sets_any(text, ["CUDA_VISIBLE_DEVICES"])
    assert sets_any(text, ["CUDA_VISIBLE_DEVICES"], "env")
    out = remove_assignments(text, ["CUDA_VISIBLE_DEVICES"], "hid it", kind="env")
    assert "\n#CUDA_VISIBLE_DEVICES=-1\n" in out
