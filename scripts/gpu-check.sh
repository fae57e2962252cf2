#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: builds Myelin with `cuda`, runs Brunel and the full
# microcircuit on both backends from the same seed, and compares the runs' statistics per
# population (benches/validation/compare.py, which labels the first run "Myelin" and the
# second "NEST": here the CPU run and the GPU run). Each run's summary (construction,
# simulation time, real-time factor) is in OUT/SCENE-BACKEND/summary.json.
#   usage: scripts/gpu-check.sh [OUT]   (default target/gpu-check)
#   DURATION=ms (default 1000); NVRTC_LIB=folder of libnvrtc (else the CUDA toolkit's
#   /usr/local/cuda/lib64 if present, else scripts/install-nvrtc.sh, which needs PyPI);
#   MYELIN_BIN=path runs that binary (built with `--features cuda`) instead of building.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/gpu-check}"
dur="${DURATION:-1000}"
if [ -z "${NVRTC_LIB:-}" ]; then
  if [ -d /usr/local/cuda/lib64 ]; then NVRTC_LIB=/usr/local/cuda/lib64; else NVRTC_LIB="$(scripts/install-nvrtc.sh)"; fi
fi
export LD_LIBRARY_PATH="$NVRTC_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ -n "${MYELIN_BIN:-}" ]; then
  bin="$MYELIN_BIN"
else
  cargo build --release --features cuda
  bin=target/release/myelin
fi
mkdir -p "$out"
for scene in brunel microcircuit; do
  for backend in cpu cuda; do
    "$bin" run "scenes/$scene.ron" --backend "$backend" --duration "$dur" \
      --out "$out/$scene-$backend" --overwrite --quiet
    "$bin" analyze "$out/$scene-$backend" --json --per-neuron --no-plots >"$out/$scene-$backend.json"
  done
  echo "== $scene: CPU (\"Myelin\" column) vs GPU (\"NEST\" column), $dur ms"
  python3 benches/validation/compare.py "$out/$scene-cpu.json" "$out/$scene-cuda.json" || true
  for backend in cpu cuda; do
    python3 - "$out/$scene-$backend/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"{s['backend']:5s} construction {s['construction_s']:.2f} s, simulation {s['simulation_s']:.2f} s, "
      f"real-time factor {s['real_time_factor']:.3f}, phases {s['phases_s']}")
if 'device' in s:
    d = s['device']
    print(f"      device {d['name']} (CUDA graph: {d['graph']}), {d['sampled_steps']} timed steps, "
          f"µs per step: {d['phases_us_per_step']}")
PY
  done
done
