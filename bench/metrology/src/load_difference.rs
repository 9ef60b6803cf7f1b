//! The single-phase load check of a polyphase meter: its error with the current on one
//! element against its error with a balanced load, at the same current and power
//! factor. The limit on the difference is the procedure's (data with its source).

use crate::decision::{Decision, DecisionRule, decide};
use crate::uncertainty::{Contribution, UncertaintyBudget};
use serde::{Deserialize, Serialize};

/// What the check takes of one measured point: its mean error and its budget's
/// combined standard uncertainty with the effective degrees of freedom.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointError {
    pub error_percent: f64,
    pub combined_u_percent: f64,
    /// None: infinite.
    pub effective_dof: Option<f64>,
}

impl PointError {
    pub fn of(error_percent: f64, budget: &UncertaintyBudget) -> PointError {
        PointError {
            error_percent,
            combined_u_percent: budget.combined_u_percent,
            effective_dof: budget.effective_dof,
        }
    }
}

/// The difference e_single − e_balanced, its budget and the decision on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadDifference {
    /// e_single − e_balanced, percentage points.
    pub difference_percent: f64,
    pub budget: UncertaintyBudget,
    pub expanded_u_percent: f64,
    pub decision: Decision,
}

/// The two points' uncertainties are combined as independent. Their shared part (the
/// reference standard's correction and drift at the same range and power factor) would
/// cancel in the difference if the standard's error were the same with one loaded
/// phase as with three; its certificate does not say so, so nothing is cancelled and
/// U of the difference is, if anything, too large.
pub const COMBINATION: &str = "the balanced point's u_c and the single-phase point's u_c combined as independent (their shared reference terms are not cancelled), ν_eff by Welch–Satterthwaite";

/// Decide the difference between a single-phase and a balanced point against
/// ± `max_difference_percent` under the procedure's decision rule.
pub fn load_difference(
    rule: DecisionRule,
    balanced: PointError,
    single_phase: PointError,
    max_difference_percent: f64,
) -> LoadDifference {
    let difference_percent = single_phase.error_percent - balanced.error_percent;
    let budget = UncertaintyBudget::combine(
        vec![
            Contribution::new(
                "balanced point",
                balanced.combined_u_percent,
                balanced.effective_dof,
                "u_c of the point with balanced load",
            ),
            Contribution::new(
                "single-phase point",
                single_phase.combined_u_percent,
                single_phase.effective_dof,
                "u_c of the point with one loaded element",
            ),
        ],
        COMBINATION,
    );
    let expanded_u_percent = budget.expanded_u_percent;
    LoadDifference {
        difference_percent,
        decision: decide(
            rule,
            difference_percent,
            expanded_u_percent,
            max_difference_percent,
        ),
        budget,
        expanded_u_percent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Conformity;

    fn point(e: f64, u: f64, dof: Option<f64>) -> PointError {
        PointError {
            error_percent: e,
            combined_u_percent: u,
            effective_dof: dof,
        }
    }

    #[test]
    fn difference_and_its_uncertainty_by_hand() {
        // d = 0.40 − 0.10 = 0.30; u = √(0.03² + 0.04²) = 0.05; both ν infinite: k = 2.
        let d = load_difference(
            DecisionRule::SimpleAcceptance,
            point(0.10, 0.03, None),
            point(0.40, 0.04, None),
            1.5,
        );
        assert!((d.difference_percent - 0.30).abs() < 1e-12);
        assert!((d.budget.combined_u_percent - 0.05).abs() < 1e-12);
        assert_eq!(d.budget.coverage_factor, 2.0);
        assert!((d.expanded_u_percent - 0.10).abs() < 1e-12);
        assert_eq!(d.decision.conformity, Conformity::Pass);
    }

    #[test]
    fn few_degrees_of_freedom_widen_k() {
        // u = 0.05 with ν_eff = 0.05⁴ / (0.03⁴/2 + 0.04⁴/2) = 2 · 625/337 = 3.709…:
        // t at 95.45 % for ν = 3 is 3.307 (EA-4/02 Table E.1).
        let d = load_difference(
            DecisionRule::SimpleAcceptance,
            point(0.0, 0.03, Some(2.0)),
            point(0.0, 0.04, Some(2.0)),
            1.5,
        );
        let nu = d.budget.effective_dof.unwrap();
        assert!((nu - 1250.0 / 337.0).abs() < 1e-9, "{nu}");
        assert!((d.budget.coverage_factor - 3.307).abs() < 0.001);
    }

    #[test]
    fn decided_under_the_procedures_rule() {
        // |d| = 1.45 within 1.5 but U = 0.1 reaches over it.
        let simple = load_difference(
            DecisionRule::SimpleAcceptance,
            point(0.05, 0.03, None),
            point(-1.40, 0.04, None),
            1.5,
        );
        assert!((simple.difference_percent + 1.45).abs() < 1e-12);
        assert!(simple.decision.accepted);
        let guarded = load_difference(
            DecisionRule::GuardBanded,
            point(0.05, 0.03, None),
            point(-1.40, 0.04, None),
            1.5,
        );
        assert_eq!(guarded.decision.conformity, Conformity::ConditionalPass);
        assert!(!guarded.decision.accepted);
        let over = load_difference(
            DecisionRule::SimpleAcceptance,
            point(-0.2, 0.03, None),
            point(1.4, 0.04, None),
            1.5,
        );
        assert_eq!(over.decision.conformity, Conformity::Fail);
    }
}
