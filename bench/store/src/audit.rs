//! The audit over a date range: yield, error distributions, Cpk, control charts of the
//! daily means (reference drift), calibrations coming due and every FAIL/ERROR run.
//!
//! Runs come from the index (an ERROR run may have no accuracy point at all); the
//! per-point figures come from lazy polars scans of the Parquet points partitions in the
//! range. Only PASS and FAIL runs feed the error statistics: an ERROR or ABORTED run is a
//! bench fault or a stop, and its numbers say nothing about the meters.

use crate::StoreError;
use crate::frames::{outcome_str, points_frame};
use crate::index::{RunFilter, RunRow, open_index, query_runs};
use crate::layout::{INDEX_FILE, POINTS_DIR, absolute, files_in_range, relative_path};
use chrono::NaiveDate;
use meterbench_runner::record::Outcome;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const AUDIT_SCHEMA: &str = "meterbench.audit/1";

/// What [`audit_with`] computes and where it looks.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// List instruments whose calibration is due within this many days of `as_of`
    /// (overdue ones included).
    pub calibration_due_within_days: i64,
    /// Reference date for calibration dues; `to` when `None`, so the same store and
    /// range always give the same report.
    pub as_of: Option<NaiveDate>,
    /// Most bins a load point's histogram range is cut into (Scott's rule or MPE/100 may
    /// make the bins wider and fewer).
    pub histogram_max_bins: usize,
    /// Read `audit.html.j2` from here when the file exists, else use the built-in copy.
    pub templates_dir: Option<PathBuf>,
    /// Draw the SVG plots (off: figures and tables only).
    pub plots: bool,
}

impl AuditOptions {
    pub fn new(from: NaiveDate, to: NaiveDate) -> Self {
        AuditOptions {
            from,
            to,
            calibration_due_within_days: 30,
            as_of: None,
            histogram_max_bins: 60,
            templates_dir: None,
            plots: true,
        }
    }
}

/// Run counts and first-pass yield of a group of runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub runs: i64,
    pub pass: i64,
    pub fail: i64,
    /// Runs where no point failed but some got no statement of conformity.
    #[serde(default)]
    pub not_decidable: i64,
    pub error: i64,
    pub aborted: i64,
    /// Serials whose first run in the range is in this group.
    pub first_runs: i64,
    /// ... of which that first run passed.
    pub first_pass: i64,
    /// first_pass / first_runs; `None` without first runs.
    pub first_pass_yield: Option<f64>,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.runs += o.runs;
        self.pass += o.pass;
        self.fail += o.fail;
        self.not_decidable += o.not_decidable;
        self.error += o.error;
        self.aborted += o.aborted;
        self.first_runs += o.first_runs;
        self.first_pass += o.first_pass;
        self.first_pass_yield = ratio(self.first_pass, self.first_runs);
    }
}

fn ratio(a: i64, b: i64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyYield {
    pub station: String,
    pub date: NaiveDate,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StationYield {
    pub station: String,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistBin {
    pub lo: f64,
    pub hi: f64,
    pub count: u64,
}

/// Bins [lo, hi) of equal width; values outside the shown range (±3 MPE at most) are
/// counted as under- and overflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub width: f64,
    pub bins: Vec<HistBin>,
    pub underflow: u64,
    pub overflow: u64,
}

/// The errors of one load point (procedure step) on one port over the range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadPointStats {
    pub step_index: i64,
    pub step_name: String,
    pub port: String,
    pub mpe_percent: f64,
    pub n: i64,
    pub mean: f64,
    /// Sample standard deviation (n − 1).
    pub std_dev: Option<f64>,
    pub min: f64,
    pub max: f64,
    /// Points not accepted under the decision rule.
    pub rejected: i64,
    /// min(USL − μ, μ − LSL) / 3σ with USL = +MPE, LSL = −MPE.
    pub cpk: Option<f64>,
    pub histogram: Histogram,
    /// SVG file, relative to the audit's folder.
    pub histogram_plot: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartDay {
    pub date: NaiveDate,
    pub n: i64,
    pub mean: f64,
    pub lcl: Option<f64>,
    pub ucl: Option<f64>,
    pub out_of_control: bool,
}

/// X̄ chart of the daily mean error of one load point (both ports) at one station.
/// Centre line: mean of all its points in the range; σ: pooled within-day standard
/// deviation; limits of a day: centre ± 3σ/√n. A reference that drifts moves every
/// meter's error the same way, so it shows here as a trend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlChart {
    pub station: String,
    pub step_index: i64,
    pub step_name: String,
    pub mpe_percent: f64,
    pub center: f64,
    pub sigma_within: Option<f64>,
    /// Least-squares slope of the daily means, % per day.
    pub slope_percent_per_day: Option<f64>,
    /// Slope × days between the first and the last day with data, %.
    pub drift_over_range_percent: Option<f64>,
    /// The fitted trend moves by more than 3σ/√n̄ over the range.
    pub drift_suspected: bool,
    pub out_of_control_days: usize,
    pub days: Vec<ChartDay>,
    pub plot: Option<String>,
}

/// An instrument's latest calibration seen in the range, when it falls due soon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalibrationDue {
    pub station: String,
    pub role: String,
    pub model: String,
    pub serial_number: String,
    pub calibration_id: String,
    pub due: NaiveDate,
    /// Days from `as_of` to the due date (negative: overdue).
    pub days_left: i64,
    pub overdue: bool,
    pub last_used_utc: String,
}

/// A FAIL or ERROR run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProblemRun {
    pub run_id: String,
    pub station: String,
    pub serial: String,
    pub started_utc: String,
    pub outcome: String,
    pub reason: Option<String>,
    /// Absolute path of the bundle when the run was ingested.
    pub bundle: String,
    /// The same, relative to the audit's folder (for links).
    pub bundle_link: String,
}

/// The audit's figures, as written to `audit.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditSummary {
    pub schema: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub as_of: NaiveDate,
    pub calibration_due_within_days: i64,
    pub totals: Counts,
    pub stations: Vec<StationYield>,
    pub daily: Vec<DailyYield>,
    pub yield_plot: Option<String>,
    pub load_points: Vec<LoadPointStats>,
    pub control_charts: Vec<ControlChart>,
    pub calibrations_due: Vec<CalibrationDue>,
    pub problem_runs: Vec<ProblemRun>,
}

/// What a report template sees: the figures plus presentation details. The HTML report
/// is rendered from it; a Typst template can be rendered from the same struct (or from
/// `audit.json`, which holds `summary`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditContext {
    pub title: String,
    pub generator: String,
    pub store: String,
    pub summary: AuditSummary,
}

/// [`audit_with`] with the default options.
pub fn audit(
    store: &Path,
    from: NaiveDate,
    to: NaiveDate,
    out_dir: &Path,
) -> Result<AuditSummary, StoreError> {
    audit_with(store, &AuditOptions::new(from, to), out_dir)
}

/// Compute the audit of `store` over `opts.from..=opts.to` and write `audit.html`,
/// `audit.json` and `plots/*.svg` into `out_dir`.
pub fn audit_with(
    store: &Path,
    opts: &AuditOptions,
    out_dir: &Path,
) -> Result<AuditSummary, StoreError> {
    if opts.to < opts.from {
        return Err(StoreError::Argument(format!(
            "audit range {} .. {} ends before it starts",
            opts.from, opts.to
        )));
    }
    std::fs::create_dir_all(out_dir).map_err(StoreError::io(out_dir))?;
    let out_abs = absolute(out_dir);
    let as_of = opts.as_of.unwrap_or(opts.to);
    let conn = open_index(store, false)?;

    let runs = query_runs(
        &conn,
        store,
        &RunFilter {
            from: Some(opts.from),
            to: Some(opts.to),
            ..RunFilter::default()
        },
    )?;
    let runs_df = runs_frame(&runs).map_err(StoreError::polars("runs of the range"))?;
    let daily = yield_by_station_day(runs_df.lazy())
        .map_err(StoreError::polars("yield per station and day"))?;
    let (totals, stations) = yield_totals(&daily);

    // One pass over the files (each query below would otherwise scan them again): the
    // columns the figures need, of the runs that describe the meters, in memory.
    // The text keys become categoricals: grouping 2 million rows by them is then a
    // matter of small integers (time and memory).
    let cat = DataType::from_categories(Categories::global());
    let points = meter_points(scan_points(store, opts.from, opts.to)?)
        .select([
            col("station").cast(cat.clone()),
            col("date").cast(cat.clone()),
            col("step_index"),
            col("step_name").cast(cat.clone()),
            col("port").cast(cat.clone()),
            col("mpe_percent"),
            col("error_percent"),
            col("accepted"),
            col("outcome").cast(cat),
        ])
        // The streaming engine reads and casts file by file: the text columns are never
        // all in memory at once.
        .collect_with_engine(Engine::Streaming)
        .map_err(StoreError::polars("reading the points files"))?
        // One query, one sink: always a single frame.
        .unwrap_single()
        .lazy();
    let mut load_points = load_point_stats(points.clone(), opts.histogram_max_bins)
        .map_err(StoreError::polars("load point statistics"))?;
    let mut control_charts = control_charts(points, opts.from)
        .map_err(StoreError::polars("control charts of the daily means"))?;
    let calibrations_due = calibrations_due(
        &conn,
        &store.join(INDEX_FILE),
        opts.from,
        opts.to,
        as_of,
        opts.calibration_due_within_days,
    )?;

    let problem_runs = runs
        .iter()
        .filter(|r| {
            matches!(
                r.outcome,
                Outcome::Fail | Outcome::NotDecidable | Outcome::Error
            )
        })
        .map(|r| ProblemRun {
            run_id: r.run_id.clone(),
            station: r.station.clone(),
            serial: r.serial.clone(),
            started_utc: r.started_utc.clone(),
            outcome: outcome_str(r.outcome).to_string(),
            reason: r.reason.clone(),
            bundle: r.bundle.to_string_lossy().into_owned(),
            bundle_link: link(&relative_path(&out_abs, &r.bundle)),
        })
        .collect();

    let mut yield_plot = None;
    if opts.plots {
        let dir = out_dir.join(crate::plots::PLOTS_DIR);
        std::fs::create_dir_all(&dir).map_err(StoreError::io(&dir))?;
        yield_plot = crate::plots::yield_plot(&daily, opts.from, opts.to, out_dir)?;
        for lp in &mut load_points {
            lp.histogram_plot = Some(crate::plots::histogram_plot(lp, out_dir)?);
        }
        for c in &mut control_charts {
            c.plot = Some(crate::plots::control_chart_plot(
                c, opts.from, opts.to, out_dir,
            )?);
        }
    }

    let summary = AuditSummary {
        schema: AUDIT_SCHEMA.to_string(),
        from: opts.from,
        to: opts.to,
        as_of,
        calibration_due_within_days: opts.calibration_due_within_days,
        totals,
        stations,
        daily,
        yield_plot,
        load_points,
        control_charts,
        calibrations_due,
        problem_runs,
    };
    let json_path = out_dir.join("audit.json");
    let mut json = serde_json::to_vec_pretty(&summary).map_err(|source| StoreError::Json {
        path: json_path.clone(),
        source,
    })?;
    json.push(b'\n');
    std::fs::write(&json_path, json).map_err(StoreError::io(&json_path))?;

    let ctx = AuditContext {
        title: format!("Bench audit {} to {}", opts.from, opts.to),
        generator: format!("meterbench-store {}", env!("CARGO_PKG_VERSION")),
        store: absolute(store).to_string_lossy().into_owned(),
        summary: summary.clone(),
    };
    let html = crate::render::render_audit_html(&ctx, opts.templates_dir.as_deref())?;
    let html_path = out_dir.join("audit.html");
    std::fs::write(&html_path, html).map_err(StoreError::io(&html_path))?;
    Ok(summary)
}

/// A relative path as an href: forward slashes, every byte outside `[A-Za-z0-9._~-]`
/// of a component percent-encoded (so the template may print it unescaped), and a
/// trailing slash because it names a folder.
fn link(p: &Path) -> String {
    let mut s = String::new();
    for (i, c) in p.components().enumerate() {
        if i > 0 {
            s.push('/');
        }
        for b in c.as_os_str().to_string_lossy().bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-') {
                s.push(char::from(b));
            } else {
                s.push_str(&format!("%{b:02X}"));
            }
        }
    }
    s.push('/');
    s
}

/// The columns of the index's runs the yield needs: run_id, station, serial, date,
/// started_utc, outcome.
pub fn runs_frame(rows: &[RunRow]) -> PolarsResult<DataFrame> {
    let date: Vec<String> = rows
        .iter()
        .map(|r| r.date.format("%Y-%m-%d").to_string())
        .collect();
    DataFrame::new(
        rows.len(),
        vec![
            Column::new(
                "run_id".into(),
                rows.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(),
            ),
            Column::new(
                "station".into(),
                rows.iter().map(|r| r.station.as_str()).collect::<Vec<_>>(),
            ),
            Column::new(
                "serial".into(),
                rows.iter().map(|r| r.serial.as_str()).collect::<Vec<_>>(),
            ),
            Column::new("date".into(), date),
            Column::new(
                "started_utc".into(),
                rows.iter()
                    .map(|r| r.started_utc.as_str())
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "outcome".into(),
                rows.iter()
                    .map(|r| outcome_str(r.outcome))
                    .collect::<Vec<_>>(),
            ),
        ],
    )
}

/// Lazy scan of the points files of the range (partition pruning by directory name,
/// then a filter on the date column).
fn scan_points(store: &Path, from: NaiveDate, to: NaiveDate) -> Result<LazyFrame, StoreError> {
    let files = files_in_range(store, POINTS_DIR, from, to)?;
    if files.is_empty() {
        let empty = points_frame(&[]).map_err(StoreError::polars("empty points table"))?;
        return Ok(empty.lazy());
    }
    let paths = files
        .iter()
        .map(|p| PlRefPath::try_from_path(p))
        .collect::<PolarsResult<Vec<_>>>()
        .map_err(StoreError::polars("points file names"))?;
    let args = ScanArgsParquet {
        // The partition keys are columns of the files already.
        hive_options: HiveOptions {
            enabled: Some(false),
            ..HiveOptions::default()
        },
        glob: false,
        ..ScanArgsParquet::default()
    };
    let lf = LazyFrame::scan_parquet_sources(ScanSources::Paths(paths.into_iter().collect()), args)
        .map_err(StoreError::polars("scanning the points files"))?;
    let (f, t) = (
        from.format("%Y-%m-%d").to_string(),
        to.format("%Y-%m-%d").to_string(),
    );
    Ok(lf.filter(col("date").gt_eq(lit(f)).and(col("date").lt_eq(lit(t)))))
}

fn count_of(outcome: &str) -> Expr {
    col("outcome")
        .eq(lit(outcome))
        .cast(DataType::Int64)
        .sum()
        .alias(outcome.to_ascii_lowercase())
}

/// Runs per station and day, and first-pass yield: a serial's first run in the frame
/// (by start time, then run id) counts for the station and day it ran on, and passes
/// when its outcome is PASS.
pub fn yield_by_station_day(runs: LazyFrame) -> PolarsResult<Vec<DailyYield>> {
    // Within a group, rows keep the frame's order: sorted once, `first` is the earliest.
    let firsts = runs
        .clone()
        .sort(["started_utc", "run_id"], SortMultipleOptions::default())
        .group_by([col("serial")])
        .agg([
            col("station").first(),
            col("date").first(),
            col("outcome").first(),
        ])
        .group_by([col("station"), col("date")])
        .agg([
            len().cast(DataType::Int64).alias("first_runs"),
            col("outcome")
                .eq(lit("PASS"))
                .cast(DataType::Int64)
                .sum()
                .alias("first_pass"),
        ]);
    let df = runs
        .group_by([col("station"), col("date")])
        .agg([
            len().cast(DataType::Int64).alias("runs"),
            count_of("PASS"),
            count_of("FAIL"),
            count_of("NOT_DECIDABLE"),
            count_of("ERROR"),
            count_of("ABORTED"),
        ])
        .join(
            firsts,
            [col("station"), col("date")],
            [col("station"), col("date")],
            JoinArgs::new(JoinType::Left),
        )
        .collect()?;
    let station = strs(&df, "station")?;
    let date = strs(&df, "date")?;
    let runs_n = i64s(&df, "runs")?;
    let pass = i64s(&df, "pass")?;
    let fail = i64s(&df, "fail")?;
    let not_decidable = i64s(&df, "not_decidable")?;
    let error = i64s(&df, "error")?;
    let aborted = i64s(&df, "aborted")?;
    let first_runs = i64s(&df, "first_runs")?;
    let first_pass = i64s(&df, "first_pass")?;
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let Ok(d) = NaiveDate::parse_from_str(&date[i], "%Y-%m-%d") else {
            return Err(PolarsError::ComputeError(
                format!("date {:?} is not YYYY-MM-DD", date[i]).into(),
            ));
        };
        out.push(DailyYield {
            station: station[i].clone(),
            date: d,
            counts: Counts {
                runs: runs_n[i],
                pass: pass[i],
                fail: fail[i],
                not_decidable: not_decidable[i],
                error: error[i],
                aborted: aborted[i],
                first_runs: first_runs[i],
                first_pass: first_pass[i],
                first_pass_yield: ratio(first_pass[i], first_runs[i]),
            },
        });
    }
    out.sort_by(|a, b| (&a.station, a.date).cmp(&(&b.station, b.date)));
    Ok(out)
}

fn yield_totals(daily: &[DailyYield]) -> (Counts, Vec<StationYield>) {
    let mut total = Counts::default();
    let mut per: BTreeMap<&str, Counts> = BTreeMap::new();
    for d in daily {
        total.add(&d.counts);
        per.entry(&d.station).or_default().add(&d.counts);
    }
    let stations = per
        .into_iter()
        .map(|(s, counts)| StationYield {
            station: s.to_string(),
            counts,
        })
        .collect();
    (total, stations)
}

/// Cpk = min(USL − μ, μ − LSL) / 3σ with USL = +MPE, LSL = −MPE; `None` without spread
/// (σ below 1e-9 of the limit is rounding, e.g. the s of equal values summed in another
/// order).
pub fn cpk(mean: f64, std_dev: Option<f64>, mpe_percent: f64) -> Option<f64> {
    let floor = 1e-9 * mpe_percent.abs().max(mean.abs());
    let s = std_dev.filter(|s| *s > floor && s.is_finite())?;
    Some((mpe_percent - mean).min(mean + mpe_percent) / (3.0 * s))
}

/// Only runs whose numbers describe the meters (see the module docs).
fn meter_points(points: LazyFrame) -> LazyFrame {
    points.filter(
        col("outcome")
            .eq(lit("PASS"))
            .or(col("outcome").eq(lit("FAIL")))
            .or(col("outcome").eq(lit("NOT_DECIDABLE"))),
    )
}

/// A bin width of 1, 2, 2.5 or 5 × 10^k, at least `raw`.
fn nice_width(raw: f64) -> f64 {
    if !(raw > 0.0 && raw.is_finite()) {
        return 1.0;
    }
    let base = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * base)
        .find(|w| *w >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * base)
}

/// Bins for the `n` values in `min..=max`, standard deviation `std_dev`, of a point with
/// limit `mpe`: (first edge, width, number of bins). The width is the widest of Scott's
/// rule 3.49 s n^(−1/3), the range over `max_bins` and MPE/100, rounded up to 1, 2, 2.5
/// or 5 × 10^k; the shown range is clipped to ±3 MPE.
pub fn histogram_bins(
    min: f64,
    max: f64,
    n: i64,
    std_dev: Option<f64>,
    mpe: f64,
    max_bins: usize,
) -> (f64, f64, i64) {
    let (mut lo, mut hi) = (min.max(-3.0 * mpe), max.min(3.0 * mpe));
    if lo > hi {
        (lo, hi) = (min, max);
    }
    let max_bins = max_bins.max(1) as f64;
    // Never finer than a hundredth of the limit: two runs a few ppm apart make one bar,
    // not a comb of empty bins.
    let mut width = nice_width((mpe.abs() / 100.0).max(1e-6));
    if hi > lo {
        width = width.max(nice_width((hi - lo) / max_bins));
    }
    if let Some(s) = std_dev.filter(|s| *s > 0.0 && s.is_finite() && n > 1) {
        width = width.max(nice_width(3.49 * s * (n as f64).powf(-1.0 / 3.0)));
    }
    let edge = (lo / width + 1e-9).floor() * width;
    let bins = ((hi - edge) / width + 1e-9).floor() as i64 + 1;
    (edge, width, bins.max(1))
}

/// Bin of `e` among `n` bins of `width` from `lo` (left-closed, a hair of tolerance so
/// that a value printed on an edge lands above it); `None` below, `Some(n)` above.
fn bin_of(e: f64, lo: f64, width: f64, n: i64) -> Option<i64> {
    let x = (e - lo) / width + 1e-9;
    if x < 0.0 {
        None
    } else {
        Some((x.floor() as i64).min(n))
    }
}

/// Statistics, Cpk and histogram of every load point (step name, port, MPE). Polars
/// groups the points and computes the moments; the errors of each group come back as a
/// list and are binned here, once the group's bins are known from its range.
pub fn load_point_stats(points: LazyFrame, max_bins: usize) -> PolarsResult<Vec<LoadPointStats>> {
    let keys = [col("step_name"), col("port"), col("mpe_percent")];
    let df = meter_points(points)
        .group_by(keys)
        .agg([
            col("step_index")
                .min()
                .cast(DataType::Int64)
                .alias("step_index"),
            len().cast(DataType::Int64).alias("n"),
            col("error_percent").mean().alias("mean"),
            col("error_percent").std(1).alias("std_dev"),
            col("error_percent").min().alias("min"),
            col("error_percent").max().alias("max"),
            col("accepted")
                .not()
                .cast(DataType::Int64)
                .sum()
                .alias("rejected"),
            col("error_percent").alias("errors"),
        ])
        .collect()?;
    let step_name = strs(&df, "step_name")?;
    let port = strs(&df, "port")?;
    let mpe = f64s(&df, "mpe_percent")?;
    let step_index = i64s(&df, "step_index")?;
    let n = i64s(&df, "n")?;
    let mean = f64s(&df, "mean")?;
    let std_dev = f64s(&df, "std_dev")?;
    let min = f64s(&df, "min")?;
    let max = f64s(&df, "max")?;
    let rejected = i64s(&df, "rejected")?;
    let errors = df.column("errors")?.list()?;

    let mut out = Vec::with_capacity(df.height());
    for (i, errs) in errors.amortized_iter().enumerate() {
        let mpe_i = mpe[i].unwrap_or(f64::NAN);
        let (mn, mx) = (min[i].unwrap_or(0.0), max[i].unwrap_or(0.0));
        let (lo, w, nb) = histogram_bins(mn, mx, n[i], std_dev[i], mpe_i, max_bins);
        let mut histogram = Histogram {
            width: w,
            bins: (0..nb)
                .map(|k| HistBin {
                    lo: lo + k as f64 * w,
                    hi: lo + (k + 1) as f64 * w,
                    count: 0,
                })
                .collect(),
            underflow: 0,
            overflow: 0,
        };
        if let Some(errs) = errs {
            for e in errs.as_ref().f64()?.iter().flatten() {
                match bin_of(e, lo, w, nb) {
                    None => histogram.underflow += 1,
                    Some(b) if b >= nb => histogram.overflow += 1,
                    Some(b) => histogram.bins[b as usize].count += 1,
                }
            }
        }
        let mean_i = mean[i].unwrap_or(f64::NAN);
        out.push(LoadPointStats {
            step_index: step_index[i],
            step_name: step_name[i].clone(),
            port: port[i].clone(),
            mpe_percent: mpe_i,
            n: n[i],
            mean: mean_i,
            std_dev: std_dev[i],
            min: mn,
            max: mx,
            rejected: rejected[i],
            cpk: cpk(mean_i, std_dev[i], mpe_i),
            histogram,
            histogram_plot: None,
        });
    }
    out.sort_by(|a, b| {
        (a.step_index, &a.step_name, &a.port)
            .cmp(&(b.step_index, &b.step_name, &b.port))
            .then(a.mpe_percent.total_cmp(&b.mpe_percent))
    });
    Ok(out)
}

/// Control charts of the daily mean error per station and load point (ports pooled).
/// Points out of limits are left out: a faulty meter says nothing about the bench, and
/// its error would swamp the within-day spread the limits come from.
pub fn control_charts(points: LazyFrame, from: NaiveDate) -> PolarsResult<Vec<ControlChart>> {
    let df = meter_points(points)
        .filter(col("accepted"))
        .group_by([col("station"), col("step_name"), col("date")])
        .agg([
            col("step_index")
                .min()
                .cast(DataType::Int64)
                .alias("step_index"),
            col("mpe_percent").max().alias("mpe_percent"),
            len().cast(DataType::Int64).alias("n"),
            col("error_percent").mean().alias("mean"),
            col("error_percent").var(1).alias("var"),
        ])
        .collect()?;
    let station = strs(&df, "station")?;
    let step = strs(&df, "step_name")?;
    let date = strs(&df, "date")?;
    let step_index = i64s(&df, "step_index")?;
    let mpe = f64s(&df, "mpe_percent")?;
    let n = i64s(&df, "n")?;
    let mean = f64s(&df, "mean")?;
    let var = f64s(&df, "var")?;

    struct Day {
        date: NaiveDate,
        n: i64,
        mean: f64,
        var: Option<f64>,
    }
    let mut groups: BTreeMap<(String, String), (i64, f64, Vec<Day>)> = BTreeMap::new();
    for i in 0..df.height() {
        let Ok(d) = NaiveDate::parse_from_str(&date[i], "%Y-%m-%d") else {
            return Err(PolarsError::ComputeError(
                format!("date {:?} is not YYYY-MM-DD", date[i]).into(),
            ));
        };
        let g = groups
            .entry((station[i].clone(), step[i].clone()))
            .or_insert((i64::MAX, f64::NAN, Vec::new()));
        g.0 = g.0.min(step_index[i]);
        g.1 = mpe[i].unwrap_or(f64::NAN);
        g.2.push(Day {
            date: d,
            n: n[i],
            mean: mean[i].unwrap_or(f64::NAN),
            var: var[i],
        });
    }

    let mut out = Vec::with_capacity(groups.len());
    for ((station, step_name), (step_index, mpe_percent, mut days)) in groups {
        days.sort_by_key(|d| d.date);
        let total_n: i64 = days.iter().map(|d| d.n).sum();
        let center = days.iter().map(|d| d.n as f64 * d.mean).sum::<f64>() / total_n as f64;
        let (ss, dof) = days
            .iter()
            .filter(|d| d.n >= 2)
            .filter_map(|d| d.var.map(|v| (v * (d.n - 1) as f64, (d.n - 1) as f64)))
            .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
        let sigma = (dof > 0.0).then(|| (ss / dof).sqrt());
        let chart_days: Vec<ChartDay> = days
            .iter()
            .map(|d| {
                let half = sigma.map(|s| 3.0 * s / (d.n as f64).sqrt());
                let (lcl, ucl) = (half.map(|h| center - h), half.map(|h| center + h));
                let out_of_control =
                    matches!((lcl, ucl), (Some(l), Some(u)) if d.mean < l || d.mean > u);
                ChartDay {
                    date: d.date,
                    n: d.n,
                    mean: d.mean,
                    lcl,
                    ucl,
                    out_of_control,
                }
            })
            .collect();
        let xy: Vec<(f64, f64)> = days
            .iter()
            .map(|d| ((d.date - from).num_days() as f64, d.mean))
            .collect();
        let slope = least_squares_slope(&xy);
        let span = match (days.first(), days.last()) {
            (Some(a), Some(b)) => (b.date - a.date).num_days() as f64,
            _ => 0.0,
        };
        let drift = slope.map(|s| s * span);
        let mean_n = total_n as f64 / days.len().max(1) as f64;
        let drift_suspected = match (drift, sigma) {
            (Some(d), Some(s)) => days.len() >= 3 && d.abs() > 3.0 * s / mean_n.sqrt(),
            _ => false,
        };
        out.push(ControlChart {
            out_of_control_days: chart_days.iter().filter(|d| d.out_of_control).count(),
            station,
            step_index,
            step_name,
            mpe_percent,
            center,
            sigma_within: sigma,
            slope_percent_per_day: slope,
            drift_over_range_percent: drift,
            drift_suspected,
            days: chart_days,
            plot: None,
        });
    }
    out.sort_by(|a, b| {
        (&a.station, a.step_index, &a.step_name).cmp(&(&b.station, b.step_index, &b.step_name))
    });
    Ok(out)
}

/// Slope of the least-squares line through the points; `None` with fewer than two
/// distinct x.
pub fn least_squares_slope(xy: &[(f64, f64)]) -> Option<f64> {
    let n = xy.len() as f64;
    if xy.len() < 2 {
        return None;
    }
    let mx = xy.iter().map(|p| p.0).sum::<f64>() / n;
    let my = xy.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = xy.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = xy.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// The latest calibration of every instrument used in the range (per station, role and
/// serial number), kept when it is due within `within_days` of `as_of`.
fn calibrations_due(
    conn: &rusqlite::Connection,
    index_path: &Path,
    from: NaiveDate,
    to: NaiveDate,
    as_of: NaiveDate,
    within_days: i64,
) -> Result<Vec<CalibrationDue>, StoreError> {
    let mut stmt = conn
        .prepare(
            "SELECT r.station_id, i.role, i.model, i.serial_number, i.calibration_id, \
             i.calibration_due, MAX(r.started_utc) AS last_used \
             FROM run_instruments i JOIN runs r ON r.run_id = i.run_id \
             WHERE r.run_date >= ?1 AND r.run_date <= ?2 \
             GROUP BY r.station_id, i.role, i.model, i.serial_number, i.calibration_id, \
             i.calibration_due \
             ORDER BY r.station_id, i.role, i.serial_number, last_used",
        )
        .map_err(StoreError::index(index_path))?;
    let rows = stmt
        .query_map(
            [
                from.format("%Y-%m-%d").to_string(),
                to.format("%Y-%m-%d").to_string(),
            ],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                ))
            },
        )
        .map_err(StoreError::index(index_path))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(StoreError::index(index_path))?;
    // Ordered by last use within (station, role, serial): the last one wins.
    let mut latest: BTreeMap<(String, String, String), CalibrationDue> = BTreeMap::new();
    for (station, role, model, serial, cal_id, due, last_used) in rows {
        let Ok(due) = NaiveDate::parse_from_str(&due, "%Y-%m-%d") else {
            continue;
        };
        let days_left = (due - as_of).num_days();
        latest.insert(
            (station.clone(), role.clone(), serial.clone()),
            CalibrationDue {
                station,
                role,
                model,
                serial_number: serial,
                calibration_id: cal_id,
                due,
                days_left,
                overdue: days_left < 0,
                last_used_utc: last_used,
            },
        );
    }
    let mut out: Vec<CalibrationDue> = latest
        .into_values()
        .filter(|c| c.days_left <= within_days)
        .collect();
    out.sort_by(|a, b| (a.due, &a.station, &a.role).cmp(&(b.due, &b.station, &b.role)));
    Ok(out)
}

fn strs(df: &DataFrame, name: &str) -> PolarsResult<Vec<String>> {
    Ok(df
        .column(name)?
        .cast(&DataType::String)?
        .str()?
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect())
}

fn i64s(df: &DataFrame, name: &str) -> PolarsResult<Vec<i64>> {
    let c = df.column(name)?.cast(&DataType::Int64)?;
    Ok(c.i64()?.iter().map(|v| v.unwrap_or(0)).collect())
}

fn f64s(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<f64>>> {
    let c = df.column(name)?.cast(&DataType::Float64)?;
    Ok(c.f64()?
        .iter()
        .map(|v| v.filter(|x| x.is_finite()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(rows: &[(&str, &str, &str, &str, &str)]) -> LazyFrame {
        // (run_id, station, serial, started_utc, outcome); date from started_utc
        DataFrame::new(
            rows.len(),
            vec![
                Column::new(
                    "run_id".into(),
                    rows.iter().map(|r| r.0).collect::<Vec<_>>(),
                ),
                Column::new(
                    "station".into(),
                    rows.iter().map(|r| r.1).collect::<Vec<_>>(),
                ),
                Column::new(
                    "serial".into(),
                    rows.iter().map(|r| r.2).collect::<Vec<_>>(),
                ),
                Column::new(
                    "date".into(),
                    rows.iter().map(|r| &r.3[..10]).collect::<Vec<_>>(),
                ),
                Column::new(
                    "started_utc".into(),
                    rows.iter().map(|r| r.3).collect::<Vec<_>>(),
                ),
                Column::new(
                    "outcome".into(),
                    rows.iter().map(|r| r.4).collect::<Vec<_>>(),
                ),
            ],
        )
        .unwrap()
        .lazy()
    }

    #[test]
    fn first_pass_yield_by_hand() {
        // A fails first on st1 day 1 and passes on day 2; B passes at once on st1 day 1;
        // C has a bench ERROR first on st2 and passes later the same day.
        let lf = runs(&[
            ("r1", "st1", "A", "2026-03-01T08:00:00.000000Z", "FAIL"),
            ("r2", "st1", "B", "2026-03-01T09:00:00.000000Z", "PASS"),
            ("r3", "st1", "A", "2026-03-02T08:00:00.000000Z", "PASS"),
            ("r5", "st2", "C", "2026-03-01T11:00:00.000000Z", "PASS"),
            ("r4", "st2", "C", "2026-03-01T10:00:00.000000Z", "ERROR"),
        ]);
        let daily = yield_by_station_day(lf).unwrap();
        let d = |s: &str, day: u32| {
            daily
                .iter()
                .find(|x| {
                    x.station == s && x.date == NaiveDate::from_ymd_opt(2026, 3, day).unwrap()
                })
                .unwrap()
                .counts
                .clone()
        };
        let a = d("st1", 1);
        assert_eq!(
            (a.runs, a.pass, a.fail, a.first_runs, a.first_pass),
            (2, 1, 1, 2, 1)
        );
        assert_eq!(a.first_pass_yield, Some(0.5));
        let b = d("st1", 2);
        assert_eq!((b.runs, b.first_runs, b.first_pass_yield), (1, 0, None));
        let c = d("st2", 1);
        assert_eq!((c.runs, c.error, c.first_runs, c.first_pass), (2, 1, 1, 0));
        assert_eq!(c.first_pass_yield, Some(0.0));
        let (total, stations) = yield_totals(&daily);
        assert_eq!((total.runs, total.first_runs, total.first_pass), (5, 3, 1));
        assert!((total.first_pass_yield.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(stations.len(), 2);
        assert_eq!(stations[0].counts.first_pass_yield, Some(0.5));
    }

    #[test]
    fn cpk_by_hand() {
        // errors 0.1 and 0.3: mean 0.2, s = 0.141421; MPE 1: min(0.8, 1.2) / (3 s)
        let c = cpk(0.2, Some(0.02f64.sqrt()), 1.0).unwrap();
        assert!((c - 0.8 / (3.0 * 0.02f64.sqrt())).abs() < 1e-12);
        assert!((c - 1.885_618).abs() < 1e-6);
        // off-centre to the negative side: μ − LSL is the smaller
        let c = cpk(-0.4, Some(0.1), 1.0).unwrap();
        assert!((c - 2.0).abs() < 1e-12);
        assert_eq!(cpk(0.0, Some(0.0), 1.0), None);
        assert_eq!(cpk(0.0, None, 1.0), None);
    }

    #[test]
    fn bins_by_hand() {
        assert_eq!(nice_width(0.0725), 0.1);
        assert_eq!(nice_width(0.03), 0.05);
        assert_eq!(nice_width(0.021), 0.025);
        let (lo, w, n) = histogram_bins(0.02, 0.31, 5, None, 1.0, 4);
        assert!(lo.abs() < 1e-12);
        assert_eq!((w, n), (0.1, 4));
        // clipped at ±3 MPE
        let (lo, w, n) = histogram_bins(-0.5, 7.0, 2, None, 1.0, 10);
        assert_eq!((lo, w, n), (-0.5, 0.5, 8));
        // Scott: 3.49 · 0.1 · 1000^(−1/3) = 0.0349 → 0.05, wider than 0.6 / 30 → 0.02
        let (lo, w, n) = histogram_bins(-0.3, 0.3, 1000, Some(0.1), 1.0, 30);
        assert!((lo + 0.3).abs() < 1e-12);
        assert_eq!((w, n), (0.05, 13));
    }

    fn points(rows: &[(&str, &str, &str, f64, &str)]) -> LazyFrame {
        // (station, date, port, error, outcome) of step "Iref PF1", MPE 1
        let p: Vec<crate::PointRow> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| crate::PointRow {
                run_id: format!("r{i}"),
                station: r.0.into(),
                date: r.1.into(),
                started_utc: format!("{}T10:00:00.000000Z", r.1),
                serial: format!("S{i}"),
                dut_type: "CPIM1000".into(),
                procedure_id: "p".into(),
                procedure_version: "1".into(),
                step_index: 6,
                step_name: "Iref PF1".into(),
                current_name: "Iref".into(),
                current_a: 5.0,
                power_factor: "1".into(),
                phases: "L1 L2 L3".into(),
                port: r.2.into(),
                repeats: 3,
                error_percent: r.3,
                u_percent: 0.02,
                mpe_percent: 1.0,
                conformity: if r.3.abs() <= 1.0 { "pass" } else { "fail" }.into(),
                accepted: r.3.abs() <= 1.0,
                outcome: r.4.into(),
            })
            .collect();
        points_frame(&p).unwrap().lazy()
    }

    #[test]
    fn histogram_and_cpk_of_a_load_point() {
        let lf = points(&[
            ("st1", "2026-03-01", "left", 0.02, "PASS"),
            ("st1", "2026-03-01", "left", 0.07, "PASS"),
            ("st1", "2026-03-01", "left", 0.11, "PASS"),
            ("st1", "2026-03-02", "left", 0.12, "PASS"),
            ("st1", "2026-03-02", "left", 0.31, "PASS"),
            // an ERROR run's numbers are left out
            ("st1", "2026-03-02", "left", 5.0, "ERROR"),
            ("st1", "2026-03-02", "right", 1.2, "FAIL"),
        ]);
        let lps = load_point_stats(lf, 4).unwrap();
        assert_eq!(lps.len(), 2);
        let l = &lps[0];
        assert_eq!((l.port.as_str(), l.n, l.rejected), ("left", 5, 0));
        // Scott's width 3.49 · s · 5^(−1/3) = 0.224 → 0.25 beats 0.29 / 4 → 0.1:
        // bins [0, 0.25) and [0.25, 0.5)
        assert_eq!(l.histogram.width, 0.25);
        let counts: Vec<u64> = l.histogram.bins.iter().map(|b| b.count).collect();
        assert_eq!(counts, vec![4, 1]);
        assert_eq!((l.histogram.underflow, l.histogram.overflow), (0, 0));
        assert!((l.histogram.bins[1].lo - 0.25).abs() < 1e-12);
        // mean 0.126, s by hand
        let xs = [0.02, 0.07, 0.11, 0.12, 0.31];
        let m = xs.iter().sum::<f64>() / 5.0;
        let s = (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 4.0).sqrt();
        assert!((l.mean - 0.126).abs() < 1e-12);
        assert!((l.std_dev.unwrap() - s).abs() < 1e-12);
        assert!((l.cpk.unwrap() - (1.0 - 0.126) / (3.0 * s)).abs() < 1e-9);
        let r = &lps[1];
        assert_eq!(
            (r.port.as_str(), r.n, r.rejected, r.cpk),
            ("right", 1, 1, None)
        );
        assert_eq!(r.histogram.bins.iter().map(|b| b.count).sum::<u64>(), 1);
    }

    #[test]
    fn control_chart_by_hand() {
        // day 1: 0.0, 0.2 (mean 0.1, var 0.02); day 2: 0.2, 0.4 (mean 0.3, var 0.02);
        // day 3: 0.4, 0.6 (mean 0.5, var 0.02)
        let lf = points(&[
            ("st1", "2026-03-01", "left", 0.0, "PASS"),
            ("st1", "2026-03-01", "right", 0.2, "PASS"),
            ("st1", "2026-03-02", "left", 0.2, "PASS"),
            ("st1", "2026-03-02", "right", 0.4, "PASS"),
            ("st1", "2026-03-03", "left", 0.4, "PASS"),
            ("st1", "2026-03-03", "right", 0.6, "PASS"),
        ]);
        let from = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let charts = control_charts(lf, from).unwrap();
        assert_eq!(charts.len(), 1);
        let c = &charts[0];
        assert!((c.center - 0.3).abs() < 1e-12);
        let s = 0.02f64.sqrt();
        assert!((c.sigma_within.unwrap() - s).abs() < 1e-12);
        assert!((c.slope_percent_per_day.unwrap() - 0.2).abs() < 1e-12);
        assert!((c.drift_over_range_percent.unwrap() - 0.4).abs() < 1e-12);
        let h = 3.0 * s / 2f64.sqrt();
        assert!((c.days[0].ucl.unwrap() - (0.3 + h)).abs() < 1e-12);
        // 3σ/√2 = 0.3: day 1 (0.1) and day 3 (0.5) are inside; the drift 0.4 > 0.3 is flagged
        assert_eq!(c.out_of_control_days, 0);
        assert!(c.drift_suspected);
    }
}
