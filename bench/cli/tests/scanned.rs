//! A serial number as a scanner sends it: a GS1 DataMatrix's element string (with its
//! FNC1 separators, control character 0x1D) yields its serial (AI 21), and the record,
//! the DCC and the JUnit file hold that serial only; any other control character is
//! refused before anything is switched on.

mod common;
use common::repo;
use std::path::Path;
use std::process::Output;

fn eol(reports: &Path, serial: &str) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args([
            "run",
            "--quiet",
            "--procedure",
            "procedures/cpim1000-eol.yaml",
            "--answers",
            "hw/answers/sim-cpim1000.yaml",
            "--serial",
            serial,
            "--reports",
        ])
        .arg(reports)
        .env("METERBENCH_SIGNING_KEY", reports.with_file_name("key.pem"))
        .current_dir(repo())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_scanned_gs1_code_gives_its_serial_and_a_control_character_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let scanned = "]d20104012345678901\u{1d}21SIM-CPIM-000123\u{1d}17261231";
    let out = eol(&reports, scanned);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let folder = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("record.json").is_file())
        .unwrap();
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("record.json")).unwrap()).unwrap();
    assert_eq!(record["dut"]["serial_number"], "SIM-CPIM-000123");
    for xml in ["dcc.xml", "junit.xml"] {
        let text = std::fs::read_to_string(folder.join(xml)).unwrap();
        assert!(
            !text
                .chars()
                .any(|c| c.is_control() && !"\n\r\t".contains(c)),
            "{xml} holds a control character"
        );
        assert!(text.contains("SIM-CPIM-000123"), "{xml}");
    }

    let refused = dir.path().join("refused");
    for bad in ["SIM\u{7}CPIM", "SIM\u{1d}CPIM"] {
        let out = eol(&refused, bad);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("serial number"), "{stderr}");
        assert!(!refused.exists(), "nothing was started");
    }
}

/// `meterbench run --ask` of the Eichrecht procedure with `typed` on its input; its exit
/// code and what it printed.
fn asked(typed: &[u8]) -> (Option<i32>, String) {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args([
            "run",
            "--quiet",
            "--procedure",
            "procedures/cpim1000-eichrecht.yaml",
            "--ask",
            "--reports",
        ])
        .arg(&reports)
        .env("METERBENCH_SIGNING_KEY", dir.path().join("key.pem"))
        .current_dir(repo())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(typed).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let record = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().path().join("record.json"))
        .find(|p| p.is_file())
        .map(|p| std::fs::read_to_string(p).unwrap())
        .unwrap_or_default();
    (
        out.status.code(),
        format!(
            "{}\n{}\n{record}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A scan of another serial number is asked again once (a misread label or a slip is no
/// reason to fail a device); another one again fails the inspection of the run's device
/// at once, without its seals and labels.
#[test]
fn a_wrongly_scanned_serial_is_scanned_again_then_fails_the_device_without_asking_more() {
    // Two wrong scans, and nothing more: a further question would meet the end of the
    // input.
    let (code, said) = asked(b"SIM-CPIM-999999\nSIM-CPIM-999998\n");
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(
            "The scanned serial number SIM-CPIM-999999 is not the one this run is for \
             (SIM-CPIM-000123): scan the serial number again"
        ),
        "{said}"
    );
    assert!(
        said.contains("inspection failed")
            && said.contains("the scanned serial number SIM-CPIM-999998 is not the one this run is for (SIM-CPIM-000123); the first scan read SIM-CPIM-999999")
            && said.contains("no energy test was run"),
        "{said}"
    );
    // A wrong scan, then the right one: the inspection goes on to the seals and labels
    // (all confirmed), and the identity's readings, where this input ends.
    let mut typed = b"SIM-CPIM-999999\nSIM-CPIM-000123\n".to_vec();
    typed.extend(b"yes\n".repeat(6));
    let (code, said) = asked(&typed);
    assert_eq!(code, Some(2), "{said}");
    assert!(
        !said.contains("inspection failed") && said.contains("seal."),
        "{said}"
    );
    // The record keeps the first scan.
    assert!(
        said.contains("the serial number was scanned again: the first scan read SIM-CPIM-999999"),
        "{said}"
    );
}
