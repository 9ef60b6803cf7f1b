//! The smallest test uncertainty ratio (MPE / U) at which a point gets a statement of
//! conformity: a procedure declares it with its source, and a point whose U is larger
//! than the MPE divided by it is "not decidable at this uncertainty".

use crate::bounds;
use crate::yaml::{DataError, Pos};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use std::path::Path;

/// The ratio a procedure that declares none gets: the common practice ILAC-G8 names.
pub const DEFAULT_MIN_RATIO: f64 = 3.0;
/// Where [`DEFAULT_MIN_RATIO`] comes from, printed on the certificate.
pub const DEFAULT_SOURCE: &str = "ILAC-G8:09/2019 4.2.1 and 4.2.2 (simple acceptance is sensible only when U is small against the limit): U ≤ MPE/3, the common practice it names; the bench's default where a procedure declares none";

/// `test_uncertainty_ratio: {min: 3, source: ...}` in a procedure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UncertaintyRatio {
    /// A point needs U ≤ MPE / min for a statement of conformity.
    pub min: f64,
    pub source: String,
}

impl Default for UncertaintyRatio {
    fn default() -> Self {
        UncertaintyRatio {
            min: DEFAULT_MIN_RATIO,
            source: DEFAULT_SOURCE.to_string(),
        }
    }
}

/// The YAML form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRatio {
    pub min: Spanned<f64>,
    pub source: Spanned<String>,
}

/// A ratio from 1 (U may reach the limit) to 20: beyond that no lab could calibrate.
const RATIO: bounds::Range = bounds::Range {
    lo: 1.0,
    lo_ok: true,
    hi: 20.0,
    unit: "",
};

impl UncertaintyRatio {
    pub(crate) fn parse(path: &Path, raw: Option<&RawRatio>) -> Result<Self, DataError> {
        let Some(r) = raw else {
            return Ok(UncertaintyRatio::default());
        };
        let min = bounds::spanned(path, "test_uncertainty_ratio min", &r.min, RATIO)?;
        if r.source.value.trim().is_empty() {
            return Err(DataError::at(
                path,
                Pos::of(&r.source),
                "the test uncertainty ratio needs a source note",
            ));
        }
        Ok(UncertaintyRatio {
            min,
            source: r.source.value.clone(),
        })
    }

    /// The largest U (k = 2) that still allows a statement against `mpe_percent`.
    pub fn max_u_percent(&self, mpe_percent: f64) -> f64 {
        mpe_percent / self.min
    }
}
