//! The single-phase load check of a polyphase meter on the simulated bench: each port's
//! single-phase points against its balanced point, after the source is off, on a meter
//! whose elements agree and on one whose L2 element reads 1.9 % high (inside the ±2 %
//! single-phase limit, outside the ±1.5 % difference).

use meterbench_metrology::{Conformity, LoadKind};
use meterbench_runner::record::{Outcome, PortResult, RunRecord, StepKind};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

mod common;
use common::{options, run_prepared, source_is_off};

const CHECK: &str = "Single-phase vs balanced (Iref PF1)";

/// The class B procedure on the in-process simulated bench, the left meter's elements
/// off by `left_offsets` (%), in `reports`.
fn run(left_offsets: [f64; 3], reports: &std::path::Path) -> RunRecord {
    let mut o = options(
        "procedures/en50470-3-class-b.yaml",
        "fixtures/cpim1000.yaml",
        "hw/stations/sim-inprocess.yaml",
        reports,
    );
    o.serials = vec![(None, "LOAD-0001".into())];
    let mut prepared = meterbench_session::Prepared::load(o).unwrap();
    let meters = &mut prepared.station.simulation.as_mut().unwrap().positions[0]
        .cpim1000
        .as_mut()
        .unwrap()
        .meters;
    meters
        .iter_mut()
        .find(|m| m.port == "left")
        .unwrap()
        .phase_offsets_percent = left_offsets;
    let (session, bound) = run_prepared(&prepared).unwrap();
    assert!(source_is_off(&bound));
    session.runs.into_iter().next().unwrap().record
}

/// A port's error and combined standard uncertainty at a point, from the record.
fn point(r: &RunRecord, step: &str, port: &str) -> (f64, f64, Option<f64>, bool) {
    let s = r.steps.iter().rev().find(|s| s.name == step).unwrap();
    let p = s.ports.iter().find(|p| p.port == port).unwrap();
    let Some(PortResult::Accuracy {
        error_percent,
        budget,
        decision,
        limit,
        ..
    }) = &p.result
    else {
        panic!("{step} {port}: no accuracy result")
    };
    assert_eq!(
        limit.load,
        if step == "Iref PF1" {
            LoadKind::Balanced
        } else {
            LoadKind::SinglePhase
        }
    );
    (
        *error_percent,
        budget.combined_u_percent,
        budget.effective_dof,
        decision.accepted,
    )
}

/// The check's comparisons for a port: (step, difference, U, accepted, conformity).
fn differences(r: &RunRecord, port: &str) -> Vec<(String, f64, f64, bool, Conformity)> {
    let s = r.steps.iter().rev().find(|s| s.name == CHECK).unwrap();
    assert_eq!(s.kind, StepKind::LoadDifference);
    let p = s.ports.iter().find(|p| p.port == port).unwrap();
    let Some(PortResult::LoadDifference {
        balanced_step,
        comparisons,
        limit_percent,
        limit_source,
        ..
    }) = &p.result
    else {
        panic!("{port}: no load difference result")
    };
    assert_eq!(balanced_step, "Iref PF1");
    assert_eq!(*limit_percent, 1.5);
    assert!(limit_source.contains("IEC 62053-21"), "{limit_source}");
    comparisons
        .iter()
        .map(|c| {
            (
                c.step.clone(),
                c.difference.difference_percent,
                c.difference.expanded_u_percent,
                c.difference.decision.accepted,
                c.difference.decision.conformity,
            )
        })
        .collect()
}

#[test]
fn agreeing_elements_pass_the_check_computed_from_the_points_with_the_source_off() {
    let reports = tempfile::tempdir().unwrap();
    let r = run([0.02, -0.03, 0.04], reports.path());
    assert_eq!(r.outcome, Outcome::Pass, "{:?}", r.outcome_reason);

    let check = r.steps.iter().find(|s| s.name == CHECK).unwrap();
    assert_eq!(check.outcome, Outcome::Pass);
    // Judged after the source was switched off: it applies no load and switches nothing.
    assert!(check.source_switches.is_empty());
    assert!(check.setpoint.phases.iter().all(|p| p.current_a == 0.0));
    assert!(check.ports.iter().all(|p| p.pulses.is_empty()));
    let off = r.source.switches.iter().rposition(|s| !s.on).unwrap();
    assert!(check.started_s >= r.source.switches[off].t_s);

    for port in ["left", "right"] {
        let (eb, ub, nb, _) = point(&r, "Iref PF1", port);
        let d = differences(&r, port);
        assert_eq!(
            d.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
            ["Iref PF1 L1", "Iref PF1 L2", "Iref PF1 L3"]
        );
        for (step, diff, u, accepted, conformity) in d {
            let (es, us, ns, _) = point(&r, &step, port);
            // Recomputed from the two points as the record holds them.
            assert!((diff - (es - eb)).abs() < 1e-12, "{port} {step}");
            let uc = (ub * ub + us * us).sqrt();
            let k = meterbench_metrology::coverage_factor(
                meterbench_metrology::welch_satterthwaite(&[(ub, nb), (us, ns)]),
            );
            assert!(
                (u - k * uc).abs() < 1e-12,
                "{port} {step}: {u} vs {}",
                k * uc
            );
            assert!(accepted && conformity == Conformity::Pass, "{port} {step}");
            // Elements within 0.07 % of each other: the differences are that small.
            assert!(diff.abs() < 0.1, "{port} {step}: {diff}");
        }
    }
}

#[test]
fn an_element_that_reads_high_fails_the_check_while_its_point_passes_its_own_limit() {
    let reports = tempfile::tempdir().unwrap();
    // Balanced load weighs the elements equally: the balanced error moves by the mean
    // offset, 0.0333 %, and L2's single-phase error by 1.9 %.
    let offsets = [-1.2, 1.9, -0.6];
    let r = run(offsets, reports.path());
    assert_eq!(r.outcome, Outcome::Fail);
    let reason = r.outcome_reason.clone().unwrap();
    assert!(
        reason.contains(CHECK) && !reason.contains("Iref PF1 L2,"),
        "{reason}"
    );

    // Every single-phase point passes its own ±2 % limit, the balanced one its ±1 %.
    for step in ["Iref PF1", "Iref PF1 L1", "Iref PF1 L2", "Iref PF1 L3"] {
        assert!(point(&r, step, "left").3, "{step}");
    }
    let check = r.steps.iter().find(|s| s.name == CHECK).unwrap();
    assert_eq!(check.outcome, Outcome::Fail);
    assert!(check.message.as_deref().unwrap().contains("left"));

    // Against the injected truth: e_Lk − e_balanced = offset_k − mean(offsets) (the
    // error curve is the same for every element at one current).
    let mean = offsets.iter().sum::<f64>() / 3.0;
    for ((step, diff, u, accepted, conformity), offset) in
        differences(&r, "left").into_iter().zip(offsets)
    {
        let truth = offset - mean;
        assert!(
            (diff - truth).abs() <= u,
            "{step}: measured {diff:+.4} %, injected {truth:+.4} %, U {u:.4} %"
        );
        let expected_pass = truth.abs() < 1.5;
        assert_eq!(accepted, expected_pass, "{step}: {diff}");
        assert_eq!(
            conformity,
            if expected_pass {
                Conformity::Pass
            } else {
                Conformity::Fail
            }
        );
    }
    // The right meter is untouched.
    assert!(differences(&r, "right").iter().all(|d| d.3));

    // The certificate shows the check, the failing phase and the limit's source.
    let html = meterbench_report::render_certificate_html(
        &r,
        &meterbench_report::CertificateContext::new("A. Tester", "meterbench verify ."),
    )
    .unwrap();
    assert!(html.contains("Single-phase against balanced load"));
    assert!(html.contains("IEC 62053-21"));
    let l2_row = html
        .lines()
        .find(|l| l.contains("<td>left</td><td class=\"nowrap\">Iref PF1 L2"))
        .expect("the L2 row of the left port");
    assert!(
        l2_row.contains("class=\"fail\"") && l2_row.contains("FAIL"),
        "{l2_row}"
    );
    let dcc = meterbench_report::render_dcc_xml(
        &r,
        &meterbench_report::DccContext::new("A. Tester", "DE"),
    )
    .unwrap();
    assert!(
        dcc.contains("load-difference-") && dcc.contains("<dcc:conformity>fail</dcc:conformity>")
    );
}

#[test]
fn a_retest_of_a_single_phase_point_in_a_later_session_takes_the_difference_again() {
    let reports = tempfile::tempdir().unwrap();
    let first = run([-1.2, 1.9, -0.6], reports.path());
    assert_eq!(first.outcome, Outcome::Fail);

    // Re-seated: the elements agree now. Only L2 is measured again; the check follows.
    let (record, _) = meterbench_session::stored_record(reports.path(), &first.run_id).unwrap();
    let mut o = options(
        "procedures/en50470-3-class-b.yaml",
        "fixtures/cpim1000.yaml",
        "hw/stations/sim-inprocess.yaml",
        reports.path(),
    );
    o.serials = vec![(None, "LOAD-0001".into())];
    let retest = meterbench_session::Retest::plan(record, "Iref PF1 L2", o).unwrap();
    let mut bound = retest.prepared.bind().unwrap();
    let session = retest
        .run(
            &mut bound,
            None,
            Arc::new(AtomicBool::new(false)),
            &mut meterbench_runner::Silent,
        )
        .unwrap();
    let r = &session.runs[0].record;
    let again: Vec<(&str, u32)> = r.steps[first.steps.len()..]
        .iter()
        .map(|s| (s.name.as_str(), s.attempt))
        .collect();
    assert_eq!(again, [("Iref PF1 L2", 2), (CHECK, 2)]);
    // The point passed its own limit: the deviation says which check sent it back.
    let why = r.deviations.last().unwrap().describe();
    assert!(
        why.contains("ended PASS")
            && why.contains(&format!("the check `{CHECK}` that compares it failed")),
        "{why}"
    );
    // The new check compares L2's second attempt (the meter as re-seated, back to the
    // station's offsets) with the first session's balanced point.
    let (eb, _, _, _) = point(r, "Iref PF1", "left");
    let (es, _, _, _) = point(r, "Iref PF1 L2", "left");
    let l2 = differences(r, "left")
        .into_iter()
        .find(|d| d.0 == "Iref PF1 L2")
        .unwrap();
    assert!((l2.1 - (es - eb)).abs() < 1e-12);
    assert!(l2.3, "{:?}", l2);
}
