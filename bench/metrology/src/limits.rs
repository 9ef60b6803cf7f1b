//! Maximum permissible error lookup. The table itself is procedure data with its source;
//! this module only finds the one rule that covers a load point.

use crate::load::{PfCharacter, PowerFactor};
use serde::{Deserialize, Serialize};

/// Which elements of a polyphase meter carry current.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadKind {
    /// Every element carries the same current (or the meter has one element).
    Balanced,
    /// One element of a polyphase meter carries current, the others none.
    SinglePhase,
}

/// A current interval in amperes, resolved from the fixture's rated currents.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurrentRange {
    pub from_a: f64,
    pub from_inclusive: bool,
    pub to_a: f64,
    pub to_inclusive: bool,
}

impl CurrentRange {
    pub fn contains(&self, current_a: f64) -> bool {
        let above = if self.from_inclusive {
            current_a >= self.from_a
        } else {
            current_a > self.from_a
        };
        let below = if self.to_inclusive {
            current_a <= self.to_a
        } else {
            current_a < self.to_a
        };
        above && below
    }
}

/// Power factors a rule covers: unity, inductive down to `lowest_inductive`, capacitive
/// down to `lowest_capacitive` (cos φ values). A PF-1-only rule has both at 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PfRange {
    pub lowest_inductive: f64,
    pub lowest_capacitive: f64,
}

impl PfRange {
    pub const UNITY_ONLY: PfRange = PfRange {
        lowest_inductive: 1.0,
        lowest_capacitive: 1.0,
    };

    pub fn contains(&self, pf: PowerFactor) -> bool {
        // A tolerance keeps 0.5 written as 0.5 inside a range whose end is 0.5.
        const EPS: f64 = 1e-9;
        match pf.character {
            PfCharacter::Unity => true,
            PfCharacter::Inductive => pf.cos_phi + EPS >= self.lowest_inductive,
            PfCharacter::Capacitive => pf.cos_phi + EPS >= self.lowest_capacitive,
        }
    }
}

/// One row of a procedure's limit table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitRule {
    pub name: String,
    pub current: CurrentRange,
    pub power_factor: PfRange,
    pub load: LoadKind,
    /// Symmetric maximum permissible error, percent, > 0.
    pub mpe_percent: f64,
    /// Where the number comes from (standard, clause, confidence).
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LimitLookupError {
    #[error("no limit rule covers {current_a} A, PF {pf}, {load:?} load")]
    NoRule {
        current_a: f64,
        pf: String,
        load: LoadKind,
    },
    #[error(
        "limit rules {names:?} all cover {current_a} A, PF {pf}, {load:?} load; make the table unambiguous"
    )]
    Ambiguous {
        names: Vec<String>,
        current_a: f64,
        pf: String,
        load: LoadKind,
    },
}

/// The single rule covering the point; none or several is an error in the table.
pub fn lookup_limit(
    rules: &[LimitRule],
    current_a: f64,
    pf: PowerFactor,
    load: LoadKind,
) -> Result<&LimitRule, LimitLookupError> {
    let matching: Vec<&LimitRule> = rules
        .iter()
        .filter(|r| r.load == load && r.current.contains(current_a) && r.power_factor.contains(pf))
        .collect();
    match matching.as_slice() {
        [one] => Ok(one),
        [] => Err(LimitLookupError::NoRule {
            current_a,
            pf: pf.to_string(),
            load,
        }),
        many => Err(LimitLookupError::Ambiguous {
            names: many.iter().map(|r| r.name.clone()).collect(),
            current_a,
            pf: pf.to_string(),
            load,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_b_table() -> Vec<LimitRule> {
        let (imin, itr, imax) = (0.25, 0.5, 32.0);
        vec![
            LimitRule {
                name: "low".into(),
                current: CurrentRange {
                    from_a: imin,
                    from_inclusive: true,
                    to_a: itr,
                    to_inclusive: false,
                },
                power_factor: PfRange::UNITY_ONLY,
                load: LoadKind::Balanced,
                mpe_percent: 1.5,
                source: "test".into(),
            },
            LimitRule {
                name: "high".into(),
                current: CurrentRange {
                    from_a: itr,
                    from_inclusive: true,
                    to_a: imax,
                    to_inclusive: true,
                },
                power_factor: PfRange {
                    lowest_inductive: 0.5,
                    lowest_capacitive: 0.8,
                },
                load: LoadKind::Balanced,
                mpe_percent: 1.0,
                source: "test".into(),
            },
            LimitRule {
                name: "single".into(),
                current: CurrentRange {
                    from_a: itr,
                    from_inclusive: true,
                    to_a: imax,
                    to_inclusive: true,
                },
                power_factor: PfRange::UNITY_ONLY,
                load: LoadKind::SinglePhase,
                mpe_percent: 2.0,
                source: "test".into(),
            },
        ]
    }

    fn pf(s: &str) -> PowerFactor {
        s.parse().unwrap()
    }

    #[test]
    fn range_edges_follow_the_standard() {
        let t = class_b_table();
        // Imin belongs to the low range, Itr to the high one (Imin ≤ I < Itr ≤ I ≤ Imax).
        assert_eq!(
            lookup_limit(&t, 0.25, pf("1"), LoadKind::Balanced)
                .unwrap()
                .mpe_percent,
            1.5
        );
        assert_eq!(
            lookup_limit(&t, 0.499, pf("1"), LoadKind::Balanced)
                .unwrap()
                .mpe_percent,
            1.5
        );
        assert_eq!(
            lookup_limit(&t, 0.5, pf("1"), LoadKind::Balanced)
                .unwrap()
                .mpe_percent,
            1.0
        );
        assert_eq!(
            lookup_limit(&t, 32.0, pf("0.5i"), LoadKind::Balanced)
                .unwrap()
                .mpe_percent,
            1.0
        );
        assert_eq!(
            lookup_limit(&t, 5.0, pf("0.8c"), LoadKind::Balanced)
                .unwrap()
                .mpe_percent,
            1.0
        );
        assert_eq!(
            lookup_limit(&t, 5.0, pf("1"), LoadKind::SinglePhase)
                .unwrap()
                .mpe_percent,
            2.0
        );
    }

    #[test]
    fn points_outside_every_rule_are_reported() {
        let t = class_b_table();
        assert!(matches!(
            lookup_limit(&t, 0.02, pf("1"), LoadKind::Balanced),
            Err(LimitLookupError::NoRule { .. })
        ));
        assert!(matches!(
            lookup_limit(&t, 40.0, pf("1"), LoadKind::Balanced),
            Err(LimitLookupError::NoRule { .. })
        ));
        // 0.5c is below the capacitive end 0.8c.
        assert!(matches!(
            lookup_limit(&t, 5.0, pf("0.5c"), LoadKind::Balanced),
            Err(LimitLookupError::NoRule { .. })
        ));
        // PF 0.5i at Imin has no rule in this table.
        assert!(lookup_limit(&t, 0.25, pf("0.5i"), LoadKind::Balanced).is_err());
    }

    #[test]
    fn overlapping_rules_are_ambiguous() {
        let mut t = class_b_table();
        let mut dup = t[1].clone();
        dup.name = "dup".into();
        t.push(dup);
        match lookup_limit(&t, 5.0, pf("1"), LoadKind::Balanced) {
            Err(LimitLookupError::Ambiguous { names, .. }) => {
                assert_eq!(names, vec!["high", "dup"])
            }
            other => panic!("{other:?}"),
        }
    }
}
