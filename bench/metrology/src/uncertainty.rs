//! Uncertainty budget of one accuracy point, following GUM: each term is a standard
//! uncertainty of the point's error in percentage points; U = 2 · u_c.

use serde::{Deserialize, Serialize};

/// How the reference energy was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceMethod {
    /// The DUT gates the reference standard's pulse output (a count ratio).
    GatedReferenceCount,
    /// A power standard's known power times the counter-timed gate.
    Timed,
    /// A current sensor's readings against the calibrated source's current.
    ReferenceCurrent,
}

/// What the budget is computed from: the instruments' certificate data and the
/// point's own measured figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetInputs {
    pub method: ReferenceMethod,
    /// Expanded uncertainty (k = 2) of the reference standard (gated) or of the power
    /// standard's power (timed) at this point, in %, from its calibration certificate.
    pub reference_u_k2_percent: f64,
    /// Stated accuracy of the counter's timebase, ± ppm (rectangular).
    pub timebase_accuracy_ppm: f64,
    /// One timebase tick, seconds.
    pub timebase_resolution_s: f64,
    /// Mean gate duration of one repeat, seconds.
    pub gate_s: f64,
    /// Mean reference counts per repeat (gated method).
    pub ref_counts_per_gate: f64,
    /// Sample standard deviation of the DUT's pulse intervals in the gates, seconds.
    pub pulse_interval_std_s: Option<f64>,
    /// Number of repeats averaged.
    pub repeats: usize,
    /// Sample standard deviation of the repeats' errors, %.
    pub repeat_std_percent: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub name: String,
    /// Standard uncertainty of the error, percentage points.
    pub u_percent: f64,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UncertaintyBudget {
    pub contributions: Vec<Contribution>,
    /// Combined standard uncertainty, %.
    pub combined_u_percent: f64,
    pub coverage_factor: f64,
    /// Expanded uncertainty U = k · u_c, %.
    pub expanded_u_percent: f64,
    pub combination: String,
}

const SQRT3: f64 = 1.732_050_807_568_877_2;
const SQRT6: f64 = 2.449_489_742_783_178;

/// Budget of a point's mean error. The DUT pulse jitter and the repeatability both
/// describe the random scatter of the repeats (the type A spread already contains the
/// jitter), so only the larger of the two enters u_c; with few repeats the predicted
/// jitter guards against an s that came out small by chance.
pub fn uncertainty_budget(inputs: &BudgetInputs) -> UncertaintyBudget {
    let r = inputs.repeats.max(1) as f64;
    let reference = Contribution {
        name: "reference standard".into(),
        u_percent: inputs.reference_u_k2_percent / 2.0,
        note: "certificate U (k=2) / 2, normal".into(),
    };
    let (timebase, quantisation) = match inputs.method {
        ReferenceMethod::GatedReferenceCount => (
            Contribution {
                name: "counter timebase".into(),
                u_percent: 0.0,
                note: "cancels: the error is a ratio of two counts in the same gate".into(),
            },
            Contribution {
                name: "count quantisation".into(),
                u_percent: 100.0 / (inputs.ref_counts_per_gate * SQRT6) / r.sqrt(),
                note: "±1 reference count per gate (two truncated latches, triangular) / √repeats"
                    .into(),
            },
        ),
        ReferenceMethod::ReferenceCurrent => {
            unreachable!("energy budgets are for meters; a current sensor has current_budget")
        }
        ReferenceMethod::Timed => (
            Contribution {
                name: "counter timebase".into(),
                u_percent: inputs.timebase_accuracy_ppm * 1e-4 / SQRT3,
                note: "stated timebase accuracy, rectangular".into(),
            },
            Contribution {
                name: "count quantisation".into(),
                u_percent: 100.0 * inputs.timebase_resolution_s
                    / (inputs.gate_s * SQRT6)
                    / r.sqrt(),
                note: "±1 timebase tick per gate (two timestamps, triangular) / √repeats".into(),
            },
        ),
    };
    // Each gate edge scatters by s_int/√2; a gate has two edges, so its length scatters by s_int.
    let jitter = Contribution {
        name: "DUT pulse jitter".into(),
        u_percent: inputs
            .pulse_interval_std_s
            .map(|s| 100.0 * s / inputs.gate_s / r.sqrt())
            .unwrap_or(0.0),
        note: "pulse-interval scatter / gate duration / √repeats".into(),
    };
    let repeatability = Contribution {
        name: "repeatability".into(),
        u_percent: inputs
            .repeat_std_percent
            .map(|s| s / r.sqrt())
            .unwrap_or(0.0),
        note: "type A: s of the repeats / √repeats".into(),
    };
    let random = jitter.u_percent.max(repeatability.u_percent);
    let combined = (reference.u_percent.powi(2)
        + timebase.u_percent.powi(2)
        + quantisation.u_percent.powi(2)
        + random.powi(2))
    .sqrt();
    let k = 2.0;
    UncertaintyBudget {
        contributions: vec![reference, timebase, quantisation, jitter, repeatability],
        combined_u_percent: combined,
        coverage_factor: k,
        expanded_u_percent: k * combined,
        combination: "root sum of squares of reference, timebase, quantisation and the larger of \
                      jitter and repeatability (both describe the same random scatter)"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gated() -> BudgetInputs {
        BudgetInputs {
            method: ReferenceMethod::GatedReferenceCount,
            reference_u_k2_percent: 0.01,
            timebase_accuracy_ppm: 2.0,
            timebase_resolution_s: 8e-9,
            gate_s: 10.0,
            ref_counts_per_gate: 1.0e6,
            pulse_interval_std_s: Some(0.004),
            repeats: 4,
            repeat_std_percent: Some(0.02),
        }
    }

    #[test]
    fn gated_hand_case() {
        let b = uncertainty_budget(&gated());
        let u: Vec<f64> = b.contributions.iter().map(|c| c.u_percent).collect();
        // reference 0.01/2 = 0.005
        assert!((u[0] - 0.005).abs() < 1e-12);
        assert_eq!(u[1], 0.0);
        // quantisation 100/(1e6·√6)/2 = 2.0412415e-5
        assert!((u[2] - 2.041_241_5e-5).abs() < 1e-11);
        // jitter 100·0.004/10/2 = 0.02
        assert!((u[3] - 0.02).abs() < 1e-12);
        // repeatability 0.02/2 = 0.01
        assert!((u[4] - 0.01).abs() < 1e-12);
        // u_c = sqrt(0.005² + 2.0412e-5² + 0.02²) = 0.020615538
        assert!(
            (b.combined_u_percent - 0.020_615_538).abs() < 1e-8,
            "{}",
            b.combined_u_percent
        );
        assert!((b.expanded_u_percent - 0.041_231_076).abs() < 1e-8);
    }

    #[test]
    fn repeatability_wins_when_larger() {
        let mut i = gated();
        i.repeat_std_percent = Some(0.1); // 0.05 after /√4
        let b = uncertainty_budget(&i);
        // sqrt(0.005² + 2.0412e-5² + 0.05²) = 0.050249382
        assert!((b.combined_u_percent - 0.050_249_382).abs() < 1e-8);
    }

    #[test]
    fn timed_hand_case() {
        let i = BudgetInputs {
            method: ReferenceMethod::Timed,
            reference_u_k2_percent: 0.02,
            timebase_accuracy_ppm: 5.0,
            timebase_resolution_s: 1e-7,
            gate_s: 20.0,
            ref_counts_per_gate: 0.0,
            pulse_interval_std_s: None,
            repeats: 1,
            repeat_std_percent: None,
        };
        let b = uncertainty_budget(&i);
        let u: Vec<f64> = b.contributions.iter().map(|c| c.u_percent).collect();
        assert!((u[0] - 0.01).abs() < 1e-12);
        // 5 ppm = 5e-4 %, /√3 = 2.8867513e-4
        assert!((u[1] - 2.886_751_3e-4).abs() < 1e-11);
        // 100·1e-7/(20·√6) = 2.0412415e-7
        assert!((u[2] - 2.041_241_5e-7).abs() < 1e-13);
        assert_eq!((u[3], u[4]), (0.0, 0.0));
        assert!(
            (b.expanded_u_percent - 2.0 * (0.01f64.powi(2) + 2.886_751_3e-4f64.powi(2)).sqrt())
                .abs()
                < 1e-9
        );
    }
}
