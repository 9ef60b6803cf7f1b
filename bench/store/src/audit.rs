//! The audit over a date range: yield, error distributions, Cpk, control charts of the
//! daily means (reference drift), calibrations coming due and every FAIL/ERROR run.
//!
//! Runs come from the index (an ERROR run may have no accuracy point at all), counted as
//! they are read ([`RunTally`]); the per-point figures come from the points in the range
//! in groups ([`PointGroups`], see [`crate::figures`]). Only PASS, FAIL and NOT
//! DECIDABLE runs feed the error statistics: an ERROR or ABORTED run is a bench fault or
//! a stop, and its numbers say nothing about the meters.

use crate::StoreError;
use crate::figures::{Names, PointGroups};
use crate::frames::{PointRow, outcome_str};
use crate::index::RunRow;
use crate::layout::{POINTS_DIR, absolute, files_in_range, relative_path};
use crate::store::{Store, StoreLocation};
use chrono::NaiveDate;
use meterbench_procedure::{AuditSettings, CpkRule};
use meterbench_runner::record::Outcome;
use polars_core::prelude::*;
use polars_io::prelude::*;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const AUDIT_SCHEMA: &str = "meterbench.audit/1";
/// Every FAIL, NOT DECIDABLE and ERROR run of the audit with its bundle folder, beside
/// audit.html: the appendix the PDF's summary points to.
pub const PROBLEM_RUNS_FILE: &str = "problem-runs.csv";

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
    /// First-pass yield below which a station or day is marked (a fraction, e.g. 0.95);
    /// `None`: nothing is marked.
    pub yield_target: Option<f64>,
    /// When a Cpk is stated and with which interval (a home's `audit/settings.yaml`).
    pub cpk: CpkRule,
    /// Cpk below which a load point is marked; `None`: nothing is marked.
    pub cpk_target: Option<f64>,
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
            yield_target: None,
            cpk: AuditSettings::shipped().cpk,
            cpk_target: None,
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
    /// First attempts in this group: a serial's first run under a procedure, in the
    /// range.
    pub first_runs: i64,
    /// ... of which that first run passed.
    pub first_pass: i64,
    /// first_pass / first_runs; `None` without first runs.
    pub first_pass_yield: Option<f64>,
    /// The first-pass yield is below the audit's target (`AuditOptions::yield_target`).
    #[serde(default)]
    pub below_yield_target: bool,
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
    /// min(USL − μ, μ − LSL) / 3σ with USL = +MPE, LSL = −MPE; `None` without spread,
    /// or when withheld (fewer results than the rule's minimum).
    pub cpk: Option<f64>,
    /// The interval of `cpk` at the rule's confidence (Bissell's approximation).
    #[serde(default)]
    pub cpk_low: Option<f64>,
    #[serde(default)]
    pub cpk_high: Option<f64>,
    /// Fewer results than the rule's minimum: no Cpk is stated.
    #[serde(default)]
    pub cpk_withheld: bool,
    /// Below the audit's Cpk target.
    #[serde(default)]
    pub below_cpk_target: bool,
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
    /// The fitted trend is beyond chance: its slope beyond Student's t at 0.27 %
    /// two-sided times its standard error (see `figures::trend`).
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
    /// The first-pass yield target the groups were marked against, if any.
    #[serde(default)]
    pub yield_target: Option<f64>,
    /// When a Cpk was stated, with its source.
    #[serde(default)]
    pub cpk_rule: Option<CpkRule>,
    /// The Cpk target the load points were marked against, if any.
    #[serde(default)]
    pub cpk_target: Option<f64>,
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

/// Compute the audit of `store` over `opts.from..=opts.to` and write `audit.html`,
/// `audit.json` and `plots/*.svg` into `out_dir` ([`Store::audit`]).
pub(crate) fn audit_with(
    store: &Store,
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
    // The runs for the yield and the problem list, the points for the load points and
    // control charts, the instruments for the calibrations coming due.
    let AuditReads {
        tally: (mut daily, mut problem_runs),
        figures,
        uses,
    } = store.audit_reads(opts)?;
    for p in &mut problem_runs {
        p.bundle_link = link(&relative_path(&out_abs, Path::new(&p.bundle)));
    }
    let (mut totals, mut stations) = yield_totals(&daily);
    if let Some(target) = opts.yield_target {
        let counts = daily
            .iter_mut()
            .map(|d| &mut d.counts)
            .chain(stations.iter_mut().map(|s| &mut s.counts))
            .chain(std::iter::once(&mut totals));
        for c in counts {
            c.below_yield_target = c.first_pass_yield.is_some_and(|y| y < target);
        }
    }
    let (mut load_points, mut control_charts) = figures;
    if let Some(target) = opts.cpk_target {
        for lp in &mut load_points {
            lp.below_cpk_target = lp.cpk.is_some_and(|c| c < target);
        }
    }
    let calibrations_due = calibrations_due(uses, as_of, opts.calibration_due_within_days);

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
        yield_target: opts.yield_target,
        cpk_rule: Some(opts.cpk.clone()),
        cpk_target: opts.cpk_target,
    };
    let ctx = AuditContext {
        title: format!("Bench audit {} to {}", opts.from, opts.to),
        generator: format!("meterbench-store {}", env!("CARGO_PKG_VERSION")),
        store: match store.location() {
            StoreLocation::Embedded(dir) => absolute(dir).to_string_lossy().into_owned(),
            postgres => postgres.to_string(),
        },
        summary,
    };
    // The HTML page is rendered while the JSON and the CSV are written beside it.
    std::thread::scope(|s| {
        let data = s.spawn(|| {
            write_problem_runs_csv(&ctx.summary.problem_runs, &out_dir.join(PROBLEM_RUNS_FILE))?;
            let json_path = out_dir.join("audit.json");
            let mut json =
                serde_json::to_vec_pretty(&ctx.summary).map_err(|source| StoreError::Json {
                    path: json_path.clone(),
                    cause: source,
                })?;
            json.push(b'\n');
            std::fs::write(&json_path, json).map_err(StoreError::io(&json_path))
        });
        let html = crate::render::render_audit_html(&ctx, opts.templates_dir.as_deref());
        joined(data)?;
        let html_path = out_dir.join("audit.html");
        std::fs::write(&html_path, html?).map_err(StoreError::io(&html_path))
    })?;
    Ok(ctx.summary)
}

/// A scoped thread's result; its panic goes on in the caller.
pub(crate) fn joined<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// The problem runs as CSV (RFC 4180, a header row), for a spreadsheet or a script.
fn write_problem_runs_csv(runs: &[ProblemRun], path: &Path) -> Result<(), StoreError> {
    let csv_err = |e: csv::Error| StoreError::Io {
        path: path.to_path_buf(),
        cause: std::io::Error::other(e),
    };
    let mut w = csv::Writer::from_path(path).map_err(csv_err)?;
    w.write_record([
        "run_id",
        "started_utc",
        "station",
        "serial",
        "outcome",
        "reason",
        "bundle",
    ])
    .map_err(csv_err)?;
    for r in runs {
        w.write_record([
            &r.run_id,
            &r.started_utc,
            &r.station,
            &r.serial,
            &r.outcome,
            r.reason.as_deref().unwrap_or(""),
            &r.bundle,
        ])
        .map_err(csv_err)?;
    }
    w.flush().map_err(StoreError::io(path))
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

/// The points file columns [`read_point_groups`] reads.
const AUDIT_COLUMNS: [&str; 9] = [
    "station",
    "date",
    "step_index",
    "step_name",
    "port",
    "mpe_percent",
    "error_percent",
    "accepted",
    "outcome",
];

/// The outcomes of runs whose points describe the meter (see the module docs).
pub(crate) const METER_OUTCOMES: [&str; 3] = ["PASS", "FAIL", "NOT_DECIDABLE"];

/// Whether a run's points describe the meter (see the module docs).
pub(crate) fn describes_the_meter(outcome: &str) -> bool {
    METER_OUTCOMES.contains(&outcome)
}

impl PointGroups {
    /// The points of `rows` that describe the meters, their errors kept.
    pub fn from_rows(rows: &[PointRow]) -> Result<Self, StoreError> {
        let mut groups = PointGroups::default();
        for r in rows.iter().filter(|r| describes_the_meter(&r.outcome)) {
            let date = parse_date(&r.date).map_err(|message| StoreError::Record {
                run_id: r.run_id.clone(),
                message,
            })?;
            if !(r.mpe_percent.is_finite() && r.error_percent.is_finite()) {
                return Err(StoreError::Record {
                    run_id: r.run_id.clone(),
                    message: format!(
                        "step {} port {}: an error of {} % against an MPE of {} % is not a \
                         measured point",
                        r.step_index, r.port, r.error_percent, r.mpe_percent
                    ),
                });
            }
            let key = groups.key(
                &r.station,
                date,
                &r.step_name,
                &r.port,
                r.mpe_percent,
                r.accepted,
            );
            groups.add_point(key, r.step_index, r.error_percent);
        }
        groups.settle();
        Ok(groups)
    }
}

/// The points of the embedded store's points files dated `from..=to` (partitions pruned
/// by their folder names, then rows by their date column), each file's in groups. One
/// worker per core reads a file at a time: only the audit's columns of the files being
/// read are in memory besides the groups.
pub(crate) fn read_point_files(
    store: &Path,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(PathBuf, PointGroups)>, StoreError> {
    let files = files_in_range(store, POINTS_DIR, from, to)?;
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let mut read: Vec<(usize, Result<PointGroups, StoreError>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = files.get(i) else {
                            return done;
                        };
                        let groups = read_points_file(path, from, to);
                        let failed = groups.is_err();
                        done.push((i, groups));
                        if failed {
                            // The others finish their file; nothing more is started.
                            next.store(files.len(), Ordering::Relaxed);
                            return done;
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().flat_map(joined).collect()
    });
    read.sort_by_key(|(i, _)| *i);
    read.into_iter()
        .map(|(i, groups)| Ok((files[i].clone(), groups?)))
        .collect()
}

/// The points of `files` in one set of groups, settled: of the runs `indexed` names only
/// (see [`RunTally::points_files`]; a day's compacted file holds indexed runs only,
/// compaction merges only those). A filing writes its run's points file before the
/// index's transaction commits, so a filing under way, or one a crash cut short, leaves a
/// file of a run the index does not count; the tally read beside the files says which.
pub(crate) fn indexed_point_groups(
    files: Vec<(PathBuf, PointGroups)>,
    indexed: &rustc_hash::FxHashSet<String>,
) -> PointGroups {
    let mut groups = PointGroups::default();
    for (path, file_groups) in files {
        let counted = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n == crate::layout::COMPACTED_FILE || indexed.contains(n));
        if counted {
            groups.append(file_groups);
        }
    }
    groups.settle();
    groups
}

fn read_points_file(
    path: &Path,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<PointGroups, StoreError> {
    let what = || format!("reading {}", path.display());
    let file = std::fs::File::open(path).map_err(StoreError::io(path))?;
    let df = ParquetReader::new(file)
        .with_columns(Some(AUDIT_COLUMNS.iter().map(|c| c.to_string()).collect()))
        .finish()
        .map_err(StoreError::polars(what()))?;
    let strs = |name: &str| -> PolarsResult<Vec<Option<&str>>> {
        Ok(df.column(name)?.str()?.iter().collect())
    };
    let f64s = |name: &str| -> PolarsResult<Vec<Option<f64>>> {
        Ok(df.column(name)?.f64()?.iter().collect())
    };
    let columns = (|| {
        Ok::<_, PolarsError>((
            strs("station")?,
            strs("date")?,
            df.column("step_index")?.u32()?.iter().collect::<Vec<_>>(),
            strs("step_name")?,
            strs("port")?,
            f64s("mpe_percent")?,
            f64s("error_percent")?,
            df.column("accepted")?.bool()?.iter().collect::<Vec<_>>(),
            strs("outcome")?,
        ))
    })()
    .map_err(StoreError::polars(what()))?;
    let (station, date, step_index, step_name, port, mpe, error, accepted, outcome) = columns;
    let mut groups = PointGroups::default();
    // Dates repeat row after row: parse each distinct text once.
    let mut last_date: Option<(&str, NaiveDate)> = None;
    for i in 0..df.height() {
        if !outcome[i].is_some_and(describes_the_meter) {
            continue;
        }
        let text = date[i].unwrap_or_default();
        let d = match last_date {
            Some((t, d)) if t == text => d,
            _ => {
                let d = parse_date(text).map_err(|message| {
                    StoreError::Argument(format!("{}: row {i}: {message}", path.display()))
                })?;
                last_date = Some((text, d));
                d
            }
        };
        if d < from || d > to {
            continue;
        }
        let (mpe, error) = (mpe[i].unwrap_or(f64::NAN), error[i].unwrap_or(f64::NAN));
        if !(mpe.is_finite() && error.is_finite()) {
            return Err(StoreError::Argument(format!(
                "{}: row {i}: an error of {error} % against an MPE of {mpe} % is not a \
                 measured point",
                path.display()
            )));
        }
        let key = groups.key(
            station[i].unwrap_or_default(),
            d,
            step_name[i].unwrap_or_default(),
            port[i].unwrap_or_default(),
            mpe,
            accepted[i].unwrap_or(false),
        );
        groups.add_point(key, step_index[i].unwrap_or_default(), error);
    }
    Ok(groups)
}

fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("date {text:?} is not YYYY-MM-DD"))
}

/// One run as the audit's yield and problem list read it (both backends stream these).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AuditRun<'a> {
    pub run_id: &'a str,
    pub station: &'a str,
    pub date: NaiveDate,
    pub serial: &'a str,
    pub procedure_id: &'a str,
    /// Canonical UTC text (fixed width: it sorts like time).
    pub started_utc: &'a str,
    pub outcome: Outcome,
    /// Read for problem runs only.
    pub reason: Option<&'a str>,
    pub bundle: Option<&'a str>,
}

/// Whether a run goes to the problem list (FAIL, NOT DECIDABLE, ERROR).
pub(crate) fn is_problem(outcome: Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Fail | Outcome::NotDecidable | Outcome::Error
    )
}

struct FirstAttempt {
    started_utc: String,
    run_id: String,
    station: u32,
    date: NaiveDate,
    passed: bool,
}

/// What the audit reads of a store (see `Store::audit_reads`).
pub(crate) struct AuditReads {
    /// The counts per station and day, and the problem runs ([`RunTally::finish`]).
    pub tally: (Vec<DailyYield>, Vec<ProblemRun>),
    pub figures: (Vec<LoadPointStats>, Vec<ControlChart>),
    pub uses: Vec<InstrumentUse>,
}

impl AuditReads {
    /// What a backend's reads come to: the tally counted up (and its first attempts
    /// freed) on a thread of its own while the load points and control charts are taken
    /// from `groups`; after the reads, one core would otherwise idle.
    pub fn of(
        tally: RunTally,
        groups: &PointGroups,
        uses: Vec<InstrumentUse>,
        opts: &AuditOptions,
    ) -> AuditReads {
        std::thread::scope(|s| {
            let counted = s.spawn(move || tally.finish());
            let figures = (
                crate::figures::load_point_stats(groups, opts.histogram_max_bins, &opts.cpk),
                crate::figures::control_charts(groups, opts.from),
            );
            AuditReads {
                tally: joined(counted),
                figures,
                uses,
            }
        })
    }
}

/// Runs counted one at a time, as a backend reads them: the counts per station and day,
/// each serial's first attempt per procedure, and the problem runs. Only a first
/// attempt's key and the problem runs are kept, not every run's row (100 000 runs'
/// rows were about 95 MB).
#[derive(Default)]
pub(crate) struct RunTally {
    stations: Names,
    days: FxHashMap<(u32, NaiveDate), Counts>,
    /// By serial and procedure id, joined by a NUL (neither holds one: the store's
    /// fields are checked for control characters when filed).
    first: FxHashMap<String, FirstAttempt>,
    key: String,
    problems: Vec<ProblemRun>,
    /// The names of the runs' points files (`<run id>.parquet`), when asked for: the
    /// embedded store counts the points of these runs only.
    pub points_files: Option<rustc_hash::FxHashSet<String>>,
}

impl RunTally {
    /// A tally that also keeps the names of its runs' points files.
    pub fn naming_points_files() -> RunTally {
        RunTally {
            points_files: Some(Default::default()),
            ..Default::default()
        }
    }

    pub fn add(&mut self, r: &AuditRun<'_>) {
        if let Some(files) = &mut self.points_files {
            files.insert(format!(
                "{}.parquet",
                crate::layout::path_component(r.run_id)
            ));
        }
        let station = self.stations.id(r.station);
        let c = self.days.entry((station, r.date)).or_default();
        c.runs += 1;
        match r.outcome {
            Outcome::Pass => c.pass += 1,
            Outcome::Fail => c.fail += 1,
            Outcome::NotDecidable => c.not_decidable += 1,
            Outcome::Error => c.error += 1,
            Outcome::Aborted => c.aborted += 1,
            Outcome::InProgress => {}
        }
        let attempt = || FirstAttempt {
            started_utc: r.started_utc.to_string(),
            run_id: r.run_id.to_string(),
            station,
            date: r.date,
            passed: r.outcome == Outcome::Pass,
        };
        self.key.clear();
        self.key.push_str(r.serial);
        self.key.push('\0');
        self.key.push_str(r.procedure_id);
        match self.first.get_mut(self.key.as_str()) {
            Some(f) => {
                if (r.started_utc, r.run_id) < (f.started_utc.as_str(), f.run_id.as_str()) {
                    *f = attempt();
                }
            }
            None => {
                self.first.insert(self.key.clone(), attempt());
            }
        }
        if is_problem(r.outcome) {
            self.problems.push(ProblemRun {
                run_id: r.run_id.to_string(),
                station: r.station.to_string(),
                serial: r.serial.to_string(),
                started_utc: r.started_utc.to_string(),
                outcome: outcome_str(r.outcome).to_string(),
                reason: r.reason.map(str::to_string),
                bundle: r.bundle.unwrap_or_default().to_string(),
                bundle_link: String::new(),
            });
        }
    }

    /// `serial` was first tried under `procedure_id` before the audited range: its runs in
    /// the range are retests, not first attempts, and count for no first-pass yield.
    pub fn tried_before(&mut self, serial: &str, procedure_id: &str) {
        self.key.clear();
        self.key.push_str(serial);
        self.key.push('\0');
        self.key.push_str(procedure_id);
        self.first.remove(self.key.as_str());
    }

    /// The counts per station and day (by station, then date) and the problem runs
    /// (oldest first: by start time, then run id).
    pub fn finish(mut self) -> (Vec<DailyYield>, Vec<ProblemRun>) {
        for f in self.first.values() {
            let c = self.days.entry((f.station, f.date)).or_default();
            c.first_runs += 1;
            c.first_pass += i64::from(f.passed);
        }
        let mut daily: Vec<DailyYield> = self
            .days
            .into_iter()
            .map(|((station, date), mut counts)| {
                counts.first_pass_yield = ratio(counts.first_pass, counts.first_runs);
                DailyYield {
                    station: self.stations.text(station).to_string(),
                    date,
                    counts,
                }
            })
            .collect();
        daily.sort_by(|a, b| (&a.station, a.date).cmp(&(&b.station, b.date)));
        self.problems
            .sort_by(|a, b| (&a.started_utc, &a.run_id).cmp(&(&b.started_utc, &b.run_id)));
        (daily, self.problems)
    }
}

/// Runs per station and day, and first-pass yield: a serial's first attempt at a
/// procedure (its first run by start time, then run id, under that procedure id) counts
/// for the station and day it ran on, and passes when its outcome is PASS. A device that
/// passes its end-of-line test and later its verification has two first attempts, both
/// passed; its retest under the same procedure is no first attempt.
pub fn yield_by_station_day(runs: &[RunRow]) -> Vec<DailyYield> {
    let mut tally = RunTally::default();
    for r in runs {
        tally.add(&AuditRun {
            run_id: &r.run_id,
            station: &r.station,
            date: r.date,
            serial: &r.serial,
            procedure_id: &r.procedure_id,
            started_utc: &r.started_utc,
            outcome: r.outcome,
            reason: None,
            bundle: None,
        });
    }
    tally.finish().0
}

/// Statistics, Cpk and histogram of every load point (step name, port, MPE) of
/// `points`.
pub fn load_point_stats(
    points: &PointGroups,
    max_bins: usize,
    rule: &CpkRule,
) -> Vec<LoadPointStats> {
    crate::figures::load_point_stats(points, max_bins, rule)
}

/// Control charts of the daily mean error per station and load point (ports pooled);
/// see [`crate::figures::control_charts`].
pub fn control_charts(points: &PointGroups, from: NaiveDate) -> Vec<ControlChart> {
    crate::figures::control_charts(points, from)
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

/// The two-sided interval of an estimated Cpk from `n` results at `confidence`:
/// Bissell's normal approximation, Ĉpk ± z·sqrt(1/(9n) + Ĉpk²/(2(n − 1))) (Applied
/// Statistics 39(3), 1990), z the standard normal quantile of (1 + confidence)/2.
pub fn cpk_interval(cpk: f64, n: i64, confidence: f64) -> (f64, f64) {
    let n = n.max(2) as f64;
    let z = statrs::distribution::ContinuousCDF::inverse_cdf(
        &statrs::distribution::Normal::standard(),
        0.5 + confidence / 2.0,
    );
    let half = z * (1.0 / (9.0 * n) + cpk * cpk / (2.0 * (n - 1.0))).sqrt();
    (cpk - half, cpk + half)
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

/// The widest of 1, 2, 2.5 or 5 × 10^k that is at most `limit` (> 0).
fn nice_width_at_most(limit: f64) -> f64 {
    let base = 10f64.powf(limit.log10().floor());
    [10.0, 5.0, 2.5, 2.0, 1.0]
        .into_iter()
        .map(|m| m * base)
        .find(|w| *w <= limit * (1.0 + 1e-9))
        .unwrap_or(base)
}

/// Bins for the `n` values in `min..=max`, standard deviation `std_dev`, of a point with
/// limit `mpe`: (first edge, width, number of bins). The width is the widest of Scott's
/// rule 3.49 s n^(−1/3), the range over `max_bins` and MPE/100, rounded up to 1, 2, 2.5
/// or 5 × 10^k, but never wider than MPE/10 rounded down so: a histogram shows where
/// the errors lie within the limit, which one bar as wide as the limit hides (then there
/// may be more bins than `max_bins`). The shown range is clipped to ±3 MPE; when every
/// error lies beyond it on one side, the range is the errors' own, in at most about
/// `max_bins` bins (at MPE/10 a range of 10¹¹ % was 10¹³ bins).
pub fn histogram_bins(
    min: f64,
    max: f64,
    n: i64,
    std_dev: Option<f64>,
    mpe: f64,
    max_bins: usize,
) -> (f64, f64, i64) {
    let (mut lo, mut hi) = (min.max(-3.0 * mpe), max.min(3.0 * mpe));
    let beyond = lo > hi;
    if beyond {
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
    if mpe.is_finite() && mpe.abs() > 0.0 && !beyond {
        width = width.min(nice_width_at_most(mpe.abs() / 10.0));
    }
    if beyond {
        // Far out a width of MPE/100 is below the errors' own resolution (an edge
        // snapped to it is off by more than a bin): no finer than 10⁻¹² of them, the
        // first edge at the lowest error, at most about `max_bins` bins.
        width = width.max(nice_width(lo.abs().max(hi.abs()) * 1e-12));
        let bins = ((hi - lo) / width + 1e-9).floor() as i64;
        return (
            lo,
            width,
            bins.saturating_add(1).clamp(1, max_bins as i64 + 1),
        );
    }
    let edge = (lo / width + 1e-9).floor() * width;
    let bins = ((hi - edge) / width + 1e-9).floor() as i64;
    (edge, width, bins.saturating_add(1).max(1))
}

/// The latest calibration of every instrument used in the range (per station, role and
/// serial number), kept when it is due within `within_days` of `as_of`.
/// An instrument calibration used by the runs of the audited range, with its last use
/// (both backends answer this with the same query).
#[derive(Debug, Clone)]
pub(crate) struct InstrumentUse {
    pub station: String,
    pub role: String,
    pub model: String,
    pub serial_number: String,
    pub calibration_id: String,
    pub calibration_due: NaiveDate,
    /// Canonical UTC text of the last run that used it.
    pub last_used: String,
}

/// The latest calibration of each (station, role, instrument) used in the range that is
/// due within `within_days` of `as_of` (or overdue), soonest first. `uses` come ordered
/// by last use within (station, role, serial).
fn calibrations_due(
    uses: Vec<InstrumentUse>,
    as_of: NaiveDate,
    within_days: i64,
) -> Vec<CalibrationDue> {
    // Ordered by last use within (station, role, serial): the last one wins.
    let mut latest: BTreeMap<(String, String, String), CalibrationDue> = BTreeMap::new();
    for u in uses {
        let InstrumentUse {
            station,
            role,
            model,
            serial_number: serial,
            calibration_id: cal_id,
            calibration_due: due,
            last_used,
        } = u;
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(rows: &[(&str, &str, &str, &str, &str)]) -> Vec<RunRow> {
        // (run_id, station, serial, started_utc, outcome) under procedure "p"
        runs_of(
            &rows
                .iter()
                .map(|r| (r.0, r.1, r.2, r.3, r.4, "p"))
                .collect::<Vec<_>>(),
        )
    }

    fn runs_of(rows: &[(&str, &str, &str, &str, &str, &str)]) -> Vec<RunRow> {
        // (run_id, station, serial, started_utc, outcome, procedure_id); date from
        // started_utc
        rows.iter()
            .map(|r| RunRow {
                run_id: r.0.into(),
                station: r.1.into(),
                station_name: String::new(),
                laboratory: String::new(),
                dut_manufacturer: String::new(),
                dut_type: String::new(),
                serial: r.2.into(),
                accuracy_class: String::new(),
                procedure_id: r.5.into(),
                procedure_version: "1".into(),
                procedure_sha256: String::new(),
                bench_version: String::new(),
                started_utc: r.3.into(),
                finished_utc: None,
                date: NaiveDate::parse_from_str(&r.3[..10], "%Y-%m-%d").unwrap(),
                outcome: crate::parse_outcome(r.4).unwrap(),
                reason: None,
                bundle: PathBuf::new(),
            })
            .collect()
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
        let daily = yield_by_station_day(&lf);
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
    fn first_pass_yield_is_per_serial_and_procedure() {
        // Counted by hand. D passes end of line (eol), then fails its verification (cb)
        // and passes its retest under cb: two first attempts, one passed. E fails eol,
        // passes the eol retest, then passes cb: two first attempts, one passed. F only
        // runs cb and passes. Taking the first run per serial across procedures would
        // count D as passed (its eol) and miss the cb failure: 2 of 3.
        let rows = runs_of(&[
            (
                "r1",
                "st1",
                "D",
                "2026-03-01T08:00:00.000000Z",
                "PASS",
                "eol",
            ),
            (
                "r2",
                "st1",
                "E",
                "2026-03-01T08:10:00.000000Z",
                "FAIL",
                "eol",
            ),
            (
                "r3",
                "st1",
                "E",
                "2026-03-01T08:20:00.000000Z",
                "PASS",
                "eol",
            ),
            (
                "r4",
                "st1",
                "D",
                "2026-03-01T09:00:00.000000Z",
                "FAIL",
                "cb",
            ),
            (
                "r5",
                "st1",
                "D",
                "2026-03-01T10:00:00.000000Z",
                "PASS",
                "cb",
            ),
            (
                "r6",
                "st1",
                "E",
                "2026-03-01T11:00:00.000000Z",
                "PASS",
                "cb",
            ),
            (
                "r7",
                "st1",
                "F",
                "2026-03-01T12:00:00.000000Z",
                "PASS",
                "cb",
            ),
        ]);
        let daily = yield_by_station_day(&rows);
        assert_eq!(daily.len(), 1);
        let c = &daily[0].counts;
        assert_eq!((c.runs, c.pass, c.fail), (7, 5, 2));
        // First attempts: D/eol PASS, E/eol FAIL, D/cb FAIL, E/cb PASS, F/cb PASS.
        assert_eq!((c.first_runs, c.first_pass), (5, 3));
        assert_eq!(c.first_pass_yield, Some(0.6));
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
    fn cpk_interval_by_hand() {
        // z(0.975) = 1.959964; n = 30, Cpk 1.33: sqrt(1/270 + 1.33²/58) = 0.184938
        let (lo, hi) = cpk_interval(1.33, 30, 0.95);
        assert!((hi - 1.33 - 0.362472).abs() < 1e-5, "{hi}");
        assert!((1.33 - lo - 0.362472).abs() < 1e-5, "{lo}");
        // n = 10: sqrt(1/90 + 1.33²/18) = 0.330731, half-width 0.648221
        let (lo, _) = cpk_interval(1.33, 10, 0.95);
        assert!((1.33 - lo - 0.648221).abs() < 1e-5, "{lo}");
    }

    /// The interval's claim tested against the truth it estimates: 4000 seeded samples of
    /// n = 50 normal errors with a known Cpk of 1.5; about 95 % of the intervals must
    /// contain it (binomial standard deviation of the share 0.0034; Bissell's
    /// approximation is not exact, so the band is ±0.015).
    #[test]
    fn cpk_intervals_cover_the_true_cpk_as_claimed() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(20261206);
        let (mu, sigma, mpe, n) = (0.1f64, 0.2f64, 1.0f64, 50usize);
        let truth = (mpe - mu).min(mu + mpe) / (3.0 * sigma);
        assert!((truth - 1.5).abs() < 1e-12);
        let trials = 4000;
        let mut covered = 0;
        for _ in 0..trials {
            // Box–Muller from two uniforms.
            let xs: Vec<f64> = (0..n)
                .map(|_| {
                    let (u1, u2): (f64, f64) = (rng.random(), rng.random());
                    let z = (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                    mu + sigma * z
                })
                .collect();
            let mut m = crate::figures::Moments::default();
            xs.iter().for_each(|x| m.add(*x));
            let c = cpk(m.mean, m.std_dev(), mpe).unwrap();
            let (lo, hi) = cpk_interval(c, m.n, 0.95);
            covered += usize::from(lo <= truth && truth <= hi);
        }
        let share = covered as f64 / trials as f64;
        eprintln!("Cpk interval coverage over {trials} samples: {share}");
        assert!((share - 0.95).abs() <= 0.015, "coverage {share}");
    }

    #[test]
    fn a_cpk_from_too_few_results_is_withheld() {
        let lf = points(&[
            ("st1", "2026-03-01", "left", 0.02, "PASS"),
            ("st1", "2026-03-01", "left", 0.07, "PASS"),
            ("st1", "2026-03-01", "left", 0.11, "PASS"),
        ]);
        let rule = |min_n| CpkRule {
            min_n,
            confidence: 0.95,
            source: "test".into(),
        };
        let l = &load_point_stats(&lf, 4, &rule(4))[0];
        assert!(l.cpk_withheld && l.cpk.is_none() && l.cpk_low.is_none());
        let l = &load_point_stats(&lf, 4, &rule(3))[0];
        assert!(!l.cpk_withheld);
        let c = l.cpk.unwrap();
        assert_eq!((l.cpk_low, l.cpk_high), {
            let (a, b) = cpk_interval(c, 3, 0.95);
            (Some(a), Some(b))
        });
    }

    #[test]
    fn bins_by_hand() {
        assert_eq!(nice_width(0.0725), 0.1);
        assert_eq!(nice_width(0.03), 0.05);
        assert_eq!(nice_width(0.021), 0.025);
        let (lo, w, n) = histogram_bins(0.02, 0.31, 5, None, 1.0, 4);
        assert!(lo.abs() < 1e-12);
        assert_eq!((w, n), (0.1, 4));
        // clipped at ±3 MPE; the range over 10 bins (0.35 → 0.5) is capped at MPE/10:
        // bins of 0.1 from −0.5 to 3, 36 of them
        let (lo, w, n) = histogram_bins(-0.5, 7.0, 2, None, 1.0, 10);
        assert_eq!((lo, w, n), (-0.5, 0.1, 36));
        // Scott's width for a wide spread from few values (3.49 · 2 · 2^(−1/3) = 5.5) is
        // capped too: never a bar as wide as the limit (MPE 1.5 → 0.1)
        let (_, w, _) = histogram_bins(-3.0, 3.0, 2, Some(2.0), 1.5, 60);
        assert_eq!(w, 0.1);
        assert_eq!(nice_width_at_most(0.15), 0.1);
        assert_eq!(nice_width_at_most(0.25), 0.25);
        assert_eq!(nice_width_at_most(0.7), 0.5);
        // Scott: 3.49 · 0.1 · 1000^(−1/3) = 0.0349 → 0.05, wider than 0.6 / 30 → 0.02
        let (lo, w, n) = histogram_bins(-0.3, 0.3, 1000, Some(0.1), 1.0, 30);
        assert!((lo + 0.3).abs() < 1e-12);
        assert_eq!((w, n), (0.05, 13));
        // Every error beyond +3 MPE (set by hand: 1e11 and 2e11 %): their own range in
        // bins of nice(1e11 / 40) = 2.5e9, 41 of them (at MPE/10, 1e12 bins); Scott's
        // width for their spread (3.49 · 7e10 · 2^(−1/3) → 2e11) is not capped either.
        let (lo, w, n) = histogram_bins(1e11, 2e11, 2, None, 1.0, 40);
        assert_eq!((lo, w, n), (1e11, 2.5e9, 41));
        let (lo, w, n) = histogram_bins(1e11, 2e11, 2, Some(7e10), 1.0, 40);
        assert_eq!((lo, w, n), (1e11, 2e11, 1));
        // One error so far out that MPE/100 is below its resolution (3.7e22 %): one bin
        // (snapped to MPE/100 it was 419 430 401).
        let (lo, w, n) = histogram_bins(3.7e22, 3.7e22, 1, None, 1.0, 40);
        assert_eq!((lo, w, n), (3.7e22, 5e10, 1));
        let (_, _, n) = histogram_bins(1e35, 1e36, 2, None, 1.0, 40);
        assert!(n <= 41, "{n}");
        // Modestly beyond (5 to 6 %, MPE 1): as before, their range within MPE/10 bins
        // when the range over max_bins is finer.
        let (lo, w, n) = histogram_bins(5.0, 6.0, 2, None, 1.0, 40);
        assert_eq!((lo, w, n), (5.0, 0.025, 41));
    }

    fn points(rows: &[(&str, &str, &str, f64, &str)]) -> PointGroups {
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
        PointGroups::from_rows(&p).unwrap()
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
        let rule = CpkRule {
            min_n: 2,
            confidence: 0.95,
            source: "test".into(),
        };
        let lps = load_point_stats(&lf, 4, &rule);
        assert_eq!(lps.len(), 2);
        let l = &lps[0];
        assert_eq!((l.port.as_str(), l.n, l.rejected), ("left", 5, 0));
        // Scott's width 3.49 · s · 5^(−1/3) = 0.224 → 0.25 beats 0.29 / 4 → 0.1, but
        // no bin is wider than MPE/10 = 0.1: bins [0, 0.1) … [0.3, 0.4)
        assert_eq!(l.histogram.width, 0.1);
        let counts: Vec<u64> = l.histogram.bins.iter().map(|b| b.count).collect();
        assert_eq!(counts, vec![2, 2, 0, 1]);
        assert_eq!((l.histogram.underflow, l.histogram.overflow), (0, 0));
        assert!((l.histogram.bins[1].lo - 0.1).abs() < 1e-12);
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
        let charts = control_charts(&lf, from);
        assert_eq!(charts.len(), 1);
        let c = &charts[0];
        assert!((c.center - 0.3).abs() < 1e-12);
        let s = 0.02f64.sqrt();
        assert!((c.sigma_within.unwrap() - s).abs() < 1e-12);
        assert!((c.slope_percent_per_day.unwrap() - 0.2).abs() < 1e-12);
        assert!((c.drift_over_range_percent.unwrap() - 0.4).abs() < 1e-12);
        let h = 3.0 * s / 2f64.sqrt();
        assert!((c.days[0].ucl.unwrap() - (0.3 + h)).abs() < 1e-12);
        // 3σ/√2 = 0.3: day 1 (0.1) and day 3 (0.5) are inside.
        assert_eq!(c.out_of_control_days, 0);
        // The slope's standard error: σ/√Σn(x−x̄)² = σ/√(2·(1+0+1)) = σ/2 = 0.0707 %/day;
        // 0.2/0.0707 = 2.83, short of Student's t for σ's 3 degrees of freedom at 0.27 %
        // two-sided (10.2): three days of two results each do not show a drift.
        assert!(!c.drift_suspected);
    }

    #[test]
    fn a_trend_is_flagged_by_its_standard_error() {
        use crate::figures::trend;
        // By hand: days 0..=4, 4 results each, means rising 0.1 %/day; σ = 0.05 with 15
        // degrees of freedom. Σn(x−x̄)² = 4·(4+1+0+1+4) = 40, SE = 0.05/√40 = 0.0079;
        // 0.1/0.0079 = 12.6 > t(15, 0.99865) = 3.6: flagged. With σ = 0.3: t = 2.1, not.
        let daily: Vec<(f64, f64, f64)> = (0..5).map(|d| (d as f64, 4.0, 0.1 * d as f64)).collect();
        let (slope, flagged) = trend(&daily, Some(0.05), 15.0);
        assert!((slope.unwrap() - 0.1).abs() < 1e-12);
        assert!(flagged);
        assert!(!trend(&daily, Some(0.3), 15.0).1);
        // Weighted by n: a day of many results pulls the line more than a day of one.
        let uneven = [(0.0, 1.0, 1.0), (1.0, 9.0, 0.0), (2.0, 9.0, 0.0)];
        let (slope, _) = trend(&uneven, Some(0.1), 10.0);
        // x̄ = (0+9+18)/19, ȳ = 1/19; by the weighted sums:
        let (mx, my): (f64, f64) = (27.0 / 19.0, 1.0 / 19.0);
        let sxx = (0.0 - mx) * (0.0 - mx) + 9.0 * (1.0 - mx).powi(2) + 9.0 * (2.0 - mx).powi(2);
        let sxy =
            (0.0 - mx) * (1.0 - my) + 9.0 * (1.0 - mx) * (0.0 - my) + 9.0 * (2.0 - mx) * (0.0 - my);
        assert!((slope.unwrap() - sxy / sxx).abs() < 1e-12);
        assert_eq!(trend(&daily[..1], Some(0.05), 15.0), (None, false));
    }

    /// Stable stations, many seeded audits of short and long ranges: the trend is flagged
    /// about as often as its false-alarm probability says (0.27 %), not more; a drift is
    /// found as often as its size against its standard error says.
    #[test]
    fn the_trend_test_holds_its_false_alarm_rate_and_finds_a_drift() {
        use crate::figures::trend;
        use crate::synth::normal;
        use rand::{Rng, SeedableRng};
        let sigma = 0.2;
        let audit = |rng: &mut rand_chacha::ChaCha8Rng,
                     days: usize,
                     per_day: fn(&mut rand_chacha::ChaCha8Rng) -> usize,
                     slope: f64| {
            let mut daily = Vec::new();
            let (mut ss, mut dof) = (0.0, 0.0);
            for d in 0..days {
                let n = per_day(rng);
                let xs: Vec<f64> = (0..n)
                    .map(|_| normal(rng, slope * d as f64, sigma))
                    .collect();
                let mean = xs.iter().sum::<f64>() / n as f64;
                ss += xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>();
                dof += (n - 1) as f64;
                daily.push((d as f64, n as f64, mean));
            }
            let s = (dof > 0.0).then(|| (ss / dof).sqrt());
            trend(&daily, s, dof).1
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
        let trials = 4000;
        let mut false_alarms = 0;
        for k in 0..trials {
            let days = [3, 5, 7, 30][k % 4];
            if audit(&mut rng, days, |r| r.random_range(1..=5), 0.0) {
                false_alarms += 1;
            }
        }
        // Expected 10.8 of 4000 (sd 3.3): more than 25 would be a test that over-flags.
        assert!(
            false_alarms <= 25,
            "{false_alarms} false alarms in {trials}"
        );
        // 0.01 %/day over 30 days of 4 results (σ 0.2 %): SE = 0.2/√(4·2247.5) = 0.0021, the
        // slope 4.7 SE against a critical 3.0: found about Φ(1.7) = 95 % of the time (a
        // little less with σ estimated); 0.02 %/day (9.5 SE) always.
        let found = |rng: &mut rand_chacha::ChaCha8Rng, slope: f64| {
            (0..500).filter(|_| audit(rng, 30, |_| 4, slope)).count()
        };
        let weak = found(&mut rng, 0.01);
        assert!(
            (450..=495).contains(&weak),
            "0.01 %/day found {weak} times in 500"
        );
        let strong = found(&mut rng, 0.02);
        assert_eq!(strong, 500, "0.02 %/day found {strong} times in 500");
    }
}
