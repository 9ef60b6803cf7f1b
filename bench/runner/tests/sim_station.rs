//! The runner on the simulated station without the command line: timing figures the
//! wire-level station depends on.

use meterbench_procedure::{DutFixture, DutProcedure, Station};
use meterbench_runner::{Bench, Mounted, Outcome, RunRequest, Silent, run};
use meterbench_sim::SimBench;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

fn repo(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

#[test]
fn polls_are_few_and_the_run_stays_on_its_physical_floor() {
    let procedure = DutProcedure::load(&repo("procedures/en50470-3-class-b.yaml")).unwrap();
    let fixture = DutFixture::load(&repo("fixtures/cpim1000.yaml")).unwrap();
    let station = Station::load(&repo("hw/stations/sim-inprocess.yaml")).unwrap();
    let mut b = SimBench::new(&station, fixture.as_meter().unwrap(), false);
    let reports = tempfile::tempdir().unwrap();
    let req = RunRequest {
        procedure: &procedure,
        fixture: &fixture,
        station: &station,
        reports_dir: reports.path().to_path_buf(),
        abort: Arc::new(AtomicBool::new(false)),
        today: chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(),
        only_steps: None,
        retest_failed: false,
    };
    let mut silent = Silent;
    let session = run(
        &req,
        Bench {
            source: &mut b.source,
            reference: &mut b.reference,
            counters: b.counters.iter_mut().map(|c| c as _).collect(),
            clock: &mut b.clock,
            operator: None,
        },
        vec![Mounted {
            position: 1,
            serial: "T".into(),
            software: None,
            sensor: None,
            prior: None,
        }],
        &mut silent,
    )
    .unwrap();
    let f = &session.runs[0];
    let t = &f.record.timing;
    assert_eq!(f.record.outcome, Outcome::Pass);
    // Every poll is a counter round trip on a real or wire-level bench: long sleeps while
    // the end of a point is far, fine polls near it.
    assert!(
        t.counter_polls < 2 * (t.bench_duration_s as u64) + 40 * f.record.steps.len() as u64,
        "{} polls",
        t.counter_polls
    );
    assert!(
        (t.bench_duration_s / t.physical_floor_s - 1.0).abs() < 0.10,
        "{t:?}"
    );
    eprintln!(
        "{} polls for {:.1} s of bench time",
        t.counter_polls, t.bench_duration_s
    );
}
