//! The panel's HTTP interface without a browser: a run started through the API is
//! filed into a shared PostgreSQL store (a real server, `meterbench-testpg`) and the
//! history reads it back from there; requests from another site or for another host
//! are refused.

use meterbench_panel::{Panel, PanelConfig};
use meterbench_session::paths::{BenchHome, HomeOrigin};
use meterbench_store::StoreLocation;
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn panel(reports: &Path, store: StoreLocation) -> Panel {
    let keys = reports.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let key =
        meterbench_signing::generate_key(&keys.join("key.pem"), &keys.join("key.pub.pem")).unwrap();
    Panel::start(
        PanelConfig {
            home: BenchHome::at(&repo(), HomeOrigin::Flag),
            station: repo().join("hw/stations/sim.yaml"),
            listen: "127.0.0.1:0".parse().unwrap(),
            reports: reports.to_path_buf(),
            store,
            signer: None,
            realtime: false,
        },
        key.clone(),
        meterbench_signing::Keyring::single(key.verifying_key(), "the test's key"),
    )
    .unwrap()
}

/// One HTTP/1.1 request; the status code and the body.
fn request(at: SocketAddr, head: &str, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(at).unwrap();
    write!(
        s,
        "{head}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn a_run_from_the_panel_is_filed_in_postgresql_and_its_history_read_from_there() {
    let dir = tempfile::tempdir().unwrap();
    let url = meterbench_testpg::database();
    let panel = panel(dir.path(), StoreLocation::Postgres(url));
    let at = panel.address();
    let (status, body) = request(
        at,
        &format!("POST /api/start HTTP/1.1\r\nHost: {at}"),
        r#"{"procedure": "cpim1000-eol.yaml", "fixture": "cpim1000.yaml"}"#,
    );
    assert_eq!(status, 202, "{body}");
    let start = Instant::now();
    while panel.busy() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the run never ended"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, body) = request(
        at,
        &format!("GET /api/history?verdict=pass HTTP/1.1\r\nHost: {at}"),
        "",
    );
    assert_eq!(status, 200, "{body}");
    let history: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(history["total"], 1, "{history}");
    let run = &history["runs"][0];
    assert_eq!(run["outcome"], "PASS", "{run}");
    assert_eq!(run["serial"], "SIM-CPIM-000123", "{run}");
    // Its bundle verified through the panel, against the bench's key.
    let id = run["run_id"].as_str().unwrap();
    let (status, body) = request(
        at,
        &format!("GET /api/runs/{id}/verify HTTP/1.1\r\nHost: {at}"),
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""ok":true"#), "{body}");
    panel.stop();
}

#[test]
fn other_sites_and_other_host_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let panel = panel(
        dir.path(),
        StoreLocation::Embedded(dir.path().join("store")),
    );
    let at = panel.address();
    // A page of another site posting to the bench (its browser sends its Origin).
    let (status, body) = request(
        at,
        &format!("POST /api/stop HTTP/1.1\r\nHost: {at}\r\nOrigin: http://evil.example"),
        "{}",
    );
    assert_eq!(status, 403, "{body}");
    // A name rebound to this address.
    let (status, body) = request(
        at,
        &format!(
            "GET /api/station HTTP/1.1\r\nHost: evil.example:{}",
            at.port()
        ),
        "",
    );
    assert_eq!(status, 421, "{body}");
    // A path out of the reports folder.
    let (status, _) = request(
        at,
        &format!("GET /runs/..%2Fkeys/certificate.pdf HTTP/1.1\r\nHost: {at}"),
        "",
    );
    assert_eq!(status, 400);
    // Nothing runs: a Stop says so.
    let (status, body) = request(at, &format!("POST /api/stop HTTP/1.1\r\nHost: {at}"), "{}");
    assert_eq!(status, 409, "{body}");
    panel.stop();
}

/// Every refusal carries a code beside the bench's English (the page words each in the
/// operator's language; a refusal of the bench's files keeps the bench's words).
#[test]
fn every_refusal_has_a_code() {
    let dir = tempfile::tempdir().unwrap();
    let panel = panel(
        dir.path(),
        StoreLocation::Embedded(dir.path().join("store")),
    );
    let at = panel.address();
    let code = |head: String, body: &str| {
        let (status, text) = request(at, &head, body);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
        (
            status,
            v["refusal"]["code"].as_str().unwrap_or("none").to_string(),
        )
    };
    let post = |path: &str| format!("POST {path} HTTP/1.1\r\nHost: {at}");
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: {at}");
    assert_eq!(code(post("/api/stop"), "{}"), (409, "not_running".into()));
    assert_eq!(
        code(post("/api/answer"), r#"{"id": 7, "answer": "yes"}"#),
        (409, "not_asked".into())
    );
    assert_eq!(
        code(get("/api/runs/..%2Fx/verify"), ""),
        (400, "not_a_run_id".into())
    );
    assert_eq!(
        code(get("/runs/20260105T060000.000Z-st-SN1/certificate.pdf"), ""),
        (404, "no_certificate".into())
    );
    assert_eq!(
        code(
            format!("{}\r\nOrigin: http://evil.example", post("/api/stop")),
            "{}"
        ),
        (403, "foreign_page".into())
    );
    // The bench's own refusal of its files: a procedure the home does not hold.
    assert_eq!(
        code(
            post("/api/start"),
            r#"{"procedure": "none.yaml", "fixture": "cpim1000.yaml"}"#
        ),
        (422, "bench_refused".into())
    );
    assert!(!panel.busy(), "nothing was started");
    panel.stop();
}

/// A start whose order is wrong is refused before anything is loaded, with the problem's
/// code and fields beside the English text (the page says it in German from them).
#[test]
fn a_start_with_a_wrong_order_is_refused_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let panel = panel(
        dir.path(),
        StoreLocation::Embedded(dir.path().join("store")),
    );
    let at = panel.address();
    let long = "x".repeat(201);
    let (status, body) = request(
        at,
        &format!("POST /api/start HTTP/1.1\r\nHost: {at}"),
        &format!(
            r#"{{"procedure": "cpim1000-eol.yaml", "fixture": "cpim1000.yaml", "order": {{"customer": "{long}"}}}}"#
        ),
    );
    assert_eq!(status, 422, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["refusal"]["code"], "too_long", "{v}");
    assert_eq!(v["refusal"]["field"], "--customer", "{v}");
    assert_eq!(v["refusal"]["chars"], 201, "{v}");
    assert_eq!(v["refusal"]["max"], 200, "{v}");
    assert!(v["error"].as_str().unwrap().contains("at most 200"), "{v}");
    assert!(!panel.busy(), "nothing was started");
    panel.stop();
}
