//! The record as the certificate templates see it: every number already rounded and
//! formatted once, so the HTML certificate and the DCC say the same thing.

use crate::RenderError;
use crate::console::verdict;
use chrono::{DateTime, NaiveDate, Utc};
use meterbench_metrology::{
    COVERAGE_PROBABILITY, Conformity, Contribution, DecisionRule, LoadKind, PfCharacter,
    PowerFactor, ReferenceMethod,
};
use meterbench_procedure::DocumentKind;
use meterbench_runner::record::{Outcome, PortResult, RunRecord, StepRecord, StopReason};
use serde::Serialize;

/// EN 50470-3 names the test methods the gated and the timed measurements follow.
pub(crate) const METHOD_NORM: &str = "EN 50470-3";
pub(crate) const DECISION_NORM: &str = "ILAC-G8:09/2019";
pub(crate) const UNCERTAINTY_NORM: &str = "JCGM 100:2008 (GUM)";

#[derive(Debug, Serialize)]
pub(crate) struct View {
    pub run_id: String,
    /// What this document is: `Calibration certificate`, `Production test record`, or
    /// `Test report` for a run that ended without a verdict.
    pub document_title: &'static str,
    /// `Certificate no.`, `Record no.`, `Report no.`.
    pub number_label: &'static str,
    /// For a run without a verdict: that no calibration result exists, and why.
    pub no_result: Option<String>,
    pub bench_version: String,
    pub renderer_version: &'static str,
    pub simulated: bool,
    pub started: Timestamp,
    pub finished: Option<Timestamp>,
    /// How long the bench measured, in words: on a simulated bench the start and end
    /// times are the computer's, seconds apart, while the bench clock ran the procedure's
    /// minutes.
    pub bench_time: String,
    pub outcome: &'static str,
    pub outcome_class: &'static str,
    pub outcome_reason: Option<String>,
    /// `pass`/`fail` for PASS/FAIL runs; none when the run did not end in a verdict.
    pub overall_conformity: Option<&'static str>,
    /// When a point gets no statement of conformity, and the source of that rule.
    pub no_statement_rule: String,
    pub station: Station,
    pub dut: Dut,
    pub fixture: FileRef,
    pub procedure: Procedure,
    pub method: Method,
    pub decision: DecisionText,
    pub uncertainty_norm: &'static str,
    pub instruments: Vec<Instrument>,
    pub ports: Vec<PortTable>,
    pub starting: Vec<StartingRow>,
    pub no_load: Vec<NoLoadRow>,
    pub checks: Vec<CheckRow>,
    /// Software identification per port (empty when the procedure reads none).
    pub software: Vec<SoftwareRow>,
    /// The run stopped because the software is not the certified one.
    pub software_failed: bool,
    /// The seals and labels confirmed, once per DUT (empty when none were inspected).
    pub inspection: Vec<InspectionRow>,
    /// The serial number the operator scanned, when the inspection asked for it.
    pub scanned_serial: Option<String>,
    /// The run stopped at a failed inspection.
    pub inspection_failed: bool,
    pub inspection_problems: Vec<String>,
    /// Register (meter constant) tests, per port.
    pub register: Vec<RegisterRow>,
    /// A current sensor's readings, per point and channel.
    pub sensor: Vec<SensorRow>,
    /// Some current sensor point was decided from readings at a fixed current (its
    /// budget is the readings' resolution and scatter), not only checked for 0 A.
    pub sensor_readings_decided: bool,
    /// A current sensor's transition points, per point and channel.
    pub transitions: Vec<TransitionRow>,
    /// How a transition point is measured, in words (empty without transition points).
    pub transition_method: String,
    /// Some transition row has a problem to state below the table.
    pub transition_problems: bool,
    /// A current sensor's telegram stream checks.
    pub telegrams: Option<TelegramsView>,
    /// Single-phase points against the balanced one, per port and phase.
    pub load_differences: Vec<LoadDifferenceRow>,
    /// How U of a difference is combined, in words (empty without such rows).
    pub load_difference_method: &'static str,
    pub unmeasured: Vec<UnmeasuredStep>,
    pub limits: Vec<LimitView>,
    /// Distinct sources of the limits, in order of first use.
    pub limit_sources: Vec<String>,
    /// What the tags in those sources mean (`[U]`: not confirmed against the
    /// standard's text), for the tags used, so that a reader need not guess.
    pub source_tags: Vec<SourceTag>,
    pub budget_columns: Vec<String>,
    /// How the points were corrected for the reference standard's stated error, one
    /// sentence per certificate range used (empty: not corrected).
    pub reference_corrections: Vec<String>,
    /// Some point ended by the procedure's stopping rule rather than a fixed count.
    pub adaptive: bool,
    pub coverage_factor: String,
    pub coverage_probability: String,
    /// The same as a percentage, for prose ("approximately 95 %").
    pub coverage_percent: String,
    pub frequencies_hz: Vec<String>,
    pub voltages_v: Vec<String>,
    pub fail_count: usize,
    pub point_count: usize,
    /// A FAIL whose every point not accepted measured within its limits, U reaching
    /// beyond them (conditional pass under a guard band): not "outside its limits".
    pub only_conditional: bool,
    /// `3 of 10`: the rack position the device sat at, when the session measured several.
    pub position: Option<String>,
    pub session_id: Option<String>,
    /// The run this record continues (a retest in a later session).
    pub amends: Option<String>,
    /// Departures from the procedure as written, in words (retests).
    pub deviations: Vec<String>,
    /// Whose item it is and how it arrived; "not recorded" where the run was not told.
    pub order: OrderView,
    /// Whether the customer was named (ISO/IEC 17025 7.8.2.1 e).
    pub customer_recorded: bool,
    /// How the results are traceable to the SI, in words (7.8.4.1 c).
    pub traceability: String,
    /// The air the points were measured in (7.8.4.1 b); none when the procedure declares
    /// no reference conditions (or the record is from before they were measured).
    pub ambient: Option<AmbientView>,
}

/// The ambient conditions of a run, as the certificate states them.
#[derive(Debug, Serialize)]
pub struct AmbientView {
    /// "Vaisala HMT330 (simulated), serial SIM-CLM-0001".
    pub instrument: String,
    /// "22.9 °C to 23.4 °C", from every reading of the run (the start's and each point's).
    pub temperature: String,
    pub temperature_min: Option<String>,
    pub temperature_max: Option<String>,
    /// "44.1 % RH to 46.0 % RH"; none when the sensor read no humidity.
    pub humidity: Option<String>,
    pub humidity_min: Option<String>,
    pub humidity_max: Option<String>,
    /// The sensor's expanded uncertainty (k = 2).
    pub u_temperature_c: String,
    pub u_humidity_percent_rh: String,
    pub u_source: String,
    /// "23 ± 2 °C, 20 to 80 % RH" and where it comes from.
    pub reference: String,
    pub reference_source: String,
    /// The points measured outside them (their step names), which have no statement of
    /// conformity.
    pub outside_points: Vec<String>,
    /// How many points had their air read.
    pub points: usize,
}

/// The air of a run from its record: the readings at the start and at every point's
/// latest attempt.
fn ambient_view(r: &RunRecord) -> Option<AmbientView> {
    let setup = r.ambient.as_ref()?;
    let latest = r.latest_attempts();
    let pointed: Vec<_> = latest.iter().filter(|s| s.ambient.is_some()).collect();
    let mut readings: Vec<meterbench_runner::record::AmbientReadingRecord> =
        setup.at_start.iter().copied().collect();
    for s in &pointed {
        readings.extend(
            s.ambient
                .as_ref()
                .expect("filtered")
                .readings
                .iter()
                .copied(),
        );
    }
    let span = |values: Vec<f64>, unit: &str| -> (String, Option<String>, Option<String>) {
        let lo = values.iter().copied().reduce(f64::min);
        let hi = values.iter().copied().reduce(f64::max);
        match (lo, hi) {
            (Some(lo), Some(hi)) if lo == hi => (
                format!("{lo} {unit}"),
                Some(lo.to_string()),
                Some(hi.to_string()),
            ),
            (Some(lo), Some(hi)) => (
                format!("{lo} {unit} to {hi} {unit}"),
                Some(lo.to_string()),
                Some(hi.to_string()),
            ),
            _ => ("not read".into(), None, None),
        }
    };
    let (temperature, temperature_min, temperature_max) =
        span(readings.iter().map(|r| r.temperature_c).collect(), "°C");
    let humidities: Vec<f64> = readings
        .iter()
        .filter_map(|r| r.humidity_percent_rh)
        .collect();
    let (humidity, humidity_min, humidity_max) = if humidities.is_empty() {
        (None, None, None)
    } else {
        let (h, lo, hi) = span(humidities, "% RH");
        (Some(h), lo, hi)
    };
    let instrument = r
        .instruments
        .iter()
        .find(|i| i.role == "climate")
        .map_or_else(
            || "the station's climate sensor".to_string(),
            |i| format!("{}, serial {}", i.declared_model, i.declared_serial_number),
        );
    Some(AmbientView {
        instrument,
        temperature,
        temperature_min,
        temperature_max,
        humidity,
        humidity_min,
        humidity_max,
        u_temperature_c: setup.temperature_u_k2_c.to_string(),
        u_humidity_percent_rh: setup.humidity_u_k2_percent_rh.to_string(),
        u_source: setup.uncertainty_source.clone(),
        reference: setup.reference.describe(),
        reference_source: setup.reference.source.clone(),
        outside_points: pointed
            .iter()
            .filter(|s| s.ambient.as_ref().is_some_and(|a| a.outside.is_some()))
            .map(|s| s.name.clone())
            .collect(),
        points: pointed.len(),
    })
}

/// A functional test's DCC conformity: none stated in air outside the reference
/// conditions.
fn functional_conformity(step: &StepRecord, passed: bool) -> &'static str {
    if step.ambient.as_ref().is_some_and(|a| a.outside.is_some()) {
        "noStatement"
    } else {
        pass_fail(passed)
    }
}

/// Where the calibration was performed: the station's own place, else the laboratory.
fn place(r: &RunRecord) -> String {
    let address = r.station.laboratory_address.trim();
    match (&r.station.location, address.is_empty()) {
        (Some(l), _) => format!("{l} (station {})", r.station.id),
        (None, false) => format!(
            "the laboratory's premises, {address} (station {})",
            r.station.id
        ),
        (None, true) => format!("station {} (its address is not recorded)", r.station.id),
    }
}

fn order_view(o: Option<&meterbench_runner::record::Order>) -> OrderView {
    const NOT: &str = "not recorded";
    let text = |t: Option<&String>| {
        t.map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| NOT.into())
    };
    match o {
        Some(o) => OrderView {
            customer: o.customer.trim().to_string(),
            contact: text(o.contact.as_ref()),
            received: o.received.map_or_else(|| NOT.into(), |d| d.to_string()),
            received_date: o.received.map(|d| d.to_string()),
            condition: text(o.condition.as_ref()),
        },
        None => OrderView {
            customer: "not recorded (none was given when the run was started)".into(),
            contact: NOT.into(),
            received: NOT.into(),
            received_date: None,
            condition: NOT.into(),
        },
    }
}

/// How the results reach the SI: through the calibrated instruments listed, each with
/// its certificate, issuer and due date.
fn traceability(r: &RunRecord) -> String {
    let chain: Vec<String> = r
        .instruments
        .iter()
        .map(|i| {
            format!(
                "{} ({}, certificate {} by {}, due {})",
                i.label(),
                i.declared_model,
                i.calibration.id,
                i.calibration.issued_by,
                i.calibration.due
            )
        })
        .collect();
    if r.simulated {
        return format!(
            "Nothing here is traceable to the International System of Units (SI): on the simulated bench the measuring equipment and its certificates are simulated. A station of real instruments states here how its results are traceable to the SI, through the equipment listed above: {}. No result of an external provider is included.",
            chain.join("; ")
        );
    }
    format!(
        "The results are traceable to the International System of Units (SI) through the measuring equipment listed above, each item calibrated by the issuer named under the certificate listed and used within its calibration interval: {}. No result of an external provider is included.",
        chain.join("; ")
    )
}

#[derive(Debug, Serialize)]
pub(crate) struct Timestamp {
    /// `2026-11-21 20:43:13 UTC`
    pub display: String,
    /// `2026-11-21`
    pub date: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct Station {
    pub id: String,
    pub name: String,
    pub laboratory: String,
    pub path: String,
    pub sha256: String,
    /// The laboratory's postal address ("not recorded" for records before it).
    pub address: String,
    /// ISO 3166-1 alpha-2, when the record names it.
    pub country: Option<String>,
    /// Where the calibration was performed, in words.
    pub place: String,
    /// The station stands elsewhere than the laboratory's address.
    pub located_elsewhere: bool,
}

/// The customer and the item's receipt (ISO/IEC 17025 7.8.2.1 e, g, h), in words.
#[derive(Debug, Serialize)]
pub(crate) struct OrderView {
    pub customer: String,
    pub contact: String,
    pub received: String,
    /// The date of receipt, `YYYY-MM-DD`, when recorded.
    pub received_date: Option<String>,
    pub condition: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct Dut {
    pub manufacturer: String,
    pub device_type: String,
    pub serial_number: String,
    pub accuracy_class: String,
    pub meter_constant: String,
    pub ports: Vec<String>,
    /// `meter` or `current_sensor`.
    pub kind: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct SensorRow {
    /// Why the point was measured outside the reference conditions (it then has no
    /// statement of conformity); none when inside.
    pub outside_air: Option<String>,
    /// The point's coverage factor (`–` without current).
    pub k: String,
    /// With the attempt when the point was measured more than once.
    pub point: String,
    pub superseded: bool,
    pub channel: String,
    pub reference_a: String,
    /// Numbers for the DCC (no sign for positive values); empty without current.
    pub error_value: String,
    pub u_value: String,
    pub limit_value: String,
    /// `pass` or `fail` (the DCC's vocabulary).
    pub dcc_conformity: &'static str,
    pub readings: String,
    pub error: String,
    pub u: String,
    pub limit: String,
    pub passed: bool,
    pub conformity: String,
}

/// One channel at a transition point: where its reading flips, and the error there.
#[derive(Debug, Serialize)]
pub(crate) struct TransitionRow {
    /// Why the point was measured outside the reference conditions (it then has no
    /// statement of conformity); none when inside.
    pub outside_air: Option<String>,
    /// With the attempt when the point was measured more than once.
    pub point: String,
    pub superseded: bool,
    pub channel: String,
    /// The two readings of the flip: `4 → 5`.
    pub readings: String,
    /// The sensor's value at the flip, A.
    pub boundary_a: String,
    /// The reference current at the flip and its standard uncertainty, A, rounded like
    /// a result (`–` when it was not located).
    pub mu_a: String,
    pub u_mu_a: String,
    /// Telegrams the search took (one per current set), and the seconds it ran.
    pub telegrams: usize,
    pub seconds: String,
    /// For people: `+0.80`, `beyond +11.72`, `–`.
    pub error: String,
    pub u: String,
    pub k: String,
    pub limit: String,
    pub passed: bool,
    pub conformity: String,
    /// Numbers for the DCC (no sign for positive values); empty when not located.
    pub error_value: String,
    pub u_value: String,
    pub mu_value: String,
    pub u_mu_value: String,
    pub boundary_value: String,
    pub limit_value: String,
    /// `pass` or `fail` (the DCC's vocabulary).
    pub dcc_conformity: &'static str,
    /// Why it was not located, or why it failed, in words (empty when neither): shown
    /// below the table, the cell says `FAIL: outside ±5 %` or `FAIL: not located`.
    pub problem: String,
}

/// One port's single-phase point against its balanced point.
#[derive(Debug, Serialize)]
pub(crate) struct LoadDifferenceRow {
    /// The check, with the attempt when it was computed more than once.
    pub check: String,
    pub superseded: bool,
    pub port: String,
    /// The balanced and the single-phase step.
    pub balanced: String,
    pub single_phase: String,
    /// The loaded element: `L2`.
    pub phase: String,
    /// For people, signed, rounded like a result: the two errors and their difference.
    pub balanced_error: String,
    pub single_phase_error: String,
    pub difference: String,
    pub u: String,
    pub k: String,
    pub dof: String,
    pub limit: String,
    pub passed: bool,
    pub conformity: &'static str,
    pub conformity_label: &'static str,
    /// Numbers for the DCC (no sign for positive values).
    pub difference_value: String,
    pub u_value: String,
    pub k_value: String,
    pub limit_value: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct TelegramsView {
    pub telegrams: u64,
    pub crc_failures: u64,
    pub crc_error_percent: String,
    pub max_crc_error_percent: String,
    pub gaps: u64,
    pub period: String,
    pub firmware_seen: String,
    pub firmware_certified: String,
    pub problems: Vec<String>,
    pub passed: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct FileRef {
    pub id: String,
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct Procedure {
    pub id: String,
    pub version: String,
    pub title: String,
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct Method {
    pub key: &'static str,
    pub name: &'static str,
    pub description: String,
    pub norm: &'static str,
}

#[derive(Debug, Serialize)]
pub(crate) struct DecisionText {
    pub key: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub norm: &'static str,
}

#[derive(Debug, Serialize)]
pub(crate) struct Instrument {
    pub role: String,
    pub driver: String,
    pub port: Option<String>,
    pub declared_model: String,
    pub declared_serial: String,
    pub reported: Option<Reported>,
    /// The serial the instrument reported differs from the station file's.
    pub serial_mismatch: bool,
    pub calibration_id: String,
    pub issued_by: String,
    pub due: String,
    /// The calibration was already due when the run started.
    pub overdue: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct Reported {
    pub manufacturer: String,
    pub model: String,
    pub serial: String,
    pub firmware: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct PortTable {
    pub port: String,
    pub rows: Vec<AccuracyRow>,
}

#[derive(Debug, Serialize)]
pub(crate) struct AccuracyRow {
    /// Why the point was measured outside the reference conditions (it then has no
    /// statement of conformity); none when inside.
    pub outside_air: Option<String>,
    pub step_index: usize,
    /// With the attempt when the point was measured more than once.
    pub name: String,
    /// A later attempt of the same point replaces this one in the verdict.
    pub superseded: bool,
    pub current_a: String,
    pub current_name: String,
    pub pf: String,
    pub cos_phi: String,
    pub pf_character: &'static str,
    pub phases: String,
    pub load: &'static str,
    pub voltage_v: String,
    /// Signed for people: `+0.107`.
    pub error: String,
    /// Plain for machines: `0.107`.
    pub error_value: String,
    pub u: String,
    pub mpe: String,
    pub conformity: &'static str,
    pub conformity_label: &'static str,
    pub accepted: bool,
    pub repeats: usize,
    pub pulses_per_repeat: u64,
    pub limit_name: String,
    pub limit_source: String,
    pub budget: Vec<String>,
    pub combined_u: String,
    /// The point's coverage factor and the effective degrees of freedom it comes from.
    pub k: String,
    pub dof: String,
    /// Why the point ended under a stopping rule (empty for a fixed count of repeats).
    pub ended: &'static str,
}

#[derive(Debug, Serialize)]
pub(crate) struct StartingRow {
    pub port: String,
    pub current_a: String,
    pub required: u64,
    pub seen: usize,
    pub window_s: String,
    pub tau_s: String,
    pub passed: bool,
    pub conformity: &'static str,
    /// Measured outside the reference conditions: neither pass nor fail is stated.
    pub outside_air: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct NoLoadRow {
    pub port: String,
    pub voltage_v: String,
    pub duration_s: String,
    pub pulses: u64,
    pub max_pulses: u64,
    pub passed: bool,
    pub conformity: &'static str,
    /// Measured outside the reference conditions: neither pass nor fail is stated.
    pub outside_air: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct InspectionRow {
    pub what: String,
    pub confirmed: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct RegisterRow {
    /// Numbers for the DCC.
    pub error_value: String,
    pub u_value: String,
    pub register_value_wh: String,
    pub reference_value_wh: String,
    pub mpe_value: String,
    pub dcc_conformity: &'static str,
    pub port: String,
    pub read_from: String,
    pub before_kwh: String,
    pub after_kwh: String,
    pub register_wh: String,
    pub pulses: u64,
    pub pulses_wh: String,
    pub reference_wh: String,
    pub error_percent: String,
    pub u_percent: String,
    pub mpe_percent: String,
    pub resolution_percent: String,
    pub register_minus_pulses_wh: String,
    pub pulses_tolerance_wh: String,
    pub consistent_with_pulses: bool,
    pub passed: bool,
    pub conformity: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct SoftwareRow {
    pub port: String,
    /// `can` or `lcd`.
    pub read_from: String,
    pub version: String,
    pub software_hash: String,
    pub lrs_hash: String,
    /// The certified LRS hash of that version, or an en dash.
    pub certified_lrs_hash: String,
    pub passed: bool,
    /// What differs, for a port that failed.
    pub problem: String,
    /// The port's flags as the LCD showed them (empty when not read from the LCD).
    pub lcd_flags: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct CheckRow {
    pub name: String,
    pub port: String,
    pub seen: u64,
    pub required: u64,
    pub passed: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct UnmeasuredStep {
    pub name: String,
    pub outcome: &'static str,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct LimitView {
    pub name: String,
    pub load: &'static str,
    pub current: String,
    pub mpe: String,
    pub source: String,
}

pub(crate) fn build(r: &RunRecord) -> Result<View, RenderError> {
    if r.outcome == Outcome::InProgress {
        return Err(RenderError::NotFinished {
            run_id: r.run_id.clone(),
        });
    }
    let started_at = parse_utc(&r.started_utc)?;
    let finished = r.finished_utc.as_deref().map(parse_utc).transpose()?;

    let mut ports: Vec<PortTable> = r
        .dut
        .ports
        .iter()
        .map(|p| PortTable {
            port: p.clone(),
            rows: Vec::new(),
        })
        .collect();
    let mut starting = Vec::new();
    let mut no_load = Vec::new();
    let mut checks = Vec::new();
    let mut software = Vec::new();
    let mut inspection: Vec<InspectionRow> = Vec::new();
    let mut scanned_serial = None;
    let mut inspection_failed = false;
    let mut inspection_problems: Vec<String> = Vec::new();
    let mut register = Vec::new();
    let mut sensor: Vec<SensorRow> = Vec::new();
    let mut transitions: Vec<TransitionRow> = Vec::new();
    let mut telegrams: Option<TelegramsView> = None;
    let mut load_differences: Vec<LoadDifferenceRow> = Vec::new();
    let mut unmeasured = Vec::new();
    let mut limits: Vec<LimitView> = Vec::new();
    let mut budget_columns: Vec<String> = Vec::new();
    let mut coverage_probability: Option<f64> = None;
    let mut reference_corrections: Vec<String> = Vec::new();
    let mut adaptive = false;

    for step in &r.steps {
        if step.ports.iter().all(|p| p.result.is_none()) {
            unmeasured.push(UnmeasuredStep {
                name: step.name.clone(),
                outcome: verdict(step.outcome),
                message: step.message.clone().unwrap_or_default(),
            });
            continue;
        }
        for p in &step.ports {
            match &p.result {
                Some(PortResult::Identity {
                    read_from,
                    software_version,
                    software_hash,
                    lrs_hash,
                    certified,
                    mismatches,
                    passed,
                    lcd_flags,
                }) => software.push(SoftwareRow {
                    lcd_flags: lcd_flags.clone().unwrap_or_default(),
                    port: p.port.clone(),
                    read_from: read_from_word(*read_from).into(),
                    version: software_version.clone(),
                    software_hash: software_hash.clone(),
                    lrs_hash: lrs_hash.clone(),
                    certified_lrs_hash: certified
                        .as_ref()
                        .map_or_else(|| "–".to_string(), |c| c.lrs_hash.to_ascii_uppercase()),
                    passed: *passed,
                    problem: mismatches.join("; "),
                }),
                // The inspection concerns the whole DUT: every port carries it; show it once.
                Some(PortResult::Inspection {
                    scanned_serial: scanned,
                    checks,
                    problems,
                    passed,
                }) if p.port == step.ports[0].port => {
                    scanned_serial = scanned.clone().or(scanned_serial);
                    inspection.extend(checks.iter().map(|c| InspectionRow {
                        what: c.what.clone(),
                        confirmed: c.confirmed,
                    }));
                    inspection_failed |= !passed;
                    inspection_problems.extend(problems.iter().cloned());
                }
                Some(PortResult::Inspection { .. }) => {}
                Some(PortResult::Register {
                    read_from,
                    before_kwh,
                    after_kwh,
                    pulses,
                    comparison,
                    expanded_u_percent,
                    limit,
                    decision,
                    consistent_with_pulses,
                    ..
                }) => register.push({
                    // EA-4/02 rounding, the same in every output.
                    let rounded =
                        round_result(comparison.error_vs_reference_percent, *expanded_u_percent);
                    RegisterRow {
                        error_value: rounded.plain.clone(),
                        u_value: rounded.u.clone(),
                        register_value_wh: format!("{:.1}", comparison.register_wh),
                        reference_value_wh: format!("{:.4}", comparison.reference_wh),
                        mpe_value: fmt_num(limit.mpe_percent),
                        dcc_conformity: dcc_value(
                            Some(decision).filter(|_| *consistent_with_pulses),
                            decision.accepted && *consistent_with_pulses,
                        ),
                        port: p.port.clone(),
                        read_from: read_from_word(*read_from).into(),
                        before_kwh: before_kwh.clone(),
                        after_kwh: after_kwh.clone(),
                        register_wh: format!("{:.1}", comparison.register_wh),
                        pulses: *pulses,
                        pulses_wh: format!("{:.2}", comparison.pulses_wh),
                        reference_wh: format!("{:.3}", comparison.reference_wh),
                        error_percent: rounded.signed,
                        u_percent: rounded.u,
                        mpe_percent: format!("±{}", fmt_num(limit.mpe_percent)),
                        resolution_percent: format!("{:.3}", comparison.resolution_percent),
                        register_minus_pulses_wh: format!(
                            "{:+.2}",
                            comparison.register_minus_pulses_wh
                        ),
                        pulses_tolerance_wh: format!("{:.2}", comparison.pulses_tolerance_wh),
                        consistent_with_pulses: *consistent_with_pulses,
                        passed: decision.accepted && *consistent_with_pulses,
                        conformity: if !*consistent_with_pulses {
                            "FAIL: register disagrees with its pulses".into()
                        } else if decision.conformity == Conformity::NoStatement {
                            conformity_label(decision.conformity).into()
                        } else {
                            format!("{:?}", decision.conformity).to_lowercase()
                        },
                    }
                }),
                Some(PortResult::CurrentSensor {
                    reference_a,
                    readings,
                    budget,
                    mean_error_percent,
                    expanded_u_percent,
                    limit_percent,
                    limit_source,
                    decision,
                    passed,
                    ..
                }) => {
                    if decision.is_some() && !limits.iter().any(|l| l.source == *limit_source) {
                        limits.push(sensor_limit(r, *limit_percent, limit_source));
                    }
                    // EA-4/02 rounding, the same in every output.
                    let rounded = round_result(*mean_error_percent, *expanded_u_percent);
                    sensor.push(SensorRow {
                        outside_air: step.ambient.as_ref().and_then(|a| a.outside.clone()),
                        k: budget
                            .as_ref()
                            .map_or_else(|| "–".into(), |b| fmt_k(b.coverage_factor)),
                        error_value: if decision.is_some() {
                            rounded.plain.clone()
                        } else {
                            String::new()
                        },
                        u_value: rounded.u.clone(),
                        limit_value: fmt_num(*limit_percent),
                        dcc_conformity: dcc_value(decision.as_ref(), *passed),
                        point: attempt_name(step, latest_attempt(r, step.index)),
                        superseded: step.attempt < latest_attempt(r, step.index),
                        channel: p.port.clone(),
                        reference_a: fmt_num(*reference_a),
                        readings: readings.join(" "),
                        error: if decision.is_some() {
                            rounded.signed.clone()
                        } else {
                            "–".into()
                        },
                        u: if decision.is_some() {
                            rounded.u.clone()
                        } else {
                            "–".into()
                        },
                        limit: if decision.is_some() {
                            format!("±{}", fmt_num(*limit_percent))
                        } else {
                            "0 A".into()
                        },
                        passed: *passed,
                        conformity: match decision {
                            Some(d) if *passed => format!("{:?}", d.conformity).to_lowercase(),
                            Some(d) if d.conformity == Conformity::NoStatement => {
                                conformity_label(d.conformity).into()
                            }
                            Some(_) => "FAIL".into(),
                            None if *passed => "reads 0 A".into(),
                            None => "FAIL: reads current it does not carry".into(),
                        },
                    })
                }
                Some(
                    t @ PortResult::Transition {
                        limit_percent,
                        limit_source,
                        ..
                    },
                ) => {
                    if !limits.iter().any(|l| l.source == *limit_source) {
                        limits.push(sensor_limit(r, *limit_percent, limit_source));
                    }
                    let latest = latest_attempt(r, step.index);
                    transitions.push(transition_row(step, latest, &p.port, t));
                }
                Some(PortResult::LoadDifference {
                    balanced_step,
                    balanced_error_percent,
                    comparisons,
                    limit_percent,
                    limit_source,
                    ..
                }) => {
                    let view = LimitView {
                        name: step.name.clone(),
                        load: "single phase − balanced",
                        current: format!("at {balanced_step}"),
                        mpe: fmt_num(*limit_percent),
                        source: limit_source.clone(),
                    };
                    if !limits.iter().any(|l| l.name == view.name) {
                        limits.push(view);
                    }
                    let latest = latest_attempt(r, step.index);
                    for c in comparisons {
                        let d = &c.difference;
                        let rounded = round_result(d.difference_percent, d.expanded_u_percent);
                        // Each error to the decimal place of its difference's U.
                        let to_u = |e: f64| round_result(e, d.expanded_u_percent).signed;
                        load_differences.push(LoadDifferenceRow {
                            check: attempt_name(step, latest),
                            superseded: step.attempt < latest,
                            port: p.port.clone(),
                            balanced: balanced_step.clone(),
                            single_phase: c.step.clone(),
                            phase: c
                                .phases
                                .iter()
                                .map(|x| format!("{x:?}"))
                                .collect::<Vec<_>>()
                                .join(" "),
                            balanced_error: to_u(*balanced_error_percent),
                            single_phase_error: to_u(c.error_percent),
                            difference: rounded.signed,
                            u: rounded.u.clone(),
                            k: fmt_k(d.budget.coverage_factor),
                            dof: fmt_dof(d.budget.effective_dof),
                            limit: format!("±{}", fmt_num(*limit_percent)),
                            passed: d.decision.accepted,
                            conformity: conformity_key(d.decision.conformity),
                            conformity_label: conformity_label(d.decision.conformity),
                            difference_value: rounded.plain,
                            u_value: rounded.u,
                            k_value: fmt_k(d.budget.coverage_factor),
                            limit_value: fmt_num(*limit_percent),
                        });
                    }
                }
                Some(PortResult::Telegrams {
                    telegrams: n,
                    crc_failures,
                    crc_error_percent,
                    max_crc_error_percent,
                    gaps,
                    period_min_s,
                    period_max_s,
                    period_s,
                    period_tolerance_s,
                    firmware_seen,
                    firmware_certified,
                    problems,
                    passed,
                    ..
                }) => {
                    telegrams.get_or_insert(TelegramsView {
                        telegrams: *n,
                        crc_failures: *crc_failures,
                        crc_error_percent: format!("{crc_error_percent:.1}"),
                        max_crc_error_percent: fmt_num(*max_crc_error_percent),
                        gaps: *gaps,
                        period: format!(
                            "{period_min_s:.2} … {period_max_s:.2} s (required {} ± {} s)",
                            fmt_num(*period_s),
                            fmt_num(*period_tolerance_s)
                        ),
                        firmware_seen: firmware_seen.join(", "),
                        firmware_certified: firmware_certified.join(", "),
                        problems: problems.clone(),
                        passed: *passed,
                    });
                }
                Some(PortResult::Accuracy {
                    budget,
                    reference_correction,
                    stopping,
                    ..
                }) => {
                    if let Some(c) = reference_correction {
                        push_unique(
                            &mut reference_corrections,
                            format!(
                                "{:+} % (U = {} %, k = 2) up to {} A, from certificate {}; drift since its calibration ±{} % in the budget",
                                c.error_percent,
                                fmt_num(c.u_k2_percent),
                                fmt_num(c.range_up_to_a),
                                c.certificate,
                                fmt_sig(c.drift_bound_percent, 2)
                            ),
                        );
                    }
                    adaptive |= stopping.is_some_and(|s| s.reason != StopReason::Fixed);
                    for c in &budget.contributions {
                        if !budget_columns.contains(&c.name) {
                            budget_columns.push(c.name.clone());
                        }
                    }
                    coverage_probability.get_or_insert(budget.coverage_probability);
                }
                Some(PortResult::Starting {
                    window_s,
                    tau_s,
                    required,
                    pulse_times_s,
                    passed,
                }) => starting.push(StartingRow {
                    port: p.port.clone(),
                    current_a: fmt_num(step.load.current_a),
                    required: *required,
                    seen: pulse_times_s.len(),
                    window_s: format!("{window_s:.1}"),
                    tau_s: format!("{tau_s:.1}"),
                    passed: *passed,
                    conformity: functional_conformity(step, *passed),
                    outside_air: step.ambient.as_ref().and_then(|a| a.outside.clone()),
                }),
                Some(PortResult::NoLoad {
                    voltage_v,
                    duration_s,
                    pulses,
                    max_pulses,
                    passed,
                }) => no_load.push(NoLoadRow {
                    port: p.port.clone(),
                    voltage_v: fmt_num(*voltage_v),
                    duration_s: format!("{duration_s:.0}"),
                    pulses: *pulses,
                    max_pulses: *max_pulses,
                    passed: *passed,
                    conformity: functional_conformity(step, *passed),
                    outside_air: step.ambient.as_ref().and_then(|a| a.outside.clone()),
                }),
                Some(PortResult::PulseCheck {
                    required,
                    seen,
                    passed,
                }) => checks.push(CheckRow {
                    name: step.name.clone(),
                    port: p.port.clone(),
                    seen: *seen,
                    required: *required,
                    passed: *passed,
                }),
                None => {}
            }
        }
    }

    for step in &r.steps {
        for p in &step.ports {
            let Some(row) = accuracy_row(
                step,
                latest_attempt(r, step.index),
                p.result.as_ref(),
                &budget_columns,
            ) else {
                continue;
            };
            if let Some(PortResult::Accuracy { limit, .. }) = &p.result {
                let view = LimitView {
                    name: limit.name.clone(),
                    load: load_name(limit.load),
                    current: format!(
                        "{}{} … {}{} A",
                        if limit.current.from_inclusive {
                            "≥ "
                        } else {
                            "> "
                        },
                        fmt_num(limit.current.from_a),
                        if limit.current.to_inclusive {
                            "≤ "
                        } else {
                            "< "
                        },
                        fmt_num(limit.current.to_a),
                    ),
                    mpe: fmt_num(limit.mpe_percent),
                    source: limit.source.clone(),
                };
                if !limits
                    .iter()
                    .any(|l| l.name == view.name && l.mpe == view.mpe && l.load == view.load)
                {
                    limits.push(view);
                }
            }
            match ports.iter_mut().find(|t| t.port == p.port) {
                Some(t) => t.rows.push(row),
                None => ports.push(PortTable {
                    port: p.port.clone(),
                    rows: vec![row],
                }),
            }
        }
    }
    ports.retain(|t| !t.rows.is_empty());

    // The verdict rests on each point's latest attempt; superseded ones are shown, not
    // counted. A check computed from points (single-phase against balanced) is not a
    // point: a run it fails names it in its reason.
    let current = |superseded: bool| !superseded;
    let point_count = ports
        .iter()
        .flat_map(|t| &t.rows)
        .filter(|r| current(r.superseded))
        .count()
        + sensor.iter().filter(|s| current(s.superseded)).count()
        + transitions.iter().filter(|t| current(t.superseded)).count();
    let fail_count = ports
        .iter()
        .flat_map(|t| &t.rows)
        .filter(|r| current(r.superseded) && !r.accepted)
        .count()
        + sensor
            .iter()
            .filter(|s| current(s.superseded) && !s.passed)
            .count()
        + transitions
            .iter()
            .filter(|t| current(t.superseded) && !t.passed)
            .count();

    let mut limit_sources = Vec::new();
    for l in &limits {
        push_unique(&mut limit_sources, l.source.clone());
    }
    let source_tags = source_tags(&limit_sources);
    let p = coverage_probability.unwrap_or(COVERAGE_PROBABILITY);
    let mut frequencies_hz: Vec<String> = Vec::new();
    let mut voltages_v: Vec<String> = Vec::new();
    for step in r.steps.iter().filter(|s| s.kind.is_point()) {
        push_unique(&mut frequencies_hz, fmt_num(step.setpoint.frequency_hz));
        push_unique(&mut voltages_v, fmt_num(step.load.voltage_v));
    }

    let (document_title, number_label) = match (r.outcome, r.procedure.document) {
        (Outcome::Error | Outcome::Aborted, _) => ("Test report", "Report no."),
        (_, DocumentKind::ProductionTestRecord) => ("Production test record", "Record no."),
        (_, DocumentKind::CalibrationCertificate) => ("Calibration certificate", "Certificate no."),
    };
    Ok(View {
        run_id: r.run_id.clone(),
        document_title,
        number_label,
        no_result: matches!(r.outcome, Outcome::Error | Outcome::Aborted).then(|| {
            format!(
                "No calibration result exists for this item: the run ended {}{}. The measurements made before it ended are reported for the record; none of them is a calibration result, and no statement of conformity is made.",
                verdict(r.outcome),
                r.outcome_reason
                    .as_deref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            )
        }),
        bench_version: r.bench_version.clone(),
        renderer_version: env!("CARGO_PKG_VERSION"),
        simulated: r.simulated,
        started: timestamp(&started_at),
        finished: finished.as_ref().map(timestamp),
        bench_time: if r.simulated {
            format!(
                "{:.0} s on the simulated bench's clock (virtual time, computed in {:.1} s)",
                r.timing.bench_duration_s, r.timing.wall_s
            )
        } else {
            format!("{:.0} s on the bench's clock", r.timing.bench_duration_s)
        },
        outcome: verdict(r.outcome),
        outcome_class: match r.outcome {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::NotDecidable => "undecided",
            _ => "error",
        },
        outcome_reason: r.outcome_reason.clone(),
        overall_conformity: match r.outcome {
            Outcome::Pass => Some("pass"),
            Outcome::Fail => Some("fail"),
            _ => None,
        },
        no_statement_rule: match &r.procedure.test_uncertainty_ratio {
            Some(t) => format!(
                "a point whose U (k = 2) is larger than its limit divided by {} is not decidable at this uncertainty and gets no statement of conformity (source: {})",
                fmt_num(t.min),
                t.source
            ),
            None => "the record names no test uncertainty ratio: every point was decided by the rule alone".into(),
        },
        station: Station {
            id: r.station.id.clone(),
            name: r.station.name.clone(),
            laboratory: r.station.laboratory.clone(),
            path: r.station.path.clone(),
            sha256: r.station.sha256.clone(),
            address: Some(r.station.laboratory_address.trim())
                .filter(|a| !a.is_empty())
                .unwrap_or("not recorded")
                .to_string(),
            country: r.station.country.clone(),
            place: place(r),
            located_elsewhere: r.station.location.is_some(),
        },
        order: order_view(r.order.as_ref()),
        customer_recorded: r.order.is_some(),
        traceability: traceability(r),
        ambient: ambient_view(r),
        dut: Dut {
            manufacturer: r.dut.manufacturer.clone(),
            device_type: r.dut.device_type.clone(),
            serial_number: r.dut.serial_number.clone(),
            accuracy_class: r.dut.accuracy_class.clone(),
            meter_constant: fmt_num(r.dut.meter_constant_imp_per_kwh),
            ports: r.dut.ports.clone(),
            kind: match r.dut.kind {
                meterbench_procedure::DeviceKind::Meter => "meter",
                meterbench_procedure::DeviceKind::CurrentSensor => "current_sensor",
            }
            .into(),
        },
        fixture: FileRef {
            id: r.fixture.id.clone(),
            path: r.fixture.path.clone(),
            sha256: r.fixture.sha256.clone(),
        },
        procedure: Procedure {
            id: r.procedure.id.clone(),
            version: r.procedure.version.clone(),
            title: r.procedure.title.clone(),
            path: r.procedure.path.clone(),
            sha256: r.procedure.sha256.clone(),
        },
        method: method(r, !transitions.is_empty()),
        decision: decision_text(r.procedure.decision_rule),
        uncertainty_norm: UNCERTAINTY_NORM,
        instruments: r
            .instruments
            .iter()
            .map(|i| {
                let reported = i.reported.as_ref().map(|x| Reported {
                    manufacturer: x.manufacturer.clone(),
                    model: x.model.clone(),
                    serial: x.serial_number.clone(),
                    firmware: x.firmware.clone(),
                });
                Instrument {
                    role: i.label(),
                    driver: i.driver.clone(),
                    port: i.port.clone(),
                    declared_model: i.declared_model.clone(),
                    declared_serial: i.declared_serial_number.clone(),
                    serial_mismatch: i.serial_differs == Some(true),
                    reported,
                    calibration_id: i.calibration.id.clone(),
                    issued_by: i.calibration.issued_by.clone(),
                    due: i.calibration.due.to_string(),
                    overdue: i.calibration_overdue,
                }
            })
            .collect(),
        ports,
        starting,
        no_load,
        checks,
        software_failed: software.iter().any(|s| !s.passed),
        software,
        inspection,
        scanned_serial,
        inspection_failed,
        inspection_problems,
        register,
        sensor_readings_decided: sensor.iter().any(|s| !s.error_value.is_empty()),
        sensor,
        transition_problems: transitions.iter().any(|t| !t.problem.is_empty()),
        transition_method: if transitions.is_empty() {
            String::new()
        } else {
            TRANSITION_METHOD.to_string()
        },
        transitions,
        telegrams,
        load_difference_method: if load_differences.is_empty() {
            ""
        } else {
            meterbench_metrology::load_difference::COMBINATION
        },
        load_differences,
        unmeasured,
        limits,
        limit_sources,
        source_tags,
        budget_columns,
        reference_corrections,
        adaptive,
        coverage_factor: "2".into(),
        coverage_probability: format!("{p:.4}"),
        coverage_percent: format!("{:.2}", p * 100.0),
        frequencies_hz,
        voltages_v,
        fail_count,
        point_count,
        only_conditional: r.outcome == Outcome::Fail && {
            let failed: Vec<&StepRecord> = r
                .latest_attempts()
                .into_iter()
                .filter(|s| s.outcome == Outcome::Fail)
                .collect();
            !failed.is_empty() && failed.iter().all(|s| s.only_conditional_passes())
        },
        position: r
            .position
            .as_ref()
            .filter(|p| p.rack.max(p.of) > 1)
            .map(|p| {
                if p.of > 1 {
                    format!("{}, one of {} measured from one load", p.id, p.of)
                } else {
                    p.id.to_string()
                }
            }),
        session_id: r.session_id.clone(),
        amends: r.amends.clone(),
        deviations: r.deviations.iter().map(|d| d.describe()).collect(),
    })
}

/// The latest attempt of step `index` in the record.
fn latest_attempt(r: &RunRecord, index: usize) -> u32 {
    r.steps
        .iter()
        .filter(|s| s.index == index)
        .map(|s| s.attempt)
        .max()
        .unwrap_or(1)
}

/// A step's name with its attempt, when it was measured more than once.
fn attempt_name(step: &StepRecord, latest: u32) -> String {
    match (step.attempt, latest) {
        (_, 1) => step.name.clone(),
        (a, l) if a < l => format!("{} (attempt {a}, superseded)", step.name),
        (a, _) => format!("{} (attempt {a})", step.name),
    }
}

fn accuracy_row(
    step: &StepRecord,
    latest: u32,
    result: Option<&PortResult>,
    budget_columns: &[String],
) -> Option<AccuracyRow> {
    let Some(PortResult::Accuracy {
        repeats,
        statistics,
        budget,
        error_percent,
        expanded_u_percent,
        limit,
        decision,
        stopping,
        ..
    }) = result
    else {
        return None;
    };
    let rounded = round_result(*error_percent, *expanded_u_percent);
    let (cos_phi, pf_character) = split_pf(&step.load.power_factor);
    let budget_cells = budget_columns
        .iter()
        .map(|name| {
            budget
                .contributions
                .iter()
                .find(|c| &c.name == name)
                .map_or_else(
                    || "—".to_string(),
                    |c| budget_term(c, budget.expanded_u_percent),
                )
        })
        .collect();
    Some(AccuracyRow {
        outside_air: step.ambient.as_ref().and_then(|a| a.outside.clone()),
        step_index: step.index,
        name: attempt_name(step, latest),
        superseded: step.attempt < latest,
        current_a: fmt_num(step.load.current_a),
        current_name: step.load.current_name.clone(),
        pf: pf_label(&step.load.power_factor),
        cos_phi,
        pf_character,
        phases: step
            .load
            .phases
            .iter()
            .map(|p| format!("{p:?}"))
            .collect::<Vec<_>>()
            .join(" "),
        load: load_name(limit.load),
        voltage_v: fmt_num(step.load.voltage_v),
        error: rounded.signed,
        error_value: rounded.plain,
        u: rounded.u,
        mpe: fmt_num(limit.mpe_percent),
        conformity: conformity_key(decision.conformity),
        conformity_label: conformity_label(decision.conformity),
        accepted: decision.accepted,
        repeats: statistics.n.max(repeats.len()),
        pulses_per_repeat: repeats.first().map_or(0, |x| x.dut_pulses),
        limit_name: limit.name.clone(),
        limit_source: limit.source.clone(),
        budget: budget_cells,
        combined_u: fmt_sig(budget.combined_u_percent, 2),
        k: fmt_k(budget.coverage_factor),
        dof: fmt_dof(budget.effective_dof),
        ended: match stopping.map(|s| s.reason) {
            None | Some(StopReason::Fixed) => "",
            Some(StopReason::UncertaintyReached) => "U reached its target",
            Some(StopReason::Decided) => "decision certain",
            Some(StopReason::MaxRepeats) => "all repeats",
            Some(StopReason::MaxTime) => "time limit",
        },
    })
}

/// How a transition point is measured, for every certificate that shows one.
const TRANSITION_METHOD: &str = "At a transition point the bench steps the current of each \
    loaded phase on its own and, after each change and its settling, takes one telegram \
    whose measuring second lies wholly in the settled current. A Bayesian search chooses \
    each current where the answer (the upper reading or not) tells most, and stops when the \
    reference current μ at which the reading flips is known to the point's target. The \
    fixture's rounding gives the sensor's value there, b (n + 0.5 A between readings n and \
    n + 1 when it rounds to the nearest ampere), so e = (b − μ) / μ × 100 %, free of the \
    reading's resolution. U combines the reference current's certificate and the search's \
    standard uncertainty of μ, which includes the sensor's noise. Each search covers the \
    currents where a sensor at twice the limit flips, widened for the noise the fixture \
    expects: a flip beyond them is stated as an error beyond the search's one-sided bound \
    (FAIL), without a value.";

/// A channel's transition result as the certificate shows it.
fn transition_row(step: &StepRecord, latest: u32, channel: &str, t: &PortResult) -> TransitionRow {
    let PortResult::Transition {
        between_a,
        search,
        probes,
        searched_s,
        mu_a,
        u_mu_a,
        error_percent,
        error_beyond_percent,
        budget,
        expanded_u_percent,
        limit_percent,
        decision,
        problem,
        passed,
        ..
    } = t
    else {
        unreachable!("called for transition results only")
    };
    let located = match (error_percent, expanded_u_percent, u_mu_a) {
        (Some(e), Some(u), Some(u_mu)) => Some((round_result(*e, *u), round_result(*mu_a, *u_mu))),
        _ => None,
    };
    let (error, u, mu, u_mu) = match (&located, error_beyond_percent) {
        (Some((e, m)), _) => (e.signed.clone(), e.u.clone(), m.plain.clone(), m.u.clone()),
        (None, Some(beyond)) => (
            format!("beyond {beyond:+.2}"),
            "–".into(),
            "–".into(),
            "–".into(),
        ),
        (None, None) => ("–".into(), "–".into(), "–".into(), "–".into()),
    };
    TransitionRow {
        outside_air: step.ambient.as_ref().and_then(|a| a.outside.clone()),
        point: attempt_name(step, latest),
        superseded: step.attempt < latest,
        channel: channel.to_string(),
        readings: format!("{} → {}", fmt_num(between_a.0), fmt_num(between_a.1)),
        boundary_a: fmt_num(search.boundary_a),
        mu_a: mu,
        u_mu_a: u_mu,
        telegrams: probes.len(),
        seconds: format!("{searched_s:.0}"),
        error,
        u,
        k: budget
            .as_ref()
            .map_or_else(|| "–".into(), |b| fmt_k(b.coverage_factor)),
        limit: format!("±{}", fmt_num(*limit_percent)),
        passed: *passed,
        // Short, for a table cell; `problem` says the rest.
        conformity: match (decision, error_beyond_percent) {
            (Some(d), _) if located.is_some() => {
                if *passed {
                    format!("{:?}", d.conformity).to_lowercase()
                } else {
                    conformity_label(d.conformity).to_string()
                }
            }
            (_, Some(_)) => format!("FAIL: outside ±{} %", fmt_num(*limit_percent)),
            _ => "FAIL: not located".into(),
        },
        error_value: located
            .as_ref()
            .map_or_else(String::new, |(e, _)| e.plain.clone()),
        u_value: located
            .as_ref()
            .map_or_else(String::new, |(e, _)| e.u.clone()),
        mu_value: located
            .as_ref()
            .map_or_else(String::new, |(_, m)| m.plain.clone()),
        u_mu_value: located
            .as_ref()
            .map_or_else(String::new, |(_, m)| m.u.clone()),
        boundary_value: fmt_num(search.boundary_a),
        limit_value: fmt_num(*limit_percent),
        dcc_conformity: dcc_value(decision.as_ref(), *passed),
        problem: problem.clone().unwrap_or_default(),
    }
}

fn parse_utc(s: &str) -> Result<DateTime<Utc>, RenderError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| RenderError::InvalidRecord(format!("time `{s}` is not RFC 3339: {e}")))
}

fn timestamp(t: &DateTime<Utc>) -> Timestamp {
    Timestamp {
        display: t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        date: t.format("%Y-%m-%d").to_string(),
    }
}

/// `YYYY-MM-DD` or an error naming the field.
pub(crate) fn check_date(field: &str, s: &str) -> Result<(), RenderError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|_| ())
        .map_err(|_| RenderError::InvalidContext(format!("{field} `{s}` is not YYYY-MM-DD")))
}

/// The run's method; a sensor's, with transition points, says how those are measured.
fn method(r: &RunRecord, transitions: bool) -> Method {
    match r.procedure.method {
        ReferenceMethod::GatedReferenceCount => Method {
            key: "gated_reference_count",
            name: "Gated reference-count method",
            description: format!(
                "The meter's test-output pulses open and close the gate; the reference \
                 standard's pulse output ({} imp/kWh) is counted in between. \
                 e = (n0 − n_ref) / n_ref × 100 %, n0 = N · k_ref / k_dut.",
                fmt_num(r.reference_imp_per_kwh)
            ),
            norm: METHOD_NORM,
        },
        ReferenceMethod::ReferenceCurrent if transitions => Method {
            key: "reference_current",
            name: "Reference current, transition points",
            description: "The calibrated source drives a known current through the sensor's \
                          CTs, set for each phase on its own; only telegrams whose measuring \
                          second lies wholly inside the settled current are used. At a \
                          transition point the current is stepped to where the reading flips \
                          between two neighbouring values, where the sensor's own value is \
                          known from its rounding: e = (b − μ) / μ × 100 %. At a current \
                          point each reading is compared with the current: e = (I_read − \
                          I_ref) / I_ref × 100 %."
                .to_string(),
            norm: "CSP1 user manual; JCGM 100:2008",
        },
        ReferenceMethod::ReferenceCurrent => Method {
            key: "reference_current",
            name: "Reference current",
            description: "The calibrated source drives a known current through the sensor's \
                          CTs; each telegram's reading, taken over a whole second inside the \
                          settled interval, is compared with it. e = (I_read − I_ref) / I_ref \
                          × 100 %."
                .to_string(),
            norm: "CSP1 user manual; JCGM 100:2008",
        },
        ReferenceMethod::Timed => Method {
            key: "timed",
            name: "Timed method",
            description: format!(
                "The power standard delivers a known, stable power P; E_ref = P · Δt, with Δt \
                 from the counter's timestamps of the first and last gated meter pulse \
                 (timebase {} Hz). e = (E_dut − E_ref) / E_ref × 100 %.",
                fmt_num(r.counter_timebase_hz)
            ),
            norm: METHOD_NORM,
        },
    }
}

fn decision_text(rule: DecisionRule) -> DecisionText {
    match rule {
        DecisionRule::SimpleAcceptance => DecisionText {
            key: "simple_acceptance",
            name: "Simple acceptance (binary statement, no guard band)",
            description: "A point passes when |e| ≤ MPE. The expanded uncertainty U is \
                          stated for every point but not subtracted from the limit, so a \
                          point close to the limit carries a risk of false acceptance of up \
                          to about 50 %.",
            norm: DECISION_NORM,
        },
        DecisionRule::GuardBanded => DecisionText {
            key: "guard_banded",
            name: "Guard-banded acceptance (guard band w = U)",
            description: "A point passes when |e| + U ≤ MPE and fails when |e| − U > MPE; \
                          in between it is a conditional pass (|e| ≤ MPE) or a conditional \
                          fail (|e| > MPE). Only a pass is accepted, which keeps the \
                          probability of false acceptance below about 2.5 %.",
            norm: DECISION_NORM,
        },
    }
}

pub(crate) fn conformity_key(c: Conformity) -> &'static str {
    match c {
        Conformity::Pass => "pass",
        Conformity::Fail => "fail",
        Conformity::ConditionalPass => "conditionalPass",
        Conformity::ConditionalFail => "conditionalFail",
        Conformity::NoStatement => "noStatement",
    }
}

fn conformity_label(c: Conformity) -> &'static str {
    match c {
        Conformity::Pass => "pass",
        Conformity::Fail => "FAIL",
        Conformity::ConditionalPass => "conditional pass",
        Conformity::ConditionalFail => "CONDITIONAL FAIL",
        Conformity::NoStatement => "NOT DECIDABLE at this uncertainty",
    }
}

fn pass_fail(passed: bool) -> &'static str {
    if passed { "pass" } else { "fail" }
}

/// A DCC conformity value, or none ("") for a point that got no statement of
/// conformity: the DCC has no value for it, so the element is left out.
fn dcc_value(decision: Option<&meterbench_metrology::Decision>, passed: bool) -> &'static str {
    match decision {
        Some(d) if d.conformity == Conformity::NoStatement => "",
        _ => pass_fail(passed),
    }
}

fn load_name(l: LoadKind) -> &'static str {
    match l {
        LoadKind::Balanced => "balanced",
        LoadKind::SinglePhase => "single phase",
    }
}

/// `1` → (`1`, unity); `0.5i` → (`0.5`, inductive); `0.8c` → (`0.8`, capacitive).
pub(crate) fn split_pf(pf: &PowerFactor) -> (String, &'static str) {
    match pf.character {
        PfCharacter::Inductive => (fmt_num(pf.cos_phi), "inductive"),
        PfCharacter::Capacitive => (fmt_num(pf.cos_phi), "capacitive"),
        PfCharacter::Unity => ("1".to_string(), "unity"),
    }
}

/// `0.5i` → `0.5 ind.`
pub(crate) fn pf_label(pf: &PowerFactor) -> String {
    match split_pf(pf) {
        (n, "inductive") => format!("{n} ind."),
        (n, "capacitive") => format!("{n} cap."),
        (n, _) => n,
    }
}

/// `can`, `lcd`: where a reading came from, in the certificate's words.
fn read_from_word(r: meterbench_procedure::IdentitySource) -> &'static str {
    match r {
        meterbench_procedure::IdentitySource::Can => "can",
        meterbench_procedure::IdentitySource::Lcd => "lcd",
    }
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

/// A number as short as it can be said exactly: `0.25`, `5`, `32`, `160000000`.
pub(crate) fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let s = format!("{x}");
    // Rust prints short round-trip decimals without exponent; trim a lone `.0`.
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// `sig` significant digits, plain decimal notation.
pub(crate) fn fmt_sig(x: f64, sig: i32) -> String {
    if x == 0.0 || !x.is_finite() {
        return fmt_num(x);
    }
    let decimals = (sig - 1 - x.abs().log10().floor() as i32).clamp(0, 12) as usize;
    format!("{x:.decimals$}")
}

pub struct Rounded {
    pub signed: String,
    pub plain: String,
    pub u: String,
}

/// EA-4/02: U to two significant digits (rounded up when ordinary rounding would lower it
/// by more than 5 %), the error to the same decimal place.
pub fn round_result(error: f64, u: f64) -> Rounded {
    let u = u.abs();
    let decimals: usize = if u > 0.0 && u.is_finite() {
        (1 - u.log10().floor() as i32).clamp(0, 9) as usize
    } else {
        4
    };
    let scale = 10f64.powi(decimals as i32);
    let mut ur = (u * scale).round() / scale;
    if ur < 0.95 * u {
        ur = (u * scale).ceil() / scale;
    }
    let mut e = (error * scale).round() / scale;
    if e == 0.0 {
        e = 0.0; // no `-0.000`
    }
    Rounded {
        signed: if e == 0.0 {
            format!("{e:.decimals$}")
        } else {
            format!("{e:+.decimals$}")
        },
        plain: format!("{e:.decimals$}"),
        u: format!("{ur:.decimals$}"),
    }
}

/// A current sensor's one limit, for every point and channel.
fn sensor_limit(r: &RunRecord, limit_percent: f64, source: &str) -> LimitView {
    LimitView {
        name: format!("{} accuracy", r.dut.device_type),
        load: "per channel",
        current: "every point".into(),
        mpe: fmt_num(limit_percent),
        source: source.to_string(),
    }
}

/// A coverage factor as certificates print it: two decimals (`2.00`, `2.17`).
fn fmt_k(k: f64) -> String {
    format!("{k:.2}")
}

/// Effective degrees of freedom: a whole number (rounded down, as k was taken), `∞`
/// when every term is taken as exactly known in shape.
fn fmt_dof(dof: Option<f64>) -> String {
    dof.map_or_else(|| "∞".into(), |v| format!("{}", v.floor()))
}

/// A budget term with two significant digits like U; a term below a millionth of U is
/// float noise of a difference (a timebase that cancels), printed as 0; a term listed as
/// a check and not combined is in parentheses.
fn budget_term(c: &Contribution, expanded_u: f64) -> String {
    let text = if c.u_percent.abs() < 1e-6 * expanded_u.abs() {
        "0".to_string()
    } else {
        fmt_sig(c.u_percent, 2)
    };
    if c.combined {
        text
    } else {
        format!("({text})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_like_ea_4_02() {
        let r = round_result(0.107_014, 0.010_235);
        assert_eq!((r.signed.as_str(), r.u.as_str()), ("+0.107", "0.010"));
        let r = round_result(-0.275_1, 0.010_3);
        assert_eq!((r.signed.as_str(), r.plain.as_str()), ("-0.275", "-0.275"));
        // 0.0149 → 0.015; 0.2049 → 0.20 loses 2.4 %, kept.
        assert_eq!(round_result(1.0, 0.0149).u, "0.015");
        assert_eq!(round_result(1.0, 0.2049).u, "0.20");
        assert_eq!(round_result(-0.00001, 0.01).signed, "0.000");
    }

    #[test]
    fn power_factor_labels() {
        let pf = |s: &str| s.parse::<PowerFactor>().unwrap();
        assert_eq!(pf_label(&pf("1")), "1");
        assert_eq!(pf_label(&pf("0.5i")), "0.5 ind.");
        assert_eq!(split_pf(&pf("0.8c")), ("0.8".to_string(), "capacitive"));
    }

    #[test]
    fn numbers_and_probabilities() {
        assert_eq!(fmt_num(5.0), "5");
        assert_eq!(fmt_num(0.25), "0.25");
        assert_eq!(fmt_num(1.6e8), "160000000");
        assert_eq!(fmt_sig(0.000_022_846, 2), "0.000023");
        assert_eq!(
            (fmt_k(2.0), fmt_k(2.168_94)),
            ("2.00".into(), "2.17".into())
        );
        assert_eq!(
            (fmt_dof(None), fmt_dof(Some(16.13))),
            ("∞".into(), "16".into())
        );
        let term = |u: f64, combined: bool| Contribution {
            combined,
            ..Contribution::new("t", u, None, "")
        };
        // Float noise of a cancelling term is 0, not 0.000000000000.
        assert_eq!(budget_term(&term(3e-16, true), 0.036), "0");
        assert_eq!(budget_term(&term(0.015_811, true), 0.036), "0.016");
        assert_eq!(budget_term(&term(0.01, false), 0.036), "(0.010)");
    }
}

/// A tag of a procedure's `source:` notes and what it says about the number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceTag {
    pub tag: &'static str,
    pub meaning: &'static str,
}

/// The tags of meterbench's metrology notes (`docs/metrology.md`), as the shipped
/// procedures use them.
const SOURCE_TAGS: [SourceTag; 3] = [
    SourceTag {
        tag: "[C]",
        meaning: "confirmed in the legal text or a primary source",
    },
    SourceTag {
        tag: "[3p]",
        meaning: "a vendor or laboratory quoting the standard",
    },
    SourceTag {
        tag: "[U]",
        meaning: "the procedure's reading of the standard, not confirmed against its text",
    },
];

/// The tags that occur in `sources`, in the order of [`SOURCE_TAGS`].
fn source_tags(sources: &[String]) -> Vec<SourceTag> {
    SOURCE_TAGS
        .iter()
        .filter(|t| sources.iter().any(|s| s.contains(t.tag)))
        .cloned()
        .collect()
}

#[cfg(test)]
mod source_tag_tests {
    use super::*;

    #[test]
    fn only_the_tags_used_are_explained() {
        let sources = vec![
            "EN 50470-3 class B [U] (docs/metrology.md, Limits)".to_string(),
            "CPIM1000 guide [C]".to_string(),
        ];
        let tags: Vec<&str> = source_tags(&sources).iter().map(|t| t.tag).collect();
        assert_eq!(tags, ["[C]", "[U]"]);
        assert!(source_tags(&["ILAC-G8:09/2019 4.2.1".to_string()]).is_empty());
    }
}
