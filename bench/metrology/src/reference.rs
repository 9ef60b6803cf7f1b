//! The reference standard's own error, from its calibration certificate: what a point is
//! corrected by, and how far the standard may have drifted since.

/// The DUT's error corrected for a reference standard whose reading is off by
/// `reference_error_percent` (it reads E·(1 + c)): the DUT was compared with E·(1 + c)
/// and its error against E is (1 + e)(1 + c) − 1.
pub fn corrected_for_reference(error_percent: f64, reference_error_percent: f64) -> f64 {
    ((1.0 + error_percent / 100.0) * (1.0 + reference_error_percent / 100.0) - 1.0) * 100.0
}

/// The bound of a standard's drift since its calibration, %: the declared rate times the
/// years elapsed (a day counted as 1/365.25 year); none before the calibration date.
pub fn drift_since_calibration_percent(drift_percent_per_year: f64, days: i64) -> f64 {
    drift_percent_per_year * days.max(0) as f64 / 365.25
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correction_hand_cases() {
        // A standard reading 0.003 % high makes a perfect meter look 0.003 % low:
        // uncorrected (1/1.00003 − 1) = −0.0029999 %; corrected back to 0.
        let uncorrected = (1.0 / 1.000_03 - 1.0) * 100.0;
        assert!(corrected_for_reference(uncorrected, 0.003).abs() < 1e-12);
        // e = 0.5 %, c = −0.01 %: 1.005 · 0.9999 − 1 = 0.4899500 %.
        assert!((corrected_for_reference(0.5, -0.01) - 0.489_95).abs() < 1e-12);
        assert!((corrected_for_reference(0.2, 0.0) - 0.2).abs() < 1e-12);
    }

    #[test]
    fn drift_hand_cases() {
        // 0.002 %/year for 730.5 days: 0.004 %.
        assert!(
            (drift_since_calibration_percent(0.002, 730) - 0.002 * 730.0 / 365.25).abs() < 1e-15
        );
        assert!((drift_since_calibration_percent(0.002, 365) - 0.001_998_631).abs() < 1e-9);
        assert_eq!(drift_since_calibration_percent(0.002, -3), 0.0);
    }
}
