//! The panel's figures, in Debian's Chromium (run by bench/benchmarks/panel.sh; prints,
//! asserts nothing):
//! 1. event latency from the runner to the page: each message carries the wall-clock
//!    time it left the runner's observer; the page notes when it arrived. Measured over
//!    the first `SECONDS` of a class B run paced to the wall clock (`--realtime`).
//! 2. what the panel adds to a run's wall time: the class B procedure on the simulated
//!    bench (not paced), from Start to the signed, filed bundle, `RUNS` times through a
//!    page in the browser, and `RUNS` times through the session library alone (what
//!    `meterbench run` does, without the terminal); medians.

use headless_chrome::{Browser, LaunchOptions, Tab};
use meterbench_panel::{Panel, PanelConfig};
use meterbench_runner::Silent;
use meterbench_session::paths::{BenchHome, HomeOrigin};
use meterbench_session::{Prepared, SessionOptions, deliver, station_outputs};
use meterbench_store::StoreLocation;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

const SECONDS: u64 = 30;
const RUNS: usize = 5;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn panel(reports: &Path, key: meterbench_signing::SigningKey, realtime: bool) -> Panel {
    Panel::start(
        PanelConfig {
            home: BenchHome::at(&repo(), HomeOrigin::Flag),
            station: repo().join("hw/stations/sim.yaml"),
            listen: "127.0.0.1:0".parse().unwrap(),
            reports: reports.to_path_buf(),
            store: StoreLocation::Embedded(reports.join("store")),
            signer: None,
            realtime,
        },
        key,
    )
    .unwrap()
}

fn eval(tab: &Tab, js: &str) -> serde_json::Value {
    tab.evaluate(js, true).unwrap().value.unwrap_or_default()
}

fn until(tab: &Tab, js: &str) {
    let start = Instant::now();
    while eval(tab, js) != serde_json::Value::Bool(true) {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "stuck waiting for {js}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn open(browser: &Browser, panel: &Panel) -> Arc<Tab> {
    let tab = browser.new_tab().unwrap();
    tab.navigate_to(&format!("http://{}/", panel.address()))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    until(
        &tab,
        "document.getElementById('connection').classList.contains('on') && document.getElementById('procedure').options.length > 0",
    );
    eval(
        &tab,
        "document.getElementById('procedure').value = 'en50470-3-class-b.yaml'; true",
    );
    tab
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let key =
        meterbench_signing::generate_key(&keys.join("k.pem"), &keys.join("k.pub.pem")).unwrap();
    let browser = Browser::new(LaunchOptions {
        path: Some("/usr/bin/chromium".into()),
        sandbox: false,
        window_size: Some((1400, 1200)),
        idle_browser_timeout: Duration::from_secs(600),
        args: vec![OsStr::new("--disable-gpu"), OsStr::new("--no-first-run")],
        ..LaunchOptions::default()
    })
    .unwrap();

    // 1. Latency, paced.
    let reports = dir.path().join("paced");
    let p = panel(&reports, key.clone(), true);
    let tab = open(&browser, &p);
    eval(&tab, "window.meterbenchLatencies = []; true");
    tab.find_element("#start").unwrap().click().unwrap();
    std::thread::sleep(Duration::from_secs(SECONDS));
    let lat: Vec<f64> = serde_json::from_value(eval(
        &tab,
        "JSON.parse(JSON.stringify(window.meterbenchLatencies))",
    ))
    .unwrap_or_else(|_| {
        serde_json::from_str(
            eval(&tab, "JSON.stringify(window.meterbenchLatencies)")
                .as_str()
                .unwrap(),
        )
        .unwrap()
    });
    p.stop();
    let mut sorted = lat.clone();
    sorted.sort_by(f64::total_cmp);
    let q = |f: f64| sorted[((sorted.len() - 1) as f64 * f).round() as usize];
    println!(
        "event latency, runner to page, first {SECONDS} s of a paced class B run: {} messages ({:.1}/s), p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        sorted.len(),
        sorted.len() as f64 / SECONDS as f64,
        q(0.5),
        q(0.95),
        sorted[sorted.len() - 1]
    );

    // 2. Wall time of a run through the panel and the page, and through the library.
    let reports = dir.path().join("panel");
    let p = panel(&reports, key.clone(), false);
    let tab = open(&browser, &p);
    let mut through_panel = Vec::new();
    for _ in 0..RUNS {
        // The button clicked in the page itself: the DevTools protocol's mouse click
        // (scroll into view, wait for the box, press, release) takes most of a second of
        // its own, which is the driver's, not the panel's.
        let clicked = eval(
            &tab,
            "(() => { const t = Date.now(); document.getElementById('start').click(); return t; })()",
        )
        .as_f64()
        .unwrap();
        // Start is enabled again when the page is told the session is idle: its bundles
        // signed and filed.
        until(&tab, "!document.getElementById('start').disabled");
        let idle = eval(&tab, "window.meterbenchReceived['panel_idle']")
            .as_f64()
            .unwrap();
        through_panel.push((idle - clicked) / 1000.0);
        let sent = |e: &str| {
            eval(&tab, &format!("window.meterbenchSent['{e}']"))
                .as_f64()
                .unwrap()
                - clicked
        };
        eprintln!(
            "  after the click: session_started {:.0} ms, session_finished {:.0} ms, panel_delivered {:.0} ms, panel_idle {:.0} ms",
            sent("session_started"),
            sent("session_finished"),
            sent("panel_delivered"),
            sent("panel_idle")
        );
    }
    p.stop();
    let reports = dir.path().join("library");
    let mut through_library = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let mut o = SessionOptions::new(chrono::Local::now().date_naive());
        o.procedure = repo().join("procedures/en50470-3-class-b.yaml");
        o.fixture = repo().join("fixtures/cpim1000.yaml");
        o.station = repo().join("hw/stations/sim.yaml");
        o.reports = reports.clone();
        let prepared = Prepared::load(o).unwrap();
        let mut bound = prepared.bind().unwrap();
        let session = prepared
            .run(
                &mut bound,
                None,
                Arc::new(AtomicBool::new(false)),
                &mut Silent,
            )
            .unwrap();
        drop(bound);
        let outputs = station_outputs(
            key.clone(),
            "figures".into(),
            &reports,
            StoreLocation::Embedded(reports.join("store")),
        );
        let d = deliver(&session, &outputs, 2);
        assert!(d.iter().all(|d| d.all_done()));
        through_library.push(start.elapsed().as_secs_f64());
    }
    let (a, b) = (
        median(through_panel.clone()),
        median(through_library.clone()),
    );
    println!(
        "class B run (not paced), Start to filed bundle, median of {RUNS}: from the click on Start to the page told the bundles are filed {a:.3} s {through_panel:.3?}; through the session library alone {b:.3} s {through_library:.3?}; the panel adds {:+.1} %",
        100.0 * (a - b) / b
    );
}
