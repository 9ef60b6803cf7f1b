//! Typst → PDF: bytes, determinism, diagnostics, escaping, packages, templates.

use meterbench_pdf::{
    PdfError, audit_source, certificate_source, compile_pdf, font_families, render_pdf,
    render_template, render_text,
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const MINIMAL: &str = "#set page(width: 80mm, height: 40mm)\n= Hello\nmeterbench *PDF* test.\n";

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn certificate_context() -> Value {
    let text = std::fs::read_to_string(data("certificate-context.json")).expect("context file");
    serde_json::from_str(&text).expect("context JSON")
}

fn plot_files() -> Vec<(String, Vec<u8>)> {
    let svg = std::fs::read(data("error-left.svg")).expect("plot file");
    vec![("error-left.svg".to_string(), svg)]
}

fn compile_error(source: &str) -> PdfError {
    match render_pdf(source, &[]) {
        Ok(_) => panic!("expected a compile error for:\n{source}"),
        Err(e) => e,
    }
}

#[test]
fn minimal_source_renders_to_a_pdf() {
    let pdf = render_pdf(MINIMAL, &[]).expect("renders");
    assert!(pdf.starts_with(b"%PDF-"), "{:?}", &pdf[..8]);
    assert!(pdf.len() > 1000);
    let text = render_text(MINIMAL, &[]).expect("lays out");
    assert_eq!(text.len(), 1);
    assert!(text[0].contains("Hello"), "{text:?}");
}

#[test]
fn same_input_gives_the_same_bytes() {
    let source = "#set page(width: 80mm, height: 60mm)\n#image(\"error-left.svg\")\nText.\n";
    let a = render_pdf(source, &plot_files()).expect("renders");
    let b = render_pdf(source, &plot_files()).expect("renders again");
    assert!(a == b, "two renders of the same input differ");
    let other =
        render_pdf(&source.replace("Text.", "Other text."), &plot_files()).expect("renders");
    assert_ne!(a, other);
}

#[test]
fn certificate_bytes_are_the_same_in_a_fresh_process() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("meterbench-pdf-determinism");
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let mut outputs = Vec::new();
    for i in 0..2 {
        let out = dir.join(format!("child-{i}.pdf"));
        let _ = std::fs::remove_file(&out);
        let status = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "child_renders_certificate_to_file",
                "--test-threads",
                "1",
            ])
            .env("MB_PDF_CHILD_OUT", &out)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("child runs");
        assert!(status.success(), "child {i} failed");
        outputs.push(std::fs::read(&out).expect("child wrote the PDF"));
    }
    let here = render_pdf(
        &certificate_source(certificate_context()).expect("template"),
        &plot_files(),
    )
    .expect("renders");
    assert!(
        outputs[0] == outputs[1],
        "two processes gave different bytes"
    );
    assert!(
        outputs[0] == here,
        "a fresh process and a warm one gave different bytes"
    );
}

/// Helper for the test above: does nothing unless started by it.
#[test]
fn child_renders_certificate_to_file() {
    let Some(out) = std::env::var_os("MB_PDF_CHILD_OUT") else {
        return;
    };
    let source = certificate_source(certificate_context()).expect("template");
    let pdf = render_pdf(&source, &plot_files()).expect("renders");
    std::fs::write(out, pdf).expect("writes");
}

#[test]
fn no_clock_no_creation_date_unless_the_source_sets_one() {
    let pdf = render_pdf(MINIMAL, &[]).expect("renders");
    assert!(!contains(&pdf, b"CreationDate"), "a date crept in");
    let err = compile_error("#datetime.today().display()");
    assert!(err.to_string().contains("/main.typ:1:"), "{err}");
    let dated = render_pdf(
        "#set document(title: \"t\", date: datetime(year: 2026, month: 11, day: 22))\nx",
        &[],
    )
    .expect("renders");
    assert!(
        contains(&dated, b"D:20261122"),
        "the document's own date is kept"
    );
}

#[test]
fn certificate_template_renders_from_a_hand_made_context() {
    let source = certificate_source(certificate_context()).expect("template renders");
    let rendered = compile_pdf(&source, &plot_files()).unwrap_or_else(|e| {
        panic!("{e}\n--- source ---\n{source}");
    });
    assert!(rendered.pdf.starts_with(b"%PDF-"));
    assert!(
        rendered.warnings.is_empty(),
        "Typst warnings: {:#?}",
        rendered.warnings
    );
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("certificate.pdf");
    std::fs::write(&out, &rendered.pdf).expect("writes");
    std::fs::write(out.with_extension("typ"), &source).expect("writes");
    eprintln!("certificate written to {}", out.display());

    let pages = render_text(&source, &plot_files()).expect("lays out");
    let all = pages.join("\n");
    for expected in [
        "Calibration certificate",
        "20261121T204319.373Z-sim-1-SIM-CPIM-000123",
        "SIM-CPIM-000123",
        "Accuracy, port right",
        "Iref PF1",
        "+1.27",
        "Dr. Jane Example",
        "Simulated bench",
        "MISMATCH",
        "OVERDUE",
        "approximately 95",
        "Register (meter constant)",
        "001234.6715",
        "disagrees",
        "User seals on the connection surface",
    ] {
        assert!(all.contains(expected), "{expected:?} missing from\n{all}");
    }
    // The coverage probability in prose is a percentage, never "0.95 %".
    assert!(!all.contains("0.95 %"), "{all}");
    let last = pages.last().expect("a page");
    assert!(
        last.contains(&format!("Page {} of {}", pages.len(), pages.len())),
        "{last}"
    );
}

#[test]
fn certificate_without_optional_parts_renders() {
    let mut ctx = certificate_context();
    ctx["plots"] = json!([]);
    ctx["laboratory_address"] = Value::Null;
    ctx["signer_role"] = Value::Null;
    ctx["r"]["finished"] = Value::Null;
    ctx["r"]["outcome"] = json!("ERROR");
    ctx["r"]["outcome_reason"] = json!("counter timed out");
    ctx["r"]["budget_columns"] = json!([]);
    ctx["r"]["checks"] = json!([]);
    ctx["r"]["software"] = json!([]);
    ctx["r"]["unmeasured"] = json!([{"name": "Imax PF1", "outcome": "ERROR", "message": "counter timed out after 30 s"}]);
    ctx["r"]["simulated"] = json!(false);
    let source = certificate_source(&ctx).expect("template renders");
    let rendered = compile_pdf(&source, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert!(rendered.warnings.is_empty(), "{:#?}", rendered.warnings);
    let all = render_text(&source, &[]).expect("lays out").join("\n");
    assert!(all.contains("without a verdict"), "{all}");
    assert!(all.contains("not recorded"), "{all}");
}

#[test]
fn a_missing_plot_file_is_a_clear_error() {
    let source = certificate_source(certificate_context()).expect("template renders");
    let err = render_pdf(&source, &[]).expect_err("the plot is not passed");
    let text = err.to_string();
    eprintln!("{text}");
    assert!(
        text.contains("error-left.svg was not passed to render_pdf"),
        "{text}"
    );
    assert!(text.contains("/main.typ:"), "{text}");
}

#[test]
fn syntax_error_is_reported_with_line_and_column() {
    let err = compile_error("= Title\n\nSome text.\n#let x = (1, 2\nMore.\n");
    let PdfError::Compile { diagnostics } = &err else {
        panic!("not a compile error: {err}");
    };
    let d = &diagnostics[0];
    assert_eq!(d.file.as_deref(), Some("/main.typ"));
    assert_eq!((d.line, d.column), (Some(4), Some(10)), "{err}");
    assert_eq!(d.message, "unclosed delimiter");
    let text = err.to_string();
    assert!(text.contains("/main.typ:"), "{text}");
    assert!(text.contains("error:"), "{text}");
}

#[test]
fn runtime_error_points_at_the_template_line() {
    let err = compile_error("a\nb\n#let f(x) = x.at(5)\n#f((1, 2))\n");
    let d = &err.diagnostics()[0];
    eprintln!("{err}");
    assert_eq!(d.line, Some(3), "{err}");
    assert_eq!(d.source_line.as_deref(), Some("#let f(x) = x.at(5)"));
    assert!(d.trace.iter().any(|t| t.contains("/main.typ:4:")), "{d:?}");
}

#[test]
fn preview_packages_are_refused() {
    let err = compile_error("#import \"@preview/cetz:0.3.4\": canvas\n#canvas({})\n");
    let text = err.to_string();
    eprintln!("{text}");
    assert!(text.contains("@preview/cetz:0.3.4"), "{text}");
    assert!(text.contains("never downloads"), "{text}");
    assert_eq!(err.diagnostics()[0].line, Some(1), "{text}");
}

#[test]
fn file_names_must_stay_inside_the_document() {
    for bad in ["../secret.svg", "main.typ", "", "a\\b.svg"] {
        let err = render_pdf(MINIMAL, &[(bad.to_string(), vec![1])]).expect_err(bad);
        assert!(matches!(err, PdfError::InvalidFile { .. }), "{bad}: {err}");
    }
    let twice = vec![
        ("a.svg".to_string(), vec![1]),
        ("/a.svg".to_string(), vec![2]),
    ];
    assert!(matches!(
        render_pdf(MINIMAL, &twice),
        Err(PdfError::InvalidFile { .. })
    ));
    // Folders and included Typst files work.
    let files = vec![
        ("img/error.svg".to_string(), plot_files().remove(0).1),
        ("parts/note.typ".to_string(), b"Included note.".to_vec()),
    ];
    let source = "#image(\"img/error.svg\", width: 2cm)\n#include \"parts/note.typ\"\n";
    let text = render_text(source, &files).expect("renders").join(" ");
    assert!(text.contains("Included note."), "{text}");
}

/// Strings that would be code, math, markup or syntax errors if they were not escaped.
const HOSTILE: &[&str] = &[
    "#panic(\"x\")",
    "$x$",
    "*bold*",
    "\"quotes\"",
    "_under_",
    "`raw`",
    "@ref <label>",
    "[bracket] ]",
    "back\\slash \\u{41}",
    "a ~ b",
    "http://example.org // not a comment /* nor this */",
    "= not a heading",
    "- not a list",
    "+ nor this",
    "1. nor this",
    "/ Term: no",
    "dots...",
    "it's",
    "{{ jinja }} {% raw %}",
];

#[test]
fn hostile_strings_print_literally_in_a_template() {
    let template = "#set page(width: 200mm, height: auto, margin: 5mm)\n{% for s in items %}\n{{ s }}\n\n[{{ s }}]\n\n#strong[{{ s }}]\n\n#text({{ s | typst_str }})\n\n{% endfor %}\n";
    let source =
        render_template("t.typ.j2", template, json!({ "items": HOSTILE })).expect("template");
    let text = render_text(&source, &[])
        .unwrap_or_else(|e| panic!("{e}\n{source}"))
        .join(" ");
    for s in HOSTILE {
        let n = text.matches(s).count();
        assert!(
            n >= 4,
            "{s:?} appears {n} times in\n{text}\n--- source ---\n{source}"
        );
    }
}

#[test]
fn hostile_strings_in_the_certificate_do_not_execute() {
    let mut ctx = certificate_context();
    ctx["r"]["dut"]["serial_number"] = json!("#panic(\"x\")");
    ctx["r"]["dut"]["manufacturer"] = json!("$x$");
    ctx["r"]["dut"]["device_type"] = json!("*bold*");
    ctx["signer"] = json!("\"quotes\"");
    ctx["r"]["run_id"] = json!("run_1 <lbl> @ref");
    ctx["r"]["station"]["laboratory"] = json!("Lab ] #set page(width: 1cm)");
    ctx["r"]["ports"][0]["rows"][0]["name"] = json!("Imin // comment");
    ctx["how_to_verify"] = json!("\"); #panic(\"y\") //\n`raw`");
    ctx["plots"] = json!([{"port": "left", "file": "a\").png"}]);
    let source = certificate_source(&ctx).expect("template renders");
    let png = tiny_png();
    let files = vec![("a\").png".to_string(), png)];
    let rendered = compile_pdf(&source, &files).unwrap_or_else(|e| panic!("{e}\n{source}"));
    assert!(rendered.pdf.starts_with(b"%PDF-"));
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile-certificate.pdf");
    std::fs::write(&out, &rendered.pdf).expect("writes");
    let text = render_text(&source, &files).expect("lays out").join("\n");
    for s in [
        "#panic(\"x\")",
        "$x$",
        "*bold*",
        "\"quotes\"",
        "run_1 <lbl> @ref",
        "Lab ] #set page(width: 1cm)",
        "Imin // comment",
        "#panic(\"y\") //",
        "`raw`",
    ] {
        assert!(text.contains(s), "{s:?} missing from\n{text}");
    }
}

#[test]
fn audit_template_renders() {
    let ctx = json!({
        "title": "Audit report, station sim-1, November 2026",
        "laboratory": "meterbench simulated laboratory",
        "period": {"from": "2026-11-01", "to": "2026-11-30"},
        "generated": "3 run records under reports/, meterbench 0.1.0",
        "issue_date": "2026-12-01",
        "summary": {"runs": 3, "pass": 1, "fail": 1, "not_decidable": 0, "error": 1, "aborted": 0, "first_pass_yield": "33.3 %"},
        "yield_rows": [
            {"station": "sim-1", "day": "2026-11-20", "runs": 1, "pass": 1, "fail": 0, "not_decidable": 0, "error": 0, "aborted": 0, "first_pass_yield": "100 %", "low": false},
            {"station": "sim-1", "day": "2026-11-21", "runs": 2, "pass": 0, "fail": 1, "not_decidable": 0, "error": 1, "aborted": 0, "first_pass_yield": "0 %", "low": true}
        ],
        "yield_target": "95 %",
        "yield_days_total": 2,
        "cpk_rows": [
            {"point": "Iref PF1", "port": "left", "n": 3, "mean": "-0.05", "sd": "0.04", "mpe": "1", "cpk": "7.9", "low": false},
            {"point": "Imin PF1", "port": "right", "n": 3, "mean": "0.90", "sd": "0.30", "mpe": "1.5", "cpk": "0.67", "low": true}
        ],
        "cpk_min": "1.33",
        "cpk_confidence": "95 %",
        "cpk_min_n": 30,
        "cpk_source": "Bissell (1990) [3p]",
        "drift_rows": [
            {"station": "sim-1", "point": "Iref PF1", "slope": "0.00210", "drift": "0.061", "out_of_control_days": 2, "suspected": true}
        ],
        "calibrations_due": [
            {"station": "sim-1", "role": "reference", "model": "6105A", "serial_number": "SIM-6105A-0001", "calibration_id": "DAkkS-D-K-12345-2026-11", "due": "2026-12-10", "days_left": 9, "overdue": false}
        ],
        "problem_runs": [
            {"run_id": "20261121T204319.373Z-sim-1-SIM-CPIM-000123", "started": "2026-11-21 20:43", "station": "sim-1", "dut_serial": "SIM-CPIM-000123", "outcome": "FAIL", "reason": "out of limits: Iref PF1"},
            {"run_id": "20261121T210000.000Z-sim-1-SIM-CPIM-000124", "started": "2026-11-21 21:00", "station": "sim-1", "dut_serial": "SIM-CPIM-000124", "outcome": "ERROR", "reason": "counter timed out"}
        ],
        "problem_runs_total": 57,
        "problem_runs_file": "problem-runs.csv",
        "images": [{"file": "error-left.svg", "caption": "Error at Iref PF1 per run"}]
    });
    let source = audit_source(&ctx).expect("template renders");
    let rendered = compile_pdf(&source, &plot_files()).unwrap_or_else(|e| panic!("{e}\n{source}"));
    assert!(rendered.pdf.starts_with(b"%PDF-"));
    assert!(rendered.warnings.is_empty(), "{:#?}", rendered.warnings);
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("audit.pdf");
    std::fs::write(&out, &rendered.pdf).expect("writes");
    let text = render_text(&source, &plot_files())
        .expect("lays out")
        .join("\n");
    for s in [
        "First-pass yield",
        "0.67",
        "counter timed out",
        "DAkkS-D-K-12345-2026-11",
        "0.061",
        "Error at Iref PF1 per run",
        "The first 2 of 57 such runs",
        "problem-runs.csv",
    ] {
        assert!(text.contains(s), "{s:?} missing from\n{text}");
    }
    // Empty lists render as a sentence, not an empty table.
    let mut empty = ctx.clone();
    for k in [
        "yield_rows",
        "cpk_rows",
        "drift_rows",
        "calibrations_due",
        "problem_runs",
        "images",
    ] {
        empty[k] = json!([]);
    }
    empty["generated"] = Value::Null;
    empty["issue_date"] = Value::Null;
    empty["yield_target"] = Value::Null;
    let source = audit_source(&empty).expect("template renders");
    let text = render_text(&source, &[])
        .unwrap_or_else(|e| panic!("{e}"))
        .join("\n");
    assert!(text.contains("No runs in this period."), "{text}");
}

#[test]
fn a_misspelt_context_key_is_a_template_error() {
    let mut ctx = certificate_context();
    ctx.as_object_mut().expect("object").remove("signer");
    let err = certificate_source(&ctx).expect_err("signer is missing");
    assert!(matches!(err, PdfError::Template { .. }), "{err}");
    assert!(err.to_string().contains("certificate.typ.j2"), "{err}");
}

#[test]
fn templates_name_only_bundled_fonts() {
    let families = font_families();
    for f in ["Libertinus Serif", "DejaVu Sans", "DejaVu Sans Mono"] {
        assert!(families.iter().any(|x| x == f), "{f} not in {families:?}");
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A 1×1 PNG, written by hand so the test needs no image encoder.
fn tiny_png() -> Vec<u8> {
    vec![
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f,
        0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xd0,
        0xf6, 0xaa, 0xfa, 0x0f, 0x00, 0x03, 0x82, 0x01, 0xef, 0x6b, 0x61, 0x69, 0x40, 0x00, 0x00,
        0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ]
}
