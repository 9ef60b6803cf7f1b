//! The panel's figures, in Debian's Chromium (run by bench/benchmarks/panel.sh; prints,
//! asserts nothing):
//! 1. event latency from the runner to the page: each message carries the wall-clock
//!    time it left the runner's observer; the page notes when it arrived. Measured over
//!    the first `SECONDS` of a class B run paced to the wall clock (`--realtime`).
//! 2. what the panel adds to a run's wall time: the class B procedure on the simulated
//!    bench (not paced), from Start to the signed, filed bundle, `PANEL_RUNS` times each
//!    through a page in the browser, through the panel with no page, and through the
//!    session library alone (what `meterbench run` does, without the terminal); medians.

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
/// The pause before each run of the wall-time comparison.
const SETTLE: Duration = Duration::from_millis(400);
/// Runs of each kind [default 9; `PANEL_RUNS` sets it: this machine's timings vary by
/// ±15 %, so a few percent needs many].
fn runs() -> usize {
    std::env::var("PANEL_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(9)
}

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
        key.clone(),
        meterbench_signing::Keyring::single(key.verifying_key(), "the figures' key"),
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
    eval(
        &tab,
        "window.meterbenchLatencies = []; window.meterbenchArrivals = []; true",
    );
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
    let arrivals: Vec<f64> = serde_json::from_str(
        eval(&tab, "JSON.stringify(window.meterbenchArrivals)")
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let longest_silence_ms = arrivals.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
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
    println!(
        "  the longest time without a message on the page in that window: {longest_silence_ms:.0} ms (updates at least once a second: {})",
        if longest_silence_ms <= 1000.0 {
            "yes"
        } else {
            "no"
        }
    );

    // 2. Wall time of an unpaced run, alternating (the machine's speed drifts): through
    //    the session library alone; through the panel with a page open (the bench's own
    //    time, from the request to the session idle, and until the page is told); through
    //    the panel with no page.
    let with_page = panel(&dir.path().join("panel"), key.clone(), false);
    let tab = open(&browser, &with_page);
    // An A/B experiment on the page without a rebuild: `PANEL_EXPERIMENT_JS` is evaluated
    // in it first (say, a handler replaced by the old one).
    if let Ok(js) = std::env::var("PANEL_EXPERIMENT_JS") {
        eval(&tab, &js);
    }
    let no_page = panel(&dir.path().join("no-page"), key.clone(), false);
    let library = dir.path().join("library");
    let (mut lib, mut bench_side, mut page_side, mut headless) = (vec![], vec![], vec![], vec![]);
    let mut browser_cpu = 0.0;
    let mut messages = 0.0;
    let mut browser_cpu_in_run = 0.0;
    let mut cpu_by_kind = std::collections::BTreeMap::<String, f64>::new();
    let mut page_time = [0.0; 4];
    let hub_before = thread_cpu_s("panel-hub");
    // The page's own task times need the DevTools Performance domain on, which has a cost
    // of its own in the page: only when asked for (`PANEL_PAGE_METRICS=1`).
    let page_metrics_on = std::env::var("PANEL_PAGE_METRICS").is_ok_and(|v| v == "1");
    if page_metrics_on {
        tab.call_method(headless_chrome::protocol::cdp::Performance::Enable { time_domain: None })
            .unwrap();
    }
    // What the browser spends with the page open and nothing happening.
    let idle_before = browser_cpu_s();
    std::thread::sleep(Duration::from_secs(5));
    let idle_cpu_per_s = (browser_cpu_s() - idle_before) / 5.0;
    for i in 0..runs() {
        // The three kinds in turn, each first once in three rounds (what runs just before
        // a run affects it); each on a quiet machine: a pause before it lets what came
        // before (the page's drawing after a run, files flushed) end first.
        for kind in [i % 3, (i + 1) % 3, (i + 2) % 3] {
            std::thread::sleep(SETTLE);
            if kind == 0 {
                lib.push(through_library(&library, &key));
                continue;
            }
            if kind == 2 {
                headless.push(through_panel_alone(&no_page));
                continue;
            }
            // The button clicked in the page itself: the DevTools protocol's mouse click
            // (scroll into view, wait for the box, press, release) takes most of a second of
            // its own, which is the driver's, not the panel's.
            let cpu_before = browser_cpu_s();
            let kinds_before = browser_cpu_by_kind();
            let page_before = if page_metrics_on {
                page_metrics(&tab)
            } else {
                [0.0; 4]
            };
            let (messages_before, loads_before) = (
                eval(&tab, "window.meterbenchMessages").as_f64().unwrap(),
                eval(&tab, "window.meterbenchHistoryLoads")
                    .as_f64()
                    .unwrap(),
            );
            let clicked = eval(
            &tab,
            "(() => { const t = Date.now(); document.getElementById('start').click(); return t; })()",
        )
        .as_f64()
        .unwrap();
            // Waited for on the bench's side while the run lasts: polling the page over the
            // DevTools protocol every 20 ms would itself cost the browser processor time
            // (about 20 evaluations a run) that an operator's screen does not spend.
            let asked = Instant::now();
            while !with_page.busy() {
                assert!(
                    asked.elapsed() < Duration::from_secs(10),
                    "the click started nothing"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            while with_page.busy() {
                std::thread::sleep(Duration::from_millis(1));
            }
            browser_cpu_in_run += browser_cpu_s() - cpu_before;
            // Then Start is enabled again when the page is told the session is idle: its
            // bundles signed and filed.
            until(
                &tab,
                "!document.getElementById('start').disabled && !!window.meterbenchLast['panel_idle'] && window.meterbenchLast['panel_idle'].sent_ms > window.meterbenchLast['panel_started'].asked_ms",
            );
            let last = |e: &str, f: &str| {
                eval(&tab, &format!("window.meterbenchLast['{e}'].{f}"))
                    .as_f64()
                    .unwrap()
            };
            let received = eval(&tab, "window.meterbenchReceived['panel_idle']")
                .as_f64()
                .unwrap();
            // The page reloads its history after a run: waited for, so that it does not
            // overlap the next run of another kind.
            until(
                &tab,
                &format!("window.meterbenchHistoryLoads > {loads_before}"),
            );
            browser_cpu += browser_cpu_s() - cpu_before;
            for (k, v) in browser_cpu_by_kind() {
                *cpu_by_kind.entry(k.clone()).or_insert(0.0) +=
                    v - kinds_before.get(&k).copied().unwrap_or(0.0);
            }
            let page_after = if page_metrics_on {
                page_metrics(&tab)
            } else {
                [0.0; 4]
            };
            for i in 0..4 {
                page_time[i] += page_after[i] - page_before[i];
            }
            messages += eval(&tab, "window.meterbenchMessages").as_f64().unwrap() - messages_before;
            bench_side
                .push((last("panel_idle", "sent_ms") - last("panel_started", "asked_ms")) / 1000.0);
            page_side.push((received - clicked) / 1000.0);
        }
    }
    // The panel's event writer, over the panel runs of both kinds (2 × runs).
    let hub_per_run = (thread_cpu_s("panel-hub") - hub_before) / (2 * runs()) as f64;
    with_page.stop();
    no_page.stop();
    let b = median(lib.clone());
    let pct = |v: f64| 100.0 * (v - b) / b;
    println!(
        "class B run (not paced) from the request to its bundle signed and filed, median of {}, in rounds of the three kinds (order rotating, {} ms pause before each):",
        runs(),
        SETTLE.as_millis()
    );
    println!("  session library alone (what `run` does, without the terminal): {b:.3} s {lib:.3?}");
    let h = median(headless.clone());
    println!(
        "  through the panel, no page open: {h:.3} s ({:+.1} %) {headless:.3?}",
        pct(h)
    );
    let s = median(bench_side.clone());
    println!(
        "  through the panel with a page open, the bench's time: {s:.3} s ({:+.1} %) {bench_side:.3?}",
        pct(s)
    );
    let p = median(page_side.clone());
    println!(
        "  the same, from the click until the page is told: {p:.3} s ({:+.1} %) {page_side:.3?}",
        pct(p)
    );
    println!(
        "  processor time of the browser's processes per run with a page open: {:.3} s (mean; 2 cores here), {:.0} messages per run; with the page open and idle: {:.3} s per s",
        browser_cpu / runs() as f64,
        messages / runs() as f64,
        idle_cpu_per_s
    );
    let n = runs() as f64;
    // Each run against the library run of its round: the machine's speed drifts by more
    // than the few percent looked for, and neighbours share it.
    let paired = |v: &[f64]| 100.0 * median(v.iter().zip(&lib).map(|(x, l)| x / l - 1.0).collect());
    println!(
        "  each run against the library run of its round, median: panel with no page {:+.1} %, with a page (bench's time) {:+.1} %",
        paired(&headless),
        paired(&bench_side)
    );
    // The same as a mean with its 95 % interval (Student's t over the rounds): what the
    // runs support, not one number of a noisy machine.
    let interval =
        |v: &[f64]| mean_interval(v.iter().zip(&lib).map(|(x, l)| 100.0 * (x / l - 1.0)));
    let shown =
        |(m, h): (f64, f64)| format!("{m:+.1} % (95 % interval {:+.1} to {:+.1} %)", m - h, m + h);
    println!(
        "  the same as means: panel with no page {}; with a page (bench's time) {}; until the page is told {}",
        shown(interval(&headless)),
        shown(interval(&bench_side)),
        shown(interval(&page_side))
    );
    println!(
        "  processor time of the panel's event writer (its thread, serialising the run's events to the stream): {:.1} ms per run",
        1000.0 * hub_per_run
    );
    println!(
        "  processor time of the browser while the bench worked (from the click until the session was idle): {:.3} s per run",
        browser_cpu_in_run / n
    );
    let page = if page_metrics_on {
        format!(
            "; the page's main thread: {:.3} s of tasks (script {:.3} s, style {:.3} s, layout {:.3} s)",
            page_time[0] / n,
            page_time[1] / n,
            page_time[2] / n,
            page_time[3] / n
        )
    } else {
        String::new()
    };
    println!(
        "    by process: {}{page}",
        cpu_by_kind
            .iter()
            .map(|(k, v)| format!("{k} {:.3} s", v / n))
            .collect::<Vec<_>>()
            .join(", "),
    );
}

/// The mean of `v` and the half-width of its 95 % interval (Student's t, n − 1 degrees of
/// freedom).
fn mean_interval(v: impl Iterator<Item = f64>) -> (f64, f64) {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let v: Vec<f64> = v.collect();
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let t = StudentsT::new(0.0, 1.0, n - 1.0)
        .expect("at least two runs")
        .inverse_cdf(0.975);
    (mean, t * sd / n.sqrt())
}

/// User and system time of this process's threads named `name` so far, s (from /proc;
/// 100 ticks/s).
fn thread_cpu_s(name: &str) -> f64 {
    let mut ticks = 0;
    for e in std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| e.ok())
    {
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let f: Vec<&str> = rest.split(' ').collect();
        ticks += f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
    }
    ticks as f64 / 100.0
}

/// User and system time of every Chromium process so far, s (from /proc; 100 ticks/s).
fn browser_cpu_s() -> f64 {
    browser_cpu_by_kind().values().sum()
}

/// The same by the kind of process (`--type=` of its command line: renderer, gpu-process,
/// utility; the browser itself), s.
fn browser_cpu_by_kind() -> std::collections::BTreeMap<String, f64> {
    let mut by_kind = std::collections::BTreeMap::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some((name, rest)) = stat.split_once(") ") else {
            continue;
        };
        if !name.contains("chrom") {
            continue;
        }
        let f: Vec<&str> = rest.split(' ').collect();
        // utime and stime: fields 14 and 15 of stat, 12 and 13 after the name.
        let ticks = f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        let kind = cmdline
            .split(['\0', ' '])
            .find_map(|a| a.strip_prefix("--type="))
            .unwrap_or("browser")
            .to_string();
        *by_kind.entry(kind).or_insert(0.0) += ticks as f64 / 100.0;
    }
    by_kind
}

/// The page's own main-thread time so far (Chromium's Performance metrics), s: all its
/// tasks, and of them script, style and layout.
fn page_metrics(tab: &Tab) -> [f64; 4] {
    use headless_chrome::protocol::cdp::Performance;
    let m = tab
        .call_method(Performance::GetMetrics(None))
        .unwrap()
        .metrics;
    let get = |n: &str| m.iter().find(|x| x.name == n).map_or(0.0, |x| x.value);
    [
        get("TaskDuration"),
        get("ScriptDuration"),
        get("RecalcStyleDuration"),
        get("LayoutDuration"),
    ]
}

/// Load, bind, run and deliver as `meterbench run` does; the wall time, s.
fn through_library(reports: &Path, key: &meterbench_signing::SigningKey) -> f64 {
    let start = Instant::now();
    let mut o = SessionOptions::new(chrono::Local::now().date_naive());
    o.procedure = repo().join("procedures/en50470-3-class-b.yaml");
    o.fixture = repo().join("fixtures/cpim1000.yaml");
    o.station = repo().join("hw/stations/sim.yaml");
    o.reports = reports.to_path_buf();
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
        meterbench_signing::Keyring::single(key.verifying_key(), "the figures' key"),
        "figures".into(),
        reports,
        StoreLocation::Embedded(reports.join("store")),
    );
    let d = deliver(&session, &outputs, 2);
    assert!(d.iter().all(|d| d.all_done()));
    start.elapsed().as_secs_f64()
}

/// A run started with the panel's API and no page open, until the panel is idle; s.
fn through_panel_alone(panel: &Panel) -> f64 {
    use std::io::{Read as _, Write as _};
    let body = r#"{"procedure":"en50470-3-class-b.yaml","fixture":"cpim1000.yaml"}"#;
    let start = Instant::now();
    let mut s = std::net::TcpStream::connect(panel.address()).unwrap();
    write!(
        s,
        "POST /api/start HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        panel.address(),
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    while panel.busy() {
        std::thread::sleep(Duration::from_millis(1));
    }
    start.elapsed().as_secs_f64()
}
