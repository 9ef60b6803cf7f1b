#!/usr/bin/env python3
"""The audit's questions asked of DuckDB over the same Parquet points files, for
bench/benchmarks/audit.sh to compare with. Prints the time of the queries (in process,
after `import duckdb`) and a few answers to set beside meterbench's; asserts nothing.

    audit-duckdb.py STORE FROM TO MAX_BINS

The same questions as meterbench's figures: runs and first-pass yield per station and
day (a serial's first run under a procedure), per load point and port the n, mean, s,
Cpk against the MPE and a histogram, and per station and load point the daily means and
their least-squares slope (drift). Only runs whose points describe the meters (PASS,
FAIL, NOT_DECIDABLE) enter the error figures. DuckDB reads the points files only: its
run counts come from the points' run ids (ERROR runs without a point are not seen),
which is less than meterbench reads (the index as well).
"""
import sys
import time

import duckdb

store, date_from, date_to, max_bins = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
files = f"{store}/points/station=*/date=*/*.parquet"
con = duckdb.connect()
t0 = time.perf_counter()
con.execute(
    f"""CREATE TEMP VIEW p AS SELECT * FROM read_parquet('{files}', hive_partitioning = false)
        WHERE date BETWEEN '{date_from}' AND '{date_to}'"""
)
yield_rows = con.execute(
    """WITH runs AS (
         SELECT DISTINCT run_id, station, date, started_utc, serial, procedure_id, outcome FROM p),
       firsts AS (
         SELECT *, row_number() OVER (PARTITION BY serial, procedure_id
                                      ORDER BY started_utc, run_id) AS attempt FROM runs)
       SELECT station, date, count(*) AS runs,
              count(*) FILTER (WHERE attempt = 1) AS first_runs,
              count(*) FILTER (WHERE attempt = 1 AND outcome = 'PASS') AS first_pass
       FROM firsts GROUP BY station, date ORDER BY station, date"""
).fetchall()
stats = con.execute(
    """SELECT step_index, step_name, port, count(*) AS n, avg(error_percent) AS mean,
              stddev_samp(error_percent) AS s, min(error_percent) AS lo,
              max(error_percent) AS hi, any_value(mpe_percent) AS mpe,
              (any_value(mpe_percent) - abs(avg(error_percent)))
                / (3 * stddev_samp(error_percent)) AS cpk,
              count(*) FILTER (WHERE NOT accepted) AS rejected
       FROM p WHERE outcome IN ('PASS', 'FAIL', 'NOT_DECIDABLE')
       GROUP BY step_index, step_name, port ORDER BY step_index, port"""
).fetchall()
hist = con.execute(
    f"""WITH e AS (SELECT step_index, port, error_percent AS x FROM p
                   WHERE outcome IN ('PASS', 'FAIL', 'NOT_DECIDABLE')),
       r AS (SELECT step_index, port, min(x) AS lo, max(x) AS hi FROM e GROUP BY ALL)
       SELECT e.step_index, e.port,
              least(floor((x - lo) / nullif((hi - lo) / {max_bins}, 0)), {max_bins} - 1) AS bin,
              count(*) FROM e JOIN r USING (step_index, port) GROUP BY ALL"""
).fetchall()
drift = con.execute(
    """WITH d AS (
         SELECT station, step_index, port, date::DATE AS day, avg(error_percent) AS m FROM p
         WHERE outcome IN ('PASS', 'FAIL', 'NOT_DECIDABLE') GROUP BY ALL)
       SELECT station, step_index, port,
              regr_slope(m, epoch(day) / 86400) AS slope_per_day, count(*) AS days
       FROM d GROUP BY ALL ORDER BY station, step_index, port"""
).fetchall()
elapsed = time.perf_counter() - t0

runs = sum(r[2] for r in yield_rows)
first = sum(r[3] for r in yield_rows)
first_pass = sum(r[4] for r in yield_rows)
low = min((r for r in stats if r[9] is not None), key=lambda r: r[9])
steepest = max(drift, key=lambda r: abs(r[3] or 0))
print(
    f"duckdb {duckdb.__version__}: {runs} runs with points, first-pass yield "
    f"{100 * first_pass / max(first, 1):.2f} % over {first} serials; {len(stats)} load points "
    f"(lowest Cpk {low[9]:.2f} at {low[1]} {low[2]}), {len(hist)} histogram bins, "
    f"{len(drift)} drift series (steepest {steepest[0]} {steepest[1]} {steepest[2]}: "
    f"{steepest[3]:+.5f} %/day)"
)
print(f"duckdb queries: {elapsed:.2f} s")
