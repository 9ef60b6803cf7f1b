//! Before anything is switched on: resolve every step into a setpoint, refuse what is
//! beyond the fixture's or the source's ratings, and find each accuracy point's limit.

use crate::record::LoadPoint;
use meterbench_instruments::{Phase, PhaseSetpoint, SourceSetpoint};
use meterbench_metrology::{LimitRule, LoadKind, PowerFactor, lookup_limit, pulse_period_s};
use meterbench_procedure::{DataError, Fixture, Procedure, Station, Step, StepKind, Wiring};

#[derive(Debug, Clone)]
pub struct PlannedStep {
    pub step: Step,
    pub load: LoadPoint,
    pub setpoint: SourceSetpoint,
    /// Measuring elements carrying current.
    pub elements: u32,
    pub limit: Option<LimitRule>,
    /// Nominal LED period at this load for a perfect meter, s (∞ without current).
    pub nominal_period_s: f64,
}

pub fn wiring_phases(w: Wiring) -> Vec<Phase> {
    match w {
        Wiring::ThreePhaseFourWire => Phase::ALL.to_vec(),
        Wiring::SinglePhase => vec![Phase::L1],
    }
}

fn setpoint(
    fixture: &Fixture,
    wiring: Wiring,
    voltage_v: f64,
    current_a: f64,
    pf: PowerFactor,
    loaded: &[Phase],
) -> SourceSetpoint {
    let mut s = SourceSetpoint {
        frequency_hz: fixture.frequency_hz,
        phases: [PhaseSetpoint::default(); 3],
    };
    for ph in wiring_phases(wiring) {
        s.phases[ph.index()] = PhaseSetpoint {
            voltage_v,
            current_a: if loaded.contains(&ph) { current_a } else { 0.0 },
            current_lag_deg: if loaded.contains(&ph) {
                pf.current_lag_deg()
            } else {
                0.0
            },
        };
    }
    s
}

pub fn plan(
    procedure: &Procedure,
    fixture: &Fixture,
    station: &Station,
) -> Result<Vec<PlannedStep>, DataError> {
    // Ratings first: a setpoint beyond them is refused whatever else is wrong.
    check_ratings(procedure, fixture, station)?;
    procedure.check_against(fixture)?;
    let rules: Vec<LimitRule> = procedure
        .limits
        .iter()
        .map(|l| l.resolve(fixture))
        .collect();
    let all = wiring_phases(procedure.wiring);
    let k = fixture.meter_constant_imp_per_kwh;
    let mut out = Vec::new();
    for step in &procedure.steps {
        let (current, current_name, pf, phases, voltage) = step_load(step, fixture, &all);
        let limit = match &step.kind {
            StepKind::Register(r) => Some(
                lookup_limit(&rules, current, r.power_factor, LoadKind::Balanced)
                    .map_err(|e| {
                        DataError::at(
                            &procedure.file.path,
                            step.pos,
                            format!("step `{}`: {e}", step.name),
                        )
                    })?
                    .clone(),
            ),
            StepKind::Accuracy(a) => Some(
                lookup_limit(&rules, current, a.power_factor, a.load)
                    .map_err(|e| {
                        DataError::at(
                            &procedure.file.path,
                            step.pos,
                            format!("step `{}`: {e}", step.name),
                        )
                    })?
                    .clone(),
            ),
            _ => None,
        };
        let sp = setpoint(fixture, procedure.wiring, voltage, current, pf, &phases);
        out.push(PlannedStep {
            nominal_period_s: pulse_period_s(sp.active_power_w(), k),
            elements: phases.len() as u32,
            load: LoadPoint {
                current_a: current,
                current_name: if matches!(step.kind, StepKind::NoLoad(_)) {
                    "no current".into()
                } else {
                    current_name
                },
                power_factor: pf.to_string(),
                phases,
                voltage_v: voltage,
            },
            setpoint: sp,
            limit,
            step: step.clone(),
        });
    }
    Ok(out)
}

/// Current, its name, PF, loaded phases and voltage of a step.
fn step_load(
    step: &Step,
    fixture: &Fixture,
    all: &[Phase],
) -> (f64, String, PowerFactor, Vec<Phase>, f64) {
    let un = fixture.nominal_voltage_v;
    match &step.kind {
        // The meter is powered to answer; no current flows.
        StepKind::Identity(_) => (0.0, "0".to_string(), PowerFactor::UNITY, Vec::new(), un),
        // A look at the unpowered DUT: nothing is switched on.
        StepKind::Inspection(_) => (0.0, "0".to_string(), PowerFactor::UNITY, Vec::new(), 0.0),
        StepKind::Register(r) => (
            r.current.amps(fixture),
            r.current.to_string(),
            r.power_factor,
            all.to_vec(),
            un,
        ),
        StepKind::PulseCheck(p) => (
            p.current.amps(fixture),
            p.current.to_string(),
            p.power_factor,
            all.to_vec(),
            un,
        ),
        StepKind::Starting(s) => (
            s.current.amps(fixture),
            s.current.to_string(),
            PowerFactor::UNITY,
            all.to_vec(),
            un,
        ),
        StepKind::NoLoad(n) => (
            0.0,
            "0".to_string(),
            PowerFactor::UNITY,
            Vec::new(),
            un * n.voltage_percent_of_un / 100.0,
        ),
        StepKind::Accuracy(a) => (
            a.current.amps(fixture),
            a.current.to_string(),
            a.power_factor,
            a.phases.clone(),
            un,
        ),
    }
}

/// Every setpoint against the fixture's and the source's ratings, first of all checks.
fn check_ratings(
    procedure: &Procedure,
    fixture: &Fixture,
    station: &Station,
) -> Result<(), DataError> {
    let all = wiring_phases(procedure.wiring);
    for step in &procedure.steps {
        let (current, _, _, _, voltage) = step_load(step, fixture, &all);
        let refuse = |what: String| {
            Err(DataError::at(
                &procedure.file.path,
                step.pos,
                format!(
                    "step `{}` {what}; refused before anything is switched on",
                    step.name
                ),
            ))
        };
        if current > fixture.max_current_a {
            return refuse(format!(
                "asks {current} A, beyond fixture `{}`'s rating of {} A",
                fixture.id, fixture.max_current_a
            ));
        }
        if voltage > fixture.max_voltage_v {
            return refuse(format!(
                "asks {voltage} V, beyond fixture `{}`'s rating of {} V",
                fixture.id, fixture.max_voltage_v
            ));
        }
        if current > station.source.max_current_a {
            return refuse(format!(
                "asks {current} A, beyond the source's rating of {} A",
                station.source.max_current_a
            ));
        }
        if voltage > station.source.max_voltage_v {
            return refuse(format!(
                "asks {voltage} V, beyond the source's rating of {} V",
                station.source.max_voltage_v
            ));
        }
    }
    Ok(())
}
