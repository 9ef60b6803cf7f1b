//! Procedures: the steps of a verification, their load points, limits and decision rule.
//! A procedure names rated currents and roles, never ports or amperes of a bench.

use crate::bounds;
use crate::fixture::{Fixture, RatedCurrent, Wiring};
use crate::translations::Translations;
use crate::yaml::{DataError, LoadedFile, Pos};
pub use meterbench_instruments::Phase;
use meterbench_metrology::{
    CurrentRange, DecisionRule, LimitRule, LoadKind, PfRange, PowerFactor, ReferenceMethod,
    lookup_limit,
};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use std::fmt;
use std::path::Path;

pub const PROCEDURE_SCHEMA: &str = "meterbench.procedure/1";

/// A scalar that may be written as a number or a string (`1`, `0.5i`, `Iref`, `2.5`).
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

mod raw {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Procedure {
        pub schema: Spanned<String>,
        pub id: String,
        pub version: String,
        pub title: String,
        pub applies_to: AppliesTo,
        pub wiring: Spanned<Wiring>,
        pub method: Spanned<ReferenceMethod>,
        pub decision_rule: DecisionRule,
        #[serde(default)]
        pub test_uncertainty_ratio: Option<crate::ratio::RawRatio>,
        #[serde(default)]
        pub reference_conditions: Option<Spanned<crate::conditions::RawConditions>>,
        #[serde(default)]
        pub stopping: Option<Spanned<Stopping>>,
        #[serde(default)]
        pub point_length: Option<Spanned<PointLength>>,
        #[serde(default)]
        pub document: Option<DocumentKind>,
        pub limits: Spanned<Vec<Spanned<Limit>>>,
        pub steps: Spanned<Vec<Spanned<Step>>>,
        #[serde(default)]
        pub translations: Option<Spanned<crate::translations::RawTranslations>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PointLength {
        pub min_pulses: Spanned<u64>,
        pub min_s: Spanned<f64>,
        pub source: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Stopping {
        pub target_u_percent_of_mpe: Spanned<f64>,
        pub min_repeats: Spanned<u64>,
        pub max_s: Spanned<f64>,
        pub source: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct AppliesTo {
        pub accuracy_class: Spanned<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Limit {
        pub name: String,
        pub current: Spanned<Range>,
        pub power_factors: PfRangeRaw,
        pub load: LoadKind,
        pub mpe_percent: Spanned<f64>,
        pub source: Spanned<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Range {
        pub from: Spanned<String>,
        pub below: Option<Spanned<String>>,
        pub through: Option<Spanned<String>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PfRangeRaw {
        pub inductive_down_to: Spanned<f64>,
        pub capacitive_down_to: Spanned<f64>,
    }

    // Externally tagged (`- accuracy: {...}`): serde keeps spans and deny_unknown_fields
    // applies to each variant's struct, which a test proves.
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Step {
        Identity(Identity),
        Inspection(Inspection),
        Register(Register),
        PulseCheck(PulseCheck),
        Starting(Starting),
        NoLoad(NoLoad),
        Accuracy(Accuracy),
        LoadDifference(LoadDifference),
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct LoadDifference {
        pub name: Spanned<String>,
        pub balanced: Spanned<String>,
        pub single_phase: Spanned<Vec<Spanned<String>>>,
        pub max_difference_percent: Spanned<f64>,
        pub source: Spanned<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Identity {
        pub name: Spanned<String>,
        pub read_from: Spanned<IdentitySource>,
        pub settle_s: Spanned<f64>,
        pub source: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Inspection {
        pub name: Spanned<String>,
        #[serde(default)]
        pub scan_serial: bool,
        #[serde(default)]
        pub seals: bool,
        #[serde(default)]
        pub labels: Vec<Spanned<String>>,
        pub source: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Register {
        pub name: Spanned<String>,
        pub current: Spanned<Scalar>,
        pub power_factor: Spanned<Scalar>,
        pub settle_s: Spanned<f64>,
        pub read_from: Spanned<IdentitySource>,
        pub min_register_steps: Spanned<u64>,
        pub source: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PulseCheck {
        pub name: Spanned<String>,
        pub current: Spanned<Scalar>,
        pub power_factor: Spanned<Scalar>,
        pub settle_s: Spanned<f64>,
        pub pulses: Spanned<u64>,
        pub timeout_s: Spanned<f64>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Starting {
        pub name: Spanned<String>,
        pub current: Spanned<Scalar>,
        pub settle_s: Spanned<f64>,
        pub pulses: Spanned<u64>,
        pub window_periods: Spanned<f64>,
        pub source: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct NoLoad {
        pub name: Spanned<String>,
        pub voltage_percent_of_un: Spanned<f64>,
        pub settle_s: Spanned<f64>,
        pub k_constant: Spanned<f64>,
        pub max_pulses: Spanned<u64>,
        pub source: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Accuracy {
        pub name: Spanned<String>,
        pub current: Spanned<Scalar>,
        pub power_factor: Spanned<Scalar>,
        pub phases: Option<Spanned<Vec<Phase>>>,
        pub settle_s: Spanned<f64>,
        pub pulses: Spanned<u64>,
        pub repeats: Spanned<u32>,
    }
}

/// A current named after the fixture's rated currents or given in amperes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CurrentSpec {
    Rated(RatedCurrent),
    Amps(f64),
}

impl CurrentSpec {
    pub fn amps(&self, fixture: &Fixture) -> f64 {
        match *self {
            CurrentSpec::Rated(c) => fixture.rated.get(c),
            CurrentSpec::Amps(a) => a,
        }
    }
}

impl fmt::Display for CurrentSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CurrentSpec::Rated(c) => write!(f, "{c}"),
            CurrentSpec::Amps(a) => write!(f, "{a} A"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LimitSpec {
    pub name: String,
    pub from: RatedCurrent,
    pub to: RatedCurrent,
    pub to_inclusive: bool,
    pub power_factors: PfRange,
    pub load: LoadKind,
    pub mpe_percent: f64,
    pub source: String,
    pub pos: Pos,
}

impl LimitSpec {
    /// The rule in amperes for a fixture's rated currents.
    pub fn resolve(&self, fixture: &Fixture) -> LimitRule {
        LimitRule {
            name: self.name.clone(),
            current: CurrentRange {
                from_a: fixture.rated.get(self.from),
                from_inclusive: true,
                to_a: fixture.rated.get(self.to),
                to_inclusive: self.to_inclusive,
            },
            power_factor: self.power_factors,
            load: self.load,
            mpe_percent: self.mpe_percent,
            source: self.source.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PulseCheckStep {
    pub current: CurrentSpec,
    pub power_factor: PowerFactor,
    pub settle_s: f64,
    pub pulses: u64,
    pub timeout_s: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StartingStep {
    pub current: CurrentSpec,
    pub settle_s: f64,
    pub pulses: u64,
    pub window_periods: f64,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NoLoadStep {
    pub voltage_percent_of_un: f64,
    pub settle_s: f64,
    pub k_constant: f64,
    pub max_pulses: u64,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AccuracyStep {
    pub current: CurrentSpec,
    pub power_factor: PowerFactor,
    pub phases: Vec<Phase>,
    pub load: LoadKind,
    pub settle_s: f64,
    pub pulses: u64,
    pub repeats: u32,
    pub pulses_pos: Pos,
}

/// Measure an accuracy point until its answer is known: from `min_repeats` repeats on,
/// the point ends at the first repeat after which U ≤ `target_u_percent_of_mpe` % of the
/// MPE or the decision is certain (|e| + U ≤ MPE, or |e| − U > MPE); at the latest
/// after the step's `repeats` or once `max_s` of measuring have passed (with at least
/// `min_repeats` done). Each repeat still has the step's `pulses`, so no point has fewer
/// pulses than the fixture's minimums.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoppingRule {
    pub target_u_percent_of_mpe: f64,
    pub min_repeats: u32,
    pub max_s: f64,
    pub source: String,
}

/// The least an accuracy point measures in all its repeats together: a practice a
/// procedure follows beyond the fixture's minimum pulses per repeat (vendor practice:
/// ≥ 25 pulses and ≥ 30 s per point). The planner raises a step's pulses per repeat
/// until its repeats (the stopping rule's minimum, if any) reach both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointLength {
    pub min_pulses: u64,
    pub min_s: f64,
    pub source: String,
}

/// What a run of the procedure issues when it ends in a verdict (PASS or FAIL); a run that
/// ends without one (ERROR, ABORTED) issues a test report that says no result exists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// A numbered calibration certificate (ISO/IEC 17025 7.8).
    #[default]
    CalibrationCertificate,
    /// A production line's record of a device's test: no calibration certificate.
    ProductionTestRecord,
}

/// Where the software identity is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentitySource {
    /// UDS ReadDataByIdentifier over CAN, at the fixture's identifiers.
    Can,
    /// What the LCD shows, typed by the operator or taken from an answers file.
    Lcd,
}

/// Read the DUT's software version, software hash and each port's LRS hash, with the
/// DUT powered at nominal voltage and no current, and compare them with the fixture's
/// certified identities. A mismatch fails the run before any energy test.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityStep {
    pub read_from: IdentitySource,
    /// Time for the meter to boot after the voltage is applied, s.
    pub settle_s: f64,
    pub source: String,
}

/// A visual inspection by the operator (or the line's answers file and scanner): scan
/// the serial number, confirm the fixture's seals and labels.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectionStep {
    /// The scanned serial number must be the run's DUT serial.
    pub scan_serial: bool,
    /// Confirm every seal the fixture lists.
    pub seals: bool,
    /// Keys of the fixture's labels to confirm.
    pub labels: Vec<String>,
    pub source: String,
}

/// The register (meter constant) test: read each port's energy register, dose energy at
/// the load point until one register step is at most a tenth of the point's limit (and
/// at least `min_register_steps` steps), read again, compare with the pulses and the
/// reference energy.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterStep {
    pub current: CurrentSpec,
    pub power_factor: PowerFactor,
    /// After the voltage or the current changes, before a reading or counting, s.
    pub settle_s: f64,
    pub read_from: IdentitySource,
    pub min_register_steps: u64,
    pub source: String,
}

/// The single-phase load check of a polyphase meter: each port's error at every
/// single-phase point against its error at the balanced point of the same current and
/// power factor, |e_single − e_balanced| within ± `max_difference_percent`. It measures
/// nothing itself: it compares the latest attempts of earlier accuracy steps, once the
/// source is off (after any retest of them).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadDifferenceStep {
    /// The accuracy step with balanced load.
    pub balanced: String,
    /// The accuracy steps with one loaded element, each compared with `balanced`.
    pub single_phase: Vec<String>,
    pub max_difference_percent: f64,
    pub source: String,
}

/// The closed set of step kinds; the runner has one function per variant.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    Identity(IdentityStep),
    Inspection(InspectionStep),
    Register(RegisterStep),
    PulseCheck(PulseCheckStep),
    Starting(StartingStep),
    NoLoad(NoLoadStep),
    Accuracy(AccuracyStep),
    LoadDifference(LoadDifferenceStep),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    pub pos: Pos,
    pub kind: StepKind,
}

#[derive(Debug, Clone)]
pub struct Procedure {
    pub file: LoadedFile,
    pub id: String,
    pub version: String,
    pub title: String,
    pub accuracy_class: String,
    pub accuracy_class_pos: Pos,
    pub wiring: Wiring,
    pub wiring_pos: Pos,
    pub method: ReferenceMethod,
    pub decision_rule: DecisionRule,
    /// A point whose U exceeds MPE / this gets no statement of conformity.
    pub test_uncertainty_ratio: crate::ratio::UncertaintyRatio,
    /// The ambient conditions its points must be measured in, when it declares them.
    pub reference_conditions: Option<crate::ReferenceConditions>,
    /// Accuracy points end when their answer is known instead of after a fixed count.
    pub stopping: Option<StoppingRule>,
    /// The least pulses and time of an accuracy point, beyond the fixture's minimums.
    pub point_length: Option<PointLength>,
    /// What a run with a verdict issues.
    pub document: DocumentKind,
    pub limits: Vec<LimitSpec>,
    pub steps: Vec<Step>,
    /// Its title, step and limit names in other languages (the station panel's).
    pub translations: Translations,
}

struct Checker<'a> {
    path: &'a Path,
}

impl Checker<'_> {
    fn err(&self, pos: Pos, m: impl Into<String>) -> DataError {
        DataError::at(self.path, pos, m)
    }

    fn rated(&self, s: &Spanned<String>) -> Result<RatedCurrent, DataError> {
        RatedCurrent::parse(&s.value).ok_or_else(|| {
            self.err(
                Pos::of(s),
                format!(
                    "`{}` is not a rated current (Ist, Imin, Itr, Iref, Imax)",
                    s.value
                ),
            )
        })
    }

    fn current(&self, s: &Spanned<Scalar>) -> Result<CurrentSpec, DataError> {
        if let Some(c) = RatedCurrent::parse(&s.value.0) {
            return Ok(CurrentSpec::Rated(c));
        }
        match s.value.0.parse::<f64>() {
            Ok(a) if a.is_finite() && a > 0.0 => {
                bounds::number(self.path, Pos::of(s), "current", a, bounds::CURRENT_A)
                    .map(CurrentSpec::Amps)
            }
            _ => Err(self.err(
                Pos::of(s),
                format!(
                    "current `{}` is neither a rated current (Ist, Imin, Itr, Iref, Imax) nor a positive number of amperes",
                    s.value.0
                ),
            )),
        }
    }

    fn pf(&self, s: &Spanned<Scalar>) -> Result<PowerFactor, DataError> {
        s.value
            .0
            .parse()
            .map_err(|e| self.err(Pos::of(s), format!("{e}")))
    }

    /// A number within its sanity range (see `bounds`).
    fn within(&self, name: &str, v: &Spanned<f64>, range: bounds::Range) -> Result<f64, DataError> {
        bounds::spanned(self.path, name, v, range)
    }

    /// A count within its sanity range.
    fn count(&self, name: &str, v: &Spanned<u64>, range: (u64, u64)) -> Result<u64, DataError> {
        bounds::count(self.path, Pos::of(v), name, v.value, range)
    }

    /// A load difference check names earlier accuracy steps: one balanced, the others
    /// with one loaded element each, all at the balanced one's current and power factor.
    fn load_difference(
        &self,
        p: &raw::LoadDifference,
        earlier: &[Step],
    ) -> Result<LoadDifferenceStep, DataError> {
        let accuracy = |name: &Spanned<String>| -> Result<&AccuracyStep, DataError> {
            match earlier.iter().find(|s| s.name == name.value) {
                Some(Step {
                    kind: StepKind::Accuracy(a),
                    ..
                }) => Ok(a),
                Some(_) => Err(self.err(
                    Pos::of(name),
                    format!("step `{}` is not an accuracy step", name.value),
                )),
                None => Err(self.err(
                    Pos::of(name),
                    format!(
                        "no accuracy step `{}` before this one (a load difference compares points measured earlier in the procedure)",
                        name.value
                    ),
                )),
            }
        };
        let balanced = accuracy(&p.balanced)?;
        if balanced.load != LoadKind::Balanced {
            return Err(self.err(
                Pos::of(&p.balanced),
                format!(
                    "step `{}` loads {:?}, not every element: it is not a balanced load",
                    p.balanced.value, balanced.phases
                ),
            ));
        }
        if p.single_phase.value.is_empty() {
            return Err(self.err(
                Pos::of(&p.single_phase),
                "name at least one single-phase step to compare",
            ));
        }
        let mut single_phase: Vec<String> = Vec::new();
        for name in &p.single_phase.value {
            let a = accuracy(name)?;
            if a.load != LoadKind::SinglePhase {
                return Err(self.err(
                    Pos::of(name),
                    format!(
                        "step `{}` loads {:?}: a single-phase point loads one element",
                        name.value, a.phases
                    ),
                ));
            }
            if a.current != balanced.current || a.power_factor != balanced.power_factor {
                return Err(self.err(
                    Pos::of(name),
                    format!(
                        "step `{}` is at {} PF {}, the balanced step `{}` at {} PF {}: the difference is taken at one current and power factor",
                        name.value,
                        a.current,
                        a.power_factor,
                        p.balanced.value,
                        balanced.current,
                        balanced.power_factor
                    ),
                ));
            }
            if single_phase.contains(&name.value) {
                return Err(self.err(
                    Pos::of(name),
                    format!("step `{}` is named twice", name.value),
                ));
            }
            single_phase.push(name.value.clone());
        }
        if p.source.value.trim().is_empty() {
            return Err(self.err(Pos::of(&p.source), "the limit needs a source note"));
        }
        Ok(LoadDifferenceStep {
            balanced: p.balanced.value.clone(),
            single_phase,
            max_difference_percent: self.within(
                "max_difference_percent (the limit is ± that value)",
                &p.max_difference_percent,
                bounds::PERCENT_LIMIT,
            )?,
            source: p.source.value.clone(),
        })
    }

    fn pf_end(&self, v: &Spanned<f64>) -> Result<f64, DataError> {
        if v.value > 0.0 && v.value <= 1.0 {
            Ok(v.value)
        } else {
            Err(self.err(
                Pos::of(v),
                format!(
                    "a power factor end must lie in 0 < cos φ ≤ 1, not {}",
                    v.value
                ),
            ))
        }
    }
}

impl Procedure {
    pub fn load(path: &Path) -> Result<Procedure, DataError> {
        Procedure::from_file(LoadedFile::read(path)?)
    }

    pub fn from_file(file: LoadedFile) -> Result<Procedure, DataError> {
        let raw: raw::Procedure = file.parse()?;
        let c = Checker { path: &file.path };
        if raw.schema.value != PROCEDURE_SCHEMA {
            return Err(c.err(
                Pos::of(&raw.schema),
                format!("schema `{}` is not `{PROCEDURE_SCHEMA}`", raw.schema.value),
            ));
        }

        if raw.method.value == ReferenceMethod::ReferenceCurrent {
            return Err(c.err(
                Pos::of(&raw.method),
                "reference_current is the method of current sensor procedures (meterbench.sensor-procedure/1), not of meters",
            ));
        }
        let mut limits: Vec<LimitSpec> = Vec::new();
        for l in &raw.limits.value {
            let pos = Pos::of(l);
            let l = &l.value;
            if limits.iter().any(|m| m.name == l.name) {
                return Err(c.err(pos, format!("limit `{}` is declared twice", l.name)));
            }
            c.within(
                "mpe_percent (the limit is ± that value)",
                &l.mpe_percent,
                bounds::PERCENT_LIMIT,
            )?;
            if l.source.value.trim().is_empty() {
                return Err(c.err(Pos::of(&l.source), "every limit needs a source note"));
            }
            let from = c.rated(&l.current.value.from)?;
            let (to, to_inclusive) = match (&l.current.value.below, &l.current.value.through) {
                (Some(b), None) => (c.rated(b)?, false),
                (None, Some(t)) => (c.rated(t)?, true),
                _ => {
                    return Err(c.err(
                        Pos::of(&l.current),
                        "a current range needs exactly one of `below` (exclusive) or `through` (inclusive)",
                    ));
                }
            };
            if to <= from {
                return Err(c.err(
                    Pos::of(&l.current),
                    format!("current range {from}..{to} is empty"),
                ));
            }
            limits.push(LimitSpec {
                name: l.name.clone(),
                from,
                to,
                to_inclusive,
                power_factors: PfRange {
                    lowest_inductive: c.pf_end(&l.power_factors.inductive_down_to)?,
                    lowest_capacitive: c.pf_end(&l.power_factors.capacitive_down_to)?,
                },
                load: l.load,
                mpe_percent: l.mpe_percent.value,
                source: l.source.value.clone(),
                pos,
            });
        }

        let all_phases: Vec<Phase> = match raw.wiring.value {
            Wiring::ThreePhaseFourWire => vec![Phase::L1, Phase::L2, Phase::L3],
            Wiring::SinglePhase => vec![Phase::L1],
        };
        if raw.steps.value.is_empty() {
            return Err(c.err(Pos::of(&raw.steps), "a procedure needs at least one step"));
        }
        let mut steps: Vec<Step> = Vec::new();
        for s in &raw.steps.value {
            let pos = Pos::of(s);
            let (name, kind) = match &s.value {
                raw::Step::Identity(p) => (
                    &p.name,
                    StepKind::Identity(IdentityStep {
                        read_from: p.read_from.value,
                        settle_s: c.within("settle_s", &p.settle_s, bounds::SETTLE_S)?,
                        source: p.source.clone(),
                    }),
                ),
                raw::Step::Inspection(p) => {
                    if !p.scan_serial && !p.seals && p.labels.is_empty() {
                        return Err(c.err(
                            pos,
                            "an inspection needs at least one of scan_serial, seals, labels",
                        ));
                    }
                    (
                        &p.name,
                        StepKind::Inspection(InspectionStep {
                            scan_serial: p.scan_serial,
                            seals: p.seals,
                            labels: p.labels.iter().map(|l| l.value.clone()).collect(),
                            source: p.source.clone(),
                        }),
                    )
                }
                raw::Step::Register(p) => (
                    &p.name,
                    StepKind::Register(RegisterStep {
                        current: c.current(&p.current)?,
                        power_factor: c.pf(&p.power_factor)?,
                        settle_s: c.within("settle_s", &p.settle_s, bounds::SETTLE_S)?,
                        read_from: p.read_from.value,
                        min_register_steps: c.count(
                            "min_register_steps",
                            &p.min_register_steps,
                            bounds::PULSES,
                        )?,
                        source: p.source.clone(),
                    }),
                ),
                raw::Step::PulseCheck(p) => (
                    &p.name,
                    StepKind::PulseCheck(PulseCheckStep {
                        current: c.current(&p.current)?,
                        power_factor: c.pf(&p.power_factor)?,
                        settle_s: c.within("settle_s", &p.settle_s, bounds::SETTLE_S)?,
                        pulses: c.count("pulses", &p.pulses, bounds::PULSES)?,
                        timeout_s: c.within("timeout_s", &p.timeout_s, bounds::TIMEOUT_S)?,
                    }),
                ),
                raw::Step::Starting(p) => {
                    if p.pulses.value < 2 {
                        return Err(c.err(
                            Pos::of(&p.pulses),
                            "the starting test needs at least 2 pulses to show the meter keeps registering",
                        ));
                    }
                    (
                        &p.name,
                        StepKind::Starting(StartingStep {
                            current: c.current(&p.current)?,
                            settle_s: c.within("settle_s", &p.settle_s, bounds::SETTLE_S)?,
                            pulses: c.count("pulses", &p.pulses, bounds::PULSES)?,
                            window_periods: c.within(
                                "window_periods",
                                &p.window_periods,
                                bounds::WINDOW_PERIODS,
                            )?,
                            source: p.source.clone(),
                        }),
                    )
                }
                raw::Step::NoLoad(p) => (
                    &p.name,
                    StepKind::NoLoad(NoLoadStep {
                        voltage_percent_of_un: c.within(
                            "voltage_percent_of_un",
                            &p.voltage_percent_of_un,
                            bounds::VOLTAGE_PERCENT,
                        )?,
                        settle_s: c.within("settle_s", &p.settle_s, bounds::SETTLE_S)?,
                        k_constant: c.within("k_constant", &p.k_constant, bounds::K_CONSTANT)?,
                        max_pulses: c.count("max_pulses", &p.max_pulses, bounds::MAX_PULSES)?,
                        source: p.source.clone(),
                    }),
                ),
                raw::Step::LoadDifference(p) => (
                    &p.name,
                    StepKind::LoadDifference(c.load_difference(p, &steps)?),
                ),
                raw::Step::Accuracy(p) => {
                    let phases = match &p.phases {
                        None => all_phases.clone(),
                        Some(ph) => {
                            let mut v = ph.value.clone();
                            v.sort();
                            v.dedup();
                            if v.len() != ph.value.len() || v.is_empty() {
                                return Err(
                                    c.err(Pos::of(ph), "phases must be distinct and not empty")
                                );
                            }
                            if let Some(bad) = v.iter().find(|x| !all_phases.contains(x)) {
                                return Err(c.err(
                                    Pos::of(ph),
                                    format!(
                                        "phase {bad:?} does not exist in {:?} wiring",
                                        raw.wiring.value
                                    ),
                                ));
                            }
                            v
                        }
                    };
                    let load = if phases.len() == all_phases.len() {
                        LoadKind::Balanced
                    } else if phases.len() == 1 {
                        LoadKind::SinglePhase
                    } else {
                        return Err(c.err(
                            Pos::of(p.phases.as_ref().unwrap()),
                            "a load on two of three phases is not a load point the limits define; use one phase or all",
                        ));
                    };
                    bounds::count(
                        c.path,
                        Pos::of(&p.repeats),
                        "repeats",
                        u64::from(p.repeats.value),
                        bounds::REPEATS,
                    )?;
                    (
                        &p.name,
                        StepKind::Accuracy(AccuracyStep {
                            current: c.current(&p.current)?,
                            power_factor: c.pf(&p.power_factor)?,
                            phases,
                            load,
                            settle_s: c.within("settle_s", &p.settle_s, bounds::SETTLE_S)?,
                            pulses: c.count("pulses", &p.pulses, bounds::PULSES)?,
                            repeats: p.repeats.value,
                            pulses_pos: Pos::of(&p.pulses),
                        }),
                    )
                }
            };
            if steps.iter().any(|t| t.name == name.value) {
                return Err(c.err(
                    Pos::of(name),
                    format!("step name `{}` is used twice", name.value),
                ));
            }
            steps.push(Step {
                name: name.value.clone(),
                pos,
                kind,
            });
        }

        let texts: std::collections::BTreeSet<&str> = std::iter::once(raw.title.as_str())
            .chain(steps.iter().map(|s| s.name.as_str()))
            .chain(limits.iter().map(|l| l.name.as_str()))
            .collect();
        let translations = Translations::check(
            &file.path,
            raw.translations.as_ref(),
            &texts,
            "the title, step names and limit names",
        )?;
        Ok(Procedure {
            translations,
            id: raw.id,
            version: raw.version,
            title: raw.title,
            accuracy_class: raw.applies_to.accuracy_class.value.clone(),
            accuracy_class_pos: Pos::of(&raw.applies_to.accuracy_class),
            wiring: raw.wiring.value,
            wiring_pos: Pos::of(&raw.wiring),
            method: raw.method.value,
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
            stopping: match &raw.stopping {
                None => None,
                Some(st) => Some(StoppingRule {
                    target_u_percent_of_mpe: c.within(
                        "target_u_percent_of_mpe",
                        &st.value.target_u_percent_of_mpe,
                        bounds::PERCENT_LIMIT,
                    )?,
                    min_repeats: c.count("min_repeats", &st.value.min_repeats, bounds::REPEATS)?
                        as u32,
                    max_s: c.within("max_s", &st.value.max_s, bounds::TIMEOUT_S)?,
                    source: st.value.source.clone(),
                }),
            },
            point_length: match &raw.point_length {
                None => None,
                Some(l) => Some(PointLength {
                    min_pulses: c.count("min_pulses", &l.value.min_pulses, bounds::MAX_PULSES)?,
                    min_s: c.within("min_s", &l.value.min_s, bounds::SETTLE_S)?,
                    source: l.value.source.clone(),
                }),
            },
            document: raw.document.unwrap_or_default(),
            limits,
            steps,
            file,
        })
    }

    /// Checks that need the fixture: class, wiring, pulse minimums, and that every
    /// accuracy point has exactly one limit.
    pub fn check_against(&self, fixture: &Fixture) -> Result<(), DataError> {
        let err = |pos: Pos, m: String| DataError::at(&self.file.path, pos, m);
        if self.accuracy_class != fixture.accuracy_class {
            return Err(err(
                self.accuracy_class_pos,
                format!(
                    "procedure is for class {} but fixture `{}` is class {}",
                    self.accuracy_class, fixture.id, fixture.accuracy_class
                ),
            ));
        }
        if !fixture.wirings.contains(&self.wiring) {
            return Err(err(
                self.wiring_pos,
                format!("fixture `{}` cannot be wired {:?}", fixture.id, self.wiring),
            ));
        }
        let rules: Vec<LimitRule> = self.limits.iter().map(|l| l.resolve(fixture)).collect();
        for step in &self.steps {
            if let StepKind::Identity(i) = &step.kind {
                if i.read_from == IdentitySource::Can && fixture.can.is_none() {
                    return Err(err(
                        step.pos,
                        format!(
                            "step `{}` reads the identity over CAN but fixture `{}` declares no `can:` profile",
                            step.name, fixture.id
                        ),
                    ));
                }
                if fixture.certified_software.is_empty() {
                    return Err(err(
                        step.pos,
                        format!(
                            "step `{}` checks the software identity but fixture `{}` lists no certified identities",
                            step.name, fixture.id
                        ),
                    ));
                }
            }
            if let StepKind::Inspection(i) = &step.kind {
                let profile = fixture.inspection.as_ref();
                if (i.seals || !i.labels.is_empty()) && profile.is_none() {
                    return Err(err(
                        step.pos,
                        format!(
                            "step `{}` inspects seals or labels but fixture `{}` declares no `inspection:`",
                            step.name, fixture.id
                        ),
                    ));
                }
                if let Some(bad) = i
                    .labels
                    .iter()
                    .find(|l| !profile.is_some_and(|p| p.labels.iter().any(|x| &x.key == *l)))
                {
                    let known: Vec<&str> = profile
                        .map(|p| p.labels.iter().map(|l| l.key.as_str()).collect())
                        .unwrap_or_default();
                    return Err(err(
                        step.pos,
                        format!(
                            "step `{}`: fixture `{}` has no label `{bad}` (it has: {})",
                            step.name,
                            fixture.id,
                            known.join(", ")
                        ),
                    ));
                }
            }
            if let StepKind::Register(r) = &step.kind {
                if fixture.register.is_none() {
                    return Err(err(
                        step.pos,
                        format!(
                            "step `{}` tests the register but fixture `{}` declares no `register:` (its unit and decimals)",
                            step.name, fixture.id
                        ),
                    ));
                }
                if r.read_from == IdentitySource::Can
                    && fixture
                        .can
                        .as_ref()
                        .is_none_or(|c| c.did_energy_register.is_empty())
                {
                    return Err(err(
                        step.pos,
                        format!(
                            "step `{}` reads the register over CAN but fixture `{}` declares no `can.dids.energy_register`",
                            step.name, fixture.id
                        ),
                    ));
                }
                if self.method != ReferenceMethod::GatedReferenceCount {
                    return Err(err(
                        step.pos,
                        format!(
                            "step `{}` takes the dose's reference energy from the reference's pulse count: the procedure's method must be gated_reference_count",
                            step.name
                        ),
                    ));
                }
                lookup_limit(
                    &rules,
                    r.current.amps(fixture),
                    r.power_factor,
                    LoadKind::Balanced,
                )
                .map_err(|e| err(step.pos, format!("step `{}`: {e}", step.name)))?;
            }
            if let StepKind::Accuracy(a) = &step.kind {
                if let CurrentSpec::Rated(rc) = a.current
                    && let Some(&min) = fixture.min_pulses.get(&rc)
                    && a.pulses < min
                {
                    return Err(err(
                        a.pulses_pos,
                        format!(
                            "step `{}` counts {} pulses at {rc}; fixture `{}` requires at least {min} ({})",
                            step.name, a.pulses, fixture.id, fixture.min_pulses_source
                        ),
                    ));
                }
                lookup_limit(&rules, a.current.amps(fixture), a.power_factor, a.load)
                    .map_err(|e| err(step.pos, format!("step `{}`: {e}", step.name)))?;
            }
        }
        Ok(())
    }
}
