//! Synthetic store content for benchmarks and demos: index rows and points as a few
//! stations would produce them over 90 days, in the compacted layout (one points file
//! per station and day). No run records, no bundles and no samples files are made (the
//! audit does not read samples); the bundle path of a synthetic run names a folder that
//! does not exist.
//!
//! The model: a meter's port has a bias ~ N(0.05 %, 0.15 %), each load point a small
//! systematic offset plus a per-meter deviation ~ N(0, 0.03 %), and each measurement a
//! noise ~ N(0, U/2). About 1.5 % of the meters have a faulty port that is off by
//! 1.1–2.5 % at the Imax points (FAIL); about 0.3 % of the runs end in a bench ERROR part
//! way and 0.1 % are ABORTED. Failed meters come back for a retest (70 % of the reworked
//! ones pass). The reference of one station drifts by +0.002 %/day; the others have a
//! small constant offset. One station's counter is recalibrated in the middle of the
//! range, and two calibrations fall due shortly after it.

use crate::StoreError;
use crate::compact::compact_partition;
use crate::frames::{PointRow, outcome_str, points_parquet_bytes};
use crate::index::{IndexRun, InstrumentRow, RunRow, open_index, upsert_run};
use crate::layout::{
    COMPACTED_FILE, INDEX_FILE, POINTS_DIR, absolute, canonical_utc, partition_dir, path_component,
};
use crate::pg::PgStore;
use chrono::{Days, NaiveDate, TimeDelta};
use meterbench_metrology::{DecisionRule, decide};
use meterbench_runner::record::Outcome;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

/// First day of the synthetic runs.
pub fn synth_start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 5).unwrap_or_default()
}
/// Number of days the synthetic runs span.
pub const SYNTH_DAYS: u64 = 90;
/// The station whose reference drifts.
pub const DRIFTING_STATION: &str = "lab-b-2";
/// Drift of that station's reference, % of error per day.
pub const DRIFT_PERCENT_PER_DAY: f64 = 0.002;

const STATIONS: [(&str, f64); 5] = [
    ("lab-a-1", 0.004),
    ("lab-a-2", -0.006),
    ("lab-b-1", 0.002),
    (DRIFTING_STATION, 0.0),
    ("lab-c-1", -0.003),
];

struct Point {
    index: u32,
    name: &'static str,
    current_name: &'static str,
    current_a: f64,
    pf: &'static str,
    phases: &'static str,
    mpe: f64,
    u: f64,
    /// Systematic offset of the meter type at this point, %.
    offset: f64,
}

/// The accuracy points of the EN 50470-3 class B procedure (limits as in its records).
const POINTS: [Point; 11] = [
    pt(
        3, "Imin PF1", "Imin", 0.25, "1", "L1 L2 L3", 1.5, 0.04, 0.08,
    ),
    pt(4, "Itr PF1", "Itr", 0.5, "1", "L1 L2 L3", 1.0, 0.02, 0.04),
    pt(
        5,
        "Itr PF0.5i",
        "Itr",
        0.5,
        "0.5i",
        "L1 L2 L3",
        1.0,
        0.03,
        -0.03,
    ),
    pt(6, "Iref PF1", "Iref", 5.0, "1", "L1 L2 L3", 1.0, 0.02, 0.0),
    pt(
        7,
        "Iref PF0.5i",
        "Iref",
        5.0,
        "0.5i",
        "L1 L2 L3",
        1.0,
        0.03,
        -0.04,
    ),
    pt(
        8,
        "Iref PF0.8c",
        "Iref",
        5.0,
        "0.8c",
        "L1 L2 L3",
        1.0,
        0.03,
        0.03,
    ),
    pt(
        9, "Imax PF1", "Imax", 32.0, "1", "L1 L2 L3", 1.0, 0.02, -0.02,
    ),
    pt(
        10,
        "Imax PF0.5i",
        "Imax",
        32.0,
        "0.5i",
        "L1 L2 L3",
        1.0,
        0.03,
        -0.05,
    ),
    pt(11, "Iref PF1 L1", "Iref", 5.0, "1", "L1", 2.0, 0.02, 0.02),
    pt(12, "Iref PF1 L2", "Iref", 5.0, "1", "L2", 2.0, 0.02, 0.01),
    pt(13, "Iref PF1 L3", "Iref", 5.0, "1", "L3", 2.0, 0.02, 0.02),
];

#[allow(clippy::too_many_arguments)]
const fn pt(
    index: u32,
    name: &'static str,
    current_name: &'static str,
    current_a: f64,
    pf: &'static str,
    phases: &'static str,
    mpe: f64,
    u: f64,
    offset: f64,
) -> Point {
    Point {
        index,
        name,
        current_name,
        current_a,
        pf,
        phases,
        mpe,
        u,
        offset,
    }
}

const PORTS: [&str; 2] = ["left", "right"];

#[derive(Clone)]
struct Meter {
    serial: String,
    bias: [f64; 2],
    deviation: [[f64; 11]; 2],
    /// (port, error added at the Imax points)
    fault: Option<(usize, f64)>,
}

/// What [`synthesize`] made.
#[derive(Debug, Clone, Serialize)]
pub struct SynthSummary {
    pub runs: usize,
    pub pass: usize,
    pub fail: usize,
    pub error: usize,
    pub aborted: usize,
    pub serials: usize,
    pub points_rows: usize,
    pub points_files: usize,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub stations: Vec<String>,
    pub drifting_station: String,
}

pub(crate) fn normal(rng: &mut ChaCha8Rng, mean: f64, sd: f64) -> f64 {
    // Box–Muller; one of the pair is enough here.
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    mean + sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn new_meter(rng: &mut ChaCha8Rng, serial: String) -> Meter {
    let mut deviation = [[0.0; 11]; 2];
    for port in &mut deviation {
        for d in port.iter_mut() {
            *d = normal(rng, 0.0, 0.03);
        }
    }
    let fault = (rng.random::<f64>() < 0.015).then(|| {
        let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
        (rng.random_range(0..2), sign * rng.random_range(1.1..2.5))
    });
    Meter {
        serial,
        bias: [normal(rng, 0.05, 0.15), normal(rng, 0.05, 0.15)],
        deviation,
        fault,
    }
}

fn instruments(station_no: usize, station: &str, day: u64) -> Vec<InstrumentRow> {
    let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap_or_default();
    let mut source_due = d(2027, 1, 31);
    let mut reference_due = d(2026, 11, 30);
    let mut counter = (format!("CAL-{station}-CNT-2025-06"), d(2026, 12, 15));
    match station_no {
        // Its reference falls due 16 days after the synthetic range ends.
        2 => reference_due = d(2026, 4, 20),
        // Its source falls due 26 days after the range ends.
        4 => source_due = d(2026, 4, 30),
        // Its counter is recalibrated on day 45: only the new calibration counts.
        1 if day < 45 => counter = (format!("CAL-{station}-CNT-2025-02"), d(2026, 2, 25)),
        1 => counter = (format!("CAL-{station}-CNT-2026-02"), d(2027, 2, 19)),
        _ => {}
    }
    let lab = "synthetic calibration lab".to_string();
    vec![
        InstrumentRow {
            role: "counter".into(),
            driver: "synthetic".into(),
            model: "meterbench pulse counter".into(),
            serial_number: format!("CNT-{}", station_no + 1),
            calibration_id: counter.0,
            calibration_due: counter.1,
            calibration_issued_by: lab.clone(),
        },
        InstrumentRow {
            role: "reference".into(),
            driver: "synthetic".into(),
            model: "reference meter 0.01 %".into(),
            serial_number: format!("REF-{}", station_no + 1),
            calibration_id: format!("CAL-{station}-REF-2025-11"),
            calibration_due: reference_due,
            calibration_issued_by: lab.clone(),
        },
        InstrumentRow {
            role: "source".into(),
            driver: "synthetic".into(),
            model: "3-phase power source".into(),
            serial_number: format!("SRC-{}", station_no + 1),
            calibration_id: format!("CAL-{station}-SRC-2026-01"),
            calibration_due: source_due,
            calibration_issued_by: lab,
        },
    ]
}

/// The points of one day, one file per station: the compacted layout (see
/// [`crate::compact`]), merged with what the partition already holds.
fn flush_day(store: &Path, rows: &[PointRow], seed: u64) -> Result<usize, StoreError> {
    let mut by_station: BTreeMap<String, Vec<PointRow>> = BTreeMap::new();
    for r in rows {
        by_station
            .entry(r.station.clone())
            .or_default()
            .push(r.clone());
    }
    let mut files = 0;
    for (station, rows) in by_station {
        let Some(first) = rows.first() else { continue };
        let date = NaiveDate::parse_from_str(&first.date, "%Y-%m-%d").unwrap_or_default();
        let dir = partition_dir(store, POINTS_DIR, &station, date);
        std::fs::create_dir_all(&dir).map_err(StoreError::io(&dir))?;
        let bytes = points_parquet_bytes(&rows, &format!("synthetic points of {}", dir.display()))?;
        let compacted = dir.join(COMPACTED_FILE);
        if compacted.is_file() {
            let path = dir.join(format!("synthetic-{seed}.parquet"));
            std::fs::write(&path, bytes).map_err(StoreError::io(&path))?;
            compact_partition(&dir, POINTS_DIR, None)?;
        } else {
            std::fs::write(&compacted, bytes).map_err(StoreError::io(&compacted))?;
        }
        files += 1;
    }
    Ok(files)
}

/// Write `n` synthetic runs into the embedded store `store`, spread over [`SYNTH_DAYS`]
/// days from [`synth_start`]: index rows with their points, and the points in the
/// compacted layout (one file per station and day, as [`crate::compact`] leaves a past
/// day); no samples files. The same `n` and `seed` give the same store content.
pub(crate) fn synthesize_embedded(
    store: &Path,
    n: usize,
    seed: u64,
) -> Result<SynthSummary, StoreError> {
    let mut conn = open_index(store, true)?;
    let index_path = store.join(INDEX_FILE);
    let tx = conn.transaction().map_err(StoreError::index(&index_path))?;
    let bundles = absolute(store).join("synthetic-bundles");
    let summary = generate(n, seed, &bundles, |runs, points| {
        let mut at = 0;
        for run in runs {
            let k = points[at..]
                .iter()
                .take_while(|p| p.run_id == run.row.run_id)
                .count();
            upsert_run(&tx, run, &points[at..at + k]).map_err(StoreError::index(&index_path))?;
            at += k;
        }
        flush_day(store, points, seed)
    })?;
    tx.commit().map_err(StoreError::index(&index_path))?;
    Ok(summary)
}

/// The same synthetic runs into a PostgreSQL store, a day per transaction. Their bundle
/// paths name folders that do not exist.
pub(crate) fn synthesize_into(
    pg: &PgStore,
    n: usize,
    seed: u64,
) -> Result<SynthSummary, StoreError> {
    let bundles = Path::new("/synthetic-bundles");
    let mut summary = generate(n, seed, bundles, |runs, points| {
        pg.insert_many(runs, points)?;
        Ok(0)
    })?;
    summary.points_files = 0;
    // A bulk load leaves the planner without statistics until autovacuum's next pass
    // (the audit right after it was planned as if the tables were small); PostgreSQL's
    // manual advises ANALYZE after loading ("Populating a Database").
    pg.analyze()?;
    Ok(summary)
}

/// Make the runs, handing each day's runs and points (in run order) to `file_day`, which
/// says how many points files it wrote.
fn generate(
    n: usize,
    seed: u64,
    bundles: &Path,
    mut file_day: impl FnMut(&[IndexRun], &[PointRow]) -> Result<usize, StoreError>,
) -> Result<SynthSummary, StoreError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = synth_start();
    let mut day_runs: Vec<IndexRun> = Vec::new();

    let mut pending: VecDeque<(usize, Meter)> = VecDeque::new();
    let mut next_serial = 1usize;
    let mut day_rows: Vec<PointRow> = Vec::new();
    let mut summary = SynthSummary {
        runs: n,
        pass: 0,
        fail: 0,
        error: 0,
        aborted: 0,
        serials: 0,
        points_rows: 0,
        points_files: 0,
        from: start,
        to: start + Days::new(SYNTH_DAYS - 1),
        stations: STATIONS.iter().map(|s| s.0.to_string()).collect(),
        drifting_station: DRIFTING_STATION.to_string(),
    };

    for k in 0..n {
        // Runs in time order: day by index, spread over 06:00–22:00.
        let pos = k as f64 * SYNTH_DAYS as f64 / n.max(1) as f64;
        let day = pos.floor() as u64;
        let within = pos - day as f64;
        let date = start + Days::new(day);
        let started = date.and_hms_opt(6, 0, 0).unwrap_or_default().and_utc()
            + TimeDelta::milliseconds((within * 16.0 * 3600.0 * 1000.0) as i64);
        let station_no = rng.random_range(0..STATIONS.len());
        let (station, station_offset) = STATIONS[station_no];

        let meter = match pending.front() {
            Some((ready, _)) if *ready <= k => pending.pop_front().map(|p| p.1),
            _ => None,
        };
        let meter = meter.unwrap_or_else(|| {
            let serial = format!("SYN-CPIM-{next_serial:07}");
            next_serial += 1;
            new_meter(&mut rng, serial)
        });

        let drift = if station == DRIFTING_STATION {
            DRIFT_PERCENT_PER_DAY * day as f64
        } else {
            0.0
        };
        let roll: f64 = rng.random();
        // A bench ERROR or a stop ends the run before this point.
        let stop_at = (roll < 0.004).then(|| rng.random_range(0..POINTS.len()));
        let run_id = format!(
            "{}-{station}-{}",
            started.format("%Y%m%dT%H%M%S%.3fZ"),
            meter.serial
        );
        let date_s = date.format("%Y-%m-%d").to_string();
        let started_s = canonical_utc(started);
        let mut rows = Vec::with_capacity(POINTS.len() * 2);
        let mut all_accepted = true;
        for (pi, p) in POINTS.iter().enumerate() {
            if stop_at.is_some_and(|s| pi >= s) {
                break;
            }
            for (port_no, port) in PORTS.iter().enumerate() {
                let mut e = meter.bias[port_no]
                    + p.offset
                    + meter.deviation[port_no][pi]
                    + station_offset
                    + drift
                    + normal(&mut rng, 0.0, p.u / 2.0);
                if let Some((fp, bump)) = meter.fault
                    && fp == port_no
                    && p.current_name == "Imax"
                {
                    e += bump;
                }
                let decision = decide(DecisionRule::SimpleAcceptance, e, p.u, p.mpe);
                all_accepted &= decision.accepted;
                rows.push(PointRow {
                    run_id: run_id.clone(),
                    station: station.to_string(),
                    date: date_s.clone(),
                    started_utc: started_s.clone(),
                    serial: meter.serial.clone(),
                    dut_type: "CPIM1000".into(),
                    procedure_id: "en50470-3-class-b".into(),
                    procedure_version: "1.0.0".into(),
                    step_index: p.index,
                    step_name: p.name.into(),
                    current_name: p.current_name.into(),
                    current_a: p.current_a,
                    power_factor: p.pf.into(),
                    phases: p.phases.into(),
                    port: (*port).into(),
                    repeats: 3,
                    error_percent: e,
                    u_percent: p.u,
                    mpe_percent: p.mpe,
                    conformity: crate::frames::serde_text(&decision.conformity),
                    accepted: decision.accepted,
                    outcome: String::new(),
                });
            }
        }
        let (outcome, reason) = match stop_at {
            Some(s) if roll < 0.003 => (
                Outcome::Error,
                Some(format!(
                    "counter: no pulse from port {} within 30 s at {} (check the scanning head)",
                    PORTS[rng.random_range(0..2)],
                    POINTS[s].name
                )),
            ),
            Some(_) => (
                Outcome::Aborted,
                Some("stopped by the operator or a signal".to_string()),
            ),
            None if all_accepted => (Outcome::Pass, None),
            None => (
                Outcome::Fail,
                Some("accuracy out of limits at Imax".to_string()),
            ),
        };
        for r in &mut rows {
            r.outcome = outcome_str(outcome).to_string();
        }
        match outcome {
            Outcome::Pass => summary.pass += 1,
            Outcome::Fail => summary.fail += 1,
            Outcome::Error => summary.error += 1,
            _ => summary.aborted += 1,
        }
        // Failed meters come back: reworked (70 % fixed) after a FAIL, as they were
        // after a bench fault or a stop.
        if outcome != Outcome::Pass {
            let mut m = meter.clone();
            if outcome == Outcome::Fail && rng.random::<f64>() < 0.7 {
                m.fault = None;
            }
            pending.push_back((k + rng.random_range(20..400), m));
        }

        if day_rows.first().is_some_and(|r| r.date != date_s) {
            summary.points_files += file_day(&day_runs, &day_rows)?;
            day_runs.clear();
            day_rows.clear();
        }
        summary.points_rows += rows.len();
        day_rows.extend(rows);
        let finished = started + TimeDelta::seconds(1500);
        let run = IndexRun {
            row: RunRow {
                run_id: run_id.clone(),
                station: station.to_string(),
                station_name: format!("Synthetic bench {station}"),
                laboratory: "meterbench synthetic laboratory".into(),
                dut_manufacturer: "ChargePoint".into(),
                dut_type: "CPIM1000".into(),
                serial: meter.serial.clone(),
                accuracy_class: "B".into(),
                procedure_id: "en50470-3-class-b".into(),
                procedure_version: "1.0.0".into(),
                procedure_sha256: "0".repeat(64),
                bench_version: format!("synthetic {}", env!("CARGO_PKG_VERSION")),
                started_utc: started_s,
                finished_utc: Some(canonical_utc(finished)),
                date,
                outcome,
                reason,
                bundle: bundles.join(path_component(&run_id)),
            },
            instruments: instruments(station_no, station, day),
            amends: None,
        };
        day_runs.push(run);
    }
    if !day_runs.is_empty() {
        summary.points_files += file_day(&day_runs, &day_rows)?;
    }
    summary.serials = next_serial - 1;
    Ok(summary)
}
