//! The single ordered stream of device messages (PROTOCOL.md §7: "Edges,
//! Heartbeats, Pongs and Acks go through one FIFO").
//!
//! Edges live in the [`EdgeQueue`] (which may drop); replies never drop and wait
//! in a small control ring. Each reply carries a *barrier*: the sequence number of
//! the last Edge queued before it. It is sent once every Edge up to its barrier has
//! been sent, so a Pong follows the Edges it flushed and a Disarm Ack follows the
//! last Edge of the arming, while later Edges may overtake nothing. Heartbeats and
//! Pongs take their "last Edge sent" field at the moment they are sent, so it is
//! exactly what the host has seen before them.

use crate::protocol::{DeviceMessage, Heartbeat, Pong, heartbeat_flags};
use crate::queue::EdgeQueue;

/// Replies that can wait at once; the host sends one command at a time and waits
/// for its reply, so more only pile up when it floods (the excess is refused).
pub const CONTROL_CAPACITY: usize = 8;

/// State of the counter needed to build a Heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// Ticks now.
    pub ticks: u64,
    /// Reference count now.
    pub ref_count: u64,
    /// The timebase runs on the external 10 MHz reference.
    pub external_clock: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    Message(DeviceMessage),
    Pong { token: u32, timestamp_ticks: u64 },
}

const NO_CONTROL: (Control, u32) = (Control::Message(DeviceMessage::Ack { message_id: 0 }), 0);

/// Orders Edges, replies and Heartbeats into one stream.
#[derive(Debug, Clone)]
pub struct Output<const N: usize> {
    edges: EdgeQueue<N>,
    controls: [(Control, u32); CONTROL_CAPACITY],
    control_head: usize,
    control_len: usize,
    last_sent: u32,
    heartbeat_due: bool,
}

impl<const N: usize> Default for Output<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Output<N> {
    /// Nothing queued, nothing sent.
    pub const fn new() -> Self {
        Self {
            edges: EdgeQueue::new(),
            controls: [NO_CONTROL; CONTROL_CAPACITY],
            control_head: 0,
            control_len: 0,
            last_sent: 0,
            heartbeat_due: false,
        }
    }

    /// The Edge queue (to push pulses and record drops).
    pub fn edges(&mut self) -> &mut EdgeQueue<N> {
        &mut self.edges
    }

    /// Read access to the Edge queue.
    pub const fn edges_ref(&self) -> &EdgeQueue<N> {
        &self.edges
    }

    /// Arm: unsent Edges of the previous arming are discarded and numbering
    /// restarts; replies still waiting go out first, before anything new.
    pub fn reset_for_arm(&mut self) {
        self.edges.reset();
        self.last_sent = 0;
        for i in 0..self.control_len {
            self.controls[(self.control_head + i) % CONTROL_CAPACITY].1 = 0;
        }
    }

    /// Queues a reply behind every Edge queued so far. Returns false (and drops
    /// the reply) if the control ring is full.
    pub fn push_reply(&mut self, msg: DeviceMessage) -> bool {
        self.push_control(Control::Message(msg))
    }

    /// Queues a Pong behind every Edge queued so far; its `last_sequence` is
    /// filled in when it is sent.
    pub fn push_pong(&mut self, token: u32, timestamp_ticks: u64) -> bool {
        self.push_control(Control::Pong {
            token,
            timestamp_ticks,
        })
    }

    fn push_control(&mut self, c: Control) -> bool {
        if self.control_len == CONTROL_CAPACITY {
            return false;
        }
        let barrier = self.edges.last_queued();
        self.controls[(self.control_head + self.control_len) % CONTROL_CAPACITY] = (c, barrier);
        self.control_len += 1;
        true
    }

    /// Asks for a Heartbeat as soon as the link is free (at most one pending).
    pub fn request_heartbeat(&mut self) {
        self.heartbeat_due = true;
    }

    /// Sequence of the last Edge sent (0 if none since Arm).
    pub const fn last_sent(&self) -> u32 {
        self.last_sent
    }

    /// Nothing waits to be sent.
    pub const fn is_idle(&self) -> bool {
        self.control_len == 0 && !self.heartbeat_due && self.edges.is_empty()
    }

    /// The next message to send, in protocol order. `snapshot` is called only
    /// when a Heartbeat is built.
    pub fn next(&mut self, snapshot: impl FnOnce() -> Snapshot) -> Option<DeviceMessage> {
        if self.control_len > 0 {
            let (c, barrier) = self.controls[self.control_head];
            // Serial number arithmetic: the barrier is reached when it is not ahead.
            if (barrier.wrapping_sub(self.last_sent) as i32) <= 0 {
                self.control_head = (self.control_head + 1) % CONTROL_CAPACITY;
                self.control_len -= 1;
                return Some(match c {
                    Control::Message(m) => m,
                    Control::Pong {
                        token,
                        timestamp_ticks,
                    } => DeviceMessage::Pong(Pong {
                        token,
                        timestamp_ticks,
                        last_sequence: self.last_sent,
                    }),
                });
            }
        }
        if core::mem::take(&mut self.heartbeat_due) {
            let s = snapshot();
            let mut flags = 0;
            if self.edges.take_overflow() {
                flags |= heartbeat_flags::OVERFLOW;
            }
            if s.external_clock {
                flags |= heartbeat_flags::EXTERNAL_CLOCK;
            }
            return Some(DeviceMessage::Heartbeat(Heartbeat {
                sequence: self.last_sent,
                timestamp_ticks: s.ticks,
                ref_count: s.ref_count,
                dropped_events: self.edges.dropped_events(),
                flags,
            }));
        }
        let e = self.edges.pop()?;
        self.last_sent = e.sequence;
        Some(DeviceMessage::Edge(e))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;
    use crate::pairing::Pulse;
    use crate::protocol::{SequenceTracker, id};

    fn pulse(t: u64) -> Pulse {
        Pulse {
            channel: 0,
            timestamp_ticks: t,
            width_ticks: 0,
            ref_count: 0,
        }
    }

    fn snap() -> Snapshot {
        Snapshot {
            ticks: 99,
            ref_count: 7,
            external_clock: false,
        }
    }

    fn drain<const N: usize>(o: &mut Output<N>) -> Vec<DeviceMessage> {
        core::iter::from_fn(|| o.next(snap)).collect()
    }

    #[test]
    fn a_reply_follows_the_edges_queued_before_it() {
        let mut o = Output::<16>::new();
        o.edges().push(&pulse(1), false);
        o.edges().push(&pulse(2), false);
        o.push_pong(0xAB, 1_000);
        o.edges().push(&pulse(3), false);
        let m = drain(&mut o);
        assert!(matches!(m[0], DeviceMessage::Edge(e) if e.sequence == 1));
        assert!(matches!(m[1], DeviceMessage::Edge(e) if e.sequence == 2));
        assert_eq!(
            m[2],
            DeviceMessage::Pong(Pong {
                token: 0xAB,
                timestamp_ticks: 1_000,
                last_sequence: 2
            })
        );
        assert!(matches!(m[3], DeviceMessage::Edge(e) if e.sequence == 3));
        assert!(o.is_idle());
    }

    #[test]
    fn heartbeats_carry_the_last_edge_sent_and_drops() {
        let mut o = Output::<2>::new();
        o.edges().push(&pulse(1), false);
        o.edges().push(&pulse(2), false);
        o.edges().push(&pulse(3), false); // dropped
        assert!(matches!(o.next(snap), Some(DeviceMessage::Edge(_))));
        o.request_heartbeat();
        let Some(DeviceMessage::Heartbeat(h)) = o.next(snap) else {
            panic!("heartbeat expected");
        };
        assert_eq!(
            (h.sequence, h.dropped_events, h.timestamp_ticks, h.ref_count),
            (1, 1, 99, 7)
        );
        assert_eq!(h.flags, heartbeat_flags::OVERFLOW);
        o.request_heartbeat();
        o.request_heartbeat();
        let beats = drain(&mut o)
            .into_iter()
            .filter(|m| matches!(m, DeviceMessage::Heartbeat(_)))
            .count();
        assert_eq!(beats, 1, "requests coalesce");
    }

    #[test]
    fn arm_discards_edges_and_its_ack_comes_first() {
        let mut o = Output::<8>::new();
        for t in 0..5 {
            o.edges().push(&pulse(t), false);
        }
        o.next(snap);
        o.push_reply(DeviceMessage::Ack {
            message_id: id::CONFIGURE_CHANNEL,
        });
        o.reset_for_arm();
        o.push_reply(DeviceMessage::Ack {
            message_id: id::ARM,
        });
        o.request_heartbeat();
        o.edges().push(&pulse(100), false);
        let m = drain(&mut o);
        assert_eq!(
            m[0],
            DeviceMessage::Ack {
                message_id: id::CONFIGURE_CHANNEL
            }
        );
        assert_eq!(
            m[1],
            DeviceMessage::Ack {
                message_id: id::ARM
            }
        );
        assert!(matches!(m[2], DeviceMessage::Heartbeat(h) if h.sequence == 0));
        assert!(
            matches!(m[3], DeviceMessage::Edge(e) if e.sequence == 1 && e.timestamp_ticks == 100)
        );
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn the_host_tracker_accepts_the_stream() {
        // Whatever the interleaving, the host's SequenceTracker sees no error.
        let mut o = Output::<64>::new();
        let mut tracker = SequenceTracker::new();
        let mut sent = 0;
        for round in 0..50u64 {
            for k in 0..(round % 4) {
                o.edges().push(&pulse(round * 10 + k), false);
            }
            if round % 3 == 0 {
                o.push_pong(round as u32, round);
            }
            if round % 5 == 0 {
                o.request_heartbeat();
            }
            for _ in 0..(round % 3) {
                if let Some(m) = o.next(snap) {
                    tracker.observe(&m).unwrap();
                    sent += 1;
                }
            }
        }
        for m in drain(&mut o) {
            tracker.observe(&m).unwrap();
            sent += 1;
        }
        assert!(sent > 80);
        assert_eq!(tracker.last_sequence(), o.last_sent());
    }

    #[test]
    fn replies_beyond_the_ring_are_refused() {
        let mut o = Output::<4>::new();
        for _ in 0..CONTROL_CAPACITY {
            assert!(o.push_reply(DeviceMessage::Ack { message_id: 1 }));
        }
        assert!(!o.push_reply(DeviceMessage::Ack { message_id: 1 }));
        assert_eq!(drain(&mut o).len(), CONTROL_CAPACITY);
    }
}
