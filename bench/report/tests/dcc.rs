//! The DCC XML rendered from fixture records, validated against the DCC 3.2.1 schema.

mod common;

use common::{Validation, record, validate_dcc};
use meterbench_report::dcc::Customer;
use meterbench_report::{DccContext, RenderError, render_dcc_xml};

fn ctx() -> DccContext {
    let mut c = DccContext::new("Dr. Erika Mustermann", "DE");
    c.signer_role = Some("Head of laboratory".into());
    c.laboratory_address = Some("1 Reference Way, 38116 Braunschweig".into());
    c.issue_date = Some("2026-11-22".into());
    c
}

fn assert_valid(xml: &str) {
    match validate_dcc(xml) {
        Validation::Valid | Validation::Skipped => {}
        Validation::Invalid(msg) => panic!("DCC does not validate:\n{msg}"),
    }
}

const DCC: &str = "https://ptb.de/dcc";
const SI: &str = "https://ptb.de/si";

/// (conformity, error value, U) of every error quantity, in document order.
fn error_points(xml: &str) -> Vec<(String, String, String)> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name((DCC, "quantity")))
        .filter_map(|q| {
            let real = q.children().find(|c| c.has_tag_name((SI, "real")))?;
            let unc = real
                .children()
                .find(|c| c.has_tag_name((SI, "expandedUnc")))?;
            let text = |parent: roxmltree::Node, ns: &str, tag: &str| {
                parent
                    .descendants()
                    .find(|c| c.has_tag_name((ns, tag)))
                    .and_then(|c| c.text())
                    .unwrap()
                    .to_string()
            };
            Some((
                text(q, DCC, "conformity"),
                text(real, SI, "value"),
                text(unc, SI, "uncertainty"),
            ))
        })
        .collect()
}

#[test]
fn a_passing_run_validates() {
    let r = record("record-pass.json");
    let xml = render_dcc_xml(&r, &ctx()).unwrap();
    assert_valid(&xml);
    assert!(xml.contains(&format!(
        "<dcc:uniqueIdentifier>{}</dcc:uniqueIdentifier>",
        r.run_id
    )));
    assert!(xml.contains(&format!("<dcc:value>{}</dcc:value>", r.dut.serial_number)));
    for i in &r.instruments {
        assert!(xml.contains(&format!("<dcc:value>{}</dcc:value>", i.calibration.id)));
    }
    let points = error_points(&xml);
    assert_eq!(points.len(), 22);
    assert!(points.iter().all(|(c, _, _)| c == "pass"));
    // Each point states its own k (t at its ν_eff) for the one coverage probability.
    let stated: Vec<&str> = xml
        .split("<si:coverageFactor>")
        .skip(1)
        .map(|t| t.split('<').next().unwrap())
        .collect();
    let ks: Vec<String> = r
        .steps
        .iter()
        .flat_map(|s| &s.ports)
        .filter_map(|p| match &p.result {
            Some(meterbench_runner::record::PortResult::Accuracy { budget, .. }) => {
                Some(format!("{:.2}", budget.coverage_factor))
            }
            _ => None,
        })
        .collect();
    assert_eq!(ks.len(), 22);
    assert_eq!(
        &stated[..22],
        &ks.iter().map(String::as_str).collect::<Vec<_>>()[..]
    );
    assert!(xml.contains("<si:coverageProbability>0.9545</si:coverageProbability>"));
    assert!(xml.contains(r"<si:unit>\percent</si:unit>"));
    assert!(xml.contains(r"<si:unit>\ampere</si:unit>"));
    assert!(xml.contains(r"<si:unit>\volt</si:unit>"));
    assert!(xml.contains("<dcc:norm>EN 50470-3</dcc:norm>"));
    assert!(xml.contains("<dcc:norm>ILAC-G8:09/2019</dcc:norm>"));
    assert!(xml.contains("<dcc:conformity>pass</dcc:conformity>"));
    assert!(xml.contains("No customer was recorded for this run"));
    assert!(xml.contains("Gated reference-count method"));
}

#[test]
fn a_failing_run_validates_and_carries_fail() {
    let r = record("record-fail.json");
    let xml = render_dcc_xml(&r, &ctx()).unwrap();
    assert_valid(&xml);
    let points = error_points(&xml);
    let fails: Vec<_> = points.iter().filter(|(c, _, _)| c == "fail").collect();
    assert_eq!(fails.len(), 1, "{points:?}");
    assert!(fails[0].1.parse::<f64>().unwrap() > 1.0);
    // The overall statement says fail too.
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let statement = doc
        .descendants()
        .find(|n| n.has_tag_name((DCC, "statement")) && n.attribute("id") == Some("decisionRule"))
        .unwrap();
    let conformity = statement
        .children()
        .find(|c| c.has_tag_name((DCC, "conformity")))
        .unwrap();
    assert_eq!(conformity.text(), Some("fail"));
}

#[test]
fn text_is_escaped_and_still_valid() {
    let r = record("record-pass.json");
    let mut c = ctx();
    c.signer = "Smith & <Jones>".into();
    c.customer = Customer {
        name: "A \"quoted\" & <odd> customer".into(),
        address: "  Straße 1,\n  12345 Ort  ".into(),
        placeholder: false,
    };
    let xml = render_dcc_xml(&r, &c).unwrap();
    assert_valid(&xml);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let names: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name((DCC, "content")))
        .filter_map(|n| n.text())
        .collect();
    assert!(names.contains(&"Smith & <Jones>"));
    assert!(names.contains(&"A \"quoted\" & <odd> customer"));
    assert!(names.contains(&"Straße 1, 12345 Ort"));
    assert!(!xml.contains("placeholder"));
}

/// Text that would end an element, an attribute or a CDATA section if it were pasted
/// into the markup: the writer escapes it, and it reads back whole.
#[test]
fn a_hostile_string_is_escaped_by_the_writer() {
    const HOSTILE: &str = "A & B <x> \"q\" ]]>";
    let r = record("record-pass.json");
    let mut c = ctx();
    c.customer = Customer {
        name: HOSTILE.into(),
        address: HOSTILE.into(),
        placeholder: false,
    };
    c.signer_role = Some(HOSTILE.into());
    c.laboratory_code = Some(HOSTILE.into());
    c.document = Some((format!("{HOSTILE}.pdf"), b"%PDF-1.7".to_vec()));
    let xml = render_dcc_xml(&r, &c).unwrap();
    assert!(
        !xml.contains(HOSTILE),
        "a value went into the markup unescaped"
    );
    assert!(xml.contains("A &amp; B &lt;x&gt; &quot;q&quot; ]]&gt;"));
    assert_valid(&xml);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let text_of = |tag: &str| -> Vec<&str> {
        doc.descendants()
            .filter(|n| n.has_tag_name((DCC, tag)))
            .filter_map(|n| n.text())
            .collect()
    };
    let customer = doc
        .descendants()
        .find(|n| n.has_tag_name((DCC, "customer")))
        .unwrap();
    let customer_texts: Vec<&str> = customer
        .descendants()
        .filter(|n| n.has_tag_name((DCC, "content")))
        .filter_map(|n| n.text())
        .collect();
    assert_eq!(customer_texts, [HOSTILE, HOSTILE]);
    assert_eq!(text_of("role"), [HOSTILE]);
    assert_eq!(text_of("calibrationLaboratoryCode"), [HOSTILE]);
    assert_eq!(text_of("fileName"), [format!("{HOSTILE}.pdf").as_str()]);
}

#[test]
fn same_record_same_bytes() {
    let r = record("record-fail.json");
    assert_eq!(
        render_dcc_xml(&r, &ctx()).unwrap(),
        render_dcc_xml(&r, &ctx()).unwrap()
    );
}

#[test]
fn rejects_bad_codes() {
    let r = record("record-pass.json");
    let mut c = ctx();
    c.country_code = "Germany".into();
    assert!(matches!(
        render_dcc_xml(&r, &c),
        Err(RenderError::InvalidContext(_))
    ));
    let mut c = ctx();
    c.issue_date = Some("22.11.2026".into());
    assert!(matches!(
        render_dcc_xml(&r, &c),
        Err(RenderError::InvalidContext(_))
    ));
}

#[test]
fn the_validator_rejects_a_broken_dcc() {
    let r = record("record-pass.json");
    let xml = render_dcc_xml(&r, &ctx()).unwrap().replace(
        "<dcc:conformity>pass</dcc:conformity>",
        "<dcc:conformity>ok</dcc:conformity>",
    );
    if let Validation::Valid = validate_dcc(&xml) {
        panic!("an invalid conformity value passed the schema check");
    }
}

#[test]
fn schema_locations_are_made_local() {
    let xsd = r#"<xs:import namespace="https://ptb.de/si" schemaLocation="https://ptb.de/si/v2.1.0/SI_Format.xsd"/>
<xs:import namespace="http://www.w3.org/2000/09/xmldsig#" schemaLocation="http://www.w3.org/TR/xmldsig-core/xmldsig-core-schema.xsd"/>"#;
    let local = common::localise_schema_locations(xsd);
    assert!(local.contains(r#"schemaLocation="SI_Format-2.1.0.xsd""#));
    assert!(local.contains(r#"schemaLocation="xmldsig-core-schema.xsd""#));
}

/// (conformity, value, U) of every quantity with an expanded uncertainty whose name is
/// `name`.
fn named_points(xml: &str, name: &str) -> Vec<(String, String, String)> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name((DCC, "quantity")))
        .filter(|q| {
            q.children()
                .find(|c| c.has_tag_name((DCC, "name")))
                .and_then(|n| n.descendants().find(|c| c.has_tag_name((DCC, "content"))))
                .and_then(|c| c.text())
                == Some(name)
        })
        .map(|q| {
            let text = |tag: (&str, &str)| {
                q.descendants()
                    .find(|c| c.has_tag_name(tag))
                    .and_then(|c| c.text())
                    .unwrap_or_default()
                    .to_string()
            };
            (
                text((DCC, "conformity")),
                text((SI, "value")),
                text((SI, "uncertainty")),
            )
        })
        .collect()
}

#[test]
fn the_register_test_and_the_inspection_are_in_the_dcc() {
    let r = record("record-eichrecht-register-fail.json");
    let xml = render_dcc_xml(&r, &ctx()).unwrap();
    assert_valid(&xml);
    let register = named_points(&xml, "Error of the register");
    assert_eq!(register.len(), 2, "{register:?}");
    assert_eq!(register[0].0, "pass");
    assert_eq!(register[1].0, "fail", "the right port's register runs away");
    assert!(xml.contains("Inspection: serial number, seals and labels"));
    assert_eq!(named_points(&xml, "Checks confirmed")[0].0, "pass");
}

#[test]
fn a_current_sensors_readings_are_in_the_dcc() {
    let r = record("record-csp1-fail.json");
    let xml = render_dcc_xml(&r, &ctx()).unwrap();
    assert_valid(&xml);
    let errors = named_points(&xml, "Mean error of the readings");
    assert!(!errors.is_empty());
    // Only L2 fails; its 80 A point reads 86 A: +7.5 %.
    let fails = xml.matches("<dcc:conformity>fail</dcc:conformity>").count();
    assert!(fails > 0);
    assert!(
        xml.contains("Channel L2, 80 A balanced") && xml.contains("<si:value>7.50</si:value>"),
        "the failing reading is missing"
    );
    assert!(xml.contains("Telegram stream: period, firmware id, CRC"));
    // Read from the parsed text: the writer escapes the apostrophe (`&apos;`).
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert!(
        doc.descendants()
            .filter_map(|n| n.text())
            .any(|t| t.contains("the sensor's reading resolution"))
    );
}
