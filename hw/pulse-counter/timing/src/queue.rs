//! The event queue between capture and the USB link, with drop counting.
//!
//! A fixed ring of [`Edge`]s. An Edge gets its sequence number and flags when it
//! is queued; when the ring is full the event is **dropped**: it gets no number,
//! `dropped_events` rises, the next queued Edge carries `DROPPED_BEFORE` and the
//! next Heartbeat `OVERFLOW` (PROTOCOL.md §7). Losses found elsewhere (a capture
//! FIFO overrun, a full core-to-core channel) are recorded the same way through
//! [`EdgeQueue::record_drop`], so the host learns about every kind of device-side
//! loss through one counter.

use crate::pairing::Pulse;
use crate::protocol::{Edge, edge_flags};
use crate::seq::SequenceCounter;

const EMPTY: Edge = Edge {
    sequence: 0,
    channel: 0,
    timestamp_ticks: 0,
    width_ticks: 0,
    ref_count: 0,
    flags: 0,
};

/// Ring buffer of queued Edges with sequence numbering and drop accounting.
#[derive(Debug, Clone)]
pub struct EdgeQueue<const N: usize> {
    buf: [Edge; N],
    head: usize,
    len: usize,
    seq: SequenceCounter,
    dropped: u32,
    dropped_since_queued: bool,
    overflow_since_heartbeat: bool,
}

impl<const N: usize> Default for EdgeQueue<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> EdgeQueue<N> {
    /// An empty queue in the state right after Arm.
    pub const fn new() -> Self {
        Self {
            buf: [EMPTY; N],
            head: 0,
            len: 0,
            seq: SequenceCounter::new(),
            dropped: 0,
            dropped_since_queued: false,
            overflow_since_heartbeat: false,
        }
    }

    /// Arm: discards every unsent Edge and restarts sequence numbers and the drop
    /// counter.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Queues a pulse as the next Edge; returns its sequence number, or `None`
    /// if the queue was full and the event was dropped.
    pub fn push(&mut self, pulse: &Pulse, external_clock: bool) -> Option<u32> {
        if self.len == N {
            self.record_drop();
            return None;
        }
        let mut flags = 0;
        if core::mem::take(&mut self.dropped_since_queued) {
            flags |= edge_flags::DROPPED_BEFORE;
        }
        if external_clock {
            flags |= edge_flags::EXTERNAL_CLOCK;
        }
        let sequence = self.seq.next_sequence();
        self.buf[(self.head + self.len) % N] = Edge {
            sequence,
            channel: pulse.channel,
            timestamp_ticks: pulse.timestamp_ticks,
            width_ticks: pulse.width_ticks,
            ref_count: pulse.ref_count,
            flags,
        };
        self.len += 1;
        Some(sequence)
    }

    /// Counts one event the device could not queue.
    pub fn record_drop(&mut self) {
        self.dropped = self.dropped.wrapping_add(1);
        self.dropped_since_queued = true;
        self.overflow_since_heartbeat = true;
    }

    /// Takes the oldest queued Edge.
    pub fn pop(&mut self) -> Option<Edge> {
        if self.len == 0 {
            return None;
        }
        let e = self.buf[self.head];
        self.head = (self.head + 1) % N;
        self.len -= 1;
        Some(e)
    }

    /// Queued Edges not yet taken.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Nothing queued.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Capacity.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Sequence number of the last queued Edge (0 if none since Arm).
    pub const fn last_queued(&self) -> u32 {
        self.seq.last()
    }

    /// Events dropped since Arm (Heartbeat `dropped_events`).
    pub const fn dropped_events(&self) -> u32 {
        self.dropped
    }

    /// Whether an event was dropped since the previous call (Heartbeat
    /// `OVERFLOW`); clears the flag.
    pub fn take_overflow(&mut self) -> bool {
        core::mem::take(&mut self.overflow_since_heartbeat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pulse(t: u64) -> Pulse {
        Pulse {
            channel: 1,
            timestamp_ticks: t,
            width_ticks: 0,
            ref_count: t / 2,
        }
    }

    #[test]
    fn fifo_order_and_sequence_numbers_from_one() {
        let mut q = EdgeQueue::<4>::new();
        assert_eq!(q.push(&pulse(10), false), Some(1));
        assert_eq!(q.push(&pulse(20), true), Some(2));
        let a = q.pop().unwrap();
        assert_eq!(
            (a.sequence, a.timestamp_ticks, a.ref_count, a.flags),
            (1, 10, 5, 0)
        );
        let b = q.pop().unwrap();
        assert_eq!((b.sequence, b.flags), (2, edge_flags::EXTERNAL_CLOCK));
        assert_eq!(q.pop(), None);
        assert_eq!(q.last_queued(), 2);
    }

    #[test]
    fn a_full_queue_drops_counts_and_flags() {
        let mut q = EdgeQueue::<2>::new();
        q.push(&pulse(1), false);
        q.push(&pulse(2), false);
        assert_eq!(q.push(&pulse(3), false), None);
        assert_eq!(q.push(&pulse(4), false), None);
        assert_eq!(q.dropped_events(), 2);
        assert_eq!(q.last_queued(), 2, "dropped events get no number");
        q.pop();
        assert_eq!(q.push(&pulse(5), false), Some(3));
        q.pop();
        let e = q.pop().unwrap();
        assert_eq!(e.sequence, 3);
        assert_eq!(e.flags, edge_flags::DROPPED_BEFORE);
        assert_eq!(q.push(&pulse(6), false), Some(4));
        assert_eq!(
            q.pop().unwrap().flags,
            0,
            "flag only on the first Edge after the loss"
        );
        assert!(q.take_overflow());
        assert!(!q.take_overflow());
        assert_eq!(q.dropped_events(), 2, "cumulative");
    }

    #[test]
    fn external_drops_are_counted_like_queue_overflows() {
        let mut q = EdgeQueue::<8>::new();
        q.record_drop();
        assert_eq!(q.dropped_events(), 1);
        q.push(&pulse(1), false);
        assert_eq!(q.pop().unwrap().flags, edge_flags::DROPPED_BEFORE);
    }

    #[test]
    fn ring_wraps_many_times() {
        let mut q = EdgeQueue::<3>::new();
        for i in 0..100u64 {
            assert_eq!(q.push(&pulse(i), false), Some(i as u32 + 1));
            assert_eq!(q.pop().unwrap().timestamp_ticks, i);
        }
        assert!(q.is_empty());
        assert_eq!(q.capacity(), 3);
    }

    #[test]
    fn reset_discards_and_restarts() {
        let mut q = EdgeQueue::<4>::new();
        q.push(&pulse(1), false);
        q.record_drop();
        q.reset();
        assert_eq!(q.len(), 0);
        assert_eq!(q.dropped_events(), 0);
        assert!(!q.take_overflow());
        assert_eq!(q.push(&pulse(2), false), Some(1));
        assert_eq!(q.pop().unwrap().flags, 0);
    }
}
