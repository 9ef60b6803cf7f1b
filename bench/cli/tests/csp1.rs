//! Calibrating the Xemex CSP1 end to end on the simulated station: the source drives the
//! current, the simulated CSP1 measures it (with the station's gain error and noise per
//! CT) and sends P1 telegrams over a pseudo-terminal, the bench's P1 reader and sensor
//! runner search each channel's transition points, and the run ends in the same signed
//! bundle as a meter's.

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

/// One channel at one transition point.
#[derive(Debug)]
struct Point {
    step: String,
    channel: String,
    /// (error %, U %) where the transition was located.
    located: Option<(f64, f64)>,
    /// Beyond the bracket: the error lies beyond this, %.
    beyond: Option<f64>,
    problem: Option<String>,
    passed: bool,
}

/// Every loaded channel's transition result.
fn loaded(rec: &RunRecord) -> Vec<Point> {
    let mut v = Vec::new();
    for s in &rec.steps {
        for p in &s.ports {
            if let Some(PortResult::Transition {
                error_percent,
                expanded_u_percent,
                error_beyond_percent,
                problem,
                passed,
                ..
            }) = &p.result
            {
                v.push(Point {
                    step: s.name.clone(),
                    channel: p.port.clone(),
                    located: error_percent.zip(*expanded_u_percent),
                    beyond: *error_beyond_percent,
                    problem: problem.clone(),
                    passed: *passed,
                });
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
    // Six balanced points of three channels, and each CT alone.
    assert_eq!(points.len(), 21, "{points:?}");
    assert!(points.iter().all(|p| p.passed), "{points:?}");
    // Every point, the low ones too, resolves the error (whole amperes do not hide it
    // at a transition): L2 reads +3 %, L1 and L3 the reference, each within its U, and
    // U(k=2) ≤ 1 %.
    for p in &points {
        assert!(p.problem.is_none(), "{p:?}");
        let (e, u) = p.located.unwrap();
        let injected = if p.channel == "L2" { 3.0 } else { 0.0 };
        assert!(u <= 1.0, "{} {}: U {u} %", p.step, p.channel);
        assert!(
            (e - injected).abs() <= u,
            "{} {}: {e:+.3} ± {u:.3} %, injected {injected} %",
            p.step,
            p.channel
        );
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
    // Unloaded channels read 0 A at the single-phase points, in every telegram taken.
    let l1_only = rec
        .steps
        .iter()
        .find(|s| s.name == "16 A L1 (15 → 16)")
        .unwrap();
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
                    !readings.is_empty()
                        && readings.iter().all(|r| r.parse::<f64>().unwrap() == 0.0),
                    "{readings:?}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    // The same certificate path as a meter: a signed bundle with the transition points.
    assert!(stdout.contains("certificate bundle:"), "{stdout}");
}

#[test]
fn a_csp1_with_7_percent_gain_on_l2_fails_on_l2_only() {
    let (code, stdout, rec, dir) = calibrate("[0.0, 7.0, 0.0]");
    assert_eq!(code, 1, "{stdout}");
    assert_eq!(rec.outcome, Outcome::Fail);
    let points = loaded(&rec);
    let failed: Vec<&Point> = points.iter().filter(|p| !p.passed).collect();
    assert!(!failed.is_empty());
    assert!(failed.iter().all(|p| p.channel == "L2"), "{failed:?}");
    assert_eq!(
        failed.len(),
        points.iter().filter(|p| p.channel == "L2").count(),
        "every L2 point fails"
    );
    // Every L2 point is located at +7 %, within its U, and fails by the ±5 % limit.
    for p in points.iter().filter(|p| p.channel == "L2") {
        let (e, u) = p.located.unwrap_or_else(|| panic!("{p:?}"));
        assert!((e - 7.0).abs() <= u && e - u > 5.0, "{p:?}");
        // Inside the search's bracket (twice the limit): a value, not a bound.
        assert!(p.beyond.is_none() && p.problem.is_none(), "{p:?}");
    }
    // The certificate names the failing channel's transition.
    let html =
        std::fs::read_to_string(bundle(&dir.path().join("reports")).join("certificate.html"))
            .unwrap();
    assert!(
        html.contains("<h3>Transition points</h3>") && html.contains("<td class=\"res\">FAIL</td>"),
        "certificate lacks the failing transition"
    );
}

#[test]
fn a_current_point_beyond_the_sensors_range_is_refused_before_anything_is_switched_on() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("procedures/csp1-accuracy.yaml")).unwrap();
    let procedure = dir.path().join("p.yaml");
    std::fs::write(
        &procedure,
        text.replace("between_a: [79, 80]", "between_a: [89, 90]"),
    )
    .unwrap();
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
        stderr.contains("p.yaml:") && stderr.contains("asks 89.5 A, outside CSP1's range 1 … 80 A"),
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
        stderr.contains("station.yaml:20:") && stderr.contains("no current_uncertainty_k2_percent"),
        "{stderr}"
    );
    assert!(!dir.path().join("reports").exists(), "nothing was run");
}
