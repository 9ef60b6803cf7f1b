#!/usr/bin/env bash
# The P1 decoder against the Python dsmr_parser, and `meterbench p1 decode` on a large
# capture: decoder throughput on one core (release), time per telegram of both parsers
# on the CSP1 manual's telegram, and the whole command's wall time and peak memory.
# Prints figures; asserts nothing.
#   bench/benchmarks/p1-decode.sh [CAPTURE_MB] [PROFILE]   (PROFILE: dev or release)
set -euo pipefail
cd "$(dirname "$0")/../.."
mb=${1:-100}
profile=${2:-dev}
echo "== decoder alone (release, one core)"
# One run, printed and compared: two runs of the same binary differ by up to 20 % here.
decoded=$(cargo bench --quiet -p meterbench-p1 --bench decode 2>/dev/null | grep '^decode:')
echo "$decoded"
ours_per_s=$(echo "$decoded" | sed -n 's/.*MB\/s, \([0-9]*\) telegrams\/s/\1/p')

echo "== the Python dsmr_parser on the same telegram"
python3 -c 'import dsmr_parser' 2>/dev/null || pip install --quiet dsmr_parser
python3 - "$ours_per_s" <<'PY'
import sys, time
from dsmr_parser import telegram_specifications
from dsmr_parser.parsers import TelegramParser
text = open("bench/p1/tests/data/csp1-example-telegram.p1", "rb").read().decode("ascii")
parser = TelegramParser(telegram_specifications.V5)
parser.parse(text)
best = float("inf")
for _ in range(3):
    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        parser.parse(text)
    best = min(best, (time.perf_counter() - t0) / n)
ours = 1.0 / float(sys.argv[1])
print(f"dsmr_parser: {best * 1e6:.0f} us per telegram; meterbench: {ours * 1e6:.1f} us; "
      f"meterbench is {best / ours:.0f} x faster per telegram")
PY

echo "== meterbench p1 decode of a ${mb} MB capture ($profile profile)"
if [ "$profile" = release ]; then
  cargo build --quiet --release --bin meterbench; bin=target/release/meterbench
else
  cargo build --quiet --bin meterbench; bin=target/debug/meterbench
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# The manual's telegram repeated, with a stray byte between some (as real lines have).
python3 - "$out/capture.p1" "$mb" <<'PY'
import sys
t = open("bench/p1/tests/data/csp1-example-telegram.p1", "rb").read()
target = int(sys.argv[2]) * 1_000_000
with open(sys.argv[1], "wb") as f:
    written = 0
    i = 0
    while written < target:
        f.write(t)
        written += len(t)
        if i % 1000 == 999:
            f.write(b"\x00")
            written += 1
        i += 1
PY
/usr/bin/time -f '%e %M' -o "$out/time" "$bin" p1 decode "$out/capture.p1" >/dev/null 2>"$out/stderr" || true
read -r wall kb <"$out/time"
tail -1 "$out/stderr"
awk -v w="$wall" -v k="$kb" -v mb="$mb" 'BEGIN {printf "p1 decode: %s MB in %.2f s wall (%.1f MB/s), peak resident memory %.1f MiB\n", mb, w, mb / w, k / 1024}'
