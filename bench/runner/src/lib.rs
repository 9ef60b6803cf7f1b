//! Executes a validated procedure on a bench of instruments bound to roles, measuring
//! every device of the rack from one load, and builds one run record per device. One
//! run lifecycle serves every kind of device under test: a meter (pulses against the
//! reference) and a current sensor (readings against the reference current) are two
//! implementations of one measuring seam. Safety is structural: the source is behind a
//! guard that switches it off however the run ends.

mod ambient;
pub mod events;
pub mod identity;
mod lifecycle;
mod load_difference;
mod measure;
pub mod operator;
pub mod plan;
mod pulses;
mod questions;
mod readings;
pub mod record;
pub mod safety;
mod station_steps;

pub use events::{Collect, Event, EventKind, FanOut, Observer, PortProgress, Silent};
pub use lifecycle::{run, run_id_base};
pub use plan::{Action, PlannedStep, expected_energised_s, plan};
pub use questions::{check_answers, check_scanned_serial, questions};
pub use record::{Outcome, RunRecord, StepKind};

use chrono::NaiveDate;
use meterbench_instruments::{
    AcSource, ClimateSensor, Clock, CurrentSensor, DutSoftware, InstrumentError, PulseCounter,
    ReferenceStandard,
};
use meterbench_procedure::{DataError, DutFixture, DutProcedure, Station};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// The shared instruments of a station, bound to their roles.
pub struct Bench<'a> {
    pub source: &'a mut dyn AcSource,
    pub reference: &'a mut dyn ReferenceStandard,
    /// One per counter of the station, in the station's order.
    pub counters: Vec<&'a mut dyn PulseCounter>,
    pub clock: &'a mut dyn Clock,
    /// The air temperature and humidity sensor, when the station has one.
    pub climate: Option<&'a mut dyn ClimateSensor>,
    /// Who answers the procedure's questions (LCD readings, seals, scans); `None`: no
    /// one, and a step that asks ends as ERROR.
    pub operator: Option<&'a mut dyn operator::Operator>,
}

/// A device under test at its position, with its own interfaces.
pub struct Mounted<'a> {
    /// The rack position (the station's number).
    pub position: u32,
    /// The device's serial number, as scanned or typed.
    pub serial: String,
    /// Its software identity and register interface (CAN), if bound.
    pub software: Option<&'a mut dyn DutSoftware>,
    /// A current sensor's own readings (P1), if bound.
    pub sensor: Option<&'a mut dyn CurrentSensor>,
    /// A stored record this run continues (a later session's retest): its steps are
    /// carried over and the new attempts appended.
    pub prior: Option<RunRecord>,
}

/// What to run, on what, and where the records go.
pub struct RunRequest<'a> {
    pub procedure: &'a DutProcedure,
    pub fixture: &'a DutFixture,
    pub station: &'a Station,
    /// Run folders are created under this directory, session records under `sessions/`.
    pub reports_dir: PathBuf,
    /// Set by Ctrl-C / SIGTERM handlers (or a panel's Stop); the runner stops at the
    /// next poll.
    pub abort: Arc<AtomicBool>,
    /// Calibration due dates are checked against this day.
    pub today: NaiveDate,
    /// Only these steps of the plan (by index), e.g. a retest; all when `None`.
    pub only_steps: Option<Vec<usize>>,
    /// After the plan, measure each failed or undecided point of a position once more.
    pub retest_failed: bool,
    /// What the bench learnt before this run about earlier ones (e.g. a guard's report
    /// that it switched the source off after a bench process died): logged in every
    /// record at the start.
    pub startup_notes: Vec<String>,
    /// The customer and the item's receipt, recorded in every run of the session.
    pub order: Option<record::Order>,
    /// Who authorises the session's documents.
    pub signatory: Option<record::Signatory>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad or inconsistent data: nothing was switched on.
    #[error("{0}")]
    Data(#[from] DataError),
    #[error("cannot write the run record {path}: {source}")]
    Record {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A finished run of one device: its record and where it was written.
#[derive(Debug)]
pub struct Finished {
    pub record: RunRecord,
    pub record_path: PathBuf,
}

/// A finished session: every device's run, in position order.
#[derive(Debug)]
pub struct Session {
    pub session_id: String,
    pub runs: Vec<Finished>,
    /// Where the session record (the list of runs) was written.
    pub session_path: PathBuf,
}

impl Session {
    /// The worst outcome over the positions: ERROR or ABORTED before FAIL before PASS.
    pub fn outcome(&self) -> Outcome {
        worst(self.runs.iter().map(|r| r.record.outcome))
    }
}

/// The worst of some outcomes (PASS when there are none).
pub fn worst(outcomes: impl Iterator<Item = Outcome>) -> Outcome {
    let rank = |o: Outcome| match o {
        Outcome::Pass => 0,
        Outcome::NotDecidable => 1,
        Outcome::Fail => 2,
        Outcome::InProgress => 3,
        Outcome::Error => 4,
        Outcome::Aborted => 5,
    };
    outcomes.max_by_key(|o| rank(*o)).unwrap_or(Outcome::Pass)
}

/// Why a step stopped early.
#[derive(Debug)]
pub(crate) enum StepStop {
    Instrument(InstrumentError),
    /// A fault of the bench that makes the measurement invalid for every position.
    Bench(String),
    /// A fault of the one position a step function was working on (e.g. no valid
    /// answer about it); the step function makes it that position's ERROR.
    Position(String),
    Aborted,
}

impl From<InstrumentError> for StepStop {
    fn from(e: InstrumentError) -> Self {
        StepStop::Instrument(e)
    }
}
