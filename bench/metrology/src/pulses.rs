//! Pulse arithmetic of a meter's test output: f = m · U · I · PF · k / 3.6e6.

use crate::JOULES_PER_KWH;

/// LED pulse frequency in Hz for `elements` current-carrying elements at `voltage_v`,
/// `current_a`, power factor `cos_phi` and meter constant `k_imp_per_kwh`.
pub fn pulse_frequency_hz(
    elements: u32,
    voltage_v: f64,
    current_a: f64,
    cos_phi: f64,
    k_imp_per_kwh: f64,
) -> f64 {
    let power_w = elements as f64 * voltage_v * current_a * cos_phi;
    power_w * k_imp_per_kwh / JOULES_PER_KWH
}

/// Pulse period in seconds for a total active power `power_w`; infinite at zero power.
pub fn pulse_period_s(power_w: f64, k_imp_per_kwh: f64) -> f64 {
    if power_w <= 0.0 {
        return f64::INFINITY;
    }
    JOULES_PER_KWH / (power_w * k_imp_per_kwh)
}

/// Energy represented by one pulse in joules.
pub fn energy_per_pulse_j(k_imp_per_kwh: f64) -> f64 {
    JOULES_PER_KWH / k_imp_per_kwh
}

/// The physical floor of a load point: the first pulse arrives at a random phase, so
/// `intervals` counted intervals need `intervals + 1` pulses, after the settle time.
pub fn physical_floor_s(settle_s: f64, intervals: u64, period_s: f64) -> f64 {
    settle_s + (intervals as f64 + 1.0) * period_s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        ((a - b) / b).abs() < rel
    }

    #[test]
    fn cpim_pulse_periods_match_the_hand_table() {
        // metrology.md table: 230 V, PF 1, k = 20000 imp/kWh.
        let k = 20_000.0;
        let cases = [
            // (current, 1-phase period s, 3-phase period s), hand-computed 3.6e6/(m·230·I·20000)
            (0.02, 39.130_434_8, 13.043_478_3),
            (0.25, 3.130_434_78, 1.043_478_26),
            (0.5, 1.565_217_39, 0.521_739_13),
            (5.0, 0.156_521_739, 0.052_173_913),
            (32.0, 0.024_456_521_7, 0.008_152_173_9),
        ];
        for (i, p1, p3) in cases {
            let f1 = pulse_frequency_hz(1, 230.0, i, 1.0, k);
            let f3 = pulse_frequency_hz(3, 230.0, i, 1.0, k);
            assert!(close(1.0 / f1, p1, 1e-8), "1-phase {i} A: {}", 1.0 / f1);
            assert!(close(1.0 / f3, p3, 1e-8), "3-phase {i} A: {}", 1.0 / f3);
            assert!(close(pulse_period_s(230.0 * i, k), p1, 1e-8));
        }
    }

    #[test]
    fn half_power_factor_doubles_the_period() {
        let f1 = pulse_frequency_hz(3, 230.0, 5.0, 1.0, 20_000.0);
        let f05 = pulse_frequency_hz(3, 230.0, 5.0, 0.5, 20_000.0);
        assert!(close(f1 / f05, 2.0, 1e-12));
    }

    #[test]
    fn one_pulse_is_180_joules_at_20000() {
        assert!(close(energy_per_pulse_j(20_000.0), 180.0, 1e-12));
    }

    #[test]
    fn floor_counts_one_pulse_more_than_intervals() {
        // settle 5 s + 101 periods of 52.173913 ms = 10.26956522 s
        assert!(close(
            physical_floor_s(5.0, 100, 0.052_173_913),
            10.269_565_2,
            1e-8
        ));
        assert_eq!(pulse_period_s(0.0, 20_000.0), f64::INFINITY);
    }
}
