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

/// The timing scatter of a pulse train, from its intervals dᵢ: their variance γ₀ and
/// lag-1 autocovariance γ₁ (both with divisor n, about the mean interval).
///
/// Two noises move a meter's pulses. Timing jitter (a pulse timer's tick, an edge's
/// noise) moves each pulse alone: neighbouring intervals are anti-correlated (γ₁ < 0)
/// and a span of n intervals scatters no more than one interval. Noise in the energy the
/// meter accumulates is carried from pulse to pulse: the intervals are independent and a
/// span of n scatters √n times one interval. For a mix of both (an MA(1) interval
/// series) the variance of a span of n intervals is exactly n·γ₀ + 2(n − 1)·γ₁, which
/// [`Self::span_variance_s2`] returns: the quantity a point's mean error rests on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PulseTrainScatter {
    /// Number of intervals the estimate rests on.
    pub intervals: usize,
    /// Variance of one interval, s².
    pub gamma0_s2: f64,
    /// Covariance of neighbouring intervals, s².
    pub gamma1_s2: f64,
}

impl PulseTrainScatter {
    /// From pulse times in order; `None` for fewer than four times (three intervals).
    pub fn from_times(times_s: &[f64]) -> Option<PulseTrainScatter> {
        if times_s.len() < 4 {
            return None;
        }
        let d: Vec<f64> = times_s.windows(2).map(|w| w[1] - w[0]).collect();
        let n = d.len() as f64;
        let mean = d.iter().sum::<f64>() / n;
        let x: Vec<f64> = d.iter().map(|v| v - mean).collect();
        let gamma0 = x.iter().map(|v| v * v).sum::<f64>() / n;
        let gamma1 = x.windows(2).map(|w| w[0] * w[1]).sum::<f64>() / n;
        Some(PulseTrainScatter {
            intervals: d.len(),
            gamma0_s2: gamma0,
            gamma1_s2: gamma1,
        })
    }

    /// Variance of the span of `n` consecutive intervals, s²: n·γ₀ + 2(n − 1)·γ₁, never
    /// below one interval's variance (the least any mix of the two noises gives).
    pub fn span_variance_s2(&self, n: usize) -> f64 {
        let n = n.max(1) as f64;
        (n * self.gamma0_s2 + 2.0 * (n - 1.0) * self.gamma1_s2).max(self.gamma0_s2)
    }

    /// Degrees of freedom of the span variance: a sum of autocovariances up to lag 1
    /// (a truncated kernel with three lags, −1 … 1) has the variance of an estimate
    /// from n/3 independent values.
    pub fn dof(&self) -> f64 {
        self.intervals as f64 / 3.0
    }
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
    fn pulse_train_hand_cases() {
        // Pure jitter: pulses at 0, 1.1, 1.9, 3.1, 3.9 (every other one 0.1 s late).
        // Intervals 1.1, 0.8, 1.2, 0.8: mean 0.975, deviations .125, −.175, .225, −.175.
        // γ₀ = (.015625 + .030625 + .050625 + .030625)/4 = 0.031875
        // γ₁ = (−.021875 − .039375 − .039375)/4 = −0.02515625
        let t = PulseTrainScatter::from_times(&[0.0, 1.1, 1.9, 3.1, 3.9]).unwrap();
        assert_eq!(t.intervals, 4);
        assert!((t.gamma0_s2 - 0.031_875).abs() < 1e-12);
        assert!((t.gamma1_s2 + 0.025_156_25).abs() < 1e-12);
        // Span of 4: 4·γ₀ + 6·γ₁ = 0.1275 − 0.1509375 < γ₀: floored at γ₀.
        assert!((t.span_variance_s2(4) - 0.031_875).abs() < 1e-12);
        // Span of 2: 2·γ₀ + 2·γ₁ = 0.0134375, more regular than jitter alone: γ₀ too.
        assert!((t.span_variance_s2(2) - 0.031_875).abs() < 1e-12);
        assert!((t.dof() - 4.0 / 3.0).abs() < 1e-12);
        // Carried noise: intervals 1, 1, 1.2, 1.2: mean 1.1, deviations −.1 −.1 .1 .1: γ₀ = .01, γ₁ = (.01 − .01 + .01)/4
        // = .0025; a span of 4 intervals: .04 + .015 = .055.
        let w = PulseTrainScatter::from_times(&[0.0, 1.0, 2.0, 3.2, 4.4]).unwrap();
        assert!((w.gamma0_s2 - 0.01).abs() < 1e-12);
        assert!((w.gamma1_s2 - 0.0025).abs() < 1e-12);
        assert!((w.span_variance_s2(4) - 0.055).abs() < 1e-12);
        assert!(PulseTrainScatter::from_times(&[0.0, 1.0, 2.0]).is_none());
    }
}
