//! `meterbench p1 decode` on the CSP1 manual's example and on a damaged capture, and
//! `meterbench p1 read` on a pseudo-terminal fed with CSP1 telegrams.

use meterbench_instruments::transport::serial::{SerialPort as _, TTYPort};
use meterbench_p1::{Csp1Params, encode_csp1_telegram};
use std::io::Write as _;

mod common;
use common::{meterbench, repo};

#[test]
fn decode_prints_the_manuals_example_as_json() {
    let (code, out, err) = meterbench(&[
        "p1",
        "decode",
        "bench/p1/tests/data/csp1-example-telegram.p1",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 1);
    let t = &items[0]["telegram"];
    assert!(t["crc"].is_number(), "{t}");
    let currents: Vec<String> = t["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["raw"].as_str().unwrap().ends_with("*A)"))
        .map(|l| l["raw"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(currents, ["(024*A)", "(024*A)", "(024*A)"]);
    assert!(err.contains("1 telegrams, 0 warnings, 0 errors"), "{err}");
}

#[test]
fn decode_reports_a_damaged_capture_with_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"junk".to_vec();
    let mut t = std::fs::read(repo().join("bench/p1/tests/data/csp1-example-telegram.p1")).unwrap();
    let i = t.iter().position(|&b| b == b'(').unwrap();
    t[i + 1] ^= 0x02;
    bytes.extend(t);
    let f = dir.path().join("capture.p1");
    std::fs::write(&f, bytes).unwrap();
    let (code, out, err) = meterbench(&["p1", "decode", f.to_str().unwrap()]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    // Bytes before the first telegram lose nothing: a warning; the damaged telegram is
    // the error.
    assert_eq!(v[0]["warning"]["offset"], 0);
    assert!(
        v[0]["warning"]["message"]
            .as_str()
            .unwrap()
            .contains("skipped 4 bytes")
    );
    assert_eq!(v[1]["error"]["offset"], 4);
    assert!(
        v[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("CRC mismatch")
    );
    assert!(err.contains("1 warnings, 1 errors"), "{err}");
    // Bytes with no telegram at all (the wrong file, the wrong baud rate), and nothing:
    // no capture whose telegrams are all valid.
    for (name, bytes) in [
        ("hello.p1", &b"hello world\r\n"[..]),
        ("empty.p1", &b""[..]),
    ] {
        let f = dir.path().join(name);
        std::fs::write(&f, bytes).unwrap();
        let (code, _, err) = meterbench(&["p1", "decode", f.to_str().unwrap()]);
        assert_eq!(code, 1, "{name}: {err}");
        assert!(err.contains("no P1 telegram in it"), "{name}: {err}");
    }
    let (code, _, err) = meterbench(&["p1", "decode", "/nonexistent.p1"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent.p1"), "{err}");
}

#[test]
fn read_shows_telegrams_from_a_port() {
    let (mut master, slave) = TTYPort::pair().unwrap();
    let path = slave.name().unwrap();
    let feeder = std::thread::spawn(move || {
        for amps in [5.0, 6.0, 7.0] {
            let p = Csp1Params {
                currents: [amps, 2.0 * amps, 3.0 * amps],
                ..Csp1Params::default()
            };
            if master.write_all(&encode_csp1_telegram(&p)).is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        // Keep the far end open until the reader is done.
        std::thread::sleep(std::time::Duration::from_secs(2));
    });
    // A pseudo-terminal has no modem lines: the request line is not driven here.
    let (code, out, err) = meterbench(&[
        "p1",
        "read",
        &path,
        "--request",
        "none",
        "--count",
        "3",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (k, l) in lines.iter().enumerate() {
        let raw: Vec<&str> = l["telegram"]["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["raw"].as_str().unwrap())
            .filter(|r| r.ends_with("*A)"))
            .collect();
        let a = 5 + k;
        assert_eq!(
            raw,
            [
                format!("({a:03}*A)"),
                format!("({:03}*A)", 2 * a),
                format!("({:03}*A)", 3 * a)
            ]
        );
        assert!(l["received_utc"].as_str().unwrap().ends_with('Z'));
    }
    assert!(err.contains("3 telegrams, 0 CRC failures"), "{err}");
    drop(slave);
    feeder.join().unwrap();
}
