//! The results store of meterbench and its audit.
//!
//! - [`write_samples_parquet`]: a run's raw DUT pulses as Parquet; the caller puts it in
//!   the run's bundle as `samples.parquet` *before* the bundle is signed.
//! - [`ingest`]: a finished run into a store directory — samples and accuracy points as
//!   Parquet files partitioned by station and date, and a row in the embedded SQLite
//!   index (schema in `schema.sql`, portable to PostgreSQL). See [`layout`].
//! - [`list_runs`] / [`show_run`]: what `meterbench runs list/show` print.
//! - [`compact`]: merge a past day's per-run Parquet files into one per partition.
//! - [`audit`]: yield, error distributions, Cpk, control charts, calibration dues and the
//!   FAIL/ERROR runs over a date range, as `audit.html` (+ SVG plots) and `audit.json`.
//! - [`synthesize`]: synthetic index rows and points files for benchmarks.

mod audit;
mod compact;
mod error;
mod frames;
mod index;
pub mod layout;
mod plots;
mod render;
mod synth;

pub use audit::{
    AUDIT_SCHEMA, AuditContext, AuditOptions, AuditPoints, AuditSummary, CalibrationDue, ChartDay,
    ControlChart, Counts, DailyYield, HistBin, Histogram, LoadPointStats, ProblemRun, StationYield,
    audit, audit_with, control_charts, cpk, cpk_interval, histogram_bins, least_squares_slope,
    load_point_stats, yield_by_station_day,
};
pub use compact::{CompactSummary, compact};
pub use error::StoreError;
pub use frames::{
    POINTS_SCHEMA, PointRow, SAMPLES_SCHEMA, outcome_str, parse_outcome, point_rows,
    point_rows_from_frame, points_frame, read_parquet, samples_frame, write_samples_parquet,
};
pub use index::{
    BUNDLE_SAMPLES_FILE, InstrumentRow, RunDetail, RunFilter, RunRow, SCHEMA_SQL, ingest,
    list_runs, show_run,
};
pub use plots::PLOTS_DIR;
pub use render::{AUDIT_TEMPLATE, EMBEDDED_AUDIT_TEMPLATE, render_audit_html};
pub use synth::{
    DRIFT_PERCENT_PER_DAY, DRIFTING_STATION, SYNTH_DAYS, SynthSummary, synth_start, synthesize,
};
