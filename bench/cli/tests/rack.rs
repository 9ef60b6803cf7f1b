//! `meterbench run` on a rack station, as a technician runs it: per-position progress,
//! a results table per position, a session verdict, a signed bundle per device; the
//! retest of a stored run's point in a later session; positions and serials refused
//! before anything is switched on.

mod common;
use common::{repo, run_folders};
use std::path::Path;

fn run(args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args(args)
        .arg("--reports")
        .arg(dir.join("reports"))
        .env("METERBENCH_SIGNING_KEY", dir.join("key.pem"))
        .current_dir(repo())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `meterbench verify` of a bundle of this test's bench (its key in `dir`): signed by it
/// and in its issuance log.
fn verified(dir: &Path, bundle: &Path) {
    let key = dir.join("key.pub.pem");
    let (code, out, err) = common::meterbench(&[
        "verify",
        "--key",
        key.to_str().unwrap(),
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("issued as entry"), "{out}");
}

#[test]
fn a_mixed_rack_runs_each_kind_with_a_certificate_per_device() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let (code, stdout, stderr) = run(
        &[
            "run",
            "--quiet",
            "--station",
            "hw/stations/sim-rack-mixed.yaml",
            "--events",
            events.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    // The event stream as JSON lines: every line an event, per position and port.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = lines.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"session_started"));
    assert_eq!(kinds.last(), Some(&"session_finished"));
    assert_eq!(
        kinds.iter().filter(|k| **k == "position_finished").count(),
        3
    );
    let progress_ports: std::collections::BTreeSet<(u64, String)> = lines
        .iter()
        .filter(|e| e["event"] == "progress")
        .flat_map(|e| e["ports"].as_array().unwrap().clone())
        .map(|p| {
            (
                p["position"].as_u64().unwrap(),
                p["port"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(progress_ports.len(), 6, "{progress_ports:?}");
    assert!(
        lines
            .iter()
            .all(|e| e["at_utc"].is_string() && e["bench_s"].is_number())
    );
    // Progress names each position; a results table per position; a session verdict.
    for p in 1..=3 {
        assert!(
            stderr.contains(&format!("PASS  P{p}  Iref PF1")),
            "{stderr}"
        );
        assert!(
            stdout.contains(&format!("SIM-MIX-000{p} | position {p} | class B")),
            "{stdout}"
        );
    }
    assert!(stdout.contains("SESSION VERDICT: PASS"), "{stdout}");
    let folders = run_folders(&dir.path().join("reports"));
    assert_eq!(folders.len(), 3, "{folders:?}");
    for f in &folders {
        verified(dir.path(), f);
    }
    // The same station's current sensors, with their fixture.
    let (code, stdout, stderr) = run(
        &[
            "run",
            "--quiet",
            "--station",
            "hw/stations/sim-rack-mixed.yaml",
            "--procedure",
            "procedures/csp1-accuracy.yaml",
            "--fixture",
            "fixtures/csp1.yaml",
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("SIM-MIX-CSP1-0004 | position 4")
            && stdout.contains("SIM-MIX-CSP1-0005 | position 5"),
        "{stdout}"
    );
    assert_eq!(run_folders(&dir.path().join("reports")).len(), 5);
}

#[test]
fn a_failed_point_is_retested_now_and_in_a_later_session() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run(
        &[
            "run",
            "--quiet",
            "--station",
            "hw/stations/sim-rack-mixed.yaml",
            "--retest-failed",
            "--sim-fault",
            "{error_bump: {position: 2, port: right, from_a: 4, to_a: 6, cos_phi: 1, error_percent: 1.6}}",
        ],
        dir.path(),
    );
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("Iref PF1 #2 ") && l.contains(" right ")),
        "{stdout}"
    );
    assert!(
        stdout.contains("deviation: step `Iref PF1` measured again (attempt 2)"),
        "{stdout}"
    );
    let failed = run_folders(&dir.path().join("reports"))
        .into_iter()
        .find(|p| p.to_str().unwrap().contains("-p2-"))
        .unwrap();
    // A later session, the meter re-seated: the point passes; a new run amends the old.
    // The single-phase points were measured with the bump and not again: against the
    // re-seated balanced point they now differ by 1.6 %, and the check, taken again from
    // the latest attempts, says so.
    // The failed run's Iref PF1 measured again in a later session, as a technician asks.
    let retest_failed = || {
        run(
            &[
                "retest",
                failed.file_name().unwrap().to_str().unwrap(),
                "--step",
                "Iref PF1",
                "--quiet",
            ],
            dir.path(),
        )
    };
    let (code, stdout, stderr) = retest_failed();
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let again = stdout
        .lines()
        .find(|l| l.starts_with("Iref PF1 #3") && l.contains("right"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(again.ends_with("pass"), "{again}");
    assert!(
        stdout.contains("VERDICT: FAIL — out of limits: Single-phase vs balanced (Iref PF1)"),
        "{stdout}"
    );
    let amended = run_folders(&dir.path().join("reports"))
        .into_iter()
        .find(|p| {
            let r: serde_json::Value =
                serde_json::from_slice(&std::fs::read(p.join("record.json")).unwrap()).unwrap();
            !r["amends"].is_null()
        })
        .unwrap();
    assert!(amended.to_str().unwrap().contains("-p2-SIM-MIX-0002"));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(amended.join("record.json")).unwrap()).unwrap();
    assert_eq!(
        record["amends"].as_str(),
        failed.file_name().unwrap().to_str()
    );
    // ISO/IEC 17025 7.8.8: the new document names the one it replaces, in the DCC too.
    let dcc = std::fs::read_to_string(amended.join("dcc.xml")).unwrap();
    assert!(
        dcc.contains(&format!(
            "<dcc:replacedUniqueIdentifier>{}</dcc:replacedUniqueIdentifier>",
            failed.file_name().unwrap().to_str().unwrap()
        )) && dcc.contains("<dcc:typeOfChange>amended</dcc:typeOfChange>"),
        "{dcc}"
    );
    verified(dir.path(), &amended);
    // The store holds the points the amending run measured (the retested point and the
    // check taken again from it), and says which run the others are filed with.
    let (code, shown, stderr) = run(
        &[
            "runs",
            "show",
            amended.file_name().unwrap().to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{shown}\n{stderr}");
    assert!(
        shown.contains(&format!(
            "amends     run {}: its points carried over here are filed with it",
            failed.file_name().unwrap().to_str().unwrap()
        )) && shown.contains("accuracy points measured in this run"),
        "{shown}"
    );
    let filed: Vec<&str> = shown
        .lines()
        .skip_while(|l| !l.starts_with("accuracy points"))
        .skip(1)
        .collect();
    assert!(
        !filed.is_empty() && filed.iter().all(|l| l.trim_start().starts_with("Iref PF1")),
        "{shown}"
    );

    // Once amended, the stored run is not measured again: its amendment is.
    let (code, stdout, stderr) = retest_failed();
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(stderr.contains("was already amended by run"), "{stderr}");
    // Nor when it is named by its folder and the new run would go to another reports
    // folder (found by a user trial: the amendment was looked for there only).
    let elsewhere = std::process::Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args(["retest"])
        .arg(&failed)
        .args(["--step", "Iref PF1", "--quiet", "--reports"])
        .arg(dir.path().join("elsewhere"))
        .env("METERBENCH_SIGNING_KEY", dir.path().join("key.pem"))
        .current_dir(repo())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&elsewhere.stderr);
    assert_eq!(elsewhere.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("was already amended by run"), "{stderr}");
    assert!(
        !dir.path().join("elsewhere").exists()
            || run_folders(&dir.path().join("elsewhere")).is_empty()
    );
    // Named relative to the current folder (from inside the reports folder): the same.
    let relative = std::process::Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args(["retest", failed.file_name().unwrap().to_str().unwrap()])
        .args(["--step", "Iref PF1", "--quiet", "--reports"])
        .arg(dir.path().join("elsewhere"))
        .env("METERBENCH_SIGNING_KEY", dir.path().join("key.pem"))
        .current_dir(dir.path().join("reports"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&relative.stderr);
    assert_eq!(relative.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("was already amended by run"), "{stderr}");
    // A passing run's point, or a point that passed, is not measured again.
    let passed = run_folders(&dir.path().join("reports"))
        .into_iter()
        .find(|p| p.to_str().unwrap().contains("-p1-"))
        .unwrap();
    let (code, _, stderr) = run(
        &[
            "retest",
            passed.file_name().unwrap().to_str().unwrap(),
            "--step",
            "Iref PF1",
            "--quiet",
        ],
        dir.path(),
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("ended PASS: only a run that failed"),
        "{stderr}"
    );
    // The store knows of the amendment, as a station sharing it would see it: the
    // amending run's folder gone from the reports, a retest is still refused.
    let (code, shown, _) = run(
        &[
            "runs",
            "show",
            failed.file_name().unwrap().to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 0);
    assert!(
        shown.contains(&format!(
            "amended by run {}",
            amended.file_name().unwrap().to_str().unwrap()
        )),
        "{shown}"
    );
    std::fs::rename(&amended, dir.path().join("moved-away")).unwrap();
    let (code, stdout, stderr) = retest_failed();
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("was already amended by run") && stderr.contains("in the results store"),
        "{stderr}"
    );
}

#[test]
fn positions_and_serials_that_do_not_fit_the_rack_are_refused_before_switching_on() {
    let dir = tempfile::tempdir().unwrap();
    for (args, expect) in [
        (
            vec!["--serial", "CP-1"],
            "give each serial with --serial POSITION=SERIAL",
        ),
        (vec!["--positions", "9"], "has no position 9"),
        (
            vec!["--sim-fault", "{dead_led: {port: right}}"],
            "names no position",
        ),
    ] {
        let mut all = vec![
            "run",
            "--quiet",
            "--station",
            "hw/stations/sim-rack-mixed.yaml",
        ];
        all.extend(args);
        let (code, stdout, stderr) = run(&all, dir.path());
        assert_eq!(code, 2, "{stdout}\n{stderr}");
        assert!(stderr.contains(expect), "{expect}: {stderr}");
        assert!(!dir.path().join("reports").exists(), "nothing was run");
    }
}
