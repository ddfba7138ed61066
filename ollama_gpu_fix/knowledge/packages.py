"""Remedy knowledge: distributions, repositories, keyrings and package names. One table.

The rule that names a package as evidence (rules/nvidia.py, rules/platforms.py) and the plan
step that installs or removes it (plan.py, preflight.py) both read this module, so "what is a
CUDA 11 package" or "which packages are the driver" cannot mean two things.

Sources:
- NVIDIA driver installation guide, "Network Repository Installation" and "Kernel Modules"
  (https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/): repository layout
  `<distro>/<arch>/`, cuda-keyring_1.1-1_all.deb, open modules for Turing and newer, 580 the
  last branch for Maxwell/Pascal/Volta, `nvidia-driver-pinning-<branch>` + `nvidia-open`.
- NVIDIA/ansible-role-nvidia-driver PR #59 (a second source line for the same repository makes
  `apt update` fail), PR #89 (branch 580).
- NVIDIA CUDA on WSL user guide (https://docs.nvidia.com/cuda/wsl-user-guide/): "users must
  not install any NVIDIA GPU Linux driver within WSL 2"; not `cuda`, `cuda-<X>-<Y>` or
  `cuda-drivers` either.
- Debian's nvidia-cuda-toolkit source package (bookworm 11.8.89~11.8.0-5~deb12u1, trixie
  12.4.131~12.4.1-2, https://packages.debian.org/source/bookworm/nvidia-cuda-toolkit): its
  library packages carry the toolkit version after `~`, their names carry the library soname
  (libcufft10 ships with CUDA 11.8 and libcufft11 with CUDA 12.4), so the name alone says
  nothing about the CUDA release.
- ROCm/rocm-install-on-linux docs/6.1.2 ubuntu.rst and ROCm/amdgpu-docs 7.0.2
  package-manager-ubuntu.rst: rocm.gpg.key kept as /etc/apt/keyrings/rocm.asc, a signed-by
  source, the repo.radeon.com pin at 600; Debian uses the Ubuntu suites
  (ROCm/amdgpu-docs conf.py debian_version_numbers); amdgpu-dkms needs the running kernel's
  headers and, under Secure Boot, a signed module or Secure Boot off.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from ollama_gpu_fix.records import record

if TYPE_CHECKING:
    from packaging.version import Version

# ---- distributions and architectures --------------------------------------------------------

# os-release (ID, VERSION_ID) -> NVIDIA's repository directory name for it.
APT_DISTROS: dict[tuple[str, str], str] = {
    ("debian", "12"): "debian12",
    ("debian", "13"): "debian13",
    ("ubuntu", "22.04"): "ubuntu2204",
    ("ubuntu", "24.04"): "ubuntu2404",
}
# Debian uses AMD's Ubuntu suites.
AMD_SUITES: dict[str, str] = {"12": "jammy", "13": "noble", "22.04": "jammy", "24.04": "noble"}
# uname -m -> NVIDIA's directory (sbsa for Arm64 servers; Jetson is not served there).
NVIDIA_ARCHES: dict[str, str] = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "sbsa",
                                 "arm64": "sbsa"}
# uname -m -> dpkg's architecture (AMD publishes amd64 only).
DPKG_ARCHES: dict[str, str] = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64",
                               "arm64": "arm64"}


# ---- repositories -----------------------------------------------------------------------------


@record(frozen=True)
class Repository:
    """A vendor repository a step may add, and how it lands on a host."""

    name: str
    url_knob: str  # the host data key holding its URL (a mirror for air-gapped fleets)
    url_fields: frozenset[str]  # the only {fields} its URL template may name
    keyring: str  # where its signing key lives on the host
    source_file: str  # the sources.list.d file that holds it ({distro}, {arch} filled in)
    keyring_package: str | None = None  # a .deb that installs key, source and pin itself
    key_url_knob: str | None = None  # else: the key is fetched from this knob's URL
    pin_file: str | None = None
    pin: str | None = None


NVIDIA_CUDA = Repository(
    name="NVIDIA's CUDA repository",
    url_knob="nvidia_repo_url",
    url_fields=frozenset({"distro", "arch"}),
    keyring="/usr/share/keyrings/cuda-archive-keyring.gpg",
    source_file="/etc/apt/sources.list.d/cuda-{distro}-{arch}.list",
    keyring_package="cuda-keyring_1.1-1_all.deb",
)
NVIDIA_CUDA_WSL = Repository(
    name="NVIDIA's CUDA repository for WSL",
    url_knob="nvidia_wsl_repo_url",
    url_fields=frozenset(),
    keyring=NVIDIA_CUDA.keyring,
    source_file="/etc/apt/sources.list.d/cuda-wsl-ubuntu-x86_64.list",
    keyring_package=NVIDIA_CUDA.keyring_package,
)
AMDGPU = Repository(
    name="AMD's amdgpu repository",
    url_knob="amdgpu_repo_url",
    url_fields=frozenset(),
    keyring="/etc/apt/keyrings/rocm.asc",  # armored: apt reads .asc keyrings since 1.4
    source_file="/etc/apt/sources.list.d/amdgpu.list",
    key_url_knob="rocm_repo_key_url",
    pin_file="/etc/apt/preferences.d/rocm-pin-600",
    pin="Package: *\nPin: release o=repo.radeon.com\nPin-Priority: 600\n",
)
REPOSITORIES: dict[str, Repository] = {
    "nvidia": NVIDIA_CUDA, "nvidia-wsl": NVIDIA_CUDA_WSL, "amdgpu": AMDGPU,
}


def same_repository(a: str, b: str) -> bool:
    """Do two repository URIs name the same archive? (Scheme, host and path; a trailing
    slash or the host's case do not matter: apt compares them the same way for Signed-By.)"""
    def norm(uri: str) -> str:
        scheme, sep, rest = uri.strip().partition("://")
        if not sep:
            return uri.strip().rstrip("/")
        host, _, path = rest.partition("/")
        return f"{scheme.lower()}://{host.lower()}/{path.rstrip('/')}"
    return norm(a) == norm(b)


# ---- CUDA releases of packages and paths ----------------------------------------------------

STALE_CUDA_BELOW = "12"  # Ollama's bundles are CUDA 12/13: an older runtime shadows them
# Versions are strings here, as in knowledge.versions: packaging is imported where a release
# is built or compared, so diagnose-bundle's start does without it (issue 13).

# NVIDIA's repository names the release in the package name: cuda-toolkit-11-8, cuda-11-8,
# cuda-cudart-11-8, libcublas-11-8, libcufft-dev-11-8 ...
_NVIDIA_NAMED = re.compile(
    r"^(?:cuda(?:-[a-z0-9]+)*|lib(?:cublas|cufft|cufile|curand|cusolver|cusparse|npp|nvjpeg"
    r"|nvjitlink)(?:-dev)?)-(\d{1,2})-(\d{1,2})$"
)
# Debian's and Ubuntu's packages of the nvidia-cuda-toolkit source: the release is in the
# version (`11.8.89~11.8.0-5~deb12u1`: after `~`, else its leading X.Y).
_DISTRO_CUDA = re.compile(
    r"^(?:nvidia-cuda-(?:toolkit|dev|toolkit-gcc|gdb)|nvidia-cuda-toolkit-doc"
    r"|lib(?:cudart|cublas|cublaslt|cufft|cufftw|curand|cusolver|cusolvermg|cusparse|nvrtc"
    r"|nvrtc-builtins|nvjpeg|npp[a-z]{0,6}|nvblas|cupti|accinj64|cuinj64)\d{1,2}(?:\.\d{1,2})?)$"
)
# Never CUDA toolkits, whatever their names say: the driver, its forward-compat libraries,
# the repository's own keyring.
_NOT_TOOLKIT = re.compile(r"^cuda-(?:drivers|keyring|compat|repo)(?:-|$)")
_VERSION_AFTER_TILDE = re.compile(r"~(\d{1,2})\.(\d{1,2})")
_LEADING = re.compile(r"^(?:\d+:)?(\d{1,2})\.(\d{1,2})")
# /usr/local/cuda-11.8/..., /opt/cuda-11/...: a versioned CUDA directory as a path element.
_CUDA_DIR = re.compile(r"(?:^|/)cuda-(\d{1,2})(?:\.(\d{1,2}))?(?=/|$)")


def cuda_release_of_package(name: str, version: str = "") -> Version | None:
    """The CUDA release a toolkit package belongs to, or None when it is not one."""
    if _NOT_TOOLKIT.match(name):
        return None
    match = _NVIDIA_NAMED.match(name)
    if match:
        return _release(match.group(1), match.group(2))
    if _DISTRO_CUDA.match(name):
        found = _VERSION_AFTER_TILDE.search(version) or _LEADING.match(version)
        if found:
            return _release(found.group(1), found.group(2))
    return None


def _release(major: str, minor: str) -> Version:
    from packaging.version import Version

    return Version(f"{int(major)}.{int(minor)}")


def cuda_release_of_path(path: str) -> Version | None:
    """The CUDA release a directory names (`/usr/local/cuda-11.8/lib64` -> 11.8), or None
    (`/usr/local/cuda` is a link to any release: it names none)."""
    found = None
    for match in _CUDA_DIR.finditer(path):
        found = match
    if found is None:
        return None
    from packaging.version import InvalidVersion, Version

    try:
        return Version(f"{int(found.group(1))}.{int(found.group(2) or 0)}")
    except InvalidVersion:
        return None


def is_stale(release: Version | None) -> bool:
    if release is None:
        return False
    from packaging.version import Version

    return release < Version(STALE_CUDA_BELOW)


def stale_cuda_packages(packages: Mapping[str, str]) -> list[str]:
    """Installed CUDA toolkit packages older than CUDA 12, by name and version."""
    return sorted(n for n, v in packages.items() if is_stale(cuda_release_of_package(n, v)))


def stale_cuda_paths(paths: Iterable[str]) -> list[str]:
    """The library paths (LD_LIBRARY_PATH entries, ld.so.conf lines) of a CUDA release below 12."""
    return [p for p in paths if is_stale(cuda_release_of_path(p))]


# ---- what a purge may never take ------------------------------------------------------------

# A purge of old toolkits (or of a WSL guest's driver) must never remove the driver in use,
# its libraries, the kernel or the repository's keyring. Prefixes of package names.
PROTECTED_PREFIXES: tuple[str, ...] = (
    "nvidia-driver", "libnvidia-", "cuda-drivers", "nvidia-kernel", "nvidia-open", "nvidia-dkms",
    "xserver-xorg-video-nvidia", "cuda-keyring", "cuda-compat", "firmware-nvidia", "linux-",
    "amdgpu-dkms", "libc6", "systemd", "apt", "dpkg",
)


def protected(name: str) -> bool:
    return name.startswith(PROTECTED_PREFIXES)


# A Linux driver inside a WSL2 guest (NVIDIA's WSL guide): the Windows driver provides
# /usr/lib/wsl/lib/libcuda.so, any Linux libcuda shadows it.
_GUEST_DRIVER = re.compile(
    r"^(?:nvidia-driver(?:-\d{3}(?:-open|-server|-server-open)?)?|nvidia-utils-\d{3}(?:-server)?"
    r"|libnvidia-compute-\d{3}(?:-server)?|cuda-drivers(?:-\d{3})?|cuda|cuda-\d{1,2}-\d{1,2}"
    r"|nvidia-open(?:-\d{3})?|nvidia-dkms-\d{3}(?:-open)?|libcuda1|nvidia-kernel-dkms"
    r"|nvidia-kernel-[a-z0-9.-]+)$"
)


def wsl_guest_driver_packages(packages: Iterable[str]) -> list[str]:
    return sorted(n for n in packages if _GUEST_DRIVER.match(n))


# What else a purge of the guest driver may take: any part of NVIDIA's Linux driver (its
# libraries, nvidia-smi, the persistence daemon, Debian's nvidia-driver-libs), which in a WSL2
# guest only shadows the Windows driver's.
_GUEST_DRIVER_PART = re.compile(
    r"^(?:nvidia-(?!container)[a-z0-9.+-]+|libnvidia-[a-z0-9.+-]+|libcuda1(?:-i386)?"
    r"|cuda-drivers(?:-\d{3})?|xserver-xorg-video-nvidia[a-z0-9.+-]*)$")


def wsl_guest_driver_part(name: str) -> bool:
    return bool(_GUEST_DRIVER.match(name) or _GUEST_DRIVER_PART.match(name))


# ---- what steps install ----------------------------------------------------------------------

# Ollama's Vulkan backend needs the loader and a Mesa driver (ollama/ollama@v0.33.0-rc2:
# docs/gpu.mdx; Debian: libvulkan1, mesa-vulkan-drivers).
VULKAN_PACKAGES = ("libvulkan1", "mesa-vulkan-drivers")
# 580 is the last branch for Maxwell, Pascal and Volta; open kernel modules need Turing (7.5).
LAST_BRANCH_FOR_PRE_TURING = 580
OPEN_MODULES_MIN_CC = 7.5


def cuda_toolkit_package(release: Version) -> str:
    return f"cuda-toolkit-{release.major}-{release.minor}"


def nvidia_driver_packages(compute_caps: Iterable[str], branch: int) -> tuple[list[str], str]:
    """(packages, flavour) of NVIDIA's driver for these GPUs on BRANCH."""
    caps = []
    for cap in compute_caps:
        try:
            caps.append(float(cap))
        except ValueError:
            continue
    if any(c < OPEN_MODULES_MIN_CC for c in caps):
        chosen = min(branch, LAST_BRANCH_FOR_PRE_TURING)
        return [f"cuda-drivers-{chosen}"], f"proprietary {chosen}"
    return [f"nvidia-driver-pinning-{branch}", "nvidia-open"], \
        f"open kernel modules, branch {branch}"


def kernel_headers(kernel_release: str) -> str:
    """What DKMS builds a module against (Debian and Ubuntu name it after `uname -r`)."""
    return f"linux-headers-{kernel_release}"


AMDGPU_DRIVER_PACKAGES = ("amdgpu-dkms",)
