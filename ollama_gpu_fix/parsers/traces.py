"""Platform and packaging from any trace in the bundle: what a pasted line says about where
Ollama runs, when no OS facts were collected (a bundle of pasted excerpts).

Traces: Windows paths and DLL names and Ollama's *_windows.go sources; macOS app paths,
.dylib and Metal; container pastes (compose's `service  | ` prefix on log lines, `docker
inspect` JSON, `docker run`/`docker logs`/`docker exec` and `kubectl` commands, a compose
file); WSL 1 (install.sh's refusal) and WSL 2 (a resolved /usr/lib/wsl/lib library, /dev/dxg).
Never a trace: Ollama's own fixed library search globs, which list /usr/lib/wsl/lib and
C:\\Windows\\System32 on every host (`/usr/lib/wsl/lib/libnvidia-ml.so*` in
ollama/ollama@v0.5.7:discover/gpu_linux.go NvmlGlobs), so a path counts only when it is not a
glob. Each file is read line by line, lines capped, one linear regex per platform.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ollama_gpu_fix.parsers.log_lines import MAX_LINE
from ollama_gpu_fix.snapshot import Line

MAX_LINES = 20_000  # per file: traces come early in any paste

_TRACES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("wsl1", re.compile(r"WSL1 is not currently supported|WSL 1 is not supported", re.I)),
    ("wsl2", re.compile(r"/usr/lib/wsl/lib/lib[\w-]+\.so[\d.]*(?![\w.*])|/dev/dxg\b"
                        r"|microsoft-standard-WSL2")),
    ("windows", re.compile(r"[A-Za-z]:\\\\?(?:Users|Program Files|ProgramData)\\"
                           r"|AppData\\\\?Local\\\\?(?:Programs|Ollama)"
                           r"|\b\w+_windows\.go:\d|\b(?:nvcuda|amdhip64\w*|ggml-\w+|cudart64\w*)\.dll\b")),
    ("macos", re.compile(r"/Applications/Ollama\.app|\.dylib\b|\blibrary=Metal\b|\bggml_metal_init"
                         r"|\bMTLDevice\b")),
    ("container", re.compile(r"^[\w.-]{1,64}(?:-\d{1,3})? {0,32}\| (?:time=|\d{4}/\d\d/\d\d )"
                             r"|^\s*\"(?:Env|Image|Runtime|DeviceRequests)\": "
                             r"|^\s*(?:\$ |# )?(?:sudo )?(?:docker|podman|nerdctl)"
                             r" (?:run|logs|exec|compose|inspect)\b"
                             r"|^\s*(?:\$ )?kubectl |\bnvidia\.com/gpu\b|^\s*runtime: nvidia\b"
                             r"|\bcontainer \"[\w.-]{1,64}\" in pod \"")),
)
_LITERALS: dict[str, tuple[str, ...]] = {
    "wsl1": ("WSL",),
    "wsl2": ("/usr/lib/wsl/lib/", "/dev/dxg", "WSL2"),
    "windows": (":\\", "_windows.go", ".dll"),
    "macos": ("Ollama.app", ".dylib", "Metal", "metal", "MTLDevice"),
    "container": ("| ", '"', "docker", "podman", "nerdctl", "kubectl", "nvidia.com/", "runtime:",
                  " in pod "),
}
# Files whose name alone places Ollama in a container.
_CONTAINER_FILES = re.compile(
    r"^(?:docker|podman|compose|kubectl|k8s|pod)[\w.-]*\.(?:txt|ya?ml|json)$")


# Packaging: the image tag a container runs names Ollama's version when nothing else does.
IMAGE_TAG = re.compile(r"\bollama/ollama:v?(\d{1,2}\.\d{1,3}\.\d{1,3})(?:-rc\d{1,2})?\b")


def parse(sections: Mapping[str, str]) -> list[tuple[str, Line]] | None:
    """(platform, the line that says so) for each platform traced, first trace each; and
    ("image", line) for an ollama/ollama:<version> image tag."""
    found: dict[str, Line] = {}
    for name, text in sections.items():
        if not isinstance(text, str):
            continue
        # a literal every trace of a platform holds: a file without it is not scanned for it
        possible = [(w, p) for w, p in _TRACES if any(k in text for k in _LITERALS[w])]
        image = "ollama/ollama:" in text
        if not possible and not image:
            continue
        for count, raw in enumerate(text.split("\n")):
            if count >= MAX_LINES:
                break
            line = raw[:MAX_LINE]
            if image and "image" not in found and "ollama/ollama:" in line \
                    and IMAGE_TAG.search(line):
                found["image"] = Line(name, line.strip())
            for where, pattern in possible:
                if where in found or not any(k in line for k in _LITERALS[where]):
                    continue
                if pattern.search(line):
                    found[where] = Line(name, line.strip())
            if len(found) > len(_TRACES):
                break
    if "container" not in found:
        named = next((n for n in sorted(sections) if _CONTAINER_FILES.match(n)), None)
        if named:
            found["container"] = Line(named, f"(a {named} file in the bundle)")
    return list(found.items()) or None
