#!/usr/bin/env bash
# Installs NVRTC (NVIDIA's run-time CUDA C compiler, the only part of the CUDA toolkit the
# `cuda` feature needs to compile its kernels) from PyPI's nvidia-cuda-nvrtc-cu12 wheel into
# a folder of its own, and prints the folder holding libnvrtc.so.12: put it on
# LD_LIBRARY_PATH. No GPU and no driver are needed for this. Idempotent.
#   usage: scripts/install-nvrtc.sh [PREFIX]   (default /opt/myelin/nvrtc)
set -euo pipefail
prefix="${1:-/opt/myelin/nvrtc}"
version="12.9.86"
lib="$prefix/nvidia/cuda_nvrtc/lib"
if [ ! -e "$lib/libnvrtc.so.12" ]; then
  python3 -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "$prefix" "nvidia-cuda-nvrtc-cu12==$version" >&2
fi
[ -e "$lib/libnvrtc.so.12" ] || { echo "install-nvrtc: $lib/libnvrtc.so.12 missing after install" >&2; exit 1; }
echo "$lib"
