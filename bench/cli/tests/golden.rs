//! The single-device runs give the same results whatever shape the run lifecycle takes:
//! each procedure of the repository, run on the simulated station with its fixed seed,
//! against the results recorded in `data/golden-single-device.json` (errors, U, counts,
//! readings, per step and port, to 1e-9).
//!
//! The file was recorded with the one-device runner (commit "Golden results of the
//! single-device runs"), before the multi-position lifecycle replaced it; it changes
//! only when the simulated world or the metrology changes on purpose. To record it
//! again: `METERBENCH_WRITE_GOLDEN=1 cargo test -p meterbench --test golden`, with
//! `RECORDED_ON` set to the day of recording (the runs are made as of that day).

use meterbench_runner::{Outcome, Silent};
use meterbench_session::paths::{BenchHome, HomeOrigin};
use meterbench_session::{Prepared, SessionOptions};
use serde_json::{Map, Value, json};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

mod common;
use common::repo;

/// (name, procedure, fixture, extra arguments)
const RUNS: &[(&str, &str, &str, &[&str])] = &[
    (
        "class-b",
        "procedures/en50470-3-class-b.yaml",
        "fixtures/cpim1000.yaml",
        &[],
    ),
    (
        "eichrecht",
        "procedures/cpim1000-eichrecht.yaml",
        "fixtures/cpim1000.yaml",
        &[],
    ),
    (
        "eol",
        "procedures/cpim1000-eol.yaml",
        "fixtures/cpim1000.yaml",
        &["--answers", "hw/answers/sim-cpim1000.yaml"],
    ),
    (
        "csp1",
        "procedures/csp1-accuracy.yaml",
        "fixtures/csp1.yaml",
        &[],
    ),
];

/// Numbers of a port's result that a lifecycle must reproduce (whatever the result's
/// kind; absent ones are skipped).
const QUANTITIES: &[&str] = &[
    "error_percent",
    "expanded_u_percent",
    "mean_interval_s",
    "seen",
    "pulses",
    "pulse_times_s",
    "passed",
    "dose_s",
    "before_kwh",
    "after_kwh",
    "mean_error_percent",
    "errors_percent",
    "readings",
    "software_version",
    "lrs_hash",
    // A sensor's transition point: every current set and its reading, and the result.
    "probes",
    "mu_a",
    "u_mu_a",
    // The single-phase check: each difference, its budget and decision.
    "balanced_error_percent",
    "comparisons",
];

/// The day the results were recorded. A run's uncertainty depends on its day (the
/// reference standard's drift since its calibration), so the runs are made as of that
/// day, through the session library the `run` command drives: the same files, checks,
/// lifecycle and record, on any day the test runs.
const RECORDED_ON: (i32, u32, u32) = (2026, 12, 6);

fn run_record(procedure: &str, fixture: &str, extra: &[&str], dir: &Path) -> Value {
    let (y, m, d) = RECORDED_ON;
    let mut o = SessionOptions::new(chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap());
    o.procedure = repo().join(procedure);
    o.fixture = repo().join(fixture);
    o.station = repo().join("hw/stations/sim.yaml");
    o.reports = dir.join("reports");
    o.home = BenchHome::at(&repo(), HomeOrigin::Flag);
    if let ["--answers", answers] = extra {
        o.answers = vec![(None, repo().join(answers))];
    }
    let prepared = Prepared::load(o).unwrap_or_else(|e| panic!("{procedure}: {e}"));
    let mut bound = prepared.bind().unwrap();
    let session = prepared
        .run(
            &mut bound,
            None,
            Arc::new(AtomicBool::new(false)),
            &mut Silent,
        )
        .unwrap_or_else(|e| panic!("{procedure}: {e}"));
    let record = &session.runs[0].record;
    assert_eq!(record.outcome, Outcome::Pass, "{procedure}");
    serde_json::to_value(record).unwrap()
}

/// Step name → port → quantity → value, for every step with results.
fn results(record: &Value) -> Value {
    let mut steps = Map::new();
    for step in record["steps"].as_array().unwrap() {
        let mut ports = Map::new();
        for port in step["ports"].as_array().unwrap() {
            let result = &port["result"];
            if result.is_null() {
                continue;
            }
            let mut q = Map::new();
            for name in QUANTITIES {
                if let Some(v) = result.get(*name) {
                    q.insert(name.to_string(), v.clone());
                }
            }
            // Each repeat of an accuracy point, and a register's comparison.
            if let Some(repeats) = result.get("repeats") {
                q.insert("repeats".into(), repeats.clone());
            }
            if let Some(c) = result.get("comparison") {
                q.insert("comparison".into(), c.clone());
            }
            ports.insert(port["port"].as_str().unwrap().to_string(), Value::Object(q));
        }
        steps.insert(
            step["name"].as_str().unwrap().to_string(),
            json!({ "outcome": step["outcome"], "ports": ports }),
        );
    }
    json!({ "outcome": record["outcome"], "steps": steps })
}

/// Where `got` differs from `want`: numbers by more than 1e-9, anything else at all.
fn differences(path: &str, want: &Value, got: &Value, out: &mut Vec<String>) {
    match (want, got) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            if (a - b).abs() > 1e-9 {
                out.push(format!("{path}: {a} recorded, {b} now"));
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                match b.get(k) {
                    Some(vb) => differences(&format!("{path}/{k}"), va, vb, out),
                    None => out.push(format!("{path}/{k}: missing now")),
                }
            }
            for k in b.keys().filter(|k| !a.contains_key(*k)) {
                out.push(format!("{path}/{k}: not recorded"));
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (va, vb)) in a.iter().zip(b).enumerate() {
                differences(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!("{path}: {a} recorded, {b} now")),
    }
}

#[test]
fn single_device_runs_give_the_recorded_results() {
    let golden_path = repo().join("bench/cli/tests/data/golden-single-device.json");
    let dir = tempfile::tempdir().unwrap();
    let mut now = Map::new();
    for (name, procedure, fixture, extra) in RUNS {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        now.insert(
            name.to_string(),
            results(&run_record(procedure, fixture, extra, &d)),
        );
    }
    let now = Value::Object(now);
    if std::env::var_os("METERBENCH_WRITE_GOLDEN").is_some() {
        std::fs::write(
            &golden_path,
            format!("{}\n", serde_json::to_string_pretty(&now).unwrap()),
        )
        .unwrap();
        return;
    }
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(&golden_path).unwrap()).unwrap();
    let mut out = Vec::new();
    differences("", &want, &now, &mut out);
    assert!(
        out.is_empty(),
        "{} differences from the recorded results:\n{}",
        out.len(),
        out.join("\n")
    );
}
