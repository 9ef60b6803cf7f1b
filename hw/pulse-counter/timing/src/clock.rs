//! Timebase constants and the mapping from the 1 MHz system timer to ticks.
//!
//! The PIO timebase runs at `clk_sys / 2`. The system timer ticks at 1 MHz from
//! `clk_ref`; both come from the same oscillator (the 12 MHz crystal, or the
//! external 10 MHz reference on XIN), so they never drift apart: ticks =
//! (µs since the sync strobe) × 62.5, to within the microsecond the strobe was
//! read at. The firmware uses this to extend PIO counts to 64 bits, to stamp
//! Heartbeats and Pongs, and to run the glitch-filter and stuck-input timeouts.

use crate::capture::CYCLES_PER_TICK;

/// System clock of the firmware (both clock sources are set up for it).
pub const SYS_CLK_HZ: u32 = 125_000_000;

/// Timebase frequency reported in Hello: ticks per second of every timestamp.
pub const TIMEBASE_HZ: u32 = SYS_CLK_HZ / CYCLES_PER_TICK;

/// Ticks per microsecond as a fraction (62.5 = 125 / 2).
const TICKS_PER_US_NUM: u64 = (TIMEBASE_HZ / 500_000) as u64;
const TICKS_PER_US_DEN: u64 = 2;

/// Converts a duration in microseconds to ticks (rounded down).
pub const fn ticks_from_us(us: u64) -> u64 {
    us * TICKS_PER_US_NUM / TICKS_PER_US_DEN
}

/// Converts a duration in milliseconds to ticks.
pub const fn ticks_from_ms(ms: u64) -> u64 {
    ticks_from_us(ms * 1000)
}

/// Converts ticks to microseconds (rounded down).
pub const fn us_from_ticks(ticks: u64) -> u64 {
    ticks * TICKS_PER_US_DEN / TICKS_PER_US_NUM
}

/// The tick count as a function of the system timer: zero at the last sync
/// strobe (Arm), or at power-up before the first Arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TickClock {
    start_us: u64,
}

impl TickClock {
    /// Zero at system timer 0 (power-up).
    pub const fn new() -> Self {
        Self { start_us: 0 }
    }

    /// Tick 0 is now at system timer `start_us` (read right after the strobe).
    pub fn restart(&mut self, start_us: u64) {
        self.start_us = start_us;
    }

    /// System timer reading at tick 0.
    pub const fn start_us(&self) -> u64 {
        self.start_us
    }

    /// Estimated tick count at system timer `now_us` (0 before the start).
    pub const fn ticks_at(&self, now_us: u64) -> u64 {
        ticks_from_us(now_us.saturating_sub(self.start_us))
    }

    /// System timer reading at which the tick count reaches `ticks`.
    pub const fn us_at(&self, ticks: u64) -> u64 {
        self.start_us + us_from_ticks(ticks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixty_two_and_a_half_megahertz() {
        assert_eq!(TIMEBASE_HZ, 62_500_000);
        assert_eq!(ticks_from_us(1), 62);
        assert_eq!(ticks_from_us(2), 125);
        assert_eq!(ticks_from_us(1_000_000), 62_500_000);
        assert_eq!(ticks_from_ms(100), 6_250_000);
        assert_eq!(us_from_ticks(125), 2);
    }

    #[test]
    fn clock_restarts_at_the_strobe() {
        let mut c = TickClock::new();
        assert_eq!(c.ticks_at(10), 625);
        c.restart(1_000);
        assert_eq!(c.ticks_at(999), 0);
        assert_eq!(c.ticks_at(3_000), 125_000);
        assert_eq!(c.us_at(125_000), 3_000);
        // A day in ticks fits easily in 64 bits.
        assert_eq!(c.ticks_at(1_000 + 86_400_000_000), 5_400_000_000_000);
    }
}
