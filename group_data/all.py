"""Host data defaults for every host: the fix's policy knobs, each at its default.

Override per group (group_data/<group>.py), per host in the inventory, or on the command line
(`--data allow_reboot=true`). Every knob is checked before anything runs; a bad value stops
that host with one line naming the key (ollama_gpu_fix/policy.py). README "Fix" explains each.
"""

# Where deploys/diagnose.py and fix_gpu.py write `<report_dir>/<host>.json`, on the CONTROLLER
# (relative paths are relative to the directory pyinfra runs in, normally the repo root).
report_dir = "reports"

# What a fix may change. The service (the managed drop-in, groups, a restart) always.
allow_packages = True  # user-space packages: CUDA toolkit, Vulkan loader and Mesa, keyrings
allow_driver_change = False  # NVIDIA driver, amdgpu-dkms: never a working driver by default
allow_reboot = False  # reboot after a driver change, then verify (never on @local or WSL)

# What it installs.
cuda_min_version = "12.4"  # cuda-toolkit-<maj>-<min> when a stale CUDA 11 goes
nvidia_driver_branch = None  # None: 580 (the last branch for Maxwell, Pascal and Volta)
login_user = None  # also added to render/video (besides the service's User=)

# Where from: repository URLs are host data (mirrors, air-gapped fleets, the lab).
nvidia_repo_url = "https://developer.download.nvidia.com/compute/cuda/repos/{distro}/{arch}/"
nvidia_wsl_repo_url = "https://developer.download.nvidia.com/compute/cuda/repos/wsl-ubuntu/x86_64/"
amdgpu_repo_url = "https://repo.radeon.com/amdgpu/30.30.3/ubuntu"
rocm_repo_key_url = "https://repo.radeon.com/rocm/rocm.gpg.key"
# Repository and key URLs must be https; true allows plain http for a local mirror on a network
# you trust (apt still checks package signatures; a key fetched over http is not checked).
allow_http_mirror = False

# How the fix proves itself.
verify_model = None  # None: the smallest model the server has; never pulled unless verify_pull
verify_pull = False
verify_tokens = 4  # tokens generated (at most 32; more gives a steadier rate)
verify_timeout = 60  # seconds to wait for Ollama's API after a restart
verify_cpu_baseline = False  # also time num_gpu 0 and report the speed-up
min_gpu_percent = 100  # share of the model that must sit in VRAM (/api/ps size_vram/size)
# deploys/diagnose.py observes /api/ps and the GPU's process list as found; true also runs a
# bounded generation first (verify_model, verify_tokens), as the fix always does
observe_generate = False
apt_lock_timeout = 120  # seconds to wait for another apt/dpkg before giving up
# The watchdog: a systemd timer on each verified host that checks Ollama is still on the GPU
# and writes node_exporter textfile metrics (README "Watchdog"); false removes it.
install_watchdog = False
watchdog_interval = 60  # seconds between two checks
watchdog_textfile_dir = "/var/lib/prometheus/node-exporter"  # node_exporter's textfile dir
watchdog_generate = False  # also time a bounded generation when no model is loaded
use_watchdog_state = False  # deploys/diagnose.py reads the watchdog's last check instead
