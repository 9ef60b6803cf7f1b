//! The seam between the run lifecycle and a kind of device under test, and what every
//! step shares: the bench clock, the source guard, the operator, the event stream.

use crate::events::{Event, EventKind, Observer, PortProgress};
use crate::operator::{Operator, OperatorError, Question};
use crate::plan::PlannedStep;
use crate::record::{Outcome, PortRecord, SourceSwitch, StepRecord};
use crate::safety::SourceGuard;
use crate::{RunRequest, StepStop};
use meterbench_instruments::{
    Clock, DutSoftware, InstrumentError, InstrumentIdentity, SourceSetpoint,
};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How the devices of one kind are measured while the bench holds a load. A meter gives
/// LED pulses that a counter timestamps against the reference; a current sensor gives
/// readings of its own. The run lifecycle (plan, safety, positions, stop rules,
/// records) is the same for both; adding a kind is one more implementation.
pub(crate) trait Measuring {
    /// The station's instruments the device at `device` is measured with (for its
    /// record), by id: `source` always, `reference` and its counters for meters.
    fn instruments(&self, device: usize) -> Vec<String>;

    /// The nominal timebase of the counter timestamping `device`'s pulses, Hz (0: none).
    fn timebase_hz(&self, device: usize) -> f64;

    /// Identify the instruments this kind reads through and make them ready (configure
    /// the reference's pulse output, arm the counters): what each reported, by id.
    fn prepare(
        &mut self,
        ctx: &mut Ctx<'_, '_>,
    ) -> Result<Vec<(String, InstrumentIdentity)>, InstrumentError>;

    /// The ports (or channels) of the device at `device`, as its step records list them.
    fn port_records(&self, device: usize) -> Vec<PortRecord>;

    /// The word for a port in messages: `port` (a meter's), `channel` (a sensor's).
    fn port_word(&self) -> &'static str;

    /// Measure one step at the slots' positions, filling each slot's record. A fault of
    /// one position (a dark LED, a silent sensor) is that slot's ERROR; the others go
    /// on. A fault of the bench (source, reference, counter link) is the error returned.
    fn measure(
        &mut self,
        ps: &PlannedStep,
        slots: &mut [Slot],
        ctx: &mut Ctx<'_, '_>,
    ) -> Result<(), StepStop>;

    /// Round trips to its instruments so far.
    fn polls(&self) -> u64;

    /// The run is over (the source is off): release the instruments.
    fn release(&mut self);
}

/// One position's part of a step.
#[derive(Debug)]
pub(crate) struct Slot {
    /// Index into the session's devices.
    pub device: usize,
    pub step: StepRecord,
}

impl Slot {
    /// A fault of this position: the step is an ERROR for it alone.
    pub fn fault(&mut self, message: String) {
        self.step.outcome = Outcome::Error;
        self.step.message = Some(message);
    }

    pub fn is_faulted(&self) -> bool {
        self.step.outcome == Outcome::Error
    }
}

/// A device of the session as the steps see it.
pub(crate) struct Device<'a> {
    pub position: u32,
    pub serial: String,
    pub software: Option<&'a mut dyn DutSoftware>,
}

/// What every step shares.
pub(crate) struct Ctx<'r, 'a> {
    pub req: &'r RunRequest<'r>,
    pub clock: &'a mut dyn Clock,
    /// The station's climate sensor, when it has one.
    pub climate: Option<&'a mut dyn meterbench_instruments::ClimateSensor>,
    pub observer: &'a mut dyn Observer,
    pub operator: Option<&'a mut dyn Operator>,
    pub guard: SourceGuard<'a>,
    pub t_start: Duration,
    pub devices: Vec<Device<'a>>,
    /// The station's rack has several positions: questions show theirs.
    pub rack: bool,
    /// Source switchings not yet taken into the records, stamped when they happened.
    pub switches: Vec<SourceSwitch>,
    /// The step under way, for progress while nothing is counted (the source settling).
    pub step_under_way: Option<StepUnderWay>,
}

/// A step as started: its index, when (bench time, s) and how long it is expected to take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepUnderWay {
    pub index: usize,
    pub started_s: f64,
    pub expected_s: f64,
}

impl Ctx<'_, '_> {
    pub fn elapsed_s(&self) -> f64 {
        (self.clock.now() - self.t_start).as_secs_f64()
    }

    /// Stamp the guard's switchings with the bench time, to be recorded.
    pub fn note_switches(&mut self) {
        let t_s = self.elapsed_s();
        for (on, confirmed, why) in self.guard.take_switches() {
            self.switches.push(SourceSwitch {
                t_s,
                on,
                confirmed,
                why: why.to_string(),
            });
        }
    }

    /// The switchings noted since the last call.
    pub fn take_switches(&mut self) -> Vec<SourceSwitch> {
        self.note_switches();
        std::mem::take(&mut self.switches)
    }

    pub fn aborted(&self) -> bool {
        self.req.abort.load(Ordering::SeqCst)
    }

    pub fn emit(&mut self, what: EventKind) {
        let event = Event {
            at_utc: chrono::Utc::now().to_rfc3339(),
            bench_s: self.elapsed_s(),
            what,
        };
        self.observer.event(&event);
    }

    pub fn progress(
        &mut self,
        index: usize,
        elapsed_s: f64,
        remaining_s: f64,
        ports: Vec<PortProgress>,
    ) {
        self.emit(EventKind::Progress {
            index,
            elapsed_s,
            remaining_s,
            ports,
        });
    }

    /// Program a setpoint with the output on, and say so.
    pub fn energise(&mut self, setpoint: &SourceSetpoint) -> Result<(), StepStop> {
        let energised = self.guard.energise(setpoint);
        self.note_switches();
        energised?;
        self.emit(EventKind::Load {
            on: true,
            setpoint: *setpoint,
        });
        Ok(())
    }

    /// Sleep on the bench clock in slices, so a stop request is seen promptly.
    /// On a paced clock the step's progress (time elapsed and left, nothing counted yet)
    /// is told at least every display refresh, so a settling source does not look stuck.
    pub fn wait(&mut self, seconds: f64) -> Result<(), StepStop> {
        let refresh = self
            .clock
            .rate()
            .map(|r| crate::pulses::DISPLAY_REFRESH_WALL_S * r);
        let mut left = seconds;
        let mut since_told = 0.0;
        while left > 0.0 {
            if self.aborted() {
                return Err(StepStop::Aborted);
            }
            let slice = left.min(0.25);
            self.clock.sleep(Duration::from_secs_f64(slice));
            left -= slice;
            since_told += slice;
            if let (Some(refresh), Some(step)) = (refresh, self.step_under_way)
                && since_told >= refresh
                && left > 0.0
            {
                since_told = 0.0;
                let elapsed = self.elapsed_s() - step.started_s;
                self.progress(
                    step.index,
                    elapsed,
                    (step.expected_s - elapsed).max(left),
                    Vec::new(),
                );
            }
        }
        Ok(())
    }

    /// Sleep on the bench clock; a stop request ends it.
    pub fn sleep(&mut self, seconds: f64) -> Result<(), StepStop> {
        if self.aborted()
            || !self
                .clock
                .sleep_unless(Duration::from_secs_f64(seconds), &self.req.abort)
        {
            return Err(StepStop::Aborted);
        }
        Ok(())
    }

    /// Ask the operator (or the answers file) one question of step `ps` about the device
    /// at `device` (the question as [`crate::questions`] builds it).
    pub fn ask(
        &mut self,
        device: usize,
        ps: &PlannedStep,
        question: &Question,
    ) -> Result<String, StepStop> {
        let position = self.devices[device].position;
        let show_position = self.rack;
        let Some(op) = self.operator.as_deref_mut() else {
            return Err(StepStop::Bench(format!(
                "step `{}` asks the operator ({}), but no operator or answers file is there to answer",
                ps.name, question.key
            )));
        };
        op.ask(&Question {
            position: Some(position),
            show_position,
            ..question.clone()
        })
        .map_err(|e| match e {
            // Ctrl-C or SIGTERM while the question was open.
            OperatorError::Stopped { .. } => StepStop::Aborted,
            // No valid answer for this device: its run cannot go on, the others can.
            e => StepStop::Position(e.to_string()),
        })
    }
}
