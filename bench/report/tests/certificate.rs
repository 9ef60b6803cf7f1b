//! The HTML certificate rendered from fixture records.

mod common;

use common::{record, templates_dir};
use meterbench_report::certificate::{CERTIFICATE_TEMPLATE, CertificateContext};
use meterbench_report::{RenderError, TemplateOrigin, render_certificate_html, template_origin};
use meterbench_runner::record::{Outcome, PortResult};

const VERIFY: &str = "sha256sum record.json\nmeterbench verify record.json";

fn ctx() -> CertificateContext {
    let mut c = CertificateContext::new("Dr. Erika Mustermann", VERIFY);
    c.signer_role = Some("Head of laboratory".into());
    c.laboratory_address = Some("1 Reference Way, Braunschweig".into());
    c
}

#[test]
fn names_the_meter_every_instrument_and_every_point() {
    let r = record("record-pass.json");
    let html = render_certificate_html(&r, &ctx()).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains(&r.dut.serial_number));
    assert!(html.contains(&r.dut.manufacturer));
    assert!(html.contains(&r.run_id));
    assert!(html.contains(&r.procedure.sha256));
    for i in &r.instruments {
        assert!(html.contains(&i.calibration.id), "{}", i.calibration.id);
        assert!(html.contains(&i.declared_serial_number));
        assert!(html.contains(&i.calibration.due.to_string()));
    }
    let mut points = 0;
    for step in &r.steps {
        for p in &step.ports {
            if let Some(PortResult::Accuracy { .. }) = p.result {
                assert!(
                    html.contains(&format!(">{}</td>", step.name)),
                    "{}",
                    step.name
                );
                points += 1;
            }
        }
    }
    assert_eq!(points, 22);
    assert!(html.contains("Starting current") && html.contains("No-load (creep)"));
    assert!(html.contains(r#"<span class="verdict pass">PASS</span>"#));
    assert!(!html.contains(r#"<tr class="fail">"#));
    assert!(html.contains("Dr. Erika Mustermann"));
    assert!(html.contains("meterbench verify record.json"));
    assert!(html.contains("approximately 95"));
    assert!(html.contains("Simple acceptance"));
    assert!(html.contains("Simulated bench"));
    // Both ports' plots are inline SVG: the page needs no other file.
    assert_eq!(html.matches("<svg").count(), 2);
    assert!(!html.contains("src=\""));
}

#[test]
fn marks_the_failed_point() {
    let r = record("record-fail.json");
    assert_eq!(r.outcome, Outcome::Fail);
    let html = render_certificate_html(&r, &ctx()).unwrap();
    assert!(html.contains(r#"<span class="verdict fail">FAIL</span>"#));
    let fail_rows: Vec<&str> = html
        .split("<tr")
        .filter(|row| row.starts_with(r#" class="fail">"#))
        .collect();
    assert_eq!(fail_rows.len(), 1, "{fail_rows:#?}");
    assert!(fail_rows[0].contains(">Iref PF1</td>"));
    assert!(fail_rows[0].contains(">FAIL</td>"));
    assert!(html.contains("1 of 22 accuracy points not accepted"));
}

#[test]
fn escapes_what_it_is_given() {
    let r = record("record-pass.json");
    let mut c = ctx();
    c.signer = "<script>alert(1)</script> & Co".into();
    let html = render_certificate_html(&r, &c).unwrap();
    assert!(!html.contains("<script>"));
    assert!(html.contains("&lt;script&gt;"));
}

#[test]
fn same_record_same_bytes() {
    let r = record("record-fail.json");
    let a = render_certificate_html(&r, &ctx()).unwrap();
    let b = render_certificate_html(&r, &ctx()).unwrap();
    assert_eq!(a, b);
}

#[test]
fn template_from_the_directory_or_embedded() {
    let r = record("record-pass.json");
    let dir = templates_dir();
    assert_eq!(
        template_origin(CERTIFICATE_TEMPLATE, Some(&dir)),
        TemplateOrigin::File(dir.join(CERTIFICATE_TEMPLATE))
    );
    let mut from_dir = ctx();
    from_dir.templates_dir = Some(dir);
    let embedded = render_certificate_html(&r, &ctx()).unwrap();
    assert_eq!(render_certificate_html(&r, &from_dir).unwrap(), embedded);

    // A lab's own template wins; a directory without the file falls back.
    let own = tempfile::tempdir().unwrap();
    std::fs::write(
        own.path().join(CERTIFICATE_TEMPLATE),
        "<p>{{ r.dut.serial_number }} by {{ signer }}</p>",
    )
    .unwrap();
    from_dir.templates_dir = Some(own.path().to_path_buf());
    assert_eq!(
        render_certificate_html(&r, &from_dir).unwrap(),
        "<p>SIM-CPIM-000123 by Dr. Erika Mustermann</p>"
    );
    let empty = tempfile::tempdir().unwrap();
    from_dir.templates_dir = Some(empty.path().to_path_buf());
    assert_eq!(render_certificate_html(&r, &from_dir).unwrap(), embedded);
}

#[test]
fn a_broken_template_says_where() {
    let r = record("record-pass.json");
    let own = tempfile::tempdir().unwrap();
    std::fs::write(
        own.path().join(CERTIFICATE_TEMPLATE),
        "{{ r.no_such_field }}",
    )
    .unwrap();
    let mut c = ctx();
    c.templates_dir = Some(own.path().to_path_buf());
    let e = render_certificate_html(&r, &c).unwrap_err();
    assert!(matches!(e, RenderError::Template { .. }), "{e}");
    assert!(e.to_string().contains("certificate.html.j2"), "{e}");
}

#[test]
fn refuses_a_run_in_progress_and_an_unsigned_certificate() {
    let mut r = record("record-pass.json");
    let unsigned = CertificateContext::new("  ", VERIFY);
    assert!(matches!(
        render_certificate_html(&r, &unsigned),
        Err(RenderError::InvalidContext(_))
    ));
    r.outcome = Outcome::InProgress;
    assert!(matches!(
        render_certificate_html(&r, &ctx()),
        Err(RenderError::NotFinished { .. })
    ));
}

#[test]
fn the_inspection_and_a_failing_register_are_on_the_certificate() {
    let r = record("record-eichrecht-register-fail.json");
    let html = render_certificate_html(&r, &ctx()).unwrap();
    for expected in [
        "<h3>Inspection</h3>",
        "User seals on the connection surface from the power plate to the meter",
        "Eichrecht type label",
        "<h3>Register (meter constant)</h3>",
        "FAIL: register disagrees with its pulses",
        "outside its limits</strong> (out of limits: Register (meter constant))",
    ] {
        assert!(html.contains(expected), "{expected:?} missing");
    }
}

#[test]
fn a_current_sensor_has_its_own_certificate_wording() {
    let r = record("record-csp1-fail.json");
    let html = render_certificate_html(&r, &ctx()).unwrap();
    for expected in [
        "Current sensor &middot;",
        "<h3>Current readings</h3>",
        "86 86 86 86 86",
        "<h3>Telegrams</h3>",
        "XMX_P1CS_V05",
        "The sensor is <strong>outside its limits</strong>",
        "the sensor&rsquo;s reading resolution",
    ] {
        assert!(html.contains(expected), "{expected:?} missing");
    }
    assert!(!html.contains("Meter constant (test output)"));
}
