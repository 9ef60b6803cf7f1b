//! The station panel in a real browser: Debian's Chromium, driven over the DevTools
//! protocol, uses the page as a technician would (select, type, click, answer dialogs)
//! against a panel serving the simulated bench through the real wire protocols.
//! `.ci/run` installs Chromium when it is missing. With `METERBENCH_WRITE_PREVIEW=1` the
//! screenshots also go to `docs/preview/`.

use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};
use meterbench_panel::{Panel, PanelConfig};
use meterbench_runner::record::RunRecord;
use meterbench_session::paths::{BenchHome, HomeOrigin};
use meterbench_store::StoreLocation;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const CHROMIUM: &str = "/usr/bin/chromium";

fn browser() -> Browser {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: `apt-get install chromium` (.ci/run installs it)"
    );
    Browser::new(LaunchOptions {
        path: Some(CHROMIUM.into()),
        // Root in a container has no user namespace for the sandbox.
        sandbox: false,
        window_size: Some((1400, 1200)),
        idle_browser_timeout: Duration::from_secs(300),
        args: [
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--lang=en-US",
        ]
        .iter()
        .map(OsStr::new)
        .collect(),
        ..LaunchOptions::default()
    })
    .expect("Chromium starts")
}

fn panel(reports: &Path, realtime: bool) -> Panel {
    let keys = reports.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let key =
        meterbench_signing::generate_key(&keys.join("key.pem"), &keys.join("key.pub.pem")).unwrap();
    let home = BenchHome::at(&repo(), HomeOrigin::Flag);
    Panel::start(
        PanelConfig {
            home,
            station: repo().join("hw/stations/sim.yaml"),
            listen: "127.0.0.1:0".parse().unwrap(),
            reports: reports.to_path_buf(),
            store: StoreLocation::Embedded(reports.join("store")),
            signer: None,
            realtime,
        },
        key,
    )
    .expect("the panel starts")
}

/// Evaluate `js` until it is true, or fail with what the page shows.
fn wait(tab: &Tab, what: &str, js: &str, timeout: Duration) {
    let start = Instant::now();
    loop {
        let v = tab.evaluate(js, false).expect("the page evaluates").value;
        if v == Some(serde_json::Value::Bool(true)) {
            return;
        }
        if start.elapsed() > timeout {
            let text = tab
                .evaluate("document.body.innerText", false)
                .ok()
                .and_then(|v| v.value)
                .unwrap_or_default();
            panic!("waited {timeout:?} for {what}; the page shows:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn js(tab: &Tab, code: &str) -> serde_json::Value {
    tab.evaluate(code, false)
        .expect("the page evaluates")
        .value
        .unwrap_or(serde_json::Value::Null)
}

fn state_of(tab: &Tab, position: u32) -> String {
    js(
        tab,
        &format!(
            "(document.querySelector('[data-testid=state-{position}] span') || {{}}).textContent || ''"
        ),
    )
    .as_str()
    .unwrap_or_default()
    .to_string()
}

fn choose(tab: &Tab, select: &str, value: &str) {
    js(
        tab,
        &format!("document.getElementById('{select}').value = '{value}'; true"),
    );
}

fn set_checked(tab: &Tab, id: &str, on: bool) {
    let now = js(tab, &format!("document.getElementById('{id}').checked"));
    if now != serde_json::Value::Bool(on) {
        tab.find_element(&format!("#{id}"))
            .unwrap()
            .click()
            .unwrap();
    }
}

fn screenshot(tab: &Tab, reports: &Path, name: &str) {
    let png = tab
        .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        .expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "{name} is a PNG");
    std::fs::write(reports.join(name), &png).unwrap();
    if std::env::var_os("METERBENCH_WRITE_PREVIEW").is_some() {
        std::fs::write(repo().join("docs/preview").join(name), &png).unwrap();
    }
}

/// The records of a reports folder, by run id.
fn records(reports: &Path) -> Vec<RunRecord> {
    let mut v: Vec<RunRecord> = std::fs::read_dir(reports)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("record.json"))
        .filter(|p| p.is_file())
        .map(|p| RunRecord::read(&p).unwrap())
        .collect();
    v.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    v
}

/// What the operator reads off the simulated meter's LCD, by question key.
fn lcd_answer(key: &str) -> &'static str {
    match key {
        "lcd.startup_fault" => "no",
        "lcd.software_version" => "1.8.4",
        "lcd.software_hash" => "5D2C8A17",
        "lcd.lrs_hash" => "A3F09C4E",
        k if k.starts_with("lcd.flags.") => "-",
        k => panic!("no answer for question {k}"),
    }
}

#[test]
fn a_technician_runs_the_simulated_bench_from_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path();
    let panel = panel(reports, false);
    let url = format!("http://{}/", panel.address());
    let browser = browser();
    let tab = browser.new_tab().unwrap();
    tab.navigate_to(&url)
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    wait(
        &tab,
        "the station",
        "document.getElementById('station-title').textContent.includes('sim-1') && document.getElementById('connection').classList.contains('on')",
        Duration::from_secs(20),
    );
    // The instruments with their calibrations, and the bench's key id.
    let instruments = js(&tab, "document.getElementById('instruments').innerText");
    assert!(
        instruments
            .as_str()
            .unwrap()
            .contains("SIM-CAL-SRC-2026-01"),
        "{instruments}"
    );
    let key_id = js(&tab, "document.getElementById('key-id').textContent");
    assert_eq!(key_id.as_str().unwrap().len(), 16, "{key_id}");

    // 1. The end-of-line procedure with the prompts answered here: a wrong answer is
    //    refused by the bench and asked again; then PASS.
    choose(&tab, "procedure", "cpim1000-eol.yaml");
    set_checked(&tab, "ask", true);
    tab.find_element("#start").unwrap().click().unwrap();
    let mut refused_once = false;
    let mut answered = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while state_of(&tab, 1) != "PASS" {
        assert!(
            Instant::now() < deadline,
            "no PASS; answered {answered:?}; position shows {}",
            state_of(&tab, 1)
        );
        let open = js(
            &tab,
            "document.getElementById('question').open ? document.getElementById('question').dataset.key : null",
        );
        let Some(key) = open.as_str().map(String::from) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        if answered.last() == Some(&key) {
            // The dialog is still closing.
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let answer = lcd_answer(&key);
        if answer == "yes" || answer == "no" {
            tab.find_element(&format!("#answer-{answer}"))
                .unwrap()
                .click()
                .unwrap();
        } else {
            if key == "lcd.software_version" && !refused_once {
                screenshot(&tab, reports, "panel-prompt.png");
                tab.find_element("#question-input")
                    .unwrap()
                    .type_into("one.eight")
                    .unwrap();
                tab.find_element("#answer-send").unwrap().click().unwrap();
                wait(
                    &tab,
                    "the refusal",
                    "document.getElementById('question-error').textContent.includes('dots')",
                    Duration::from_secs(10),
                );
                refused_once = true;
                js(
                    &tab,
                    "document.getElementById('question-input').value = ''; true",
                );
            }
            tab.find_element("#question-input")
                .unwrap()
                .type_into(answer)
                .unwrap();
            tab.find_element("#answer-send").unwrap().click().unwrap();
        }
        answered.push(key);
    }
    assert!(refused_once);
    assert!(answered.iter().any(|k| k == "lcd.lrs_hash"), "{answered:?}");
    wait(
        &tab,
        "the signed bundle",
        "document.querySelector('.position[data-position=\"1\"]').innerText.includes('signed bundle')",
        Duration::from_secs(60),
    );
    let eol = records(reports);
    assert_eq!(eol.len(), 1);
    assert_eq!(eol[0].outcome, meterbench_runner::Outcome::Pass);
    assert!(matches!(
        eol[0].answered_by,
        Some(meterbench_runner::record::AnsweredBy::Panel)
    ));

    // 2. The class B procedure with a simulated error on the right port at Iref: FAIL on
    //    position 1, at that point and port, in red.
    wait(
        &tab,
        "the panel idle",
        "!document.getElementById('start').disabled",
        Duration::from_secs(30),
    );
    choose(&tab, "procedure", "en50470-3-class-b.yaml");
    set_checked(&tab, "ask", false);
    tab.find_element("#sim-faults")
        .unwrap()
        .type_into(
            "{error_bump: {port: right, from_a: 4, to_a: 6, cos_phi: 1, error_percent: 1.6}}",
        )
        .unwrap();
    tab.find_element("#start").unwrap().click().unwrap();
    wait(
        &tab,
        "FAIL",
        "(document.querySelector('[data-testid=state-1] span') || {}).textContent === 'FAIL'",
        Duration::from_secs(120),
    );
    let failed_rows = js(
        &tab,
        "JSON.stringify([...document.querySelectorAll('tr.c-fail')].map(r => r.dataset.step + '/' + r.dataset.port))",
    );
    let failed: Vec<String> = serde_json::from_str(failed_rows.as_str().unwrap()).unwrap();
    let failed: Vec<&str> = failed.iter().map(String::as_str).collect();
    assert!(failed.contains(&"Iref PF1/right"), "{failed:?}");
    assert!(
        failed.iter().all(|f| f.ends_with("/right")),
        "only the right port fails: {failed:?}"
    );
    wait(
        &tab,
        "the bundle and the retest button",
        "document.querySelector('.position[data-position=\"1\"]').innerText.includes('signed bundle') && !!document.querySelector('tr.c-fail button')",
        Duration::from_secs(60),
    );
    screenshot(&tab, reports, "panel-fail.png");

    // 3. History: every run, filterable by verdict; a bundle verified from the page.
    wait(
        &tab,
        "the history",
        "document.querySelectorAll('#history tr').length === 2",
        Duration::from_secs(20),
    );
    choose(&tab, "history-verdict", "FAIL");
    tab.find_element("#history-form button")
        .unwrap()
        .click()
        .unwrap();
    wait(
        &tab,
        "the FAIL filter",
        "document.querySelectorAll('#history tr').length === 1 && document.querySelector('#history tr .verdict').textContent === 'FAIL'",
        Duration::from_secs(20),
    );
    tab.find_element("#history tr button")
        .unwrap()
        .click()
        .unwrap();
    wait(
        &tab,
        "the verification",
        "document.querySelector('#history tr').innerText.includes('intact, signed by')",
        Duration::from_secs(20),
    );
    // The certificate link serves the PDF.
    let pdf = tab
        .evaluate(
            "fetch(document.querySelector('#history tr a').href).then(r => r.headers.get('content-type') + ' ' + r.status)",
            true,
        )
        .unwrap()
        .value;
    assert_eq!(pdf, Some(serde_json::json!("application/pdf 200")));
    let cert = reports
        .read_dir()
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("certificate.pdf"))
        .filter(|p| p.is_file())
        .count();
    assert_eq!(cert, 2);

    // 4. German.
    tab.find_element("#lang").unwrap().click().unwrap();
    wait(
        &tab,
        "German",
        "document.querySelector('[data-testid=state-1] span').textContent === 'NICHT BESTANDEN' && document.getElementById('start').textContent === 'Starten'",
        Duration::from_secs(10),
    );
    screenshot(&tab, reports, "panel-de.png");
    tab.find_element("#lang").unwrap().click().unwrap();
    panel.stop();
}

#[test]
fn stop_mid_measurement_aborts_with_the_source_off() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path();
    // Paced to the wall clock: the starting-current test lasts about half a minute.
    let panel = panel(reports, true);
    let url = format!("http://{}/", panel.address());
    let browser = browser();
    let tab = browser.new_tab().unwrap();
    tab.navigate_to(&url)
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    wait(
        &tab,
        "the station",
        "document.getElementById('connection').classList.contains('on') && document.getElementById('procedure').options.length > 0",
        Duration::from_secs(20),
    );
    choose(&tab, "procedure", "en50470-3-class-b.yaml");
    tab.find_element("#start").unwrap().click().unwrap();
    wait(
        &tab,
        "the starting-current test under way",
        "document.getElementById('step-line').textContent.includes('Starting current') && document.querySelectorAll('.progress').length > 0 && document.getElementById('load-state').textContent === 'source on'",
        Duration::from_secs(30),
    );
    // Live: the time left moves while no pulse arrives.
    let left = |tab: &Tab| js(tab, "document.getElementById('step-line').textContent");
    let before = left(&tab);
    std::thread::sleep(Duration::from_millis(2500));
    let after = left(&tab);
    assert_ne!(before, after, "the step line did not move in 2.5 s");
    screenshot(&tab, reports, "panel-live.png");
    let live = js(&tab, "window.meterbenchLatencies.length");
    assert!(live.as_u64().unwrap() >= 3, "{live} live messages");
    tab.find_element("#stop").unwrap().click().unwrap();
    wait(
        &tab,
        "ABORTED",
        "(document.querySelector('[data-testid=state-1] span') || {}).textContent === 'ABORTED' && document.getElementById('load-state').textContent === 'source off'",
        Duration::from_secs(30),
    );
    wait(
        &tab,
        "the panel idle",
        "!document.getElementById('start').disabled",
        Duration::from_secs(60),
    );
    let r = records(reports);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].outcome, meterbench_runner::Outcome::Aborted);
    assert_eq!(r[0].source.off_confirmed, Some(true));
    wait(
        &tab,
        "the history",
        "document.querySelector('#history tr .verdict') && document.querySelector('#history tr .verdict').textContent === 'ABORTED'",
        Duration::from_secs(20),
    );
    panel.stop();
}
