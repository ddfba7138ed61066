"""Where the model ran: one answer from every source that counts or places, by quantity.

A source is ranked by what it saw. OBSERVED: use that happened (/api/ps size_vram against size,
`ollama ps` PROCESSOR, llama.cpp's `offloaded N/M layers to GPU`, the model buffers a device
holds, the backends the runner loaded, the runner binary Ollama started, Ollama's runner in the
GPU's own process list). PLANNED: what the scheduler meant to do (`layers.offload`, the
runner's `GPULayers`, `runner.inference`, `num_gpu=0`). DETECTED: what discovery found
(`inference compute`). The highest rank decides; within it any source that says CPU wins, then
partial, then GPU: a run that is seen on the CPU is a fault, never ok-gpu, whatever the
discovery lines claim. Pure: reads the Snapshot (log records are trusted text only).
Sources: ollama/ollama@v0.33.0-rc2:api/types.go (ProcessModelResponse), cmd/cmd.go
(PROCESSOR), llm/server.go (`load request` GPULayers), @v0.4.0:llm/memory.go (`offload to`),
@v0.4.0:llm/server.go (`starting llama server` cmd: runners/<name>/ollama_llama_server);
ggml-org/llama.cpp src/llama-model.cpp (`offloaded %d/%d layers to GPU`, `%s model buffer
size`), ggml/src/ggml-backend-reg.cpp (`load_backend: loaded %s backend from %s`).
"""

from __future__ import annotations

import re

from ollama_gpu_fix.records import field, record
from ollama_gpu_fix.snapshot import Line, Snapshot

OBSERVED, PLANNED, DETECTED = 3, 2, 1
RANK_NAMES = {OBSERVED: "observed", PLANNED: "planned", DETECTED: "detected", 0: "none"}
GPU_BACKENDS = ("cuda", "rocm", "hip", "vulkan", "metal", "sycl", "musa", "cann", "opencl")

_OFFLOADED = re.compile(r"offloaded (\d{1,5})/(\d{1,5}) layers to GPU")
_BUFFER = re.compile(r"\b(CUDA|ROCm|Vulkan|Metal|SYCL|MUSA|CANN|CPU)(?:\d{1,2}|_Mapped|_REPACK)?"
                     r" (?:model|KV|compute)(?: buffer)? size = +(\d{1,9}(?:\.\d{1,3})?) MiB")
_LOADED_BACKEND = re.compile(r"load_backend: loaded (\w{1,16}) backend from")
_GPU_LAYERS = re.compile(
    r"GPULayers:(\d{1,5})(?:\[(?:ID:\S{1,80} )?Layers:\d{1,5}\((\d{1,5})\.\.)?")
_NO_GPU_LAYERS = re.compile(r"GPULayers:\[\]")
_CPU_RUNNER = re.compile(r"/runners/cpu\w{0,16}/|/runners/cpu\b")
_GPU_RUNNER = re.compile(r"/runners/(?:cuda|rocm)\w{0,24}/")


@record(frozen=True)
class Sighting:
    where: str  # "gpu", "partial", "cpu"
    rank: int
    source: str  # what was read: "api-ps", "offloaded-layers", "model-buffers", ...
    detail: str  # the quantity, in words
    line: Line | None = None


@record
class Placement:
    where: str  # "gpu", "partial", "cpu" or "unknown"
    rank: int  # the rank that decided (0: nothing counted or placed the model)
    sightings: list[Sighting] = field(default_factory=list)

    @property
    def deciding(self) -> list[Sighting]:
        return [s for s in self.sightings if s.rank == self.rank and s.where == self.where]

    @property
    def evidence(self) -> list[Line]:
        lines = [s.line for s in self.deciding if s.line]
        return list(dict.fromkeys(lines))

    @property
    def observed_off_gpu(self) -> bool:
        """Seen, not planned: the model (or part of it) ran on the CPU."""
        return any(s.rank == OBSERVED and s.where in ("cpu", "partial") for s in self.sightings)

    def summary(self) -> str:
        if self.where == "unknown":
            return "no source counts or places the model (no load, /api/ps or `ollama ps`)"
        how = "; ".join(dict.fromkeys(s.detail for s in self.deciding))
        return f"{self.where} ({RANK_NAMES[self.rank]}: {how})"

    def as_dict(self) -> dict:
        return {"where": self.where, "rank": RANK_NAMES[self.rank],
                "sources": [{"where": s.where, "rank": RANK_NAMES[s.rank], "source": s.source,
                             "detail": s.detail, "evidence": s.line.text if s.line else None}
                            for s in self.sightings]}


def _fraction(on: float, total: float) -> str:
    if on <= 0:
        return "cpu"
    return "gpu" if on >= total else "partial"


def determine(s: Snapshot) -> Placement:
    sightings = _observed(s) + _models(s) + _apps(s) + _log(s)
    if not sightings:
        return Placement("unknown", 0, [])
    top = max(x.rank for x in sightings)
    at_top = {x.where for x in sightings if x.rank == top}
    where = next(w for w in ("cpu", "partial", "gpu") if w in at_top)
    return Placement(where, top, sightings)


def _observed(s: Snapshot) -> list[Sighting]:
    """The live host measured by the probe's observation (snapshot.observation): /api/ps after
    a bounded generation, from the service itself, and the GPU's own process list, where the
    service's runner holding no GPU memory outweighs what /api/ps claims."""
    obs = s.observation
    if obs is None or obs.untrusted or obs.on_gpu is None:
        return []
    frac = 0.0 if obs.runner_on_gpu is False else obs.on_gpu
    where = "cpu" if frac == 0 else "gpu" if frac >= 1 else "partial"
    how = f"{obs.model}: {frac:.0%} in VRAM"
    if obs.runner_on_gpu is not None:
        how += ", the runner " + ("holds" if obs.runner_on_gpu else "holds no") + " GPU memory"
    if obs.tokens_per_s:
        how += f", {obs.tokens_per_s:.1f} tokens/s"
    line = obs.evidence[0] if obs.evidence else None
    return [Sighting(where, OBSERVED, "observation", f"measured ({obs.mode}): {how}", line)]


def _models(s: Snapshot) -> list[Sighting]:
    out = []
    for model in s.loaded_models or []:
        frac = model.gpu_fraction
        if frac is None:
            continue
        where = "cpu" if frac == 0 else "gpu" if frac >= 1 else "partial"
        measured = model.size is not None and model.size_vram is not None
        source = "api-ps" if measured else "ollama-ps"
        detail = (f"{model.name}: size_vram {model.size_vram} of size {model.size}"
                  if measured else f"{model.name}: {model.processor}")
        out.append(Sighting(where, OBSERVED, source, detail, model.raw))
    return out


def _apps(s: Snapshot) -> list[Sighting]:
    """Ollama's runner in the GPU's process list, holding memory: the model is on that GPU."""
    runners = ("ollama", "llama-server", "ollama_llama_se", "ollama_llama_server")
    out = []
    for app in s.nvidia_apps or []:
        name = app.process_name.rsplit("/", 1)[-1]
        if name in runners and (app.used_memory_mib or 0) > 0:
            out.append(Sighting("gpu", OBSERVED, "gpu-processes",
                                f"{name} holds {app.used_memory_mib} MiB on the GPU", app.raw))
    return out


def _log(s: Snapshot) -> list[Sighting]:
    log = s.log
    if not log:
        return []
    out: list[Sighting] = []
    device_buffers = cpu_buffers = 0.0
    buffer_lines: list[Line] = []
    backends: list[tuple[str, Line]] = []
    for line, text, fields in log.records:
        found = _OFFLOADED.search(text) if "offloaded" in text else None
        if found:
            on, total = int(found.group(1)), int(found.group(2))
            if total:
                out.append(Sighting(_fraction(on, total), OBSERVED, "offloaded-layers",
                                    f"{on}/{total} layers offloaded to the GPU", line))
            continue
        found = _BUFFER.search(text) if "size =" in text else None
        if found:
            size = float(found.group(2))
            if found.group(1) == "CPU":
                cpu_buffers += size
            else:
                device_buffers += size
            buffer_lines.append(line)
            continue
        if fields.get("buffer") and fields.get("size") and "model weights" in text:
            # the new engine's `msg="model weights" buffer=CUDA0 size="4.1 GiB"` (0.6+)
            size = _gib(fields["size"]) * 1024
            if fields["buffer"].upper().startswith("CPU"):
                cpu_buffers += size
            else:
                device_buffers += size
            buffer_lines.append(line)
            continue
        found = _LOADED_BACKEND.search(text) if "load_backend" in text else None
        if found:
            backends.append((found.group(1).lower(), line))
            continue
        if "layers.offload" in fields and "layers.model" in fields:
            on, total = fields["layers.offload"], fields["layers.model"]
            if on.isdigit() and total.isdigit() and int(total):
                out.append(Sighting(_fraction(int(on), int(total)), PLANNED, "layers-planned",
                                    f"the scheduler planned {on}/{total} layers on the GPU",
                                    line))
            continue
        if "GPULayers:" in text:
            out += _gpu_layers(text, line)
            continue
        cmd = fields.get("cmd", "")
        if cmd and _CPU_RUNNER.search(cmd):
            out.append(Sighting("cpu", OBSERVED, "runner", "Ollama started its CPU runner",
                                line))
        elif cmd and _GPU_RUNNER.search(cmd):
            out.append(Sighting("gpu", PLANNED, "runner", "Ollama started a GPU runner", line))
        elif "Not compiled with GPU offload support" in text:
            out.append(Sighting("cpu", OBSERVED, "runner", "the runner has no GPU offload", line))
        elif "num_gpu=0" in text and "skipping accelerated runner" in text:
            out.append(Sighting("cpu", PLANNED, "runner", "num_gpu=0: no accelerated runner",
                                line))
        elif fields.get("runner.inference"):
            lib = fields["runner.inference"].lower()
            out.append(Sighting("cpu" if lib == "cpu" else "gpu", PLANNED, "scheduler",
                                f"the scheduler's runner uses {lib}", line))
    if device_buffers > 0:
        where = "gpu" if cpu_buffers < device_buffers else "partial"
        out.append(Sighting(where, OBSERVED, "model-buffers",
                            f"{device_buffers:.0f} MiB in GPU buffers, {cpu_buffers:.0f} MiB in "
                            "CPU buffers", buffer_lines[-1]))
    elif cpu_buffers > 0:
        out.append(Sighting("cpu", OBSERVED, "model-buffers",
                            f"{cpu_buffers:.0f} MiB in CPU buffers, none on a GPU",
                            buffer_lines[-1]))
    if backends:
        gpu = [b for b in backends if b[0] in GPU_BACKENDS]
        if gpu:
            out.append(Sighting("gpu", DETECTED, "backends", f"loaded the {gpu[0][0]} backend",
                                gpu[0][1]))
        else:
            out.append(Sighting("cpu", OBSERVED, "backends",
                                "the runner loaded only CPU backends", backends[-1][1]))
    out += _detected(s)
    return out


def _gib(text: str) -> float:
    """`2.6 GiB` / `512.0 MiB` in GiB (0 when it is not a size)."""
    parts = text.replace('"', "").split()
    units = {"B": 2**-30, "KiB": 2**-20, "MiB": 2**-10, "GiB": 1.0, "TiB": 1024.0}
    if len(parts) != 2 or parts[1] not in units:
        return 0.0
    try:
        return float(parts[0]) * units[parts[1]]
    except ValueError:
        return 0.0


def _gpu_layers(text: str, line: Line) -> list[Sighting]:
    """The new engine's `load request`: GPULayers:N[ID:... Layers:N(first..last)]. Layers are
    placed from the last one down, so a first GPU layer above 0 means the rest are on the CPU."""
    if _NO_GPU_LAYERS.search(text):
        return [Sighting("cpu", PLANNED, "gpu-layers", "the runner was given no GPU layers", line)]
    found = _GPU_LAYERS.search(text)
    if not found:
        return []
    count = int(found.group(1))
    first = int(found.group(2)) if found.group(2) else 0
    if count == 0:
        return [Sighting("cpu", PLANNED, "gpu-layers", "the runner was given 0 GPU layers", line)]
    if first > 0:
        return [Sighting("partial", PLANNED, "gpu-layers",
                         f"{count} layers on the GPU, layers 0..{first - 1} on the CPU", line)]
    return [Sighting("gpu", PLANNED, "gpu-layers", f"{count} layers on the GPU", line)]


def _detected(s: Snapshot) -> list[Sighting]:
    log = s.log
    if not log:
        return []
    gpus = [c for c in log.compute if not c.is_cpu]
    if gpus:
        return [Sighting("gpu", DETECTED, "discovery",
                         f"discovery found {gpus[0].library} {gpus[0].name or ''}".strip(),
                         gpus[0].raw)]
    if log.compute:
        return [Sighting("cpu", DETECTED, "discovery", "discovery found only the CPU",
                         log.compute[-1].raw)]
    return []
