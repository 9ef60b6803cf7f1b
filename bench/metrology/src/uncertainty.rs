//! Uncertainty budget of one accuracy point, following GUM (JCGM 100:2008): each term
//! is a standard uncertainty of the point's error in percentage points, with its degrees
//! of freedom; the effective degrees of freedom come from the Welch–Satterthwaite formula
//! and the coverage factor from Student's t for [`COVERAGE_PROBABILITY`].

use crate::stats::PulseTrainScatter;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF, StudentsT};

/// The coverage probability an expanded uncertainty is stated for: that of k = 2 for a
/// normal distribution (95.45 %), so that k = 2 when the degrees of freedom are many and
/// grows from Student's t when they are few (EA-4/02 M:2022, 5.4 and Annex E, whose
/// table of k against ν_eff is t at 95.45 %).
pub const COVERAGE_PROBABILITY: f64 = 0.954_499_736_103_642;

/// Significance of the check that the repeats scatter no more than the pulse timing
/// explains; below it the repeatability replaces the timing model in the budget.
const REPEATS_CHECK_ALPHA: f64 = 0.01;

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
    /// standard's power (timed) at this point, in %, from its calibration certificate:
    /// its accuracy, or, when the point was corrected for the standard's stated error,
    /// the certificate's U of that error.
    pub reference_u_k2_percent: f64,
    /// The point was corrected for the standard's error; then the bound of its drift
    /// since that calibration, %, enters the budget (rectangular).
    #[serde(default)]
    pub reference_drift_bound_percent: Option<f64>,
    /// Stated accuracy of the counter's timebase, ± ppm (rectangular).
    pub timebase_accuracy_ppm: f64,
    /// One timebase tick, seconds.
    pub timebase_resolution_s: f64,
    /// Mean gate duration of one repeat, seconds.
    pub gate_s: f64,
    /// Mean reference counts per repeat (gated method).
    pub ref_counts_per_gate: f64,
    /// DUT pulses per repeat (the gate is this many pulse intervals).
    pub pulses_per_gate: u64,
    /// Timing scatter of the DUT's pulse train over all the repeats' gates.
    pub pulse_timing: Option<PulseTrainScatter>,
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
    /// Degrees of freedom of `u_percent`; none for a term taken as exactly known in
    /// its shape (a certificate's U, a rectangular bound): infinite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dof: Option<f64>,
    /// Whether the term enters u_c (a term listed as a check only does not).
    #[serde(default = "entered")]
    pub combined: bool,
}

fn entered() -> bool {
    true
}

fn normal_probability() -> f64 {
    COVERAGE_PROBABILITY
}

impl Contribution {
    /// A term that enters u_c.
    pub fn new(name: &str, u_percent: f64, dof: Option<f64>, note: impl Into<String>) -> Self {
        Contribution {
            name: name.into(),
            u_percent,
            note: note.into(),
            dof,
            combined: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UncertaintyBudget {
    pub contributions: Vec<Contribution>,
    /// Combined standard uncertainty, %.
    pub combined_u_percent: f64,
    /// Welch–Satterthwaite effective degrees of freedom of u_c; none: infinite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_dof: Option<f64>,
    pub coverage_factor: f64,
    /// The coverage probability `coverage_factor` gives for `effective_dof`.
    #[serde(default = "normal_probability")]
    pub coverage_probability: f64,
    /// Expanded uncertainty U = k · u_c, %.
    pub expanded_u_percent: f64,
    pub combination: String,
}

impl UncertaintyBudget {
    /// u_c as the root sum of squares of the combined terms, ν_eff, k and U.
    pub fn combine(contributions: Vec<Contribution>, combination: impl Into<String>) -> Self {
        let entered: Vec<&Contribution> = contributions.iter().filter(|c| c.combined).collect();
        let combined = entered
            .iter()
            .map(|c| c.u_percent.powi(2))
            .sum::<f64>()
            .sqrt();
        let effective_dof = welch_satterthwaite(
            &entered
                .iter()
                .map(|c| (c.u_percent, c.dof))
                .collect::<Vec<_>>(),
        );
        let k = coverage_factor(effective_dof);
        UncertaintyBudget {
            contributions,
            combined_u_percent: combined,
            effective_dof,
            coverage_factor: k,
            coverage_probability: COVERAGE_PROBABILITY,
            expanded_u_percent: k * combined,
            combination: combination.into(),
        }
    }
}

/// Welch–Satterthwaite (GUM G.4.1): ν_eff = u_c⁴ / Σ uᵢ⁴/νᵢ over `(uᵢ, νᵢ)`, a term
/// without ν being infinite; none when every term with a share of u_c is infinite.
pub fn welch_satterthwaite(terms: &[(f64, Option<f64>)]) -> Option<f64> {
    let uc2: f64 = terms.iter().map(|(u, _)| u * u).sum();
    let denominator: f64 = terms
        .iter()
        .filter_map(|(u, nu)| nu.map(|nu| u.powi(4) / nu.max(f64::MIN_POSITIVE)))
        .sum();
    (denominator > 0.0 && uc2 > 0.0).then(|| uc2 * uc2 / denominator)
}

/// k for [`COVERAGE_PROBABILITY`]: Student's t at ν_eff rounded down to a whole number
/// (GUM G.4.1 note 1; at least 1), and 2 for infinite degrees of freedom.
pub fn coverage_factor(effective_dof: Option<f64>) -> f64 {
    match effective_dof {
        None => 2.0,
        // Beyond a thousand degrees of freedom the first term of t's expansion in 1/ν,
        // z + (z³ + z)/(4ν) with z = 2, is exact to 1e-6 (and statrs' inverse loses
        // accuracy, then time, as ν grows).
        Some(nu) if nu > 1000.0 => 2.0 + 2.5 / nu.floor(),
        Some(nu) => {
            let nu = nu.floor().max(1.0);
            let t = StudentsT::new(0.0, 1.0, nu).expect("ν ≥ 1 is a valid t distribution");
            t.inverse_cdf(0.5 + COVERAGE_PROBABILITY / 2.0)
        }
    }
}

const SQRT3: f64 = 1.732_050_807_568_877_2;
const SQRT6: f64 = 2.449_489_742_783_178;

/// Budget of a point's mean error.
///
/// The random part comes from the timing of the DUT's pulse train, not from the few
/// repeats: the mean error over back-to-back repeats is the error over their whole span,
/// whose scatter the train's own intervals measure with many degrees of freedom (white
/// timing jitter leaves the span almost untouched; noise in the meter's energy
/// accumulation walks it, growing with the span's length: [`PulseTrainScatter`]). The
/// repeats then check the model: if they scatter more than the timing explains
/// (χ² test at 1 %), something slower than a pulse moves the error, and their standard
/// deviation, with its r − 1 degrees of freedom, replaces the timing term.
pub fn uncertainty_budget(inputs: &BudgetInputs) -> UncertaintyBudget {
    let r = inputs.repeats.max(1) as f64;
    let reference = Contribution::new(
        "reference standard",
        inputs.reference_u_k2_percent / 2.0,
        None,
        if inputs.reference_drift_bound_percent.is_some() {
            "the certificate's U (k=2) of the standard's error, corrected for / 2, normal"
        } else {
            "certificate U (k=2) / 2, normal"
        },
    );
    let drift = inputs.reference_drift_bound_percent.map(|bound| {
        Contribution::new(
            "reference drift",
            bound / SQRT3,
            None,
            "declared drift per year × years since its calibration, rectangular",
        )
    });
    let (timebase, quantisation) = match inputs.method {
        ReferenceMethod::GatedReferenceCount => (
            Contribution::new(
                "counter timebase",
                0.0,
                None,
                "cancels: the error is a ratio of two counts in the same gate",
            ),
            Contribution::new(
                "count quantisation",
                100.0 / (inputs.ref_counts_per_gate * SQRT6) / r.sqrt(),
                None,
                "±1 reference count per gate (two truncated latches, triangular) / √repeats",
            ),
        ),
        ReferenceMethod::ReferenceCurrent => {
            unreachable!("energy budgets are for meters; a current sensor has current_budget")
        }
        ReferenceMethod::Timed => (
            Contribution::new(
                "counter timebase",
                inputs.timebase_accuracy_ppm * 1e-4 / SQRT3,
                None,
                "stated timebase accuracy, rectangular",
            ),
            Contribution::new(
                "count quantisation",
                100.0 * inputs.timebase_resolution_s / (inputs.gate_s * SQRT6) / r.sqrt(),
                None,
                "±1 timebase tick per gate (two timestamps, triangular) / √repeats",
            ),
        ),
    };
    let mut timing = Contribution::new(
        "DUT pulse timing",
        0.0,
        None,
        "no pulse train to analyse (fewer than three intervals)",
    );
    let mut repeatability = Contribution::new(
        "repeatability",
        inputs
            .repeat_std_percent
            .map(|s| s / r.sqrt())
            .unwrap_or(0.0),
        (inputs.repeats >= 2).then_some(r - 1.0),
        "type A: s of the repeats / √repeats",
    );
    let mut how = "root sum of squares of reference, timebase, quantisation and the DUT's pulse \
                   timing over the repeats' span";
    match &inputs.pulse_timing {
        Some(train) => {
            let span_s = inputs.gate_s * r;
            timing.u_percent = 100.0 * train.span_variance_s2(train.intervals).sqrt() / span_s;
            timing.dof = Some(train.dof());
            timing.note = format!(
                "scatter of the span of {} pulse intervals from their variance and lag-1 \
                 covariance (jitter and accumulated energy noise) / span",
                train.intervals
            );
            let per_gate = 100.0
                * train
                    .span_variance_s2(inputs.pulses_per_gate as usize)
                    .sqrt()
                / inputs.gate_s;
            match inputs.repeat_std_percent {
                Some(s) if inputs.repeats >= 2 && repeats_exceed(s, per_gate, inputs.repeats) => {
                    timing.combined = false;
                    timing.note.push_str(
                        "; not combined: the repeats scatter more than the timing explains",
                    );
                    how = "root sum of squares of reference, timebase, quantisation and the \
                           repeatability (the repeats scattered more than the pulse timing \
                           explains: χ² test at 1 %)";
                }
                _ => {
                    repeatability.combined = false;
                    repeatability.note.push_str(
                        "; a check, not combined: consistent with the pulse timing (χ² test at 1 %)",
                    );
                }
            }
        }
        None => {
            timing.combined = false;
            how = "root sum of squares of reference, timebase, quantisation and the repeatability";
        }
    }
    let mut terms = vec![reference];
    terms.extend(drift);
    terms.extend([timebase, quantisation, timing, repeatability]);
    UncertaintyBudget::combine(terms, how)
}

/// Whether repeats with standard deviation `s` scatter significantly more than `sigma`
/// predicts: (r − 1)·s²/σ² beyond the χ²(r − 1) quantile at 1 − α.
fn repeats_exceed(s: f64, sigma: f64, repeats: usize) -> bool {
    let nu = (repeats - 1) as f64;
    if sigma <= 0.0 {
        return s > 0.0;
    }
    let critical = ChiSquared::new(nu)
        .expect("ν ≥ 1")
        .inverse_cdf(1.0 - REPEATS_CHECK_ALPHA);
    nu * (s / sigma).powi(2) > critical
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 4 repeats of 10 pulses, 1 s apart, whose intervals scatter by 1 ms without
    /// correlation (energy noise carried from pulse to pulse).
    fn gated() -> BudgetInputs {
        BudgetInputs {
            method: ReferenceMethod::GatedReferenceCount,
            reference_u_k2_percent: 0.01,
            reference_drift_bound_percent: None,
            timebase_accuracy_ppm: 2.0,
            timebase_resolution_s: 8e-9,
            gate_s: 10.0,
            ref_counts_per_gate: 1.0e6,
            pulses_per_gate: 10,
            pulse_timing: Some(PulseTrainScatter {
                intervals: 40,
                gamma0_s2: 1e-6,
                gamma1_s2: 0.0,
            }),
            repeats: 4,
            repeat_std_percent: Some(0.02),
        }
    }

    #[test]
    fn coverage_factors_are_ea_4_02_table_e1() {
        // EA-4/02 M:2022 Table E.1 (t at 95.45 %).
        for (nu, k) in [
            (1.0, 13.97),
            (2.0, 4.53),
            (3.0, 3.31),
            (4.0, 2.87),
            (5.0, 2.65),
            (10.0, 2.28),
            (20.0, 2.13),
            (50.0, 2.05),
        ] {
            assert!((coverage_factor(Some(nu)) - k).abs() < 0.005, "ν = {nu}");
        }
        // ν_eff is rounded down: 4.9 → 4.
        assert_eq!(coverage_factor(Some(4.9)), coverage_factor(Some(4.0)));
        assert_eq!(coverage_factor(None), 2.0);
        // Many degrees of freedom: k = 2 + 2.5/ν (the t quantile's first-order term),
        // equal to t itself at ν = 1000 and 10 000, and never below 2.
        for (nu, k) in [(1e3, 2.002_503), (1e4, 2.000_250), (1e12, 2.0)] {
            assert!((coverage_factor(Some(nu)) - k).abs() < 1e-6, "ν = {nu}");
        }
    }

    #[test]
    fn welch_satterthwaite_hand_case() {
        // u = 0.3 (ν = 4), 0.4 (∞): u_c² = 0.25, ν_eff = 0.0625 / (0.0081 / 4) = 30.864.
        let nu = welch_satterthwaite(&[(0.3, Some(4.0)), (0.4, None)]).unwrap();
        assert!((nu - 30.864_197_5).abs() < 1e-6, "{nu}");
        assert_eq!(welch_satterthwaite(&[(0.3, None), (0.4, None)]), None);
        // A term with ν but no share of u_c does not limit ν_eff.
        assert_eq!(welch_satterthwaite(&[(0.0, Some(2.0)), (0.4, None)]), None);
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
        // timing: span of 40 intervals, variance 40·1e-6 s², sd 6.3246 ms over 40 s:
        // 0.0158114 %, ν = 40/3
        assert!((u[3] - 0.015_811_388).abs() < 1e-9);
        assert_eq!(b.contributions[3].dof, Some(40.0 / 3.0));
        // repeatability 0.02/2 = 0.01, a check only: a gate's predicted scatter is
        // √(10e-6) s / 10 s = 0.0316 %, and 3·(0.02/0.0316)² = 1.2 < χ²(3, 0.99) = 11.34
        assert!((u[4] - 0.01).abs() < 1e-12);
        assert!(b.contributions[3].combined && !b.contributions[4].combined);
        // u_c = √(0.005² + 2.0412e-5² + 0.0158114²) = 0.016583137
        assert!((b.combined_u_percent - 0.016_583_137).abs() < 1e-8);
        // ν_eff = u_c⁴ / (0.0158114⁴ / 13.333) = 16.13 → 16, k = t(16) = 2.16894
        assert!((b.effective_dof.unwrap() - 16.133_382).abs() < 1e-5);
        assert!((b.coverage_factor - 2.168_94).abs() < 1e-5);
        assert!((b.expanded_u_percent - 0.035_967_83).abs() < 1e-7);
    }

    #[test]
    fn repeats_that_scatter_more_than_the_timing_explains_replace_it() {
        let mut i = gated();
        // 3·(0.2/0.0316)² = 120 > 11.34: something slower than a pulse moved the error.
        i.repeat_std_percent = Some(0.2);
        let b = uncertainty_budget(&i);
        assert!(!b.contributions[3].combined && b.contributions[4].combined);
        // u_c = √(0.005² + 2.0412e-5² + 0.1²) = 0.100124924, ν_eff = 3.015 → 3,
        // k = 3.30682
        assert!((b.combined_u_percent - 0.100_124_924).abs() < 1e-8);
        assert!((b.coverage_factor - 3.306_822).abs() < 1e-5);
        assert!((b.expanded_u_percent - 0.331_095_32).abs() < 1e-7);
    }

    #[test]
    fn a_corrected_reference_adds_its_drift() {
        let mut i = gated();
        i.reference_u_k2_percent = 0.004;
        i.reference_drift_bound_percent = Some(0.003);
        let b = uncertainty_budget(&i);
        // reference 0.004/2 = 0.002; drift 0.003/√3 = 0.0017320508
        assert_eq!(b.contributions[1].name, "reference drift");
        assert!((b.contributions[0].u_percent - 0.002).abs() < 1e-12);
        assert!((b.contributions[1].u_percent - 0.001_732_050_8).abs() < 1e-10);
        // u_c = √(0.002² + 0.0017320508² + 2.0412e-5² + 0.0158114²) = 0.015030…
        let uc = (0.002f64.powi(2)
            + 0.001_732_050_8f64.powi(2)
            + 2.041_241_5e-5f64.powi(2)
            + 0.015_811_388f64.powi(2))
        .sqrt();
        assert!((b.combined_u_percent - uc).abs() < 1e-9);
    }

    #[test]
    fn timed_hand_case() {
        let i = BudgetInputs {
            method: ReferenceMethod::Timed,
            reference_u_k2_percent: 0.02,
            reference_drift_bound_percent: None,
            timebase_accuracy_ppm: 5.0,
            timebase_resolution_s: 1e-7,
            gate_s: 20.0,
            ref_counts_per_gate: 0.0,
            pulses_per_gate: 3,
            pulse_timing: None,
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
        // Every term is type B: ν_eff infinite, k = 2.
        assert_eq!((b.effective_dof, b.coverage_factor), (None, 2.0));
        assert!(
            (b.expanded_u_percent - 2.0 * (0.01f64.powi(2) + 2.886_751_3e-4f64.powi(2)).sqrt())
                .abs()
                < 1e-9
        );
    }
}
