//! Helpers shared by the integration tests.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether `openssl` can be run; tests that need it print why they skip.
pub fn openssl_available() -> bool {
    let found = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        println!("SKIPPED: `openssl` is not on PATH, the OpenSSL recipe is not exercised");
    }
    found
}

pub fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("verify-with-openssl.sh")
}

/// Runs the OpenSSL-only recipe on `dir`; returns (success, stdout + stderr).
pub fn run_openssl_script(dir: &Path, expected_key_id: Option<&str>) -> (bool, String) {
    let mut command = Command::new("sh");
    command.arg(script_path()).arg(dir);
    if let Some(id) = expected_key_id {
        command.arg(id);
    }
    let output = command.output().expect("sh runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Writes a small bundle of the kinds of files a run produces, some in subfolders.
pub fn make_bundle(dir: &Path) {
    let files: [(&str, &[u8]); 7] = [
        (
            "run.json",
            br#"{"run_id":"2025-06-01-0001","outcome":"PASS"}"#,
        ),
        (
            "certificate.html",
            b"<html><body><h1>Calibration certificate</h1></body></html>\n",
        ),
        (
            "certificate.pdf",
            b"%PDF-1.7\n\x00\x01\x02\xff binary body\n%%EOF\n",
        ),
        (
            "plots/error.png",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR fake image data",
        ),
        (
            "plots/svg/error curve.svg",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>",
        ),
        (
            "dcc/dcc.xml",
            b"<?xml version=\"1.0\"?>\n<dcc:digitalCalibrationCertificate/>\n",
        ),
        (".run-id", b"2025-06-01-0001"),
    ];
    for (path, content) in files {
        let full = dir.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }
}

/// Every file below `dir`, relative, `/`-separated, sorted.
pub fn all_files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
