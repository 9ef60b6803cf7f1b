//! `meterbench panel` refuses what would expose the bench: another address than loopback
//! without a password in the station, and a password written where its hash belongs.
//! The panel itself is tested in a real browser (bench/panel/tests/browser.rs).

mod common;

use common::{meterbench, repo};

#[test]
fn another_address_than_loopback_needs_a_password_in_the_station() {
    let station = repo().join("hw/stations/sim.yaml");
    let (code, _, err) = meterbench(&[
        "panel",
        "--station",
        station.to_str().unwrap(),
        "--listen",
        "0.0.0.0:0",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("0.0.0.0:0") && err.contains("password_sha256") && err.contains("127.0.0.1"),
        "{err}"
    );
}

#[test]
fn a_password_where_its_hash_belongs_is_refused_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("hw/stations/sim.yaml")).unwrap();
    let station = dir.path().join("station.yaml");
    std::fs::write(
        &station,
        format!("{text}\npanel:\n  password_sha256: hunter2\n"),
    )
    .unwrap();
    let line = text.lines().count() + 3;
    let (code, _, err) = meterbench(&[
        "panel",
        "--station",
        station.to_str().unwrap(),
        "--listen",
        "0.0.0.0:0",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("station.yaml:{line}:")) && err.contains("never the password"),
        "{err}"
    );
}

#[test]
fn hash_password_prints_the_sha256_a_station_takes() {
    use std::io::Write as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args(["panel", "--hash-password"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"abc\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    // SHA-256("abc"), FIPS 180-2 appendix B.1.
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}
