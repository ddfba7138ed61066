"""Host data -> Policy: every knob a fix reads, checked before anything runs.

A bad value stops that host with one line naming the key, and nothing changes. Knobs come as
Python values (group_data/*.py, inventories) or as strings (`--data key=value`), so booleans
and numbers accept both. Defaults are the safe ones: a fix may edit Ollama's service and add
user-space packages; a driver change and a reboot each need their own knob.
"""

from __future__ import annotations

import os
import re
import stat
import string
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from packaging.version import InvalidVersion, Version

from ollama_gpu_fix.knowledge.packages import REPOSITORIES


class PolicyError(ValueError):
    """One bad knob: `key`, and why."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"host data {key}: {message}")
        self.key = key


# NVIDIA's CUDA repository: <distro>/<arch>/ below this (x86_64, sbsa for Arm64 servers).
# https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/ "network repository"
NVIDIA_REPO = "https://developer.download.nvidia.com/compute/cuda/repos/{distro}/{arch}/"
# AMD's repositories (https://rocm.docs.amd.com/projects/install-on-linux, package manager):
# the kernel driver (amdgpu-dkms) for ROCm 7.x lives under amdgpu/<30.x>/ubuntu.
AMDGPU_REPO = "https://repo.radeon.com/amdgpu/30.30.3/ubuntu"
ROCM_KEY = "https://repo.radeon.com/rocm/rocm.gpg.key"


@dataclass(frozen=True)
class Policy:
    """Validated knobs (README "Fix" lists each with its default)."""

    report_dir: Path = Path("reports")
    # what a fix may change
    allow_packages: bool = True  # user-space packages: CUDA toolkit, Vulkan, cuda-keyring
    allow_driver_change: bool = False  # NVIDIA driver, amdgpu-dkms, a Linux driver in WSL2
    allow_reboot: bool = False  # reboot after a driver change, then verify
    # what it installs
    cuda_min_version: Version = Version("12.4")
    nvidia_driver_branch: int | None = None  # None: 580 (the last for Maxwell-Volta)
    login_user: str | None = None  # added to render/video beside the service user
    # where from (mirrors, air-gapped fleets, the lab)
    nvidia_repo_url: str = NVIDIA_REPO
    nvidia_wsl_repo_url: str = NVIDIA_REPO.format(distro="wsl-ubuntu", arch="x86_64")
    amdgpu_repo_url: str = AMDGPU_REPO
    rocm_repo_key_url: str = ROCM_KEY
    # a repository or key URL may be plain http: a local mirror on a network you trust (apt
    # still checks package signatures; a key fetched over http is only as good as that network)
    allow_http_mirror: bool = False
    # how a fix proves itself
    verify_model: str | None = None  # None: the smallest local model
    verify_pull: bool = False  # pull verify_model when it is not there
    verify_tokens: int = 4  # the proof is /api/ps and the process list; tokens time it
    verify_timeout: int = 60  # seconds to wait for Ollama's API after a restart
    verify_cpu_baseline: bool = False  # time the same prompt with num_gpu 0 too
    min_gpu_percent: int = 100
    # deploys/diagnose.py: observe with a bounded generation too (by default it reads /api/ps
    # and the GPU's process list as found; the fix always observes with a generation)
    observe_generate: bool = False
    apt_lock_timeout: int = 120  # seconds to wait for another apt/dpkg to finish
    # the watchdog (a systemd timer on the host; README "Watchdog"): off by default; turning it
    # off again removes it
    install_watchdog: bool = False
    watchdog_interval: int = 60  # seconds between two checks
    watchdog_textfile_dir: str = "/var/lib/prometheus/node-exporter"  # node_exporter's
    watchdog_generate: bool = False  # time a bounded generation when no model is loaded
    # deploys/diagnose.py: read the watchdog's last check instead of probing
    use_watchdog_state: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}\$?")
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise PolicyError(key, f"must be true or false, got {value!r}")


def _int(key: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise PolicyError(key, f"must be a number from {low} to {high}, got {value!r}")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise PolicyError(key, f"must be a number from {low} to {high}, got {value!r}") from None
    if not low <= number <= high:
        raise PolicyError(key, f"must be a number from {low} to {high}, got {value!r}")
    return number


# The {fields} each URL knob may name (its repository's template), and nothing else.
URL_FIELDS: dict[str, frozenset[str]] = {
    **{repo.url_knob: repo.url_fields for repo in REPOSITORIES.values()},
    **{repo.key_url_knob: frozenset() for repo in REPOSITORIES.values() if repo.key_url_knob},
}


def _url(key: str, value: Any, allow_http: bool) -> str:
    """An https URL (http only with allow_http_mirror) whose template names only its
    documented fields: `{0}`, `{distro!r}` or a stray brace would crash or change the plan."""
    schemes = ("https", "http") if allow_http else ("https",)
    wanted = "an https URL" + (" (or http)" if allow_http else "")
    if not isinstance(value, str):
        raise PolicyError(key, f"must be {wanted}, got {value!r}")
    allowed = URL_FIELDS.get(key, frozenset())
    try:
        parsed = list(string.Formatter().parse(value))
    except ValueError:
        raise PolicyError(key, f"has an unbalanced brace: {value!r}") from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in allowed or spec or conversion:
            fields_ = ", ".join("{" + f + "}" for f in sorted(allowed)) or "none"
            raise PolicyError(key, f"may use only the fields {fields_}, got {value!r}")
    filled = value.format(**{f: "x" for f in allowed}) if allowed else value
    parts = urlsplit(filled)
    if parts.scheme == "http" and not allow_http:
        raise PolicyError(key, f"must be https (set allow_http_mirror=true for a local mirror),"
                               f" got {value!r}")
    if parts.scheme not in schemes or not parts.hostname or any(
        c.isspace() or c in "\"'\\`$;{}" for c in filled
    ):
        raise PolicyError(key, f"must be {wanted}, got {value!r}")
    return value


def _version(key: str, value: Any) -> Version:
    try:
        version = Version(str(value).strip())
    except InvalidVersion:
        raise PolicyError(key, f"must be a version like 12.4, got {value!r}") from None
    if not Version("12.0") <= version < Version("14"):
        raise PolicyError(key, f"must be a CUDA 12 or 13 version, got {value!r}")
    return version


def _report_dir(value: Any, cwd: str | os.PathLike[str]) -> Path:
    raw = os.fspath(value) if isinstance(value, os.PathLike) else value
    if not isinstance(raw, str) or not raw.strip() or "\x00" in raw:
        raise PolicyError(
            "report_dir",
            f"must be a non-empty string path (a directory on the controller), got {raw!r}",
        )
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = Path(cwd) / path
    problem = report_dir_problem(path)
    if problem:
        raise PolicyError("report_dir", f"{raw!r}: {problem}")
    return path


def report_dir_problem(path: Path) -> str | None:
    """Why PATH must not hold reports ('' or None when it may): reports describe hosts, so
    they go only into a directory of the user running pyinfra that nobody else can write, and
    never through a link (another user could point it anywhere)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None  # created 0700 when the first report is written
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    if stat.S_ISLNK(st.st_mode):
        return f"{path} is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return f"{path} exists and is not a directory"
    if st.st_uid != os.geteuid():
        return f"{path} belongs to uid {st.st_uid}, not to the user running pyinfra"
    if st.st_mode & 0o022:
        return f"{path} is writable by other users (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def policy_from_host_data(data: Mapping[str, Any], cwd: str | os.PathLike[str]) -> Policy:
    """Every knob checked; PolicyError (naming the key) on the first bad one."""
    known = {f.name for f in fields(Policy)} - {"extra"}
    for key in data:
        near = _misspelled(key, known)
        if near:
            raise PolicyError(key, f"is not a knob; did you mean {near}?")
    values: dict[str, Any] = {}
    get = data.get
    raw = get("report_dir")
    values["report_dir"] = _report_dir("reports" if raw is None else raw, cwd)
    for key in ("allow_packages", "allow_driver_change", "allow_reboot", "verify_pull",
                "verify_cpu_baseline", "allow_http_mirror", "observe_generate",
                "install_watchdog", "watchdog_generate", "use_watchdog_state"):
        if get(key) is not None:
            values[key] = _bool(key, get(key))
    if get("cuda_min_version") is not None:
        values["cuda_min_version"] = _version("cuda_min_version", get("cuda_min_version"))
    if get("nvidia_driver_branch") not in (None, "", "auto"):
        values["nvidia_driver_branch"] = _int(
            "nvidia_driver_branch", get("nvidia_driver_branch"), 550, 999
        )
    if get("login_user") not in (None, ""):
        user = get("login_user")
        if not isinstance(user, str) or not _USER.fullmatch(user):
            raise PolicyError("login_user", f"must be a user name, got {user!r}")
        values["login_user"] = user
    for key in ("nvidia_repo_url", "nvidia_wsl_repo_url", "amdgpu_repo_url",
                "rocm_repo_key_url"):
        if get(key) is not None:
            values[key] = _url(key, get(key), values.get("allow_http_mirror", False))
    if get("verify_model") not in (None, ""):
        model = get("verify_model")
        if not isinstance(model, str) or not _MODEL.fullmatch(model):
            raise PolicyError("verify_model", f"must be a model name (qwen2.5:0.5b), got {model!r}")
        values["verify_model"] = model
    for key, low, high in (("verify_tokens", 1, 32), ("verify_timeout", 5, 900),
                           ("min_gpu_percent", 1, 100), ("apt_lock_timeout", 0, 3600),
                           ("watchdog_interval", 5, 86400)):
        if get(key) is not None:
            values[key] = _int(key, get(key), low, high)
    if get("watchdog_textfile_dir") is not None:
        raw = get("watchdog_textfile_dir")
        if not isinstance(raw, str) or not re.fullmatch(r"(/[A-Za-z0-9._-]+)+", raw) \
                or "/../" in raw + "/" or "/./" in raw + "/":
            raise PolicyError("watchdog_textfile_dir", f"must be an absolute directory path "
                              f"of letters, digits, '.', '_' and '-', got {raw!r}")
        values["watchdog_textfile_dir"] = raw
    extra = {k: v for k, v in data.items() if k not in known}
    return Policy(**values, extra=extra)


def _misspelled(key: Any, known: set[str]) -> str | None:  # noqa: ANN401 - any host data key
    """The knob KEY was probably meant to be (`allow_reboots` -> `allow_reboot`), or None.

    Host data also carries pyinfra's own keys (ssh_user, _sudo) and a user's own: only a key
    this close to one of ours is refused, never one merely unknown."""
    if not isinstance(key, str) or key in known or key.startswith("_"):
        return None
    import difflib  # only on a key that is not a knob

    near = difflib.get_close_matches(key.lower().replace("-", "_"), sorted(known), n=1,
                                     cutoff=0.85)
    return near[0] if near else None


def knobs() -> dict[str, Any]:
    """Every knob and its default (the README table and group_data/all.py are checked
    against this)."""
    default = Policy()
    return {f.name: getattr(default, f.name) for f in fields(Policy) if f.name != "extra"}
