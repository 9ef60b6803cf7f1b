#!/usr/bin/env bash
# The simulated EN 50470-3 run through the wire (hw/stations/sim.yaml: real drivers,
# simulated devices behind pseudo-terminals and a socket) against the same bench
# in process (hw/stations/sim-inprocess.yaml), runs interleaved so both see the same
# machine load. Prints the whole `meterbench run` (record, certificate, PDF, signing)
# and the runner alone (examples/run_timing.rs). Prints figures; asserts nothing.
#   bench/benchmarks/wire-vs-inprocess.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-8}
cargo build --quiet --bin meterbench
cargo build --quiet -p meterbench-session --example run_timing
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for _ in $(seq "$runs"); do
  for st in sim sim-inprocess; do
    /usr/bin/time -f "$st %e" -a -o "$out/times" target/debug/meterbench run --quiet \
      --station "hw/stations/$st.yaml" --reports "$out/reports" >/dev/null 2>&1 || true
  done
done
med() { grep "^$1 " "$out/times" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
wire=$(med sim); local_=$(med sim-inprocess)
echo "meterbench run, $runs runs each: through the wire median $wire s, in process median $local_ s, ratio $(awk -v a="$wire" -v b="$local_" 'BEGIN {printf "%.2f", a/b}')"
target/debug/examples/run_timing hw/stations/sim.yaml hw/stations/sim-inprocess.yaml "$((runs * 3))" | tail -3
