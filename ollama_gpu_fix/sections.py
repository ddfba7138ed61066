"""The names of a bundle's files: the probe's sections, in the order it prints them.

A live probe and a bundle directory are the same thing (bundle-format in docs/): the probe
prints sections named after the bundle's files, `collect` writes them as files and
`diagnose-bundle` reads them back. Every module that names a section imports it from here.
"""

from __future__ import annotations

# The files a bundle may hold, in the order the probe prints them (bundle-format.md), plus the
# probe's own additions (marked *): facts that only a live probe can know.
SECTIONS: tuple[str, ...] = (
    "probe-meta.txt",  # * tools and files present/absent, uid, container, systemd
    "os-release.txt",
    "proc-version.txt",
    "lspci.txt",
    "pci-devices.txt",
    "lsmod.txt",  # * /proc/modules lines for nvidia*, amdgpu, nouveau
    "nvidia-smi.txt",
    "nvidia-smi-query.csv",
    "nvidia-smi-apps.csv",
    "proc-driver-nvidia-version.txt",
    "nvcc-version.txt",
    "cuda-toolkits.txt",
    "packages.txt",  # * installed GPU-related packages (dpkg/rpm/pacman): NAME VERSION
    "rocminfo.txt",
    "rocm-smi.txt",
    "rocm-version.txt",
    "kfd-topology.txt",
    "vulkaninfo.txt",
    "mokutil.txt",
    "groups.txt",
    "dev-nodes.txt",
    "ldconfig.txt",
    "nv-tegra-release.txt",
    "ollama-version.txt",
    "ollama-libs.txt",
    "systemctl-cat.txt",
    "systemctl-show.txt",
    "ollama-process.txt",  # * the running server: pid, user, parent, GPU-relevant environment
    "shell-env.txt",  # * GPU variables set in shell profiles (which no service reads)
    "ollama-ps.txt",
    "api-ps.json",
    "api-tags.json",  # * GET /api/tags: the local models (what verification can run)
    "observation.txt",  # * a bounded generation, /api/ps and the GPU's process list (verify.sh's
    #                     output, when the fix or diagnose asks for it: OGF_OBSERVE)
    "ollama-serve.log",
    "journalctl.txt",
    "dmesg.txt",
    "docker-run.txt",
    "watchdog.json",  # * the watchdog's last check (README "Watchdog"), when it runs here
)

# Files read as free-form log evidence besides the named log sections.
# docker-run.txt: users paste the container's log under the command that started it.
LOG_SECTIONS: tuple[str, ...] = ("ollama-serve.log", "journalctl.txt", "docker-run.txt")
