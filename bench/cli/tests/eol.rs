//! The CPIM1000 end-of-line procedure from the command line, as a production line runs
//! it: unattended from an answers file, and stopped at an unanswered prompt.

use meterbench_runner::Outcome;
use meterbench_runner::record::{PortResult, RunRecord};

mod common;
use common::repo;

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
        stdout
            .lines()
            .any(|l| l.starts_with("Software identity (LCD)")
                && l.contains("v1.8.4 LRS A3F09C4E")
                && l.ends_with("certified")),
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

    // A mistyped hash in the file: refused when the run is loaded, naming the file, line
    // and key; no run is started, nothing is switched on, nothing is reported.
    let text = std::fs::read_to_string(repo().join("hw/answers/sim-cpim1000.yaml")).unwrap();
    let bad = reports.path().join("bad-answers.yaml");
    std::fs::write(&bad, text.replace("\"A3F09C4E\"", "\"A3F09C4\"")).unwrap();
    let entries = || {
        let mut v: Vec<_> = std::fs::read_dir(reports.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    let before = entries();
    let out = run(bad.to_str().unwrap());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr
            .contains("bad-answers.yaml:9:17: answer to `lcd.lrs_hash` not accepted: 7 characters")
            && stderr.contains("refused before anything is switched on"),
        "{stderr}"
    );
    assert_eq!(entries(), before, "a refused run leaves no report");

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
