"""Stub .deb packages under the real names the remedies install or purge.

Each stub carries the files that matter to the probe and the Ollama double (nvidia-smi,
libcuda.so.<ver>, /usr/local/cuda-12.4/bin/nvcc, /opt/rocm/.info/version, Vulkan ICDs, ...)
and the dependency, conflict and replacement relations that make apt behave as with the real
archives (installing nvidia-driver-550 removes the 535 driver). Executables are the lab's shims.
Built with dpkg-deb; nothing in them is a real driver.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab import config
from tests.lab.elfstub import elf_shared_object

LIBDIR = "/usr/lib/x86_64-linux-gnu"


@dataclass
class Pkg:
    name: str
    version: str
    repo: str  # key of config.REPOS
    description: str
    arch: str = "amd64"
    section: str = "misc"
    depends: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    provides: list[str] = field(default_factory=list)
    # path -> bytes | str (file), ("link", target), ("shim", name), ("elf", soname)
    files: dict[str, object] = field(default_factory=dict)
    postinst: str = ""
    postrm: str = ""

    @property
    def filename(self) -> str:
        return f"{self.name}_{self.version.split(':')[-1]}_{self.arch}.deb"


NVIDIA_DRIVERS = {
    # name: (version, repo)
    "nvidia-driver": ("535.183.01-1~deb12u1", "debian"),
    "nvidia-driver-535": ("535.183.06-1", "nvidia"),
    "nvidia-driver-550": ("550.90.07-1", "nvidia"),
    "nvidia-driver-570": ("570.172.08-1", "nvidia"),
    "nvidia-driver-580": ("580.159.04-1", "nvidia"),  # the captured H100's driver
}


def _driver(name: str, version: str, repo: str, flavour: str = "Kernel Module") -> Pkg:
    upstream = version.split("-")[0]
    others = [n for n in NVIDIA_DRIVERS if n != name] + (["nvidia-open"] if name != "nvidia-open" else [])
    files: dict[str, object] = {
        "/usr/bin/nvidia-smi": ("shim", "nvidia-smi"),
        f"{LIBDIR}/libcuda.so.{upstream}": ("elf", "libcuda.so.1"),
        f"{LIBDIR}/libcuda.so.1": ("link", f"libcuda.so.{upstream}"),
        f"{LIBDIR}/libcuda.so": ("link", "libcuda.so.1"),
        f"{LIBDIR}/libnvidia-ml.so.{upstream}": ("elf", "libnvidia-ml.so.1"),
        f"{LIBDIR}/libnvidia-ptxjitcompiler.so.{upstream}": ("elf", "libnvidia-ptxjitcompiler.so.1"),
        "/usr/lib/ogf-lab/nvidia/userspace.version": upstream + "\n",
        # What DKMS built for the next boot: the lab's hwboot loads this module version.
        "/usr/lib/ogf-lab/nvidia/kmod.version": upstream + "\n",
        "/usr/lib/ogf-lab/nvidia/kmod.flavour": flavour + "\n",
    }
    return Pkg(
        name=name, version=version, repo=repo, section="non-free/kernel",
        description=f"NVIDIA driver metapackage (lab stub, {upstream})",
        conflicts=others + ["libcuda1", "nvidia-smi"], provides=["libcuda1", "nvidia-smi"],
        files=files, postinst="ldconfig\n", postrm="ldconfig\n",
    )


def _toolkit(name: str, version: str, repo: str, cuda: str, prefix: str) -> Pkg:
    major = cuda.split(".")[0]
    files: dict[str, object] = {
        f"{prefix}/bin/nvcc": ("shim", "nvcc"),
        f"{prefix}/bin/.nvcc-version": cuda + "\n",
    }
    if prefix.startswith("/usr/local/"):
        lib = f"{prefix}/targets/x86_64-linux/lib"
        files[f"{prefix}/version.json"] = (
            '{\n   "cuda" : {\n      "name" : "CUDA SDK",\n'
            f'      "version" : "{cuda}"\n   }}\n}}\n'
        )
        files[f"{prefix}/lib64"] = ("link", "targets/x86_64-linux/lib")
        files[f"{lib}/libcudart.so.{cuda}"] = ("elf", f"libcudart.so.{major}")
        files[f"/etc/ld.so.conf.d/988_cuda-{major}.conf"] = lib + "\n"
        postinst = (
            f"update-alternatives --install /usr/local/cuda cuda {prefix} {major}0\n"
            f"update-alternatives --install /usr/local/cuda-{major} cuda-{major} {prefix} 10\n"
            "ldconfig\n"
        )
        postrm = (
            'if [ "$1" = remove ] || [ "$1" = purge ]; then\n'
            f"  update-alternatives --remove cuda {prefix} || true\n"
            f"  update-alternatives --remove cuda-{major} {prefix} || true\nfi\nldconfig\n"
        )
    else:  # Debian's nvidia-cuda-toolkit: nvcc under /usr/lib/nvidia-cuda-toolkit, cudart multiarch
        files = {
            "/usr/lib/nvidia-cuda-toolkit/bin/nvcc": ("shim", "nvcc"),
            "/usr/lib/nvidia-cuda-toolkit/bin/.nvcc-version": cuda + "\n",
            "/usr/bin/nvcc": ("link", "../lib/nvidia-cuda-toolkit/bin/nvcc"),
            f"{LIBDIR}/libcudart.so.{cuda}.89": ("elf", "libcudart.so.11.0"),
        }
        postinst, postrm = "ldconfig\n", "ldconfig\n"
    return Pkg(name=name, version=version, repo=repo, section="devel",
               description=f"CUDA Toolkit {cuda} (lab stub)", files=files,
               postinst=postinst, postrm=postrm)


def _cuda_keyring(repo: str, distro: str, url: str) -> Pkg:
    """NVIDIA's keyring package of one distribution's repository: it writes that repository's
    source (cuda-<distro>-x86_64.list) itself."""
    return Pkg("cuda-keyring", "1.1-1", repo, "NVIDIA CUDA repository keyring (lab stub)",
               arch="all", files={
                   "/usr/share/keyrings/cuda-archive-keyring.gpg": ("keyring", ""),
                   f"/etc/apt/sources.list.d/cuda-{distro}-x86_64.list": (
                       f"deb [signed-by=/usr/share/keyrings/cuda-archive-keyring.gpg] {url} /\n"),
               })


def all_packages(urls: dict[str, str]) -> list[Pkg]:
    pkgs = [_driver(n, v, r) for n, (v, r) in NVIDIA_DRIVERS.items()]
    pkgs += [
        # NVIDIA's open kernel modules (Turing and newer), unversioned meta + branch pin
        _driver("nvidia-open", "580.159.04-1", "nvidia", "Open Kernel Module"),
        Pkg("nvidia-driver-pinning-580", "580-1", "nvidia",
            "Pins the NVIDIA driver to branch 580 (lab stub)", arch="all", files={
                "/etc/apt/preferences.d/nvidia-driver-pinning-580":
                    "Package: nvidia-open cuda-drivers\nPin: version 580.*\nPin-Priority: 1000\n",
            }),
        # What DKMS builds against: the running kernel's headers (the lab plays 6.1.0-28)
        Pkg("linux-headers-6.1.0-28-amd64", "6.1.119-1", "debian",
            "Header files for Linux 6.1.0-28-amd64 (lab stub)", files={
                "/usr/src/linux-headers-6.1.0-28-amd64/Makefile": "# lab stub\n",
            }),
    ]
    pkgs += [
        Pkg("cuda-drivers", "580.159.04-1", "nvidia", "CUDA drivers metapackage (lab stub)",
            depends=["nvidia-driver-580 (>= 580.159.04)"]),
        Pkg("cuda-drivers-580", "580.159.04-1", "nvidia", "CUDA 580 drivers (lab stub)",
            depends=["nvidia-driver-580 (>= 580.159.04)"]),
        Pkg("cuda-drivers-550", "550.90.07-1", "nvidia", "CUDA 550 drivers (lab stub)",
            depends=["nvidia-driver-550 (>= 550.90.07)"]),
        Pkg("cuda-drivers-570", "570.172.08-1", "nvidia", "CUDA 570 drivers (lab stub)",
            depends=["nvidia-driver-570 (>= 570.172.08)"]),
        _cuda_keyring("nvidia", "debian12", urls["nvidia"]),
        _cuda_keyring("nvidia-ubuntu2404", "ubuntu2404", urls["nvidia-ubuntu2404"]),
        _toolkit("cuda-toolkit-12-4", "12.4.1-1", "nvidia", "12.4", "/usr/local/cuda-12.4"),
        _toolkit("cuda-toolkit-12-8", "12.8.1-1", "nvidia", "12.8", "/usr/local/cuda-12.8"),
        _toolkit("cuda-toolkit-11-8", "11.8.0-1", "nvidia", "11.8", "/usr/local/cuda-11.8"),
        _toolkit("nvidia-cuda-toolkit", "11.8.89~11.8.0-5~deb12u1", "debian", "11.8", "/usr"),
        Pkg("nvidia-container-toolkit", "1.17.8-1", "nvidia-container",
            "NVIDIA Container Toolkit (lab stub)", files={
                "/usr/bin/nvidia-ctk": "#!/bin/sh\necho 'NVIDIA Container Toolkit CLI version 1.17.8'\n",
                "/usr/bin/nvidia-container-runtime": "#!/bin/sh\nexit 0\n",
            }),
        Pkg("libvulkan1", "1.3.239.0-1", "debian", "Vulkan loader library (lab stub)",
            section="libs", files={
                f"{LIBDIR}/libvulkan.so.1.3.239": ("elf", "libvulkan.so.1"),
            }, postinst="ldconfig\n", postrm="ldconfig\n"),
        Pkg("mesa-vulkan-drivers", "22.3.6-1+deb12u1", "debian",
            "Mesa Vulkan graphics drivers (lab stub)", section="libs", depends=["libvulkan1"],
            files={
                f"{LIBDIR}/libvulkan_radeon.so": ("elf", "libvulkan_radeon.so"),
                f"{LIBDIR}/libvulkan_intel.so": ("elf", "libvulkan_intel.so"),
                f"{LIBDIR}/libvulkan_lvp.so": ("elf", "libvulkan_lvp.so"),
                "/usr/share/vulkan/icd.d/radeon_icd.x86_64.json": _icd("libvulkan_radeon.so"),
                "/usr/share/vulkan/icd.d/intel_icd.x86_64.json": _icd("libvulkan_intel.so"),
                "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json": _icd("libvulkan_lvp.so"),
            }),
        Pkg("vulkan-tools", "1.3.239.0+dfsg1-1", "debian", "Vulkan tools (lab stub)",
            depends=["libvulkan1"], files={"/usr/bin/vulkaninfo": ("shim", "vulkaninfo")}),
        Pkg("mokutil", "0.6.0-2", "debian", "tools for manipulating machine owner keys (stub)",
            files={"/usr/bin/mokutil": ("shim", "mokutil")}),
        Pkg("rocm-core", "6.1.2.60102-119~22.04", "rocm", "ROCm core (lab stub)", files={
            "/opt/rocm-6.1.2/.info/version": "6.1.2-119\n",
            "/opt/rocm": ("link", "/etc/alternatives/rocm"),
            "/etc/ld.so.conf.d/20-rocm.conf": "/opt/rocm/lib\n",
        }, postinst=(
            "update-alternatives --install /etc/alternatives/rocm rocm /opt/rocm-6.1.2 60102"
            " 2>/dev/null || ln -sfn /opt/rocm-6.1.2 /etc/alternatives/rocm\nldconfig\n")),
        Pkg("hip-runtime-amd", "6.1.40093.60102-119~22.04", "rocm", "HIP runtime (lab stub)",
            depends=["rocm-core"], files={
                "/opt/rocm-6.1.2/lib/libamdhip64.so.6.1.60102": ("elf", "libamdhip64.so.6"),
                "/opt/rocm-6.1.2/lib/libamd_comgr.so.2.7.60102": ("elf", "libamd_comgr.so.2"),
            }, postinst="ldconfig\n", postrm="ldconfig\n"),
        Pkg("rocminfo", "1.0.0.60102-119~22.04", "rocm", "ROCm system info (lab stub)",
            depends=["rocm-core"], files={
                "/opt/rocm-6.1.2/bin/rocminfo": ("shim", "rocminfo"),
                "/usr/bin/rocminfo": ("link", "/opt/rocm-6.1.2/bin/rocminfo"),
            }),
        Pkg("rocm-smi-lib", "7.2.0.60102-119~22.04", "rocm", "ROCm SMI (lab stub)",
            depends=["rocm-core"], files={
                "/opt/rocm-6.1.2/bin/rocm-smi": ("shim", "rocm-smi"),
                "/usr/bin/rocm-smi": ("link", "/opt/rocm-6.1.2/bin/rocm-smi"),
            }),
        Pkg("rocm-hip-runtime", "6.1.2.60102-119~22.04", "rocm", "ROCm HIP runtime (stub)",
            depends=["hip-runtime-amd", "rocminfo", "rocm-core"]),
        Pkg("rocm", "6.1.2.60102-119~22.04", "rocm", "ROCm meta package (lab stub)",
            depends=["rocm-hip-runtime", "rocm-smi-lib"]),
        Pkg("amdgpu-dkms", "1:6.7.0.60102-1781449.22.04", "amdgpu",
            "amdgpu driver in DKMS format (lab stub)", arch="all", files={
                "/usr/lib/ogf-lab/amdgpu/kmod.version": "6.7.0-1781449.22.04\n",
            }),
    ]
    return pkgs


def _icd(lib: str) -> str:
    return ('{\n    "ICD": {\n        "api_version": "1.3.230",\n'
            f'        "library_path": "{LIBDIR}/{lib}"\n    }},\n'
            '    "file_format_version": "1.0.0"\n}\n')


def control(pkg: Pkg) -> str:
    lines = [
        f"Package: {pkg.name}", f"Version: {pkg.version}", f"Architecture: {pkg.arch}",
        "Maintainer: ogf lab <lab@invalid>", f"Section: {pkg.section}", "Priority: optional",
    ]
    for key, vals in (("Depends", pkg.depends), ("Conflicts", pkg.conflicts),
                      ("Replaces", pkg.conflicts), ("Provides", pkg.provides)):
        if vals:
            lines.append(f"{key}: {', '.join(vals)}")
    lines.append(f"Description: {pkg.description}")
    return "\n".join(lines) + "\n"


def build(pkg: Pkg, workdir: Path, outdir: Path, keyring: bytes) -> Path:
    """Lay out the package tree and run dpkg-deb."""
    root = workdir / pkg.repo / pkg.name
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(control(pkg))
    for script, body in (("postinst", pkg.postinst), ("postrm", pkg.postrm)):
        if body:
            path = root / "DEBIAN" / script
            path.write_text("#!/bin/sh\nset -e\n" + body)
            path.chmod(0o755)
    for dest, spec in pkg.files.items():
        path = root / dest.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = 0o644
        if isinstance(spec, tuple):
            kind, arg = spec
            if kind == "link":
                path.symlink_to(arg)
                continue
            if kind == "shim":
                data = (config.SHIMS_DIR / arg).read_bytes()
                mode = 0o755
            elif kind == "elf":
                data = elf_shared_object(arg)
            elif kind == "keyring":
                data = keyring
            else:
                raise ValueError(kind)
        else:
            data = spec.encode() if isinstance(spec, str) else spec
            if data.startswith(b"#!"):
                mode = 0o755
        path.write_bytes(data)
        path.chmod(mode)
    out = outdir / pkg.filename
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "--build", str(root), str(out)],
        check=True, capture_output=True,
    )
    return out
