//! The embedded SQLite index of runs (schema in `schema.sql`), ingest, listing and
//! detail of runs.

use crate::StoreError;
use crate::audit::{AuditRun, InstrumentUse, RunTally, is_problem};
use crate::compact::{remove_run_rows, rows_in_compacted};
use crate::frames::{
    PointRow, outcome_str, parse_outcome, point_rows, point_rows_from_frame, points_parquet_bytes,
    read_parquet, samples_parquet_bytes,
};
use crate::layout::{
    COMPACTED_FILE, INDEX_FILE, POINTS_DIR, SAMPLES_DIR, absolute, canonical_utc, parse_utc,
    partition_dir, run_file, write_atomically,
};
use chrono::NaiveDate;
use meterbench_runner::record::{Outcome, RunRecord};
use polars_core::prelude::DataFrame;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The portable schema, applied (idempotently) whenever the index is opened.
pub const SCHEMA_SQL: &str = include_str!("../schema.sql");

/// Name of the samples file the caller puts into a bundle before signing it.
pub const BUNDLE_SAMPLES_FILE: &str = "samples.parquet";

/// Which runs [`list_runs`] returns; `None` fields match everything, dates are
/// inclusive and compare with the UTC date the run started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFilter {
    pub serial: Option<String>,
    pub station: Option<String>,
    pub outcome: Option<Outcome>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

/// One run as the index knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    pub run_id: String,
    pub station: String,
    pub station_name: String,
    pub laboratory: String,
    pub dut_manufacturer: String,
    pub dut_type: String,
    pub serial: String,
    pub accuracy_class: String,
    pub procedure_id: String,
    pub procedure_version: String,
    pub procedure_sha256: String,
    pub bench_version: String,
    pub started_utc: String,
    pub finished_utc: Option<String>,
    pub date: NaiveDate,
    pub outcome: Outcome,
    pub reason: Option<String>,
    /// Absolute path of the run's bundle folder when it was ingested.
    pub bundle: PathBuf,
}

/// An instrument of a run and the calibration it was used under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstrumentRow {
    pub role: String,
    pub driver: String,
    pub model: String,
    pub serial_number: String,
    pub calibration_id: String,
    pub calibration_due: NaiveDate,
    pub calibration_issued_by: String,
}

/// Everything the store holds about one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunDetail {
    pub run: RunRow,
    pub instruments: Vec<InstrumentRow>,
    /// The run's accuracy points (from its points file; empty when there is none).
    pub points: Vec<PointRow>,
    /// The files holding the run's rows (its own file, or its partition's compacted
    /// file), when there are any.
    pub points_file: Option<PathBuf>,
    pub samples_file: Option<PathBuf>,
    /// The run this one amends, and the runs that amend this one (`run_amendments`).
    #[serde(default)]
    pub amends: Option<String>,
    #[serde(default)]
    pub amended_by: Vec<String>,
}

/// Open (and create, when `create`) the index of a store.
pub(crate) fn open_index(store: &Path, create: bool) -> Result<Connection, StoreError> {
    let path = store.join(INDEX_FILE);
    if !create && !path.is_file() {
        return Err(StoreError::NoStore(store.to_path_buf()));
    }
    std::fs::create_dir_all(store).map_err(StoreError::io(store))?;
    let conn = Connection::open(&path).map_err(StoreError::index(&path))?;
    // Several ingesting processes wait for each other instead of failing at once.
    conn.busy_timeout(Duration::from_secs(30))
        .map_err(StoreError::index(&path))?;
    conn.execute_batch(SCHEMA_SQL)
        .map_err(StoreError::index(&path))?;
    Ok(conn)
}

/// A run's row of the `runs` table, without the record (the synthesizer makes these).
#[derive(Debug, Clone)]
pub(crate) struct IndexRun {
    pub row: RunRow,
    pub instruments: Vec<InstrumentRow>,
    /// The run it amends (`run_amendments`), if any.
    pub amends: Option<String>,
}

/// Replace a run's rows and its accuracy points (idempotent per run_id).
pub(crate) fn upsert_run(
    tx: &Transaction<'_>,
    run: &IndexRun,
    points: &[PointRow],
) -> rusqlite::Result<()> {
    let r = &run.row;
    tx.execute("DELETE FROM points WHERE run_id = ?1", [&r.run_id])?;
    tx.execute("DELETE FROM run_instruments WHERE run_id = ?1", [&r.run_id])?;
    tx.execute("DELETE FROM run_amendments WHERE run_id = ?1", [&r.run_id])?;
    tx.execute("DELETE FROM runs WHERE run_id = ?1", [&r.run_id])?;
    tx.execute(
        "INSERT INTO runs (run_id, station_id, station_name, laboratory, dut_manufacturer, \
         dut_type, dut_serial, accuracy_class, procedure_id, procedure_version, \
         procedure_sha256, bench_version, started_utc, finished_utc, run_date, outcome, \
         outcome_reason, bundle_path) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
        params![
            r.run_id,
            r.station,
            r.station_name,
            r.laboratory,
            r.dut_manufacturer,
            r.dut_type,
            r.serial,
            r.accuracy_class,
            r.procedure_id,
            r.procedure_version,
            r.procedure_sha256,
            r.bench_version,
            r.started_utc,
            r.finished_utc,
            r.date.format("%Y-%m-%d").to_string(),
            outcome_str(r.outcome),
            r.reason,
            r.bundle.to_string_lossy().into_owned(),
        ],
    )?;
    let mut ins = tx.prepare(
        "INSERT INTO run_instruments (run_id, role, driver, model, serial_number, \
         calibration_id, calibration_due, calibration_issued_by) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for i in &run.instruments {
        ins.execute(params![
            r.run_id,
            i.role,
            i.driver,
            i.model,
            i.serial_number,
            i.calibration_id,
            i.calibration_due.format("%Y-%m-%d").to_string(),
            i.calibration_issued_by,
        ])?;
    }
    if let Some(amends) = &run.amends {
        tx.execute(
            "INSERT INTO run_amendments (run_id, amends) VALUES (?1, ?2)",
            params![r.run_id, amends],
        )?;
    }
    let mut ins = tx.prepare(
        "INSERT INTO points (run_id, step_index, port, step_name, current_name, current_a, \
         power_factor, phases, repeats, error_percent, u_percent, mpe_percent, conformity, \
         accepted) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?;
    for p in points {
        ins.execute(params![
            r.run_id,
            p.step_index,
            p.port,
            p.step_name,
            p.current_name,
            p.current_a,
            p.power_factor,
            p.phases,
            p.repeats,
            p.error_percent,
            p.u_percent,
            p.mpe_percent,
            p.conformity,
            p.accepted,
        ])?;
    }
    Ok(())
}

pub(crate) fn index_run(record: &RunRecord, bundle: &Path) -> Result<IndexRun, StoreError> {
    let started = parse_utc(&record.run_id, &record.started_utc)?;
    let finished = record
        .finished_utc
        .as_deref()
        .map(|f| parse_utc(&record.run_id, f).map(canonical_utc))
        .transpose()?;
    let row = RunRow {
        run_id: record.run_id.clone(),
        station: record.station.id.clone(),
        station_name: record.station.name.clone(),
        laboratory: record.station.laboratory.clone(),
        dut_manufacturer: record.dut.manufacturer.clone(),
        dut_type: record.dut.device_type.clone(),
        serial: record.dut.serial_number.clone(),
        accuracy_class: record.dut.accuracy_class.clone(),
        procedure_id: record.procedure.id.clone(),
        procedure_version: record.procedure.version.clone(),
        procedure_sha256: record.procedure.sha256.clone(),
        bench_version: record.bench_version.clone(),
        started_utc: canonical_utc(started),
        finished_utc: finished,
        date: started.date_naive(),
        outcome: record.outcome,
        reason: record.outcome_reason.clone(),
        bundle: absolute(bundle),
    };
    let instruments = record
        .instruments
        .iter()
        .map(|i| InstrumentRow {
            // `counter c2` on a station with several counters: one row each.
            role: i.label(),
            driver: i.driver.clone(),
            model: i
                .reported
                .as_ref()
                .map(|r| r.model.clone())
                .unwrap_or_else(|| i.declared_model.clone()),
            serial_number: i
                .reported
                .as_ref()
                .map(|r| r.serial_number.clone())
                .unwrap_or_else(|| i.declared_serial_number.clone()),
            calibration_id: i.calibration.id.clone(),
            calibration_due: i.calibration.due,
            calibration_issued_by: i.calibration.issued_by.clone(),
        })
        .collect();
    Ok(IndexRun {
        row,
        instruments,
        amends: record.amends.clone(),
    })
}

/// Put a finished run into the store: its samples and points as Parquet files in the
/// station/date partitions and its rows in the index. Ingesting the same run again
/// replaces what the store had of it (files and rows), so it is safe to repeat.
///
/// When the bundle has a `samples.parquet` (written by [`crate::write_samples_parquet`]
/// before signing) it is copied; otherwise the samples are written from the record.
/// Nothing is written into `bundle`.
pub(crate) fn ingest(store: &Path, record: &RunRecord, bundle: &Path) -> Result<(), StoreError> {
    let run = index_run(record, bundle)?;
    let row = &run.row;
    let date = row.date;
    let date_s = date.format("%Y-%m-%d").to_string();
    let rows = point_rows(record, &date_s, &row.started_utc);
    // Refused before anything is written, as a PostgreSQL store refuses it.
    crate::limits::check_lengths(&run, &rows)?;
    let mut conn = open_index(store, true)?;
    let index_path = store.join(INDEX_FILE);

    // A run re-ingested under another station or date must not leave its old files.
    let previous: Option<(String, String)> = conn
        .query_row(
            "SELECT station_id, run_date FROM runs WHERE run_id = ?1",
            [&row.run_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(StoreError::index(&index_path))?;
    if let Some((st, d)) = previous
        && let Ok(d) = NaiveDate::parse_from_str(&d, "%Y-%m-%d")
        && (st != row.station || d != date)
    {
        for kind in [SAMPLES_DIR, POINTS_DIR] {
            remove_run_rows(store, kind, &st, d, &row.run_id)?;
        }
    }
    // A run ingested again after its day was compacted: its old rows go, the new
    // per-run files below are its only copy.
    for kind in [SAMPLES_DIR, POINTS_DIR] {
        if partition_dir(store, kind, &row.station, date)
            .join(COMPACTED_FILE)
            .is_file()
        {
            remove_run_rows(store, kind, &row.station, date, &row.run_id)?;
        }
    }

    let samples = run_file(store, SAMPLES_DIR, &row.station, date, &row.run_id);
    let in_bundle = bundle.join(BUNDLE_SAMPLES_FILE);
    let bytes = if in_bundle.is_file() {
        std::fs::read(&in_bundle).map_err(StoreError::io(&in_bundle))?
    } else {
        samples_parquet_bytes(record)?
    };
    write_atomically(&samples, &bytes)?;

    let points = run_file(store, POINTS_DIR, &row.station, date, &row.run_id);
    if rows.is_empty() {
        let _ = std::fs::remove_file(&points);
    } else {
        let bytes = points_parquet_bytes(&rows, &format!("points of run {}", row.run_id))?;
        write_atomically(&points, &bytes)?;
    }

    let tx = conn.transaction().map_err(StoreError::index(&index_path))?;
    upsert_run(&tx, &run, &rows).map_err(StoreError::index(&index_path))?;
    tx.commit().map_err(StoreError::index(&index_path))
}

/// `from` and `to` as the index's `run_date` text holds them, for `?1` and `?2`.
fn date_range(from: NaiveDate, to: NaiveDate) -> [String; 2] {
    [
        from.format("%Y-%m-%d").to_string(),
        to.format("%Y-%m-%d").to_string(),
    ]
}

/// A `YYYY-MM-DD` text column as a date (SQLite has no date type).
fn date_at(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<NaiveDate> {
    let text: String = r.get(i)?;
    NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

const RUN_COLUMNS: &str = "run_id, station_id, station_name, laboratory, dut_manufacturer, \
     dut_type, dut_serial, accuracy_class, procedure_id, procedure_version, procedure_sha256, \
     bench_version, started_utc, finished_utc, run_date, outcome, outcome_reason, bundle_path";

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    let conv = |i: usize, e: String| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            Box::<dyn std::error::Error + Send + Sync>::from(e),
        )
    };
    let date: String = r.get(14)?;
    let outcome: String = r.get(15)?;
    Ok(RunRow {
        run_id: r.get(0)?,
        station: r.get(1)?,
        station_name: r.get(2)?,
        laboratory: r.get(3)?,
        dut_manufacturer: r.get(4)?,
        dut_type: r.get(5)?,
        serial: r.get(6)?,
        accuracy_class: r.get(7)?,
        procedure_id: r.get(8)?,
        procedure_version: r.get(9)?,
        procedure_sha256: r.get(10)?,
        bench_version: r.get(11)?,
        started_utc: r.get(12)?,
        finished_utc: r.get(13)?,
        date: NaiveDate::parse_from_str(&date, "%Y-%m-%d")
            .map_err(|e| conv(14, format!("run_date {date:?}: {e}")))?,
        outcome: parse_outcome(&outcome).ok_or_else(|| conv(15, format!("outcome {outcome:?}")))?,
        reason: r.get(16)?,
        bundle: PathBuf::from(r.get::<_, String>(17)?),
    })
}

/// Runs matching `filter`, oldest first (by start time, then run id).
pub(crate) fn list_runs(store: &Path, filter: &RunFilter) -> Result<Vec<RunRow>, StoreError> {
    let conn = open_index(store, false)?;
    query_runs(&conn, store, filter)
}

fn query_runs(
    conn: &Connection,
    store: &Path,
    filter: &RunFilter,
) -> Result<Vec<RunRow>, StoreError> {
    let index_path = store.join(INDEX_FILE);
    let mut sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE 1 = 1");
    let mut args: Vec<String> = Vec::new();
    let mut add = |cond: &str, v: String| {
        args.push(v);
        sql.push_str(&format!(" AND {cond} ?{}", args.len()));
    };
    if let Some(s) = &filter.serial {
        add("dut_serial =", s.clone());
    }
    if let Some(s) = &filter.station {
        add("station_id =", s.clone());
    }
    if let Some(o) = filter.outcome {
        add("outcome =", outcome_str(o).to_string());
    }
    if let Some(d) = filter.from {
        add("run_date >=", d.format("%Y-%m-%d").to_string());
    }
    if let Some(d) = filter.to {
        add("run_date <=", d.format("%Y-%m-%d").to_string());
    }
    sql.push_str(" ORDER BY started_utc, run_id");
    let mut stmt = conn.prepare(&sql).map_err(StoreError::index(&index_path))?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args.iter()), run_row)
        .map_err(StoreError::index(&index_path))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(StoreError::index(&index_path))?;
    Ok(rows)
}

/// Everything the store holds about `run_id`, or `None` when it is not in the index.
pub(crate) fn show_run(store: &Path, run_id: &str) -> Result<Option<RunDetail>, StoreError> {
    let conn = open_index(store, false)?;
    let index_path = store.join(INDEX_FILE);
    let run = conn
        .query_row(
            &format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?1"),
            [run_id],
            run_row,
        )
        .optional()
        .map_err(StoreError::index(&index_path))?;
    let Some(run) = run else {
        return Ok(None);
    };
    let mut stmt = conn
        .prepare(
            "SELECT role, driver, model, serial_number, calibration_id, calibration_due, \
             calibration_issued_by FROM run_instruments WHERE run_id = ?1 ORDER BY role",
        )
        .map_err(StoreError::index(&index_path))?;
    let instruments = stmt
        .query_map([run_id], |r| {
            Ok(InstrumentRow {
                role: r.get(0)?,
                driver: r.get(1)?,
                model: r.get(2)?,
                serial_number: r.get(3)?,
                calibration_id: r.get(4)?,
                calibration_due: date_at(r, 5)?,
                calibration_issued_by: r.get(6)?,
            })
        })
        .map_err(StoreError::index(&index_path))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(StoreError::index(&index_path))?;
    // The run's own file, else its rows in the partition's compacted file.
    let find = |kind: &str| -> Result<Option<(PathBuf, Option<DataFrame>)>, StoreError> {
        let own = run_file(store, kind, &run.station, run.date, run_id);
        if own.is_file() {
            return Ok(Some((own, None)));
        }
        Ok(
            rows_in_compacted(store, kind, &run.station, run.date, run_id)?
                .map(|(p, df)| (p, Some(df))),
        )
    };
    let points_found = find(POINTS_DIR)?;
    let samples_file = find(SAMPLES_DIR)?.map(|(p, _)| p);
    let (points_file, points) = match points_found {
        Some((p, df)) => {
            let df = match df {
                Some(df) => df,
                None => read_parquet(&p)?,
            };
            let rows = point_rows_from_frame(&df)
                .map_err(StoreError::polars(format!("reading {}", p.display())))?;
            (Some(p), rows)
        }
        None => (None, Vec::new()),
    };
    let amends = conn
        .query_row(
            "SELECT amends FROM run_amendments WHERE run_id = ?1",
            [run_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(StoreError::index(&index_path))?;
    let amended_by = conn
        .prepare("SELECT run_id FROM run_amendments WHERE amends = ?1 ORDER BY run_id")
        .and_then(|mut s| {
            s.query_map([run_id], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .map_err(StoreError::index(&index_path))?;
    Ok(Some(RunDetail {
        run,
        instruments,
        points,
        points_file,
        samples_file,
        amends,
        amended_by,
    }))
}

/// Every instrument calibration used by the runs dated `from..=to`, with its last use,
/// ordered by last use within (station, role, serial). The join's rows are grouped
/// here, not by SQLite: its GROUP BY sorted all 300 000 rows of a 100 000-run year
/// (0.6 s) to find a few dozen calibrations.
pub(crate) fn instrument_uses(
    store: &Path,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<InstrumentUse>, StoreError> {
    let conn = open_index(store, false)?;
    let index_path = store.join(INDEX_FILE);
    let mut stmt = conn
        .prepare(
            "SELECT r.station_id, i.role, i.model, i.serial_number, i.calibration_id, \
             i.calibration_due, r.started_utc \
             FROM run_instruments i JOIN runs r ON r.run_id = i.run_id \
             WHERE r.run_date >= ?1 AND r.run_date <= ?2",
        )
        .map_err(StoreError::index(&index_path))?;
    let mut rows = stmt
        .query(date_range(from, to))
        .map_err(StoreError::index(&index_path))?;
    let mut uses: FxHashMap<String, InstrumentUse> = FxHashMap::default();
    let mut key = String::new();
    while let Some(r) = rows.next().map_err(StoreError::index(&index_path))? {
        let field = |i: usize| -> rusqlite::Result<&str> { Ok(r.get_ref(i)?.as_str()?) };
        // The six grouped fields, joined by NUL (no field holds one).
        key.clear();
        for i in 0..6 {
            key.push_str(field(i).map_err(StoreError::index(&index_path))?);
            key.push('\0');
        }
        let last = field(6).map_err(StoreError::index(&index_path))?;
        match uses.get_mut(key.as_str()) {
            Some(u) => {
                if last > u.last_used.as_str() {
                    u.last_used = last.to_string();
                }
            }
            None => {
                let u = (|| {
                    Ok::<_, rusqlite::Error>(InstrumentUse {
                        station: r.get(0)?,
                        role: r.get(1)?,
                        model: r.get(2)?,
                        serial_number: r.get(3)?,
                        calibration_id: r.get(4)?,
                        calibration_due: date_at(r, 5)?,
                        last_used: last.to_string(),
                    })
                })()
                .map_err(StoreError::index(&index_path))?;
                uses.insert(key.clone(), u);
            }
        }
    }
    let mut uses: Vec<InstrumentUse> = uses.into_values().collect();
    uses.sort_by(|a, b| {
        (&a.station, &a.role, &a.serial_number, &a.last_used).cmp(&(
            &b.station,
            &b.role,
            &b.serial_number,
            &b.last_used,
        ))
    });
    Ok(uses)
}

/// The names the points files of the runs the index holds dated `from..=to` have
/// (`<run id>.parquet`, as [`run_file`](crate::layout::run_file) names them).
pub(crate) fn indexed_run_file_names(
    store: &Path,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<rustc_hash::FxHashSet<String>, StoreError> {
    let conn = open_index(store, false)?;
    let index_path = store.join(INDEX_FILE);
    let mut stmt = conn
        .prepare("SELECT run_id FROM runs WHERE run_date >= ?1 AND run_date <= ?2")
        .map_err(StoreError::index(&index_path))?;
    let mut rows = stmt
        .query(date_range(from, to))
        .map_err(StoreError::index(&index_path))?;
    let mut names = rustc_hash::FxHashSet::default();
    while let Some(r) = rows.next().map_err(StoreError::index(&index_path))? {
        let id = r
            .get_ref(0)
            .and_then(|v| v.as_str().map_err(Into::into))
            .map_err(StoreError::index(&index_path))?;
        names.insert(format!("{}.parquet", crate::layout::path_component(id)));
    }
    Ok(names)
}

/// The runs dated `from..=to`, counted as they are read (no row is kept but what the
/// tally keeps; no sort: the tally orders what it returns).
pub(crate) fn tally_runs(
    store: &Path,
    from: NaiveDate,
    to: NaiveDate,
    mut tally: RunTally,
) -> Result<RunTally, StoreError> {
    let conn = open_index(store, false)?;
    let index_path = store.join(INDEX_FILE);
    let mut stmt = conn
        .prepare(
            "SELECT run_id, station_id, run_date, dut_serial, procedure_id, started_utc, \
             outcome, outcome_reason, bundle_path FROM runs \
             WHERE run_date >= ?1 AND run_date <= ?2",
        )
        .map_err(StoreError::index(&index_path))?;
    let mut rows = stmt
        .query(date_range(from, to))
        .map_err(StoreError::index(&index_path))?;
    // Dates repeat run after run: parse each distinct text once.
    let mut last_date: Option<(String, NaiveDate)> = None;
    while let Some(r) = rows.next().map_err(StoreError::index(&index_path))? {
        let text = |i: usize| -> Result<&str, StoreError> {
            (|| Ok::<_, rusqlite::Error>(r.get_ref(i)?.as_str()?))()
                .map_err(StoreError::index(&index_path))
        };
        let optional = |i: usize| -> Result<Option<&str>, StoreError> {
            (|| Ok::<_, rusqlite::Error>(r.get_ref(i)?.as_str_or_null()?))()
                .map_err(StoreError::index(&index_path))
        };
        let run_id = text(0)?;
        let date_text = text(2)?;
        let date = match &last_date {
            Some((t, d)) if t == date_text => *d,
            _ => {
                let d = date_at(r, 2).map_err(StoreError::index(&index_path))?;
                last_date = Some((date_text.to_string(), d));
                d
            }
        };
        let outcome_text = text(6)?;
        let outcome = parse_outcome(outcome_text).ok_or_else(|| StoreError::Record {
            run_id: run_id.to_string(),
            message: format!("outcome {outcome_text:?} in {}", index_path.display()),
        })?;
        let problem = is_problem(outcome);
        tally.add(&AuditRun {
            run_id,
            station: text(1)?,
            date,
            serial: text(3)?,
            procedure_id: text(4)?,
            started_utc: text(5)?,
            outcome,
            reason: if problem { optional(7)? } else { None },
            bundle: if problem { Some(text(8)?) } else { None },
        });
    }
    drop(rows);
    // Serials whose first attempt at a procedure came before the range (a retest in the
    // range is no first attempt). Only when the store holds earlier runs (the date index
    // answers that at once); then each run of the range is looked up by its serial.
    let earlier = "FROM runs r WHERE r.run_date >= ?1 AND r.run_date <= ?2 AND EXISTS \
         (SELECT 1 FROM runs e WHERE e.dut_serial = r.dut_serial \
         AND e.procedure_id = r.procedure_id AND e.run_date < ?1)";
    let dates = date_range(from, to);
    let any_before: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM runs WHERE run_date < ?1)",
            [&dates[0]],
            |r| r.get(0),
        )
        .map_err(StoreError::index(&index_path))?;
    if any_before {
        let mut stmt = conn
            .prepare(&format!(
                "SELECT DISTINCT r.dut_serial, r.procedure_id {earlier}"
            ))
            .map_err(StoreError::index(&index_path))?;
        let mut rows = stmt
            .query([&dates[0], &dates[1]])
            .map_err(StoreError::index(&index_path))?;
        while let Some(r) = rows.next().map_err(StoreError::index(&index_path))? {
            let text = |i: usize| -> Result<&str, StoreError> {
                (|| Ok::<_, rusqlite::Error>(r.get_ref(i)?.as_str()?))()
                    .map_err(StoreError::index(&index_path))
            };
            tally.tried_before(text(0)?, text(1)?);
        }
    }
    Ok(tally)
}
