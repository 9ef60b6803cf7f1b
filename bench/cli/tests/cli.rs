//! The `meterbench` command as a technician uses it: exit codes, messages, signals.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The bench's signing key for tests lives in a temp dir, never in the user's config.
fn test_key() -> PathBuf {
    static KEY: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    KEY.get_or_init(|| tempfile::tempdir().unwrap())
        .path()
        .join("bench-key.pem")
}

fn meterbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args(args)
        .env("METERBENCH_SIGNING_KEY", test_key())
        .current_dir(repo())
        .output()
        .unwrap()
}

/// `meterbench ARGS` writing into a pipe whose reading end is closed before it starts:
/// every write to stdout fails (EPIPE), as when `| head -1` has read its line.
fn with_stdout_closed(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args(args)
        .env("METERBENCH_SIGNING_KEY", test_key())
        .current_dir(repo())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

/// The commands that print a list or an answer exit with their own status when no one
/// reads it, not with a panic's 101.
#[test]
fn a_reader_that_stops_reading_leaves_the_commands_status() {
    for (args, code) in [
        (vec!["validate"], 0),
        (vec!["validate", "no-such-file.yaml"], 2),
        (
            vec![
                "validate",
                "procedures/en50470-3-class-b.yaml",
                "fixtures/cpim1000.yaml",
            ],
            0,
        ),
    ] {
        let out = with_stdout_closed(&args);
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {said}");
        assert!(!said.contains("panicked"), "{args:?}: {said}");
    }
}

fn records(dir: &Path) -> Vec<serde_json::Value> {
    let mut v = Vec::new();
    for run in std::fs::read_dir(dir).unwrap() {
        let run = run.unwrap().path();
        // Run folders hold a record; the results store (reports/store) does not.
        if !run.join("record.json").is_file() {
            continue;
        }
        let p = run.join("record.json");
        v.push(serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap());
    }
    v
}

#[test]
fn the_default_run_passes_and_prints_its_verdict_and_timing() {
    let reports = tempfile::tempdir().unwrap();
    let out = meterbench(&[
        "run",
        "--quiet",
        "--reports",
        reports.path().to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("VERDICT: PASS"), "{stdout}");
    assert!(
        stdout.contains("bench time")
            && stdout.contains("expected from settling and pulse periods"),
        "{stdout}"
    );
    let recs = records(reports.path());
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["outcome"], "PASS");
    assert_eq!(recs[0]["procedure"]["id"], "en50470-3-class-b");
    assert_eq!(recs[0]["procedure"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(
        recs[0]["instruments"].as_array().unwrap().len(),
        4,
        "source, reference, counter, climate"
    );
    assert!(
        recs[0]["instruments"][0]["calibration"]["id"]
            .as_str()
            .is_some()
    );
}

#[test]
fn exit_codes_follow_the_outcome() {
    let reports = tempfile::tempdir().unwrap();
    let r = reports.path().to_str().unwrap();
    let fail = meterbench(&[
        "run",
        "--quiet",
        "--reports",
        r,
        "--sim-fault",
        "{creep: {port: left, power_w: 6}}",
    ]);
    assert_eq!(
        fail.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&fail.stdout)
    );
    assert!(String::from_utf8_lossy(&fail.stdout).contains("VERDICT: FAIL"));
    let error = meterbench(&[
        "run",
        "--quiet",
        "--reports",
        r,
        "--sim-fault",
        "{dead_led: {port: left}}",
    ]);
    assert_eq!(error.status.code(), Some(2));
    let text = String::from_utf8_lossy(&error.stdout);
    assert!(
        text.contains("VERDICT: ERROR") && text.contains("port left"),
        "{text}"
    );
    let bad = meterbench(&[
        "run",
        "--quiet",
        "--reports",
        r,
        "--sim-fault",
        "{dead_led: {prt: left}}",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("prt"));
}

#[test]
fn validate_accepts_the_repository_and_rejects_a_typo_with_its_position() {
    let ok = meterbench(&["validate"]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(
        text.contains("procedures/en50470-3-class-b.yaml") && text.contains("hw/stations/sim.yaml"),
        "{text}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("typo.yaml");
    let good = std::fs::read_to_string(repo().join("fixtures/cpim1000.yaml")).unwrap();
    std::fs::write(&bad, good.replace("frequency_hz: 50", "frequncy_hz: 50")).unwrap();
    let out = meterbench(&["validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = good
        .lines()
        .position(|l| l.starts_with("frequency_hz"))
        .unwrap()
        + 1;
    assert!(
        text.contains(&format!("typo.yaml:{line}:1: ")) && text.contains("frequncy_hz"),
        "{text}"
    );
}

#[test]
fn validate_of_a_procedure_alone_checks_it_as_run_would_use_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("procedures/en50470-3-class-b.yaml")).unwrap();
    let from = "current: Imax, power_factor: 1,    settle_s: 2, pulses: 300";
    assert!(text.contains(from));
    let path = dir.path().join("p40.yaml");
    std::fs::write(
        &path,
        text.replacen(
            from,
            "current: 40, power_factor: 1,    settle_s: 2, pulses: 300",
            1,
        ),
    )
    .unwrap();
    let p = path.to_str().unwrap();
    // `run` refuses it before anything is switched on...
    let run = meterbench(&[
        "run",
        "--quiet",
        "--procedure",
        p,
        "--reports",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("step `Imax PF1`"));
    // ...and so does `validate` with the file alone.
    let alone = meterbench(&["validate", p]);
    let stdout = String::from_utf8_lossy(&alone.stdout);
    assert_eq!(alone.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("against the fixtures in fixtures/")
            && stdout.contains("error ")
            && stdout.contains("step `Imax PF1`")
            && stdout.contains("against fixture cpim1000"),
        "{stdout}"
    );
    // The shipped procedure passes the same check.
    let ok = meterbench(&["validate", "procedures/en50470-3-class-b.yaml"]);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("en50470-3-class-b on cpim1000 at station sim-1"),
        "{stdout}"
    );
}

#[test]
fn a_signing_key_that_cannot_be_made_or_read_is_named_with_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let run = |key: &Path| {
        Command::new(env!("CARGO_BIN_EXE_meterbench"))
            .args(["run", "--quiet", "--reports"])
            .arg(&reports)
            .arg("--signing-key")
            .arg(key)
            .current_dir(repo())
            .output()
            .unwrap()
    };
    // A key in a folder that is not there (here: under a file) is not made: the path
    // may be mistyped.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = run(&file.join("keys/key.pem"));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("no folder {}", file.join("keys").display()))
            && err.contains("named by --signing-key")
            && err.contains("meterbench keys generate --out"),
        "{err}"
    );
    // A file that is no key.
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "garbage").unwrap();
    let out = run(&bad);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("the signing key {}", bad.display()))
            && err.contains("not an Ed25519 private key"),
        "{err}"
    );
}

#[test]
fn a_run_without_a_verdict_issues_a_test_report_and_a_line_a_production_record() {
    let reports = tempfile::tempdir().unwrap();
    let r = reports.path().to_str().unwrap();
    let dead = meterbench(&[
        "run",
        "--quiet",
        "--reports",
        r,
        "--sim-fault",
        "{dead_led: {port: left}}",
    ]);
    assert_eq!(dead.status.code(), Some(2));
    let eol = meterbench(&[
        "run",
        "--quiet",
        "--reports",
        r,
        "--procedure",
        "procedures/cpim1000-eol.yaml",
        "--answers",
        "hw/answers/sim-cpim1000.yaml",
    ]);
    assert_eq!(
        eol.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&eol.stderr)
    );
    let mut seen = Vec::new();
    for bundle in bundles(reports.path()) {
        let html = std::fs::read_to_string(bundle.join("certificate.html")).unwrap();
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(bundle.join("record.json")).unwrap())
                .unwrap();
        match record["outcome"].as_str().unwrap() {
            "ERROR" => {
                assert!(html.contains("<h1>Test report</h1>") && html.contains("Report no."));
                assert!(
                    html.contains("No calibration result exists for this item: the run ended ERROR (step `Scanning heads`"),
                    "{html}"
                );
                assert!(!html.contains("Calibration certificate</h1>"));
                seen.push("test report");
            }
            "PASS" => {
                assert_eq!(record["procedure"]["document"], "production_test_record");
                assert!(
                    html.contains("<h1>Production test record</h1>") && html.contains("Record no.")
                );
                seen.push("production record");
            }
            other => panic!("{other}"),
        }
    }
    seen.sort();
    assert_eq!(seen, ["production record", "test report"]);
}

#[test]
fn help_explains_the_commands() {
    let out = meterbench(&["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("run") && text.contains("validate") && text.contains("Exit codes"),
        "{text}"
    );
    let out = meterbench(&["run", "--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("--sim-fault"));
}

/// A real-time run stopped by a signal ends ABORTED, says the source went off, and
/// keeps its record.
fn stopped_by(signal: &str) {
    let reports = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args([
            "run",
            "--quiet",
            "--realtime",
            "--reports",
            reports.path().to_str().unwrap(),
        ])
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let kill = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let started = Instant::now();
    let out = loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break child.wait_with_output().unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "run did not stop after {signal}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("VERDICT: ABORTED"), "{said}");
    // Said on the screen before anyone touches the terminals; and no expected time for
    // a run cut short (it covers only the steps that finished).
    assert!(
        said.contains("source: output off, confirmed by the source"),
        "{said}"
    );
    assert!(!said.contains("expected from settling"), "{said}");
    let recs = records(reports.path());
    assert_eq!(recs[0]["outcome"], "ABORTED");
    assert!(
        recs[0]["log"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["message"] == "source output off")
    );
}

#[test]
fn ctrl_c_aborts_with_the_source_off() {
    stopped_by("-INT");
}

#[test]
fn sigterm_aborts_with_the_source_off() {
    stopped_by("-TERM");
}

#[test]
fn sigquit_aborts_with_the_source_off() {
    stopped_by("-QUIT");
}

/// A lost terminal (the session's SSH connection dropped) is a stop, not a crash.
#[test]
fn sighup_aborts_with_the_source_off() {
    stopped_by("-HUP");
}

/// `meterbench run | head -1`: nobody reads stdout after the first line. The run is not
/// lost: it ends with its verdict, its signed bundle and its filing, and exits with the
/// verdict's code.
#[test]
fn a_closed_stdout_costs_no_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args(["run", "--quiet", "--reports"])
        .arg(dir.path().join("reports"))
        .env("METERBENCH_SIGNING_KEY", dir.path().join("key.pem"))
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Close the read end before anything is written.
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    let recs = records(&dir.path().join("reports"));
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["outcome"], "PASS");
    let bundle = bundles(&dir.path().join("reports")).remove(0);
    assert!(
        bundle.join("MANIFEST.sig").is_file(),
        "the bundle is signed"
    );
    assert!(
        dir.path().join("reports/store/index.sqlite").is_file(),
        "and filed"
    );
}

fn bundles(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("record.json").is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn every_run_ends_in_a_signed_bundle_that_verifies_and_tampering_is_named() {
    let reports = tempfile::tempdir().unwrap();
    let r = reports.path().to_str().unwrap();
    assert_eq!(
        meterbench(&["run", "--quiet", "--reports", r])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        meterbench(&[
            "run",
            "--quiet",
            "--reports",
            r,
            "--sim-fault",
            "{creep: {port: left, power_w: 6}}"
        ])
        .status
        .code(),
        Some(1)
    );
    let b = bundles(reports.path());
    assert_eq!(b.len(), 2);
    for bundle in &b {
        for f in [
            "record.json",
            "summary.json",
            "junit.xml",
            "MANIFEST.sha256",
            "MANIFEST.sig",
            "signer.pub.pem",
        ] {
            assert!(
                bundle.join(f).is_file(),
                "{f} missing in {}",
                bundle.display()
            );
        }
        let ok = meterbench(&["verify", bundle.to_str().unwrap()]);
        assert_eq!(
            ok.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&ok.stdout)
        );
        // A reader that stops reading (`verify B | grep -q OK`) leaves verify's answer.
        let unread = with_stdout_closed(&["verify", bundle.to_str().unwrap()]);
        assert_eq!(
            unread.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&unread.stderr)
        );
    }
    let log = reports.path().join("issuance-log.jsonl");
    let public = test_key().with_file_name("bench-key.pub.pem");
    let ok = meterbench(&[
        "verify",
        "--log",
        log.to_str().unwrap(),
        "--key",
        public.to_str().unwrap(),
    ]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("2 entries"));

    // One byte of the record changed: named.
    let record = b[0].join("record.json");
    let mut bytes = std::fs::read(&record).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&record, &bytes).unwrap();
    let bad = meterbench(&["verify", b[0].to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stdout).contains("record.json"),
        "{}",
        String::from_utf8_lossy(&bad.stdout)
    );
    // A file removed: named.
    std::fs::remove_file(b[1].join("junit.xml")).unwrap();
    let bad = meterbench(&["verify", b[1].to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("junit.xml"));
    // The first issuance removed from the log: detected.
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(
        &log,
        text.lines()
            .skip(1)
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let bad = meterbench(&[
        "verify",
        "--log",
        log.to_str().unwrap(),
        "--key",
        public.to_str().unwrap(),
    ]);
    assert_eq!(
        bad.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&bad.stdout)
    );
}

#[test]
fn junit_and_summary_say_what_failed() {
    let reports = tempfile::tempdir().unwrap();
    let r = reports.path().to_str().unwrap();
    let fault = "{error_bump: {port: right, from_a: 4, to_a: 6, cos_phi: 1, error_percent: 1.6}}";
    assert_eq!(
        meterbench(&["run", "--quiet", "--reports", r, "--sim-fault", fault])
            .status
            .code(),
        Some(1)
    );
    let bundle = &bundles(reports.path())[0];
    // As a CI system reads it: the DUT out of its limits at one point is one failure.
    let suite = junit_suite(bundle);
    assert_eq!((suite.failures, suite.errors), (1, 0));
    assert_eq!(
        (suite.tests, suite.cases.len()),
        (30, 30),
        "a case per step and port"
    );
    let failed: Vec<&str> = suite
        .cases
        .iter()
        .filter(|c| c.status.is_failure())
        .map(|c| c.original_name.as_str())
        .collect();
    assert_eq!(failed, ["Iref PF1 [right]"]);
    assert!(
        suite.time > 100.0,
        "the run's time on the bench clock: {}",
        suite.time
    );
    let property = |k: &str| suite.properties.hashmap.get(k).cloned().unwrap_or_default();
    assert_eq!(property("verdict"), "FAIL");
    assert_eq!(property("serial_number"), "SIM-CPIM-000123");
    assert_eq!(property("station"), "sim-1");
    assert_eq!(property("procedure"), "en50470-3-class-b 1.0.0");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["outcome"], "FAIL");
    let failed: Vec<&serde_json::Value> = summary["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["conformity"] == "fail")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["port"], "right");
}

#[test]
fn elements_that_disagree_fail_the_single_phase_check_alone_in_every_output() {
    let reports = tempfile::tempdir().unwrap();
    let r = reports.path().to_str().unwrap();
    // L1 reads 1.2 % low and L2 1.9 % high on the left meter: every point within its
    // limit, L2 alone 1.63 % from the balanced load.
    let out = meterbench(&[
        "run",
        "--quiet",
        "--reports",
        r,
        "--sim-fault",
        "{element_error: {port: left, phase: L1, error_percent: -1.2}}",
        "--sim-fault",
        "{element_error: {port: left, phase: L2, error_percent: 1.9}}",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("VERDICT: FAIL — out of limits: Single-phase vs balanced (Iref PF1)"),
        "{stdout}"
    );
    let row = stdout
        .lines()
        .find(|l| l.starts_with("Single-phase vs b") && l.contains("left"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(row.ends_with("FAIL: L2"), "{row}");

    let bundle = &bundles(reports.path())[0];
    let verified = meterbench(&["verify", bundle.to_str().unwrap()]);
    assert_eq!(verified.status.code(), Some(0));
    // Paper names its bundle and the key that signs it.
    let manifest = std::fs::read_to_string(bundle.join("MANIFEST.sha256")).unwrap();
    let key_id = manifest
        .lines()
        .find_map(|l| l.strip_prefix("# key-id: "))
        .unwrap();
    let html = std::fs::read_to_string(bundle.join("certificate.html")).unwrap();
    assert!(html.contains("<h1>Calibration certificate</h1>"));
    let run_id = bundle.file_name().unwrap().to_str().unwrap();
    assert!(
        html.contains(&format!(
            "signed bundle {run_id}, signed with key id {key_id}"
        )),
        "{key_id}"
    );
    let junit = std::fs::read_to_string(bundle.join("junit.xml")).unwrap();
    assert!(
        junit.contains("failures=\"1\"")
            && junit.contains("Single-phase vs balanced (Iref PF1) [left]")
            && junit.contains("Iref PF1 L2 +1.6"),
        "{junit}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("summary.json")).unwrap())
            .unwrap();
    let failed: Vec<&serde_json::Value> = summary["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["conformity"] == "fail")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["kind"], "load_difference");
    assert_eq!(failed[0]["port"], "left");
    assert_eq!(failed[0]["mpe_percent"], 1.5);
    let worst = failed[0]["error_percent"].as_f64().unwrap();
    assert!((worst - 1.63).abs() < 0.01, "{worst}");
}

#[test]
fn a_missing_bundle_or_log_is_bad_input_and_verdicts_take_any_case() {
    let missing = meterbench(&["verify", "/nonexistent/run"]);
    assert_eq!(missing.status.code(), Some(2));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("/nonexistent/run: no such folder") && err.contains("MANIFEST.sha256"),
        "{err}"
    );
    let file = meterbench(&["verify", "Cargo.toml"]);
    assert_eq!(file.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&file.stderr).contains("Cargo.toml: not a folder"));
    let log = meterbench(&["verify", "--log", "/nonexistent/issuance-log.jsonl"]);
    assert_eq!(log.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&log.stderr).contains("no such file"));

    let store = tempfile::tempdir().unwrap();
    for verdict in ["FAIL", "fail", "Pass"] {
        let out = Command::new(env!("CARGO_BIN_EXE_meterbench"))
            .args(["runs", "list", "--verdict", verdict])
            .env("METERBENCH_STORE", store.path().join("store"))
            .current_dir(repo())
            .output()
            .unwrap();
        // Accepted as a verdict; the empty store is what stops it, and it says how a
        // store comes to be.
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("invalid value"), "{verdict}: {err}");
        assert!(
            err.contains("no store at") && err.contains("meterbench runs ingest BUNDLE"),
            "{err}"
        );
    }
}

#[test]
fn runs_are_filed_in_the_store_listed_shown_and_audited() {
    let reports = tempfile::tempdir().unwrap();
    let dir = reports.path().to_str().unwrap();
    let store = reports.path().join("store");
    let store_s = store.to_str().unwrap();
    let pass = meterbench(&[
        "run",
        "--quiet",
        "--station",
        "hw/stations/sim-inprocess.yaml",
        "--reports",
        dir,
    ]);
    assert_eq!(
        pass.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&pass.stderr)
    );
    let fail = meterbench(&[
        "run",
        "--quiet",
        "--station",
        "hw/stations/sim-inprocess.yaml",
        "--reports",
        dir,
        "--sim-fault",
        "{error_bump: {port: right, from_a: 4, to_a: 6, cos_phi: 1, error_percent: 1.6}}",
    ]);
    assert_eq!(
        fail.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&fail.stderr)
    );
    assert!(String::from_utf8_lossy(&fail.stdout).contains("filed in the results store"));

    // The raw samples are part of the signed bundle.
    let runs = bundles(reports.path());
    assert_eq!(runs.len(), 2);
    for b in &runs {
        let manifest = std::fs::read_to_string(b.join("MANIFEST.sha256")).unwrap();
        assert!(manifest.contains("samples.parquet"), "{manifest}");
    }
    let fail_id = runs
        .iter()
        .map(|b| b.file_name().unwrap().to_str().unwrap().to_string())
        .find(|id| {
            let r: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(reports.path().join(id).join("record.json")).unwrap(),
            )
            .unwrap();
            r["outcome"] == "FAIL"
        })
        .expect("a FAIL run");

    let list = meterbench(&[
        "runs",
        "--store",
        store_s,
        "list",
        "--verdict",
        "fail",
        "--json",
    ]);
    assert_eq!(
        list.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["run_id"], fail_id.as_str());
    let table = meterbench(&[
        "runs",
        "--store",
        store_s,
        "list",
        "--serial",
        "SIM-CPIM-000123",
    ]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("2 runs") && table.contains("PASS") && table.contains("FAIL"),
        "{table}"
    );
    let none = meterbench(&[
        "runs",
        "--store",
        store_s,
        "list",
        "--serial",
        "NO-SUCH-SERIAL",
    ]);
    assert!(String::from_utf8_lossy(&none.stdout).contains("0 runs"));

    let show = meterbench(&["runs", "--store", store_s, "show", &fail_id]);
    let shown = String::from_utf8_lossy(&show.stdout);
    assert_eq!(show.status.code(), Some(0), "{shown}");
    assert!(shown.contains("FAIL: out of limits: Iref PF1"), "{shown}");
    let rejected: Vec<&str> = shown.lines().filter(|l| l.contains("REJECTED")).collect();
    assert_eq!(rejected.len(), 1, "{shown}");
    assert!(
        rejected[0].contains("Iref PF1") && rejected[0].contains("right"),
        "{shown}"
    );
    let missing = meterbench(&["runs", "--store", store_s, "show", "no-such-run"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no run \"no-such-run\""));

    // Filing a bundle again is safe: still two runs.
    let again = meterbench(&[
        "runs",
        "--store",
        store_s,
        "ingest",
        runs[0].to_str().unwrap(),
    ]);
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let list = meterbench(&["runs", "--store", store_s, "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);

    let today = chrono_today();
    let out = reports.path().join("audit");
    let audit = meterbench(&[
        "audit",
        "--store",
        store_s,
        "--from",
        &today,
        "--to",
        &today,
        "--out",
        out.to_str().unwrap(),
        "--yield-target",
        "0.955",
    ]);
    let said = String::from_utf8_lossy(&audit.stdout);
    assert_eq!(
        audit.status.code(),
        Some(0),
        "{said}\n{}",
        String::from_utf8_lossy(&audit.stderr)
    );
    assert!(
        said.contains("2 runs (1 PASS, 1 FAIL, 0 NOT DECIDABLE, 0 ERROR, 0 ABORTED)"),
        "{said}"
    );
    // Two runs are far too few for a process capability: withheld, not stated (the
    // shipped audit settings ask for 30 results).
    assert!(
        said.contains("Cpk withheld at 22 load points with fewer than 30 results"),
        "{said}"
    );
    assert!(!said.contains("below 1.33"), "{said}");
    // First attempts are counted by serial and procedure, and said so: the PASS came first.
    assert!(
        said.contains("first-pass yield 100.0 % over 1 first attempts (serial and procedure)"),
        "{said}"
    );
    let pdf = std::fs::read(out.join("audit.pdf")).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    // The PDF links to what it summarises, beside it.
    for file in ["audit.html", "problem-runs.csv"] {
        let uri = format!("/URI({file})");
        assert!(
            pdf.windows(uri.len()).any(|w| w == uri.as_bytes()),
            "no link to {file} in the PDF"
        );
    }
    let html = std::fs::read_to_string(out.join("audit.html")).unwrap();
    // Every outcome has its column, so the columns add up to the runs; the target as given.
    assert!(html.contains("<th>NOT DECIDABLE</th>") && html.contains("<th>first attempts</th>"));
    assert!(
        html.contains("target of\n95.5 %"),
        "the yield target as given"
    );
    assert!(
        html.contains(&fail_id),
        "the FAIL run is listed with its bundle"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("audit.json")).unwrap()).unwrap();
    assert_eq!(summary["problem_runs"][0]["run_id"], fail_id.as_str());

    // The audit of today's runs into `into`, with `more` options.
    let audit_today = |into: &Path, more: &[&str]| {
        let mut args = vec![
            "audit", "--store", store_s, "--from", &today, "--to", &today,
        ];
        args.extend(["--out", into.to_str().unwrap()]);
        args.extend(more);
        meterbench(&args)
    };
    // Targets outside their range are bad input, refused before anything is read.
    for (flag, value) in [
        ("--yield-target", "99"),
        ("--yield-target", "0"),
        ("--cpk-min", "NaN"),
        ("--cpk-min", "-1"),
    ] {
        let refused = audit_today(&out, &[&format!("{flag}={value}")]);
        let err = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(err.contains(&format!("{flag} {value}")), "{err}");
    }

    // A two-digit year is no year 26 (a signed certificate would carry 0026-11-30), and a
    // range that ends before it starts holds no run: both bad input, for every command
    // that takes a day.
    let year_26 = [
        vec![
            "audit", "--store", store_s, "--from", "26-12-01", "--to", &today,
        ],
        vec!["runs", "list", "--store", store_s, "--from", "26-12-01"],
        vec![
            "run",
            "--quiet",
            "--customer",
            "X",
            "--received",
            "26-11-30",
        ],
    ];
    for args in &year_26 {
        let refused = meterbench(args);
        let err = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("is not a date written YYYY-MM-DD (four-digit year)"),
            "{args:?}: {err}"
        );
    }
    // An output folder under a file: said once, with its path.
    let a_file = std::env::temp_dir().join(format!("meterbench-a-file-{}", std::process::id()));
    std::fs::write(&a_file, "").unwrap();
    let under_a_file = a_file.join("sub");
    let refused = audit_today(&under_a_file, &[]);
    let err = String::from_utf8_lossy(&refused.stderr);
    std::fs::remove_file(&a_file).unwrap();
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert_eq!(
        err.matches("Not a directory").count(),
        1,
        "the cause said once: {err}"
    );
    assert!(err.contains(under_a_file.to_str().unwrap()), "{err}");
    // A run that is none: said in words, not as a file and line.
    let no_run = meterbench(&["retest", "no-such-run", "--step", "Iref PF1"]);
    let err = String::from_utf8_lossy(&no_run.stderr);
    assert_eq!(no_run.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`no-such-run` is no run") && !err.contains(":0:0"),
        "{err}"
    );
    let reversed = meterbench(&[
        "runs",
        "list",
        "--store",
        store_s,
        "--from",
        "2026-12-08",
        "--to",
        "2026-12-01",
    ]);
    let err = String::from_utf8_lossy(&reversed.stderr);
    assert_eq!(reversed.status.code(), Some(2), "{err}");
    assert!(err.contains("the range ends before it starts"), "{err}");
}

/// Today's UTC date, as the store dates runs.
fn chrono_today() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The bundle's junit.xml read by a JUnit parser: its one suite.
fn junit_suite(bundle: &std::path::Path) -> junit_parser::TestSuite {
    let file = std::fs::File::open(bundle.join("junit.xml")).unwrap();
    let mut suites = junit_parser::from_reader(std::io::BufReader::new(file)).unwrap();
    assert_eq!(suites.suites.len(), 1);
    suites.suites.remove(0)
}

#[test]
fn junit_tells_a_bench_fault_from_a_dut_failure_and_skips_what_was_not_reached() {
    let reports = tempfile::tempdir().unwrap();
    let r = reports.path().to_str().unwrap();
    let out = meterbench(&[
        "run",
        "--quiet",
        "--reports",
        r,
        "--sim-fault",
        "{dead_led: {port: left}}",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let suite = junit_suite(&bundles(reports.path())[0]);
    let status = |name: &str| {
        let c = suite
            .cases
            .iter()
            .find(|c| c.original_name == name)
            .unwrap_or_else(|| panic!("no test case {name}"));
        (
            c.status.is_success(),
            c.status.is_failure(),
            c.status.is_error(),
            c.status.is_skipped(),
        )
    };
    // The dark LED is the bench's error; the healthy port measured and passed.
    assert_eq!(status("Scanning heads [left]"), (false, false, true, false));
    assert_eq!(
        status("Scanning heads [right]"),
        (true, false, false, false)
    );
    // Nothing after it was reached: skipped, not missing.
    assert_eq!(
        status("Starting current [all]"),
        (false, false, false, true)
    );
    assert_eq!(status("Imax PF1 [all]"), (false, false, false, true));
    assert_eq!((suite.failures, suite.errors), (0, 1));
    let skipped = suite.cases.iter().filter(|c| c.status.is_skipped()).count();
    assert_eq!(skipped, 14, "every step after the scanning heads");
}
