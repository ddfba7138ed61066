#!/usr/bin/python3
"""Ollama TEST DOUBLE for the lab. This is not Ollama.

The real Ollama cannot be installed on the lab machine, so each lab host runs this stand-in as
/usr/local/bin/ollama, started by the ollama.service unit that Ollama's install.sh writes
(User=ollama). It speaks the real HTTP API (/api/version, /api/tags, /api/ps, /api/generate,
/api/pull) and CLI (`serve`, `-v`, `ps`, `list`), and prints the real startup log lines of the
Ollama version it plays (eras A, B, C in ollama-anchor.md section 0 and 3).

It decides GPU or CPU the way the real one does, from what is true on the host when `serve`
starts: its own environment (CUDA_VISIBLE_DEVICES, HSA_OVERRIDE_GFX_VERSION as ROCm sees it,
quotes included, OLLAMA_VULKAN, OLLAMA_IGPU_ENABLE, an LD_LIBRARY_PATH that puts a CUDA 11
cuBLAS/cudart in front of the bundled CUDA 12 one, ...), its user's groups (can it open
/dev/kfd and the render node?), the libraries the dynamic linker resolves (libcuda.so.1,
libvulkan.so.1 and the ICDs), the loaded kernel modules (/proc/driver/nvidia/version,
/dev/kfd), the PCI and KFD sysfs trees, and its own lib/ollama bundle. "GPU" generation runs
at about 45 tokens/s, "CPU" at about 3 tokens/s; a request with options.num_gpu 0 runs on
the CPU, as the real one does.
"""

from __future__ import annotations

import glob
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

# http.server and urllib are imported where used: `serve` must reach its listen() as fast as
# a Go binary does (see serve), and the CLI needs no server.

VERSION = "0.0.0"  # replaced by the lab's installer with the version this host plays
GPU_TOKENS_PER_S = 45.0
CPU_TOKENS_PER_S = 3.0
MODEL_SIZE_LOADED = 1_051_312_128
HW_FILE = "/usr/lib/ogf-lab/hardware.json"
APPS_FILE = "/run/ogf-lab/gpu/apps.json"
# Host truth a test sets while Ollama runs: "PID MIB", another job (process PID) holds MIB of
# the GPU's memory (a training run that started mid-rollout), so a model loaded while it runs
# gets only part of its layers on the GPU, as Ollama's scheduler does when free VRAM is short.
# The job ends when its process does.
BUSY_FILE = "/usr/lib/ogf-lab/gpu-busy"
BUSY_LAYERS = 12  # of 25: what fits beside the other job
GIB = 1024**3


def vtuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


def era() -> str:
    v = vtuple(VERSION)
    if v <= (0, 12, 3):
        return "A"
    if v < (0, 30, 0):
        return "B"
    return "C"


def lib_dir() -> str:
    exe = os.path.realpath(sys.argv[0])
    for cand in (os.path.join(os.path.dirname(os.path.dirname(exe)), "lib", "ollama"),
                 os.path.join(os.path.dirname(exe), "lib", "ollama")):
        if os.path.isdir(cand):
            return cand
    return "/usr/local/lib/ollama"


# ---------------------------------------------------------------------------- logging


class Log:
    """Go slog text lines on stderr (journald stores them for `journalctl -u ollama`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __call__(self, level: str, source: str, msg: str, **kv: object) -> None:
        now = datetime.now(timezone.utc).astimezone()
        stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        parts = [f"time={stamp}", f"level={level}", f"source={source}", f"msg={quote(msg)}"]
        parts += [f"{k if ' ' not in k else quote(k)}={quote(str(v))}" for k, v in kv.items()]
        with self.lock:
            sys.stderr.write(" ".join(parts) + "\n")
            sys.stderr.flush()

    def raw(self, text: str) -> None:
        with self.lock:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()


def quote(value: str) -> str:
    if value == "" or re.search(r'[\s"=]', value):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


log = Log()


def env(name: str) -> str:
    """Ollama's envconfig.Var: trims spaces and surrounding quotes."""
    return os.environ.get(name, "").strip().strip("\"'")


def server_config() -> str:
    keys = ["CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL", "HIP_VISIBLE_DEVICES",
            "HSA_OVERRIDE_GFX_VERSION", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY",
            "OLLAMA_CONTEXT_LENGTH", "OLLAMA_DEBUG", "OLLAMA_FLASH_ATTENTION",
            "OLLAMA_GPU_OVERHEAD", "OLLAMA_HOST", "OLLAMA_KEEP_ALIVE", "OLLAMA_KV_CACHE_TYPE",
            "OLLAMA_LLM_LIBRARY", "OLLAMA_LOAD_TIMEOUT", "OLLAMA_MAX_LOADED_MODELS",
            "OLLAMA_MAX_QUEUE", "OLLAMA_MODELS", "OLLAMA_MULTIUSER_CACHE", "OLLAMA_NEW_ENGINE",
            "OLLAMA_NOHISTORY", "OLLAMA_NOPRUNE", "OLLAMA_NUM_PARALLEL", "OLLAMA_ORIGINS",
            "OLLAMA_SCHED_SPREAD", "ROCR_VISIBLE_DEVICES", "http_proxy", "https_proxy",
            "no_proxy"]
    if era() in "BC":
        keys += ["GGML_VK_VISIBLE_DEVICES", "OLLAMA_VULKAN"]
    if era() == "C":
        keys += ["OLLAMA_IGPU_ENABLE"]
    defaults = {
        "OLLAMA_CONTEXT_LENGTH": "4096", "OLLAMA_DEBUG": "INFO", "OLLAMA_FLASH_ATTENTION": "false",
        "OLLAMA_GPU_OVERHEAD": "0", "OLLAMA_HOST": "http://" + host_port(),
        "OLLAMA_KEEP_ALIVE": "5m0s", "OLLAMA_LOAD_TIMEOUT": "5m0s",
        "OLLAMA_MAX_LOADED_MODELS": "0", "OLLAMA_MAX_QUEUE": "512",
        "OLLAMA_MODELS": models_dir(), "OLLAMA_MULTIUSER_CACHE": "false",
        "OLLAMA_NEW_ENGINE": "false", "OLLAMA_NOHISTORY": "false", "OLLAMA_NOPRUNE": "false",
        "OLLAMA_NUM_PARALLEL": "1", "OLLAMA_SCHED_SPREAD": "false",
        "OLLAMA_VULKAN": "true" if era() == "C" else "false",
        "OLLAMA_ORIGINS": "[http://localhost https://localhost http://localhost:* "
                          "https://localhost:* http://127.0.0.1 https://127.0.0.1 "
                          "http://127.0.0.1:* https://127.0.0.1:* http://0.0.0.0 "
                          "https://0.0.0.0 http://0.0.0.0:* https://0.0.0.0:* app://* "
                          "file://* tauri://* vscode-webview://* vscode-file://*]",
    }
    items = []
    for k in sorted(keys):
        raw = os.environ.get(k)
        if k == "OLLAMA_VULKAN" and raw is not None:
            value = "true" if env(k) in ("1", "true") else "false"
        elif raw is not None and k not in ("OLLAMA_HOST", "OLLAMA_ORIGINS"):
            value = raw  # the raw value, quotes included, as in issue #5090
        else:
            value = defaults.get(k, "")
        items.append(f"{k}:{value}")
    return "map[" + " ".join(items) + "]"


def host_port() -> str:
    value = env("OLLAMA_HOST") or "127.0.0.1:11434"
    value = re.sub(r"^https?://", "", value)
    if ":" not in value:
        value += ":11434"
    return value


def models_dir() -> str:
    return env("OLLAMA_MODELS") or os.path.expanduser("~/.ollama/models")


# ---------------------------------------------------------------------------- host truth


def hardware() -> dict:
    try:
        with open(HW_FILE) as f:
            return json.load(f)
    except OSError:
        return {}


def pci_gpus(vendor: str) -> list[dict]:
    """GPUs on the PCI bus (sysfs), enriched with what the device itself would report."""
    found = []
    catalog = {g["address"]: g for g in hardware().get("gpus", [])}
    for d in sorted(glob.glob("/sys/bus/pci/devices/*")):
        try:
            ven = open(d + "/vendor").read().strip()
            cls = open(d + "/class").read().strip()
        except OSError:
            continue
        if ven == vendor and cls.startswith("0x03"):
            addr = os.path.basename(d)
            found.append(catalog.get(addr, {"address": addr, "name": "GPU", "vram_mib": 8192}))
    return found


def ld_resolve(soname: str) -> list[str]:
    """Paths the dynamic linker cache offers for a soname, in its order."""
    try:
        out = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True).stdout
    except OSError:
        return []
    paths = []
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) \(([^)]*)\) => (\S+)", line)
        if m and m.group(1) == soname and "x86-64" in m.group(2):
            paths.append(m.group(3))
    return paths


def nvidia_kmod() -> str:
    try:
        text = open("/proc/driver/nvidia/version").read()
    except OSError:
        return ""
    m = re.search(r"Kernel Module(?: for \S+)?\s+(\d\S*)", text)
    return m.group(1) if m else ""


def cuda_for_driver(driver: str) -> str:
    table = [(580, "13.0"), (575, "12.9"), (570, "12.8"), (560, "12.6"), (555, "12.5"),
             (550, "12.4"), (545, "12.3"), (535, "12.2"), (530, "12.1"), (525, "12.0"),
             (520, "11.8"), (0, "11.4")]
    major = int(driver.split(".")[0])
    return next(c for m, c in table if major >= m)


def rw(path: str) -> bool:
    return os.path.exists(path) and os.access(path, os.R_OK | os.W_OK)


def kfd_gfx() -> list[str]:
    out = []
    for props in sorted(glob.glob("/sys/class/kfd/kfd/topology/nodes/*/properties")):
        m = re.search(r"^gfx_target_version (\d+)", open(props).read(), re.M)
        if m and int(m.group(1)):
            v = int(m.group(1))
            out.append(f"gfx{v // 10000}{(v // 100) % 100:x}{v % 100:x}")
    return out


def override_gfx(gfx: str) -> str:
    # ROCm's libhsakmt reads the raw value: quotes that systemd kept make it invalid (#5090)
    value = os.environ.get("HSA_OVERRIDE_GFX_VERSION", "").strip()
    try:
        major, minor, step = (int(x) for x in value.split("."))
    except ValueError:
        return gfx
    return f"gfx{major}{minor:x}{step:x}"


def rocm_dir() -> str:
    dirs = sorted(glob.glob(os.path.join(lib_dir(), "rocm*")))
    return dirs[-1] if dirs else ""


def bundled_gfx() -> list[str]:
    """gfx targets of the bundled rocBLAS (the runtime check of every era)."""
    d = rocm_dir()
    files = glob.glob(os.path.join(d, "rocblas/library/TensileLibrary_lazy_gfx*.dat")) if d else []
    return sorted(re.search(r"lazy_(gfx\w+)\.dat", f).group(1) for f in files)


def vulkan_ready(vendor: str) -> bool:
    """Loader resolvable, an ICD for the vendor installed, a render node openable."""
    if not ld_resolve("libvulkan.so.1"):
        return False
    icds = {os.path.basename(p) for p in glob.glob("/usr/share/vulkan/icd.d/*.json")}
    want = {"amd": "radeon_icd.x86_64.json", "nvidia": "nvidia_icd.json"}[vendor]
    if want not in icds:
        return False
    return any(rw(p) for p in glob.glob("/dev/dri/renderD*"))


def is_wsl2() -> bool:
    try:
        return "microsoft" in open("/proc/version").read().lower()
    except OSError:
        return False


def mem_total() -> tuple[float, float]:
    info = dict(re.findall(r"^(\w+):\s+(\d+)", open("/proc/meminfo").read(), re.M))
    return int(info["MemTotal"]) * 1024 / GIB, int(info.get("MemAvailable", 0)) * 1024 / GIB


# ---------------------------------------------------------------------------- discovery


class Device(dict):
    """What `inference compute` reports for one device."""


def discover() -> list[Device]:
    """Run this version's discovery, print its log lines, return usable GPUs."""
    e = era()
    if e == "A":
        log("INFO", "gpu.go:217", "looking for compatible GPUs")
    else:
        log("INFO", "runner.go:67", "discovering available GPUs...")
    visible = [k for k in ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES",
                           "GGML_VK_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL",
                           "HSA_OVERRIDE_GFX_VERSION") if k in os.environ]
    if e in "BC":
        for k in visible:
            log("WARN", "runner.go:137", "user overrode visible devices", **{k: os.environ[k]})
        if visible:
            log("WARN", "runner.go:142",
                "if GPUs are not correctly discovered, unset and try again")
    devices = nvidia_devices(e) + amd_devices(e)
    if e == "B" and env("OLLAMA_VULKAN") not in ("1", "true"):
        log("INFO", "runner.go:79",
            "experimental Vulkan support disabled.  To enable, set OLLAMA_VULKAN=1")
    if e == "A" and not devices:
        log("INFO", "gpu.go:392", "no compatible GPUs were discovered")
    return devices


def cuda11_shadow() -> str:
    """A CUDA 10/11 cuBLAS or cudart that LD_LIBRARY_PATH puts before the bundled CUDA 12."""
    for d in os.environ.get("LD_LIBRARY_PATH", "").split(":"):
        for pattern in ("libcublas.so.1[01]*", "libcudart.so.1[01]*"):
            found = sorted(glob.glob(os.path.join(d, pattern))) if d else []
            if found:
                return found[0]
    return ""


def nvidia_devices(e: str) -> list[Device]:
    gpus = pci_gpus("0x10de")
    wsl = is_wsl2()
    if wsl:
        gpus = [g for g in hardware().get("gpus", []) if g["vendor"] == "nvidia"]
    if not gpus:
        return []
    libs = ld_resolve("libcuda.so.1")
    if not libs:
        return []
    cvd = os.environ.get("CUDA_VISIBLE_DEVICES")
    if cvd is not None and (cvd.strip() in ("", "-1") or cvd.strip().startswith("-")):
        return []
    if env("OLLAMA_LLM_LIBRARY") and not env("OLLAMA_LLM_LIBRARY").startswith("cuda"):
        return []
    if wsl:
        return wsl_devices(e, gpus, libs)
    kmod = nvidia_kmod()
    real = os.path.realpath(libs[0])
    m = re.search(r"libcuda\.so\.(\d+\.\d+(?:\.\d+)?)$", real)
    libver = m.group(1) if m else ""
    if not kmod:
        if e == "A":
            log("INFO", "gpu.go:604", f"no nvidia devices detected by library {real}")
        else:
            log("INFO", "runner.go:464", "failure during llama-server GPU discovery",
                OLLAMA_LIBRARY_PATH=f"[{lib_dir()} {lib_dir()}/cuda_v12]", extra_envs="map[]",
                error="exit status 1",
                detail="ggml_cuda_init: failed to initialize CUDA: no CUDA-capable device is "
                       "detected")
        return []
    if libver and libver != kmod:
        if e == "A":
            log("WARN", "gpu.go:641", "version mismatch between driver and cuda driver library "
                f"- reboot or upgrade may be required: library {real}")
        else:
            log("INFO", "runner.go:464", "failure during llama-server GPU discovery",
                OLLAMA_LIBRARY_PATH=f"[{lib_dir()} {lib_dir()}/cuda_v12]", extra_envs="map[]",
                error="exit status 1",
                detail="ggml_cuda_init: failed to initialize CUDA: system has unsupported "
                       "display driver / cuda driver combination")
        return []
    if not all(rw(p) for p in ("/dev/nvidiactl", "/dev/nvidia0")):
        return []
    shadow = cuda11_shadow()
    if shadow:
        detail = (f"{lib_dir()}/cuda_v12/libggml-cuda.so: undefined symbol: "
                  f"cublasLtMatmulAlgoGetHeuristic, version {os.path.basename(shadow)} "
                  f"(from {os.path.dirname(shadow)})")
        if e == "A":
            log("INFO", "gpu.go:650", "Unable to load cudart library", library=shadow,
                error=detail)
        else:
            log("INFO", "runner.go:464", "failure during llama-server GPU discovery",
                OLLAMA_LIBRARY_PATH=f"[{lib_dir()} {lib_dir()}/cuda_v12]", extra_envs="map[]",
                error="exit status 127", detail=detail)
        return []
    major = int(kmod.split(".")[0])
    out = []
    for i, g in enumerate(gpus):
        cc_major = int(g.get("compute_cap", "8.0").split(".")[0])
        floor = 570 if cc_major < 7 else 550
        if e == "C" and vtuple(VERSION) >= (0, 30, 11) and major < floor:
            log("WARN", "cuda_compat.go:71", "NVIDIA driver too old", device=g["uuid"],
                compute=g["compute_cap"], driver=major, required_driver=f"{floor} or newer")
            continue
        if e in "AB" and major < 525:
            if e == "A":
                log("INFO", "gpu.go:604", f"no nvidia devices detected by library {real}")
            continue
        if e == "B" and major < 550:
            log("INFO", "runner.go:464", "failure during GPU discovery",
                OLLAMA_LIBRARY_PATH=f"[{lib_dir()} {lib_dir()}/cuda_v12]",
                extra_envs="map[GGML_CUDA_INIT:1]", error="runner crashed",
                detail="ggml_cuda_init: failed to initialize CUDA: CUDA driver version is "
                       "insufficient for CUDA runtime version")
            continue
        variant = "cuda_v13" if major >= 580 and cc_major >= 7 else "cuda_v12"
        out.append(Device(kind="nvidia", library="CUDA" if e != "A" else "cuda",
                          variant=variant, gpu=g, index=i, driver=cuda_for_driver(kmod)))
    return out


def wsl_devices(e: str, gpus: list[dict], libs: list[str]) -> list[Device]:
    """WSL2: only /usr/lib/wsl/lib's libcuda reaches the Windows driver through /dev/dxg.

    A Linux driver installed in the guest puts its own libcuda (and libnvidia-ml,
    libnvidia-ptxjitcompiler) on the linker path; that one finds no device, and the WSL
    libcuda then fails to initialise against the shadowing libraries (ollama#5718, #6961,
    NixOS#389898)."""
    guest = [p for p in libs if not p.startswith("/usr/lib/wsl/")]
    wsl = [p for p in libs if p.startswith("/usr/lib/wsl/")]
    if guest:
        for p in guest:
            log("INFO", "gpu.go:604", f"no nvidia devices detected by library {os.path.realpath(p)}")
        for p in wsl:
            log("INFO", "gpu.go:617", "unable to load cuda driver library", library=p,
                error="cuda driver library init failure: 500")
        return []
    if not wsl or not rw("/dev/dxg"):
        return []
    driver = hardware().get("wsl_cuda", "12.6")
    return [Device(kind="nvidia", library="CUDA" if e != "A" else "cuda", variant="cuda_v12",
                   gpu=g, index=i, driver=driver) for i, g in enumerate(gpus)]


def amd_devices(e: str) -> list[Device]:
    gpus = pci_gpus("0x1002")
    if not gpus:
        return []
    if e == "A":
        log("WARN", "amd_linux.go:61", "ollama recommends running the "
            "https://www.amd.com/en/support/linux-drivers",
            error="amdgpu version file missing: /sys/module/amdgpu/version stat "
                  "/sys/module/amdgpu/version: no such file or directory")
    if not os.path.exists("/dev/kfd"):
        if e == "A":
            log("ERROR", "amd_linux.go:364", "amdgpu devices detected but kfd driver not "
                "loaded.  If running in a container, remember to include "
                "'--device /dev/kfd --device /dev/dri'")
        return []
    if not rw("/dev/kfd"):
        if e == "A":
            log("ERROR", "amd_linux.go:364",
                "amdgpu devices detected but permission problems block access",
                error="permissions not set up properly.  Either run ollama as root, or add "
                      "you user account to the render group. open /dev/kfd: permission denied")
        else:
            log("INFO", "runner.go:464", "failure during llama-server GPU discovery",
                OLLAMA_LIBRARY_PATH=f"[{lib_dir()} {rocm_dir()}]", extra_envs="map[]",
                error="exit status 1",
                detail="rocBLAS error: Could not initialize Tensile host: No devices found")
        return []
    gfx_list = kfd_gfx()
    supported = bundled_gfx()
    out: list[Device] = []
    ov = env("HSA_OVERRIDE_GFX_VERSION")
    for i, g in enumerate(gpus):
        real_gfx = gfx_list[i] if i < len(gfx_list) else g.get("gfx", "gfx000")
        gfx = override_gfx(real_gfx)
        ok = bool(rocm_dir()) and gfx in supported
        if e == "A":
            if ov:
                log("INFO", "amd_linux.go:348", "skipping rocm gfx compatibility check",
                    HSA_OVERRIDE_GFX_VERSION=ov)
            elif ok:
                log("INFO", "amd_linux.go:375", "amdgpu is supported", gpu=i, gpu_type=real_gfx)
            else:
                log("WARN", "amd_linux.go:378", "amdgpu is not supported (supported types:["
                    + " ".join(supported) + "])", gpu_type=real_gfx, gpu=i,
                    library=rocm_dir() or lib_dir())
                log("WARN", "amd_linux.go:385", "See https://github.com/ollama/ollama/blob/main/"
                    "docs/gpu.md#overrides for HSA_OVERRIDE_GFX_VERSION usage")
        elif not ok:
            log("WARN", "amd.go:212", "dropping ROCm device \u2014 no rocblas support for gfx "
                "target", gfx_target=gfx,
                supported="map[" + " ".join(f"{s}:true" for s in supported) + "]",
                hint="set HSA_OVERRIDE_GFX_VERSION to map to a supported target")
        if ok:
            out.append(Device(kind="amd", library="ROCm" if e != "A" else "rocm",
                              variant=os.path.basename(rocm_dir()), gpu=g, index=i, gfx=gfx,
                              driver="6.3" if e != "C" else "7.2"))
        elif e in "BC" and vulkan_ready("amd"):
            if e == "C" or env("OLLAMA_VULKAN") in ("1", "true"):
                if e == "C" and g.get("integrated") and env("OLLAMA_IGPU_ENABLE") not in (
                        "1", "true"):
                    log("INFO", "runner.go:396", "dropping integrated GPU; to enable, set "
                        "OLLAMA_IGPU_ENABLE=1", id=str(i), library="Vulkan", compute="0.0",
                        name=f"Vulkan{i}", description=g["name"] + " (RADV PHOENIX)",
                        pci_id=g["address"])
                    continue
                out.append(Device(kind="amd", library="Vulkan", variant="vulkan", gpu=g,
                                  index=i, gfx=real_gfx, driver="1.3"))
    if e == "A" and not out:
        log("INFO", "amd_linux.go:404", "no compatible amdgpu devices detected")
    return out


def log_inference_compute(devices: list[Device]) -> float:
    """The canonical result lines; returns total VRAM in GiB."""
    e = era()
    total_ram, avail_ram = mem_total()
    if not devices:
        if e == "A":
            log("INFO", "types.go:130", "inference compute", id="0", library="cpu",
                variant="", compute="", driver="0.0", name="", total=f"{total_ram:.1f} GiB",
                available=f"{avail_ram:.1f} GiB")
        else:
            log("INFO", "types.go:60", "inference compute", id="cpu", library="cpu", compute="",
                name="cpu", description="cpu", libdirs="ollama", driver="", pci_id="", type="",
                total=f"{total_ram:.1f} GiB", available=f"{avail_ram:.1f} GiB")
        return 0.0
    vram = 0.0
    for n, d in enumerate(devices):
        g = d["gpu"]
        total = g["vram_mib"] / 1024
        vram += total
        avail = f"{total - 0.4:.1f} GiB"
        compute = g.get("compute_cap") if d["kind"] == "nvidia" else d.get("gfx")
        ident = g.get("uuid", f"GPU-{n}") if d["kind"] == "nvidia" else str(n)
        if e == "A":
            name = g["name"] if d["kind"] == "nvidia" else f"1002:{g['pci_device'][2:]}"
            log("INFO", "types.go:130", "inference compute", id=ident, library=d["library"],
                variant="v12" if d["kind"] == "nvidia" else "", compute=compute,
                driver=d["driver"], name=name, total=f"{total:.1f} GiB", available=avail)
        else:
            lib = d["library"]
            short = {"CUDA": "CUDA", "ROCm": "ROCm", "Vulkan": "Vulkan"}[lib]
            desc = g["name"] if lib != "Vulkan" else g["name"] + " (RADV)"
            log("INFO", "types.go:42", "inference compute", id=ident, filter_id="",
                library=lib, compute=compute if lib != "Vulkan" else "0.0",
                name=f"{short}{n}", description=desc, libdirs=f"ollama,{d['variant']}",
                driver=d["driver"], pci_id=g["address"], type="discrete",
                total=f"{total:.1f} GiB", available=avail)
    return vram


def log_vram_line(vram_gib: float) -> int:
    v = vtuple(VERSION)
    total = "0 B" if not vram_gib else f"{vram_gib:.1f} GiB"
    ctx = 262144 if vram_gib >= 47 else 32768 if vram_gib >= 23 else 4096
    if v >= (0, 15, 5):
        log("INFO", "routes.go:1648", "vram-based default context", total_vram=total,
            default_num_ctx=ctx)
    elif vram_gib < 20:
        log("INFO", "routes.go:1619", "entering low vram mode", **{"total vram": total},
            threshold="20.0 GiB")
    return ctx


# ---------------------------------------------------------------------------- models + API

MODEL = {
    "name": "qwen2.5:0.5b", "model": "qwen2.5:0.5b", "size": 397821319,
    "digest": "a8b0c51577010a279d933d14c2a8ab4b268079d44c5c8830c0a93900f1827c67",
    "details": {"parent_model": "", "format": "gguf", "family": "qwen2",
                "families": ["qwen2"], "parameter_size": "494.03M",
                "quantization_level": "Q4_K_M"},
}


def installed_models() -> list[dict]:
    base = os.path.join(models_dir(), "manifests", "registry.ollama.ai", "library")
    out = []
    for path in sorted(glob.glob(os.path.join(base, "*", "*"))):
        name = f"{os.path.basename(os.path.dirname(path))}:{os.path.basename(path)}"
        m = dict(MODEL, name=name, model=name)
        m["modified_at"] = datetime.fromtimestamp(os.path.getmtime(path)).astimezone().isoformat()
        out.append(m)
    return out


class State:
    def __init__(self, devices: list[Device], ctx: int) -> None:
        self.devices = devices
        self.ctx = ctx
        self.loaded: dict[str, datetime] = {}
        self.offloaded: dict[str, int] = {}  # model -> its layers on the GPU when it loaded
        self.lock = threading.Lock()

    @property
    def on_gpu(self) -> bool:
        return bool(self.devices)

    @property
    def layers(self) -> int:
        """Layers on the GPU of a model loaded now (of 25)."""
        if not self.devices:
            return 0
        return BUSY_LAYERS if busy() else 25

    def loaded_vram(self, name: str) -> int:
        return MODEL_SIZE_LOADED * self.offloaded.get(name, 0) // 25

    def expire(self) -> None:
        now = datetime.now(timezone.utc)
        for name, until in list(self.loaded.items()):
            if until <= now:
                del self.loaded[name]
                self.offloaded.pop(name, None)
        self.publish_apps()

    def publish_apps(self) -> None:
        """What the GPU's own tools list while a model is loaded: the process holding its
        weights (nvidia-smi's compute apps; rocm-smi --showpids for ROCm, through KFD).
        Vulkan offload leaves no per-process record, as on real hardware."""
        nv = [d for d in self.devices if d["kind"] == "nvidia"]
        rocm = [d for d in self.devices if d["kind"] == "amd" and d["library"] != "Vulkan"]
        if not nv and not rocm:
            return
        exe = (lib_dir() + "/llama-server") if era() == "C" else os.path.realpath(sys.argv[0])
        apps = []
        if self.loaded:
            held = max((self.loaded_vram(n) for n in self.loaded), default=0) // 2**20
            for vendor, devs in (("nvidia", nv), ("amd", rocm)):
                if devs:
                    apps.append({"pid": os.getpid(), "name": exe, "gpu": devs[0]["index"],
                                 "vendor": vendor, "used_mib": held})
        job = busy()
        if job:
            for vendor, devs in (("nvidia", nv), ("amd", rocm)):
                if devs:
                    apps.append({"pid": job[0], "name": "/usr/bin/python3", "vendor": vendor,
                                 "gpu": devs[0]["index"], "used_mib": job[1]})
        try:
            with open(APPS_FILE + ".tmp", "w") as f:
                json.dump(apps, f)
            os.replace(APPS_FILE + ".tmp", APPS_FILE)
        except OSError:
            pass


def busy() -> tuple[int, int] | None:
    """(pid, MiB) of another job holding GPU memory (BUSY_FILE), None when none runs."""
    try:
        with open(BUSY_FILE) as f:
            pid, mib = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        return None
    return (pid, mib) if os.path.exists(f"/proc/{pid}") else None


def keep_alive(value: object) -> timedelta:
    if value is None:
        value = env("OLLAMA_KEEP_ALIVE") or "5m"
    if isinstance(value, (int, float)):
        return timedelta(seconds=value if value >= 0 else 10**8)
    m = re.fullmatch(r"(-?\d+(?:\.\d+)?)(ms|s|m|h)?", str(value).strip())
    if not m:
        return timedelta(minutes=5)
    n = float(m.group(1))
    if n < 0:
        return timedelta(days=3650)
    return timedelta(seconds=n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)])


def make_handler(state: State):
    from http.server import BaseHTTPRequestHandler

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: object) -> None:
            code = args[1] if len(args) > 1 else "-"
            stamp = datetime.now().strftime("%Y/%m/%d - %H:%M:%S")
            log.raw(f"[GIN] {stamp} | {code} | {'':>12} | {self.client_address[0]:>15} | "
                    f"{self.command:<7} \"{self.path}\"")

        def send_json(self, code: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_HEAD(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/":
                data = b"Ollama is running"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            elif self.path == "/api/version":
                self.send_json(200, {"version": VERSION})
            elif self.path == "/api/tags":
                self.send_json(200, {"models": installed_models()})
            elif self.path == "/api/ps":
                with state.lock:
                    state.expire()
                    models = []
                    for name, until in state.loaded.items():
                        m = {k: v for k, v in MODEL.items() if k != "size"}
                        m.update(name=name, model=name, size=MODEL_SIZE_LOADED,
                                 expires_at=until.astimezone().isoformat(),
                                 size_vram=state.loaded_vram(name),
                                 context_length=state.ctx)
                        models.append(m)
                self.send_json(200, {"models": models})
            else:
                self.send_json(404, {"error": "404 page not found"})

        def read_body(self) -> dict:
            n = int(self.headers.get("Content-Length") or 0)
            try:
                return json.loads(self.rfile.read(n) or b"{}")
            except ValueError:
                return {}

        def do_POST(self) -> None:  # noqa: N802
            body = self.read_body()
            if self.path == "/api/pull":
                self.send_json(500, {"error": "pull model manifest: Get \"https://registry."
                                     "ollama.ai/v2/library/" + str(body.get("model", ""))
                                     + "/manifests/latest\": dial tcp: lookup registry.ollama.ai"
                                     ": no such host"})
            elif self.path == "/api/generate":
                self.generate(body)
            else:
                self.send_json(404, {"error": "404 page not found"})

        def generate(self, body: dict) -> None:
            name = str(body.get("model", ""))
            if ":" not in name:
                name += ":latest"
            if name not in {m["name"] for m in installed_models()}:
                self.send_json(404, {"error": f"model '{body.get('model')}' not found"})
                return
            opts = body.get("options") or {}
            start = time.monotonic()
            load = 0.0
            with state.lock:
                state.expire()
                if name not in state.loaded:
                    layers = state.layers
                    load = 0.35 if layers else 0.9
                    state.offloaded[name] = layers
                    log.raw(f"load_tensors: offloaded {layers}/25 layers to GPU")
                    time.sleep(load)
            prompt = str(body.get("prompt", ""))
            if not prompt:  # preload only
                with state.lock:
                    state.loaded[name] = datetime.now(timezone.utc) + keep_alive(
                        body.get("keep_alive"))
                    state.publish_apps()
                self.send_json(200, {"model": name, "created_at": now_iso(), "response": "",
                                     "done": True, "done_reason": "load"})
                return
            n = int(opts.get("num_predict") or 12)
            n = max(1, min(n, 16))
            on_gpu = state.on_gpu and opts.get("num_gpu") != 0
            whole = on_gpu and state.offloaded.get(name, 25) == 25
            rate = GPU_TOKENS_PER_S if whole else 8.0 if on_gpu else CPU_TOKENS_PER_S
            prompt_eval = 0.02 if on_gpu else 0.4
            time.sleep(prompt_eval)
            t0 = time.monotonic()
            words = ("The sky appears blue because air molecules scatter short blue "
                     "wavelengths of sunlight more than red ones").split()
            text = []
            for i in range(n):
                time.sleep(1.0 / rate)
                text.append(words[i % len(words)])
            eval_ns = int((time.monotonic() - t0) * 1e9)
            with state.lock:
                state.loaded[name] = datetime.now(timezone.utc) + keep_alive(
                    body.get("keep_alive"))
                state.publish_apps()
            final = {"model": name, "created_at": now_iso(), "response": " ".join(text),
                     "done": True, "done_reason": "length" if "num_predict" in opts else "stop",
                     "context": list(range(1, n + 9)),
                     "total_duration": int((time.monotonic() - start) * 1e9),
                     "load_duration": int(load * 1e9),
                     "prompt_eval_count": len(prompt.split()) + 8,
                     "prompt_eval_duration": int(prompt_eval * 1e9),
                     "eval_count": n, "eval_duration": eval_ns}
            if body.get("stream", True):
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for w in text:
                    self.chunk({"model": name, "created_at": now_iso(), "response": w + " ",
                                "done": False})
                self.chunk(dict(final, response=""))
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_json(200, final)

        def chunk(self, obj: dict) -> None:
            data = json.dumps(obj).encode() + b"\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    return Handler


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def crash_fault() -> None:
    """Host truth of fault-service-fails: this machine's ROCm runtime crashes at start with
    the override the documented table suggests (the 780M with 11.0.0 on ROCm 7, project-nomad
    #1075): the process dies, systemd restarts it, the API never comes up."""
    value = os.environ.get("HSA_OVERRIDE_GFX_VERSION", "").strip()
    if value and value == hardware().get("crash_with_override"):
        log("INFO", "amd.go:93", "discovering available GPUs...")
        log.raw("Memory access fault by GPU node-1 (Agent handle: 0x5605d6f2c6e0) on address "
                "0x7f3e2c000000. Reason: Page not present or supervisor privilege.")
        log.raw("SIGABRT: abort")
        sys.exit(2)


def serve() -> None:
    # cmd.RunServer listens first, then server.Serve logs its config: a port already taken
    # ends the process before any log line, within milliseconds of its start as a Go binary
    # does (so systemd sees a crash loop, not a server that is still importing)
    hostport = host_port()
    host, port = hostport.rsplit(":", 1)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, int(port)))
        listener.listen(128)
    except OSError as err:
        print(f"Error: listen tcp {hostport}: bind: {(err.strerror or str(err)).lower()}",
              file=sys.stderr)
        sys.exit(1)
    from http.server import ThreadingHTTPServer

    httpd = ThreadingHTTPServer((host, int(port)), make_handler(State([], 4096)),
                                bind_and_activate=False)
    httpd.socket.close()
    httpd.socket = listener
    httpd.server_address = listener.getsockname()
    log("INFO", "routes.go:1554", "server config", env=server_config())
    crash_fault()
    n = len(installed_models())
    log("INFO", "images.go:522", f"total blobs: {2 * n}")
    log("INFO", "images.go:529", "total unused blobs removed: 0")
    log("INFO", "routes.go:1607", f"Listening on {hostport} (version {VERSION})")
    devices = discover()
    ctx = log_vram_line(log_inference_compute(devices))
    state = State(devices, ctx)
    state.publish_apps()
    httpd.RequestHandlerClass = make_handler(state)
    httpd.serve_forever()


# ---------------------------------------------------------------------------- CLI


def client_get(path: str) -> dict:
    import urllib.request

    with urllib.request.urlopen(f"http://{host_port()}{path}", timeout=5) as resp:
        return json.load(resp)


def human_size(n: int) -> str:
    for unit, div in (("GB", 1000**3), ("MB", 1000**2), ("KB", 1000)):
        if n >= div:
            return f"{n / div:.1f} {unit}" if n / div < 10 else f"{n // div} {unit}"
    return f"{n} B"


def cli_version() -> int:
    try:
        v = client_get("/api/version")["version"]
        print(f"ollama version is {v}")
        if v != VERSION:
            print(f"Warning: client version is {VERSION}")
    except (OSError, ValueError):  # URLError is an OSError
        print("Warning: could not connect to a running Ollama instance")
        print(f"Warning: client version is {VERSION}")
    return 0


def not_running() -> int:
    if era() == "A":
        print("Error: could not connect to ollama app, is it running?", file=sys.stderr)
    else:
        print("Error: could not connect to ollama server, run 'ollama serve' to start it",
              file=sys.stderr)
    return 1


def cli_ps() -> int:
    try:
        models = client_get("/api/ps")["models"]
    except (OSError, ValueError):  # URLError is an OSError
        return not_running()
    rows = [("NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL")]
    for m in models:
        size, vram = m["size"], m.get("size_vram", 0)
        if vram == 0:
            proc = "100% CPU"
        elif vram == size:
            proc = "100% GPU"
        elif vram > size or size == 0:
            proc = "Unknown"
        else:
            cpu = round((size - vram) / size * 100)
            proc = f"{cpu}%/{100 - cpu}% CPU/GPU"
        until = datetime.fromisoformat(m["expires_at"])
        mins = max(0, int((until - datetime.now(timezone.utc)).total_seconds() // 60))
        when = "Less than a minute from now" if mins < 1 else (
            "About a minute from now" if mins == 1 else f"{mins} minutes from now")
        rows.append((m["name"], m["digest"][:12], human_size(size), proc,
                     str(m.get("context_length", "")), when))
    print_table(rows)
    return 0


def cli_list() -> int:
    try:
        models = client_get("/api/tags")["models"]
    except (OSError, ValueError):  # URLError is an OSError
        return not_running()
    rows = [("NAME", "ID", "SIZE", "MODIFIED")]
    rows += [(m["name"], m["digest"][:12], human_size(m["size"]), "2 days ago") for m in models]
    print_table(rows)
    return 0


def print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("".join(c.ljust(w + 4) for c, w in zip(r, widths, strict=True)))


def main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else "help"
    if cmd in ("-v", "--version", "version"):
        return cli_version()
    if cmd == "serve":
        serve()
        return 0
    if cmd == "ps":
        return cli_ps()
    if cmd in ("list", "ls"):
        return cli_list()
    if cmd == "pull":
        print("Error: pull model manifest: dial tcp: lookup registry.ollama.ai: no such host",
              file=sys.stderr)
        return 1
    print("Usage:\n  ollama [flags]\n  ollama [command]\n\nAvailable Commands:\n"
          "  serve       Start ollama\n  list        List models\n"
          "  ps          List running models\n  pull        Pull a model from a registry")
    return 0 if cmd in ("help", "-h", "--help") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
