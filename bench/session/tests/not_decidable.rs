//! A point whose U is larger than its limit divided by the procedure's test uncertainty
//! ratio gets no statement of conformity: "not decidable at this uncertainty", never
//! "pass". The run says so instead of PASS (exit code 3), and so do the certificate, the
//! DCC (no conformity element for such a point) and JUnit; a point beyond its limit by
//! more than U still fails.

use meterbench_metrology::Conformity;
use meterbench_procedure::SimFault;
use meterbench_runner::record::{Outcome, PortResult, RunRecord};

mod common;
use common::{edited, options, run_prepared, source_is_off};

/// The class B procedure at a station whose reference standard's certificate gives its
/// unity-PF error with U = 0.5 %: at PF 1, U of a point is about 0.5 % against limits
/// of ±1 % (ratio 2) or ±1.5 % (ratio 3); at reduced PF it stays small.
fn run(faults: &[&str]) -> RunRecord {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(
        "procedures/en50470-3-class-b.yaml",
        "fixtures/cpim1000.yaml",
        "hw/stations/sim-inprocess.yaml",
        dir.path(),
    );
    o.station = edited(
        "hw/stations/sim-inprocess.yaml",
        "unity_pf: { error_percent: 0.003, u_k2_percent: 0.002 }",
        "unity_pf: { error_percent: 0.003, u_k2_percent: 0.5 }",
        dir.path(),
    );
    o.serials = vec![(None, "TUR-0001".into())];
    o.sim_faults = faults.iter().map(|f| SimFault::parse(f).unwrap()).collect();
    let prepared = meterbench_session::Prepared::load(o).unwrap();
    let (session, bound) = run_prepared(&prepared).unwrap();
    assert!(source_is_off(&bound));
    session.runs.into_iter().next().unwrap().record
}

/// (step, port, U, MPE, conformity) of every accuracy point.
fn points(r: &RunRecord) -> Vec<(String, String, f64, f64, Conformity)> {
    let mut v = Vec::new();
    for s in &r.steps {
        for p in &s.ports {
            if let Some(PortResult::Accuracy {
                expanded_u_percent,
                limit,
                decision,
                ..
            }) = &p.result
            {
                v.push((
                    s.name.clone(),
                    p.port.clone(),
                    *expanded_u_percent,
                    limit.mpe_percent,
                    decision.conformity,
                ));
            }
        }
    }
    v
}

#[test]
fn points_whose_u_is_too_large_get_no_statement_and_the_run_says_so() {
    let r = run(&[]);
    let pts = points(&r);
    let (mut undecided, mut decided) = (0, 0);
    for (step, port, u, mpe, c) in &pts {
        if u * 3.0 > *mpe {
            assert_eq!(
                *c,
                Conformity::NoStatement,
                "{step} [{port}] U {u} MPE {mpe}"
            );
            undecided += 1;
        } else {
            assert_eq!(*c, Conformity::Pass, "{step} [{port}] U {u} MPE {mpe}");
            decided += 1;
        }
    }
    assert!(undecided >= 4 && decided >= 4, "{pts:?}");
    assert_eq!(r.outcome, Outcome::NotDecidable, "{:?}", r.outcome_reason);
    assert_eq!(r.outcome.exit_code(), 3);
    let reason = r.outcome_reason.as_deref().unwrap();
    assert!(reason.contains("no statement of conformity"), "{reason}");
    assert!(reason.contains("Iref PF1"), "{reason}");
    let ratio = r.procedure.test_uncertainty_ratio.as_ref().unwrap();
    assert_eq!(ratio.min, 3.0);
    assert!(ratio.source.contains("ILAC-G8"), "{}", ratio.source);

    // The certificate, the DCC and JUnit say the same.
    let cert = meterbench_report::CertificateContext::new("A. Tester", "meterbench verify .");
    let html = meterbench_report::render_certificate_html(&r, &cert).unwrap();
    assert!(html.contains("NOT DECIDABLE"), "verdict");
    assert!(
        html.contains("not decidable at this uncertainty"),
        "the rule"
    );
    assert!(
        html.contains(
            "was found outside its limits, but <strong>no statement of conformity</strong>"
        ),
        "the headline"
    );
    assert!(
        !html.contains("outside its limits</strong>"),
        "no FAIL headline"
    );
    let dcc = meterbench_report::render_dcc_xml(
        &r,
        &meterbench_report::DccContext::new("A. Tester", "DE"),
    )
    .unwrap();
    assert!(!dcc.contains("noStatement"), "not a DCC conformity value");
    let not_decidable = dcc.matches("Not decidable at this uncertainty").count();
    assert_eq!(
        not_decidable, undecided,
        "one statement per undecided point"
    );
    let passes = dcc.matches("<dcc:conformity>pass</dcc:conformity>").count();
    assert!(passes >= decided, "{passes} < {decided}");
    let junit = meterbench_session::bundle::junit(&r).unwrap();
    assert!(junit.contains("not decidable"), "{junit}");
}

#[test]
fn a_point_beyond_its_limit_by_more_than_u_still_fails() {
    // Iref PF1 on the right meter about +3 %: beyond ±1 % by more than U ≈ 0.5 %.
    let r =
        run(&["{error_bump: {port: right, from_a: 4.9, to_a: 5.1, cos_phi: 1, error_percent: 3}}"]);
    let iref_right = points(&r)
        .into_iter()
        .find(|(s, p, ..)| s == "Iref PF1" && p == "right")
        .unwrap();
    assert_eq!(iref_right.4, Conformity::Fail, "{iref_right:?}");
    assert_eq!(r.outcome, Outcome::Fail);
}
