"""What the probe keeps from a host's package list, a process environment and dmesg: one
table that probe.sh's filters and the parsers both follow (tests/unit/test_knowledge_tables.py
reads the filters out of probe.sh and holds them to it).

Sources: package names of NVIDIA's CUDA repositories (cuda-*, nvidia-*, libnvidia-*,
libcuda*), Debian/Ubuntu (nvidia-driver-*, nvidia-cuda-toolkit, xserver-xorg-video-nvidia-*),
Fedora/RPM Fusion (akmod-nvidia, kmod-nvidia), AMD's repository (amdgpu-*, rocm-*, hip-*,
rocblas, hsa-*, comgr, libamd*), Mesa and the Khronos loader (mesa-vulkan-drivers, vulkan-*,
libvulkan1), and Ollama's own packages; ollama/ollama@v0.33.0-rc2:envconfig/config.go for
the variables; the NVIDIA and amdgpu kernel modules' message prefixes for dmesg.
"""

from __future__ import annotations

# Package-name prefixes whose installed versions the diagnosis reads.
GPU_PACKAGE_PREFIXES: tuple[str, ...] = (
    "cuda", "nvidia", "libnvidia", "libcuda", "kmod-nvidia", "akmod-nvidia",
    "xserver-xorg-video-nvidia", "rocm", "hip", "amdgpu", "rocblas", "hsa", "comgr", "libamd",
    "mesa-vulkan", "vulkan", "libvulkan", "ollama",
)  # fmt: skip

# Prefixes (and whole names) of the process environment the probe keeps for the server.
GPU_ENV_PREFIXES: tuple[str, ...] = (
    "CUDA_", "NVIDIA_", "HIP_", "ROCR_", "HSA_", "GPU_DEVICE_ORDINAL", "GGML_", "OLLAMA_",
    "LD_LIBRARY_PATH", "JETSON_JETPACK", "AMD_LOG_LEVEL",
)  # fmt: skip

# Words a dmesg line must hold to be kept (the GPU kernel drivers' own messages).
DMESG_WORDS: tuple[str, ...] = (
    "nvidia", "NVIDIA", "Nvidia", "NVRM", "nouveau", "Xid", "amdgpu", "AMDGPU", "kfd", "KFD",
    "i915", "[drm]",
)  # fmt: skip
