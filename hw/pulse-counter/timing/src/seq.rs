//! Edge sequence numbers (PROTOCOL.md §7): 1 for the first Edge queued after
//! Arm, then +1 per queued Edge, modulo 2^32. Events that could not be queued
//! get no number.

/// Hands out sequence numbers at queueing time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SequenceCounter {
    last: u32,
}

impl SequenceCounter {
    /// The state right after Arm: nothing numbered yet.
    pub const fn new() -> Self {
        Self { last: 0 }
    }

    /// Back to the state right after Arm.
    pub fn reset(&mut self) {
        self.last = 0;
    }

    /// Number for the next queued Edge.
    pub fn next_sequence(&mut self) -> u32 {
        self.last = self.last.wrapping_add(1);
        self.last
    }

    /// The number given last (0 if none since Arm).
    pub const fn last(&self) -> u32 {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_one_and_wraps() {
        let mut s = SequenceCounter::new();
        assert_eq!(s.last(), 0);
        assert_eq!(s.next_sequence(), 1);
        assert_eq!(s.next_sequence(), 2);
        s.last = u32::MAX - 1;
        assert_eq!(s.next_sequence(), u32::MAX);
        assert_eq!(s.next_sequence(), 0, "mod 2^32");
        assert_eq!(s.next_sequence(), 1);
        s.reset();
        assert_eq!(s.next_sequence(), 1);
    }
}
