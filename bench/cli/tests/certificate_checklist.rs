//! The certificate against the ISO/IEC 17025 checklist of `docs/certificates.md`, walked
//! row by row over rendered PASS, FAIL and CSP1 certificates (the HTML and the PDF's
//! text), and the DCC beside it: schema-valid, the PDF embedded, its XML signature
//! accepted by stock xmlsec1 and refused after a one-byte change.
//!
//! Row 7.8.4.1 b (ambient conditions, measured) is walked against the readings the
//! record holds: the lowest and highest temperature and humidity, the sensor and its U,
//! the reference conditions and their source.

mod common;
use common::{repo, run_folders};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CUSTOMER: &str = "Stadtwerke Musterstadt GmbH";
const CONTACT: &str = "Hauptstrasse 1, 12345 Musterstadt, lab@example.org";
const RECEIVED: &str = "2026-11-30";
const CONDITION: &str = "housing undamaged, seals intact";
const SIGNATORY: &str = "Sam Simulated (simulated signatory)";
const ROLE: &str = "Head of the simulated laboratory";

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `meterbench run` with the order given, into a new reports folder: its run folder.
fn run(dir: &Path, extra: &[&str]) -> (PathBuf, Output) {
    // The key's folder exists: a key is not made in one that does not (a mistyped path).
    std::fs::create_dir_all(dir).unwrap();
    let reports = dir.join("reports");
    let out = Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args(["run", "--quiet", "--reports"])
        .arg(&reports)
        .args([
            "--customer",
            CUSTOMER,
            "--customer-contact",
            CONTACT,
            "--received",
            RECEIVED,
            "--condition",
            CONDITION,
        ])
        .args(extra)
        .env("METERBENCH_SIGNING_KEY", dir.join("key.pem"))
        .env_remove("METERBENCH_STORE")
        .current_dir(repo())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let folders = run_folders(&reports);
    assert_eq!(folders.len(), 1, "{}", text(&out));
    (folders[0].clone(), out)
}

/// A tool from Debian's packages that CI installs (`.ci/run`): missing is a failure
/// that says how to install it.
fn tool(name: &str, package: &str) -> Command {
    if Command::new(name).arg("--version").output().is_err() {
        panic!("`{name}` is needed by this test: apt-get install -y {package}");
    }
    Command::new(name)
}

/// The PDF's text, page by page (form feeds between pages), in reading order.
fn pdf_pages(pdf: &Path) -> Vec<String> {
    let out = tool("pdftotext", "poppler-utils")
        .args(["-enc", "UTF-8"])
        .arg(pdf)
        .arg("-")
        .output()
        .unwrap();
    assert!(out.status.success(), "pdftotext: {}", text(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .split('\u{c}')
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// The HTML's visible text, white space collapsed.
fn html_text(html: &Path) -> String {
    let doc = std::fs::read_to_string(html).unwrap();
    let mut out = String::new();
    let mut in_tag = false;
    let mut skip = false;
    let lower = doc.to_lowercase();
    let mut i = 0;
    let bytes = doc.as_bytes();
    while i < bytes.len() {
        if !in_tag && (lower[i..].starts_with("<style") || lower[i..].starts_with("<svg")) {
            skip = true;
        }
        if skip && (lower[i..].starts_with("</style>") || lower[i..].starts_with("</svg>")) {
            skip = false;
        }
        let c = doc[i..].chars().next().unwrap();
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag && !skip => out.push(c),
            _ => {}
        }
        i += c.len_utf8();
    }
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .replace("&ndash;", "–")
        .replace("&middot;", "·")
        .replace("&ensp;", " ")
        .replace("&rsquo;", "’")
        .replace("&#39;", "'")
        .replace("&quot;", "\"");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One checklist row: each text must be in the document (`what` names the row).
fn row(doc: &str, which: &str, clause: &str, texts: &[&str]) {
    // pdftotext joins a word broken at a hyphen at the end of a line without its hyphen
    // (SIM-CAL-CNT-2026-01 → SIM-CALCNT-2026-01): hyphens do not count.
    let unhyphenated = |t: &str| t.replace('-', "");
    for t in texts {
        assert!(
            doc.contains(t) || unhyphenated(doc).contains(&unhyphenated(t)),
            "{which}: checklist row {clause} wants `{t}`, not found in:\n{doc}"
        );
    }
}

/// The rows every document of a finished, decided run must satisfy, in HTML and PDF.
fn walk_common(folder: &Path, doc: &str, which: &str, title: &str) {
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("record.json")).unwrap())
            .unwrap();
    let r = &record;
    let run_id = r["run_id"].as_str().unwrap();
    row(doc, which, "7.8.2.1 a", &[title]);
    row(
        doc,
        which,
        "7.8.2.1 b, c",
        &[
            "meterbench simulated laboratory",
            "(simulated) 1 Reference Way",
            "Place of calibration",
            "the laboratory's premises",
        ],
    );
    row(
        doc,
        which,
        "7.8.2.1 d",
        &[
            run_id,
            &format!("End of the {} {run_id}", title.to_lowercase()),
        ],
    );
    row(doc, which, "7.8.2.1 e", &[CUSTOMER, CONTACT]);
    row(
        doc,
        which,
        "7.8.2.1 f",
        &[
            r["procedure"]["id"].as_str().unwrap(),
            r["procedure"]["version"].as_str().unwrap(),
            r["procedure"]["sha256"].as_str().unwrap(),
            "Method",
        ],
    );
    row(
        doc,
        which,
        "7.8.2.1 g, h",
        &[
            r["dut"]["serial_number"].as_str().unwrap(),
            r["dut"]["device_type"].as_str().unwrap(),
            "Condition on receipt",
            CONDITION,
            "Date of receipt",
            RECEIVED,
        ],
    );
    let started = &r["started_utc"].as_str().unwrap()[..10];
    row(
        doc,
        which,
        "7.8.2.1 i, j",
        &["Performed (UTC)", started, "Date of issue"],
    );
    row(
        doc,
        which,
        "7.8.2.1 l",
        &["The results relate only to the item calibrated"],
    );
    row(doc, which, "7.8.2.1 o", &[SIGNATORY, ROLE]);
    row(
        doc,
        which,
        "7.8.2.1 p",
        &["No result of an external provider is included"],
    );
    row(doc, which, "7.8.4.1 a", &["k = 2", "approximately 95"]);
    // The air as the record holds it: the start's reading and every point's latest
    // attempt's, lowest and highest, as measured.
    let ambient = &r["ambient"];
    let mut latest: std::collections::BTreeMap<u64, &serde_json::Value> = Default::default();
    for s in r["steps"].as_array().unwrap() {
        let k = s["index"].as_u64().unwrap();
        if latest
            .get(&k)
            .is_none_or(|l| l["attempt"].as_u64() <= s["attempt"].as_u64())
        {
            latest.insert(k, s);
        }
    }
    let mut readings = vec![&ambient["at_start"]];
    for s in latest.values() {
        readings.extend(s["ambient"]["readings"].as_array().into_iter().flatten());
    }
    assert!(
        readings.len() > 10,
        "{which}: the points' air is in the record"
    );
    let span = |key: &str, unit: &str| {
        let v: Vec<f64> = readings.iter().filter_map(|x| x[key].as_f64()).collect();
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if lo == hi {
            format!("{lo} {unit}")
        } else {
            format!("{lo} {unit} to {hi} {unit}")
        }
    };
    row(
        doc,
        which,
        "7.8.4.1 b",
        &[
            "Ambient conditions",
            &format!("Air temperature {}", span("temperature_c", "°C")),
            &format!("relative humidity {}", span("humidity_percent_rh", "% RH")),
            "SIM-CLM-0001",
            "U = 0.2 °C and 1.5 % RH, k = 2",
            "Reference conditions: 23 ± 2 °C",
            ambient["reference"]["source"].as_str().unwrap(),
            "Every step was measured within them",
        ],
    );
    row(
        doc,
        which,
        "7.8.4.1 c",
        &["traceable to the International System of Units (SI)"],
    );
    // Each instrument the run used, with its certificate, issuer and due date.
    for i in r["instruments"].as_array().unwrap() {
        let c = &i["calibration"];
        row(
            doc,
            which,
            "7.8.4.1 c",
            &[
                i["declared_model"].as_str().unwrap(),
                c["id"].as_str().unwrap(),
                c["issued_by"].as_str().unwrap(),
                c["due"].as_str().unwrap(),
            ],
        );
    }
    row(
        doc,
        which,
        "7.8.4.1 e",
        &["Decision rule", "ILAC-G8:09/2019"],
    );
    assert!(
        !doc.to_lowercase().contains("recalibration interval")
            && !doc.to_lowercase().contains("recommended recalibration"),
        "{which}: 7.8.4.3: no recalibration interval unless the customer asked for one"
    );
    row(
        doc,
        which,
        "signatures",
        &[
            r["station"]["id"].as_str().unwrap(),
            "key id",
            "MANIFEST.sha256",
        ],
    );
}

/// Both renderings of the document in `folder`: the HTML's text, and the PDF's whole
/// text; each PDF page names the document and says page x of y.
fn renderings(folder: &Path) -> Vec<(&'static str, String)> {
    let run_id = folder.file_name().unwrap().to_str().unwrap().to_string();
    let pages = pdf_pages(&folder.join("certificate.pdf"));
    let n = pages.len();
    assert!(n >= 2, "the PDF has {n} pages");
    for (i, page) in pages.iter().enumerate() {
        // 7.8.2.1 d: the identifier and page x of y on every page.
        assert!(
            page.contains(&run_id) && page.contains(&format!("Page {} of {n}", i + 1)),
            "PDF page {} lacks the identifier or its page number:\n{page}",
            i + 1
        );
    }
    vec![
        ("HTML", html_text(&folder.join("certificate.html"))),
        ("PDF", pages.join(" ")),
    ]
}

#[test]
fn pass_and_fail_certificates_hold_every_row_of_the_checklist() {
    let dir = tempfile::tempdir().unwrap();
    let (pass, out) = run(&dir.path().join("pass"), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for (which, doc) in renderings(&pass) {
        walk_common(&pass, &doc, which, "Calibration certificate");
        row(&doc, which, "7.8.2.1 m", &["Error %", " A ", "V per phase"]);
        row(&doc, which, "7.8.4.1 e", &["PASS"]);
    }

    // A FAIL with a retest: the deviation is stated (7.8.2.1 n) and the failed point
    // named with its conformity.
    let (fail, out) = run(
        &dir.path().join("fail"),
        &[
            "--sim-fault",
            "{error_bump: {port: right, from_a: 4, to_a: 6, cos_phi: 1, error_percent: 1.6}}",
            "--retest-failed",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    for (which, doc) in renderings(&fail) {
        walk_common(&fail, &doc, which, "Calibration certificate");
        row(
            &doc,
            which,
            "7.8.2.1 n",
            &["Deviations from the procedure", "Iref PF1"],
        );
        row(&doc, which, "7.8.4.1 e", &["FAIL", "outside its limits"]);
    }
}

#[test]
fn a_current_sensor_certificate_holds_every_row_of_the_checklist() {
    let dir = tempfile::tempdir().unwrap();
    let (csp1, out) = run(
        dir.path(),
        &[
            "--procedure",
            "procedures/csp1-accuracy.yaml",
            "--fixture",
            "fixtures/csp1.yaml",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for (which, doc) in renderings(&csp1) {
        walk_common(&csp1, &doc, which, "Calibration certificate");
        row(&doc, which, "7.8.2.1 m", &["Current sensor", " A"]);
    }
}

/// The DCC of a PASS run, checked with the tools an outside reader has.
#[test]
fn the_dcc_is_schema_valid_embeds_the_pdf_and_stock_xmlsec1_accepts_its_signature() {
    let dir = tempfile::tempdir().unwrap();
    let (folder, out) = run(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dcc_path = folder.join("dcc.xml");
    let dcc = std::fs::read_to_string(&dcc_path).unwrap();

    // The customer and signatory of the order, the country of the station.
    for t in [
        CUSTOMER,
        CONTACT,
        SIGNATORY,
        ROLE,
        "<dcc:countryCodeISO3166_1>DE</dcc:countryCodeISO3166_1>",
    ] {
        assert!(dcc.contains(t), "the DCC lacks `{t}`");
    }
    assert!(!dcc.to_lowercase().contains("placeholder"));

    // The PDF, byte for byte.
    let doc = roxmltree::Document::parse(&dcc).unwrap();
    let data = doc
        .descendants()
        .find(|n| n.has_tag_name(("https://ptb.de/dcc", "dataBase64")))
        .expect("dcc:document/dcc:dataBase64");
    use base64::Engine;
    let pdf = base64::engine::general_purpose::STANDARD
        .decode(data.text().unwrap().trim())
        .unwrap();
    assert_eq!(pdf, std::fs::read(folder.join("certificate.pdf")).unwrap());

    // Schema-valid against DCC 3.2.1 (offline copies of the three schemas).
    let schemas = dir.path().join("schemas");
    std::fs::create_dir_all(&schemas).unwrap();
    let src = repo().join("bench/report/tests/data/dcc-schema");
    for name in [
        "dcc-3.2.1.xsd",
        "SI_Format-2.1.0.xsd",
        "xmldsig-core-schema.xsd",
    ] {
        let t = std::fs::read_to_string(src.join(name))
            .unwrap()
            .replace(
                "https://ptb.de/si/v2.1.0/SI_Format.xsd",
                "SI_Format-2.1.0.xsd",
            )
            .replace(
                "http://www.w3.org/TR/xmldsig-core/xmldsig-core-schema.xsd",
                "xmldsig-core-schema.xsd",
            );
        std::fs::write(schemas.join(name), t).unwrap();
    }
    let lint = tool("xmllint", "libxml2-utils")
        .args(["--nonet", "--noout", "--schema"])
        .arg(schemas.join("dcc-3.2.1.xsd"))
        .arg(&dcc_path)
        .output()
        .unwrap();
    assert!(lint.status.success(), "xmllint: {}", text(&lint));

    // Stock xmlsec1 with the key the bundle carries (and its manifest covers).
    let key = folder.join("dcc-signer.pub.pem");
    let verify = |path: &Path| {
        tool("xmlsec1", "xmlsec1")
            .args(["--verify", "--pubkey-pem"])
            .arg(&key)
            .arg(path)
            .output()
            .unwrap()
    };
    let ok = verify(&dcc_path);
    assert!(ok.status.success(), "xmlsec1: {}", text(&ok));
    // One byte changed inside the signed content: refused.
    let i = dcc.find(CUSTOMER).unwrap();
    let mut bytes = dcc.clone().into_bytes();
    bytes[i] = b'X';
    let changed = dir.path().join("changed.xml");
    std::fs::write(&changed, &bytes).unwrap();
    let refused = verify(&changed);
    assert!(!refused.status.success(), "xmlsec1 accepted a changed DCC");

    // `meterbench verify` checks the DCC's signature as well: a bundle re-signed over a
    // changed DCC (its manifest then holds) is refused for the DCC alone.
    let public = dir.path().join("key.pub.pem");
    let (code, _, err) = common::meterbench(&[
        "verify",
        folder.to_str().unwrap(),
        "--key",
        public.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(&dcc_path, &bytes).unwrap();
    for f in ["MANIFEST.sha256", "MANIFEST.sig", "signer.pub.pem"] {
        std::fs::remove_file(folder.join(f)).unwrap();
    }
    let bench_key = meterbench_signing::load_signing_key(&dir.path().join("key.pem")).unwrap();
    meterbench_signing::sign_bundle(&folder, &bench_key, "test").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .arg("verify")
        .arg(&folder)
        .arg("--key")
        .arg(&public)
        .output()
        .unwrap();
    let said = text(&out);
    assert_ne!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("dcc.xml") && said.contains("XML signature"),
        "{said}"
    );
}

/// What is typed at the start is checked before anything is switched on.
#[test]
fn an_unknown_signatory_a_future_receipt_a_control_character_and_a_paste_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let attempt = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_meterbench"))
            .args(["run", "--quiet", "--reports"])
            .arg(&reports)
            .args(extra)
            .env("METERBENCH_SIGNING_KEY", dir.path().join("key.pem"))
            .current_dir(repo())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (out.status.code(), text(&out))
    };
    let (code, said) = attempt(&["--customer", CUSTOMER, "--signer", "Mallory"]);
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("`Mallory` is not an authorised signatory of station sim-1")
            && said.contains(SIGNATORY),
        "{said}"
    );
    let (code, said) = attempt(&["--customer", CUSTOMER, "--received", "2999-01-01"]);
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("--received 2999-01-01 is after today"),
        "{said}"
    );
    let (code, said) = attempt(&["--customer", "Stadtwerke\u{1d}GmbH"]);
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("character U+001D"), "{said}");
    // A right-to-left override would print the name backwards on the certificate.
    let (code, said) = attempt(&["--customer", "Stadtwerke \u{202E}HbmG"]);
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("U+202E"), "{said}");
    // A paste of a whole file is not a customer's name (it was accepted at 90 000
    // characters); the limits are a certificate's line, and its contact's few lines.
    let long = "x".repeat(201);
    let (code, said) = attempt(&["--customer", &long]);
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("--customer is 201 characters long; a certificate takes at most 200"),
        "{said}"
    );
    let (code, said) = attempt(&["--customer", CUSTOMER, "--condition", &"y".repeat(501)]);
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("--condition is 501 characters long"),
        "{said}"
    );
    assert!(
        !reports.exists() || run_folders(&reports).is_empty(),
        "a refused start made a run"
    );
}

/// Without an order the certificate says the customer was not recorded, never a
/// placeholder name.
#[test]
fn a_run_without_a_customer_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let out = Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args(["run", "--quiet", "--reports"])
        .arg(&reports)
        .env("METERBENCH_SIGNING_KEY", dir.path().join("key.pem"))
        .env_remove("METERBENCH_STORE")
        .current_dir(repo())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let folder = &run_folders(&reports)[0];
    let html = html_text(&folder.join("certificate.html"));
    assert!(
        html.contains("Customer not recorded (none was given when the run was started)"),
        "{html}"
    );
    let dcc = std::fs::read_to_string(folder.join("dcc.xml")).unwrap();
    assert!(dcc.contains("Customer not recorded"));
}
