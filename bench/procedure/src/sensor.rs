//! Current sensors (the Xemex CSP1): a fixture profile that says what the sensor is and
//! what it must meet, and a procedure of current points. They are a device kind of
//! their own: a sensor has CT channels and telegrams, not LEDs and a meter constant.

use crate::bounds;
use crate::procedure::Phase;
use crate::yaml::{DataError, LoadedFile, Pos};
use meterbench_metrology::DecisionRule;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use std::path::Path;

pub const SENSOR_FIXTURE_SCHEMA: &str = "meterbench.sensor-fixture/1";
pub const SENSOR_PROCEDURE_SCHEMA: &str = "meterbench.sensor-procedure/1";

mod raw {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Fixture {
        pub schema: Spanned<String>,
        pub id: String,
        pub device: Device,
        pub channels: Spanned<Vec<Spanned<Channel>>>,
        pub ct_ratio: Spanned<f64>,
        pub range_a: Spanned<Range>,
        pub resolution_a: Spanned<f64>,
        pub accuracy: Accuracy,
        pub telegrams: Telegrams,
        pub nominal_voltage_v: Spanned<f64>,
        pub frequency_hz: Spanned<f64>,
        pub source: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Device {
        pub manufacturer: String,
        #[serde(rename = "type")]
        pub type_name: String,
        pub description: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Channel {
        pub name: String,
        pub phase: Phase,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Range {
        pub from: f64,
        pub through: f64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Accuracy {
        pub limit_percent: Spanned<f64>,
        pub source: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Telegrams {
        pub period_s: Spanned<f64>,
        pub period_tolerance_s: Spanned<f64>,
        pub max_latency_s: Spanned<f64>,
        pub firmware: Spanned<Vec<String>>,
        pub max_crc_error_percent: Spanned<f64>,
        pub source: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Procedure {
        pub schema: Spanned<String>,
        pub id: String,
        pub version: String,
        pub title: String,
        pub decision_rule: DecisionRule,
        pub steps: Spanned<Vec<Spanned<Step>>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Step {
        pub name: Spanned<String>,
        pub current_a: Spanned<f64>,
        #[serde(default)]
        pub phases: Option<Spanned<Vec<Phase>>>,
        pub settle_s: Spanned<f64>,
        pub telegrams: Spanned<u32>,
    }
}

/// One CT input of the sensor and the phase conductor it is clamped around.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorChannel {
    pub name: String,
    pub phase: Phase,
}

/// What a current sensor is and what it must meet.
#[derive(Debug, Clone)]
pub struct SensorFixture {
    pub file: LoadedFile,
    pub id: String,
    pub manufacturer: String,
    pub device_type: String,
    pub description: String,
    pub channels: Vec<SensorChannel>,
    pub ct_ratio: f64,
    pub range_from_a: f64,
    pub range_through_a: f64,
    /// The reading's resolution, A.
    pub resolution_a: f64,
    pub limit_percent: f64,
    pub limit_source: String,
    pub telegram_period_s: f64,
    pub period_tolerance_s: f64,
    /// Longest time from the end of a telegram's measuring second to its arrival, s.
    pub max_latency_s: f64,
    /// Firmware ids the sensor may report.
    pub firmware: Vec<String>,
    pub max_crc_error_percent: f64,
    pub telegrams_source: String,
    pub nominal_voltage_v: f64,
    pub frequency_hz: f64,
    pub source: String,
}

/// One current point: the current on the named phases, settle, then `telegrams`
/// readings whose measuring seconds lie wholly in the settled interval.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorStep {
    pub name: String,
    pub pos: Pos,
    pub current_a: f64,
    pub phases: Vec<Phase>,
    pub settle_s: f64,
    pub telegrams: u32,
}

#[derive(Debug, Clone)]
pub struct SensorProcedure {
    pub file: LoadedFile,
    pub id: String,
    pub version: String,
    pub title: String,
    pub decision_rule: DecisionRule,
    pub steps: Vec<SensorStep>,
}

impl SensorFixture {
    pub fn load(path: &Path) -> Result<SensorFixture, DataError> {
        SensorFixture::from_file(LoadedFile::read(path)?)
    }

    pub fn from_file(file: LoadedFile) -> Result<SensorFixture, DataError> {
        let raw: raw::Fixture = file.parse()?;
        let path = file.path.clone();
        let err = |pos: Pos, m: String| DataError::at(&path, pos, m);
        if raw.schema.value != SENSOR_FIXTURE_SCHEMA {
            return Err(err(
                Pos::of(&raw.schema),
                format!(
                    "schema `{}` is not `{SENSOR_FIXTURE_SCHEMA}`",
                    raw.schema.value
                ),
            ));
        }
        let mut channels: Vec<SensorChannel> = Vec::new();
        for c in &raw.channels.value {
            if channels
                .iter()
                .any(|x| x.name == c.value.name || x.phase == c.value.phase)
            {
                return Err(err(
                    Pos::of(c),
                    format!(
                        "channel `{}` repeats a name or a phase of another channel",
                        c.value.name
                    ),
                ));
            }
            channels.push(SensorChannel {
                name: c.value.name.clone(),
                phase: c.value.phase,
            });
        }
        if channels.is_empty() {
            return Err(err(
                Pos::of(&raw.channels),
                "at least one channel is needed".into(),
            ));
        }
        let range = &raw.range_a.value;
        if !(range.from > 0.0
            && range.through > range.from
            && range.through <= bounds::CURRENT_A.hi)
        {
            return Err(err(
                Pos::of(&raw.range_a),
                format!(
                    "range {} … {} A is not a range of currents",
                    range.from, range.through
                ),
            ));
        }
        if raw.accuracy.source.trim().is_empty() || raw.telegrams.source.trim().is_empty() {
            return Err(err(
                Pos::of(&raw.accuracy.limit_percent),
                "the accuracy limit and the telegram rules each need a source note".into(),
            ));
        }
        if raw.telegrams.firmware.value.is_empty() {
            return Err(err(
                Pos::of(&raw.telegrams.firmware),
                "list the firmware ids the sensor may report".into(),
            ));
        }
        Ok(SensorFixture {
            id: raw.id,
            manufacturer: raw.device.manufacturer,
            device_type: raw.device.type_name,
            description: raw.device.description,
            channels,
            ct_ratio: bounds::spanned(&path, "ct_ratio", &raw.ct_ratio, bounds::CT_RATIO)?,
            range_from_a: range.from,
            range_through_a: range.through,
            resolution_a: bounds::spanned(
                &path,
                "resolution_a",
                &raw.resolution_a,
                bounds::CURRENT_A,
            )?,
            limit_percent: bounds::spanned(
                &path,
                "accuracy.limit_percent",
                &raw.accuracy.limit_percent,
                bounds::PERCENT_LIMIT,
            )?,
            limit_source: raw.accuracy.source,
            telegram_period_s: bounds::spanned(
                &path,
                "telegrams.period_s",
                &raw.telegrams.period_s,
                bounds::TIMEOUT_S,
            )?,
            period_tolerance_s: bounds::spanned(
                &path,
                "telegrams.period_tolerance_s",
                &raw.telegrams.period_tolerance_s,
                bounds::TIMEOUT_S,
            )?,
            max_latency_s: bounds::spanned(
                &path,
                "telegrams.max_latency_s",
                &raw.telegrams.max_latency_s,
                bounds::SETTLE_S,
            )?,
            firmware: raw.telegrams.firmware.value,
            max_crc_error_percent: bounds::spanned(
                &path,
                "telegrams.max_crc_error_percent",
                &raw.telegrams.max_crc_error_percent,
                bounds::PERCENT_OR_NONE,
            )?,
            telegrams_source: raw.telegrams.source,
            nominal_voltage_v: bounds::spanned(
                &path,
                "nominal_voltage_v",
                &raw.nominal_voltage_v,
                bounds::VOLTAGE_V,
            )?,
            frequency_hz: bounds::spanned(
                &path,
                "frequency_hz",
                &raw.frequency_hz,
                bounds::FREQUENCY_HZ,
            )?,
            source: raw.source,
            file,
        })
    }
}

impl SensorProcedure {
    pub fn load(path: &Path) -> Result<SensorProcedure, DataError> {
        SensorProcedure::from_file(LoadedFile::read(path)?)
    }

    pub fn from_file(file: LoadedFile) -> Result<SensorProcedure, DataError> {
        let raw: raw::Procedure = file.parse()?;
        let path = file.path.clone();
        let err = |pos: Pos, m: String| DataError::at(&path, pos, m);
        if raw.schema.value != SENSOR_PROCEDURE_SCHEMA {
            return Err(err(
                Pos::of(&raw.schema),
                format!(
                    "schema `{}` is not `{SENSOR_PROCEDURE_SCHEMA}`",
                    raw.schema.value
                ),
            ));
        }
        if raw.steps.value.is_empty() {
            return Err(err(
                Pos::of(&raw.steps),
                "a procedure needs at least one step".into(),
            ));
        }
        let mut steps: Vec<SensorStep> = Vec::new();
        for s in &raw.steps.value {
            let st = &s.value;
            if steps.iter().any(|x| x.name == st.name.value) {
                return Err(err(
                    Pos::of(&st.name),
                    format!("step name `{}` is used twice", st.name.value),
                ));
            }
            let phases = match &st.phases {
                None => vec![Phase::L1, Phase::L2, Phase::L3],
                Some(p) => {
                    let mut v = p.value.clone();
                    v.sort();
                    v.dedup();
                    if v.is_empty() || v.len() != p.value.len() {
                        return Err(err(
                            Pos::of(p),
                            "phases must be distinct and not empty".into(),
                        ));
                    }
                    v
                }
            };
            bounds::count(
                &path,
                Pos::of(&st.telegrams),
                "telegrams",
                u64::from(st.telegrams.value),
                bounds::TELEGRAMS,
            )?;
            steps.push(SensorStep {
                name: st.name.value.clone(),
                pos: Pos::of(s),
                current_a: bounds::spanned(&path, "current_a", &st.current_a, bounds::CURRENT_A)?,
                phases,
                settle_s: bounds::spanned(&path, "settle_s", &st.settle_s, bounds::SETTLE_S)?,
                telegrams: st.telegrams.value,
            });
        }
        Ok(SensorProcedure {
            id: raw.id,
            version: raw.version,
            title: raw.title,
            decision_rule: raw.decision_rule,
            steps,
            file,
        })
    }

    /// Every point within the sensor's range and the fixture's channels; before anything
    /// is switched on.
    pub fn check_against(&self, fixture: &SensorFixture) -> Result<(), DataError> {
        for s in &self.steps {
            let refuse = |m: String| Err(DataError::at(&self.file.path, s.pos, m));
            if s.current_a < fixture.range_from_a || s.current_a > fixture.range_through_a {
                return refuse(format!(
                    "step `{}` asks {} A, outside {}'s range {} … {} A; refused before anything is switched on",
                    s.name,
                    s.current_a,
                    fixture.device_type,
                    fixture.range_from_a,
                    fixture.range_through_a
                ));
            }
            if let Some(p) = s
                .phases
                .iter()
                .find(|p| !fixture.channels.iter().any(|c| c.phase == **p))
            {
                return refuse(format!(
                    "step `{}` loads phase {p:?}, which no channel of fixture `{}` measures",
                    s.name, fixture.id
                ));
            }
        }
        Ok(())
    }
}
