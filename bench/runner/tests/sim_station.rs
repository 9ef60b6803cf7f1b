//! The runner on the simulated station without the command line: timing figures the
//! wire-level station depends on.

use meterbench_procedure::{DutFixture, DutProcedure, Station};
use meterbench_runner::{Bench, Mounted, Outcome, RunRequest, Session, Silent, run};
use meterbench_sim::SimBench;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

fn repo(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

/// The class B procedure (or only `only_steps` of it) on the in-process simulated
/// station, reports into `reports`.
fn run_in_process(reports: &Path, only_steps: Option<Vec<usize>>) -> Session {
    let procedure = DutProcedure::load(&repo("procedures/en50470-3-class-b.yaml")).unwrap();
    let fixture = DutFixture::load(&repo("fixtures/cpim1000.yaml")).unwrap();
    let station = Station::load(&repo("hw/stations/sim-inprocess.yaml")).unwrap();
    let mut b = SimBench::new(&station, fixture.as_meter().unwrap(), false);
    let req = RunRequest {
        procedure: &procedure,
        fixture: &fixture,
        station: &station,
        reports_dir: reports.to_path_buf(),
        abort: Arc::new(AtomicBool::new(false)),
        today: chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(),
        only_steps,
        retest_failed: false,
        startup_notes: Vec::new(),
        order: None,
        signatory: None,
    };
    let mut silent = Silent;
    run(
        &req,
        Bench {
            source: &mut b.source,
            reference: &mut b.reference,
            counters: b.counters.iter_mut().map(|c| c as _).collect(),
            clock: &mut b.clock,
            climate: b.climate.as_mut().map(|c| c as _),
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
    .unwrap()
}

#[test]
fn polls_are_few_and_the_run_stays_on_its_physical_floor() {
    let reports = tempfile::tempdir().unwrap();
    let session = run_in_process(reports.path(), None);
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

/// A record whose process died: the header written at the start and the journal of the
/// steps finished since. Reading it gives every finished step; a line torn by the crash
/// is left out.
#[test]
fn a_record_in_progress_is_read_with_its_journal() {
    use meterbench_runner::record::STEP_JOURNAL;
    let reports = tempfile::tempdir().unwrap();
    let session = run_in_process(reports.path(), Some(vec![0, 1, 2]));
    let done = &session.runs[0];
    assert_eq!(done.record.steps.len(), 3);
    let dir = done.record_path.parent().unwrap();
    assert!(
        !dir.join(STEP_JOURNAL).exists(),
        "a finished record has no journal"
    );

    // As a crash after the third step would leave it.
    let mut header = done.record.clone();
    header.outcome = Outcome::InProgress;
    header.steps.clear();
    header.write_atomically(&done.record_path).unwrap();
    let mut journal = String::new();
    for s in &done.record.steps {
        journal += &serde_json::to_string(s).unwrap();
        journal += "\n";
    }
    journal += "{\"index\":3,\"name\":\"Imin";
    std::fs::write(dir.join(STEP_JOURNAL), journal).unwrap();
    let read = meterbench_runner::RunRecord::read(&done.record_path).unwrap();
    assert_eq!(read.outcome, Outcome::InProgress);
    let names: Vec<&str> = read.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["Scanning heads", "Starting current", "No-load (creep)"]
    );
}
