"""Host data -> Policy: every knob checked, one line naming the key, safe defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.version import Version

from ollama_gpu_fix.policy import Policy, PolicyError, knobs, policy_from_host_data

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_safe_ones(tmp_path: Path) -> None:
    policy = policy_from_host_data({}, tmp_path)
    assert policy.allow_packages is True
    assert policy.allow_driver_change is False and policy.allow_reboot is False
    assert policy.cuda_min_version == Version("12.4") and policy.min_gpu_percent == 100
    assert policy.verify_pull is False and policy.report_dir == tmp_path / "reports"


def test_strings_from_the_command_line(tmp_path: Path) -> None:
    policy = policy_from_host_data(
        {"allow_reboot": "yes", "allow_driver_change": "True", "verify_tokens": "8",
         "cuda_min_version": "12.8", "nvidia_driver_branch": "auto", "login_user": "alice"},
        tmp_path,
    )
    assert policy.allow_reboot and policy.allow_driver_change
    assert policy.verify_tokens == 8 and policy.cuda_min_version == Version("12.8")
    assert policy.nvidia_driver_branch is None and policy.login_user == "alice"


@pytest.mark.parametrize(
    ("key", "value"),
    [("allow_reboot", "maybe"), ("allow_driver_change", 2), ("verify_tokens", 64),
     ("verify_tokens", True), ("min_gpu_percent", 0), ("cuda_min_version", "11.8"),
     ("cuda_min_version", "latest"), ("nvidia_driver_branch", 470), ("login_user", "root;rm"),
     ("nvidia_repo_url", "ftp://mirror/x"), ("nvidia_repo_url", "http://m/$(id)"),
     ("amdgpu_repo_url", 5), ("verify_model", "a b"), ("verify_model", "\"x\""),
     ("report_dir", ""), ("apt_lock_timeout", -1)],
)
def test_bad_values_name_their_key(tmp_path: Path, key: str, value: object) -> None:
    with pytest.raises(PolicyError, match=f"^host data {key}: "):
        policy_from_host_data({key: value}, tmp_path)


def test_every_knob_is_documented_in_readme_and_group_data() -> None:
    readme = (ROOT / "README.md").read_text()
    group_data = (ROOT / "group_data/all.py").read_text()
    for name in knobs():
        assert f"`{name}`" in readme, f"README does not document {name}"
        assert f"{name} = " in group_data, f"group_data/all.py does not set {name}"


def test_group_data_defaults_are_the_policy_defaults(tmp_path: Path) -> None:
    data: dict = {}
    exec((ROOT / "group_data/all.py").read_text(), {}, data)  # noqa: S102 - our own file
    policy = policy_from_host_data({k: v for k, v in data.items() if not k.startswith("_")},
                                   tmp_path)
    default = Policy(report_dir=tmp_path / "reports")
    for name in knobs():
        if name != "report_dir":
            assert getattr(policy, name) == getattr(default, name), name
