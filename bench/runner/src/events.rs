//! What the runner tells the world while it works; reporters (console, logs) listen.

use crate::record::{RunRecord, StepRecord};

#[derive(Debug)]
pub enum Event<'a> {
    RunStarted {
        run_id: &'a str,
        steps: usize,
    },
    StepStarted {
        index: usize,
        total: usize,
        name: &'a str,
        /// Expected duration of the step on the bench clock, s.
        expected_s: f64,
    },
    Progress {
        index: usize,
        /// Pulses counted so far on the slowest port, and pulses the step needs.
        counted: u64,
        needed: u64,
        elapsed_s: f64,
        remaining_s: f64,
    },
    StepFinished(&'a StepRecord),
    Log(&'a str),
    RunFinished(&'a RunRecord),
}

pub trait Observer {
    fn event(&mut self, event: &Event<'_>);
}

/// An observer that ignores everything (tests, batch runs).
#[derive(Debug, Default)]
pub struct Silent;

impl Observer for Silent {
    fn event(&mut self, _: &Event<'_>) {}
}
