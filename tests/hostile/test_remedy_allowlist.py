"""Issue 6, item 5: a remedy writes only allowlisted GPU variables with checked values."""

from __future__ import annotations

import pytest

from ollama_gpu_fix.knowledge.environment import writable
from ollama_gpu_fix.parsers import build_snapshot
from ollama_gpu_fix.rules import diagnose
from tests.hostile import attacks


def test_shell_variables_of_a_user_are_not_copied_into_the_service() -> None:
    result = attacks.override_copies_shell()
    assert not result.succeeded, result.row()


@pytest.mark.parametrize(
    ("name", "value", "ok"),
    [("HSA_OVERRIDE_GFX_VERSION", "10.3.0", True), ("HSA_OVERRIDE_GFX_VERSION", "99.1.0", False),
     ("HSA_OVERRIDE_GFX_VERSION", '"10.3.0"', False), ("HSA_OVERRIDE_GFX_VERSION_1", "11.0.0", True),
     ("OLLAMA_VULKAN", "1", True), ("OLLAMA_VULKAN", "1\nExecStart=/bin/sh", False),
     ("OLLAMA_HOST", "0.0.0.0", False), ("OLLAMA_ORIGINS", "*", False),
     ("LD_LIBRARY_PATH", "/home/evil/lib", False), ("CUDA_VISIBLE_DEVICES", "GPU-0a1b2c3d-1111", True),
     ("CUDA_VISIBLE_DEVICES", "0;rm -rf /", False), ("GGML_VK_VISIBLE_DEVICES", "1", True)],
)
def test_writable(name: str, value: str, ok: bool) -> None:
    assert writable(name, value) is ok


def test_an_override_found_in_roots_profile_is_still_written() -> None:
    """The honest case: a known override in root's ~/.bashrc that the service never saw."""
    snapshot = build_snapshot({
        "shell-env.txt": "/root/.bashrc:export HSA_OVERRIDE_GFX_VERSION=10.3.0\n",
        "systemctl-show.txt": "ActiveState=active\nSubState=running\nUser=ollama\nEnvironment=\n",
    })
    finding = next(f for f in diagnose(snapshot).findings if f.code == "override-not-applied")
    assert finding.remedy and finding.remedy.automatic
    assert finding.remedy.params["env"] == {"HSA_OVERRIDE_GFX_VERSION": "10.3.0"}


def test_another_users_profile_is_not_the_services_setting() -> None:
    """Issue 12: root never carries another user's ~/.bashrc into a system service; it is not
    even a finding (that user's shells are not ollama.service)."""
    snapshot = build_snapshot({
        "shell-env.txt": "/home/u/.bashrc:export HSA_OVERRIDE_GFX_VERSION=10.3.0\n",
        "systemctl-show.txt": "ActiveState=active\nSubState=running\nUser=ollama\nEnvironment=\n",
    })
    assert not [f for f in diagnose(snapshot).findings if f.code == "override-not-applied"]
