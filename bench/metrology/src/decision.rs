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

/// The DCC conformity values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Conformity {
    Pass,
    Fail,
    ConditionalPass,
    ConditionalFail,
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
}
