//! The register (meter constant) test: the energy register's advance over a dosed run,
//! against the pulses the LED emitted and against the reference energy
//! (docs/metrology.md, test 4). Readings are exact decimals as the display shows them;
//! they are never parsed through a float.

use serde::{Deserialize, Serialize};

/// A register reading as displayed, in steps of the least significant digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RegisterSteps(pub u64);

/// Parse a displayed reading (`001234.5678`) with at most `decimals` decimals into
/// steps of the last displayed digit. Fewer decimals are padded (`12.5` at 4 decimals
/// is 125000 steps); more are refused, never rounded.
pub fn parse_register(text: &str, decimals: u32) -> Result<RegisterSteps, String> {
    let t = text.trim();
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!(
            "`{t}` is not a register reading (digits, a point, decimals)"
        ));
    }
    if frac.len() > decimals as usize {
        return Err(format!(
            "`{t}` has {} decimals; the register shows {decimals}",
            frac.len()
        ));
    }
    let padded = format!("{int}{frac:0<width$}", width = decimals as usize);
    padded
        .parse::<u64>()
        .map(RegisterSteps)
        .map_err(|_| format!("`{t}` is too large for a register reading"))
}

/// The least energy a dose must have, Wh: large enough that one step of the register
/// (`resolution_wh`) is at most a tenth of the limit, and at least `min_steps` steps.
pub fn min_register_energy_wh(resolution_wh: f64, limit_percent: f64, min_steps: u64) -> f64 {
    let by_limit = 10.0 * resolution_wh / (limit_percent / 100.0);
    by_limit.max(min_steps as f64 * resolution_wh)
}

/// What one port's register did over the dose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterComparison {
    /// Register advance, Wh (exact: steps × resolution).
    pub register_wh: f64,
    /// Energy of the LED pulses counted over the dose, Wh.
    pub pulses_wh: f64,
    /// Reference energy over the dose, Wh.
    pub reference_wh: f64,
    /// (register − reference) / reference, %.
    pub error_vs_reference_percent: f64,
    /// register − pulses, Wh.
    pub register_minus_pulses_wh: f64,
    /// The largest difference the two resolutions allow: one register step plus one
    /// pulse (each count can be short by up to one unit at either end), Wh.
    pub pulses_tolerance_wh: f64,
    /// One register step as a share of the register advance, %.
    pub resolution_percent: f64,
}

impl RegisterComparison {
    /// The register agrees with the pulse output: the meter constant is right.
    pub fn consistent_with_pulses(&self) -> bool {
        self.register_minus_pulses_wh.abs() <= self.pulses_tolerance_wh
    }
}

/// Compare a register advance with the pulses and the reference energy.
pub fn compare_register(
    before: RegisterSteps,
    after: RegisterSteps,
    resolution_wh: f64,
    pulses: u64,
    imp_per_kwh: f64,
    reference_wh: f64,
) -> Result<RegisterComparison, String> {
    if after < before {
        return Err(format!(
            "the register went back from {} to {} steps",
            before.0, after.0
        ));
    }
    let steps = after.0 - before.0;
    let register_wh = steps as f64 * resolution_wh;
    let pulse_wh = 1000.0 / imp_per_kwh;
    let pulses_wh = pulses as f64 * pulse_wh;
    Ok(RegisterComparison {
        register_wh,
        pulses_wh,
        reference_wh,
        error_vs_reference_percent: (register_wh - reference_wh) / reference_wh * 100.0,
        register_minus_pulses_wh: register_wh - pulses_wh,
        pulses_tolerance_wh: resolution_wh + pulse_wh,
        resolution_percent: if register_wh > 0.0 {
            resolution_wh / register_wh * 100.0
        } else {
            f64::INFINITY
        },
    })
}

/// Standard uncertainty (%) of a register advance from its resolution: each reading is
/// short of the true value by up to one step (a display truncates), so their
/// difference is triangular over ± one step: u = step / √6.
pub fn register_resolution_u_percent(resolution_wh: f64, register_wh: f64) -> f64 {
    resolution_wh / 6f64.sqrt() / register_wh * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_exact_steps() {
        assert_eq!(
            parse_register("001234.5678", 4),
            Ok(RegisterSteps(12_345_678))
        );
        assert_eq!(parse_register("12.5", 4), Ok(RegisterSteps(125_000)));
        assert_eq!(parse_register("7", 4), Ok(RegisterSteps(70_000)));
        assert!(
            parse_register("1.23456", 4)
                .unwrap_err()
                .contains("5 decimals")
        );
        assert!(parse_register("1,5", 4).is_err());
        assert!(parse_register("", 4).is_err());
        assert!(parse_register("-1.0", 4).is_err());
    }

    #[test]
    fn minimum_energy_by_limit_and_by_steps() {
        // 0.1 Wh at a 1 % limit: 0.1 Wh ≤ 0.1 % of E → E ≥ 100 Wh.
        assert!((min_register_energy_wh(0.1, 1.0, 100) - 100.0).abs() < 1e-9);
        // At a 2 % limit 50 Wh would do, but 100 steps of 0.1 Wh ask 10 Wh: 50 Wh.
        assert!((min_register_energy_wh(0.1, 2.0, 100) - 50.0).abs() < 1e-9);
        // 1000 steps ask more than the limit does.
        assert!((min_register_energy_wh(0.1, 2.0, 1000) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn a_register_that_agrees_with_pulses_and_reference() {
        // 100.3 Wh advance (1003 steps of 0.1 Wh), 2005 pulses at
        // 20000 imp/kWh = 100.25 Wh, reference 100.0 Wh.
        let c = compare_register(
            RegisterSteps(123_456),
            RegisterSteps(124_459),
            0.1,
            2005,
            20000.0,
            100.0,
        )
        .unwrap();
        assert!((c.register_wh - 100.3).abs() < 1e-9);
        assert!((c.pulses_wh - 100.25).abs() < 1e-9);
        assert!((c.error_vs_reference_percent - 0.3).abs() < 1e-9);
        assert!((c.register_minus_pulses_wh - 0.05).abs() < 1e-9);
        assert!((c.pulses_tolerance_wh - 0.15).abs() < 1e-12);
        assert!(c.consistent_with_pulses());
        assert!((c.resolution_percent - 0.1 / 100.3 * 100.0).abs() < 1e-12);
    }

    #[test]
    fn a_register_that_runs_away_from_its_pulses() {
        // The register says 102.0 Wh while 2000 pulses say 100.0 Wh.
        let c = compare_register(
            RegisterSteps(0),
            RegisterSteps(1020),
            0.1,
            2000,
            20000.0,
            100.0,
        )
        .unwrap();
        assert!((c.register_minus_pulses_wh - 2.0).abs() < 1e-9);
        assert!(!c.consistent_with_pulses());
        assert!((c.error_vs_reference_percent - 2.0).abs() < 1e-9);
    }

    #[test]
    fn a_register_that_goes_back_is_refused() {
        assert!(
            compare_register(RegisterSteps(10), RegisterSteps(9), 0.1, 0, 20000.0, 1.0)
                .unwrap_err()
                .contains("went back")
        );
    }

    #[test]
    fn resolution_uncertainty_is_triangular() {
        // 0.1 Wh over 100 Wh: 0.1 % / √6.
        let u = register_resolution_u_percent(0.1, 100.0);
        assert!((u - 0.1 / 6f64.sqrt()).abs() < 1e-12);
    }
}
