//! The results store of meterbench and its audit.
//!
//! - [`write_samples_parquet`]: a run's raw DUT pulses as Parquet; the caller puts it in
//!   the run's bundle as `samples.parquet` *before* the bundle is signed.
//! - [`Store`]: a store at a [`StoreLocation`], embedded (a folder: an SQLite index and
//!   Parquet files partitioned by station and date, see [`layout`]) or PostgreSQL
//!   (`postgres://…`), both with the schema of `schema.sql`:
//!   - [`Store::ingest`]: a finished run, its instruments and its accuracy points;
//!   - [`Store::list_runs`] / [`Store::show_run`]: what `meterbench runs list/show` print;
//!   - [`Store::compact`]: merge a past day's per-run Parquet files (embedded);
//!   - [`Store::audit`]: yield, error distributions, Cpk, control charts, calibration
//!     dues and the FAIL/ERROR runs over a date range, as `audit.html` (+ SVG plots) and
//!     `audit.json`;
//!   - [`Store::synthesize`]: synthetic runs for benchmarks.

mod audit;
mod compact;
mod error;
mod figures;
mod frames;
mod index;
pub mod layout;
mod limits;
mod pg;
mod plots;
mod render;
mod store;
mod synth;

pub use audit::{
    AUDIT_SCHEMA, AuditContext, AuditOptions, AuditSummary, CalibrationDue, ChartDay, ControlChart,
    Counts, DailyYield, HistBin, Histogram, LoadPointStats, PROBLEM_RUNS_FILE, ProblemRun,
    StationYield, control_charts, cpk, cpk_interval, histogram_bins, load_point_stats,
    yield_by_station_day,
};
pub use compact::CompactSummary;
pub use error::StoreError;
pub use figures::PointGroups;
pub use frames::{
    POINTS_SCHEMA, PointRow, SAMPLES_SCHEMA, outcome_str, parse_outcome, point_rows,
    point_rows_from_frame, points_frame, read_parquet, samples_frame, write_samples_parquet,
};
pub use index::{BUNDLE_SAMPLES_FILE, InstrumentRow, RunDetail, RunFilter, RunRow, SCHEMA_SQL};
pub use limits::column_limit;
pub use plots::PLOTS_DIR;
pub use render::{AUDIT_TEMPLATE, EMBEDDED_AUDIT_TEMPLATE, render_audit_html};
pub use store::{Store, StoreLocation};
pub use synth::{DRIFT_PERCENT_PER_DAY, DRIFTING_STATION, SYNTH_DAYS, SynthSummary, synth_start};
