//! The run record: one JSON document per run from which every report is made.

use meterbench_instruments::{InstrumentIdentity, SourceSetpoint};
use meterbench_metrology::{
    Decision, LimitRule, PowerFactor, RegisterComparison, RepeatStatistics, TransitionSearchConfig,
    UncertaintyBudget,
};
use meterbench_procedure::{
    CalibrationRecord, DeviceKind, IdentitySource, LoadedFile, RoleBinding, Station,
};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// Version 2: typed step kinds, power factors and reading sources; the position in the
/// rack and the session; facts decided by the runner (simulated instruments, serials,
/// calibrations); retest attempts.
pub const RUN_SCHEMA: &str = "meterbench.run/2";
/// Records written before racks (the store and bundles hold them): read and upgraded.
pub const RUN_SCHEMA_V1: &str = "meterbench.run/1";

/// The journal of a record in progress, beside it in the run folder.
pub const STEP_JOURNAL: &str = "record.steps.jsonl";

/// PASS = DUT in limits, FAIL = DUT out of limits, NOT DECIDABLE = some point's U too
/// large for a statement of conformity and none failed, ERROR = bench fault,
/// ABORTED = stopped by the operator or a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    Pass,
    Fail,
    /// No point failed, but at least one got no statement of conformity: its U is larger
    /// than the procedure's test uncertainty ratio allows against its limit.
    NotDecidable,
    Error,
    Aborted,
    /// Written while the run is going on, so a crash leaves the steps done so far.
    InProgress,
}

impl Outcome {
    /// `PASS`, `FAIL`, `ERROR`, `ABORTED`, `IN PROGRESS`.
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::NotDecidable => "NOT DECIDABLE",
            Outcome::Error => "ERROR",
            Outcome::Aborted => "ABORTED",
            Outcome::InProgress => "IN PROGRESS",
        }
    }

    /// Process exit code: 0 PASS, 1 FAIL, 3 NOT DECIDABLE, 2 anything else.
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Pass => 0,
            Outcome::Fail => 1,
            Outcome::NotDecidable => 3,
            _ => 2,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileRef {
    pub id: String,
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcedureRef {
    pub id: String,
    pub version: String,
    pub title: String,
    pub path: String,
    pub sha256: String,
    pub method: meterbench_metrology::ReferenceMethod,
    pub decision_rule: meterbench_metrology::DecisionRule,
    /// What a run with a verdict issues (older records: a calibration certificate).
    #[serde(default)]
    pub document: meterbench_procedure::DocumentKind,
    /// The smallest MPE/U at which a point got a statement of conformity, with its
    /// source (older records: none, every point was decided).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_uncertainty_ratio: Option<meterbench_procedure::UncertaintyRatio>,
    /// The steps the run was planned to make, in order: those a run that ended early
    /// did not reach are told as such (JUnit's skipped). Older records: not kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub planned_steps: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StationRef {
    pub id: String,
    pub name: String,
    pub laboratory: String,
    pub path: String,
    pub sha256: String,
    /// The laboratory's postal address (records before it: empty).
    #[serde(default)]
    pub laboratory_address: String,
    /// ISO 3166-1 alpha-2 code of the laboratory's country, when the station gives it.
    #[serde(default)]
    pub country: Option<String>,
    /// Where the station stands, when not at the laboratory's address.
    #[serde(default)]
    pub location: Option<String>,
}

/// The order behind a calibration (ISO/IEC 17025 7.8.2.1 e, g, h): whose item it is and
/// how it arrived, as the technician gave it at the start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// The customer's name.
    pub customer: String,
    /// How to reach the customer (address, e-mail).
    #[serde(default)]
    pub contact: Option<String>,
    /// The day the item was received, `YYYY-MM-DD`.
    #[serde(default)]
    pub received: Option<chrono::NaiveDate>,
    /// The item's condition on receipt, as noted by who received it.
    #[serde(default)]
    pub condition: Option<String>,
}

/// Who authorised the run's document: a named person and their function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signatory {
    pub name: String,
    pub role: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstrumentRecord {
    pub role: String,
    /// Which instrument of its role (a counter's id; the role itself otherwise).
    #[serde(default)]
    pub id: String,
    pub driver: String,
    pub port: Option<String>,
    pub declared_model: String,
    pub declared_serial_number: String,
    pub calibration: CalibrationRecord,
    /// What the instrument reported about itself at the start of the run.
    pub reported: Option<InstrumentIdentity>,
    /// Its far end is the simulated world, not an instrument.
    #[serde(default)]
    pub simulated: bool,
    /// The serial number it reported is not the one the station file declares (`None`:
    /// it reported none).
    #[serde(default)]
    pub serial_differs: Option<bool>,
    /// Its calibration was past due on the day of the run.
    #[serde(default)]
    pub calibration_overdue: bool,
}

impl InstrumentRecord {
    /// `source`, `reference`, `counter c1`.
    pub fn label(&self) -> String {
        if self.id.is_empty() || self.id == self.role {
            self.role.clone()
        } else {
            format!("{} {}", self.role, self.id)
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DutRecord {
    pub manufacturer: String,
    pub device_type: String,
    pub serial_number: String,
    pub accuracy_class: String,
    pub meter_constant_imp_per_kwh: f64,
    pub ports: Vec<String>,
    /// Records before sensors existed are meters.
    #[serde(default = "meter_kind")]
    pub kind: DeviceKind,
}

fn meter_kind() -> DeviceKind {
    DeviceKind::Meter
}

/// One DUT pulse as recorded, raw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PulseSample {
    pub timestamp_ticks: u64,
    pub width_ticks: u32,
    pub ref_count: u64,
    pub sequence: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepeatResult {
    pub dut_pulses: u64,
    pub ref_counts: u64,
    pub gate_s: f64,
    pub error_percent: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
// A record holds a few dozen of these; boxing the large variant would only complicate serde.
#[allow(clippy::large_enum_variant)]
pub enum PortResult {
    /// The port's software identity as read, against the certified one.
    Identity {
        read_from: IdentitySource,
        software_version: String,
        software_hash: String,
        lrs_hash: String,
        /// The certified identity of that version, if there is one.
        certified: Option<meterbench_procedure::CertifiedIdentity>,
        /// What differs, each "X is A, the certified one is B".
        mismatches: Vec<String>,
        passed: bool,
        /// The port's flags as the LCD shows them (read from the LCD only); the guide
        /// gives them no meaning, so they are recorded, not judged.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lcd_flags: Option<String>,
    },
    /// The visual inspection: the scanned serial number, each seal and label confirmed.
    Inspection {
        scanned_serial: Option<String>,
        checks: Vec<InspectionCheck>,
        /// What is wrong, in words (empty when it passed).
        problems: Vec<String>,
        passed: bool,
    },
    /// The register (meter constant) test.
    Register {
        read_from: IdentitySource,
        /// The readings as shown, kWh (exact text).
        before_kwh: String,
        after_kwh: String,
        /// LED pulses over the dose.
        pulses: u64,
        /// How long the load was applied, s.
        dose_s: f64,
        comparison: RegisterComparison,
        expanded_u_percent: f64,
        limit: LimitRule,
        decision: Decision,
        /// The register advance agrees with the pulses within their resolutions.
        consistent_with_pulses: bool,
    },
    /// A current sensor's channel at one current point: each reading against the
    /// reference current (0 A on a channel whose phase carries no current).
    CurrentSensor {
        /// The phase conductor the channel's CT is clamped around.
        phase: meterbench_instruments::Phase,
        reference_a: f64,
        /// The readings exactly as sent.
        readings: Vec<String>,
        /// Bench time each reading's telegram was taken in, s since the run began.
        reading_times_s: Vec<f64>,
        /// Each reading's error, % (empty without current: no relative error).
        errors_percent: Vec<f64>,
        mean_error_percent: f64,
        budget: Option<UncertaintyBudget>,
        expanded_u_percent: f64,
        limit_percent: f64,
        /// Where the limit comes from (the fixture's note).
        limit_source: String,
        decision: Option<Decision>,
        passed: bool,
    },
    /// A current sensor's channel at a transition point: the reference current at which
    /// its reading flips between two neighbouring values, found by a search that sets
    /// the current of the channel's phase, one telegram per current. There the sensor's
    /// value is the fixture's boundary b while the reference is μ: e = (b − μ)/μ × 100.
    Transition {
        /// The phase conductor the channel's CT is clamped around.
        phase: meterbench_instruments::Phase,
        /// The two neighbouring readings the flip lies between (lower, upper), A.
        between_a: (f64, f64),
        /// How the search was set up: the boundary b, the bracket of reference currents
        /// (from the limit and the noise the fixture expects), the target u(μ), the
        /// telegram budget and the grid; with `probes`, enough to search again.
        search: TransitionSearchConfig,
        /// Every current set and the reading taken there, in order.
        probes: Vec<TransitionProbe>,
        /// Bench time from the point's first current to this channel's last telegram, s.
        searched_s: f64,
        /// Why the search stopped; none when it could not go on (a telegram without this
        /// channel's current).
        stop: Option<meterbench_metrology::transition::StopReason>,
        /// Posterior mean of the transition current μ, A: a result only when `u_mu_a` is
        /// given.
        mu_a: f64,
        /// Its standard uncertainty, A; none when the search bounds μ on one side only
        /// (beyond the bracket, or every reading the same).
        u_mu_a: Option<f64>,
        /// The sensor's noise referred to the reference current (posterior mean of the
        /// probit width σ′), A.
        sigma_a: f64,
        /// Central 95 % posterior interval of μ, A; an end the search has not bounded is
        /// none.
        interval_95_a: (Option<f64>, Option<f64>),
        /// The error at the located transition, %; none when it was not located.
        error_percent: Option<f64>,
        /// Beyond the bracket: the error lies beyond this value (with its sign), %, by
        /// the search's one-sided 97.5 % bound of μ.
        error_beyond_percent: Option<f64>,
        budget: Option<UncertaintyBudget>,
        expanded_u_percent: Option<f64>,
        limit_percent: f64,
        /// Where the limit comes from (the fixture's note).
        limit_source: String,
        decision: Option<Decision>,
        /// Why the point was not located, or why it failed, in words.
        problem: Option<String>,
        passed: bool,
    },
    /// The sensor's telegram stream over the whole run: period, firmware id, CRC.
    Telegrams {
        telegrams: u64,
        crc_failures: u64,
        other_errors: u64,
        gaps: u64,
        crc_error_percent: f64,
        max_crc_error_percent: f64,
        /// Shortest and longest time between two telegrams, s.
        period_min_s: f64,
        period_max_s: f64,
        period_s: f64,
        period_tolerance_s: f64,
        firmware_seen: Vec<String>,
        firmware_certified: Vec<String>,
        problems: Vec<String>,
        passed: bool,
    },
    PulseCheck {
        required: u64,
        seen: u64,
        passed: bool,
    },
    Starting {
        tau_s: f64,
        window_s: f64,
        required: u64,
        /// Pulse times after the current was settled, s.
        pulse_times_s: Vec<f64>,
        passed: bool,
    },
    NoLoad {
        voltage_v: f64,
        duration_s: f64,
        pulses: u64,
        max_pulses: u64,
        passed: bool,
    },
    /// The single-phase load check: each single-phase point's error against the
    /// balanced point's (their latest attempts) at the same current and power factor.
    LoadDifference {
        balanced_step: String,
        balanced_error_percent: f64,
        comparisons: Vec<LoadComparison>,
        /// The difference allowed, ± %.
        limit_percent: f64,
        /// Where the limit comes from (the procedure's note).
        limit_source: String,
        passed: bool,
    },
    Accuracy {
        repeats: Vec<RepeatResult>,
        statistics: RepeatStatistics,
        mean_interval_s: f64,
        budget: UncertaintyBudget,
        error_percent: f64,
        expanded_u_percent: f64,
        limit: LimitRule,
        decision: Decision,
        /// The reference standard's stated error the repeats' errors were corrected for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference_correction: Option<AppliedCorrection>,
        /// Why the point ended (older records: not recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stopping: Option<PointStop>,
    },
}

/// The reference standard's error from its certificate, as applied to one point: the
/// errors of the repeats are (1 + e_measured)(1 + c) − 1 (`meterbench_metrology::
/// corrected_for_reference`), where e_measured follows from the counts alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppliedCorrection {
    pub certificate: String,
    /// The certificate's range that holds the point's current.
    pub range_up_to_a: f64,
    pub error_percent: f64,
    pub u_k2_percent: f64,
    /// The drift since the standard's calibration, ± %, in the budget.
    pub drift_bound_percent: f64,
}

/// Why an accuracy point ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The procedure measures a fixed number of repeats.
    Fixed,
    /// U reached the procedure's target share of the MPE.
    UncertaintyReached,
    /// |e| + U ≤ MPE or |e| − U > MPE: more pulses cannot change the decision.
    Decided,
    /// The step's repeats were all measured without either.
    MaxRepeats,
    /// The procedure's longest time per point passed without either.
    MaxTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PointStop {
    pub reason: StopReason,
    pub repeats: u32,
    /// From the end of settling to the last pulse used, s.
    pub measuring_s: f64,
}

impl PortResult {
    pub fn passed(&self) -> bool {
        match self {
            PortResult::PulseCheck { passed, .. }
            | PortResult::Starting { passed, .. }
            | PortResult::NoLoad { passed, .. }
            | PortResult::Identity { passed, .. }
            | PortResult::Inspection { passed, .. }
            | PortResult::CurrentSensor { passed, .. }
            | PortResult::Transition { passed, .. }
            | PortResult::Telegrams { passed, .. }
            | PortResult::LoadDifference { passed, .. } => *passed,
            PortResult::Register {
                decision,
                consistent_with_pulses,
                ..
            } => decision.accepted && *consistent_with_pulses,
            PortResult::Accuracy { decision, .. } => decision.accepted,
        }
    }

    /// The port got no statement of conformity (its U too large for the procedure's
    /// test uncertainty ratio) and nothing else about it failed.
    pub fn no_statement(&self) -> bool {
        use meterbench_metrology::Conformity::NoStatement;
        match self {
            PortResult::Accuracy { decision, .. }
            | PortResult::Register {
                decision,
                consistent_with_pulses: true,
                ..
            } => decision.conformity == NoStatement,
            PortResult::CurrentSensor {
                decision: Some(d),
                readings,
                ..
            } => d.conformity == NoStatement && readings.iter().all(|r| !r.is_empty()),
            PortResult::Transition {
                decision: Some(d), ..
            } => d.conformity == NoStatement,
            PortResult::LoadDifference { comparisons, .. } => {
                !comparisons.is_empty()
                    && comparisons
                        .iter()
                        .all(|c| c.difference.decision.conformity == NoStatement)
            }
            _ => false,
        }
    }

    /// Take back the statement of conformity of a point measured where its limit does
    /// not hold (outside the reference conditions): not accepted, and not failed either.
    /// A result that was never a decided point (none was located) is left as it is.
    pub fn withdraw_statement(&mut self) {
        let withdraw = |d: &mut Decision| {
            d.conformity = meterbench_metrology::Conformity::NoStatement;
            d.accepted = false;
        };
        match self {
            PortResult::Accuracy { decision, .. } | PortResult::Register { decision, .. } => {
                withdraw(decision)
            }
            PortResult::CurrentSensor {
                decision: Some(d),
                passed,
                ..
            }
            | PortResult::Transition {
                decision: Some(d),
                passed,
                ..
            } => {
                withdraw(d);
                *passed = false;
            }
            PortResult::LoadDifference {
                comparisons,
                passed,
                ..
            } => {
                for c in comparisons {
                    withdraw(&mut c.difference.decision);
                }
                *passed = false;
            }
            _ => {}
        }
    }
}

/// One single-phase point against the balanced one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadComparison {
    pub step: String,
    /// The loaded element.
    pub phases: Vec<meterbench_instruments::Phase>,
    pub error_percent: f64,
    /// e_single − e_balanced, its budget, U and the decision on it.
    pub difference: meterbench_metrology::LoadDifference,
}

impl LoadComparison {
    /// The comparison that stands for a port's check where one line must: a rejected
    /// one first, then the largest difference.
    pub fn deciding(comparisons: &[LoadComparison]) -> Option<&LoadComparison> {
        comparisons.iter().max_by(|a, b| {
            let key = |c: &LoadComparison| {
                (
                    !c.difference.decision.accepted,
                    c.difference.difference_percent.abs(),
                )
            };
            let ((fa, da), (fb, db)) = (key(a), key(b));
            fa.cmp(&fb).then(da.total_cmp(&db))
        })
    }
}

/// One current set in a transition search and what the sensor read there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransitionProbe {
    /// The reference current set on the channel's phase, A (what the search observed).
    pub current_a: f64,
    /// The reading exactly as sent.
    pub reading: String,
    /// It read the upper of the two readings or more.
    pub above: bool,
    /// Bench time the telegram was taken in, s since the run began.
    pub at_s: f64,
}

/// One seal or label the operator confirmed (or not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionCheck {
    /// `seal.power_plate`, `label.eichrecht`.
    pub key: String,
    pub what: String,
    pub confirmed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PortRecord {
    pub port: String,
    /// The counter (its id) and channel of the scanning head over this port's LED; none
    /// for a device read over its own interface.
    #[serde(default)]
    pub counter: Option<String>,
    pub counter_channel: u8,
    pub pulses: Vec<PulseSample>,
    pub result: Option<PortResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadPoint {
    pub current_a: f64,
    pub current_name: String,
    pub power_factor: PowerFactor,
    pub phases: Vec<meterbench_instruments::Phase>,
    pub voltage_v: f64,
}

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Identity,
    Inspection,
    Register,
    PulseCheck,
    Starting,
    NoLoad,
    Accuracy,
    /// A current sensor's readings at one current point.
    Current,
    /// A current sensor's telegram stream over the run.
    Telegrams,
    /// A polyphase meter's single-phase points against its balanced one.
    LoadDifference,
}

impl StepKind {
    /// As the record writes it: `accuracy`, `no_load`.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Identity => "identity",
            StepKind::Inspection => "inspection",
            StepKind::Register => "register",
            StepKind::PulseCheck => "pulse_check",
            StepKind::Starting => "starting",
            StepKind::NoLoad => "no_load",
            StepKind::Accuracy => "accuracy",
            StepKind::Current => "current",
            StepKind::Telegrams => "telegrams",
            StepKind::LoadDifference => "load_difference",
        }
    }

    /// A measuring point with an error against a limit: one that can be measured again
    /// (a retest) when it failed or could not be decided.
    pub fn is_point(self) -> bool {
        matches!(self, StepKind::Accuracy | StepKind::Current)
    }
}

impl std::fmt::Display for StepKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    pub index: usize,
    pub name: String,
    pub kind: StepKind,
    /// 1 for the first measurement of a step; a retest of the same step is attempt 2, …
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    pub load: LoadPoint,
    pub setpoint: SourceSetpoint,
    pub started_s: f64,
    pub duration_s: f64,
    pub physical_floor_s: f64,
    pub outcome: Outcome,
    pub message: Option<String>,
    pub ports: Vec<PortRecord>,
    /// The source switchings during this step (journaled with it, so a run killed later
    /// still shows when the output went on).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_switches: Vec<SourceSwitch>,
    /// The air while a point was measured, when the procedure declares reference
    /// conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ambient: Option<PointAmbient>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timing {
    /// Duration of the run on the bench's clock (virtual on the simulated bench), s.
    pub bench_duration_s: f64,
    /// Sum over steps of settle + (N+1) periods of the slower port, s.
    pub physical_floor_s: f64,
    pub wall_s: f64,
    /// Round trips to the counter (one per poll).
    pub counter_polls: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogEntry {
    pub t_s: f64,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub schema: String,
    pub run_id: String,
    /// The session that measured this device with the others of its rack.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Where in the rack the device sat (records before racks: none).
    #[serde(default)]
    pub position: Option<PositionRecord>,
    /// The run whose record this one continues (a later session's retest); its steps
    /// are carried over.
    #[serde(default)]
    pub amends: Option<String>,
    /// Of `steps`, how many (the first ones) were carried over from the run it amends:
    /// measured there, not in this run. 0 for a run that amends none (and in records of
    /// amending runs written before this was kept).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub carried_steps: usize,
    pub bench_version: String,
    pub started_utc: String,
    pub finished_utc: Option<String>,
    pub outcome: Outcome,
    pub outcome_reason: Option<String>,
    pub station: StationRef,
    pub instruments: Vec<InstrumentRecord>,
    pub fixture: FileRef,
    pub dut: DutRecord,
    pub procedure: ProcedureRef,
    pub counter_timebase_hz: f64,
    pub reference_imp_per_kwh: f64,
    pub steps: Vec<StepRecord>,
    pub timing: Timing,
    pub log: Vec<LogEntry>,
    /// Some instrument's far end is the simulated world: no measurement of a real device.
    #[serde(default)]
    pub simulated: bool,
    /// Who answered the procedure's questions, when any were asked.
    #[serde(default)]
    pub answered_by: Option<AnsweredBy>,
    /// Departures from the procedure as written (retests).
    #[serde(default)]
    pub deviations: Vec<Deviation>,
    /// The customer and the item's receipt, when given at the start.
    #[serde(default)]
    pub order: Option<Order>,
    /// The authorised signatory named at the start (the station's list).
    #[serde(default)]
    pub signatory: Option<Signatory>,
    /// What the bench found and left: the source's output at the start, and whether its
    /// switching off at the end was confirmed by the source.
    #[serde(default)]
    pub source: SourceSafety,
    /// The reference conditions the procedure declares, the climate sensor's
    /// uncertainty and the air before anything was switched on (none: the procedure
    /// declares no reference conditions, or a record from before they were measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ambient: Option<AmbientSetup>,
}

/// The ambient conditions a run was measured against (ISO/IEC 17025 7.8.4.1 b).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AmbientSetup {
    pub reference: meterbench_procedure::ReferenceConditions,
    /// The climate sensor's expanded uncertainty (k=2), and where it comes from.
    pub temperature_u_k2_c: f64,
    pub humidity_u_k2_percent_rh: f64,
    pub uncertainty_source: String,
    /// The air before anything was switched on; none when it could not be read.
    pub at_start: Option<AmbientReadingRecord>,
}

/// One reading of the climate sensor.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AmbientReadingRecord {
    /// Bench time from the session's start, s.
    pub t_s: f64,
    pub temperature_c: f64,
    pub humidity_percent_rh: Option<f64>,
}

/// The air during one point: read as it began and as it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointAmbient {
    pub readings: Vec<AmbientReadingRecord>,
    /// Why the point was measured outside the reference conditions (then it has no
    /// statement of conformity); none when it was inside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outside: Option<String>,
}

impl PointAmbient {
    /// The lowest and highest temperature read, °C.
    pub fn temperature_range_c(&self) -> Option<(f64, f64)> {
        range(self.readings.iter().map(|r| r.temperature_c))
    }

    /// The lowest and highest relative humidity read, % RH.
    pub fn humidity_range_percent_rh(&self) -> Option<(f64, f64)> {
        range(self.readings.iter().filter_map(|r| r.humidity_percent_rh))
    }
}

fn range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// The source's output at the start and the end of a run, as the source reported it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceSafety {
    /// The output was on when the run began (an earlier run left it energised); it
    /// was switched off before anything else.
    pub found_on: bool,
    /// The output was switched off at the end and the source confirmed it (`None`:
    /// not known, e.g. a record in progress or one written before this was recorded).
    pub off_confirmed: Option<bool>,
    /// Every switching of the output the bench commanded, in order: the safe start (when
    /// found on), each switch-on, the final switch-off.
    #[serde(default)]
    pub switches: Vec<SourceSwitch>,
}

/// One switching of the source's output, as the bench commanded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceSwitch {
    /// Bench time from the session's start, s.
    pub t_s: f64,
    /// The output after the switch.
    pub on: bool,
    /// The source confirmed the new state (a read-back, or its accepting the command).
    pub confirmed: bool,
    /// Why the bench switched: `safe start`, `energise`, `end of run`, `internal error`.
    pub why: String,
}

fn first_attempt() -> u32 {
    1
}

/// Where the device sat and how it was reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionRecord {
    /// The rack position's number.
    pub id: u32,
    /// Of how many positions the session measured at once.
    pub of: usize,
    /// How many positions the station's rack has.
    #[serde(default)]
    pub rack: usize,
}

/// Who answered the procedure's questions (LCD readings, seals, scans).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AnsweredBy {
    /// A person at the terminal (or a scanner typing into it).
    Terminal,
    /// An answers file, by its path and content hash.
    AnswersFile { path: String, sha256: String },
    /// The simulated technician of a simulated station, reading the simulated DUT.
    SimulatedTechnician,
    /// A person at the station panel.
    Panel,
}

/// A departure from the procedure as written (ISO/IEC 17025 7.8.2.1 n).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Deviation {
    /// A step measured again; every attempt is in the record, the last one counts.
    Retest {
        step: String,
        attempt: u32,
        /// Why: the earlier attempt's outcome and message.
        reason: String,
    },
}

impl Deviation {
    /// The retest of `before`'s step, the attempt after it; `in_run` names the run the
    /// earlier attempt was made in when it is another one (a later session's retest).
    pub fn retest_after(before: &StepRecord, in_run: Option<&str>) -> Deviation {
        Deviation::Retest {
            step: before.name.clone(),
            attempt: before.attempt + 1,
            reason: format!(
                "attempt {} ended {}{}{}",
                before.attempt,
                before.outcome.word(),
                before
                    .message
                    .as_deref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default(),
                in_run.map(|r| format!(" in run {r}")).unwrap_or_default()
            ),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Deviation::Retest {
                step,
                attempt,
                reason,
            } => format!(
                "step `{step}` measured again (attempt {attempt}) after {reason}; every attempt is reported, the last one decides"
            ),
        }
    }
}

impl StepRecord {
    /// PASS when every port's result passed, else FAIL with a message naming the ports
    /// (`port` or `channel`) unless the step already said what went wrong.
    pub fn conclude_from_ports(&mut self, port_word: &str) {
        let failed: Vec<&str> = self
            .ports
            .iter()
            .filter(|p| !p.result.as_ref().is_some_and(|r| r.passed()))
            .map(|p| p.port.as_str())
            .collect();
        let undecided = |p: &&PortRecord| p.result.as_ref().is_some_and(|r| r.no_statement());
        if failed.is_empty() {
            self.outcome = Outcome::Pass;
        } else if self
            .ports
            .iter()
            .filter(|p| !p.result.as_ref().is_some_and(|r| r.passed()))
            .all(|p| undecided(&p))
        {
            self.outcome = Outcome::NotDecidable;
            if self.message.is_none() {
                self.message = Some(format!(
                    "{port_word} {}: not decidable at this uncertainty (U larger than the limit divided by the procedure's test uncertainty ratio)",
                    failed.join(", ")
                ));
            }
        } else {
            self.outcome = Outcome::Fail;
            if self.message.is_none() {
                self.message = Some(if self.only_conditional_passes() {
                    format!(
                        "{port_word} {} within limits, but U reaches beyond them (conditional pass): not accepted under the guard-banded rule",
                        failed.join(", ")
                    )
                } else {
                    format!("{port_word} {} out of limits", failed.join(", "))
                });
            }
        }
    }

    /// Every port that was not accepted measured within its limits, its U reaching
    /// beyond them (ILAC-G8 conditional pass): not accepted under a guard band, but not
    /// outside the limits either; a headline must not say it was.
    pub fn only_conditional_passes(&self) -> bool {
        let mut any = false;
        for p in &self.ports {
            match &p.result {
                Some(r) if r.passed() => {}
                // A register that disagrees with its own pulses failed outright.
                Some(PortResult::Accuracy { decision, .. })
                | Some(PortResult::Register {
                    decision,
                    consistent_with_pulses: true,
                    ..
                }) if decision.conformity == meterbench_metrology::Conformity::ConditionalPass => {
                    any = true
                }
                _ => return false,
            }
        }
        any
    }
}

impl FileRef {
    /// A data file by its id, path and content hash.
    pub fn of(id: &str, file: &LoadedFile) -> FileRef {
        FileRef {
            id: id.to_string(),
            path: file.path.display().to_string(),
            sha256: file.sha256.clone(),
        }
    }
}

impl InstrumentRecord {
    /// An instrument as the station file declares it (what it reports comes later),
    /// with its calibration judged against the day of the run.
    pub fn declared(b: &RoleBinding, today: chrono::NaiveDate) -> InstrumentRecord {
        InstrumentRecord {
            role: b.role.clone(),
            id: b.id.clone(),
            driver: b.driver.name().to_string(),
            port: b.port.as_ref().map(|p| p.to_string()),
            declared_model: b.model.clone(),
            declared_serial_number: b.serial_number.clone(),
            calibration: b.calibration.clone(),
            reported: None,
            simulated: b.is_simulated(),
            serial_differs: None,
            calibration_overdue: b.calibration.due < today,
        }
    }

    /// What the instrument said about itself on the wire.
    pub fn reported(&mut self, identity: InstrumentIdentity) {
        self.serial_differs = Some(identity.serial_number != self.declared_serial_number);
        self.reported = Some(identity);
    }
}

/// What a run is of: the parts of its record known before anything is switched on.
pub struct RunSubject {
    pub instruments: Vec<InstrumentRecord>,
    pub fixture: FileRef,
    pub dut: DutRecord,
    pub procedure: ProcedureRef,
    pub counter_timebase_hz: f64,
    pub reference_imp_per_kwh: f64,
}

impl RunRecord {
    /// The record of a run that starts now on `station`: nothing measured yet.
    pub fn begin(run_id: &str, station: &Station, subject: RunSubject) -> RunRecord {
        let simulated = subject.instruments.iter().any(|i| i.simulated);
        RunRecord {
            schema: RUN_SCHEMA.into(),
            run_id: run_id.to_string(),
            session_id: None,
            position: None,
            amends: None,
            carried_steps: 0,
            simulated,
            answered_by: None,
            deviations: Vec::new(),
            order: None,
            signatory: None,
            source: SourceSafety::default(),
            ambient: None,
            bench_version: env!("CARGO_PKG_VERSION").into(),
            started_utc: chrono::Utc::now().to_rfc3339(),
            finished_utc: None,
            outcome: Outcome::InProgress,
            outcome_reason: None,
            station: StationRef {
                id: station.id.clone(),
                name: station.name.clone(),
                laboratory: station.laboratory_name.clone(),
                path: station.file.path.display().to_string(),
                sha256: station.file.sha256.clone(),
                laboratory_address: station.laboratory_address.clone(),
                country: Some(station.laboratory_country.clone()),
                location: station.location.clone(),
            },
            instruments: subject.instruments,
            fixture: subject.fixture,
            dut: subject.dut,
            procedure: subject.procedure,
            counter_timebase_hz: subject.counter_timebase_hz,
            reference_imp_per_kwh: subject.reference_imp_per_kwh,
            steps: Vec::new(),
            timing: Timing {
                bench_duration_s: 0.0,
                physical_floor_s: 0.0,
                wall_s: 0.0,
                counter_polls: 0,
            },
            log: Vec::new(),
        }
    }

    /// Each step's latest attempt, in the procedure's order: what the verdict rests on
    /// (a retest replaces the attempt before it; both stay in `steps`).
    pub fn latest_attempts(&self) -> Vec<&StepRecord> {
        let mut latest: Vec<&StepRecord> = Vec::new();
        for s in &self.steps {
            match latest
                .iter_mut()
                .find(|l| l.index == s.index && l.name == s.name)
            {
                Some(l) if s.attempt >= l.attempt => *l = s,
                Some(_) => {}
                None => latest.push(s),
            }
        }
        latest
    }

    /// Each step's latest attempt that was measured in this run (not carried over from
    /// the run it amends), in the procedure's order: what the results store counts as
    /// this run's points, so that a measurement is counted once, in the run that made it.
    pub fn latest_measured_here(&self) -> Vec<&StepRecord> {
        let carried = &self.steps[..self.carried_steps.min(self.steps.len())];
        self.latest_attempts()
            .into_iter()
            .filter(|s| !carried.iter().any(|c| std::ptr::eq(c, *s)))
            .collect()
    }

    /// The run's verdict: the stop that ended it, else a step whose latest attempt ended
    /// without a result (ERROR, ABORTED: a record that continues an unfinished run keeps
    /// that), else FAIL naming the failed steps (their latest attempts), else PASS; and
    /// the time it finished.
    pub fn conclude(&mut self, stop: Option<(Outcome, String)>) {
        let unfinished = self
            .latest_attempts()
            .into_iter()
            .find(|s| matches!(s.outcome, Outcome::Error | Outcome::Aborted))
            .map(|s| {
                (
                    s.outcome,
                    format!("step `{}`: {}", s.name, s.message.as_deref().unwrap_or("")),
                )
            });
        let (outcome, reason) = match stop.or(unfinished) {
            Some((o, r)) => (o, Some(r)),
            None => {
                let latest = self.latest_attempts();
                let failed: Vec<&StepRecord> = latest
                    .into_iter()
                    .filter(|s| s.outcome == Outcome::Fail)
                    .collect();
                let names = |conditional: bool| {
                    failed
                        .iter()
                        .filter(|s| s.only_conditional_passes() == conditional)
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                };
                let (outside, conditional) = (names(false), names(true));
                let mut why = Vec::new();
                if !outside.is_empty() {
                    why.push(format!("out of limits: {}", outside.join(", ")));
                }
                if !conditional.is_empty() {
                    why.push(format!(
                        "within limits but not accepted under the guard-banded rule (conditional pass): {}",
                        conditional.join(", ")
                    ));
                }
                let undecided: Vec<&str> = self
                    .latest_attempts()
                    .into_iter()
                    .filter(|s| s.outcome == Outcome::NotDecidable)
                    .map(|s| s.name.as_str())
                    .collect();
                if !failed.is_empty() {
                    (Outcome::Fail, Some(why.join("; ")))
                } else if !undecided.is_empty() {
                    (
                        Outcome::NotDecidable,
                        Some(format!(
                            "no statement of conformity (U too large for the procedure's test uncertainty ratio): {}",
                            undecided.join(", ")
                        )),
                    )
                } else {
                    (Outcome::Pass, None)
                }
            }
        };
        self.outcome = outcome;
        self.outcome_reason = reason;
        self.finished_utc = Some(chrono::Utc::now().to_rfc3339());
    }

    /// Write the record atomically: a crash leaves the previous complete version.
    pub fn write_atomically(&self, path: &Path) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            ".{}.tmp",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("record.json")
        ));
        {
            let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            serde_json::to_writer_pretty(&mut w, self).map_err(std::io::Error::other)?;
            w.write_all(b"\n")?;
            w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// The journal beside a record in progress: one finished step per line, appended
    /// as each step ends, so a crash loses at most the step under way without rewriting
    /// the whole record after every step.
    pub fn journal_path(path: &Path) -> std::path::PathBuf {
        path.with_file_name(STEP_JOURNAL)
    }

    /// Append a finished step to the record's journal and make it durable.
    pub fn journal_step(path: &Path, step: &StepRecord) -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(RunRecord::journal_path(path))?;
        let mut line = serde_json::to_vec(step).map_err(std::io::Error::other)?;
        line.push(b'\n');
        f.write_all(&line)?;
        f.sync_data()
    }

    /// Write the complete record and drop its journal: the record alone holds the run.
    pub fn write_final(&self, path: &Path) -> std::io::Result<()> {
        self.write_atomically(path)?;
        match std::fs::remove_file(RunRecord::journal_path(path)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Read a record of either version; a version 1 record is upgraded. A record still
    /// in progress (its process died) gets the steps its journal holds; a torn last
    /// line (the crash came mid-write) is left out.
    pub fn read(path: &Path) -> std::io::Result<RunRecord> {
        let f = std::fs::File::open(path)?;
        let mut rec: RunRecord =
            serde_json::from_reader(std::io::BufReader::new(f)).map_err(std::io::Error::other)?;
        if rec.outcome == Outcome::InProgress
            && let Ok(journal) = std::fs::read_to_string(RunRecord::journal_path(path))
        {
            rec.steps.extend(
                journal
                    .lines()
                    .map_while(|l| serde_json::from_str::<StepRecord>(l).ok()),
            );
        }
        rec.upgraded().map_err(std::io::Error::other)
    }

    /// Parse a record of either version from JSON text; a version 1 record is upgraded.
    pub fn from_json(text: &str) -> Result<RunRecord, String> {
        let rec: RunRecord = serde_json::from_str(text).map_err(|e| e.to_string())?;
        rec.upgraded()
    }

    /// A version 1 record in version 2's terms: the facts version 1 left to the reports
    /// are decided here, once (a `sim` driver or a `sim+` port is simulated).
    fn upgraded(mut self) -> Result<RunRecord, String> {
        match self.schema.as_str() {
            RUN_SCHEMA => Ok(self),
            RUN_SCHEMA_V1 => {
                for i in &mut self.instruments {
                    if i.id.is_empty() {
                        i.id = i.role.clone();
                    }
                    i.simulated = i.driver == "sim"
                        || i.port.as_deref().is_some_and(|p| p.starts_with("sim+"));
                    i.serial_differs = i
                        .reported
                        .as_ref()
                        .map(|r| r.serial_number != i.declared_serial_number);
                    let run_day = self.started_utc.get(..10).and_then(|d| d.parse().ok());
                    i.calibration_overdue = run_day.is_some_and(|d| i.calibration.due < d);
                }
                self.simulated = self.instruments.iter().any(|i| i.simulated);
                Ok(self)
            }
            other => Err(format!(
                "record schema `{other}` is neither {RUN_SCHEMA} nor {RUN_SCHEMA_V1}"
            )),
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
