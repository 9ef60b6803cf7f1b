//! Current sensors: each telegram's reading against the reference current, and the
//! uncertainty of the mean error, in which the sensor's resolution usually dominates
//! (1 A at 1 A is ±50 %).

use crate::uncertainty::{Contribution, UncertaintyBudget};

/// Error of one reading, % of the reference current.
pub fn current_error_percent(reading_a: f64, reference_a: f64) -> f64 {
    (reading_a - reference_a) / reference_a * 100.0
}

/// The budget of a mean error over `n` readings at `reference_a`: the reference
/// (k = 2 from its certificate), the reading's resolution (rectangular over ± half a
/// step: step / √12 — a reading that never changes does not average it away), and the
/// scatter of the readings (s / √n, with n − 1 degrees of freedom); k from ν_eff.
pub fn current_budget(
    reference_a: f64,
    reference_u_k2_percent: f64,
    resolution_a: f64,
    readings_std_percent: Option<f64>,
    n: usize,
) -> UncertaintyBudget {
    let reference = Contribution::new(
        "reference",
        reference_u_k2_percent / 2.0,
        None,
        "reference current, certificate U / 2",
    );
    let resolution = Contribution::new(
        "resolution",
        100.0 * resolution_a / 12f64.sqrt() / reference_a,
        None,
        format!("reading resolution {resolution_a} A, rectangular: step / √12"),
    );
    let repeatability = Contribution::new(
        "repeatability",
        readings_std_percent
            .map(|s| s / (n.max(1) as f64).sqrt())
            .unwrap_or(0.0),
        (n >= 2).then(|| (n - 1) as f64),
        "type A: s of the readings / √n",
    );
    UncertaintyBudget::combine(
        vec![reference, resolution, repeatability],
        "root sum of squares of reference, resolution and repeatability",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_of_a_reading() {
        assert!((current_error_percent(17.0, 16.0) - 6.25).abs() < 1e-12);
        assert!((current_error_percent(80.0, 80.0)).abs() < 1e-12);
    }

    #[test]
    fn resolution_dominates_at_low_current() {
        // 1 A step at 1 A: 100 / √12 = 28.87 %; reference 0.02 % (k=2) → 0.01 %.
        let b = current_budget(1.0, 0.02, 1.0, None, 5);
        assert!((b.contributions[1].u_percent - 100.0 / 12f64.sqrt()).abs() < 1e-9);
        assert!(
            (b.expanded_u_percent
                - 2.0 * (0.01f64.powi(2) + (100.0 / 12f64.sqrt()).powi(2)).sqrt())
            .abs()
                < 1e-9
        );
        // At 80 A the step is 1/80: 0.361 %.
        let b = current_budget(80.0, 0.02, 1.0, Some(0.5), 4);
        // ν_eff = u_c⁴ / (0.25⁴ / 3): u_c² = 0.01² + (1.25/√12)² + 0.25² = 0.1928;
        // ν_eff = 0.037173 / 0.0013021 = 28.55 → 28; t(28) at 95.45 % = 2.09333.
        let uc2 = 0.01f64.powi(2) + (1.25 / 12f64.sqrt()).powi(2) + 0.25f64.powi(2);
        assert!((b.effective_dof.unwrap() - uc2 * uc2 / (0.25f64.powi(4) / 3.0)).abs() < 1e-9);
        assert!(
            (b.coverage_factor - 2.093_33).abs() < 1e-5,
            "{}",
            b.coverage_factor
        );
        assert!((b.contributions[1].u_percent - 1.25 / 12f64.sqrt()).abs() < 1e-9);
        assert!((b.contributions[2].u_percent - 0.25).abs() < 1e-12);
    }
}
