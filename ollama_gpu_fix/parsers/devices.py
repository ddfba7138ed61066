"""mokutil.txt, dev-nodes.txt, ldconfig.txt, nv-tegra-release.txt.

Secure Boot refuses an unsigned (DKMS-built) NVIDIA module; device-node owners and modes
decide whether the service user can open /dev/kfd, /dev/dri/renderD*, /dev/nvidia*; the
loader cache shows which libcuda a process gets (a Linux libcuda.so.5xx inside WSL2 shadows
/usr/lib/wsl/lib); /etc/nv_tegra_release marks a Jetson and its L4T release.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ollama_gpu_fix.parsers.kernel import section_lines
from ollama_gpu_fix.snapshot import DevNode, Line, SecureBoot, SharedLib, TegraRelease

# ---- mokutil --sb-state -------------------------------------------------------------------


def parse_secure_boot(sections: Mapping[str, str]) -> SecureBoot | None:
    """`SecureBoot enabled` -> True; `disabled` -> False; shim validation off -> False.

    "EFI variables are not supported" stays None: a container without efivarfs says the same
    on a host that does enforce Secure Boot.
    """
    if "mokutil.txt" not in sections:
        return None
    result = SecureBoot()
    for line, text in section_lines(sections, "mokutil.txt"):
        low = text.lower()
        if re.search(r"secureboot (?:is )?enabled", low):
            result.enabled = True if result.enabled is None else result.enabled
        elif re.search(r"secureboot (?:is )?disabled|doesn't support secure boot", low):
            result.enabled = False
        elif "validation is disabled" in low:
            result.enabled = False  # enabled in firmware, but shim does not verify modules
        elif "efi variables are not supported" not in low and "secureboot" not in low:
            continue
        result.raw.append(line)
    return result


# ---- ls -l of device nodes ----------------------------------------------------------------

_LS = re.compile(
    r"^(?P<mode>[-bcdlps][-rwxsStT]{9})[.+@]?\s+\d+\s+(?P<owner>\S+)\s+(?P<group>\S+)\s+(?P<rest>.+)$"
)


def _dev_path(directory: str | None, name: str) -> str:
    if name.startswith("/"):
        return name
    if directory:
        return directory.rstrip("/") + "/" + name
    if re.match(r"^(renderD\d+|card\d+)$", name):
        return "/dev/dri/" + name  # `ls -l /dev/dri` alone prints no directory header
    return "/dev/" + name


def parse_dev_nodes(sections: Mapping[str, str]) -> list[DevNode] | None:
    """Character/block device nodes from `ls -l` lines, directory listings included."""
    if "dev-nodes.txt" not in sections:
        return None
    nodes: list[DevNode] = []
    directory: str | None = None
    for line, text in section_lines(sections, "dev-nodes.txt"):
        header = re.match(r"^(/\S*):$", text)
        if header:
            directory = header.group(1)
            continue
        match = _LS.match(text)
        if not match or match.group("mode")[0] not in "cb":
            continue
        rest = match.group("rest").split(" -> ")[0].split()
        if not rest:
            continue
        nodes.append(
            DevNode(
                path=_dev_path(directory, rest[-1]),
                mode=match.group("mode"),
                owner=match.group("owner"),
                group=match.group("group"),
                raw=line,
            )
        )
    return nodes


# ---- ldconfig -p and the probe's `file PATH` lines ------------------------------------------

_FILE = re.compile(r"^file\s+(?P<path>/\S+)\s*$")
_LIB_IN_TOKEN = re.compile(
    r"/(lib(?:cuda|cudart|nvidia-ml|amdhip64|amd_comgr|vulkan)[^/\s:]{0,64}\.so[^\s:/]*)"
)


def _ldconfig_line(text: str) -> tuple[str, str | None, str] | None:
    """`libcuda.so.1 (libc6,x86-64) => /usr/lib/.../libcuda.so.1` -> (soname, arch, path)."""
    soname, _, rest = text.partition(" ")
    rest = rest.lstrip()
    if ".so" not in soname or not rest.startswith("("):
        return None
    close = rest.find(")")
    arrow = rest.find("=>", close)
    if close < 0 or arrow < 0:
        return None
    path = rest[arrow + 2 :].split()
    if not path:
        return None
    flags = rest[1:close].split(",")
    return soname, (flags[1].strip() if len(flags) > 1 else None), path[0]


def _file_output(text: str) -> tuple[str, str] | None:
    """`/path/libcuda.so.1: ELF 64-bit ...` (file(1) output) -> (path, description)."""
    path, sep, desc = text.partition(": ")
    if sep and path.startswith("/") and ".so" in path and not any(c.isspace() for c in path):
        return path, desc
    return None


def _lib_paths(text: str) -> list[str]:
    """GPU library paths named in a line (word by word: linear)."""
    found = []
    for token in text.split():
        start = token.find("/")
        match = _LIB_IN_TOKEN.search(token, start) if start >= 0 else None
        if match:
            found.append(token[start : match.end()])
    return found


def _arch(text: str) -> str | None:
    low = text.lower()
    if "x86-64" in low or "x86_64" in low:
        return "x86-64"
    if "aarch64" in low or "arm aarch64" in low:
        return "aarch64"
    if "80386" in low or "i386" in low:
        return "i386"
    return None


def parse_ldconfig(sections: Mapping[str, str]) -> list[SharedLib] | None:
    """Libraries from `ldconfig -p` lines, the probe's `file PATH` lines and pasted paths."""
    if "ldconfig.txt" not in sections:
        return None
    libs: dict[str, SharedLib] = {}

    def add(path: str, arch: str | None, line: Line) -> None:
        lib = libs.get(path)
        if lib is None:
            libs[path] = SharedLib(soname=path.rsplit("/", 1)[-1], path=path, arch=arch, raw=line)
        elif lib.arch is None:
            lib.arch = arch

    for line, text in section_lines(sections, "ldconfig.txt"):
        entry = _ldconfig_line(text)
        if entry:
            soname, arch, path = entry
            add(path, arch, line)
            libs[path].soname = soname
            continue
        match = _FILE.match(text)
        if match:
            add(match.group("path"), None, line)
            continue
        described = _file_output(text)
        if described:
            add(described[0], _arch(described[1]), line)
            continue
        for path in _lib_paths(text):  # `ls -l /usr/lib/wsl/lib/libcuda*` and such
            add(path, None, line)
    return list(libs.values())


# ---- /etc/nv_tegra_release ----------------------------------------------------------------


def parse_tegra(sections: Mapping[str, str]) -> TegraRelease | None:
    """`# R36 (release), REVISION: 4.0, ...` -> release R36, revision 4.0."""
    if "nv-tegra-release.txt" not in sections:
        return None
    result = TegraRelease()
    for line, text in section_lines(sections, "nv-tegra-release.txt"):
        release = re.search(r"\b(R\d+)\s*\(release\)", text)
        if not release:
            continue
        result.raw.append(line)
        if result.release is None:
            result.release = release.group(1)
            revision = re.search(r"REVISION:\s*([\w.]+)", text)
            result.revision = revision.group(1) if revision else None
    return result
