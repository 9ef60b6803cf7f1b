//! The two Parquet tables of the store, built with polars from a run record (or, for
//! points, from rows made elsewhere, e.g. by the synthesizer).

use crate::StoreError;
use crate::layout::write_atomically;
use meterbench_runner::record::{Outcome, PortResult, RunRecord};
use polars_core::prelude::*;
use polars_io::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Written into the key/value metadata of every samples file.
pub const SAMPLES_SCHEMA: &str = "meterbench.samples/1";
/// Written into the key/value metadata of every points file.
pub const POINTS_SCHEMA: &str = "meterbench.points/1";

/// Text of an outcome as in the record (`PASS`, `FAIL`, `NOT_DECIDABLE`, `ERROR`,
/// `ABORTED`, `IN_PROGRESS`).
pub fn outcome_str(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "PASS",
        Outcome::Fail => "FAIL",
        Outcome::NotDecidable => "NOT_DECIDABLE",
        Outcome::Error => "ERROR",
        Outcome::Aborted => "ABORTED",
        Outcome::InProgress => "IN_PROGRESS",
    }
}

pub fn parse_outcome(s: &str) -> Option<Outcome> {
    Some(match s {
        "PASS" => Outcome::Pass,
        "FAIL" => Outcome::Fail,
        "NOT_DECIDABLE" => Outcome::NotDecidable,
        "ERROR" => Outcome::Error,
        "ABORTED" => Outcome::Aborted,
        "IN_PROGRESS" => Outcome::InProgress,
        _ => return None,
    })
}

/// A serde enum's text (e.g. a DCC conformity value `conditionalPass`).
pub(crate) fn serde_text<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// One row per DUT pulse of the record, in record order.
pub fn samples_frame(record: &RunRecord) -> PolarsResult<DataFrame> {
    let mut step_index = Vec::new();
    let mut step_name = Vec::new();
    let mut port = Vec::new();
    let mut channel = Vec::new();
    let mut ts = Vec::new();
    let mut width = Vec::new();
    let mut refc = Vec::new();
    let mut seq = Vec::new();
    for step in &record.steps {
        for p in &step.ports {
            for s in &p.pulses {
                step_index.push(step.index as u32);
                step_name.push(step.name.as_str());
                port.push(p.port.as_str());
                channel.push(u32::from(p.counter_channel));
                ts.push(s.timestamp_ticks);
                width.push(s.width_ticks);
                refc.push(s.ref_count);
                seq.push(s.sequence);
            }
        }
    }
    let n = ts.len();
    DataFrame::new(
        n,
        vec![
            Column::new("run_id".into(), vec![record.run_id.as_str(); n]),
            Column::new("station".into(), vec![record.station.id.as_str(); n]),
            Column::new("step_index".into(), step_index),
            Column::new("step_name".into(), step_name),
            Column::new("port".into(), port),
            Column::new("counter_channel".into(), channel),
            Column::new("timestamp_ticks".into(), ts),
            Column::new("width_ticks".into(), width),
            Column::new("ref_count".into(), refc),
            Column::new("sequence".into(), seq),
            Column::new(
                "counter_timebase_hz".into(),
                vec![record.counter_timebase_hz; n],
            ),
        ],
    )
}

/// One accuracy point of one port of one run: a row of the points table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointRow {
    pub run_id: String,
    pub station: String,
    /// UTC date the run started, `YYYY-MM-DD`.
    pub date: String,
    pub started_utc: String,
    pub serial: String,
    pub dut_type: String,
    pub procedure_id: String,
    pub procedure_version: String,
    pub step_index: u32,
    pub step_name: String,
    /// `Imin`, `Itr`, `Iref`, `Imax`...
    pub current_name: String,
    pub current_a: f64,
    /// `1`, `0.5i`, `0.8c`.
    pub power_factor: String,
    /// Phases carrying current, e.g. `L1 L2 L3`.
    pub phases: String,
    pub port: String,
    pub repeats: u32,
    pub error_percent: f64,
    pub u_percent: f64,
    pub mpe_percent: f64,
    /// DCC conformity: `pass`, `fail`, `conditionalPass`, `conditionalFail`.
    pub conformity: String,
    pub accepted: bool,
    /// Outcome of the whole run.
    pub outcome: String,
}

/// The accuracy points of a record (steps without a result, e.g. after an ERROR, give
/// none); of a retested point, its latest attempt (the one the verdict rests on); of a
/// run that amends another, those it measured itself.
pub fn point_rows(record: &RunRecord, date: &str, started_utc: &str) -> Vec<PointRow> {
    let mut rows = Vec::new();
    // A run that amends another files only what it measured: the points it carried
    // over are the amended run's, filed with it (counted twice, they weighed twice in the
    // audit's distributions and control charts).
    for step in record.latest_measured_here() {
        for p in &step.ports {
            let Some(PortResult::Accuracy {
                repeats,
                error_percent,
                expanded_u_percent,
                limit,
                decision,
                ..
            }) = &p.result
            else {
                continue;
            };
            rows.push(PointRow {
                run_id: record.run_id.clone(),
                station: record.station.id.clone(),
                date: date.to_string(),
                started_utc: started_utc.to_string(),
                serial: record.dut.serial_number.clone(),
                dut_type: record.dut.device_type.clone(),
                procedure_id: record.procedure.id.clone(),
                procedure_version: record.procedure.version.clone(),
                step_index: step.index as u32,
                step_name: step.name.clone(),
                current_name: step.load.current_name.clone(),
                current_a: step.load.current_a,
                power_factor: step.load.power_factor.to_string(),
                phases: step
                    .load
                    .phases
                    .iter()
                    .map(serde_text)
                    .collect::<Vec<_>>()
                    .join(" "),
                port: p.port.clone(),
                repeats: repeats.len() as u32,
                error_percent: *error_percent,
                u_percent: *expanded_u_percent,
                mpe_percent: limit.mpe_percent,
                conformity: serde_text(&decision.conformity),
                accepted: decision.accepted,
                outcome: outcome_str(record.outcome).to_string(),
            });
        }
    }
    rows
}

pub fn points_frame(rows: &[PointRow]) -> PolarsResult<DataFrame> {
    macro_rules! col {
        ($name:literal, $f:expr) => {
            Column::new($name.into(), rows.iter().map($f).collect::<Vec<_>>())
        };
    }
    DataFrame::new(
        rows.len(),
        vec![
            col!("run_id", |r| r.run_id.as_str()),
            col!("station", |r| r.station.as_str()),
            col!("date", |r| r.date.as_str()),
            col!("started_utc", |r| r.started_utc.as_str()),
            col!("serial", |r| r.serial.as_str()),
            col!("dut_type", |r| r.dut_type.as_str()),
            col!("procedure_id", |r| r.procedure_id.as_str()),
            col!("procedure_version", |r| r.procedure_version.as_str()),
            col!("step_index", |r| r.step_index),
            col!("step_name", |r| r.step_name.as_str()),
            col!("current_name", |r| r.current_name.as_str()),
            col!("current_a", |r| r.current_a),
            col!("power_factor", |r| r.power_factor.as_str()),
            col!("phases", |r| r.phases.as_str()),
            col!("port", |r| r.port.as_str()),
            col!("repeats", |r| r.repeats),
            col!("error_percent", |r| r.error_percent),
            col!("u_percent", |r| r.u_percent),
            col!("mpe_percent", |r| r.mpe_percent),
            col!("conformity", |r| r.conformity.as_str()),
            col!("accepted", |r| r.accepted),
            col!("outcome", |r| r.outcome.as_str()),
        ],
    )
}

/// Rows of a points table read back.
pub fn point_rows_from_frame(df: &DataFrame) -> PolarsResult<Vec<PointRow>> {
    let s = |name: &str| -> PolarsResult<Vec<String>> {
        Ok(df
            .column(name)?
            .str()?
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect())
    };
    let f = |name: &str| -> PolarsResult<Vec<f64>> {
        Ok(df
            .column(name)?
            .f64()?
            .iter()
            .map(|v| v.unwrap_or(f64::NAN))
            .collect())
    };
    let u = |name: &str| -> PolarsResult<Vec<u32>> {
        Ok(df
            .column(name)?
            .u32()?
            .iter()
            .map(|v| v.unwrap_or_default())
            .collect())
    };
    let run_id = s("run_id")?;
    let station = s("station")?;
    let date = s("date")?;
    let started = s("started_utc")?;
    let serial = s("serial")?;
    let dut_type = s("dut_type")?;
    let proc_id = s("procedure_id")?;
    let proc_v = s("procedure_version")?;
    let step_index = u("step_index")?;
    let step_name = s("step_name")?;
    let current_name = s("current_name")?;
    let current_a = f("current_a")?;
    let pf = s("power_factor")?;
    let phases = s("phases")?;
    let port = s("port")?;
    let repeats = u("repeats")?;
    let err = f("error_percent")?;
    let u_pc = f("u_percent")?;
    let mpe = f("mpe_percent")?;
    let conformity = s("conformity")?;
    let accepted: Vec<bool> = df
        .column("accepted")?
        .bool()?
        .iter()
        .map(|v| v.unwrap_or(false))
        .collect();
    let outcome = s("outcome")?;
    Ok((0..df.height())
        .map(|i| PointRow {
            run_id: run_id[i].clone(),
            station: station[i].clone(),
            date: date[i].clone(),
            started_utc: started[i].clone(),
            serial: serial[i].clone(),
            dut_type: dut_type[i].clone(),
            procedure_id: proc_id[i].clone(),
            procedure_version: proc_v[i].clone(),
            step_index: step_index[i],
            step_name: step_name[i].clone(),
            current_name: current_name[i].clone(),
            current_a: current_a[i],
            power_factor: pf[i].clone(),
            phases: phases[i].clone(),
            port: port[i].clone(),
            repeats: repeats[i],
            error_percent: err[i],
            u_percent: u_pc[i],
            mpe_percent: mpe[i],
            conformity: conformity[i].clone(),
            accepted: accepted[i],
            outcome: outcome[i].clone(),
        })
        .collect())
}

/// Parquet bytes of `df`: zstd, statistics on, single-threaded column encoding and
/// only fixed metadata, so the same frame always gives the same bytes.
pub(crate) fn parquet_bytes(
    df: &mut DataFrame,
    schema_tag: &str,
    what: &str,
) -> Result<Vec<u8>, StoreError> {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Zstd(None))
        .set_parallel(false)
        .with_key_value_metadata(Some(KeyValueMetadata::from_static(vec![(
            "meterbench.schema".to_string(),
            schema_tag.to_string(),
        )])))
        .finish(df)
        .map_err(StoreError::polars(what))?;
    Ok(buf)
}

/// Read a whole Parquet file into a frame.
pub fn read_parquet(path: &Path) -> Result<DataFrame, StoreError> {
    let f = std::fs::File::open(path).map_err(StoreError::io(path))?;
    ParquetReader::new(f)
        .finish()
        .map_err(StoreError::polars(format!("reading {}", path.display())))
}

/// Write the raw pulses of `record` to `path` as Parquet, one row per pulse: run_id,
/// station, step_index, step_name, port, counter_channel, timestamp_ticks, width_ticks,
/// ref_count, sequence, counter_timebase_hz.
///
/// The bytes depend on the record only (no clock, no random ids), so a signed bundle's
/// `samples.parquet` can be re-created and compared. Call it before the bundle is
/// signed; the store never writes into a bundle afterwards.
pub fn write_samples_parquet(record: &RunRecord, path: &Path) -> Result<(), StoreError> {
    let bytes = samples_parquet_bytes(record)?;
    write_atomically(path, &bytes)
}

pub(crate) fn samples_parquet_bytes(record: &RunRecord) -> Result<Vec<u8>, StoreError> {
    let what = format!("samples of run {}", record.run_id);
    let mut df = samples_frame(record).map_err(StoreError::polars(&what))?;
    parquet_bytes(&mut df, SAMPLES_SCHEMA, &what)
}

pub(crate) fn points_parquet_bytes(rows: &[PointRow], what: &str) -> Result<Vec<u8>, StoreError> {
    let mut df = points_frame(rows).map_err(StoreError::polars(what))?;
    parquet_bytes(&mut df, POINTS_SCHEMA, what)
}
