#!/usr/bin/env bash
# Wall time and peak memory of the full simulated EN 50470-3 run (both CPIM1000 ports),
# with the binary the README's run command builds. Prints figures; asserts nothing.
#   bench/benchmarks/full-run.sh [RUNS] [STATION]
# STATION defaults to hw/stations/sim.yaml (through the wire); hw/stations/sim-inprocess.yaml
# runs the same simulated bench without the links, for comparison.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-10}
station=${2:-hw/stations/sim.yaml}
cargo build --quiet --bin meterbench
bin=target/debug/meterbench
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
walls=()
rss=()
for _ in $(seq "$runs"); do
  /usr/bin/time -f '%e %M' -o "$out/time" "$bin" run --quiet --station "$station" --reports "$out/reports" >"$out/stdout" 2>/dev/null || true
  grep -q 'VERDICT: PASS' "$out/stdout" || { echo "run did not pass:"; cat "$out/stdout"; exit 1; }
  read -r wall kb <"$out/time"
  walls+=("$wall"); rss+=("$kb")
done
bench_line=$(grep '^bench time' "$out/stdout")
printf '%s\n' "${walls[@]}" | sort -n | awk -v n="$runs" -v st="$station" '{a[NR]=$1} END {printf "full simulated run (" st "), %d runs: wall time median %.3f s (min %.3f, max %.3f)\n", n, a[int((n+1)/2)], a[1], a[n]}'
printf '%s\n' "${rss[@]}" | sort -n | awk '{m=$1} END {printf "peak resident memory (max over runs): %.1f MiB\n", m/1024}'
echo "last run: $bench_line"
