//! Decision rules (ILAC-G8:2019) and the conformity statement they give.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionRule {
    /// Accept when |e| ≤ MPE; U is reported but not subtracted.
    SimpleAcceptance,
    /// Accept only when |e| + U ≤ MPE (guard band w = U).
    GuardBanded,
}

/// The DCC conformity values, and the absence of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Conformity {
    Pass,
    Fail,
    ConditionalPass,
    ConditionalFail,
    /// No statement of conformity: U is too large against the MPE for the procedure's
    /// test uncertainty ratio, so the point cannot support a pass (it was not shown
    /// beyond the limit by more than U either). The DCC has no value for it: the
    /// conformity element is left out and the reason given.
    NoStatement,
}

impl Conformity {
    /// What the operator, the certificate and the auditor read.
    pub fn statement(self) -> &'static str {
        match self {
            Conformity::Pass => "pass",
            Conformity::Fail => "fail",
            Conformity::ConditionalPass => "conditional pass",
            Conformity::ConditionalFail => "conditional fail",
            Conformity::NoStatement => "not decidable at this uncertainty",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub rule: DecisionRule,
    pub conformity: Conformity,
    /// Whether the point is accepted under the rule.
    pub accepted: bool,
}

/// Decide one point from its error, expanded uncertainty and symmetric MPE (all in %).
pub fn decide(
    rule: DecisionRule,
    error_percent: f64,
    expanded_u_percent: f64,
    mpe_percent: f64,
) -> Decision {
    let e = error_percent.abs();
    let u = expanded_u_percent.abs();
    let conformity = if e + u <= mpe_percent {
        Conformity::Pass
    } else if e - u > mpe_percent {
        Conformity::Fail
    } else if e <= mpe_percent {
        Conformity::ConditionalPass
    } else {
        Conformity::ConditionalFail
    };
    let (conformity, accepted) = match rule {
        // Under simple acceptance the uncertainty zone is not a third outcome.
        DecisionRule::SimpleAcceptance => {
            if e <= mpe_percent {
                (Conformity::Pass, true)
            } else {
                (Conformity::Fail, false)
            }
        }
        DecisionRule::GuardBanded => (conformity, conformity == Conformity::Pass),
    };
    Decision {
        rule,
        conformity,
        accepted,
    }
}

/// [`decide`], unless U is larger than the MPE divided by `min_ratio` (the smallest test
/// uncertainty ratio MPE/U the procedure accepts): then the point gets no statement of
/// conformity, except a fail beyond doubt (|e| − U > MPE), which U cannot change.
/// ILAC-G8:09/2019 leaves the ratio to the laboratory; U ≤ MPE/3 is common practice.
pub fn decide_at_ratio(
    rule: DecisionRule,
    error_percent: f64,
    expanded_u_percent: f64,
    mpe_percent: f64,
    min_ratio: f64,
) -> Decision {
    let u = expanded_u_percent.abs();
    let decided = decide(rule, error_percent, expanded_u_percent, mpe_percent);
    let small_enough = u * min_ratio <= mpe_percent;
    let beyond_doubt = error_percent.abs() - u > mpe_percent;
    if small_enough || beyond_doubt {
        return decided;
    }
    Decision {
        rule,
        conformity: Conformity::NoStatement,
        accepted: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Conformity::*;
    use DecisionRule::*;

    #[test]
    fn simple_acceptance() {
        assert_eq!(decide(SimpleAcceptance, 0.9, 0.2, 1.0).conformity, Pass);
        assert_eq!(decide(SimpleAcceptance, -1.0, 0.2, 1.0).conformity, Pass);
        let d = decide(SimpleAcceptance, 1.05, 0.2, 1.0);
        assert_eq!((d.conformity, d.accepted), (Fail, false));
    }

    #[test]
    fn guard_banded_four_zones() {
        // |e| + U ≤ MPE
        assert_eq!(decide(GuardBanded, 0.7, 0.3, 1.0).conformity, Pass);
        // inside MPE but U reaches over it
        let d = decide(GuardBanded, -0.8, 0.3, 1.0);
        assert_eq!((d.conformity, d.accepted), (ConditionalPass, false));
        // over MPE but U reaches back under it
        assert_eq!(
            decide(GuardBanded, 1.2, 0.3, 1.0).conformity,
            ConditionalFail
        );
        // |e| − U > MPE
        assert_eq!(decide(GuardBanded, -1.31, 0.3, 1.0).conformity, Fail);
        assert!(decide(GuardBanded, 0.7, 0.3, 1.0).accepted);
    }

    #[test]
    fn no_statement_when_u_is_too_large_for_the_ratio() {
        // The CSP1 at 1 A: U 57.7 % against ±5 %: whatever the error, no pass.
        let d = decide_at_ratio(SimpleAcceptance, 0.0, 57.7, 5.0, 3.0);
        assert_eq!((d.conformity, d.accepted), (NoStatement, false));
        let d = decide_at_ratio(SimpleAcceptance, 32.0, 57.7, 5.0, 3.0);
        assert_eq!(d.conformity, NoStatement);
        // Beyond the limit by more than U: a fail whatever the ratio.
        let d = decide_at_ratio(SimpleAcceptance, 70.0, 57.7, 5.0, 3.0);
        assert_eq!((d.conformity, d.accepted), (Fail, false));
        // At the ratio exactly (U = MPE/3) the rule decides as it would.
        let d = decide_at_ratio(SimpleAcceptance, 4.0, 5.0 / 3.0, 5.0, 3.0);
        assert_eq!((d.conformity, d.accepted), (Pass, true));
        let d = decide_at_ratio(GuardBanded, 4.0, 5.0 / 3.0, 5.0, 3.0);
        assert_eq!(d.conformity, ConditionalPass);
        // Just over it: no statement, under either rule.
        let d = decide_at_ratio(GuardBanded, 0.1, 1.7, 5.0, 3.0);
        assert_eq!(d.conformity, NoStatement);
        assert_eq!(NoStatement.statement(), "not decidable at this uncertainty");
    }
}
