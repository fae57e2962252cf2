#!/usr/bin/env bash
# Runs a scene in Myelin and in NEST on this machine and writes the side-by-side table.
#
#   benches/validation/validate.sh SCENE FROM_MS TO_MS [NEST_THREADS] [PUBLISHED]
#   e.g. benches/validation/validate.sh scenes/microcircuit.ron 500 1500 4 microcircuit
#        benches/validation/validate.sh scenes/brunel.ron 200 1000 2
#
# Needs a release build (cargo build --release) and NEST in a virtual environment outside
# the repository: python3 -m venv ~/venv-nest && ~/venv-nest/bin/pip install nest-simulator
# h5py scipy "numpy<2.4"; point MYELIN_NEST_PYTHON at its python (default ~/venv-nest).
# Results go to target/validation/NAME/{myelin,nest}/ and NAME.md.
set -euo pipefail
scene=$1 from=$2 to=$3 threads=${4:-2} published=${5:-}
py=${MYELIN_NEST_PYTHON:-$HOME/venv-nest/bin/python}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$root/target/release/myelin
name=$(basename "$scene" .ron)
out=$root/target/validation/$name
mkdir -p "$out"
"$bin" check "$scene" --json > "$out/scene.json"
"$bin" run "$scene" --out "$out/myelin" --overwrite --quiet | tee "$out/myelin.txt"
"$py" "$root/benches/validation/nest_run.py" "$out/scene.json" "$out/nest" --threads "$threads" | tee "$out/nest.txt"
for sim in myelin nest; do
  "$bin" analyze "$out/$sim" --from "$from" --to "$to" --json --per-neuron > "$out/$sim.stats.json"
  "$bin" analyze "$out/$sim" --from "$from" --to "$to" > "$out/$sim.analysis.txt"
done
args=("$out/myelin.stats.json" "$out/nest.stats.json" --markdown)
[ -n "$published" ] && args+=(--published "$published")
"$py" "$root/benches/validation/compare.py" "${args[@]}" | tee "$out/$name.md"
