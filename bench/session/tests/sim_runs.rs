//! End-to-end runs of the real procedure on the simulated station, through the session
//! library (binding, runner) the command uses, with the simulated world inspected
//! afterwards.

use meterbench_instruments::{
    ChannelConfig, CounterBatch, InstrumentError, InstrumentIdentity, InstrumentResult,
    PulseCounter,
};
use meterbench_procedure::{DutProcedure, SimFault};
use meterbench_runner::record::{PortResult, RunRecord, StepKind};
use meterbench_runner::{Outcome, Silent};
use meterbench_session::{BoundStation, Prepared, SessionError, SessionOptions};
use meterbench_sim::CounterLinkFault;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

mod common;
use common::{edited, options, source_is_off, wrap_counter};

struct Setup {
    options: SessionOptions,
    reports: tempfile::TempDir,
    abort: Arc<AtomicBool>,
}

/// The class B procedure (edited: `from` → `to`) on the CPIM1000 at the simulated station.
fn setup(procedure_edit: Option<(&str, &str)>) -> Setup {
    let reports = tempfile::tempdir().unwrap();
    let mut options = options(
        "procedures/en50470-3-class-b.yaml",
        "fixtures/cpim1000.yaml",
        "hw/stations/sim.yaml",
        reports.path(),
    );
    if let Some((from, to)) = procedure_edit {
        options.procedure = edited(
            "procedures/en50470-3-class-b.yaml",
            from,
            to,
            reports.path(),
        );
    }
    options.serials = vec![(None, "TEST-0001".into())];
    Setup {
        options,
        reports,
        abort: Arc::new(AtomicBool::new(false)),
    }
}

fn prepare(s: &Setup, faults: &[&str], link: Vec<CounterLinkFault>) -> Prepared {
    let mut o = s.options.clone();
    o.sim_faults = faults.iter().map(|f| SimFault::parse(f).unwrap()).collect();
    o.counter_link_faults = link.into_iter().map(|f| (0, f)).collect();
    Prepared::load(o).unwrap()
}

/// Run a prepared session on its bound station; the one position's record.
fn run_with(s: &Setup, p: &Prepared, b: &mut BoundStation) -> Result<RunRecord, SessionError> {
    let session = p.run(b, None, s.abort.clone(), &mut Silent)?;
    let finished = session.runs.into_iter().next().unwrap();
    // The record on disk is the record returned.
    let disk = RunRecord::read(&finished.record_path).unwrap();
    assert_eq!(disk.outcome, finished.record.outcome);
    assert_eq!(disk.steps.len(), finished.record.steps.len());
    Ok(finished.record)
}

fn run_sim(s: &Setup, faults: &[&str]) -> (RunRecord, BoundStation) {
    let p = prepare(s, faults, Vec::new());
    let mut b = p.bind().unwrap();
    let rec = run_with(s, &p, &mut b).unwrap();
    (rec, b)
}

fn failed_steps(rec: &RunRecord) -> Vec<(String, Vec<String>)> {
    rec.steps
        .iter()
        .filter(|s| s.outcome == Outcome::Fail)
        .map(|s| {
            let ports = s
                .ports
                .iter()
                .filter(|p| !p.result.as_ref().unwrap().passed())
                .map(|p| p.port.clone())
                .collect();
            (s.name.clone(), ports)
        })
        .collect()
}

#[test]
fn measured_error_equals_injected_within_u() {
    let s = setup(None);
    let (rec, b) = run_sim(&s, &[]);
    assert_eq!(rec.outcome, Outcome::Pass, "{:?}", rec.outcome_reason);
    assert!(source_is_off(&b));
    let world = b.world.as_ref().unwrap().lock().unwrap();
    let e_ref = world.reference_error_percent();
    let mut points = 0;
    let mut worst: f64 = 0.0;
    for step in &rec.steps {
        for p in &step.ports {
            if let Some(PortResult::Accuracy {
                error_percent,
                expanded_u_percent,
                ..
            }) = &p.result
            {
                let injected = world
                    .injected_error_percent(1, &p.port, &step.setpoint)
                    .unwrap();
                // The bench corrects for its reference's error as the station declares it.
                let station = meterbench_procedure::Station::load(&s.options.station).unwrap();
                let declared = station.reference.correction.as_ref().unwrap().ranges[0];
                assert!((declared.unity_pf.error_percent - e_ref).abs() < 1e-9);
                let expected = injected;
                let diff = (error_percent - expected).abs();
                worst = worst.max(diff / expanded_u_percent);
                assert!(
                    diff <= *expanded_u_percent,
                    "{} {}: measured {error_percent:.5} %, injected {expected:.5} %, U {expanded_u_percent:.5} %",
                    step.name,
                    p.port
                );
                if step.name == "Iref PF1" {
                    assert!(
                        *expanded_u_percent <= 0.05,
                        "U(k=2) at Iref PF1 is {expanded_u_percent} %"
                    );
                }
                points += 1;
            }
        }
    }
    assert_eq!(points, 22, "11 accuracy points on 2 ports");
    eprintln!("largest |measured − injected| / U = {worst:.3}");
}

#[test]
fn both_ports_are_measured_at_once_close_to_the_physical_floor() {
    let s = setup(None);
    let (rec, _) = run_sim(&s, &[]);
    let t = &rec.timing;
    let ratio = t.bench_duration_s / t.physical_floor_s;
    assert!(
        (ratio - 1.0).abs() <= 0.10,
        "bench {} s vs floor {} s",
        t.bench_duration_s,
        t.physical_floor_s
    );
    // Both ports' pulses of every accuracy point come from the same time window.
    for step in rec.steps.iter().filter(|s| s.kind == StepKind::Accuracy) {
        let spans: Vec<(u64, u64)> = step
            .ports
            .iter()
            .map(|p| {
                (
                    p.pulses.first().unwrap().timestamp_ticks,
                    p.pulses.last().unwrap().timestamp_ticks,
                )
            })
            .collect();
        let (a, b) = (spans[0], spans[1]);
        assert!(
            a.0 < b.1 && b.0 < a.1,
            "{}: ports measured in disjoint windows {a:?} {b:?}",
            step.name
        );
    }
}

#[test]
fn an_out_of_limit_point_fails_exactly_that_point() {
    let s = setup(None);
    let (rec, b) = run_sim(
        &s,
        &["{error_bump: {port: right, from_a: 4, to_a: 6, cos_phi: 1, error_percent: 1.6}}"],
    );
    assert_eq!(rec.outcome, Outcome::Fail);
    // The bump also reaches the single-phase Iref points, but their limit is 2 %.
    assert_eq!(
        failed_steps(&rec),
        vec![("Iref PF1".to_string(), vec!["right".to_string()])]
    );
    assert!(source_is_off(&b));
}

#[test]
fn a_meter_that_does_not_start_fails_the_starting_test() {
    let s = setup(None);
    let (rec, b) = run_sim(&s, &["{no_start: {port: left, threshold_a: 0.05}}"]);
    assert_eq!(rec.outcome, Outcome::Fail);
    assert_eq!(
        failed_steps(&rec),
        vec![("Starting current".to_string(), vec!["left".to_string()])]
    );
    assert!(source_is_off(&b));
}

#[test]
fn a_creeping_meter_fails_the_no_load_test() {
    let s = setup(None);
    let (rec, b) = run_sim(&s, &["{creep: {port: right, power_w: 6}}"]);
    assert_eq!(rec.outcome, Outcome::Fail);
    assert_eq!(
        failed_steps(&rec),
        vec![("No-load (creep)".to_string(), vec!["right".to_string()])]
    );
    assert!(source_is_off(&b));
}

#[test]
fn a_dead_led_is_an_error_naming_the_port() {
    let s = setup(None);
    let (rec, b) = run_sim(&s, &["{dead_led: {port: right}}"]);
    assert_eq!(rec.outcome, Outcome::Error);
    let reason = rec.outcome_reason.unwrap();
    assert!(
        reason.contains("port right") && reason.contains("channel 2"),
        "{reason}"
    );
    assert!(!reason.contains("port left"), "{reason}");
    assert!(source_is_off(&b));
}

#[test]
fn a_dead_led_found_during_an_accuracy_point_is_an_error_too() {
    // Without the scanning-head check the accuracy point notices the silence itself.
    let s = setup(None);
    let mut p = prepare(&s, &["{dead_led: {port: left}}"], Vec::new());
    let DutProcedure::Meter(procedure) = &mut p.procedure else {
        panic!()
    };
    procedure.steps.retain(|st| {
        !["Scanning heads", "Starting current", "No-load (creep)"].contains(&st.name.as_str())
    });
    let mut b = p.bind().unwrap();
    let rec = run_with(&s, &p, &mut b).unwrap();
    assert_eq!(rec.outcome, Outcome::Error);
    let reason = rec.outcome_reason.unwrap();
    assert!(
        reason.contains("no pulse from port left (counter channel 1)"),
        "{reason}"
    );
    assert!(source_is_off(&b));
}

#[test]
fn a_wrong_meter_constant_fails_every_accuracy_point() {
    let s = setup(None);
    let (rec, b) = run_sim(&s, &["{wrong_constant: {port: left, imp_per_kwh: 20400}}"]);
    assert_eq!(rec.outcome, Outcome::Fail);
    let failed = failed_steps(&rec);
    let accuracy: Vec<&str> = rec
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::Accuracy)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        failed.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(),
        accuracy
    );
    assert!(failed.iter().all(|f| f.1 == ["left"]));
    assert!(source_is_off(&b));
}

#[test]
fn setpoints_beyond_the_fixture_rating_are_refused_before_switching_on() {
    let s = setup(Some((
        "current: Imax, power_factor: 0.5i",
        "current: 40, power_factor: 0.5i",
    )));
    // Refused when the session is loaded: no port is opened, nothing is switched on.
    match Prepared::load(s.options.clone()) {
        Err(SessionError::Data(e)) => {
            let m = e.to_string();
            assert!(
                m.contains("40 A") && m.contains("refused before anything is switched on"),
                "{m}"
            );
            assert!(m.contains("en50470-3-class-b.yaml:"), "{m}");
        }
        Err(e) => panic!("expected a data error, got {e}"),
        Ok(_) => panic!("expected a refusal"),
    }
    // The runner refuses it too, should a caller bypass the session's checks: here a
    // source rated below the procedure's currents.
    let mut o = s.options.clone();
    o.procedure = common::repo().join("procedures/en50470-3-class-b.yaml");
    let mut p = Prepared::load(o).unwrap();
    let mut b = p.bind().unwrap();
    p.station.source.max_current_a = 1.0;
    match p.run(&mut b, None, s.abort.clone(), &mut Silent) {
        Err(SessionError::Data(e)) => assert!(
            e.to_string()
                .contains("refused before anything is switched on"),
            "{e}"
        ),
        Err(e) => panic!("expected a data error, got {e}"),
        Ok(_) => panic!("expected a refusal"),
    }
    assert!(!common::source_was_ever_on(&b));
    let runs: Vec<_> = std::fs::read_dir(s.reports.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("record.json").exists())
        .collect();
    assert!(runs.is_empty(), "no record for a refused run: {runs:?}");
}

#[test]
fn a_procedure_longer_than_the_station_allows_energised_is_refused_at_the_station_limit() {
    let s = setup(None);
    let mut o = s.options.clone();
    o.station = edited(
        "hw/stations/sim.yaml",
        "max_energised_s: 3600",
        "max_energised_s: 60",
        s.reports.path(),
    );
    let station_text = std::fs::read_to_string(&o.station).unwrap();
    let line = station_text
        .lines()
        .position(|l| l.contains("max_energised_s: 60"))
        .unwrap()
        + 1;
    match Prepared::load(o) {
        Err(SessionError::Data(e)) => {
            let m = e.to_string();
            // At the station's limit, naming the procedure, its total and its longest step.
            assert!(m.contains(&format!("sim.yaml:{line}:20: ")), "{m}");
            assert!(m.contains("en50470-3-class-b.yaml"), "{m}");
            assert!(
                m.contains("more than this station's safety.max_energised_s of 60 s"),
                "{m}"
            );
            assert!(m.contains("the longest step is `"), "{m}");
        }
        Err(e) => panic!("expected a data error, got {e}"),
        Ok(_) => panic!("expected a refusal"),
    }
    // Under the repository's limit the same procedure is planned, and its expected
    // energised time (what `validate` prints) is the sum of its steps' expectations:
    // several minutes, as the pulse counts at Ist and the no-load test imply.
    let p = Prepared::load(s.options.clone()).unwrap();
    let total = p.expected_energised_s();
    assert!(total > 120.0 && total < 3600.0, "{total}");
}

#[test]
fn the_timed_method_measures_the_same_error() {
    let s = setup(Some(("method: gated_reference_count", "method: timed")));
    let (rec, b) = run_sim(&s, &[]);
    assert_eq!(rec.outcome, Outcome::Pass, "{:?}", rec.outcome_reason);
    let world = b.world.as_ref().unwrap().lock().unwrap();
    for step in rec.steps.iter().filter(|s| s.kind == StepKind::Accuracy) {
        for p in &step.ports {
            let Some(PortResult::Accuracy {
                error_percent,
                expanded_u_percent,
                ..
            }) = &p.result
            else {
                panic!()
            };
            let injected = world
                .injected_error_percent(1, &p.port, &step.setpoint)
                .unwrap();
            assert!(
                (error_percent - injected).abs() <= *expanded_u_percent,
                "{} {}: {error_percent} vs {injected} ± {expanded_u_percent}",
                step.name,
                p.port
            );
        }
    }
}

/// A counter that misbehaves after a number of drains.
struct Misbehaving {
    inner: Box<dyn PulseCounter>,
    drains: usize,
    after: usize,
    how: Fault,
}

#[derive(Clone)]
enum Fault {
    LinkLost,
    Panic,
    DropOneEvent,
    OperatorStop(Arc<AtomicBool>),
}

impl PulseCounter for Misbehaving {
    fn identity(&mut self) -> InstrumentResult<InstrumentIdentity> {
        self.inner.identity()
    }
    fn timebase_hz(&self) -> f64 {
        self.inner.timebase_hz()
    }
    fn arm(&mut self, channels: &[ChannelConfig]) -> InstrumentResult<()> {
        self.inner.arm(channels)
    }
    fn disarm(&mut self) -> InstrumentResult<()> {
        self.inner.disarm()
    }
    fn drain(&mut self) -> InstrumentResult<CounterBatch> {
        self.drains += 1;
        let mut batch = self.inner.drain()?;
        if self.drains > self.after {
            match &self.how {
                Fault::LinkLost => {
                    return Err(InstrumentError::Link {
                        instrument: "counter".into(),
                        message: "device disconnected".into(),
                    });
                }
                Fault::Panic => panic!("counter driver bug"),
                Fault::DropOneEvent => {
                    if batch.events.len() >= 2 {
                        batch.events.remove(0);
                        self.after = usize::MAX;
                    }
                }
                Fault::OperatorStop(flag) => flag.store(true, Ordering::SeqCst),
            }
        }
        Ok(batch)
    }
    fn reference_count(&mut self) -> InstrumentResult<meterbench_instruments::ReferenceCount> {
        self.inner.reference_count()
    }
}

/// `after` counts counter drains; the full procedure makes about 60 (a settle drain per
/// step and a few polls per point), so 20..40 is mid-run with several steps done.
fn run_misbehaving(s: &Setup, how: Fault, after: usize) -> (RunRecord, BoundStation) {
    let p = prepare(s, &[], Vec::new());
    let mut b = p.bind().unwrap();
    wrap_counter(&mut b, 0, |inner| {
        Box::new(Misbehaving {
            inner,
            drains: 0,
            after,
            how,
        })
    });
    let rec = run_with(s, &p, &mut b).unwrap();
    (rec, b)
}

#[test]
fn a_lost_counter_link_is_an_error_and_keeps_what_was_measured() {
    let s = setup(None);
    let (rec, b) = run_misbehaving(&s, Fault::LinkLost, 40);
    assert_eq!(rec.outcome, Outcome::Error);
    assert!(
        rec.outcome_reason
            .as_ref()
            .unwrap()
            .contains("device disconnected")
    );
    let done: Vec<&str> = rec
        .steps
        .iter()
        .filter(|s| s.outcome == Outcome::Pass)
        .map(|s| s.name.as_str())
        .collect();
    assert!(done.len() >= 3, "steps before the fault are kept: {done:?}");
    let kept = rec
        .steps
        .iter()
        .filter(|s| s.outcome == Outcome::Pass && s.kind == StepKind::Accuracy);
    assert!(
        kept.clone().count() >= 1
            && kept
                .clone()
                .all(|s| s.ports.iter().all(|p| !p.pulses.is_empty()))
    );
    assert!(source_is_off(&b));
}

#[test]
fn a_panic_in_a_driver_is_an_error_with_the_source_off() {
    let s = setup(None);
    let (rec, b) = run_misbehaving(&s, Fault::Panic, 35);
    assert_eq!(rec.outcome, Outcome::Error);
    assert!(
        rec.outcome_reason.as_ref().unwrap().contains("panic"),
        "{:?}",
        rec.outcome_reason
    );
    assert!(source_is_off(&b));
}

#[test]
fn a_lost_counter_event_invalidates_the_measurement() {
    let s = setup(None);
    let (rec, b) = run_misbehaving(&s, Fault::DropOneEvent, 35);
    assert_eq!(rec.outcome, Outcome::Error);
    assert!(
        rec.outcome_reason.as_ref().unwrap().contains("lost events"),
        "{:?}",
        rec.outcome_reason
    );
    assert!(source_is_off(&b));
}

#[test]
fn an_operator_stop_aborts_with_the_source_off() {
    let s = setup(None);
    let (rec, b) = run_misbehaving(&s, Fault::OperatorStop(s.abort.clone()), 20);
    assert_eq!(rec.outcome, Outcome::Aborted);
    assert!(rec.steps.last().unwrap().outcome == Outcome::Aborted);
    assert!(rec.log.iter().any(|l| l.message == "source output off"));
    assert!(source_is_off(&b));
}

/// Link faults on the wire between the real counter driver and the simulated counter:
/// the run ends as ERROR, the source is off, and steps measured before are kept.
fn link_fault(fault: CounterLinkFault, expect: &str) {
    let s = setup(None);
    let p = prepare(&s, &[], vec![fault]);
    let mut b = p.bind().unwrap();
    let rec = run_with(&s, &p, &mut b).unwrap();
    assert_eq!(
        rec.outcome,
        Outcome::Error,
        "{fault:?}: {:?}",
        rec.outcome_reason
    );
    let reason = rec.outcome_reason.clone().unwrap();
    assert!(reason.contains(expect), "{fault:?}: {reason}");
    assert!(
        rec.steps
            .iter()
            .filter(|s| s.outcome == Outcome::Pass)
            .count()
            >= 3,
        "{fault:?}: steps kept"
    );
    assert!(source_is_off(&b), "{fault:?}: source left on");
}

#[test]
fn counter_unplugged_mid_run() {
    link_fault(CounterLinkFault::Unplug { at_ping: 35 }, "counter");
}

#[test]
fn garbage_on_the_counter_link() {
    link_fault(CounterLinkFault::Garbage { at_ping: 35 }, "corrupted frame");
}

#[test]
fn truncated_counter_frame() {
    link_fault(
        CounterLinkFault::TruncateFrame { at_ping: 35 },
        "corrupted frame",
    );
}

#[test]
fn dropped_counter_frame() {
    link_fault(CounterLinkFault::DropEdge { at_ping: 35 }, "lost events");
}

#[test]
fn reordered_counter_frames() {
    link_fault(
        CounterLinkFault::ReorderEdges { at_ping: 35 },
        "lost events",
    );
}

#[test]
fn counter_reply_later_than_its_timeout() {
    link_fault(
        CounterLinkFault::DelayPong {
            at_ping: 35,
            delay: std::time::Duration::from_secs(3),
        },
        "no answer",
    );
}

#[test]
fn the_record_names_every_instrument_by_its_identity_on_the_wire() {
    let s = setup(None);
    let (rec, _) = run_sim(&s, &[]);
    for i in &rec.instruments {
        let reported = i
            .reported
            .as_ref()
            .unwrap_or_else(|| panic!("{} reported nothing", i.role));
        assert!(
            !reported.model.is_empty() && !reported.serial_number.is_empty(),
            "{reported:?}"
        );
    }
    let source = rec.instruments.iter().find(|i| i.role == "source").unwrap();
    assert!(
        source.reported.as_ref().unwrap().model.contains("6105"),
        "{:?}",
        source.reported
    );
    let counter = rec
        .instruments
        .iter()
        .find(|i| i.role == "counter")
        .unwrap();
    assert_eq!(
        counter.reported.as_ref().unwrap().serial_number,
        counter.declared_serial_number
    );
}

/// An earlier run died with the output on (or someone switched it on by hand): the next
/// run puts the source in a safe state before anything else, says so, and measures.
#[test]
fn a_source_left_energised_is_switched_off_first_and_recorded() {
    let s = setup(None);
    let p = prepare(&s, &[], Vec::new());
    let mut b = p.bind().unwrap();
    {
        let mut w = b.world.as_ref().unwrap().lock().unwrap();
        w.source_apply(meterbench_instruments::SourceSetpoint {
            frequency_hz: 50.0,
            phases: [meterbench_instruments::PhaseSetpoint {
                voltage_v: 230.0,
                current_a: 32.0,
                current_lag_deg: 0.0,
            }; 3],
        });
        w.source_set_output(true);
    }
    let mut events = meterbench_runner::Collect::default();
    let session = p.run(&mut b, None, s.abort.clone(), &mut events).unwrap();
    let rec = &session.runs[0].record;
    assert!(rec.source.found_on);
    assert_eq!(rec.source.off_confirmed, Some(true));
    // Every switching is in the record: off at the safe start, on once for the first
    // setpoint (in that step's record too), off at the end, each confirmed.
    let switches: Vec<(bool, bool, &str)> = rec
        .source
        .switches
        .iter()
        .map(|s| (s.on, s.confirmed, s.why.as_str()))
        .collect();
    assert_eq!(
        switches,
        [
            (false, true, "safe start"),
            (true, true, "energise"),
            (false, true, "end of run")
        ]
    );
    let on = &rec.source.switches[1];
    let step = rec
        .steps
        .iter()
        .find(|st| !st.source_switches.is_empty())
        .unwrap();
    assert_eq!(step.source_switches, std::slice::from_ref(on));
    assert!(on.t_s >= step.started_s && on.t_s <= step.started_s + step.duration_s);
    assert!(rec.source.switches[2].t_s >= on.t_s);
    assert_eq!(
        rec.log[0].message,
        "the source was left energised by an earlier run; switched off"
    );
    assert_eq!(rec.outcome, Outcome::Pass, "{:?}", rec.outcome_reason);
    // Said before the first setpoint.
    let said = events
        .0
        .iter()
        .position(|e| matches!(&e.what, meterbench_runner::EventKind::Log { message, .. } if message.contains("left energised")))
        .unwrap();
    let first_load = events
        .0
        .iter()
        .position(|e| matches!(&e.what, meterbench_runner::EventKind::Load { on: true, .. }))
        .unwrap();
    assert!(said < first_load);
    assert!(source_is_off(&b));
}
