//! Under a guard-banded decision rule a point within its limits whose U reaches beyond
//! them is a conditional pass: not accepted, but not outside the limits either. The
//! verdict, the step and the certificate's headline say which it was.

use meterbench_metrology::Conformity;
use meterbench_procedure::SimFault;
use meterbench_runner::record::{Outcome, PortResult, RunRecord};

mod common;
use common::{edited, options, run_prepared};

/// The class B procedure under the guard-banded rule, the right meter given `faults`.
fn run(faults: &[&str]) -> (RunRecord, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(
        "procedures/en50470-3-class-b.yaml",
        "fixtures/cpim1000.yaml",
        "hw/stations/sim-inprocess.yaml",
        dir.path(),
    );
    o.procedure = edited(
        "procedures/en50470-3-class-b.yaml",
        "decision_rule: simple_acceptance",
        "decision_rule: guard_banded",
        dir.path(),
    );
    o.serials = vec![(None, "GUARD-0001".into())];
    o.sim_faults = faults.iter().map(|f| SimFault::parse(f).unwrap()).collect();
    let prepared = meterbench_session::Prepared::load(o).unwrap();
    let (session, _) = run_prepared(&prepared).unwrap();
    let r = session.runs.into_iter().next().unwrap().record;
    let html = meterbench_report::render_certificate_html(
        &r,
        &meterbench_report::CertificateContext::new("A. Tester", "meterbench verify ."),
    )
    .unwrap();
    (r, html)
}

/// Iref PF1 on the right meter about 0.995 %: within ±1 %, U ≈ 0.012 % reaching over it.
const NEAR_THE_LIMIT: &str =
    "{error_bump: {port: right, from_a: 4.9, to_a: 5.1, cos_phi: 1, error_percent: 1.07}}";
/// Imax PF1 on the right meter about +1.3 %: outside ±1 %.
const OUTSIDE: &str =
    "{error_bump: {port: right, from_a: 31, to_a: 33, cos_phi: 1, error_percent: 1.25}}";

fn iref_right(r: &RunRecord) -> (f64, f64, Conformity) {
    let s = r.steps.iter().find(|s| s.name == "Iref PF1").unwrap();
    let Some(PortResult::Accuracy {
        error_percent,
        expanded_u_percent,
        decision,
        ..
    }) = &s.ports[1].result
    else {
        panic!()
    };
    (*error_percent, *expanded_u_percent, decision.conformity)
}

#[test]
fn a_conditional_pass_is_not_headlined_outside_the_limits() {
    let (r, html) = run(&[NEAR_THE_LIMIT]);
    let (e, u, conformity) = iref_right(&r);
    assert!(e < 1.0 && e + u > 1.0, "e {e}, U {u}");
    assert_eq!(conformity, Conformity::ConditionalPass);
    assert_eq!(
        r.outcome,
        Outcome::Fail,
        "not accepted under the guard band"
    );
    assert_eq!(
        r.outcome_reason.as_deref(),
        Some(
            "within limits but not accepted under the guard-banded rule (conditional pass): Iref PF1"
        )
    );
    let step = r.steps.iter().find(|s| s.name == "Iref PF1").unwrap();
    assert!(
        step.message
            .as_deref()
            .unwrap()
            .starts_with("port right within limits, but U reaches beyond them (conditional pass)"),
        "{:?}",
        step.message
    );
    assert!(
        html.contains("measured <strong>within its limits</strong>, but at 1 of 22 points"),
        "{}",
        html.lines()
            .find(|l| l.contains("within its limits") || l.contains("outside its limits"))
            .unwrap_or("")
    );
    assert!(!html.contains("outside its limits"));
}

#[test]
fn a_point_outside_beside_a_conditional_pass_is_headlined_outside() {
    let (r, html) = run(&[NEAR_THE_LIMIT, OUTSIDE]);
    assert_eq!(iref_right(&r).2, Conformity::ConditionalPass);
    assert_eq!(r.outcome, Outcome::Fail);
    assert_eq!(
        r.outcome_reason.as_deref(),
        Some(
            "out of limits: Imax PF1; within limits but not accepted under the guard-banded rule (conditional pass): Iref PF1"
        )
    );
    assert!(html.contains("is <strong>outside its limits</strong>"));
}
