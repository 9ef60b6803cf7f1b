//! The software identity step of the CPIM1000 Eichrecht procedure on the simulated
//! station: the real CAN stack (SLCAN on a pseudo-terminal, ISO-TP, UDS) against the
//! simulated meter's CAN node.

use meterbench::bind::{BoundStation, SimOptions, bind};
use meterbench_procedure::{Fixture, LoadedFile, Procedure, Station};
use meterbench_runner::record::{PortResult, RunRecord};
use meterbench_runner::{Instruments, Outcome, RunRequest, Silent, run};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

mod common;
use common::repo;

/// Run the Eichrecht procedure on the sim station with `edit` applied to the station
/// file's text; the record, and whether the source was ever switched on.
fn run_with_station_edit(from: &str, to: &str) -> (RunRecord, BoundStation) {
    let path = repo().join("hw/stations/sim.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from}");
    let station =
        Station::from_file(LoadedFile::from_text(&path, text.replacen(from, to, 1))).unwrap();
    let procedure = Procedure::load(&repo().join("procedures/cpim1000-eichrecht.yaml")).unwrap();
    let fixture = Fixture::load(&repo().join("fixtures/cpim1000.yaml")).unwrap();
    let reports = tempfile::tempdir().unwrap();
    let mut b = bind(&station, &fixture, &SimOptions::default()).unwrap();
    let req = RunRequest {
        procedure: &procedure,
        fixture: &fixture,
        station: &station,
        dut_serial: "TEST-ID-1".into(),
        reports_dir: reports.path().to_path_buf(),
        abort: Arc::new(AtomicBool::new(false)),
        today: chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(),
    };
    let finished = run(
        &req,
        Instruments {
            source: b.source.as_mut(),
            reference: b.reference.as_mut(),
            counter: b.counter.as_mut(),
            clock: b.clock.as_mut(),
            dut_software: b.dut_software.as_deref_mut().map(|d| d as _),
            operator: None,
        },
        &mut Silent,
    )
    .unwrap();
    (finished.record, b)
}

fn source_is_off(b: &BoundStation) -> bool {
    !b.world
        .as_ref()
        .unwrap()
        .lock()
        .unwrap()
        .source_output_is_on()
}

/// The largest current the source was asked for in any step that ran.
fn max_current_a(rec: &RunRecord) -> f64 {
    rec.steps
        .iter()
        .flat_map(|s| s.setpoint.phases.iter().map(|p| p.current_a))
        .fold(0.0, f64::max)
}

#[test]
fn a_certified_identity_passes_and_is_on_the_record() {
    let (rec, b) = run_with_station_edit("faults: []", "faults: []");
    assert_eq!(rec.outcome, Outcome::Pass, "{:?}", rec.outcome_reason);
    let id = &rec.steps[0];
    assert_eq!((id.kind.as_str(), id.outcome), ("identity", Outcome::Pass));
    for p in &id.ports {
        match &p.result {
            Some(PortResult::Identity {
                software_version,
                lrs_hash,
                passed,
                read_from,
                ..
            }) => {
                assert_eq!(
                    (software_version.as_str(), lrs_hash.as_str(), *passed),
                    ("1.8.4", "A3F09C4E", true)
                );
                assert_eq!(read_from, "can");
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(source_is_off(&b));
}

#[test]
fn a_wrong_lrs_hash_on_one_port_fails_before_any_energy_test() {
    let (rec, b) = run_with_station_edit(
        "lrs_hash: { left: \"A3F09C4E\", right: \"A3F09C4E\" }",
        "lrs_hash: { left: \"A3F09C4E\", right: \"A3F09C4F\" }",
    );
    assert_eq!(rec.outcome, Outcome::Fail);
    let reason = rec.outcome_reason.clone().unwrap();
    assert!(
        reason.contains("LRS hash of port right is A3F09C4F, the certified one is A3F09C4E"),
        "{reason}"
    );
    assert!(reason.contains("no energy test was run"), "{reason}");
    assert_eq!(rec.steps.len(), 1, "only the identity step ran");
    let ports: Vec<(&str, bool)> = rec.steps[0]
        .ports
        .iter()
        .map(|p| (p.port.as_str(), p.result.as_ref().unwrap().passed()))
        .collect();
    assert_eq!(ports, [("left", true), ("right", false)]);
    assert_eq!(max_current_a(&rec), 0.0, "no current was ever applied");
    assert!(source_is_off(&b));
}

#[test]
fn a_silent_meter_is_an_error_naming_the_ids_it_was_asked_on() {
    let (rec, b) = run_with_station_edit(
        "lrs_hash: { left: \"A3F09C4E\", right: \"A3F09C4E\" }",
        "lrs_hash: { left: \"A3F09C4E\", right: \"A3F09C4E\" }\n      can_silent: true",
    );
    assert_eq!(rec.outcome, Outcome::Error);
    let reason = rec.outcome_reason.clone().unwrap();
    assert!(reason.contains("no answer on CAN id 0x7E8"), "{reason}");
    assert!(reason.contains("sent on 0x7E0"), "{reason}");
    assert_eq!(rec.steps.len(), 1);
    assert!(source_is_off(&b));
}

/// The end-of-line procedure as a production line runs it: unattended, the LCD's
/// identity from the station's answers file.
#[test]
fn the_eol_procedure_runs_unattended_from_an_answers_file() {
    let reports = tempfile::tempdir().unwrap();
    let key = reports.path().join("key.pem");
    let run = |answers: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_meterbench"))
            .args([
                "run",
                "--quiet",
                "--procedure",
                "procedures/cpim1000-eol.yaml",
                "--answers",
                answers,
                "--reports",
                reports.path().to_str().unwrap(),
            ])
            .env("METERBENCH_SIGNING_KEY", &key)
            .current_dir(repo())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let out = run("hw/answers/sim-cpim1000.yaml");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("VERDICT: PASS"), "{stdout}");
    assert!(
        stdout.contains("v1.8.4 LRS A3F09C4E  certified"),
        "{stdout}"
    );

    // A mistyped hash in the file: an ERROR naming the file, line and key; nothing measured.
    let text = std::fs::read_to_string(repo().join("hw/answers/sim-cpim1000.yaml")).unwrap();
    let bad = reports.path().join("bad-answers.yaml");
    std::fs::write(&bad, text.replace("\"A3F09C4E\"", "\"A3F09C4\"")).unwrap();
    let out = run(bad.to_str().unwrap());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("bad-answers.yaml:"), "{stdout}");
    assert!(
        stdout.contains("lcd.lrs_hash") && stdout.contains("7 characters"),
        "{stdout}"
    );

    // A typed LRS hash that differs from the certified one: FAIL, naming both.
    let other = reports.path().join("other-lrs.yaml");
    std::fs::write(&other, text.replace("\"A3F09C4E\"", "\"A3F09C4F\"")).unwrap();
    let out = run(other.to_str().unwrap());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("LRS hash of port left is A3F09C4F, the certified one is A3F09C4E"),
        "{stdout}"
    );

    // The boot-loader fault on the LCD: an ERROR with the guide's instruction.
    let fault = reports.path().join("fault-answers.yaml");
    std::fs::write(
        &fault,
        text.replace("lcd.startup_fault: \"no\"", "lcd.startup_fault: \"yes\""),
    )
    .unwrap();
    let out = run(fault.to_str().unwrap());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("-CHARGEPOIN+") && stdout.contains("must be replaced"),
        "{stdout}"
    );
}

/// Ctrl-C while the bench waits at an LCD prompt (the meter powered): the question is
/// abandoned, the source switched off, the run ends ABORTED.
#[test]
fn a_stop_at_an_unanswered_prompt_aborts_with_the_source_off() {
    use std::process::{Command, Stdio};
    let reports = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args([
            "run",
            "--quiet",
            "--procedure",
            "procedures/cpim1000-eol.yaml",
            "--reports",
        ])
        .arg(reports.path())
        .env("METERBENCH_SIGNING_KEY", reports.path().join("key.pem"))
        .current_dir(repo())
        .stdin(Stdio::piped()) // kept open, never written: nobody answers
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    // The identity step settles 2 s of simulated time (instant), then asks.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("VERDICT: ABORTED"), "{stdout}");
    let run = std::fs::read_dir(reports.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("record.json").is_file())
        .unwrap();
    let rec: RunRecord =
        serde_json::from_str(&std::fs::read_to_string(run.join("record.json")).unwrap()).unwrap();
    assert_eq!(rec.outcome, Outcome::Aborted);
    assert!(rec.log.iter().any(|l| l.message == "source output off"));
}
