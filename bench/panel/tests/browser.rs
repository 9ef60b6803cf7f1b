//! The station panel in a real browser: Debian's Chromium, driven over the DevTools
//! protocol, uses the page as a technician would (select, type, click, answer dialogs)
//! against a panel serving the simulated bench through the real wire protocols.
//! `.ci/run` installs Chromium when it is missing. With `METERBENCH_WRITE_PREVIEW=1` the
//! screenshots also go to `docs/preview/`.

use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};
use meterbench_panel::{Panel, PanelConfig};
use meterbench_runner::Outcome;
use meterbench_runner::record::{AnsweredBy, RunRecord};
use meterbench_session::paths::{BenchHome, HomeOrigin};
use meterbench_store::StoreLocation;
use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

mod common;
use common::{password_station, repo};

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
        window_size: Some((1400, 1700)),
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
    panel_for(reports, &repo().join("hw/stations/sim.yaml"), realtime)
}

fn panel_for(reports: &Path, station: &Path, realtime: bool) -> Panel {
    let keys = reports.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let key =
        meterbench_signing::generate_key(&keys.join("key.pem"), &keys.join("key.pub.pem")).unwrap();
    let home = BenchHome::at(&repo(), HomeOrigin::Flag);
    Panel::start(
        PanelConfig {
            home,
            station: station.to_path_buf(),
            listen: "127.0.0.1:0".parse().unwrap(),
            reports: reports.to_path_buf(),
            store: StoreLocation::Embedded(reports.join("store")),
            signer: None,
            realtime,
        },
        key.clone(),
        meterbench_signing::Keyring::single(key.verifying_key(), "the test's key"),
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
            let errors = tab
                .evaluate("JSON.stringify(window.meterbenchErrors)", false)
                .ok()
                .and_then(|v| v.value)
                .unwrap_or_default();
            panic!("waited {timeout:?} for {what}; the page's errors: {errors}; it shows:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A tab on the panel's page, once it shows the station and follows the event stream.
fn open_page(browser: &Browser, panel: &Panel) -> std::sync::Arc<Tab> {
    let tab = browser.new_tab().unwrap();
    tab.navigate_to(&format!("http://{}/", panel.address()))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    wait(
        &tab,
        "the station",
        "document.getElementById('connection').classList.contains('on') && document.getElementById('procedure').options.length > 0",
        Duration::from_secs(20),
    );
    tab
}

fn click(tab: &Tab, selector: &str) {
    tab.find_element(selector).unwrap().click().unwrap();
}

/// Type `text` into the field `selector`, key by key, as a keyboard or a scanner does.
fn type_in(tab: &Tab, selector: &str, text: &str) {
    tab.find_element(selector).unwrap().type_into(text).unwrap();
}

/// Wait until position `p` shows `word` (PASS, FAIL, ABORTED, …).
fn wait_state(tab: &Tab, p: u32, word: &str, timeout: Duration) {
    wait(
        tab,
        &format!("{word} at position {p}"),
        &format!(
            "(document.querySelector('[data-testid=state-{p}] span') || {{}}).textContent === '{word}'"
        ),
        timeout,
    );
}

/// Wait until the session is over: its bundles issued and filed, Start enabled again.
fn wait_idle(tab: &Tab) {
    wait(
        tab,
        "the panel idle",
        "!document.getElementById('start').disabled",
        Duration::from_secs(120),
    );
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
    let browser = browser();
    let tab = open_page(&browser, &panel);
    // The instruments with their calibrations, and the bench's key id.
    let title = js(&tab, "document.getElementById('station-title').textContent");
    assert!(title.as_str().unwrap().contains("sim-1"), "{title}");
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
    click(&tab, "#start");
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
            click(&tab, &format!("#answer-{answer}"));
        } else {
            if key == "lcd.software_version" && !refused_once {
                screenshot(&tab, reports, "panel-prompt.png");
                type_in(&tab, "#question-input", "one.eight");
                click(&tab, "#answer-send");
                wait(
                    &tab,
                    "the refusal",
                    "document.getElementById('question-error').textContent.includes('dots')",
                    Duration::from_secs(10),
                );
                refused_once = true;
                // The same refusal for a German operator, from the refusal's code.
                js(
                    &tab,
                    "lang = 'de'; document.getElementById('question-input').value = ''; true",
                );
                type_in(&tab, "#question-input", "one.eight");
                click(&tab, "#answer-send");
                wait(
                    &tab,
                    "the refusal in German",
                    "document.getElementById('question-error').textContent === 'keine durch Punkte getrennten Zahlen (z. B. 1.8.4)'",
                    Duration::from_secs(10),
                );
                js(
                    &tab,
                    "lang = 'en'; document.getElementById('question-input').value = ''; true",
                );
            }
            type_in(&tab, "#question-input", answer);
            click(&tab, "#answer-send");
        }
        answered.push(key);
    }
    assert!(refused_once);
    assert!(answered.iter().any(|k| k == "lcd.lrs_hash"), "{answered:?}");
    wait_idle(&tab);
    let bundle = js(
        &tab,
        "document.querySelector('.position[data-position=\"1\"]').innerText",
    );
    assert!(
        bundle.as_str().unwrap().contains("signed bundle"),
        "{bundle}"
    );
    let eol = records(reports);
    assert_eq!(eol.len(), 1);
    assert_eq!(eol[0].outcome, Outcome::Pass);
    assert!(matches!(eol[0].answered_by, Some(AnsweredBy::Panel)));

    // 2. The class B procedure with a simulated error on the right port at Iref: FAIL on
    //    position 1, at that point and port, in red.
    choose(&tab, "procedure", "en50470-3-class-b.yaml");
    set_checked(&tab, "ask", false);
    type_in(
        &tab,
        "#sim-faults",
        "{error_bump: {port: right, from_a: 4, to_a: 6, cos_phi: 1, error_percent: 1.6}}",
    );
    // The order behind it, typed into the form: a date of receipt after today is
    // refused by the bench before anything is switched on, then given right.
    type_in(&tab, "#customer", "Stadtwerke Musterstadt GmbH");
    type_in(&tab, "#condition", "seals intact");
    js(
        &tab,
        "document.getElementById('received').value = '2999-01-01'; true",
    );
    click(&tab, "#start");
    wait(
        &tab,
        "the refused date of receipt",
        "document.getElementById('start-error').textContent.includes('--received 2999-01-01 is after today')",
        Duration::from_secs(20),
    );
    js(
        &tab,
        "document.getElementById('received').value = '2026-11-30'; true",
    );
    click(&tab, "#start");
    wait_state(&tab, 1, "FAIL", Duration::from_secs(120));
    wait_idle(&tab);
    let failed = failed_rows(&tab, 1);
    assert!(failed.iter().any(|f| f == "Iref PF1/right"), "{failed:?}");
    // The failed point's error and U as the certificate prints them.
    let record = records(reports)
        .into_iter()
        .find(|r| r.outcome == Outcome::Fail)
        .unwrap();
    let order = record.order.as_ref().expect("the order typed in the form");
    assert_eq!(order.customer, "Stadtwerke Musterstadt GmbH");
    assert_eq!(order.condition.as_deref(), Some("seals intact"));
    assert_eq!(
        order.received.map(|d| d.to_string()).as_deref(),
        Some("2026-11-30")
    );
    assert_eq!(
        record.signatory.as_ref().map(|s| s.name.as_str()),
        Some("Sam Simulated (simulated signatory)")
    );
    let port = serde_json::to_value(
        &record
            .steps
            .iter()
            .find(|s| s.name == "Iref PF1")
            .unwrap()
            .ports,
    )
    .unwrap();
    let result = &port
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == "right")
        .unwrap()["result"];
    let printed = meterbench_report::round_result(
        result["error_percent"].as_f64().unwrap(),
        result["expanded_u_percent"].as_f64().unwrap(),
    );
    let cells = js(
        &tab,
        "JSON.stringify([...document.querySelector('tr[data-step=\"Iref PF1\"][data-port=\"right\"]').cells].map(c => c.textContent))",
    );
    let cells: Vec<String> = serde_json::from_str(cells.as_str().unwrap()).unwrap();
    assert_eq!(
        (&cells[4], &cells[5]),
        (&printed.signed, &printed.u),
        "{cells:?}"
    );
    assert!(
        failed.iter().all(|f| f.ends_with("/right")),
        "only the right port fails: {failed:?}"
    );
    wait(
        &tab,
        "the retest button",
        "!!document.querySelector('tr.c-fail button')",
        Duration::from_secs(10),
    );
    // The error-against-current chart has a dot per point with an error and a current,
    // each titled with the point, its port and the printed error; one of them is the
    // failed point's.
    let chart = js(
        &tab,
        "JSON.stringify((p => ({rows: [...p.querySelectorAll('table.points tbody tr')].filter(r => r.cells[4].textContent !== '' && parseFloat(r.cells[2].textContent) > 0).length, dots: [...p.querySelectorAll('svg.chart circle')].map(c => c.textContent)}))(document.querySelector('.position[data-position=\"1\"]')))",
    );
    let chart: serde_json::Value = serde_json::from_str(chart.as_str().unwrap()).unwrap();
    let dots = chart["dots"].as_array().unwrap();
    assert!(dots.len() >= 20, "{chart}");
    assert_eq!(chart["rows"].as_u64(), Some(dots.len() as u64), "{chart}");
    let failed_dot = format!("Iref PF1 right: {} % ± {} %", printed.signed, printed.u);
    assert!(
        dots.iter().any(|d| d.as_str() == Some(failed_dot.as_str())),
        "{failed_dot} among {chart}"
    );
    screenshot(&tab, reports, "panel-fail.png");

    // 3. History: every run, filterable by verdict; a bundle verified from the page, its
    //    certificate served.
    wait(
        &tab,
        "the history",
        "document.querySelectorAll('#history tr').length === 2",
        Duration::from_secs(20),
    );
    choose(&tab, "history-verdict", "FAIL");
    click(&tab, "#history-form button");
    wait(
        &tab,
        "the FAIL filter",
        "document.querySelectorAll('#history tr').length === 1 && document.querySelector('#history tr .verdict').textContent === 'FAIL'",
        Duration::from_secs(20),
    );
    click(&tab, "#history tr button");
    wait(
        &tab,
        "the verification",
        "document.querySelector('#history tr').innerText.includes('intact, signed by')",
        Duration::from_secs(20),
    );
    let pdf = tab
        .evaluate(
            "fetch(document.querySelector('#history tr a').href).then(r => r.headers.get('content-type') + ' ' + r.status)",
            true,
        )
        .unwrap()
        .value;
    assert_eq!(pdf, Some(serde_json::json!("application/pdf 200")));

    // 4. German.
    click(&tab, "#lang");
    wait(
        &tab,
        "German",
        "document.querySelector('[data-testid=state-1] span').textContent === 'NICHT BESTANDEN' && document.getElementById('start').textContent === 'Starten' && document.querySelector('.position .reason').textContent.startsWith('außerhalb der Grenzen: Iref cos φ = 1')",
        Duration::from_secs(10),
    );
    // The procedure's and the fixture's own German (their `translations:`): the failed
    // point and its port in the table, and a seal and a label of the fixture as the
    // dialog asks them.
    let row = js(
        &tab,
        "JSON.stringify([...document.querySelector('tr[data-step=\"Iref PF1\"][data-port=\"right\"]').cells].slice(0, 2).map(c => c.textContent))",
    );
    assert_eq!(row.as_str(), Some(r#"["Iref cos φ = 1","rechts"]"#));
    let roles = js(
        &tab,
        "[...document.querySelectorAll('#instruments tr td:first-child')].map(c => c.textContent).join(', ')",
    );
    assert_eq!(
        roles.as_str(),
        Some("Quelle, Referenz, Impulszähler c1, Klimasensor")
    );
    let seal = js(
        &tab,
        "promptText({key: 'seal.power_plate', prompt: 'User seals …: present and intact?'})",
    );
    assert_eq!(
        seal.as_str(),
        Some(
            "Benutzerplomben auf der Verbindungsfläche von der Leistungsplatte zum Zähler: vorhanden und unversehrt?"
        )
    );
    let label = js(
        &tab,
        "promptText({key: 'label.eichrecht', prompt: 'Eichrecht type label: …'})",
    );
    let label = label.as_str().unwrap();
    assert!(
        label.starts_with(
            "Eichrecht-Typenschild: vorhanden, lesbar und mit allen Angaben: Herstellerlogo; "
        ),
        "{label}"
    );
    // Every conformity value the bench can send (serialised here as the bench does) has
    // its words in the table, in German and, after the switch back, in English.
    use meterbench_metrology::decision::Conformity;
    let values = [
        Conformity::Pass,
        Conformity::Fail,
        Conformity::ConditionalPass,
        Conformity::ConditionalFail,
        Conformity::NoStatement,
    ]
    .map(|c| serde_json::to_value(c).unwrap());
    let words = |tab: &Tab| {
        js(
            tab,
            &format!(
                "JSON.stringify({}.map(v => conformityText(conformityKey(v))))",
                serde_json::Value::from(values.to_vec())
            ),
        )
    };
    assert_eq!(
        words(&tab).as_str(),
        Some(
            r#"["erfüllt","nicht erfüllt","bedingt erfüllt","bedingt nicht erfüllt","nicht entscheidbar"]"#
        )
    );
    // A point with no conformity shows its step's outcome, in German too.
    assert_eq!(js(&tab, "t('ERROR')").as_str(), Some("FEHLER"));
    // A serial number scanned wrong, refused by its code with its position.
    assert_eq!(
        js(
            &tab,
            "refusalText({message: 'serial number …', refusal: {code: 'not_in_serial', character: ' ', position: 3}})"
        )
        .as_str(),
        Some("Seriennummer an Platz 3: \" \" ist in einer Seriennummer nicht erlaubt")
    );
    // A scan asked again names both serial numbers in German too (the bench's words are
    // runner::questions::serial_rescan's).
    assert_eq!(
        js(
            &tab,
            "promptText({key: 'serial.rescan', prompt: 'The scanned serial number SIM-CPIM-999999 is not the one this run is for (SIM-CPIM-000123): scan the serial number again'})"
        )
        .as_str(),
        Some(
            "Die gescannte Seriennummer SIM-CPIM-999999 gehört nicht zu diesem Lauf (SIM-CPIM-000123): Seriennummer erneut scannen"
        )
    );
    // A hint with the format's numbers, in German.
    assert_eq!(
        js(&tab, "HINTS_DE.hex_hash({digits: 8})").as_str(),
        Some("8 Hexadezimalziffern")
    );
    // What a verification finds wrong, each kind the bench can send (serialised here as
    // the bench does) in German with its subject, the bench's words otherwise; what a
    // delivery could not do, in German before the bench's words.
    use meterbench_signing::ProblemKind as K;
    let kinds = [
        K::Missing,
        K::Extra,
        K::HashMismatch,
        K::NotRegularFile,
        K::Unreadable,
        K::Malformed,
        K::BadSignature,
        K::KeyMismatch,
        K::UntrustedKey,
        K::SequenceGap,
        K::OutOfOrder,
        K::ChainBreak,
        K::BackDated,
        K::EntryModified,
        K::NotInLog,
    ]
    .map(|k| serde_json::to_value(k).unwrap());
    let untranslated = js(
        &tab,
        &format!(
            "JSON.stringify({}.filter(k => problemText({{subject: 's', kind: k, text: 'english'}}) === 'english'))",
            serde_json::Value::from(kinds.to_vec())
        ),
    );
    assert_eq!(untranslated.as_str(), Some("[]"));
    assert_eq!(
        js(
            &tab,
            "problemText({subject: 'certificate.html', kind: 'hash_mismatch', text: 'certificate.html: SHA-256 differs from the manifest'})"
        )
        .as_str(),
        Some("certificate.html: SHA-256 weicht vom Manifest ab (Datei verändert)")
    );
    assert_eq!(
        js(
            &tab,
            "[deliveryText('bundle'), deliveryText('store'), t('logout')].join('|')"
        )
        .as_str(),
        Some("Zertifikat nicht ausgestellt|Nicht im Ergebnisspeicher abgelegt|Abmelden")
    );
    // Power factors as the German step names write them.
    assert_eq!(
        js(&tab, "['1', '0.5i', '0.8c', 1].map(pfText).join('|')").as_str(),
        Some("1|0,5 ind.|0,8 kap.|1")
    );
    // The history's verdicts and the diagram's label in German.
    assert_eq!(
        js(
            &tab,
            "document.querySelector('#history-verdict option[value=FAIL]').textContent"
        )
        .as_str(),
        Some("NICHT BESTANDEN")
    );
    assert_eq!(
        js(
            &tab,
            "document.getElementById('phasors').getAttribute('aria-label')"
        )
        .as_str(),
        Some("Zeigerdiagramm der Last")
    );
    // A start refused for its order says why in German too, from the refusal's code.
    js(
        &tab,
        "document.getElementById('customer').value = 'x'.repeat(201); true",
    );
    click(&tab, "#start");
    wait(
        &tab,
        "the refused order, in German",
        "document.getElementById('start-error').textContent.includes('Kunde: 201 Zeichen, ein Zertifikat nimmt höchstens 200 auf')",
        Duration::from_secs(20),
    );
    js(
        &tab,
        "document.getElementById('customer').value = 'Stadtwerke Musterstadt GmbH'; document.getElementById('start-error').textContent = ''; true",
    );
    // A refusal of the bench's files: said to be one in German, with the bench's words
    // (file and reason) for whoever keeps the bench.
    let procedure = js(&tab, "document.getElementById('procedure').value");
    js(
        &tab,
        "(() => { const s = document.getElementById('procedure'); s.append(new Option('none', 'none.yaml')); s.value = 'none.yaml'; return true; })()",
    );
    click(&tab, "#start");
    wait(
        &tab,
        "the bench's refusal, in German",
        "(t => t.startsWith('Vom Prüfplatz abgelehnt') && t.includes('none.yaml'))(document.getElementById('start-error').textContent)",
        Duration::from_secs(20),
    );
    js(
        &tab,
        &format!(
            "(() => {{ const s = document.getElementById('procedure'); s.lastElementChild.remove(); s.value = {procedure}; document.getElementById('start-error').textContent = ''; return true; }})()"
        ),
    );
    assert_eq!(
        js(&tab, "document.getElementById('start-error').textContent"),
        serde_json::json!("")
    );
    assert_eq!(
        js(&tab, "document.getElementById('procedure').value"),
        procedure
    );
    screenshot(&tab, reports, "panel-de.png");
    click(&tab, "#lang");
    wait(
        &tab,
        "English again",
        "document.getElementById('start').textContent === 'Start'",
        Duration::from_secs(10),
    );
    assert_eq!(
        words(&tab).as_str(),
        Some(r#"["pass","fail","conditional pass","conditional fail","not decidable"]"#)
    );

    // 5. Retest of the failed point from the results table: a new run that amends the
    //    failed one. The simulated fault was the first run's only, so the point passes
    //    now; the run's verdict is the record's (its single-phase points, measured with
    //    the fault, still differ from the new balanced one).
    let failed_run = records(reports)
        .into_iter()
        .find(|r| r.outcome == Outcome::Fail)
        .unwrap()
        .run_id;
    click(&tab, "tr.c-fail[data-step='Iref PF1'] button");
    wait(
        &tab,
        "the retested point",
        "!!document.querySelector('tr[data-step=\"Iref PF1\"][data-port=\"right\"].c-pass')",
        Duration::from_secs(60),
    );
    wait_idle(&tab);
    let retest = records(reports)
        .into_iter()
        .find(|r| r.amends.as_deref() == Some(failed_run.as_str()))
        .expect("a run amending the failed one");
    let attempts: Vec<u32> = retest
        .steps
        .iter()
        .filter(|s| s.name == "Iref PF1")
        .map(|s| s.attempt)
        .collect();
    assert_eq!(attempts, [1, 2]);
    assert_eq!(state_of(&tab, 1), retest.outcome.word());

    // A conditional fail as the bench sends it (the DCC's `conditionalFail`), through the
    // page's own row and table: its words, its colour class and a Retest, as a fail has.
    let conditional = js(
        &tab,
        r#"(() => {
            const r = row({index: 9, attempt: 1, name: "Imax PF1", outcome: "FAIL", load: {current_a: 32, power_factor: "1"}},
                          {port: "left", result: {decision: {conformity: "conditionalFail"}, error_percent: 1.01, expanded_u_percent: 0.02}});
            const table = pointsTable({rows: new Map([["9/left", r]]), run_id: "x", state: "FAIL"});
            const tr = table.querySelector("tbody tr");
            return JSON.stringify([tr.className, tr.querySelector(".conformity").textContent, !!tr.querySelector("button")]);
        })()"#,
    );
    assert_eq!(
        conditional.as_str(),
        Some(r#"["c-conditional_fail","conditional fail",true]"#)
    );
    panel.stop();
}

/// `step/port` of each failed row of position `p`'s table.
fn failed_rows(tab: &Tab, p: u32) -> Vec<String> {
    let rows = js(
        tab,
        &format!(
            "JSON.stringify([...document.querySelectorAll('.position[data-position=\"{p}\"] tr.c-fail')].map(r => r.dataset.step + '/' + r.dataset.port))"
        ),
    );
    serde_json::from_str(rows.as_str().unwrap()).unwrap()
}

#[test]
fn stop_mid_measurement_aborts_with_the_source_off() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path();
    // Paced to the wall clock: the starting-current test lasts about half a minute.
    let panel = panel(reports, true);
    let browser = browser();
    let tab = open_page(&browser, &panel);
    choose(&tab, "procedure", "en50470-3-class-b.yaml");
    click(&tab, "#start");
    wait(
        &tab,
        "the starting-current test under way",
        "document.getElementById('step-line').textContent.includes('Starting current') && document.querySelectorAll('.progress').length > 0 && document.getElementById('load-state').textContent === 'source on'",
        Duration::from_secs(30),
    );
    // Live: the time left moves while no pulse arrives.
    let line = |tab: &Tab| js(tab, "document.getElementById('step-line').textContent");
    let before = line(&tab);
    std::thread::sleep(Duration::from_millis(2500));
    let after = line(&tab);
    assert_ne!(before, after, "the step line did not move in 2.5 s");
    // The point under way is in the table: per port, its pulses counted of those needed
    // (none yet at the starting current) and the time left.
    wait(
        &tab,
        "the point under way in the table",
        "document.querySelectorAll('table.points tr.measuring').length === 2",
        Duration::from_secs(10),
    );
    let under_way = js(
        &tab,
        "JSON.stringify([...document.querySelectorAll('table.points tr.measuring')].map(r => [r.dataset.port, r.cells[8].textContent, r.cells[7].textContent]))",
    );
    let under_way: Vec<(String, String, String)> =
        serde_json::from_str(under_way.as_str().unwrap()).unwrap();
    for (port, pulses, left) in &under_way {
        assert_eq!(pulses, "0 / 2", "{port}: {under_way:?}");
        assert!(left.ends_with(" s left"), "{port}: {under_way:?}");
    }
    // The live load: a voltage and a current phasor per phase, and the numbers.
    let load = js(
        &tab,
        "JSON.stringify([document.querySelectorAll('#phasors line').length, [...document.querySelectorAll('#load tr')].map(r => [...r.cells].map(c => c.textContent).join(' '))])",
    );
    assert_eq!(
        load.as_str(),
        Some(r#"[6,["L1 230.0 0.020 0.0","L2 230.0 0.020 0.0","L3 230.0 0.020 0.0"]]"#)
    );
    screenshot(&tab, reports, "panel-live.png");
    let live = js(&tab, "window.meterbenchLatencies.length");
    assert!(live.as_u64().unwrap() >= 3, "{live} live messages");
    // One session at a time: a second start is refused while this one runs.
    let second = tab
        .evaluate(
            "fetch('/api/start', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({procedure: 'en50470-3-class-b.yaml', fixture: 'cpim1000.yaml'})}).then(r => r.status)",
            true,
        )
        .unwrap()
        .value;
    assert_eq!(second, Some(serde_json::json!(409)));
    // A device scanned into the page meanwhile (Enter on the last serial starts it) is
    // refused as busy, and the running session keeps its Stop.
    let stop_after_scan = tab
        .evaluate(
            "startRun().then(() => JSON.stringify([document.getElementById('stop').disabled, document.getElementById('start').disabled]))",
            true,
        )
        .unwrap()
        .value;
    assert_eq!(
        stop_after_scan,
        Some(serde_json::json!("[false,true]")),
        "Stop and Start after a scan mid-run"
    );
    click(&tab, "#stop");
    wait_state(&tab, 1, "ABORTED", Duration::from_secs(30));
    // Why, in the operator's words, in English and in German.
    let reason = js(
        &tab,
        "(() => { const r = document.querySelector('.position .reason').textContent; lang = 'de'; const de = reasonText(state.positions.get(1).reason); lang = 'en'; return JSON.stringify([r, de]); })()",
    );
    let reason: Vec<String> = serde_json::from_str(reason.as_str().unwrap()).unwrap();
    assert!(
        reason[0].starts_with("step `Starting current")
            && reason[0].ends_with("`: stopped by the operator or a signal"),
        "{reason:?}"
    );
    assert!(
        reason[1].starts_with("Schritt „")
            && reason[1].ends_with("“: vom Bediener oder durch ein Signal abgebrochen"),
        "{reason:?}"
    );
    wait(
        &tab,
        "the source off",
        "document.getElementById('load-state').textContent === 'source off'",
        Duration::from_secs(30),
    );
    wait_idle(&tab);
    let r = records(reports);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].outcome, Outcome::Aborted);
    assert_eq!(r[0].source.off_confirmed, Some(true));
    wait(
        &tab,
        "the history",
        "document.querySelector('#history tr .verdict') && document.querySelector('#history tr .verdict').textContent === 'ABORTED'",
        Duration::from_secs(20),
    );
    panel.stop();
}

#[test]
fn stop_in_a_question_aborts_with_the_source_off() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path();
    let panel = panel(reports, false);
    let browser = browser();
    let tab = open_page(&browser, &panel);
    choose(&tab, "procedure", "cpim1000-eol.yaml");
    set_checked(&tab, "ask", true);
    click(&tab, "#start");
    wait(
        &tab,
        "a question",
        "document.getElementById('question').open",
        Duration::from_secs(30),
    );
    // The dialog's own Stop: the session ends, the dialog closes, nothing is left on.
    click(&tab, "#question-stop");
    wait_state(&tab, 1, "ABORTED", Duration::from_secs(30));
    wait_idle(&tab);
    assert_eq!(
        js(&tab, "document.getElementById('question').open"),
        serde_json::json!(false)
    );
    let r = records(reports);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].outcome, Outcome::Aborted);
    assert_eq!(r[0].source.off_confirmed, Some(true));
    panel.stop();
}

#[test]
fn a_rack_shows_the_fault_on_its_own_position_and_point() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path();
    let panel = panel_for(reports, &repo().join("hw/stations/sim-rack-10.yaml"), false);
    let browser = browser();
    let tab = open_page(&browser, &panel);
    assert_eq!(
        js(&tab, "document.querySelectorAll('#serials input').length"),
        10
    );
    // Before a run, the rack's positions wait, each with its device.
    wait(
        &tab,
        "ten waiting positions",
        "document.querySelectorAll('#overview .tile.waiting').length === 10 && document.querySelector('#overview [data-tile=\"7\"]').innerText.includes('SIM-RACK-0007')",
        Duration::from_secs(10),
    );
    choose(&tab, "procedure", "en50470-3-class-b.yaml");
    type_in(
        &tab,
        "#sim-faults",
        "{error_bump: {position: 7, port: right, from_a: 4, to_a: 6, cos_phi: 1, error_percent: 1.6}}\n{dead_led: {position: 3, port: left}}",
    );
    click(&tab, "#start");
    wait_state(&tab, 7, "FAIL", Duration::from_secs(180));
    wait_idle(&tab);
    // Position 3's dark LED ends its run in ERROR, saying why; the others go on.
    assert_eq!(state_of(&tab, 3), "ERROR");
    let reason = js(
        &tab,
        "document.querySelector('.position[data-position=\"3\"] .reason').textContent",
    );
    assert!(
        reason.as_str().is_some_and(|r| r.contains("left")),
        "{reason}"
    );
    for p in (1..=10).filter(|&p| p != 7 && p != 3) {
        assert_eq!(state_of(&tab, p), "PASS", "position {p}");
        assert!(failed_rows(&tab, p).is_empty(), "position {p}");
    }
    // The rack at a glance: one tile per position, position 7's red.
    let tiles = js(
        &tab,
        "JSON.stringify([...document.querySelectorAll('#overview .tile')].map(t => t.dataset.tile + ' ' + t.className))",
    );
    let tiles: Vec<String> = serde_json::from_str(tiles.as_str().unwrap()).unwrap();
    assert_eq!(tiles.len(), 10, "{tiles:?}");
    for t in &tiles {
        let expected = if t.starts_with("7 ") {
            "tile fail"
        } else if t.starts_with("3 ") {
            "tile error"
        } else {
            "tile pass"
        };
        assert!(t.ends_with(expected), "{t}");
    }
    let failed = failed_rows(&tab, 7);
    assert!(failed.iter().any(|f| f == "Iref PF1/right"), "{failed:?}");
    assert!(failed.iter().all(|f| f.ends_with("/right")), "{failed:?}");
    screenshot(&tab, reports, "panel-rack.png");
    let r = records(reports);
    assert_eq!(r.len(), 10);
    assert_eq!(
        r.iter().filter(|r| r.outcome == Outcome::Fail).count(),
        1,
        "one FAIL"
    );
    assert_eq!(
        r.iter().filter(|r| r.outcome == Outcome::Error).count(),
        1,
        "one ERROR"
    );
    panel.stop();
}

#[test]
fn a_password_station_asks_for_it_and_a_line_loops_on_scans() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path();
    let station = password_station(reports, "s3cret line");
    let panel = panel_for(reports, &station, false);
    // Without the password the API answers nothing.
    let mut raw = std::net::TcpStream::connect(panel.address()).unwrap();
    use std::io::{Read as _, Write as _};
    write!(
        raw,
        "GET /api/station HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        panel.address()
    )
    .unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");

    let browser = browser();
    let tab = browser.new_tab().unwrap();
    tab.navigate_to(&format!("http://{}/", panel.address()))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    wait(
        &tab,
        "the login form",
        "!document.getElementById('login').hidden && document.getElementById('main').hidden",
        Duration::from_secs(20),
    );
    type_in(&tab, "#login-password", "wrong");
    click(&tab, "#login-form button");
    wait(
        &tab,
        "the refusal",
        "document.getElementById('login-error').textContent === 'wrong password'",
        Duration::from_secs(10),
    );
    js(
        &tab,
        "document.getElementById('login-password').value = ''; true",
    );
    type_in(&tab, "#login-password", "s3cret line");
    click(&tab, "#login-form button");
    wait(
        &tab,
        "the station after login",
        "document.getElementById('login').hidden && document.getElementById('connection').classList.contains('on') && document.getElementById('procedure').options.length > 0",
        Duration::from_secs(20),
    );

    // A production line: each scan (a serial and the scanner's Enter) starts the next
    // device; after each run the field is cleared and focused for the next scan.
    choose(&tab, "procedure", "cpim1000-eol.yaml");
    set_checked(&tab, "loop", true);
    // The second device's label is scanned as a GS1 code (symbology id, GTIN, serial):
    // the bench decodes its serial number.
    let scans = ["SIM-CPIM-000123", "]d2010401234567890121SIM-CPIM-000123"];
    for (round, scan) in (1..=2).zip(scans) {
        tab.find_element("#serials input").unwrap().click().unwrap();
        tab.type_str(scan).unwrap();
        tab.press_key("Enter").unwrap();
        wait(
            &tab,
            "the run",
            &format!(
                "document.querySelectorAll('#history tr').length === {round} && !document.getElementById('start').disabled"
            ),
            Duration::from_secs(120),
        );
        wait(
            &tab,
            "the field ready for the next scan",
            "document.activeElement === document.querySelector('#serials input') && document.activeElement.value === ''",
            Duration::from_secs(10),
        );
    }
    let r = records(reports);
    assert_eq!(r.len(), 2);
    assert!(r.iter().all(|r| r.outcome == Outcome::Pass));
    assert!(
        r.iter().all(|r| r.dut.serial_number == "SIM-CPIM-000123"),
        "{:?}",
        r.iter().map(|r| &r.dut.serial_number).collect::<Vec<_>>()
    );

    // The login ends while the page is open (here it is ended behind the page's back, as
    // another tab's logout would): the bench ends its event stream and refuses the next,
    // and the page asks for the password on its own, the field empty (the password given
    // before does not wait there for the next person).
    assert_eq!(
        js(&tab, "document.getElementById('logout').hidden").as_bool(),
        Some(false)
    );
    tab.evaluate(
        "fetch('/api/logout', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'}).then(r => r.status)",
        true,
    )
    .unwrap();
    wait(
        &tab,
        "the login form after the login ended",
        "!document.getElementById('login').hidden && document.getElementById('main').hidden && document.getElementById('connection').classList.contains('off') && document.getElementById('logout').hidden && document.getElementById('login-password').value === '' && document.querySelectorAll('#history tr').length === 0 && document.getElementById('positions').children.length === 0",
        Duration::from_secs(20),
    );
    type_in(&tab, "#login-password", "s3cret line");
    click(&tab, "#login-form button");
    wait(
        &tab,
        "the station after the second login",
        "document.getElementById('login').hidden && document.getElementById('connection').classList.contains('on') && !document.getElementById('logout').hidden",
        Duration::from_secs(20),
    );
    // The operator logs out: the form again, and the page's cookie opens nothing.
    click(&tab, "#logout");
    wait(
        &tab,
        "the login form after Log out",
        "!document.getElementById('login').hidden && document.getElementById('main').hidden",
        Duration::from_secs(10),
    );
    let status = tab
        .evaluate("fetch('/api/history').then(r => r.status)", true)
        .unwrap()
        .value;
    assert_eq!(status, Some(serde_json::json!(401)));
    panel.stop();
}
