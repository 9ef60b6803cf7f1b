//! Extension of narrow hardware counters to 64 bits.
//!
//! Two situations need different rules:
//!
//! - **PIO timestamps** (31 or 32 bits) arrive from eight state machines slightly
//!   out of order and, on a quiet channel, minutes apart (one pulse every 39 s at
//!   the starting current). They are placed next to an *estimate* of the current
//!   tick count taken from the 1 MHz system timer, which runs off the same crystal
//!   as the PIO clock: [`extend_near`] picks the 64-bit value congruent to the raw
//!   count that lies nearest to the estimate. Exact as long as the estimate is off
//!   by less than half a wrap (2^30 ticks = 17 s at 62.5 MHz); in practice it is off
//!   by a microsecond.
//! - **The reference-frequency counter** (a 16-bit PWM counter, or any other
//!   free-running counter) only counts forward and is read continuously, so
//!   [`WrapExtender`] adds the forward distance since the previous read. Exact as
//!   long as it is read at least once per wrap.

/// The 64-bit value `v` with `v ≡ raw (mod 2^bits)` nearest to `estimate`.
///
/// `bits` is 1..=32; `raw` bits above `bits` are ignored. Ties (exactly half a
/// wrap away) resolve to the later value. Near 0 the result never goes below 0:
/// a raw value that would lie "before zero" is placed one wrap later.
pub const fn extend_near(raw: u32, bits: u32, estimate: u64) -> u64 {
    let modulus = 1u64 << bits;
    let mask = modulus - 1;
    let raw = raw as u64 & mask;
    // Signed distance from the estimate to raw, in (−modulus/2, modulus/2].
    let diff = raw.wrapping_sub(estimate) & mask;
    if diff <= modulus / 2 || estimate < modulus - diff {
        estimate + diff
    } else {
        estimate - (modulus - diff)
    }
}

/// Extends a forward-only counter of `bits` bits to 64 bits by accumulating the
/// forward distance between successive reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrapExtender {
    bits: u32,
    last_raw: u32,
    value: u64,
}

impl WrapExtender {
    /// An extender for a counter of `bits` bits (1..=32) that reads 0 now.
    pub const fn new(bits: u32) -> Self {
        assert!(bits >= 1 && bits <= 32);
        Self {
            bits,
            last_raw: 0,
            value: 0,
        }
    }

    /// Restarts at 64-bit value 0 with the hardware counter reading `raw` now
    /// (e.g. 0 right after the counter was cleared at Arm).
    pub fn reset(&mut self, raw: u32) {
        self.last_raw = raw & self.mask();
        self.value = 0;
    }

    /// Takes a new reading and returns the extended count. Must be called at
    /// least once per wrap of the hardware counter.
    pub fn update(&mut self, raw: u32) -> u64 {
        let raw = raw & self.mask();
        let forward = raw.wrapping_sub(self.last_raw) & self.mask();
        self.last_raw = raw;
        self.value += u64::from(forward);
        self.value
    }

    /// The extended count at the last reading.
    pub const fn value(&self) -> u64 {
        self.value
    }

    const fn mask(&self) -> u32 {
        if self.bits == 32 {
            u32::MAX
        } else {
            (1 << self.bits) - 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W31: u64 = 1 << 31;
    const W32: u64 = 1 << 32;

    #[test]
    fn near_the_estimate_within_a_wrap() {
        assert_eq!(extend_near(100, 32, 90), 100);
        assert_eq!(extend_near(100, 32, 110), 100);
        // Raw wrapped past zero, estimate still before the wrap.
        assert_eq!(extend_near(5, 32, W32 - 10), W32 + 5);
        // Estimate already past the wrap, raw from just before it (late read).
        assert_eq!(extend_near(u32::MAX - 3, 32, W32 + 2), W32 - 4);
        // Many wraps in.
        let t = 7 * W32 + 123_456;
        assert_eq!(extend_near(t as u32, 32, t + 1_000_000), t);
        assert_eq!(extend_near(t as u32, 32, t - 1_000_000), t);
    }

    #[test]
    fn thirty_one_bit_words_from_the_pio() {
        let t = 3 * W31 + 42;
        let raw = (t & (W31 - 1)) as u32;
        assert_eq!(extend_near(raw, 31, t + 62_500), t);
        assert_eq!(
            extend_near(raw | 0x8000_0000, 31, t - 62_500),
            t,
            "high bit ignored"
        );
        // Just under half a wrap away is still exact.
        assert_eq!(extend_near(raw, 31, t + W31 / 2 - 1), t);
        assert_eq!(extend_near(raw, 31, t - (W31 / 2 - 1)), t);
    }

    #[test]
    fn never_below_zero() {
        // A raw value "just before zero" with estimate 3 would be −5; it is placed
        // at modulus − 5 instead (the counter cannot have been negative).
        assert_eq!(extend_near(u32::MAX - 4, 32, 3), W32 - 5);
        assert_eq!(extend_near(0, 32, 0), 0);
    }

    #[test]
    fn brute_force_against_the_definition() {
        // Definition: the non-negative value congruent to raw nearest to the
        // estimate; on a tie the later one.
        for bits in [3u32, 4, 8, 10] {
            let m = 1u64 << bits;
            for est in 0..(3 * m) {
                for raw in 0..m as u32 {
                    let best = (0..5)
                        .map(|k| k * m + u64::from(raw))
                        .min_by_key(|&c| (c.abs_diff(est), u64::MAX - c))
                        .unwrap();
                    assert_eq!(
                        extend_near(raw, bits, est),
                        best,
                        "bits {bits} est {est} raw {raw}"
                    );
                }
            }
        }
    }

    #[test]
    fn wrap_extender_counts_across_wraps() {
        let mut e = WrapExtender::new(16);
        e.reset(0);
        let mut hw: u32 = 0;
        let mut total: u64 = 0;
        for step in [1u32, 1000, 65_535, 30_000, 40_000, 0, 65_000, 7] {
            hw = hw.wrapping_add(step) & 0xFFFF;
            total += u64::from(step);
            assert_eq!(e.update(hw), total);
        }
        assert_eq!(e.value(), total);
    }

    #[test]
    fn wrap_extender_thirty_two_bits() {
        let mut e = WrapExtender::new(32);
        e.reset(u32::MAX - 10);
        assert_eq!(e.update(u32::MAX), 10);
        assert_eq!(e.update(4), 15);
        assert_eq!(e.update(4), 15);
        e.reset(0);
        assert_eq!(e.update(3), 3);
    }
}
