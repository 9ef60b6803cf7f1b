//! The CPIM1000 Eichrecht procedure on the simulated station: the inspection (serial
//! scan, seals, labels), the software identity over the real CAN stack (SLCAN on a
//! pseudo-terminal, ISO-TP, UDS) against the simulated meter's CAN node, and the
//! register (meter constant) test read from the simulated LCD by the simulated
//! technician.

use meterbench::bind::{BoundStation, SimOptions, bind};
use meterbench::sim_technician::SimulatedTechnician;
use meterbench_procedure::{Fixture, LoadedFile, Procedure, RegisterFault, SimFault, Station};
use meterbench_runner::record::{PortResult, RunRecord};
use meterbench_runner::{Instruments, Outcome, RunRequest, Silent, run};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

mod common;
use common::repo;

/// Run the Eichrecht procedure on the sim station with `edit` applied to the station
/// file's text; the record, and whether the source was ever switched on.
fn run_with_station_edit(from: &str, to: &str) -> (RunRecord, BoundStation) {
    run_eichrecht(from, to, Vec::new(), None)
}

/// The same, with DUT faults and, if given, the serial number the run is for (default:
/// the simulated DUT's, as the CLI does).
fn run_eichrecht(
    from: &str,
    to: &str,
    dut_faults: Vec<SimFault>,
    dut_serial: Option<&str>,
) -> (RunRecord, BoundStation) {
    let path = repo().join("hw/stations/sim.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from}");
    let station =
        Station::from_file(LoadedFile::from_text(&path, text.replacen(from, to, 1))).unwrap();
    let procedure = Procedure::load(&repo().join("procedures/cpim1000-eichrecht.yaml")).unwrap();
    let fixture = Fixture::load(&repo().join("fixtures/cpim1000.yaml")).unwrap();
    let reports = tempfile::tempdir().unwrap();
    let mut b = bind(
        &station,
        Some(&fixture),
        &SimOptions {
            dut_faults,
            ..SimOptions::default()
        },
    )
    .unwrap();
    let sim = station.simulation.clone().unwrap();
    let mut technician = SimulatedTechnician::new(b.world.clone().unwrap(), sim.dut.clone());
    let req = RunRequest {
        procedure: &procedure,
        fixture: &fixture,
        station: &station,
        dut_serial: dut_serial.unwrap_or(&sim.dut.serial_number).into(),
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
            operator: Some(&mut technician),
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
    let id = &rec.steps[1];
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
    assert_eq!(
        rec.steps.len(),
        2,
        "only the inspection and identity steps ran"
    );
    let ports: Vec<(&str, bool)> = rec.steps[1]
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
    assert_eq!(rec.steps.len(), 2);
    assert!(source_is_off(&b));
}

#[test]
fn the_inspection_and_the_register_test_pass_on_an_intact_meter() {
    let (rec, b) = run_with_station_edit("faults: []", "faults: []");
    assert_eq!(rec.outcome, Outcome::Pass, "{:?}", rec.outcome_reason);
    let inspection = &rec.steps[0];
    assert_eq!(inspection.kind, "inspection");
    match &inspection.ports[0].result {
        Some(PortResult::Inspection {
            scanned_serial,
            checks,
            passed: true,
            ..
        }) => {
            assert_eq!(scanned_serial.as_deref(), Some("SIM-CPIM-000123"));
            let keys: Vec<&str> = checks.iter().map(|c| c.key.as_str()).collect();
            assert_eq!(
                keys,
                [
                    "seal.power_plate",
                    "seal.output_connector_screws",
                    "label.mid_mir",
                    "label.eichrecht"
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        inspection.setpoint.phases[0].voltage_v, 0.0,
        "the DUT is not powered"
    );

    let register = rec.steps.iter().find(|s| s.kind == "register").unwrap();
    let world = b.world.as_ref().unwrap().lock().unwrap();
    for p in &register.ports {
        let Some(PortResult::Register {
            read_from,
            before_kwh,
            after_kwh,
            pulses,
            comparison,
            decision,
            consistent_with_pulses,
            ..
        }) = &p.result
        else {
            panic!("{:?}", p.result);
        };
        assert_eq!(read_from, "lcd");
        // Readings as the LCD shows them: six digits, four decimals.
        assert_eq!(
            (before_kwh.len(), after_kwh.len()),
            (11, 11),
            "{before_kwh} {after_kwh}"
        );
        // The register advanced by its steps; one step (0.1 Wh) ≤ 1/10 of the 1 % limit.
        let steps = |t: &str| t.replace('.', "").parse::<u64>().unwrap();
        let advance_wh = (steps(after_kwh) - steps(before_kwh)) as f64 * 0.1;
        assert!((advance_wh - comparison.register_wh).abs() < 1e-9);
        assert!(
            comparison.register_wh >= 100.0,
            "{}",
            comparison.register_wh
        );
        assert!(comparison.resolution_percent <= 0.1);
        assert!((comparison.pulses_wh - *pulses as f64 / 20.0).abs() < 1e-9);
        assert!(
            *consistent_with_pulses && decision.accepted,
            "{comparison:?}"
        );
        // Against the reference: the meter's own error at Imax PF 1, within the register's
        // resolution (0.1 %).
        let injected = world
            .injected_error_percent(&p.port, &register.setpoint)
            .unwrap();
        assert!(
            (comparison.error_vs_reference_percent - injected).abs() < 0.12,
            "port {}: register error {} vs the model's {injected}",
            p.port,
            comparison.error_vs_reference_percent
        );
    }
}

#[test]
fn a_register_that_disagrees_with_its_pulses_fails_on_that_port_only() {
    let (rec, b) = run_eichrecht(
        "faults: []",
        "faults: []",
        vec![SimFault::RegisterError(RegisterFault {
            port: "right".into(),
            error_percent: 1.5,
        })],
        None,
    );
    assert_eq!(rec.outcome, Outcome::Fail);
    let register = rec.steps.iter().find(|s| s.kind == "register").unwrap();
    assert_eq!(register.outcome, Outcome::Fail);
    let message = register.message.clone().unwrap();
    assert!(
        message.starts_with("port right: register advanced") && !message.contains("port left"),
        "{message}"
    );
    let verdicts: Vec<(&str, bool)> = register
        .ports
        .iter()
        .map(|p| (p.port.as_str(), p.result.as_ref().unwrap().passed()))
        .collect();
    assert_eq!(verdicts, [("left", true), ("right", false)]);
    // The LED is right: every accuracy point still passes.
    for s in rec.steps.iter().filter(|s| s.kind == "accuracy") {
        assert_eq!(s.outcome, Outcome::Pass, "{}", s.name);
    }
    assert!(source_is_off(&b));
}

#[test]
fn a_broken_seal_fails_the_inspection_before_anything_is_switched_on() {
    let (rec, b) = run_with_station_edit(
        "faults: []",
        "faults: []\n    broken_seals: [output_connector_screws]",
    );
    assert_eq!(rec.outcome, Outcome::Fail);
    let reason = rec.outcome_reason.clone().unwrap();
    assert!(
        reason
            .contains("seal not intact: User seals on the left and right output connector screws")
            && reason.contains("no energy test was run"),
        "{reason}"
    );
    assert_eq!(rec.steps.len(), 1);
    assert!(
        rec.steps
            .iter()
            .all(|s| s.setpoint.phases.iter().all(|p| p.voltage_v == 0.0))
    );
    assert!(source_is_off(&b));
}

#[test]
fn a_scanned_serial_that_is_not_the_runs_fails_the_inspection() {
    let (rec, _) = run_eichrecht("faults: []", "faults: []", Vec::new(), Some("CPIM-OTHER-7"));
    assert_eq!(rec.outcome, Outcome::Fail);
    let reason = rec.outcome_reason.clone().unwrap();
    assert!(
        reason.contains(
            "the scanned serial number SIM-CPIM-000123 is not the one this run is for (CPIM-OTHER-7)"
        ),
        "{reason}"
    );
    assert_eq!(rec.steps.len(), 1);
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
    // The LCD's flags are recorded as the line's answers file gives them.
    let bundle = std::fs::read_dir(reports.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("record.json").is_file())
        .unwrap();
    let rec: RunRecord =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("record.json")).unwrap())
            .unwrap();
    let flags: Vec<Option<&str>> = rec.steps[0]
        .ports
        .iter()
        .map(|p| match &p.result {
            Some(PortResult::Identity { lcd_flags, .. }) => lcd_flags.as_deref(),
            _ => None,
        })
        .collect();
    assert_eq!(flags, [Some("-"), Some("-")]);
    // The registers were read over CAN (no person at the LCD) and agree.
    let register_rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("Register (meter c"))
        .collect();
    assert_eq!(register_rows.len(), 2, "{stdout}");
    assert!(
        register_rows
            .iter()
            .all(|l| l.ends_with("pass") && l.contains("Wh reg")),
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
            "--ask",
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
