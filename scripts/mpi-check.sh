#!/usr/bin/env bash
# Runs Brunel and the reduced microcircuit (shortened) under `mpirun -np 2` and `-np 3`
# (oversubscribed) in both exchange modes and checks that the spike trains are
# bit-identical to the single-process run; then checks that bad input ends the whole job
# with an error from rank 0 instead of hanging. Needs `cargo build --release --features mpi`.
# Exit status non-zero on any mismatch.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${MYELIN_BIN:-target/release/myelin}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# CI runs as root; Open MPI refuses that unless told.
mpirun=(mpirun --allow-run-as-root --oversubscribe)
# A Python with h5py (the system one, installed by scripts/install-deps.sh).
py=""
for p in python3 /usr/bin/python3; do
  if "$p" -c "import h5py, numpy" 2>/dev/null; then py="$p"; break; fi
done
[ -n "$py" ] || { echo "mpi-check: no python3 with h5py and numpy"; exit 1; }
# Brunel for 200 ms, the reduced microcircuit for 200 ms: short, with tens of thousands of
# spikes each.
# A Brunel variant with heterogeneous delays (uniform in 1.5..3 ms) and its Poisson input
# delayed by 3 ms: windows of 15 steps with spikes of many delays deferred to the window's
# end, against input added every step.
sed -e 's/delay: Constant(1.5)/delay: Uniform(low: 1.5, high: 3.0)/' \
  -e 's/"delay": 1.5/"delay": 3.0/' scenes/brunel.ron >"$work/brunel_hetero.ron"
for case in "scenes/brunel.ron 200" "scenes/microcircuit_reduced.ron 200" "$work/brunel_hetero.ron 200"; do
  read -r scene ms <<<"$case"
  name="$(basename "$scene" .ron)"
  "$bin" run "$scene" --duration "$ms" --out "$work/$name-1" --quiet --overwrite >/dev/null
  for np in 2 3; do
    for comm in collective p2p; do
      out="$work/$name-np$np-$comm"
      timeout 600 "${mpirun[@]}" -np "$np" "$bin" run "$scene" --duration "$ms" \
        --comm "$comm" --out "$out" --quiet --overwrite --threads 1 >/dev/null
      "$py" scripts/compare-recordings.py "$work/$name-1/recordings.h5" "$out/recordings.h5"
    done
  done
done

# Checkpoints on 2 ranks (one file per rank and a manifest), then a restart with 2 ranks:
# the recordings must be those of the uninterrupted single-process run.
for comm in collective p2p; do
  ck="$work/brunel-ckpt-$comm"
  "${mpirun[@]}" -np 2 "$bin" run scenes/brunel.ron --duration 100 --checkpoint-every 50 \
    --comm "$comm" --out "$ck" --quiet --threads 1 >/dev/null
  test -f "$ck/checkpoints/manifest.json"
  "${mpirun[@]}" -np 2 "$bin" resume "$ck/checkpoints" --duration 100 --comm "$comm" \
    --quiet --threads 1 >/dev/null
  "$py" scripts/compare-recordings.py "$work/brunel-1/recordings.h5" "$ck/recordings.h5"
done
# A restart with another number of ranks is refused, naming the right one.
set +e
msg="$(timeout 120 "${mpirun[@]}" -np 3 "$bin" resume "$work/brunel-ckpt-p2p/checkpoints" --quiet 2>&1)"
rc=$?
set -e
if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ] || ! grep -q "resume with \`mpirun -np 2\`" <<<"$msg"; then
  echo "restart on 3 ranks: expected a clear refusal, got status $rc:"; echo "$msg"; exit 1
fi
echo "restart on 3 ranks of a 2-rank checkpoint is refused with status $rc"

# Bad input: more ranks than neurons. Must fail (non-zero) with rank 0's message, and not hang.
cat >"$work/tiny.ron" <<'RON'
Scene(
    dt: 0.1,
    duration: 10.0,
    seed: 1,
    populations: [Population(name: "A", size: 2, model: "iaf_psc_exp")],
)
RON
set +e
msg="$(timeout 120 "${mpirun[@]}" -np 3 "$bin" run "$work/tiny.ron" --out "$work/tiny" --quiet 2>&1)"
rc=$?
set -e
if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
  echo "bad input: expected a non-zero exit without a hang, got status $rc"; echo "$msg"; exit 1
fi
if ! grep -q "cannot split 2 neurons over 3 ranks" <<<"$msg"; then
  echo "bad input: the error does not name the problem:"; echo "$msg"; exit 1
fi
echo "bad input: more ranks than neurons ends the job with status $rc and: $(grep -m1 'cannot split' <<<"$msg")"
# A rank that dies (killed) mid-run: the whole job must end, non-zero, within a minute.
"${mpirun[@]}" -np 2 "$bin" run scenes/brunel.ron --duration 100000 --out "$work/killed" \
  --quiet --threads 1 >/dev/null 2>&1 &
launcher=$!
victim=""
for _ in $(seq 1 100); do
  victim="$(pgrep -P "$launcher" | tail -n 1 || true)"
  [ -n "$victim" ] && break
  sleep 0.1
done
sleep 3
[ -n "$victim" ] && kill -9 "$victim"
set +e
timeout 60 tail --pid="$launcher" -f /dev/null
waited=$?
[ "$waited" -ne 0 ] && kill -9 "$launcher"
wait "$launcher"
rc=$?
set -e
if [ -z "$victim" ] || [ "$waited" -ne 0 ] || [ "$rc" -eq 0 ]; then
  echo "rank death: expected the job to end non-zero (victim '$victim', wait $waited, status $rc)"
  kill "$launcher" 2>/dev/null || true
  exit 1
fi
echo "rank death: killing rank process $victim ended the job with status $rc"
echo "mpi-check: all runs bit-identical to the single process; bad input and a dead rank end the job"
