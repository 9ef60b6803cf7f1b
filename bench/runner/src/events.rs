//! What the runner tells the world while it works: a stream of timestamped events, per
//! position and per port, that serialises to JSON (a console, a log file and the station
//! panel read the same stream). It is the only way progress leaves the runner.

use crate::record::{Outcome, StepKind, StepRecord};
use meterbench_instruments::SourceSetpoint;
use serde::{Deserialize, Serialize};

/// One event: when it happened and what.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// Wall-clock time, RFC 3339 UTC.
    pub at_utc: String,
    /// Bench time since the session began, s (virtual on the simulated bench).
    pub bench_s: f64,
    #[serde(flatten)]
    pub what: EventKind,
}

/// A device at its position, as the session starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionStart {
    pub position: u32,
    pub serial: String,
    pub run_id: String,
}

/// A step of the plan, as the session starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOutline {
    pub index: usize,
    pub name: String,
    pub kind: StepKind,
    /// Expected duration on the bench clock, s.
    pub expected_s: f64,
}

/// How far one port of one position is in the step under way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortProgress {
    pub position: u32,
    pub port: String,
    /// Pulses (or readings) counted so far, and how many the step needs (0: a step that
    /// runs for a time and expects none, e.g. the no-load test).
    pub counted: u64,
    pub needed: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    SessionStarted {
        session_id: String,
        station: String,
        procedure: String,
        positions: Vec<PositionStart>,
        steps: Vec<StepOutline>,
    },
    StepStarted {
        index: usize,
        name: String,
        kind: StepKind,
        attempt: u32,
        /// The positions this step measures.
        positions: Vec<u32>,
        /// Expected duration on the bench clock, s.
        expected_s: f64,
    },
    /// The source holds a new setpoint (or is off): the live load.
    Load { on: bool, setpoint: SourceSetpoint },
    Progress {
        index: usize,
        elapsed_s: f64,
        /// Estimated time until the slowest position is done, s.
        remaining_s: f64,
        /// Empty while nothing is counted yet (the source settling).
        ports: Vec<PortProgress>,
    },
    /// A position's result of a step (raw pulses left out: they are in the record).
    StepFinished {
        position: u32,
        step: Box<StepRecord>,
    },
    Log {
        position: Option<u32>,
        message: String,
    },
    /// A position's run has ended: its verdict; its record and bundle follow.
    PositionFinished {
        position: u32,
        run_id: String,
        outcome: Outcome,
        reason: Option<String>,
    },
    SessionFinished {
        /// The worst outcome over the positions.
        outcome: Outcome,
        bench_duration_s: f64,
    },
}

pub trait Observer {
    fn event(&mut self, event: &Event);
}

/// An observer that ignores everything (tests, batch runs).
#[derive(Debug, Default)]
pub struct Silent;

impl Observer for Silent {
    fn event(&mut self, _: &Event) {}
}

/// Every event, kept (tests, and a session's event log).
#[derive(Debug, Default)]
pub struct Collect(pub Vec<Event>);

impl Observer for Collect {
    fn event(&mut self, event: &Event) {
        self.0.push(event.clone());
    }
}

/// Several observers, each sent every event in turn.
pub struct FanOut<'a>(pub Vec<&'a mut dyn Observer>);

impl Observer for FanOut<'_> {
    fn event(&mut self, event: &Event) {
        for o in &mut self.0 {
            o.event(event);
        }
    }
}
