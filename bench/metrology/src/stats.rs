//! Mean, standard deviation and repeatability of repeated measurements.

use serde::{Deserialize, Serialize};
use statrs::statistics::Statistics;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RepeatStatistics {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n − 1); `None` for fewer than two values.
    pub std_dev: Option<f64>,
    /// Standard deviation of the mean, s / √n (type A); `None` for fewer than two values.
    pub std_of_mean: Option<f64>,
}

/// Statistics of repeated values (e.g. the errors of a point's repeats, in %).
/// Returns `None` for an empty slice.
pub fn repeat_statistics(values: &[f64]) -> Option<RepeatStatistics> {
    if values.is_empty() {
        return None;
    }
    let mean = values.iter().mean();
    let (std_dev, std_of_mean) = if values.len() >= 2 {
        let s = values.iter().std_dev();
        (Some(s), Some(s / (values.len() as f64).sqrt()))
    } else {
        (None, None)
    };
    Some(RepeatStatistics {
        n: values.len(),
        mean,
        std_dev,
        std_of_mean,
    })
}

/// Sample standard deviation of consecutive differences of sorted times: the scatter of
/// pulse intervals. `None` when fewer than three times (two intervals) are given.
pub fn interval_scatter(times_s: &[f64]) -> Option<f64> {
    if times_s.len() < 3 {
        return None;
    }
    let intervals: Vec<f64> = times_s.windows(2).map(|w| w[1] - w[0]).collect();
    Some(intervals.iter().std_dev())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_repeats() {
        // values 0.10, 0.12, 0.14: mean 0.12, s = 0.02, s/√3 = 0.011547005
        let s = repeat_statistics(&[0.10, 0.12, 0.14]).unwrap();
        assert_eq!(s.n, 3);
        assert!((s.mean - 0.12).abs() < 1e-12);
        assert!((s.std_dev.unwrap() - 0.02).abs() < 1e-12);
        assert!((s.std_of_mean.unwrap() - 0.011_547_005).abs() < 1e-9);
    }

    #[test]
    fn single_and_empty() {
        let s = repeat_statistics(&[0.3]).unwrap();
        assert_eq!((s.mean, s.std_dev, s.std_of_mean), (0.3, None, None));
        assert!(repeat_statistics(&[]).is_none());
    }

    #[test]
    fn interval_scatter_hand_case() {
        // intervals 50, 60, 50, 60 ms: mean 55, s = sqrt(4·25/3) = 5.773503 ms
        let t = [0.0, 0.05, 0.11, 0.16, 0.22];
        assert!((interval_scatter(&t).unwrap() - 0.005_773_503).abs() < 1e-9);
        // perfectly regular pulses have no scatter
        assert!(interval_scatter(&[0.0, 1.0, 2.0, 3.0]).unwrap().abs() < 1e-12);
        assert!(interval_scatter(&[0.0, 1.0]).is_none());
    }
}
