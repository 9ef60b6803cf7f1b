//! The reference conditions a procedure's points are measured in (ISO/IEC 17025
//! 7.8.4.1 b: the conditions that influence the results, measured, with the limits they
//! must lie in): the ambient temperature and, where the procedure sets one, the relative
//! humidity, with their source, and what the bench does when the room is outside them.

use crate::bounds;
use crate::yaml::{DataError, Pos};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use std::path::Path;

/// What happens when the ambient conditions are outside the reference conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutsidePolicy {
    /// Nothing is switched on while the room is outside; a point measured after the
    /// room drifted out is marked and gets no statement of conformity.
    Refuse,
    /// The run goes on; every point measured outside is marked and gets no statement
    /// of conformity (the limits hold at the reference conditions only).
    Mark,
}

/// `reference_conditions:` of a procedure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceConditions {
    /// Reference temperature and its tolerance, °C.
    pub temperature_c: f64,
    pub temperature_tolerance_c: f64,
    /// Relative humidity range (min, max), % RH, when the procedure sets one.
    pub humidity_percent_rh: Option<(f64, f64)>,
    pub outside: OutsidePolicy,
    /// Where the numbers come from (the standard and clause), printed on the certificate.
    pub source: String,
    /// Where the procedure declares them.
    #[serde(skip)]
    pub pos: Pos,
}

/// The YAML form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConditions {
    pub temperature_c: RawTemperature,
    #[serde(default)]
    pub humidity_percent_rh: Option<RawHumidity>,
    pub outside: OutsidePolicy,
    pub source: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTemperature {
    pub nominal: Spanned<f64>,
    pub tolerance: Spanned<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHumidity {
    pub min: Spanned<f64>,
    pub max: Spanned<f64>,
}

/// A laboratory's air: −10 to 50 °C covers every reference temperature a meter standard
/// names (IEC 62052-11 lets a manufacturer choose one; 23 °C is the usual).
const TEMPERATURE_C: bounds::Range = bounds::Range {
    lo: -10.0,
    lo_ok: true,
    hi: 50.0,
    unit: "°C",
};
const TOLERANCE_C: bounds::Range = bounds::Range {
    lo: 0.0,
    lo_ok: false,
    hi: 20.0,
    unit: "°C",
};
const HUMIDITY_RH: bounds::Range = bounds::Range {
    lo: 0.0,
    lo_ok: true,
    hi: 100.0,
    unit: "% RH",
};

impl ReferenceConditions {
    pub(crate) fn parse(path: &Path, raw: &RawConditions, pos: Pos) -> Result<Self, DataError> {
        let temperature_c = bounds::spanned(
            path,
            "reference_conditions temperature_c nominal",
            &raw.temperature_c.nominal,
            TEMPERATURE_C,
        )?;
        let temperature_tolerance_c = bounds::spanned(
            path,
            "reference_conditions temperature_c tolerance",
            &raw.temperature_c.tolerance,
            TOLERANCE_C,
        )?;
        let humidity_percent_rh = match &raw.humidity_percent_rh {
            None => None,
            Some(h) => {
                let min = bounds::spanned(path, "humidity_percent_rh min", &h.min, HUMIDITY_RH)?;
                let max = bounds::spanned(path, "humidity_percent_rh max", &h.max, HUMIDITY_RH)?;
                if max <= min {
                    return Err(DataError::at(
                        path,
                        Pos::of(&h.max),
                        format!("humidity_percent_rh max {max} is not above its min {min}"),
                    ));
                }
                Some((min, max))
            }
        };
        if raw.source.value.trim().is_empty() {
            return Err(DataError::at(
                path,
                Pos::of(&raw.source),
                "the reference conditions need a source note (the standard and clause)",
            ));
        }
        Ok(ReferenceConditions {
            temperature_c,
            temperature_tolerance_c,
            humidity_percent_rh,
            outside: raw.outside,
            source: raw.source.value.clone(),
            pos,
        })
    }

    /// "23 ± 2 °C, 20 to 80 % RH" or "23 ± 2 °C, relative humidity not limited".
    pub fn describe(&self) -> String {
        let t = format!(
            "{} ± {} °C",
            self.temperature_c, self.temperature_tolerance_c
        );
        match self.humidity_percent_rh {
            Some((lo, hi)) => format!("{t}, {lo} to {hi} % RH"),
            None => format!("{t}, relative humidity not limited"),
        }
    }

    /// Why a reading is outside the reference conditions, or `None` when it is inside.
    /// The reading is compared as measured (simple acceptance): the sensor's U is
    /// stated beside it on the certificate.
    pub fn outside_because(
        &self,
        temperature_c: f64,
        humidity_percent_rh: Option<f64>,
    ) -> Option<String> {
        let mut why = Vec::new();
        if (temperature_c - self.temperature_c).abs() > self.temperature_tolerance_c {
            why.push(format!(
                "{temperature_c} °C is outside {} ± {} °C",
                self.temperature_c, self.temperature_tolerance_c
            ));
        }
        if let Some((lo, hi)) = self.humidity_percent_rh {
            match humidity_percent_rh {
                Some(h) if h < lo || h > hi => {
                    why.push(format!("{h} % RH is outside {lo} to {hi} % RH"))
                }
                Some(_) => {}
                None => why.push(format!(
                    "no relative humidity was read, and the procedure limits it to {lo} to {hi} % RH"
                )),
            }
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conditions(humidity: Option<(f64, f64)>) -> ReferenceConditions {
        ReferenceConditions {
            temperature_c: 23.0,
            temperature_tolerance_c: 2.0,
            humidity_percent_rh: humidity,
            outside: OutsidePolicy::Mark,
            source: "test".into(),
            pos: Pos::default(),
        }
    }

    #[test]
    fn the_tolerance_band_is_closed() {
        let c = conditions(None);
        assert_eq!(c.outside_because(21.0, None), None);
        assert_eq!(c.outside_because(25.0, Some(99.0)), None);
        assert_eq!(
            c.outside_because(25.1, None).as_deref(),
            Some("25.1 °C is outside 23 ± 2 °C")
        );
        assert!(c.outside_because(20.9, None).is_some());
    }

    #[test]
    fn humidity_is_checked_only_where_a_range_is_set() {
        let c = conditions(Some((20.0, 80.0)));
        assert_eq!(c.outside_because(23.0, Some(80.0)), None);
        assert_eq!(
            c.outside_because(26.0, Some(85.5)).as_deref(),
            Some("26 °C is outside 23 ± 2 °C; 85.5 % RH is outside 20 to 80 % RH")
        );
        assert!(
            c.outside_because(23.0, None)
                .unwrap()
                .contains("no relative humidity")
        );
        assert_eq!(c.describe(), "23 ± 2 °C, 20 to 80 % RH");
    }
}
