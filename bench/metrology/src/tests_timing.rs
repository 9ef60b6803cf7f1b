//! Durations of the starting and no-load tests. The constants (window factor, K) are
//! procedure data; these functions only apply them.

/// τ = 3.6e6 / (k · m · Un · Ist) s: one pulse period at the starting current, PF 1.
pub fn starting_pulse_period_s(k_imp_per_kwh: f64, elements: u32, un_v: f64, ist_a: f64) -> f64 {
    crate::JOULES_PER_KWH / (k_imp_per_kwh * elements as f64 * un_v * ist_a)
}

/// No-load test duration Δt = K / (k · m · U_test · Ist) minutes, returned in seconds.
pub fn no_load_duration_s(
    k_constant: f64,
    k_imp_per_kwh: f64,
    elements: u32,
    u_test_v: f64,
    ist_a: f64,
) -> f64 {
    k_constant / (k_imp_per_kwh * elements as f64 * u_test_v * ist_a) * 60.0
}

/// Starting test decision: each of the first `required` pulses (after the current is
/// applied at t = 0) must arrive within `window_s` of the previous one (or of t = 0).
/// Returns the index of the first pulse that was late, or `None` when it passed.
pub fn starting_pulses_in_window(
    pulse_times_s: &[f64],
    required: usize,
    window_s: f64,
) -> Result<(), usize> {
    let mut previous = 0.0;
    for i in 0..required {
        match pulse_times_s.get(i) {
            Some(&t) if t - previous <= window_s => previous = t,
            _ => return Err(i),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starting_period_of_a_cpim() {
        // 3.6e6 / (20000 · 3 · 230 · 0.02) = 13.0434783 s; 1-phase 39.1304348 s.
        assert!((starting_pulse_period_s(20_000.0, 3, 230.0, 0.02) - 13.043_478_26).abs() < 1e-6);
        assert!((starting_pulse_period_s(20_000.0, 1, 230.0, 0.02) - 39.130_434_78).abs() < 1e-6);
    }

    #[test]
    fn no_load_duration_of_a_cpim() {
        // 600e3 / (20000 · 3 · 264.5 · 0.02) = 1.890359168 min = 113.4215501 s at 115 % Un.
        let dt = no_load_duration_s(600e3, 20_000.0, 3, 264.5, 0.02);
        assert!((dt - 113.421_550_1).abs() < 1e-6, "{dt}");
        // Doubling K (type test) doubles it.
        assert!((no_load_duration_s(1200e3, 20_000.0, 3, 264.5, 0.02) - 2.0 * dt).abs() < 1e-9);
    }

    #[test]
    fn starting_window_decision() {
        let w = 1.5 * 13.0;
        assert_eq!(starting_pulses_in_window(&[5.0, 18.0], 2, w), Ok(()));
        // second pulse 19.6 s after the first: late.
        assert_eq!(starting_pulses_in_window(&[5.0, 24.6], 2, w), Err(1));
        // first pulse too late
        assert_eq!(starting_pulses_in_window(&[20.0, 30.0], 2, w), Err(0));
        // missing pulses
        assert_eq!(starting_pulses_in_window(&[5.0], 2, w), Err(1));
        assert_eq!(starting_pulses_in_window(&[], 2, w), Err(0));
    }
}
