-- meterbench results store: index of runs (schema meterbench.store/1).
--
-- Portable SQL: the same statements run on SQLite (the embedded index, applied by
-- meterbench-store at every open) and on PostgreSQL (a lab-wide index), so only
-- standard types, CHECK constraints and IF NOT EXISTS are used.
--
-- Times are RFC 3339 UTC text of fixed width ('2026-11-21T20:21:21.258443Z'): SQLite
-- compares the text, which sorts like time; PostgreSQL parses it. Dates are
-- 'YYYY-MM-DD' (the UTC date the run started, also the date partition of the Parquet
-- files). Per-pulse samples live in the bundles (and the embedded store's Parquet
-- files), not here.
--
-- Tables are only ever added (IF NOT EXISTS), so a store made by an earlier version
-- gains them when opened. A CHECK of such a store stays as it was made: a store made
-- before NOT_DECIDABLE was an outcome refuses to file such a run.

CREATE TABLE IF NOT EXISTS store_meta (
    meta_key   VARCHAR(64)  NOT NULL PRIMARY KEY,
    meta_value VARCHAR(256) NOT NULL
);

INSERT INTO store_meta (meta_key, meta_value) VALUES ('schema', 'meterbench.store/1')
    ON CONFLICT (meta_key) DO NOTHING;

CREATE TABLE IF NOT EXISTS runs (
    run_id            VARCHAR(200) NOT NULL PRIMARY KEY,
    station_id        VARCHAR(100) NOT NULL,
    station_name      VARCHAR(200) NOT NULL,
    laboratory        VARCHAR(200) NOT NULL,
    dut_manufacturer  VARCHAR(100) NOT NULL,
    dut_type          VARCHAR(100) NOT NULL,
    dut_serial        VARCHAR(100) NOT NULL,
    accuracy_class    VARCHAR(10)  NOT NULL,
    procedure_id      VARCHAR(100) NOT NULL,
    procedure_version VARCHAR(50)  NOT NULL,
    procedure_sha256  CHAR(64)     NOT NULL,
    bench_version     VARCHAR(50)  NOT NULL,
    started_utc       TIMESTAMP WITH TIME ZONE NOT NULL,
    finished_utc      TIMESTAMP WITH TIME ZONE,
    run_date          DATE         NOT NULL,
    outcome           VARCHAR(16)  NOT NULL
        CHECK (outcome IN ('PASS', 'FAIL', 'NOT_DECIDABLE', 'ERROR', 'ABORTED', 'IN_PROGRESS')),
    outcome_reason    TEXT,
    bundle_path       TEXT         NOT NULL
);

CREATE INDEX IF NOT EXISTS runs_by_serial ON runs (dut_serial, started_utc);
CREATE INDEX IF NOT EXISTS runs_by_station ON runs (station_id, run_date);
CREATE INDEX IF NOT EXISTS runs_by_date ON runs (run_date, outcome);

-- Every instrument of a run with the calibration it was used under.
CREATE TABLE IF NOT EXISTS run_instruments (
    run_id                VARCHAR(200) NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    role                  VARCHAR(50)  NOT NULL,
    driver                VARCHAR(50)  NOT NULL,
    model                 VARCHAR(200) NOT NULL,
    serial_number         VARCHAR(100) NOT NULL,
    calibration_id        VARCHAR(100) NOT NULL,
    calibration_due       DATE         NOT NULL,
    calibration_issued_by VARCHAR(200) NOT NULL,
    PRIMARY KEY (run_id, role)
);

CREATE INDEX IF NOT EXISTS run_instruments_by_calibration
    ON run_instruments (calibration_due, calibration_id);

-- A run that amends another (a later session's retest, which carries the other's steps
-- over): which run it amends. So that any station sees a run is amended already, and
-- which run holds the points an amending run carried over.
CREATE TABLE IF NOT EXISTS run_amendments (
    run_id VARCHAR(200) NOT NULL PRIMARY KEY REFERENCES runs (run_id) ON DELETE CASCADE,
    amends VARCHAR(200) NOT NULL
);

CREATE INDEX IF NOT EXISTS run_amendments_by_amended ON run_amendments (amends);

-- Every accuracy point of a run (one row per load point and port; of a retested point,
-- its latest attempt; of a run that amends another, a later session's retest, only the
-- points it measured: those it carried over are the amended run's rows, so that each
-- measurement is counted once), so that all stations' results are queryable in one place. Raw
-- pulses stay in the signed bundles (samples.parquet). The embedded store also keeps
-- them as Parquet files for its audit; a PostgreSQL store packs them per run for its
-- audit, from these rows (pg_packs.sql).
CREATE TABLE IF NOT EXISTS points (
    run_id        VARCHAR(200)     NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    step_index    INTEGER          NOT NULL,
    port          VARCHAR(50)      NOT NULL,
    step_name     VARCHAR(200)     NOT NULL,
    current_name  VARCHAR(50)      NOT NULL,
    current_a     DOUBLE PRECISION NOT NULL,
    power_factor  VARCHAR(20)      NOT NULL,
    phases        VARCHAR(50)      NOT NULL,
    repeats       INTEGER          NOT NULL,
    error_percent DOUBLE PRECISION NOT NULL,
    u_percent     DOUBLE PRECISION NOT NULL,
    mpe_percent   DOUBLE PRECISION NOT NULL,
    conformity    VARCHAR(20)      NOT NULL,
    accepted      BOOLEAN          NOT NULL,
    PRIMARY KEY (run_id, step_index, port)
);
