//! The panel's HTTP interface without a browser: a run started through the API is
//! filed into a shared PostgreSQL store (a real server, `meterbench-testpg`) and the
//! history reads it back from there; requests from another site or for another host
//! are refused.

use meterbench_panel::{Panel, PanelConfig};
use meterbench_session::paths::{BenchHome, HomeOrigin};
use meterbench_store::StoreLocation;
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

mod common;
use common::{password_station, repo};

fn panel(reports: &Path, store: StoreLocation) -> Panel {
    panel_and_key(reports, store).0
}

/// A panel and its signing key (for a test that looks for the key where it must not be).
fn panel_and_key(reports: &Path, store: StoreLocation) -> (Panel, meterbench_signing::SigningKey) {
    panel_of_station(reports, &repo().join("hw/stations/sim.yaml"), store)
}

/// A panel of station file `station`, and its signing key.
fn panel_of_station(
    reports: &Path,
    station: &Path,
    store: StoreLocation,
) -> (Panel, meterbench_signing::SigningKey) {
    let keys = reports.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let key =
        meterbench_signing::generate_key(&keys.join("key.pem"), &keys.join("key.pub.pem")).unwrap();
    let panel = Panel::start(
        PanelConfig {
            home: BenchHome::at(&repo(), HomeOrigin::Flag),
            station: station.to_path_buf(),
            listen: "127.0.0.1:0".parse().unwrap(),
            reports: reports.to_path_buf(),
            store,
            signer: None,
            realtime: false,
        },
        key.clone(),
        meterbench_signing::Keyring::single(key.verifying_key(), "the test's key"),
    )
    .unwrap();
    (panel, key)
}

/// What the event stream sends a page that connects now (the replay of the last session),
/// read until it has been quiet for half a second.
fn event_stream(at: SocketAddr) -> String {
    let mut s = std::net::TcpStream::connect(at).unwrap();
    write!(s, "GET /api/events HTTP/1.1\r\nHost: {at}\r\n\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let (mut got, mut buf) = (Vec::new(), [0u8; 65536]);
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// One HTTP/1.1 request (`head`: its request line and Host) with a JSON body; the whole
/// answer, status line and headers included.
fn whole_answer(at: SocketAddr, head: &str, body: &str) -> String {
    let mut s = std::net::TcpStream::connect(at).unwrap();
    write!(
        s,
        "{head}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
}

/// One HTTP/1.1 request; the status code and the body.
fn request(at: SocketAddr, head: &str, body: &str) -> (u16, String) {
    let answer = whole_answer(at, head, body);
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
    let (panel, key) = panel_and_key(dir.path(), StoreLocation::Postgres(url));
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
    // Filtered by the serial as scanned; another serial has no runs.
    for (serial, runs) in [("SIM-CPIM-000123", 1), ("SIM-CPIM-000124", 0)] {
        let (status, body) = request(
            at,
            &format!("GET /api/history?serial={serial} HTTP/1.1\r\nHost: {at}"),
            "",
        );
        assert_eq!(status, 200, "{body}");
        let h: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(h["total"], runs, "{serial}: {h}");
    }
    // Its bundle verified through the panel, against the bench's key.
    let id = run["run_id"].as_str().unwrap();
    let (status, body) = request(
        at,
        &format!("GET /api/runs/{id}/verify HTTP/1.1\r\nHost: {at}"),
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""ok":true"#), "{body}");
    // The page gets the key's id, never the key: not in the station's view, the history,
    // a verification or the run's whole event stream, in any of the encodings a key is
    // written in (its 32 secret bytes in hex or base64, its PEM file's body).
    let (_, station) = request(at, &format!("GET /api/station HTTP/1.1\r\nHost: {at}"), "");
    assert!(station.contains("key_id"), "{station}");
    let events = event_stream(at);
    assert!(events.contains("session_finished"), "{events}");
    let secret = key.to_bytes();
    let pem = std::fs::read_to_string(dir.path().join("keys/key.pem")).unwrap();
    let pem_body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    use base64::Engine as _;
    let forms = [
        hex::encode(secret),
        hex::encode_upper(secret),
        base64::engine::general_purpose::STANDARD.encode(secret),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(secret),
        pem_body,
    ];
    for (what, sent) in [
        ("station", &station),
        ("history", &history.to_string()),
        ("verification", &body),
        ("event stream", &events),
    ] {
        for form in &forms {
            assert!(
                !sent.contains(form.as_str()),
                "the {what} holds the signing key"
            );
        }
    }
    // A bundle changed after signing: each problem with its subject and its kind, by which
    // the page says it in German.
    let folder = dir.path().join(id);
    let mut html = std::fs::OpenOptions::new()
        .append(true)
        .open(folder.join("certificate.html"))
        .unwrap();
    write!(html, "<!-- changed -->").unwrap();
    std::fs::write(folder.join("added.txt"), "not signed").unwrap();
    let (status, body) = request(
        at,
        &format!("GET /api/runs/{id}/verify HTTP/1.1\r\nHost: {at}"),
        "",
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["ok"], false, "{v}");
    let found: Vec<(&str, &str)> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["subject"].as_str().unwrap(), p["kind"].as_str().unwrap()))
        .collect();
    assert!(
        found.contains(&("certificate.html", "hash_mismatch")),
        "{v}"
    );
    assert!(found.contains(&("added.txt", "extra")), "{v}");
    assert!(
        v["problems"][0]["text"].as_str().unwrap().contains(": "),
        "the bench's words: {v}"
    );
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
    // A serial number scanned wrong: its refusal's code and position, for the page to say
    // it in the operator's language.
    let (status, body) = request(
        at,
        &format!("POST /api/start HTTP/1.1\r\nHost: {at}"),
        r#"{"procedure": "cpim1000-eol.yaml", "fixture": "cpim1000.yaml", "serials": {"1": "SIM CPIM"}}"#,
    );
    assert_eq!(status, 422, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["refusal"]["code"], "not_in_serial", "{v}");
    assert_eq!(v["refusal"]["character"], " ", "{v}");
    assert_eq!(v["refusal"]["position"], 1, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with(r#"serial number "SIM CPIM" of position 1: "#),
        "{v}"
    );
    // One longer than the store keeps is refused before anything starts (it failed late,
    // when the run's folder was made).
    let long = "A".repeat(20_000);
    let (status, body) = request(
        at,
        &format!("POST /api/start HTTP/1.1\r\nHost: {at}"),
        &format!(
            r#"{{"procedure": "cpim1000-eol.yaml", "fixture": "cpim1000.yaml", "serials": {{"1": "{long}"}}}}"#
        ),
    );
    assert_eq!(status, 422, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["refusal"]["code"], "serial_length", "{v}");
    assert_eq!(v["refusal"]["got"], 20_000, "{v}");
    assert!(!panel.busy(), "nothing was started");
    panel.stop();
}

/// A panel of a station whose password is `s3cret line`.
fn password_panel(dir: &Path) -> Panel {
    let station = password_station(dir, "s3cret line");
    panel_of_station(dir, &station, StoreLocation::Embedded(dir.join("store"))).0
}

/// A login with `password`: the whole answer.
fn login(at: SocketAddr, password: &str) -> String {
    let body = serde_json::json!({ "password": password }).to_string();
    whole_answer(
        at,
        &format!("POST /api/login HTTP/1.1\r\nHost: {at}"),
        &body,
    )
}

/// On a station with a password: five wrong passwords within a minute hold every login
/// from that address off, the right one too, with the seconds to wait.
#[test]
fn wrong_passwords_are_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let panel = password_panel(dir.path());
    let at = panel.address();
    let login = |password: &str| login(at, password);
    let right = login("s3cret line");
    assert!(right.starts_with("HTTP/1.1 200"), "{right}");
    assert!(
        right.contains("meterbench_panel=") && right.contains("HttpOnly; SameSite=Strict"),
        "{right}"
    );
    for _ in 0..5 {
        let wrong = login("guess");
        assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
    }
    let held = login("s3cret line");
    assert!(held.starts_with("HTTP/1.1 429"), "{held}");
    assert!(held.contains(r#""code":"too_many_attempts""#), "{held}");
    let wait: u64 = held
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after: ")
                .map(str::to_string)
        })
        .and_then(|v| v.trim().parse().ok())
        .expect("a Retry-After header");
    assert!((1..=61).contains(&wait), "{wait}");
    panel.stop();
}

/// A logout ends that login at once: its open event stream ends (within the stream's
/// login check, 2 s), its cookie is refused from then on, and another browser's login
/// goes on.
#[test]
fn a_logout_ends_its_login_and_its_open_event_stream() {
    let dir = tempfile::tempdir().unwrap();
    let panel = password_panel(dir.path());
    let at = panel.address();
    let login = || {
        let answer = login(at, "s3cret line");
        let from = answer.find("meterbench_panel=").expect(&answer);
        let cookie = &answer[from..];
        cookie[..cookie.find(';').unwrap()].to_string()
    };
    let (mine, other) = (login(), login());
    let station_with = |cookie: &str| {
        request(
            at,
            &format!("GET /api/station HTTP/1.1\r\nHost: {at}\r\nCookie: {cookie}"),
            "",
        )
        .0
    };
    assert_eq!(station_with(&mine), 200);

    let mut stream = std::net::TcpStream::connect(at).unwrap();
    write!(
        stream,
        "GET /api/events HTTP/1.1\r\nHost: {at}\r\nCookie: {mine}\r\n\r\n"
    )
    .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let mut read_until = |got: &mut Vec<u8>, what: &str| {
        while !String::from_utf8_lossy(got).contains(what) {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => panic!(
                    "no {what:?} in the stream within 10 s ({e}): {}",
                    String::from_utf8_lossy(got)
                ),
            }
        }
    };
    read_until(&mut got, "panel_hello");
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));

    let out = whole_answer(
        at,
        &format!("POST /api/logout HTTP/1.1\r\nHost: {at}\r\nCookie: {mine}"),
        "{}",
    );
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(
        out.contains("meterbench_panel=;") && out.contains("Max-Age=0"),
        "{out}"
    );
    // The stream's last chunk: the response is over.
    read_until(&mut got, "\r\n0\r\n\r\n");
    assert!(
        String::from_utf8_lossy(&got).ends_with("\r\n0\r\n\r\n"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(station_with(&mine), 401);
    let (status, body) = request(
        at,
        &format!("GET /api/events HTTP/1.1\r\nHost: {at}\r\nCookie: {mine}"),
        "",
    );
    assert_eq!(status, 401, "{body}");
    assert!(body.contains(r#""code":"password_needed""#), "{body}");
    assert_eq!(station_with(&other), 200);
    panel.stop();
}
