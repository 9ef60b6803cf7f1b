//! Current sensors (the Xemex CSP1): a fixture profile that says what the sensor is and
//! what it must meet, and a procedure of points: readings at a current, or transition
//! points, where the reading flips between two neighbouring values (the fixture says
//! how its readings round). They are a device kind of their own: a sensor has CT
//! channels and telegrams, not LEDs and a meter constant.

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
        #[serde(default)]
        pub transitions: Option<Spanned<Transitions>>,
        pub nominal_voltage_v: Spanned<f64>,
        pub frequency_hz: Spanned<f64>,
        pub source: String,
        #[serde(default)]
        pub translations: Option<Spanned<crate::translations::RawTranslations>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Transitions {
        pub rounding: Rounding,
        pub expected_noise_a: Spanned<f64>,
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
        #[serde(default)]
        pub test_uncertainty_ratio: Option<crate::ratio::RawRatio>,
        #[serde(default)]
        pub reference_conditions: Option<Spanned<crate::conditions::RawConditions>>,
        pub steps: Spanned<Vec<Spanned<Step>>>,
        #[serde(default)]
        pub translations: Option<Spanned<crate::translations::RawTranslations>>,
    }

    /// A current point (`current_a` and `telegrams`) or a transition point
    /// (`transition`); which one is checked after parsing, with the step's position.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Step {
        pub name: Spanned<String>,
        #[serde(default)]
        pub current_a: Option<Spanned<f64>>,
        #[serde(default)]
        pub transition: Option<Spanned<Transition>>,
        #[serde(default)]
        pub phases: Option<Spanned<Vec<Phase>>>,
        pub settle_s: Spanned<f64>,
        #[serde(default)]
        pub telegrams: Option<Spanned<u32>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Transition {
        pub between_a: Spanned<Vec<f64>>,
        pub target_u_percent: Spanned<f64>,
        pub max_telegrams: Spanned<u32>,
    }
}

/// One CT input of the sensor and the phase conductor it is clamped around.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorChannel {
    pub name: String,
    pub phase: Phase,
}

/// How a reading is formed from the sensor's own value: where it flips from one
/// reading to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// To the nearest reading: between readings n and n + r the flip is at n + r/2.
    Nearest,
    /// Down (truncated): the reading n + r appears at n + r.
    Down,
}

/// What transition points need of a sensor: how its readings round, and the noise of
/// one reading that a search's bracket must leave room for.
#[derive(Debug, Clone, PartialEq)]
pub struct TransitionProfile {
    pub rounding: Rounding,
    /// Standard deviation of one reading's value before rounding, A, as expected of the
    /// type: each search's bracket reaches three times that beyond where a sensor at
    /// twice the limit flips.
    pub expected_noise_a: f64,
    pub source: String,
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
    /// How readings flip, for transition points; none: the fixture allows none.
    pub transitions: Option<TransitionProfile>,
    pub nominal_voltage_v: f64,
    pub frequency_hz: f64,
    pub source: String,
    /// Its channel names in other languages (the station panel's).
    pub translations: crate::translations::Translations,
}

/// One point of a sensor procedure, on the named phases; a channel whose phase carries
/// no current must read 0 A in every telegram taken.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorStep {
    pub name: String,
    pub pos: Pos,
    pub phases: Vec<Phase>,
    /// After every change of the current, before a telegram's measuring second may
    /// begin, s.
    pub settle_s: f64,
    pub point: SensorPoint,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SensorPoint {
    /// The current on the loaded phases, settle, then `telegrams` readings whose
    /// measuring seconds lie wholly in the settled interval, each compared with it.
    Current { current_a: f64, telegrams: u32 },
    /// Where the reading flips between two neighbouring values, found by stepping the
    /// current of each loaded phase on its own (one telegram per current set).
    Transition(TransitionPoint),
}

/// A transition point: the flip between readings `between_a.0` and `between_a.1`.
/// Reading resolution cannot hide the error there: the sensor's value is known to be
/// the fixture's boundary at the reference current where it flips.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransitionPoint {
    /// The two neighbouring readings (lower, upper), A.
    pub between_a: (f64, f64),
    /// The standard uncertainty of the transition current at which a search stops, %
    /// of the boundary; it is about the point's combined standard uncertainty.
    pub target_u_percent: f64,
    /// The most telegrams (currents set) a search may take.
    pub max_telegrams: u32,
}

impl SensorStep {
    /// The current the point is at on its loaded phases, A: the current, or for a
    /// transition where a sensor without error flips (`None` when the fixture says
    /// nothing of how its readings round).
    pub fn nominal_current_a(&self, fixture: &SensorFixture) -> Option<f64> {
        match &self.point {
            SensorPoint::Current { current_a, .. } => Some(*current_a),
            SensorPoint::Transition(t) => fixture.transition_boundary_a(t),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SensorProcedure {
    pub file: LoadedFile,
    pub id: String,
    pub version: String,
    pub title: String,
    pub decision_rule: DecisionRule,
    /// A point whose U exceeds its limit / this gets no statement of conformity.
    pub test_uncertainty_ratio: crate::ratio::UncertaintyRatio,
    /// The ambient conditions its points must be measured in, when it declares them.
    pub reference_conditions: Option<crate::ReferenceConditions>,
    pub steps: Vec<SensorStep>,
    /// Its title and step names in other languages (the station panel's).
    pub translations: crate::translations::Translations,
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
        let translations = crate::translations::Translations::check(
            &path,
            raw.translations.as_ref(),
            &channels.iter().map(|c| c.name.as_str()).collect(),
            "channel names",
        )?;
        Ok(SensorFixture {
            translations,
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
            transitions: match &raw.transitions {
                None => None,
                Some(t) => Some(transition_profile(&path, t)?),
            },
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

/// The fixture's `transitions:`, its noise in bounds and its source given.
fn transition_profile(
    path: &Path,
    t: &Spanned<raw::Transitions>,
) -> Result<TransitionProfile, DataError> {
    if t.value.source.trim().is_empty() {
        return Err(DataError::at(
            path,
            Pos::of(t),
            "transitions: how the readings round needs a source note",
        ));
    }
    Ok(TransitionProfile {
        rounding: t.value.rounding,
        expected_noise_a: bounds::spanned(
            path,
            "transitions.expected_noise_a",
            &t.value.expected_noise_a,
            bounds::CURRENT_A,
        )?,
        source: t.value.source.clone(),
    })
}

impl SensorFixture {
    /// Where the reading flips between the point's two readings, A of the sensor's own
    /// value; none without a `transitions:` profile.
    pub fn transition_boundary_a(&self, t: &TransitionPoint) -> Option<f64> {
        let (lower, upper) = t.between_a;
        self.transitions.as_ref().map(|p| match p.rounding {
            Rounding::Nearest => (lower + upper) / 2.0,
            Rounding::Down => upper,
        })
    }

    /// The reference currents (low, high) a search for the point covers: where a sensor
    /// at twice the fixture's limit flips, widened for its expected noise (see
    /// [`meterbench_metrology::transition::limit_bracket_a`]); none without a
    /// `transitions:` profile, or when the limit leaves no such bracket.
    pub fn transition_bracket_a(&self, t: &TransitionPoint) -> Option<(f64, f64)> {
        let b = self.transition_boundary_a(t)?;
        let noise = self.transitions.as_ref()?.expected_noise_a;
        meterbench_metrology::transition::limit_bracket_a(b, self.limit_percent, noise)
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
            let point = match (&st.current_a, &st.transition) {
                (Some(current_a), None) => {
                    let Some(telegrams) = &st.telegrams else {
                        return Err(err(
                            Pos::of(s),
                            format!(
                                "step `{}` gives current_a but not how many telegrams to take (`telegrams:`)",
                                st.name.value
                            ),
                        ));
                    };
                    bounds::count(
                        &path,
                        Pos::of(telegrams),
                        "telegrams",
                        u64::from(telegrams.value),
                        bounds::TELEGRAMS,
                    )?;
                    SensorPoint::Current {
                        current_a: bounds::spanned(
                            &path,
                            "current_a",
                            current_a,
                            bounds::CURRENT_A,
                        )?,
                        telegrams: telegrams.value,
                    }
                }
                (None, Some(t)) => {
                    if let Some(telegrams) = &st.telegrams {
                        return Err(err(
                            Pos::of(telegrams),
                            "a transition step takes one telegram per current it sets: give `max_telegrams:` inside `transition:`, not `telegrams:`".into(),
                        ));
                    }
                    SensorPoint::Transition(transition_point(&path, t)?)
                }
                (Some(c), Some(_)) => {
                    return Err(err(
                        Pos::of(c),
                        format!(
                            "step `{}` gives both current_a and transition: a step is a current point or a transition point",
                            st.name.value
                        ),
                    ));
                }
                (None, None) => {
                    return Err(err(
                        Pos::of(s),
                        format!(
                            "step `{}` needs current_a (a current point) or transition (a transition point)",
                            st.name.value
                        ),
                    ));
                }
            };
            steps.push(SensorStep {
                name: st.name.value.clone(),
                pos: Pos::of(s),
                phases,
                settle_s: bounds::spanned(&path, "settle_s", &st.settle_s, bounds::SETTLE_S)?,
                point,
            });
        }
        let texts: std::collections::BTreeSet<&str> = std::iter::once(raw.title.as_str())
            .chain(steps.iter().map(|s| s.name.as_str()))
            .collect();
        let translations = crate::translations::Translations::check(
            &file.path,
            raw.translations.as_ref(),
            &texts,
            "the title and step names",
        )?;
        Ok(SensorProcedure {
            translations,
            id: raw.id,
            version: raw.version,
            title: raw.title,
            decision_rule: raw.decision_rule,
            test_uncertainty_ratio: crate::ratio::UncertaintyRatio::parse(
                &file.path,
                raw.test_uncertainty_ratio.as_ref(),
            )?,
            reference_conditions: raw
                .reference_conditions
                .as_ref()
                .map(|c| crate::ReferenceConditions::parse(&file.path, &c.value, Pos::of(c)))
                .transpose()?,
            steps,
            file,
        })
    }

    /// Every point within the sensor's range and the fixture's channels; before anything
    /// is switched on.
    pub fn check_against(&self, fixture: &SensorFixture) -> Result<(), DataError> {
        for s in &self.steps {
            let refuse = |m: String| Err(DataError::at(&self.file.path, s.pos, m));
            if let SensorPoint::Transition(t) = &s.point {
                check_transition(s, t, fixture).or_else(refuse)?;
            }
            let current_a = s
                .nominal_current_a(fixture)
                .expect("a transition point is checked against the fixture's profile above");
            if current_a < fixture.range_from_a || current_a > fixture.range_through_a {
                return refuse(format!(
                    "step `{}` asks {} A, outside {}'s range {} … {} A; refused before anything is switched on",
                    s.name,
                    current_a,
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

/// A step's `transition:`: two readings in order, a target and a telegram budget in
/// bounds.
fn transition_point(
    path: &Path,
    t: &Spanned<raw::Transition>,
) -> Result<TransitionPoint, DataError> {
    let between = &t.value.between_a;
    let [lower, upper] = between.value[..] else {
        return Err(DataError::at(
            path,
            Pos::of(between),
            format!(
                "between_a must be two readings, the lower and the upper, e.g. [4, 5]; not {} values",
                between.value.len()
            ),
        ));
    };
    let upper = bounds::number(
        path,
        Pos::of(between),
        "between_a",
        upper,
        bounds::CURRENT_A,
    )?;
    if !(lower.is_finite() && lower >= 0.0 && lower < upper) {
        return Err(DataError::at(
            path,
            Pos::of(between),
            format!(
                "between_a must be two readings in order, the lower at least 0 A and below the upper; not [{lower}, {upper}]"
            ),
        ));
    }
    let max_telegrams = &t.value.max_telegrams;
    bounds::count(
        path,
        Pos::of(max_telegrams),
        "max_telegrams",
        u64::from(max_telegrams.value),
        bounds::TELEGRAMS,
    )?;
    Ok(TransitionPoint {
        between_a: (lower, upper),
        target_u_percent: bounds::spanned(
            path,
            "target_u_percent",
            &t.value.target_u_percent,
            bounds::UNCERTAINTY_PERCENT,
        )?,
        max_telegrams: max_telegrams.value,
    })
}

/// A transition point against the fixture: it says how readings round, and the two
/// readings are neighbours at its resolution.
fn check_transition(
    s: &SensorStep,
    t: &TransitionPoint,
    fixture: &SensorFixture,
) -> Result<(), String> {
    if fixture.transitions.is_none() {
        return Err(format!(
            "step `{}` is a transition point, but fixture `{}` does not say how its readings round (`transitions:`)",
            s.name, fixture.id
        ));
    }
    if fixture.transition_bracket_a(t).is_none() {
        return Err(format!(
            "step `{}`: no search bracket around the flip at {} A for a limit of ±{} % and an expected noise of {} A (it would reach 0 A, or the limit is 50 % or more)",
            s.name,
            fixture.transition_boundary_a(t).unwrap_or_default(),
            fixture.limit_percent,
            fixture
                .transitions
                .as_ref()
                .map_or(0.0, |p| p.expected_noise_a)
        ));
    }
    let (lower, upper) = t.between_a;
    let r = fixture.resolution_a;
    // Readings are whole multiples of the resolution, to the float noise of the division.
    let on_step = |x: f64| ((x / r) - (x / r).round()).abs() < 1e-9;
    if !(on_step(lower) && ((upper - lower) - r).abs() < 1e-9 * r.max(1.0)) {
        return Err(format!(
            "step `{}`: between_a [{lower}, {upper}] are not two neighbouring readings of {}, whose resolution is {r} A",
            s.name, fixture.device_type
        ));
    }
    Ok(())
}
