#!/bin/sh
# Install the Ollama test double the way Ollama's scripts/install.sh installs Ollama
# (ollama-anchor.md 1.1 and 1.3): binary in /usr/local/bin, libraries in /usr/local/lib/ollama
# (ROCm bundle only when lspci shows an AMD GPU and nvidia-smi is absent), the ollama system
# user with render/video, and the unit written exactly as install.sh writes it (enabled only
# where systemd is running, as install.sh's configure_systemd does).
# Usage: install-ollama.sh VERSION ERA MANUAL   (binary staged at /tmp/ogf-ollama)
# MANUAL=1 plays the manual install of docs/linux.mdx, which adds no render/video groups.
set -eu
VERSION=$1; ERA=$2; MANUAL=$3
BINDIR=/usr/local/bin
LIB=/usr/local/lib/ollama
status() { echo ">>> $*" >&2; }

status "Installing ollama to /usr/local"
rm -rf "$LIB"
install -o0 -g0 -m755 /tmp/ogf-ollama "$BINDIR/ollama"
mkdir -p "$LIB"
touch "$LIB/libggml-base.so" "$LIB/libggml-cpu-haswell.so" "$LIB/libggml-cpu-skylakex.so"
mkdir -p "$LIB/cuda_v12" "$LIB/cuda_v13"
touch "$LIB/cuda_v12/libggml-cuda.so" "$LIB/cuda_v12/libcudart.so.12.8.90" \
      "$LIB/cuda_v12/libcublas.so.12.8.4.1" "$LIB/cuda_v13/libggml-cuda.so" \
      "$LIB/cuda_v13/libcudart.so.13.0.88"
case $ERA in
  C) touch "$LIB/llama-server" "$LIB/libllama.so"; chmod 755 "$LIB/llama-server"
     mkdir -p "$LIB/vulkan"; touch "$LIB/vulkan/libggml-vulkan.so"; ROCM=rocm_v7_2
     TARGETS="gfx908 gfx90a gfx942 gfx950 gfx1030 gfx1100 gfx1101 gfx1102 gfx1150 gfx1151 gfx1200 gfx1201";;
  B) mkdir -p "$LIB/vulkan"; touch "$LIB/vulkan/libggml-vulkan.so"; ROCM=rocm
     TARGETS="gfx940 gfx941 gfx942 gfx1010 gfx1012 gfx1030 gfx1100 gfx1101 gfx1102 gfx1151 gfx1200 gfx1201 gfx908 gfx90a";;
  A) ROCM=rocm
     TARGETS="gfx900 gfx906 gfx908 gfx90a gfx940 gfx941 gfx942 gfx1010 gfx1012 gfx1030 gfx1100 gfx1101 gfx1102 gfx1151 gfx1200 gfx1201";;
esac

if ! id ollama >/dev/null 2>&1; then
  status "Creating ollama user..."
  useradd -r -s /bin/false -U -m -d /usr/share/ollama ollama
fi
if [ "$MANUAL" != 1 ]; then
  if getent group render >/dev/null 2>&1; then status "Adding ollama user to render group..."; usermod -a -G render ollama; fi
  if getent group video >/dev/null 2>&1; then status "Adding ollama user to video group..."; usermod -a -G video ollama; fi
  status "Adding current user to ollama group..."
  usermod -a -G ollama "$(whoami)"
fi

status "Creating ollama systemd service..."
cat <<EOF2 | tee /etc/systemd/system/ollama.service >/dev/null
[Unit]
Description=Ollama Service
After=network-online.target

[Service]
ExecStart=$BINDIR/ollama serve
User=ollama
Group=ollama
Restart=always
RestartSec=3
Environment="PATH=$PATH"

[Install]
WantedBy=default.target
EOF2
# install.sh enables the unit only where systemd runs (`systemctl is-system-running` says
# running or degraded); elsewhere (WSL2 without systemd) it warns and leaves the unit written
# but unused.
case "$(systemctl is-system-running 2>/dev/null || true)" in
  running|degraded)
    status "Enabling and starting ollama service..."
    systemctl daemon-reload
    systemctl enable ollama >/dev/null 2>&1;;
  *)
    echo "WARNING: systemd is not running"
    if grep -qi microsoft /proc/version; then
      echo "WARNING: see https://learn.microsoft.com/en-us/windows/wsl/systemd#how-to-enable-systemd to enable it"
    fi;;
esac

# The model a user had pulled before the GPU went missing (no network in the lab).
M=/usr/share/ollama/.ollama/models/manifests/registry.ollama.ai/library/qwen2.5
mkdir -p "$M"
printf '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}\n' > "$M/0.5b"
chown -R ollama:ollama /usr/share/ollama/.ollama

if grep -qi microsoft /proc/version; then status "Nvidia GPU detected."; exit 0; fi
if command -v nvidia-smi >/dev/null 2>&1; then status "NVIDIA GPU installed."; exit 0; fi
if lspci -d '1002:' 2>/dev/null | grep -q 'AMD'; then
  status "Downloading Linux ROCm amd64 bundle"
  mkdir -p "$LIB/$ROCM/rocblas/library"
  touch "$LIB/$ROCM/libggml-hip.so" "$LIB/$ROCM/libamdhip64.so.6" "$LIB/$ROCM/librocblas.so.4"
  for t in $TARGETS; do touch "$LIB/$ROCM/rocblas/library/TensileLibrary_lazy_$t.dat"; done
  status "AMD GPU ready."
  exit 0
fi
if ! lspci -d '10de:' 2>/dev/null | grep -q 'NVIDIA'; then
  echo "WARNING: No NVIDIA/AMD GPU detected. Ollama will run in CPU-only mode." >&2
fi
