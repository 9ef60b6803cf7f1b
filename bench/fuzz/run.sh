#!/usr/bin/env bash
# Run every fuzz target for a bounded time (default 60 s each) on the committed corpus.
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). New inputs go to
# a temp dir; a crash leaves its input under bench/fuzz/artifacts/ and fails the script.
#   bench/fuzz/run.sh [SECONDS_PER_TARGET]
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in counter_frame scpi_reply p1_decode slcan_line isotp_uds data_files gs1_serial xml_signature keyring issuance_log climate_reading pgcopy point_pack; do
  mkdir -p "$work/$target" "artifacts/$target"
  echo "== $target: ${seconds} s"
  status=0
  cargo +nightly fuzz run --fuzz-dir . "$target" "$work/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -artifact_prefix="artifacts/$target/" -print_final_stats=1 \
    >"$work/$target.log" 2>&1 || status=$?
  grep -E 'stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb' "$work/$target.log" || true
  if [ "$status" -ne 0 ]; then
    tail -30 "$work/$target.log"
    echo "fuzzing $target failed (exit $status)"; exit 1
  fi
  if ls "artifacts/$target"/crash-* >/dev/null 2>&1; then
    echo "crash found in $target: $(ls artifacts/$target/crash-*)"; exit 1
  fi
done
echo "no crashes"
