//! A [`CanBus`] that plays a script, for protocol tests.

use std::collections::VecDeque;
use std::time::Duration;

use crate::bus::{CanBus, CanError};
use crate::frame::CanFrame;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Expect(CanFrame),
    Reply(CanFrame),
}

/// Plays a script of expected sent frames and frames to receive, in order.
///
/// [`send`](CanBus::send) panics unless the frame is exactly the next
/// expected one. [`recv`](CanBus::recv) returns the next scripted frame if
/// the script is at a reply; otherwise the bus is silent: it sleeps the
/// whole timeout and returns `None`, so timeouts run in real time (keep
/// them short in tests).
#[derive(Debug, Default)]
pub struct ScriptedBus {
    steps: VecDeque<Step>,
    played: usize,
}

impl ScriptedBus {
    pub fn new() -> Self {
        Self::default()
    }

    /// The code under test must send this frame next.
    pub fn expect(mut self, frame: CanFrame) -> Self {
        self.steps.push_back(Step::Expect(frame));
        self
    }

    /// The code under test receives this frame next.
    pub fn reply(mut self, frame: CanFrame) -> Self {
        self.steps.push_back(Step::Reply(frame));
        self
    }

    pub fn is_done(&self) -> bool {
        self.steps.is_empty()
    }

    /// Panics, listing what is left, unless the whole script was played.
    pub fn assert_done(&self) {
        assert!(
            self.steps.is_empty(),
            "ScriptedBus: {} steps played, {} left: {:?}",
            self.played,
            self.steps.len(),
            self.steps
        );
    }
}

impl CanBus for ScriptedBus {
    fn send(&mut self, frame: &CanFrame) -> Result<(), CanError> {
        match self.steps.pop_front() {
            Some(Step::Expect(expected)) if expected == *frame => {
                self.played += 1;
                Ok(())
            }
            Some(step) => panic!(
                "ScriptedBus: after {} steps, sent {frame} but the script's next step is {step:?}",
                self.played
            ),
            None => panic!(
                "ScriptedBus: sent {frame} after the end of the script ({} steps)",
                self.played
            ),
        }
    }

    fn recv(&mut self, timeout: Duration) -> Result<Option<CanFrame>, CanError> {
        if let Some(Step::Reply(frame)) = self.steps.front() {
            let frame = *frame;
            self.steps.pop_front();
            self.played += 1;
            return Ok(Some(frame));
        }
        std::thread::sleep(timeout);
        Ok(None)
    }

    fn describe(&self) -> String {
        "scripted CAN bus".into()
    }
}
