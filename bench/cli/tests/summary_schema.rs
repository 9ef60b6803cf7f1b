//! summary.json as MES and CI systems read it: every run's file validates against the
//! JSON Schema in docs/schemas (with a real validator), every point kind carries its
//! numbers, and a port states its own outcome, not its step's.

mod common;
use common::{repo, run_folders};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// `meterbench run ARGS` into a new reports folder: (exit code, summary.json).
fn summary_of(args: &[&str]) -> (Option<i32>, Value) {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let out = Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args(["run", "--quiet", "--reports"])
        .arg(&reports)
        .args(args)
        .env("METERBENCH_SIGNING_KEY", dir.path().join("key.pem"))
        .env_remove("METERBENCH_STORE")
        .current_dir(repo())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let folders = run_folders(&reports);
    assert_eq!(
        folders.len(),
        1,
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(folders[0].join("summary.json")).unwrap();
    (out.status.code(), serde_json::from_str(&text).unwrap())
}

/// Validate `summary` against docs/schemas/summary.schema.json.
fn validate(summary: &Value, which: &str) {
    let schema_path = repo().join("docs/schemas/summary.schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(&schema_path).unwrap()).unwrap();
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.enable_format_assertions();
    compiler
        .add_resource("summary.schema.json", schema)
        .expect("the schema loads");
    let id = compiler
        .compile("summary.schema.json", &mut schemas)
        .unwrap_or_else(|e| panic!("{} does not compile: {e:#}", schema_path.display()));
    if let Err(e) = schemas.validate(summary, id) {
        panic!("{which}: summary.json does not match the schema: {e:#}\n{summary:#}");
    }
}

fn points<'a>(s: &'a Value, kind: &str) -> Vec<&'a Value> {
    s["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == kind)
        .collect()
}

/// Each point of `kind` states its error, U and limit.
fn numbers_present(s: &Value, kind: &str) {
    let ps = points(s, kind);
    assert!(!ps.is_empty(), "no {kind} point in {s:#}");
    for p in ps {
        for field in ["error_percent", "expanded_u_percent", "mpe_percent"] {
            assert!(p[field].is_number(), "{kind} point lacks {field}: {p:#}");
        }
        assert!(p["conformity"].is_string(), "{p:#}");
    }
}

#[test]
fn every_kind_of_run_writes_a_summary_the_schema_accepts() {
    // A FAIL with its retest: the passing port of the failing step is PASS itself.
    let (code, fail) = summary_of(&[
        "--customer",
        "Stadtwerke Musterstadt GmbH",
        "--sim-fault",
        "{error_bump: {port: right, from_a: 4, to_a: 6, cos_phi: 1, error_percent: 1.6}}",
    ]);
    assert_eq!(code, Some(1));
    validate(&fail, "FAIL");
    assert_eq!(fail["outcome"], "FAIL");
    assert_eq!(fail["customer"], "Stadtwerke Musterstadt GmbH");
    assert_eq!(
        fail["signatory"]["name"],
        "Sam Simulated (simulated signatory)"
    );
    numbers_present(&fail, "accuracy");
    numbers_present(&fail, "load_difference");
    // The air of every accuracy point, inside the procedure's reference conditions.
    assert_eq!(fail["reference_conditions"]["temperature_c"], 23.0);
    assert_eq!(fail["reference_conditions"]["outside"], "refuse");
    for p in points(&fail, "accuracy") {
        let t = p["ambient"]["temperature_c"].as_array().unwrap();
        let (lo, hi) = (t[0].as_f64().unwrap(), t[1].as_f64().unwrap());
        assert!((21.0..=25.0).contains(&lo) && lo <= hi && hi <= 25.0, "{p}");
        assert!(
            p["ambient"]["outside_reference_conditions"].is_null(),
            "{p}"
        );
    }
    // The starting test's air is read too; a computed check reads none.
    assert!(
        points(&fail, "starting")
            .iter()
            .all(|p| p["ambient"].is_object())
    );
    assert!(
        points(&fail, "load_difference")
            .iter()
            .all(|p| p["ambient"].is_null())
    );
    let iref: Vec<&Value> = fail["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["step"] == "Iref PF1")
        .collect();
    let port = |name: &str| *iref.iter().find(|p| p["port"] == name).unwrap();
    assert_eq!(port("right")["outcome"], "FAIL");
    assert_eq!(port("right")["conformity"], "fail");
    assert_eq!(port("left")["outcome"], "PASS", "{:#}", port("left"));
    assert_eq!(port("left")["step_outcome"], "FAIL");
    assert!(port("left")["coverage_factor"].as_f64().unwrap() >= 2.0);
    assert!(
        port("left")["limit_source"]
            .as_str()
            .unwrap()
            .contains("EN 50470-3")
    );

    // The register test of the Eichrecht procedure: error against the reference energy.
    let (code, eich) = summary_of(&["--procedure", "procedures/cpim1000-eichrecht.yaml"]);
    assert_eq!(code, Some(0));
    validate(&eich, "Eichrecht");
    numbers_present(&eich, "register");
    assert_eq!(eich["document"], "calibration_certificate");
    assert_eq!(eich["customer"], Value::Null);

    // The current sensor: its readings at fixed currents and its transition points.
    let (code, csp1) = summary_of(&[
        "--procedure",
        "procedures/csp1-accuracy.yaml",
        "--fixture",
        "fixtures/csp1.yaml",
    ]);
    assert_eq!(code, Some(0));
    validate(&csp1, "CSP1");
    assert_eq!(csp1["dut"]["kind"], "current_sensor");
    let current = points(&csp1, "current");
    assert!(
        current
            .iter()
            .filter(|p| p["error_percent"].is_number())
            .count()
            >= 3,
        "{current:#?}"
    );
    for p in &current {
        assert!(p["conformity"].is_string(), "{p:#}");
        // A limit in percent where there is an error; at 0 A the limit is "reads 0 A".
        if p["error_percent"].is_number() {
            assert!(p["mpe_percent"].is_number(), "{p:#}");
        }
        // An error has its U and the other way round.
        assert_eq!(
            p["error_percent"].is_number(),
            p["expanded_u_percent"].is_number(),
            "{p:#}"
        );
    }

    // A dead LED: ERROR, a test report; the heads that saw no pulse are a bench fault
    // (ERROR), the other port's passed.
    let (code, error) = summary_of(&["--sim-fault", "{dead_led: {port: right}}"]);
    assert_eq!(code, Some(2));
    validate(&error, "ERROR");
    assert_eq!(error["outcome"], "ERROR");
    assert_eq!(error["document"], "test_report");
    let heads = points(&error, "pulse_check");
    let right = heads.iter().find(|p| p["port"] == "right").unwrap();
    assert_eq!(right["outcome"], "ERROR", "{right:#}");
    let left = heads.iter().find(|p| p["port"] == "left").unwrap();
    assert_eq!(left["outcome"], "PASS", "{left:#}");
}

/// The schema is strict: a field it does not know, or a point without its outcome, is
/// refused, so the documentation cannot drift from the file unnoticed.
#[test]
fn the_schema_refuses_what_it_does_not_document() {
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/schemas/summary.schema.json"),
    )
    .unwrap();
    let schema: Value = serde_json::from_str(&example).unwrap();
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.add_resource("s.json", schema).unwrap();
    let id = compiler.compile("s.json", &mut schemas).unwrap();
    let (_, good) = summary_of(&[]);
    assert!(schemas.validate(&good, id).is_ok());
    let mut extra = good.clone();
    extra["undocumented"] = Value::from(1);
    assert!(schemas.validate(&extra, id).is_err());
    let mut no_outcome = good.clone();
    no_outcome["points"][0]
        .as_object_mut()
        .unwrap()
        .remove("outcome");
    assert!(schemas.validate(&no_outcome, id).is_err());
    let mut bad_conformity = good;
    bad_conformity["points"][0]["conformity"] = Value::from("passed");
    assert!(schemas.validate(&bad_conformity, id).is_err());
}
