//! Loss and order checks over the device's event stream.

use crate::message::{DeviceMessage, edge_flags};

/// Something that makes the measurement since Arm untrustworthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    /// Edges never arrived: lost between device and host. `expected` is what
    /// the checked sequence should have been (the next Edge's, or for a
    /// Heartbeat or Pong the last Edge seen); `got - expected` edges were lost.
    #[error("edges lost on the link: expected sequence {expected}, got {got}")]
    Gap {
        /// The sequence this message should have carried.
        expected: u32,
        /// The sequence it carried.
        got: u32,
    },
    /// A sequence at or before one already seen: duplicated or reordered.
    #[error("edge sequence went backwards: {got} after {last}")]
    Reorder {
        /// The highest sequence seen so far.
        last: u32,
        /// The sequence that came.
        got: u32,
    },
    /// The device's cumulative `dropped_events` changed: it rose because the
    /// device could not queue events, or fell because the device was reset or
    /// re-armed behind the host's back.
    #[error("the counter dropped events: its drop count went from {before} to {now}")]
    DroppedEvents {
        /// Count at the previous heartbeat.
        before: u32,
        /// Count at this heartbeat.
        now: u32,
    },
    /// An Edge carries [`edge_flags::DROPPED_BEFORE`].
    #[error("the counter dropped events before edge {sequence}")]
    DroppedBefore {
        /// Sequence of the flagged Edge.
        sequence: u32,
    },
}

/// Tracks the Edge sequence and the device's drop counter from one Arm on.
///
/// Create (or [`reset`](Self::reset)) it when the Ack of Arm arrives (frames
/// before that Ack belong to the previous arming); then feed it every
/// decoded [`DeviceMessage`] through [`observe`](Self::observe). Any error
/// means the pulse count since Arm cannot be trusted. Comparisons use serial
/// number arithmetic (RFC 1982), so a wrap of the 32-bit sequence is not a gap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SequenceTracker {
    last: u32,
    dropped: u32,
}

impl SequenceTracker {
    /// State right after Arm: no Edge seen, nothing dropped.
    pub const fn new() -> Self {
        Self {
            last: 0,
            dropped: 0,
        }
    }

    /// Back to the state right after Arm.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Sequence of the last Edge seen (0 if none).
    pub fn last_sequence(&self) -> u32 {
        self.last
    }

    /// Checks any device message: Edge sequences, the `sequence` of a
    /// Heartbeat, the `last_sequence` of a Pong, `dropped_events` and the
    /// Edge drop flag. Other messages pass. State is updated even on error so
    /// one lost frame is reported once, not on every later message.
    pub fn observe(&mut self, msg: &DeviceMessage) -> Result<(), SequenceError> {
        match msg {
            DeviceMessage::Edge(e) => {
                self.edge(e.sequence)?;
                if e.flags & edge_flags::DROPPED_BEFORE != 0 {
                    return Err(SequenceError::DroppedBefore {
                        sequence: e.sequence,
                    });
                }
                Ok(())
            }
            DeviceMessage::Heartbeat(h) => {
                let order = self.last_sent(h.sequence);
                let drops = self.dropped_events(h.dropped_events);
                order.and(drops)
            }
            DeviceMessage::Pong(p) => self.last_sent(p.last_sequence),
            _ => Ok(()),
        }
    }

    /// Checks the sequence of an Edge: it must be the last one plus 1.
    pub fn edge(&mut self, sequence: u32) -> Result<(), SequenceError> {
        let expected = self.last.wrapping_add(1);
        self.advance(expected, sequence)
    }

    /// Checks a "last Edge sent" sequence (Heartbeat, Pong): it must equal the
    /// last Edge seen; a higher value means the Edges in between were lost.
    pub fn last_sent(&mut self, sequence: u32) -> Result<(), SequenceError> {
        let expected = self.last;
        self.advance(expected, sequence)
    }

    /// Checks a Heartbeat's cumulative `dropped_events`.
    pub fn dropped_events(&mut self, now: u32) -> Result<(), SequenceError> {
        let before = core::mem::replace(&mut self.dropped, now);
        if now == before {
            Ok(())
        } else {
            Err(SequenceError::DroppedEvents { before, now })
        }
    }

    fn advance(&mut self, expected: u32, got: u32) -> Result<(), SequenceError> {
        // Serial number arithmetic: the signed distance tells ahead from behind.
        match got.wrapping_sub(expected) as i32 {
            0 => {
                self.last = got;
                Ok(())
            }
            d if d > 0 => {
                self.last = got;
                Err(SequenceError::Gap { expected, got })
            }
            _ => Err(SequenceError::Reorder {
                last: self.last,
                got,
            }),
        }
    }
}
