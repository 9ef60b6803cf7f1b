#!/usr/bin/env bash
# The multi-position bench's figures: the full class B sequence on a rack of ten CPIM1000
# (20 ports, three counters) against one CPIM1000, with the binary the README's run
# command builds. Prints, per station: wall time (median over RUNS, every bundle issued
# and filed), peak resident memory, bench time against the physical floor of the slowest
# position; then where a session's time goes (runner, outputs). Prints figures; asserts
# nothing.
#   bench/benchmarks/rack.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
cargo build --quiet --bin meterbench
cargo build --quiet -p meterbench-session --example session_timing
bin=target/debug/meterbench
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export METERBENCH_SIGNING_KEY="$out/key.pem"
declare -A walls rss
for _ in $(seq "$runs"); do
  # Interleaved, so both see the same machine.
  for station in hw/stations/sim.yaml hw/stations/sim-rack-10.yaml; do
    rm -rf "$out/reports"
    /usr/bin/time -f '%e %M' -o "$out/time" "$bin" run --quiet --station "$station" --reports "$out/reports" >"$out/stdout" 2>/dev/null || true
    grep -q 'VERDICT: PASS' "$out/stdout" || { echo "$station did not pass:"; tail -20 "$out/stdout"; exit 1; }
    read -r wall kb <"$out/time"
    walls[$station]+="$wall "
    rss[$station]+="$kb "
    grep '^bench time' "$out/stdout" | head -1 >"$out/bench-$(basename "$station")"
  done
done
for station in hw/stations/sim.yaml hw/stations/sim-rack-10.yaml; do
  # shellcheck disable=SC2086
  printf '%s\n' ${walls[$station]} | sort -n | awk -v n="$runs" -v st="$station" '{a[NR]=$1} END {printf "%s: wall time median %.2f s (min %.2f, max %.2f) over %d runs, ", st, a[int((n+1)/2)], a[1], a[n], n}'
  # shellcheck disable=SC2086
  printf '%s\n' ${rss[$station]} | sort -n | awk '{m=$1} END {printf "peak %.0f MiB\n", m/1024}'
  echo "  $(cat "$out/bench-$(basename "$station")")"
done
echo "where the time goes (runner, then bundles and store filing with 2 workers):"
target/debug/examples/session_timing hw/stations/sim.yaml 2
target/debug/examples/session_timing hw/stations/sim-rack-10.yaml 2
# 40 ports: a rack of twenty positions (five counters), made from the ten-position one.
python3 - "$out/sim-rack-20.yaml" <<'PY'
import re, sys
s = open("hw/stations/sim-rack-10.yaml").read()
s = s.replace("id: sim-rack-10", "id: sim-rack-20")
counters = re.search(r"(    - id: c1\n(?:      .*\n)+)", s).group(1)
extra = "".join(counters.replace("c1", f"c{k}").replace("0001", f"000{k}").replace("-01,", f"-0{k},") for k in (4, 5))
s = s.replace("  counters:\n" + counters, "  counters:\n" + counters, 1)
s = re.sub(r"(    - id: c3\n(?:      .*\n)+)", lambda m: m.group(1) + extra, s, count=1)
pos = "".join(f"    - id: {p}\n      heads: [{{ counter: c{(p-1)//4+1}, channel: {((p-1)%4)*2} }}, {{ counter: c{(p-1)//4+1}, channel: {((p-1)%4)*2+1} }}]\n" for p in range(11, 21))
s = s.replace("\nsimulation:", pos + "\nsimulation:", 1)
s = s.replace("    c3: { timebase_hz: 125e6, timebase_offset_ppm: 0.3 }\n", "    c3: { timebase_hz: 125e6, timebase_offset_ppm: 0.3 }\n    c4: { timebase_hz: 125e6, timebase_offset_ppm: -0.4 }\n    c5: { timebase_hz: 125e6, timebase_offset_ppm: 1.3 }\n")
s = s.rstrip("\n") + "\n" + "".join(f"    - position: {p}\n      cpim1000: {{ <<: *cpim, serial_number: SIM-RACK-{p:04d} }}\n" for p in range(11, 21))
open(sys.argv[1], "w").write(s)
PY
target/debug/examples/session_timing "$out/sim-rack-20.yaml" 2
echo "the host's frame decoder alone (one core):"
cargo bench --quiet -p meterbench-counter-protocol 2>/dev/null | tail -4
