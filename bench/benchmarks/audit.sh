#!/usr/bin/env bash
# Wall time and peak memory of `meterbench audit` (figures, HTML, SVG plots and the PDF)
# over a store of synthetic runs (index rows and points in the compacted layout, one file
# per station and day; no samples files; see meterbench_store::synthesize). Dev profile.
# Prints figures; asserts nothing.
#   bench/benchmarks/audit.sh [RUNS] [SEED]
# STORE_MANIFEST: the Cargo.toml of a workspace that has meterbench-store as a member
# (default: the repository's); CARGO_TARGET_DIR is honoured.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-100000}
seed=${2:-1}
manifest=${STORE_MANIFEST:-Cargo.toml}
cargo build --quiet --manifest-path "$manifest" -p meterbench-store --examples
cargo build --quiet --manifest-path "$manifest" -p meterbench
bin=${CARGO_TARGET_DIR:-target}/debug
synth=$bin/examples/synth
meterbench=$bin/meterbench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
store="$work/store"

/usr/bin/time -f '%e s %M KiB' -o "$work/time-synth" "$synth" "$store" "$runs" "$seed" | tee "$work/synth.out"
echo "synthesize: $(cat "$work/time-synth") (wall, peak RSS)"
echo "store: $(du -sh "$store" | cut -f1), $(find "$store/points" -name '*.parquet' | wc -l) points files, index $(du -h "$store/index.sqlite" | cut -f1)"

# The synthetic range: 2026-01-05 .. 2026-04-04 (90 days).
/usr/bin/time -f '%e s %M KiB' -o "$work/time-audit" \
  "$meterbench" audit --store "$store" --from 2026-01-05 --to 2026-04-04 --out "$work/audit" \
  2>&1 | tee "$work/audit.out"
echo "meterbench audit: $(cat "$work/time-audit") (wall, peak RSS)"
echo "report: $(du -sh "$work/audit" | cut -f1) ($(ls "$work/audit/plots" | wc -l) SVG plots, audit.html $(du -h "$work/audit/audit.html" | cut -f1), audit.pdf $(du -h "$work/audit/audit.pdf" | cut -f1))"
