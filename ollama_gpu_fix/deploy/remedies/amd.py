"""AMD: the kernel side. Ollama bundles the ROCm user space (lib/ollama/rocm*), so what a host
needs is an amdgpu kernel driver new enough for it: amdgpu-dkms from AMD's repository, with
AMD's key (kept armored as a .asc keyring, which apt reads since 1.4, so no gpg is needed on
the host), a signed-by source and the pin AMD documents
(ROCm/rocm-install-on-linux docs/6.1.2 ubuntu.rst; ROCm/amdgpu-docs 7.0.2 package-manager-
ubuntu.rst; Debian uses the Ubuntu suites: conf.py debian_version_numbers).
"""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.apt import AptSources
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import apt, files

from ollama_gpu_fix.deploy.operations import apt_idle, reachable
from ollama_gpu_fix.deploy.remedies import Applied

KEYRING = "/etc/apt/keyrings/rocm.asc"
PIN = "Package: *\nPin: release o=repo.radeon.com\nPin-Priority: 600\n"


def _configured(repo_url: str) -> bool:
    """AMD's repository is already a source (a user's amdgpu.list): adding a second entry
    with another signed-by makes apt refuse ("Conflicting values set for option Signed-By")."""
    want = repo_url.rstrip("/")
    return any(
        (src.get("url") or "").rstrip("/") == want for src in host.get_fact(AptSources) or []
    )


@deploy("amdgpu kernel driver")
def amdgpu_driver(packages: list[str], repo_url: str, suite: str, key_url: str,
                  lock_timeout: int = 120) -> Applied:
    applied = Applied()
    applied.ops.append(apt_idle(name="Wait for apt", timeout=lock_timeout))
    if not _configured(repo_url):
        applied.ops.append(reachable(name="AMD's repository answers", url=key_url,
                                     knob="rocm_repo_key_url"))
        applied.ops.append(files.directory(name="/etc/apt/keyrings", path="/etc/apt/keyrings",
                                           mode="755"))
        applied.ops.append(files.download(name="AMD's signing key", src=key_url, dest=KEYRING,
                                          mode="644"))
        applied.ops.append(apt.sources_file(
            name="AMD's amdgpu repository", filename="amdgpu", uris=repo_url, suites=suite,
            components="main", architectures="amd64", signed_by=KEYRING))
        applied.ops.append(files.put(name="AMD's pin", src=StringIO(PIN),
                                     dest="/etc/apt/preferences.d/rocm-pin-600", mode="644"))

    def missing() -> bool:
        return any(p not in host.get_fact(DebPackages) for p in packages)

    applied.ops.append(apt.update(name="apt update", _if=missing))
    op = apt.packages(name="Install amdgpu-dkms", packages=packages,
                      extra_install_args=f"-o DPkg::Lock::Timeout={lock_timeout}")
    applied.ops.append(op)
    applied.reboot.append(op)
    return applied
