//! Before anything is switched on: resolve every step of a procedure of either kind into
//! a setpoint, refuse what is beyond the fixture's or the source's ratings, and find
//! each point's limit. One plan, one setpoint builder, for meters and sensors.

use crate::record::{LoadPoint, StepKind};
use meterbench_instruments::{Phase, PhaseSetpoint, SourceSetpoint};
use meterbench_metrology::{
    LimitRule, LoadKind, PowerFactor, lookup_limit, min_register_energy_wh, no_load_duration_s,
    pulse_period_s,
};
use meterbench_procedure::{
    AccuracyStep, DataError, DutFixture, DutProcedure, Fixture, IdentityStep, InspectionStep,
    LoadDifferenceStep, NoLoadStep, Pos, Procedure, PulseCheckStep, RegisterStep, SensorFixture,
    SensorProcedure, SensorStep, StartingStep, Station, StepKind as ProcedureStep, Wiring,
    sensor::SensorPoint,
};

/// What a planned step does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Identity(IdentityStep),
    Inspection(InspectionStep),
    Register(RegisterStep),
    PulseCheck(PulseCheckStep),
    Starting(StartingStep),
    NoLoad(NoLoadStep),
    Accuracy(AccuracyStep),
    /// A current sensor's readings at one current point.
    Current(SensorStep),
    /// A current sensor's telegram stream over the whole run, judged after the source is
    /// off.
    Telegrams,
    /// Single-phase points against the balanced one, from the record after the source is
    /// off.
    LoadDifference(LoadDifferenceStep),
}

impl Action {
    pub fn kind(&self) -> StepKind {
        match self {
            Action::Identity(_) => StepKind::Identity,
            Action::Inspection(_) => StepKind::Inspection,
            Action::Register(_) => StepKind::Register,
            Action::PulseCheck(_) => StepKind::PulseCheck,
            Action::Starting(_) => StepKind::Starting,
            Action::NoLoad(_) => StepKind::NoLoad,
            Action::Accuracy(_) => StepKind::Accuracy,
            Action::Current(_) => StepKind::Current,
            Action::Telegrams => StepKind::Telegrams,
            Action::LoadDifference(_) => StepKind::LoadDifference,
        }
    }

    /// Judged from what the run recorded, after the source is switched off.
    pub fn after_switch_off(&self) -> bool {
        matches!(self, Action::Telegrams | Action::LoadDifference(_))
    }
}

#[derive(Debug, Clone)]
pub struct PlannedStep {
    /// Its place in the plan.
    pub index: usize,
    pub name: String,
    /// Where the procedure declares it.
    pub pos: Pos,
    pub action: Action,
    pub load: LoadPoint,
    pub setpoint: SourceSetpoint,
    /// Measuring elements carrying current.
    pub elements: u32,
    pub limit: Option<LimitRule>,
    /// Nominal LED period at this load for a perfect meter, s (∞ without current; a
    /// sensor's telegram period for a current point).
    pub nominal_period_s: f64,
    /// How long the step is expected to take on the bench clock with the source as it
    /// asks (the nominal pulse rate, the declared times), s.
    pub expected_s: f64,
}

impl PlannedStep {
    pub fn kind(&self) -> StepKind {
        self.action.kind()
    }
}

pub fn wiring_phases(w: Wiring) -> Vec<Phase> {
    match w {
        Wiring::ThreePhaseFourWire => Phase::ALL.to_vec(),
        Wiring::SinglePhase => vec![Phase::L1],
    }
}

/// The source's setpoint: `voltage_v` on the wiring's phases, `current_a` at `pf` on the
/// loaded ones.
pub fn setpoint(
    frequency_hz: f64,
    wired: &[Phase],
    voltage_v: f64,
    current_a: f64,
    pf: PowerFactor,
    loaded: &[Phase],
) -> SourceSetpoint {
    let mut s = SourceSetpoint {
        frequency_hz,
        phases: [PhaseSetpoint::default(); 3],
    };
    for ph in wired {
        let on = loaded.contains(ph);
        s.phases[ph.index()] = PhaseSetpoint {
            voltage_v,
            current_a: if on { current_a } else { 0.0 },
            current_lag_deg: if on { pf.current_lag_deg() } else { 0.0 },
        };
    }
    s
}

/// Plan a procedure for its fixture on a station: every step's setpoint, limit and
/// timing. Data errors (a setpoint beyond a rating, a procedure for another kind of
/// device) come back before anything is switched on.
pub fn plan(
    procedure: &DutProcedure,
    fixture: &DutFixture,
    station: &Station,
) -> Result<Vec<PlannedStep>, DataError> {
    // Points measured in reference conditions need the air measured: a station without
    // a climate sensor cannot run such a procedure (ISO/IEC 17025 7.8.4.1 b).
    if let Some(c) = procedure.reference_conditions()
        && station.climate.is_none()
    {
        return Err(DataError::at(
            &procedure.file().path,
            c.pos,
            format!(
                "the procedure's points must be measured in reference conditions ({}), but station `{}` ({}) has no climate sensor to measure the air: add a `climate:` role; refused before anything is switched on",
                c.describe(),
                station.id,
                station.file.path.display()
            ),
        ));
    }
    match (procedure, fixture) {
        (DutProcedure::Meter(p), DutFixture::Meter(f)) => plan_meter(p, f, station),
        (DutProcedure::CurrentSensor(p), DutFixture::CurrentSensor(f)) => {
            plan_sensor(p, f, station)
        }
        _ => Err(procedure.check_against(fixture).expect_err("kinds differ")),
    }
}

/// A setpoint against the fixture's and the source's ratings.
fn check_rating(
    path: &std::path::Path,
    pos: Pos,
    name: &str,
    current_a: f64,
    voltage_v: f64,
    device: Option<(&str, f64, f64)>,
    station: &Station,
) -> Result<(), DataError> {
    let refuse = |what: String| {
        Err(DataError::at(
            path,
            pos,
            format!("step `{name}` {what}; refused before anything is switched on"),
        ))
    };
    if let Some((id, max_a, max_v)) = device {
        if current_a > max_a {
            return refuse(format!(
                "asks {current_a} A, beyond fixture `{id}`'s rating of {max_a} A"
            ));
        }
        if voltage_v > max_v {
            return refuse(format!(
                "asks {voltage_v} V, beyond fixture `{id}`'s rating of {max_v} V"
            ));
        }
    }
    if current_a > station.source.max_current_a {
        return refuse(format!(
            "asks {current_a} A, beyond the source's rating of {} A",
            station.source.max_current_a
        ));
    }
    if voltage_v > station.source.max_voltage_v {
        return refuse(format!(
            "asks {voltage_v} V, beyond the source's rating of {} V",
            station.source.max_voltage_v
        ));
    }
    Ok(())
}

fn plan_meter(
    procedure: &Procedure,
    fixture: &Fixture,
    station: &Station,
) -> Result<Vec<PlannedStep>, DataError> {
    let all = wiring_phases(procedure.wiring);
    let path = &procedure.file.path;
    // Ratings first: a setpoint beyond them is refused whatever else is wrong.
    for step in &procedure.steps {
        let l = meter_load(&step.kind, fixture, &all);
        check_rating(
            path,
            step.pos,
            &step.name,
            l.current_a,
            l.voltage_v,
            Some((&fixture.id, fixture.max_current_a, fixture.max_voltage_v)),
            station,
        )?;
    }
    procedure.check_against(fixture)?;
    let rules: Vec<LimitRule> = procedure
        .limits
        .iter()
        .map(|l| l.resolve(fixture))
        .collect();
    let limit_of = |step: &meterbench_procedure::Step, pf, load| {
        lookup_limit(
            &rules,
            meter_load(&step.kind, fixture, &all).current_a,
            pf,
            load,
        )
        .cloned()
        .map_err(|e| DataError::at(path, step.pos, format!("step `{}`: {e}", step.name)))
    };
    let k = fixture.meter_constant_imp_per_kwh;
    let mut out = Vec::new();
    for (index, step) in procedure.steps.iter().enumerate() {
        let l = meter_load(&step.kind, fixture, &all);
        let (limit, action) = match &step.kind {
            ProcedureStep::Register(r) => (
                Some(limit_of(step, r.power_factor, LoadKind::Balanced)?),
                Action::Register(r.clone()),
            ),
            ProcedureStep::Accuracy(a) => (
                Some(limit_of(step, a.power_factor, a.load)?),
                Action::Accuracy(lengthened(a, procedure, &l, fixture, &all)),
            ),
            ProcedureStep::Identity(i) => (None, Action::Identity(i.clone())),
            ProcedureStep::Inspection(i) => (None, Action::Inspection(i.clone())),
            ProcedureStep::PulseCheck(p) => (None, Action::PulseCheck(p.clone())),
            ProcedureStep::Starting(s) => (None, Action::Starting(s.clone())),
            ProcedureStep::NoLoad(n) => (None, Action::NoLoad(n.clone())),
            ProcedureStep::LoadDifference(d) => (None, Action::LoadDifference(d.clone())),
        };
        let sp = setpoint(
            fixture.frequency_hz,
            &all,
            l.voltage_v,
            l.current_a,
            l.power_factor,
            &l.phases,
        );
        let mut ps = PlannedStep {
            index,
            name: step.name.clone(),
            pos: step.pos,
            nominal_period_s: pulse_period_s(sp.active_power_w(), k),
            elements: l.phases.len() as u32,
            load: l,
            setpoint: sp,
            limit,
            action,
            expected_s: 0.0,
        };
        ps.expected_s = meter_step_s(&ps, fixture);
        out.push(ps);
    }
    check_energised(&out, &procedure.file.path, station)?;
    Ok(out)
}

/// An accuracy step with its pulses per repeat raised to the procedure's point length
/// (at the nominal pulse rate): its repeats, or the stopping rule's minimum of them, hold
/// at least `min_pulses` pulses and `min_s` seconds.
fn lengthened(
    a: &AccuracyStep,
    procedure: &Procedure,
    load: &LoadPoint,
    fixture: &Fixture,
    all: &[Phase],
) -> AccuracyStep {
    let Some(length) = &procedure.point_length else {
        return a.clone();
    };
    let sp = setpoint(
        fixture.frequency_hz,
        all,
        load.voltage_v,
        load.current_a,
        load.power_factor,
        &load.phases,
    );
    let period = pulse_period_s(sp.active_power_w(), fixture.meter_constant_imp_per_kwh);
    let repeats = procedure
        .stopping
        .as_ref()
        .map_or(a.repeats, |r| r.min_repeats.clamp(1, a.repeats)) as f64;
    let by_pulses = (length.min_pulses as f64 / repeats).ceil() as u64;
    let by_time = (length.min_s / period / repeats).ceil() as u64;
    AccuracyStep {
        pulses: a.pulses.max(by_pulses).max(by_time),
        ..a.clone()
    }
}

/// Expected duration of a meter step, s.
fn meter_step_s(ps: &PlannedStep, fixture: &Fixture) -> f64 {
    let p = ps.nominal_period_s;
    match &ps.action {
        Action::Identity(i) => i.settle_s + 1.0,
        Action::Inspection(_)
        | Action::Telegrams
        | Action::Current(_)
        | Action::LoadDifference(_) => 0.0,
        Action::Register(r) => 2.0 * r.settle_s + register_dose_s(r, ps, fixture),
        Action::PulseCheck(c) => c.settle_s + c.pulses as f64 * p,
        Action::Starting(s) => s.settle_s + s.pulses as f64 * p,
        Action::NoLoad(n) => n.settle_s + no_load_s(n, ps, fixture),
        Action::Accuracy(a) => a.settle_s + (a.pulses * u64::from(a.repeats) + 1) as f64 * p,
    }
}

/// How long the register step applies its load: until one register step is at most a
/// tenth of the point's limit and at least `min_register_steps` steps have passed.
pub(crate) fn register_dose_s(r: &RegisterStep, ps: &PlannedStep, fixture: &Fixture) -> f64 {
    let (Some(profile), Some(limit)) = (&fixture.register, &ps.limit) else {
        return 0.0;
    };
    let energy_wh = min_register_energy_wh(
        profile.resolution_wh,
        limit.mpe_percent,
        r.min_register_steps,
    );
    energy_wh / ps.setpoint.active_power_w() * 3600.0
}

/// The no-load test's duration at the planned voltage, s.
pub(crate) fn no_load_s(n: &NoLoadStep, ps: &PlannedStep, fixture: &Fixture) -> f64 {
    let elements = ps
        .setpoint
        .phases
        .iter()
        .filter(|p| p.voltage_v > 0.0)
        .count() as u32;
    no_load_duration_s(
        n.k_constant,
        fixture.meter_constant_imp_per_kwh,
        elements,
        ps.load.voltage_v,
        fixture.rated.ist,
    )
}

/// The plan's expected energised time against the station's limit: a procedure that
/// would keep the source on longer is refused before anything is switched on.
fn check_energised(
    plan: &[PlannedStep],
    procedure: &std::path::Path,
    station: &Station,
) -> Result<(), DataError> {
    let total: f64 = plan.iter().map(|p| p.expected_s).sum();
    if total.is_finite() && total <= station.max_energised_s {
        return Ok(());
    }
    let longest = plan
        .iter()
        .max_by(|a, b| a.expected_s.total_cmp(&b.expected_s))
        .map(|p| format!("; the longest step is `{}` ({:.0} s)", p.name, p.expected_s))
        .unwrap_or_default();
    Err(DataError::at(
        &station.file.path,
        station.max_energised_pos,
        format!(
            "procedure {} would keep the source energised for about {total:.0} s, more than this station's safety.max_energised_s of {:.0} s{longest}; refused before anything is switched on",
            procedure.display(),
            station.max_energised_s
        ),
    ))
}

/// The expected energised time of a plan, s (what `validate` shows).
pub fn expected_energised_s(plan: &[PlannedStep]) -> f64 {
    plan.iter().map(|p| p.expected_s).sum()
}

/// The highest current a sensor step sets, A: a current point's, or the high end of a
/// transition's bracket (a sensor reading low flips above its nominal point), rounded up
/// to the milliampere so that a refusal names a current as a person writes it.
fn sensor_step_top_a(s: &SensorStep, fixture: &SensorFixture) -> f64 {
    match &s.point {
        SensorPoint::Current { current_a, .. } => *current_a,
        SensorPoint::Transition(t) => {
            let high = fixture
                .transition_bracket_a(t)
                .expect("checked against the fixture")
                .1;
            (high * 1000.0).ceil() / 1000.0
        }
    }
}

/// How long a sensor step keeps the source on at most, s. A current point settles once
/// and takes its telegrams, plus one for the second under way. A transition point sets
/// up to `max_telegrams` currents, and each waits for the settling, the rest of the
/// second under way and a whole second of its own: a search that stops early takes
/// less, but the energised time a station allows is for the longest.
fn sensor_step_s(s: &SensorStep, fixture: &SensorFixture) -> f64 {
    let period = fixture.telegram_period_s;
    match &s.point {
        SensorPoint::Current { telegrams, .. } => s.settle_s + (telegrams + 1) as f64 * period,
        SensorPoint::Transition(t) => f64::from(t.max_telegrams) * (s.settle_s + 2.0 * period),
    }
}

/// The load a meter step applies: current, its name, PF, loaded phases and voltage.
fn meter_load(kind: &ProcedureStep, fixture: &Fixture, all: &[Phase]) -> LoadPoint {
    let un = fixture.nominal_voltage_v;
    let point =
        |current_a: f64, current_name: String, pf: PowerFactor, phases: &[Phase], v| LoadPoint {
            current_a,
            current_name,
            power_factor: pf,
            phases: phases.to_vec(),
            voltage_v: v,
        };
    match kind {
        // The meter is powered to answer; no current flows.
        ProcedureStep::Identity(_) => point(0.0, "0".into(), PowerFactor::UNITY, &[], un),
        // A look at the unpowered DUT: nothing is switched on.
        ProcedureStep::Inspection(_) => point(0.0, "0".into(), PowerFactor::UNITY, &[], 0.0),
        // Arithmetic on earlier points, with the source off.
        ProcedureStep::LoadDifference(_) => point(0.0, "–".into(), PowerFactor::UNITY, &[], 0.0),
        ProcedureStep::Register(r) => point(
            r.current.amps(fixture),
            r.current.to_string(),
            r.power_factor,
            all,
            un,
        ),
        ProcedureStep::PulseCheck(p) => point(
            p.current.amps(fixture),
            p.current.to_string(),
            p.power_factor,
            all,
            un,
        ),
        ProcedureStep::Starting(s) => point(
            s.current.amps(fixture),
            s.current.to_string(),
            PowerFactor::UNITY,
            all,
            un,
        ),
        ProcedureStep::NoLoad(n) => point(
            0.0,
            "no current".into(),
            PowerFactor::UNITY,
            &[],
            un * n.voltage_percent_of_un / 100.0,
        ),
        ProcedureStep::Accuracy(a) => point(
            a.current.amps(fixture),
            a.current.to_string(),
            a.power_factor,
            &a.phases,
            un,
        ),
    }
}

fn plan_sensor(
    procedure: &SensorProcedure,
    fixture: &SensorFixture,
    station: &Station,
) -> Result<Vec<PlannedStep>, DataError> {
    procedure.check_against(fixture)?;
    let all = Phase::ALL;
    for s in &procedure.steps {
        check_rating(
            &procedure.file.path,
            s.pos,
            &s.name,
            sensor_step_top_a(s, fixture),
            fixture.nominal_voltage_v,
            None,
            station,
        )?;
    }
    // A sensor is compared with the source's current: its uncertainty is needed.
    if station.source.current_uncertainty_k2_percent.is_none() {
        return Err(DataError::at(
            &station.file.path,
            station.source.pos,
            "the source declares no current_uncertainty_k2_percent: a current sensor is compared with the source's current, so its uncertainty is needed",
        ));
    }
    let mut out: Vec<PlannedStep> = procedure
        .steps
        .iter()
        .enumerate()
        .map(|(index, s)| {
            let current_a = s
                .nominal_current_a(fixture)
                .expect("checked against the fixture");
            let sp = setpoint(
                fixture.frequency_hz,
                &all,
                fixture.nominal_voltage_v,
                current_a,
                PowerFactor::UNITY,
                &s.phases,
            );
            PlannedStep {
                index,
                name: s.name.clone(),
                pos: s.pos,
                action: Action::Current(s.clone()),
                load: LoadPoint {
                    current_a,
                    current_name: match &s.point {
                        SensorPoint::Current { .. } => format!("{current_a} A"),
                        SensorPoint::Transition(t) => {
                            format!("{} → {} A flip", t.between_a.0, t.between_a.1)
                        }
                    },
                    power_factor: PowerFactor::UNITY,
                    phases: s.phases.clone(),
                    voltage_v: fixture.nominal_voltage_v,
                },
                setpoint: sp,
                elements: s.phases.len() as u32,
                limit: None,
                nominal_period_s: fixture.telegram_period_s,
                expected_s: sensor_step_s(s, fixture),
            }
        })
        .collect();
    out.push(PlannedStep {
        index: out.len(),
        name: "Telegrams (period, firmware, CRC)".into(),
        pos: Pos::default(),
        action: Action::Telegrams,
        load: LoadPoint {
            current_a: 0.0,
            current_name: "–".into(),
            power_factor: PowerFactor::UNITY,
            phases: Vec::new(),
            voltage_v: 0.0,
        },
        setpoint: SourceSetpoint {
            frequency_hz: fixture.frequency_hz,
            phases: [PhaseSetpoint::default(); 3],
        },
        elements: 0,
        limit: None,
        nominal_period_s: fixture.telegram_period_s,
        expected_s: 0.0,
    });
    check_energised(&out, &procedure.file.path, station)?;
    Ok(out)
}
