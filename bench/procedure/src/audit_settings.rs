//! How the audit states process capability: the smallest number of results a Cpk is
//! stated from, and the confidence of the interval stated with it. Data with a source
//! (`audit/settings.yaml` in a bench home), never constants in code.

use crate::bounds;
use crate::yaml::{DataError, LoadedFile, Pos};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use std::path::Path;

pub const AUDIT_SETTINGS_SCHEMA: &str = "meterbench.audit-settings/1";
/// Where a bench home keeps its audit settings.
pub const AUDIT_SETTINGS_FILE: &str = "audit/settings.yaml";
/// The shipped settings, for a home from before they existed (and for tests).
const SHIPPED: &str = include_str!("../../../audit/settings.yaml");

/// When and how a Cpk is stated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpkRule {
    /// A Cpk from fewer results is withheld.
    pub min_n: u64,
    /// Coverage of the interval stated with a Cpk (e.g. 0.95).
    pub confidence: f64,
    pub source: String,
}

/// An audit settings file.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub file: LoadedFile,
    pub cpk: CpkRule,
}

mod raw {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Settings {
        pub schema: Spanned<String>,
        pub cpk: Cpk,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Cpk {
        pub min_n: Spanned<f64>,
        pub confidence: Spanned<f64>,
        pub source: Spanned<String>,
    }
}

/// From 2 results (a standard deviation needs two) to a million.
const MIN_N: bounds::Range = bounds::Range {
    lo: 2.0,
    lo_ok: true,
    hi: 1e6,
    unit: "",
};

/// An interval's confidence: more than a half, less than one.
const CONFIDENCE: bounds::Range = bounds::Range {
    lo: 0.5,
    lo_ok: false,
    hi: 0.9999,
    unit: "",
};

impl AuditSettings {
    pub fn load(path: &Path) -> Result<AuditSettings, DataError> {
        AuditSettings::from_file(LoadedFile::read(path)?)
    }

    /// The settings meterbench ships (`audit/settings.yaml` of its repository).
    pub fn shipped() -> AuditSettings {
        AuditSettings::from_file(LoadedFile::from_text(
            Path::new(AUDIT_SETTINGS_FILE),
            SHIPPED.to_string(),
        ))
        .unwrap_or_else(|e| panic!("the shipped audit settings are invalid: {e}"))
    }

    pub fn from_file(file: LoadedFile) -> Result<AuditSettings, DataError> {
        let raw: raw::Settings = file.parse()?;
        let path = file.path.clone();
        if raw.schema.value != AUDIT_SETTINGS_SCHEMA {
            return Err(DataError::at(
                &path,
                Pos::of(&raw.schema),
                format!(
                    "schema `{}` is not `{AUDIT_SETTINGS_SCHEMA}`",
                    raw.schema.value
                ),
            ));
        }
        let min_n = bounds::spanned(&path, "cpk min_n", &raw.cpk.min_n, MIN_N)?;
        if min_n.fract() != 0.0 {
            return Err(DataError::at(
                &path,
                Pos::of(&raw.cpk.min_n),
                format!("cpk min_n must be a whole number of results, not {min_n}"),
            ));
        }
        let confidence = bounds::spanned(&path, "cpk confidence", &raw.cpk.confidence, CONFIDENCE)?;
        if raw.cpk.source.value.trim().is_empty() {
            return Err(DataError::at(
                &path,
                Pos::of(&raw.cpk.source),
                "the Cpk rule needs a source note",
            ));
        }
        Ok(AuditSettings {
            file,
            cpk: CpkRule {
                min_n: min_n as u64,
                confidence,
                source: raw.cpk.source.value,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AuditSettings, DataError> {
        AuditSettings::from_file(LoadedFile::from_text(Path::new("a.yaml"), text.to_string()))
    }

    #[test]
    fn the_shipped_settings_load() {
        let s = AuditSettings::shipped();
        assert_eq!((s.cpk.min_n, s.cpk.confidence), (30, 0.95));
        assert!(s.cpk.source.contains("Bissell"));
    }

    #[test]
    fn bad_values_are_refused_where_they_are_written() {
        let base = "schema: meterbench.audit-settings/1\ncpk:\n  min_n: 30\n  confidence: 0.95\n  source: s\n";
        assert!(parse(base).is_ok());
        for (from, to, says) in [
            ("min_n: 30", "min_n: 1", "a.yaml:3:"),
            ("min_n: 30", "min_n: 2.5", "whole number"),
            ("confidence: 0.95", "confidence: 1.5", "a.yaml:4:"),
            ("source: s", "source: \" \"", "needs a source"),
            ("audit-settings/1", "audit-settings/9", "is not"),
        ] {
            let e = parse(&base.replace(from, to)).unwrap_err().to_string();
            assert!(e.contains(says), "{to}: {e}");
        }
    }
}
