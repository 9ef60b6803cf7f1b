//! Calibrating the Xemex CSP1 end to end on the simulated station: the source drives the
//! current, the simulated CSP1 measures it (with the station's gain error per CT) and
//! sends P1 telegrams over a pseudo-terminal, the bench's P1 reader and sensor runner
//! judge them, and the run ends in the same signed bundle as a meter's.

use meterbench_runner::Outcome;
use meterbench_runner::record::{PortResult, RunRecord};
use std::path::{Path, PathBuf};

mod common;
use common::repo;

/// Run the CSP1 procedure on the sim station with CT gains `gains` (L1, L2, L3, %):
/// the exit code, stdout and the signed record.
fn calibrate(gains: &str) -> (i32, String, RunRecord, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("hw/stations/sim.yaml")).unwrap();
    let from = "gain_percent: [0.8, -0.6, 0.5]";
    assert!(text.contains(from));
    let station = dir.path().join("station.yaml");
    std::fs::write(
        &station,
        text.replace(from, &format!("gain_percent: {gains}")),
    )
    .unwrap();
    let reports = dir.path().join("reports");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args([
            "run",
            "--quiet",
            "--procedure",
            "procedures/csp1-accuracy.yaml",
            "--fixture",
            "fixtures/csp1.yaml",
            "--station",
        ])
        .arg(&station)
        .arg("--reports")
        .arg(&reports)
        .env("METERBENCH_SIGNING_KEY", dir.path().join("key.pem"))
        .current_dir(repo())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 1,
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record = bundle(&reports).join("record.json");
    let rec: RunRecord = serde_json::from_str(&std::fs::read_to_string(record).unwrap()).unwrap();
    (code, stdout, rec, dir)
}

fn bundle(reports: &Path) -> PathBuf {
    std::fs::read_dir(reports)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("record.json").is_file())
        .expect("a run folder")
}

/// (step, channel, reference A, mean error %, passed) of every loaded channel.
fn loaded(rec: &RunRecord) -> Vec<(String, String, f64, f64, bool)> {
    let mut v = Vec::new();
    for s in &rec.steps {
        for p in &s.ports {
            if let Some(PortResult::CurrentSensor {
                reference_a,
                mean_error_percent,
                passed,
                decision: Some(_),
                ..
            }) = &p.result
            {
                v.push((
                    s.name.clone(),
                    p.port.clone(),
                    *reference_a,
                    *mean_error_percent,
                    *passed,
                ));
            }
        }
    }
    v
}

#[test]
fn a_csp1_with_3_percent_gain_on_l2_passes_with_l2_at_about_3_percent() {
    let (code, stdout, rec, _dir) = calibrate("[0.0, 3.0, 0.0]");
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(rec.outcome, Outcome::Pass);
    assert_eq!(
        rec.dut.kind,
        meterbench_procedure::DeviceKind::CurrentSensor
    );
    assert_eq!(rec.dut.serial_number, "SIM-CSP1-000042");
    let points = loaded(&rec);
    assert!(points.iter().all(|p| p.4), "{points:?}");
    // Where 1 A resolves 3 % (32 A and up), L2 reads about +3 % (whole amperes: 33/32,
    // 65/63, 82/80 → +3.1, +3.2, +2.5 %); L1 and L3 read the reference.
    for (step, channel, i, e, _) in points.iter().filter(|p| p.2 >= 32.0) {
        if channel == "L2" {
            assert!((2.0..=3.5).contains(e), "{step} {channel}: {e} % at {i} A");
        } else {
            assert!(e.abs() < 1e-9, "{step} {channel}: {e} %");
        }
    }
    // The telegram stream: a telegram a second, the certified firmware, no CRC errors.
    let telegrams = rec.steps.last().unwrap();
    assert_eq!(telegrams.kind, meterbench_runner::StepKind::Telegrams);
    match &telegrams.ports[0].result {
        Some(PortResult::Telegrams {
            firmware_seen,
            crc_failures: 0,
            period_min_s,
            period_max_s,
            passed: true,
            ..
        }) => {
            assert_eq!(firmware_seen, &["XMX_P1CS_V05"]);
            assert!(
                *period_min_s >= 0.8 && *period_max_s <= 1.2,
                "{period_min_s} … {period_max_s}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Unloaded channels read 0 A at the single-phase points.
    let l1_only = rec.steps.iter().find(|s| s.name == "16 A L1").unwrap();
    for p in &l1_only.ports[1..] {
        match &p.result {
            Some(PortResult::CurrentSensor {
                reference_a,
                readings,
                passed: true,
                ..
            }) => {
                assert_eq!(*reference_a, 0.0);
                assert!(
                    readings.iter().all(|r| r.parse::<f64>().unwrap() == 0.0),
                    "{readings:?}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    // The same certificate path as a meter: a signed bundle with the readings.
    assert!(stdout.contains("certificate bundle:"), "{stdout}");
}

#[test]
fn a_csp1_with_7_percent_gain_on_l2_fails_on_l2_only() {
    let (code, stdout, rec, dir) = calibrate("[0.0, 7.0, 0.0]");
    assert_eq!(code, 1, "{stdout}");
    assert_eq!(rec.outcome, Outcome::Fail);
    let failed: Vec<(String, String)> = loaded(&rec)
        .into_iter()
        .filter(|p| !p.4)
        .map(|p| (p.0, p.1))
        .collect();
    assert!(!failed.is_empty());
    assert!(failed.iter().all(|(_, c)| c == "L2"), "{failed:?}");
    // At 80 A: 85.6 A reads 86 A, +7.5 %.
    let at80 = loaded(&rec)
        .into_iter()
        .find(|p| p.0 == "80 A balanced" && p.1 == "L2")
        .unwrap();
    assert!((at80.3 - 7.5).abs() < 1e-9, "{at80:?}");
    // The certificate names the failing channel's readings.
    let html =
        std::fs::read_to_string(bundle(&dir.path().join("reports")).join("certificate.html"))
            .unwrap();
    assert!(
        html.contains("Current readings") && html.contains("86 86 86 86 86"),
        "certificate lacks the readings"
    );
}

#[test]
fn a_current_point_beyond_the_sensors_range_is_refused_before_anything_is_switched_on() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("procedures/csp1-accuracy.yaml")).unwrap();
    let procedure = dir.path().join("p.yaml");
    std::fs::write(&procedure, text.replace("current_a: 80,", "current_a: 90,")).unwrap();
    let (code, stdout, stderr) = common::meterbench(&[
        "run",
        "--quiet",
        "--procedure",
        procedure.to_str().unwrap(),
        "--fixture",
        "fixtures/csp1.yaml",
        "--reports",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{stdout}");
    assert!(
        stderr.contains("p.yaml:") && stderr.contains("asks 90 A, outside CSP1's range 1 … 80 A"),
        "{stderr}"
    );
    assert!(!dir.path().join("issuance-log.jsonl").exists());
}

/// Run the CSP1 procedure on the sim station with one edit of the station file:
/// (exit code, stdout, stderr, the reports folder).
fn calibrate_on_edited_station(from: &str, to: &str) -> (i32, String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("hw/stations/sim.yaml")).unwrap();
    assert!(text.contains(from), "{from}");
    let station = dir.path().join("station.yaml");
    std::fs::write(&station, text.replacen(from, to, 1)).unwrap();
    let key = dir.path().join("key.pem");
    let (code, out, err) = common::meterbench(&[
        "run",
        "--quiet",
        "--procedure",
        "procedures/csp1-accuracy.yaml",
        "--fixture",
        "fixtures/csp1.yaml",
        "--station",
        station.to_str().unwrap(),
        "--reports",
        dir.path().join("reports").to_str().unwrap(),
        "--signing-key",
        key.to_str().unwrap(),
    ]);
    (code, out, err, dir)
}

#[test]
fn a_silent_sensor_ends_as_error_with_the_source_off() {
    // The cable does not drive the request line: the CSP1 never sends.
    let (code, stdout, stderr, dir) =
        calibrate_on_edited_station("request: rts }", "request: none }");
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(stdout.contains("VERDICT: ERROR"), "{stdout}");
    assert!(stdout.contains("no telegram from the sensor"), "{stdout}");
    let rec: RunRecord = serde_json::from_str(
        &std::fs::read_to_string(bundle(&dir.path().join("reports")).join("record.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(rec.outcome, Outcome::Error);
    assert!(rec.log.iter().any(|l| l.message == "source output off"));
}

#[test]
fn a_station_without_a_current_uncertainty_is_refused_where_its_source_is() {
    let (code, stdout, stderr, dir) = calibrate_on_edited_station(
        "    current_uncertainty_k2_percent:\n      value: 0.02\n      source: simulated certificate SIM-CAL-SRC-2026-01\n",
        "",
    );
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("station.yaml:13:") && stderr.contains("no current_uncertainty_k2_percent"),
        "{stderr}"
    );
    assert!(!dir.path().join("reports").exists(), "nothing was run");
}
