//! Power factor as a technician writes it: `1`, `0.5i` (inductive), `0.8c` (capacitive).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Whether the current lags (inductive) or leads (capacitive) the voltage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PfCharacter {
    Unity,
    Inductive,
    Capacitive,
}

/// cos φ with its character. Unity is exactly 1. Written (and stored in records) as a
/// technician writes it: `"1"`, `"0.5i"`, `"0.8c"`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct PowerFactor {
    pub cos_phi: f64,
    pub character: PfCharacter,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PowerFactorParseError {
    #[error(
        "power factor `{0}` is not a number with an optional `i` (inductive) or `c` (capacitive) suffix, e.g. `1`, `0.5i`, `0.8c`"
    )]
    Syntax(String),
    #[error("power factor `{0}` must lie in 0 < cos φ ≤ 1")]
    OutOfRange(String),
    #[error("power factor `{0}` below 1 needs `i` (inductive) or `c` (capacitive)")]
    MissingCharacter(String),
}

impl PowerFactor {
    pub const UNITY: PowerFactor = PowerFactor {
        cos_phi: 1.0,
        character: PfCharacter::Unity,
    };

    /// Phase angle of the current against the voltage in degrees; positive = current lags
    /// (inductive), as the source's phase setpoint expects.
    pub fn current_lag_deg(&self) -> f64 {
        let phi = self.cos_phi.clamp(-1.0, 1.0).acos().to_degrees();
        match self.character {
            PfCharacter::Unity => 0.0,
            PfCharacter::Inductive => phi,
            PfCharacter::Capacitive => -phi,
        }
    }

    pub fn is_unity(&self) -> bool {
        self.character == PfCharacter::Unity
    }
}

impl FromStr for PowerFactor {
    type Err = PowerFactorParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let (num, character) = match t.chars().last() {
            Some('i' | 'I' | 'L') => (&t[..t.len() - 1], Some(PfCharacter::Inductive)),
            Some('c' | 'C') => (&t[..t.len() - 1], Some(PfCharacter::Capacitive)),
            _ => (t, None),
        };
        let cos_phi: f64 = num
            .trim()
            .parse()
            .map_err(|_| PowerFactorParseError::Syntax(s.to_string()))?;
        if !(cos_phi > 0.0 && cos_phi <= 1.0) {
            return Err(PowerFactorParseError::OutOfRange(s.to_string()));
        }
        let character = match character {
            _ if cos_phi == 1.0 => PfCharacter::Unity,
            Some(c) => c,
            None => return Err(PowerFactorParseError::MissingCharacter(s.to_string())),
        };
        Ok(PowerFactor { cos_phi, character })
    }
}

impl From<PowerFactor> for String {
    fn from(pf: PowerFactor) -> String {
        pf.to_string()
    }
}

impl TryFrom<String> for PowerFactor {
    type Error = PowerFactorParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for PowerFactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.character {
            PfCharacter::Unity => write!(f, "1"),
            PfCharacter::Inductive => write!(f, "{}i", self.cos_phi),
            PfCharacter::Capacitive => write!(f, "{}c", self.cos_phi),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_technicians_write() {
        assert_eq!("1".parse::<PowerFactor>().unwrap(), PowerFactor::UNITY);
        assert_eq!("1.0".parse::<PowerFactor>().unwrap(), PowerFactor::UNITY);
        let ind: PowerFactor = "0.5i".parse().unwrap();
        assert_eq!(ind.character, PfCharacter::Inductive);
        assert_eq!(ind.cos_phi, 0.5);
        let cap: PowerFactor = "0.8c".parse().unwrap();
        assert_eq!(cap.character, PfCharacter::Capacitive);
        assert_eq!(cap.to_string(), "0.8c");
    }

    #[test]
    fn phase_angle_sign_follows_character() {
        // cos 60° = 0.5: inductive current lags by 60°.
        let ind: PowerFactor = "0.5i".parse().unwrap();
        assert!((ind.current_lag_deg() - 60.0).abs() < 1e-9);
        // cos φ = 0.8 → φ = 36.8699°; capacitive current leads.
        let cap: PowerFactor = "0.8c".parse().unwrap();
        assert!((cap.current_lag_deg() + 36.869_897_645_844).abs() < 1e-9);
        assert_eq!(PowerFactor::UNITY.current_lag_deg(), 0.0);
    }

    #[test]
    fn is_stored_as_written() {
        let pf: PowerFactor = "0.5i".parse().unwrap();
        assert_eq!(serde_json::to_string(&pf).unwrap(), "\"0.5i\"");
        let back: PowerFactor = serde_json::from_str("\"0.8c\"").unwrap();
        assert_eq!(back.to_string(), "0.8c");
        assert!(serde_json::from_str::<PowerFactor>("\"0.8\"").is_err());
    }

    #[test]
    fn rejects_nonsense() {
        assert!(matches!(
            "0.5".parse::<PowerFactor>(),
            Err(PowerFactorParseError::MissingCharacter(_))
        ));
        assert!(matches!(
            "1.2".parse::<PowerFactor>(),
            Err(PowerFactorParseError::OutOfRange(_))
        ));
        assert!(matches!(
            "0i".parse::<PowerFactor>(),
            Err(PowerFactorParseError::OutOfRange(_))
        ));
        assert!(matches!(
            "x".parse::<PowerFactor>(),
            Err(PowerFactorParseError::Syntax(_))
        ));
    }
}
