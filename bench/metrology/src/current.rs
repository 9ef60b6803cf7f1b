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
/// scatter of the readings (s / √n).
pub fn current_budget(
    reference_a: f64,
    reference_u_k2_percent: f64,
    resolution_a: f64,
    readings_std_percent: Option<f64>,
    n: usize,
) -> UncertaintyBudget {
    let reference = Contribution {
        name: "reference".into(),
        u_percent: reference_u_k2_percent / 2.0,
        note: "reference current, certificate U / 2".into(),
    };
    let resolution = Contribution {
        name: "resolution".into(),
        u_percent: 100.0 * resolution_a / 12f64.sqrt() / reference_a,
        note: format!("reading resolution {resolution_a} A, rectangular: step / √12"),
    };
    let repeatability = Contribution {
        name: "repeatability".into(),
        u_percent: readings_std_percent
            .map(|s| s / (n.max(1) as f64).sqrt())
            .unwrap_or(0.0),
        note: "type A: s of the readings / √n".into(),
    };
    let combined = (reference.u_percent.powi(2)
        + resolution.u_percent.powi(2)
        + repeatability.u_percent.powi(2))
    .sqrt();
    let k = 2.0;
    UncertaintyBudget {
        contributions: vec![reference, resolution, repeatability],
        combined_u_percent: combined,
        coverage_factor: k,
        expanded_u_percent: k * combined,
        combination: "root sum of squares of reference, resolution and repeatability".into(),
    }
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
        assert!((b.contributions[1].u_percent - 1.25 / 12f64.sqrt()).abs() < 1e-9);
        assert!((b.contributions[2].u_percent - 0.25).abs() < 1e-12);
    }
}
