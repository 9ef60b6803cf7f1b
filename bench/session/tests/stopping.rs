//! Accuracy points that end when their answer is known: the class B procedure with a
//! stopping rule against the same procedure with its fixed repeats, on a good meter, a
//! meter near its limits and a noisy one. Prints the sequence times it measured.

use meterbench_procedure::SimFault;
use meterbench_runner::record::{PortResult, RunRecord, StepKind, StopReason};

mod common;
use common::{edited, options, run_prepared};

/// The stopping rule, inserted after the decision rule: U ≤ `target` % of the MPE or a
/// certain decision, from `min` repeats on.
fn rule(target: f64, min: u32) -> String {
    format!(
        "decision_rule: simple_acceptance
stopping:
  target_u_percent_of_mpe: {target}
  min_repeats: {min}
  max_s: 120
  source: \"test: U ≤ {target} % of the MPE or a certain decision\"
"
    )
}

/// One run of the class B procedure, with the stopping rule or not, on a meter with
/// `faults` and accumulation noise `noise_percent`.
fn run(until_known: Option<(f64, u32)>, faults: &[&str], noise_percent: f64) -> RunRecord {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(
        "procedures/en50470-3-class-b.yaml",
        "fixtures/cpim1000.yaml",
        "hw/stations/sim-inprocess.yaml",
        dir.path(),
    );
    if let Some((target, min)) = until_known {
        o.procedure = edited(
            "procedures/en50470-3-class-b.yaml",
            "decision_rule: simple_acceptance\n",
            &rule(target, min),
            dir.path(),
        );
    }
    o.serials = vec![(None, "STOP-0001".into())];
    o.sim_faults = faults.iter().map(|f| SimFault::parse(f).unwrap()).collect();
    let mut prepared = meterbench_session::Prepared::load(o).unwrap();
    for m in &mut prepared.station.simulation.as_mut().unwrap().positions[0]
        .cpim1000
        .as_mut()
        .unwrap()
        .meters
    {
        m.noise_percent = noise_percent;
    }
    let (session, _) = run_prepared(&prepared).unwrap();
    session.runs.into_iter().next().unwrap().record
}

/// Seconds the accuracy points took (settling included), and each point's verdict and
/// why it ended.
fn accuracy(r: &RunRecord) -> (f64, Vec<(String, bool, StopReason, u32)>) {
    let mut seconds = 0.0;
    let mut points = Vec::new();
    for s in r.steps.iter().filter(|s| s.kind == StepKind::Accuracy) {
        seconds += s.duration_s;
        for p in &s.ports {
            let Some(PortResult::Accuracy {
                decision, stopping, ..
            }) = &p.result
            else {
                panic!("{} {} has no result", s.name, p.port);
            };
            let stop = stopping.expect("every point says why it ended");
            points.push((
                format!("{} {}", s.name, p.port),
                decision.accepted,
                stop.reason,
                stop.repeats,
            ));
        }
    }
    (seconds, points)
}

#[test]
fn points_end_when_their_answer_is_known() {
    let near = [
        "{error_bump: {port: left, from_a: 0.1, to_a: 40, cos_phi: 1, error_percent: 0.88}}",
        "{error_bump: {port: right, from_a: 0.1, to_a: 40, cos_phi: 1, error_percent: -0.9}}",
    ];
    for (dut, faults, noise) in [
        ("good meter", &[][..], 0.01),
        ("meter near its limits", &near[..], 0.01),
        ("noisy meter (3 %)", &[][..], 3.0),
    ] {
        let (fixed_s, fixed) = accuracy(&run(None, faults, noise));
        for (target, min) in [(10.0, 2), (2.0, 1)] {
            let (known_s, known) = accuracy(&run(Some((target, min)), faults, noise));
            let reasons = |v: &[(String, bool, StopReason, u32)], r: StopReason| {
                v.iter().filter(|p| p.2 == r).count()
            };
            eprintln!(
                "{dut}: accuracy points {fixed_s:.1} s with fixed repeats, {known_s:.1} s until \
             U ≤ {target} % of the MPE or decided, from {min} repeats ({:.0} %); ended: {} U \
             reached, {} decided, {} all repeats, {} time limit",
                100.0 * known_s / fixed_s,
                reasons(&known, StopReason::UncertaintyReached),
                reasons(&known, StopReason::Decided),
                reasons(&known, StopReason::MaxRepeats),
                reasons(&known, StopReason::MaxTime),
            );
            assert_eq!(fixed.len(), 22);
            assert!(fixed.iter().all(|p| p.2 == StopReason::Fixed));
            assert_eq!(known.len(), 22);
            for (f, k) in fixed.iter().zip(&known) {
                assert_eq!(f.0, k.0);
                assert_ne!(k.2, StopReason::Fixed);
                // Never fewer than the rule's minimum, never more than the step's repeats.
                assert!(k.3 >= min && k.3 <= f.3, "{}: {} repeats", k.0, k.3);
                // A point whose decision was certain keeps the fixed run's verdict.
                if k.2 == StopReason::Decided {
                    assert_eq!(f.1, k.1, "{}", k.0);
                }
            }
            assert!(known_s <= fixed_s, "{dut}: {known_s} s > {fixed_s} s");
        }
    }
}

/// The Eichrecht procedure follows vendor practice (≥ 25 pulses and ≥ 30 s per point):
/// the plan raises each accuracy point's pulses per repeat to it, never below the
/// fixture's minimum; the class B procedure keeps its minimum pulses.
#[test]
fn the_point_length_a_procedure_follows_is_planned() {
    let dir = tempfile::tempdir().unwrap();
    for (procedure, vendor) in [
        ("procedures/cpim1000-eichrecht.yaml", true),
        ("procedures/en50470-3-class-b.yaml", false),
    ] {
        let o = options(
            procedure,
            "fixtures/cpim1000.yaml",
            "hw/stations/sim-inprocess.yaml",
            dir.path(),
        );
        let p = meterbench_session::Prepared::load(o).unwrap();
        let meterbench_procedure::DutProcedure::Meter(declared) = &p.procedure else {
            unreachable!()
        };
        let planned = meterbench_runner::plan(&p.procedure, &p.fixture, &p.station).unwrap();
        let (mut raised, mut short) = (0, 0);
        for ps in &planned {
            let meterbench_runner::Action::Accuracy(a) = &ps.action else {
                continue;
            };
            let written = declared
                .steps
                .iter()
                .find_map(|s| match &s.kind {
                    meterbench_procedure::StepKind::Accuracy(w) if s.name == ps.name => Some(w),
                    _ => None,
                })
                .unwrap();
            assert!(a.pulses >= written.pulses, "{}", ps.name);
            let total = a.pulses * u64::from(a.repeats);
            if vendor {
                assert!(total >= 25, "{}: {total} pulses", ps.name);
                assert!(
                    total as f64 * ps.nominal_period_s >= 30.0,
                    "{}: {:.1} s",
                    ps.name,
                    total as f64 * ps.nominal_period_s
                );
                raised += usize::from(a.pulses > written.pulses);
                let as_written = written.pulses * u64::from(written.repeats);
                short += usize::from(
                    as_written < 25 || (as_written as f64) * ps.nominal_period_s < 30.0,
                );
            } else {
                assert_eq!(a.pulses, written.pulses, "{}", ps.name);
            }
        }
        if vendor {
            // Exactly the points that were short as written were lengthened: 6 of 11
            // (the single-phase points, and PF 0.5 at Itr and Iref, already take ≥ 30 s).
            assert_eq!((raised, short), (6, 6));
        }
    }
}
