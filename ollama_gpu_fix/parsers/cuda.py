"""nvcc-version.txt, cuda-toolkits.txt, packages.txt.

Ollama bundles its own CUDA runtime, so a system toolkit matters only when it gets in the way:
a stale CUDA 11 runtime on the loader path (ld.so.conf.d, /usr/local/cuda-11.x) or the
distribution's `nvidia-cuda-toolkit`. Package lines are accepted in the probe's `NAME VERSION`
form and as pasted `dpkg -l` / `rpm -qa` lines, wherever they appear.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ollama_gpu_fix.knowledge.collection import GPU_PACKAGE_PREFIXES
from ollama_gpu_fix.parsers.kernel import section_lines
from ollama_gpu_fix.snapshot import CudaInstall, CudaToolkit, Line

_NVCC = re.compile(r"release (\d+\.\d+)|\bV(\d+\.\d+)\.\d+")
_DIR = re.compile(r"^dir\s+(/\S+)(?:\s+(\S+))?")
_LDCONF = re.compile(r"^ldconf\s+(\S+)\s+(.+)$")
_CUDA_IN_TOKEN = re.compile(r"/cuda(?:-(\d+\.\d+))?(?=/|$)")
_DPKG = re.compile(r"^(?P<st>[uihrp][nicuhfwt]R?)\s+(?P<name>[a-z0-9][a-z0-9+.:-]+)\s+(?P<ver>\S+)")
_RPM = re.compile(
    r"^(?P<name>[A-Za-z0-9_.+-]+?)-(?P<ver>\d[\w.+~^]*-[\w.+~^]+?)\.(?:x86_64|aarch64|noarch|i686|ppc64le)$"
)
_PLAIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.+:-]*)\s+(?P<ver>\d[\w.+~:-]*)\s*$")
_GPU_PACKAGE = re.compile("^(?:" + "|".join(map(re.escape, GPU_PACKAGE_PREFIXES)) + ")", re.I)
_CUDA_PACKAGE = re.compile(r"^(cuda|nvidia|libnvidia|libcuda|kmod-nvidia|akmod-nvidia)", re.I)
_TOOLKIT_PACKAGE = re.compile(
    r"^(?:nvidia-cuda-toolkit|cuda-toolkit(?:-\d+-\d+)?|cuda(?:-\d+-\d+)?)$"
)


def _major_minor(text: str | None) -> str | None:
    match = re.match(r"^\D{0,3}?(\d+)\.(\d+)", text or "")
    return f"{match.group(1)}.{match.group(2)}" if match else None


def package_line(text: str) -> tuple[str, str] | None:
    """(name, version) from a probe `NAME VERSION`, `dpkg -l` or `rpm -qa` line."""
    match = _DPKG.match(text)
    if match:
        if not match.group("st").startswith(("i", "h")) or match.group("st")[1] != "i":
            return None  # rc (removed, config left), un, pn: not installed
        return match.group("name").split(":")[0], match.group("ver")
    match = _RPM.match(text) or _PLAIN.match(text)
    if match:
        return match.group("name").split(":")[0], match.group("ver")
    return None


def _packages(sections: Mapping[str, str]) -> tuple[dict[str, str], dict[str, Line]]:
    found: dict[str, str] = {}
    lines: dict[str, Line] = {}
    for name in ("packages.txt", "cuda-toolkits.txt"):
        for line, text in section_lines(sections, name):
            if text.startswith(("dir ", "ldconf ", "/")):
                continue
            pkg = package_line(text)
            if pkg and _GPU_PACKAGE.match(pkg[0]):
                found.setdefault(pkg[0], pkg[1])
                lines.setdefault(pkg[0], line)
    return found, lines


def parse_packages(sections: Mapping[str, str]) -> dict[str, str] | None:
    """GPU-related installed packages: name -> version (None when no package list was given)."""
    found, _ = _packages(sections)
    if "packages.txt" not in sections and not found:
        return None
    return found


def _toolkit_from_package(name: str, version: str, line: Line) -> CudaToolkit | None:
    if not _TOOLKIT_PACKAGE.match(name):
        return None
    numbered = re.search(r"-(\d+)-(\d+)$", name)
    ver = f"{numbered.group(1)}.{numbered.group(2)}" if numbered else _major_minor(version)
    return CudaToolkit(version=ver, package=name, raw=line)


def parse(sections: Mapping[str, str]) -> CudaInstall | None:
    names = ("nvcc-version.txt", "cuda-toolkits.txt", "packages.txt")
    if not any(name in sections for name in names):
        return None
    cuda = CudaInstall()
    for line, text in section_lines(sections, "nvcc-version.txt"):
        match = _NVCC.search(text)
        if match and cuda.nvcc_version is None:
            cuda.nvcc_version = match.group(1) or match.group(2)
            cuda.raw.append(line)
        path = _nvcc_path(text)
        if path and cuda.nvcc_path is None:
            cuda.nvcc_path = path
            cuda.raw.append(line)
    if cuda.nvcc_version and cuda.nvcc_path is None:
        for _, text in section_lines(sections, "probe-meta.txt"):
            if text.startswith("tool.nvcc="):
                cuda.nvcc_path = text.partition("=")[2].strip() or None

    seen_paths: set[str] = set()
    for line, text in section_lines(sections, "cuda-toolkits.txt"):
        match = _DIR.match(text)
        if match:
            path, ver = match.group(1), match.group(2)
            ver = None if ver in (None, "-") else ver
            cuda.toolkits.append(
                CudaToolkit(version=_major_minor(ver) or _path_version(path), path=path, raw=line)
            )
            seen_paths.add(path)
            cuda.raw.append(line)
            continue
        match = _LDCONF.match(text)
        if match:
            cuda.ld_conf_paths.append(match.group(2).strip())
            cuda.raw.append(line)
            continue
        if package_line(text):
            continue
        for path, version in _cuda_paths(text):  # pasted `ls -d /usr/local/cuda*`, etc.
            if path not in seen_paths and path.startswith(("/usr/local/", "/opt/")):
                seen_paths.add(path)
                cuda.toolkits.append(CudaToolkit(version=version, path=path, raw=line))
                cuda.raw.append(line)

    found, lines = _packages(sections)
    for name, version in found.items():
        if _CUDA_PACKAGE.match(name):
            cuda.packages[name] = version
        toolkit = _toolkit_from_package(name, version, lines[name])
        if toolkit:
            cuda.toolkits.append(toolkit)
    return cuda


def _nvcc_path(text: str) -> str | None:
    """The first /path/to/nvcc in a line (word by word: linear)."""
    for token in text.split():
        end = token.find("/nvcc")
        if token.startswith("/") and end > 0:
            after = token[end + 5 : end + 6]
            if not (after.isalnum() or after == "_"):
                return token[: end + 5]
    return None


def _cuda_paths(text: str) -> list[tuple[str, str | None]]:
    """(/…/cuda[-X.Y], X.Y) for each word that names a CUDA directory (word by word: linear)."""
    found = []
    for token in text.split():
        if not token.startswith("/"):
            continue
        match = _CUDA_IN_TOKEN.search(token)
        if match:
            found.append((token[: match.end()], match.group(1)))
    return found


def _path_version(path: str) -> str | None:
    match = re.search(r"cuda-(\d+\.\d+)", path)
    return match.group(1) if match else None
