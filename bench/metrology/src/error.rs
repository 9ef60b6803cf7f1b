//! The error of a meter: e = (E_dut − E_ref) / E_ref × 100 %.

use crate::JOULES_PER_KWH;

/// Gated reference-count method: the DUT's pulses open and close the gate over
/// `dut_pulses` intervals while `ref_counts` pulses of the reference standard (constant
/// `k_ref`) are counted. n0 = N · k_ref / k_dut; e = (n0 − n_ref) / n_ref × 100 %.
pub fn gated_error_percent(dut_pulses: u64, k_dut: f64, ref_counts: u64, k_ref: f64) -> f64 {
    let expected = dut_pulses as f64 * k_ref / k_dut;
    (expected - ref_counts as f64) / ref_counts as f64 * 100.0
}

/// Timed method: the power standard delivers a known, stable `power_w`; the gate lasts
/// `gate_s` by the counter's timebase. E_ref = P · Δt.
pub fn timed_error_percent(dut_pulses: u64, k_dut: f64, power_w: f64, gate_s: f64) -> f64 {
    let e_dut_j = dut_pulses as f64 / k_dut * JOULES_PER_KWH;
    let e_ref_j = power_w * gate_s;
    (e_dut_j - e_ref_j) / e_ref_j * 100.0
}

/// Error of an energy value against a reference energy, both in the same unit.
pub fn energy_error_percent(e_dut: f64, e_ref: f64) -> f64 {
    (e_dut - e_ref) / e_ref * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gated_perfect_meter_has_zero_error() {
        // 100 pulses at 20000 imp/kWh = 5 Wh; reference 1.6e8 imp/kWh counts 800000.
        assert_eq!(gated_error_percent(100, 20_000.0, 800_000, 1.6e8), 0.0);
    }

    #[test]
    fn gated_fast_meter_reads_high() {
        // A meter 1 % fast emits its 100 pulses after 1/1.01 of the energy:
        // n_ref = 800000/1.01 = 792079 (rounded) → e = (800000 − 792079)/792079 = +1.00002 %.
        let e = gated_error_percent(100, 20_000.0, 792_079, 1.6e8);
        assert!((e - 1.000_026_5).abs() < 1e-6, "{e}");
        // 0.5 % slow: n_ref = 800000/0.995 = 804020 → e = −0.50000 %
        let e = gated_error_percent(100, 20_000.0, 804_020, 1.6e8);
        assert!((e - (-0.499_987_6)).abs() < 1e-6, "{e}");
    }

    #[test]
    fn timed_method_hand_case() {
        // 3450 W for 52.173913 s = 180000 J; 1000 pulses at 20000 = 50 Wh = 180000 J → 0 %.
        let e = timed_error_percent(1000, 20_000.0, 3450.0, 52.173_913_043_478_26);
        assert!(e.abs() < 1e-9, "{e}");
        // Same pulses, gate 0.2 % shorter: e = 1/0.998 − 1 = +0.2004008 %
        let e = timed_error_percent(1000, 20_000.0, 3450.0, 52.173_913_043_478_26 * 0.998);
        assert!((e - 0.200_400_8).abs() < 1e-6, "{e}");
    }

    #[test]
    fn energy_error_hand_case() {
        assert!((energy_error_percent(10.1, 10.0) - 1.0).abs() < 1e-12);
    }
}
