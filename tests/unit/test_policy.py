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


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [("nvidia_repo_url", "http://mirror.lan/cuda/{distro}/{arch}/", "must be https"),
     ("rocm_repo_key_url", "http://mirror.lan/rocm.gpg.key", "must be https"),
     ("nvidia_repo_url", "https://m/{0}/", "may use only the fields {arch}, {distro}"),
     ("nvidia_repo_url", "https://m/{distro!r}/", "may use only the fields"),
     ("nvidia_repo_url", "https://m/{distro:>9}/", "may use only the fields"),
     ("nvidia_repo_url", "https://m/{distro/", "unbalanced brace"),
     ("amdgpu_repo_url", "https://m/{distro}/", "may use only the fields none"),
     ("nvidia_repo_url", "https://m/}{/", "unbalanced brace")],
)
def test_repository_urls_are_https_templates_of_their_own_fields(
        tmp_path: Path, key: str, value: str, said: str) -> None:
    """A key fetched over plain http is whatever the network says; `{0}` in a URL crashed the
    plan with IndexError. Both are one line naming the knob, before anything runs."""
    with pytest.raises(PolicyError, match=f"^host data {key}: ") as err:
        policy_from_host_data({key: value}, tmp_path)
    assert said in str(err.value)


def test_http_only_with_the_mirror_knob(tmp_path: Path) -> None:
    data = {"nvidia_repo_url": "http://10.0.0.1/cuda/{distro}/{arch}/",
            "rocm_repo_key_url": "http://10.0.0.1/rocm.gpg.key", "allow_http_mirror": "true"}
    policy = policy_from_host_data(data, tmp_path)
    assert policy.nvidia_repo_url.startswith("http://") and policy.allow_http_mirror


def test_report_dir_that_is_a_link_or_writable_by_others_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(PolicyError, match="symbolic link"):
        policy_from_host_data({"report_dir": str(tmp_path / "link")}, tmp_path)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(PolicyError, match="writable by other users"):
        policy_from_host_data({"report_dir": str(shared)}, tmp_path)
    assert policy_from_host_data({"report_dir": str(real)}, tmp_path).report_dir == real


def test_report_dir_of_another_user_is_refused(tmp_path: Path) -> None:
    import os

    if os.geteuid() != 0:
        pytest.skip("needs root to make a directory owned by another uid")
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, 4242, 4242)
    with pytest.raises(PolicyError, match="belongs to uid 4242"):
        policy_from_host_data({"report_dir": str(theirs)}, tmp_path)
