//! Helpers shared by the session tests: the repository, sessions on its stations, a
//! counter that misbehaves.
#![allow(dead_code)] // each test file uses its part

use meterbench_instruments::{
    ChannelConfig, CounterBatch, InstrumentResult, PulseCounter, ReferenceCount,
};
use meterbench_runner::Silent;
use meterbench_session::{BoundStation, Prepared, SessionError, SessionOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A day on which every simulated calibration is valid.
pub fn today() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()
}

/// Options for `procedure` on `fixture` at `station` (repository paths), reports into
/// `reports`.
pub fn options(procedure: &str, fixture: &str, station: &str, reports: &Path) -> SessionOptions {
    let mut o = SessionOptions::new(today());
    o.procedure = repo().join(procedure);
    o.fixture = repo().join(fixture);
    o.station = repo().join(station);
    o.reports = reports.to_path_buf();
    o
}

/// A copy of a repository file with `from` replaced by `to`, in `dir`.
pub fn edited(rel: &str, from: &str, to: &str, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo().join(rel)).unwrap();
    assert!(text.contains(from), "{rel}: {from}");
    let path = dir.join(Path::new(rel).file_name().unwrap());
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    path
}

/// Load, bind and run a session quietly: the session and the bound station (its
/// simulated world to look at afterwards).
pub fn run(
    options: SessionOptions,
) -> Result<(meterbench_runner::Session, BoundStation), SessionError> {
    run_prepared(&Prepared::load(options)?)
}

/// Bind and run a loaded (perhaps edited) session quietly.
pub fn run_prepared(
    prepared: &Prepared,
) -> Result<(meterbench_runner::Session, BoundStation), SessionError> {
    let mut bound = prepared.bind()?;
    let session = prepared.run(
        &mut bound,
        None,
        Arc::new(AtomicBool::new(false)),
        &mut Silent,
    )?;
    Ok((session, bound))
}

pub fn source_is_off(b: &BoundStation) -> bool {
    b.simulated_output_is_on() == Some(false)
}

pub fn source_was_ever_on(b: &BoundStation) -> bool {
    b.world
        .as_ref()
        .unwrap()
        .lock()
        .unwrap()
        .source_was_ever_on()
}

/// A placeholder while a counter is being wrapped.
struct Gone;

impl PulseCounter for Gone {
    fn identity(&mut self) -> InstrumentResult<meterbench_instruments::InstrumentIdentity> {
        unreachable!()
    }
    fn timebase_hz(&self) -> f64 {
        unreachable!()
    }
    fn arm(&mut self, _: &[ChannelConfig]) -> InstrumentResult<()> {
        unreachable!()
    }
    fn disarm(&mut self) -> InstrumentResult<()> {
        unreachable!()
    }
    fn drain(&mut self) -> InstrumentResult<CounterBatch> {
        unreachable!()
    }
    fn reference_count(&mut self) -> InstrumentResult<ReferenceCount> {
        unreachable!()
    }
}

/// Replace a bound counter by a wrapper around it.
pub fn wrap_counter(
    b: &mut BoundStation,
    k: usize,
    wrap: impl FnOnce(Box<dyn PulseCounter>) -> Box<dyn PulseCounter>,
) {
    let inner = std::mem::replace(&mut b.counters[k], Box::new(Gone));
    b.counters[k] = wrap(inner);
}
