#!/usr/bin/env bash
# Wall time and peak memory of the audit over a store of synthetic runs (see
# meterbench_store::Store::synthesize: 90 days, 5 stations, 22 points per run), on each
# backend, beside DuckDB's answers to the same questions over the same Parquet files.
# Dev profile. Prints figures; asserts nothing.
#   bench/benchmarks/audit.sh [RUNS] [SEED] [BACKENDS]
# BACKENDS: "embedded postgres" (default), or one of them. For postgres, a throwaway
# cluster from Debian's server binaries (fsync off; it is read, not written, in the
# timed part) in a temporary folder, on a Unix socket; the peak memory is the audit
# process's, not the server's. DuckDB (`pip install duckdb`) is asked when importable.
# STORE_MANIFEST: the Cargo.toml of a workspace that has meterbench-store as a member
# (default: the repository's); CARGO_TARGET_DIR is honoured.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-100000}
seed=${2:-1}
backends=${3:-embedded postgres}
manifest=${STORE_MANIFEST:-Cargo.toml}
cargo build --quiet --manifest-path "$manifest" -p meterbench-store --examples
cargo build --quiet --manifest-path "$manifest" -p meterbench
bin=${CARGO_TARGET_DIR:-target}/debug
synth=$bin/examples/synth
audit=$bin/examples/audit
meterbench=$bin/meterbench
work=$(mktemp -d)
pg=""
cleanup() {
  if [ -n "$pg" ]; then as_postgres "$pgbin/pg_ctl" -D "$pg/data" -m fast stop >/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
as_postgres() {
  if [ "$(id -u)" = 0 ]; then setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; else "$@"; fi
}
from=2026-01-05 to=2026-04-04   # the synthetic range: 90 days
timed() { /usr/bin/time -f '%e s wall, %M KiB peak RSS' -o "$work/time" "$@"; cat "$work/time"; }

for backend in $backends; do
  echo "== $backend store, $runs runs (seed $seed)"
  case $backend in
    embedded) store="$work/store" ;;
    postgres)
      pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
      pg=$(mktemp -d)
      [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$pg"
      as_postgres "$pgbin/initdb" -A trust -U postgres --no-sync -E UTF8 -D "$pg/data" >/dev/null
      as_postgres "$pgbin/pg_ctl" -D "$pg/data" -l "$pg/server.log" -w \
        -o "-k $pg -c listen_addresses= -c fsync=off" start >/dev/null
      store="postgres:///postgres?host=$pg&user=postgres"
      ;;
    *) echo "unknown backend $backend" >&2; exit 2 ;;
  esac
  echo "synthesize: $(timed "$synth" "$store" "$runs" "$seed" | tr '\n' ' ')"
  if [ "$backend" = embedded ]; then
    echo "store: $(du -sh "$store" | cut -f1), $(find "$store/points" -name '*.parquet' | wc -l) points files, index $(du -h "$store/index.sqlite" | cut -f1)"
  else
    echo "store: $(du -sh "$pg/data" | cut -f1) of PostgreSQL data"
  fi
  # The figures alone (no plots, no PDF): what DuckDB's queries are compared with.
  echo "figures only: $(timed "$audit" "$store" "$from" "$to" "$work/figures-$backend" figures | tail -1)"
  # The complete audit: figures, HTML, SVG plots and the PDF.
  timed "$meterbench" audit --store "$store" --from "$from" --to "$to" --out "$work/audit-$backend" \
    >"$work/audit.out" 2>&1 || { cat "$work/audit.out"; exit 1; }
  echo "meterbench audit (figures, HTML, plots, PDF): $(cat "$work/time")"
  out="$work/audit-$backend"
  echo "report: $(du -sh "$out" | cut -f1) ($(ls "$out/plots" | wc -l) SVG plots, audit.html $(du -h "$out/audit.html" | cut -f1), audit.pdf $(du -h "$out/audit.pdf" | cut -f1))"
done

if [ -d "$work/store" ] && python3 -c 'import duckdb' 2>/dev/null; then
  echo "== DuckDB over the embedded store's Parquet points files"
  echo "process: $(timed python3 bench/benchmarks/audit-duckdb.py "$work/store" "$from" "$to" 40 | tail -1)"
  python3 bench/benchmarks/audit-duckdb.py "$work/store" "$from" "$to" 40
fi
