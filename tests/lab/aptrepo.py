"""The lab's signed apt repositories, served on the lab bridge only.

Laid out like the real archives (a Debian mirror with suites and components, NVIDIA's flat
CUDA repository, repo.radeon.com's rocm and amdgpu trees, the container toolkit's flat repo),
signed per run with a throwaway key (InRelease and Release.gpg). Hosts use them with
signed-by keyrings, the way a user points a fleet at an internal mirror.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
import sys
import time
from email.utils import formatdate
from pathlib import Path

from tests.lab import config, debs

# repo key -> (path under the web root, layout, suite, components)
REPOS: dict[str, tuple[str, str, str, list[str]]] = {
    "debian": ("debian", "tree", config.DEBIAN_SUITE,
               ["main", "contrib", "non-free", "non-free-firmware"]),
    "nvidia": ("nvidia/debian12/x86_64/", "flat", "", []),
    "nvidia-ubuntu2404": ("nvidia/ubuntu2404/x86_64/", "flat", "", []),
    "nvidia-container": ("libnvidia-container/stable/deb/amd64/", "flat", "", []),
    "rocm": ("rocm/apt/6.1.2", "tree", "jammy", ["main"]),
    "amdgpu": ("amdgpu/6.1.2/ubuntu", "tree", "jammy", ["main"]),
}
# NVIDIA publishes the same packages for every distribution, each repository with its own
# cuda-keyring: a stub of the first repository is served in the others too, unless that
# repository has its own package of that name.
MIRRORED = {"nvidia": ["nvidia-ubuntu2404"]}
KEY_PATHS = ["ogf-lab-archive-keyring.gpg", "rocm/rocm.gpg.key", "libnvidia-container/gpgkey"]


def urls() -> dict[str, str]:
    return {key: config.repo_url(path) for key, (path, *_rest) in REPOS.items()}


class Signer:
    """A throwaway signing key living in the run directory's GnuPG home."""

    def __init__(self, home: Path) -> None:
        self.home = home
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._gpg("--quick-gen-key", "ogf lab archive (throwaway) <lab@invalid>", "ed25519",
                  "sign", "1d")

    def _gpg(self, *args: str, stdin: bytes | None = None) -> bytes:
        cmd = ["gpg", "--homedir", str(self.home), "--batch", "--yes", "--pinentry-mode",
               "loopback", "--passphrase", "", *args]
        return subprocess.run(cmd, input=stdin, check=True, capture_output=True).stdout

    def public_binary(self) -> bytes:
        return self._gpg("--export")

    def public_armored(self) -> bytes:
        return self._gpg("--armor", "--export")

    def close(self) -> None:
        """Stop the gpg-agent that key generation and signing started for this home."""
        subprocess.run(["gpgconf", "--homedir", str(self.home), "--kill", "all"],
                       capture_output=True)

    def sign_release(self, release: Path) -> None:
        self._gpg("--clearsign", "-o", str(release.parent / "InRelease"), str(release))
        self._gpg("--armor", "--detach-sign", "-o", str(release) + ".gpg", str(release))


def _packages_entry(pkg: debs.Pkg, deb: Path, filename: str) -> str:
    data = deb.read_bytes()
    return (debs.control(pkg) + f"Filename: {filename}\nSize: {len(data)}\n"
            f"MD5sum: {hashlib.md5(data).hexdigest()}\n"
            f"SHA256: {hashlib.sha256(data).hexdigest()}\n\n")


def _release(directory: Path, files: list[str], suite: str, components: list[str]) -> Path:
    lines = ["Origin: ogf-lab", "Label: ogf-lab", f"Date: {formatdate(time.time(), usegmt=True)}",
             "Architectures: amd64 all"]
    if suite:
        lines[2:2] = [f"Suite: {suite}", f"Codename: {suite}"]
        lines.append("Components: " + " ".join(components))
    for algo in ("MD5Sum", "SHA256"):
        lines.append(f"{algo}:")
        for rel in files:
            data = (directory / rel).read_bytes()
            digest = hashlib.new("md5" if algo == "MD5Sum" else "sha256", data).hexdigest()
            lines.append(f" {digest} {len(data):>10} {rel}")
    release = directory / "Release"
    release.write_text("\n".join(lines) + "\n")
    return release


def build_repos(webroot: Path, workdir: Path, signer: Signer) -> dict[str, str]:
    """Build every stub, lay out and sign every repository; return their URLs by key."""
    if webroot.exists():
        shutil.rmtree(webroot)
    webroot.mkdir(parents=True)
    keyring = signer.public_binary()
    armored = signer.public_armored()
    for rel in KEY_PATHS:
        (webroot / rel).parent.mkdir(parents=True, exist_ok=True)
        (webroot / rel).write_bytes(keyring if rel.endswith(".gpg") else armored)
    repo_urls = urls()
    entries: dict[tuple[str, str], list[str]] = {}
    pkgs = debs.all_packages(repo_urls)
    own = {(p.repo, p.name) for p in pkgs}
    for pkg in pkgs:
        deb = None
        for repo in [pkg.repo] + MIRRORED.get(pkg.repo, []):
            if repo != pkg.repo and (repo, pkg.name) in own:
                continue
            path, layout, suite, _components = REPOS[repo]
            base = webroot / path
            if layout == "flat":
                pool, component = base, ""
            else:
                component = "non-free" if pkg.section.startswith("non-free") else "main"
                pool = base / "pool" / component / pkg.name[0] / pkg.name
            pool.mkdir(parents=True, exist_ok=True)
            if deb is None:
                deb = debs.build(pkg, workdir, pool, keyring)
            else:
                deb = Path(shutil.copy(deb, pool / deb.name))
            entries.setdefault((repo, component), []).append(
                _packages_entry(pkg, deb, str(deb.relative_to(base)) if layout != "flat"
                                else "./" + deb.name))
    for key, (path, layout, suite, components) in REPOS.items():
        base = webroot / path
        base.mkdir(parents=True, exist_ok=True)
        if layout == "flat":
            index = ["Packages", "Packages.gz"]
            _write_index(base, "".join(entries.get((key, ""), [])))
            signer.sign_release(_release(base, index, "", []))
            continue
        dist = base / "dists" / suite
        index = []
        for comp in components:
            sub = f"{comp}/binary-amd64"
            (dist / sub).mkdir(parents=True, exist_ok=True)
            _write_index(dist / sub, "".join(entries.get((key, comp), [])))
            index += [f"{sub}/Packages", f"{sub}/Packages.gz"]
        signer.sign_release(_release(dist, index, suite, components))
    return repo_urls


def _write_index(directory: Path, text: str) -> None:
    (directory / "Packages").write_text(text)
    with gzip.open(directory / "Packages.gz", "wt") as out:
        out.write(text)


def host_urls(os_name: str, urls: dict[str, str]) -> dict[str, str]:
    """The repository URLs a host of OS_NAME uses (what a profile's {nvidia}, {debian}, {rocm},
    {amdgpu} and {repo_base} stand for): NVIDIA's repository is per distribution."""
    nvidia = urls.get(f"nvidia-{os_name}", urls["nvidia"])
    return {"nvidia": nvidia, "debian": urls["debian"], "rocm": urls["rocm"],
            "amdgpu": urls["amdgpu"], "repo_base": config.repo_url("").rstrip("/")}


def serve(webroot: Path, log: Path) -> subprocess.Popen:
    """python3 -m http.server bound to the bridge address only."""
    out = open(log, "w")
    return subprocess.Popen(
        [sys.executable, "-m", "http.server", str(config.REPO_PORT), "--bind",
         config.BRIDGE_ADDR, "--directory", str(webroot)],
        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
