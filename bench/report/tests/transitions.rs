//! A current sensor calibrated at transition points, as the certificate and the DCC show
//! it: a CSP1 with L1 in limits, L2 reading 15 % high and L3 15 % low (see
//! tests/data/README.md), so the record holds all three kinds of transition result:
//! located and accepted, located and failed, and beyond the search's bracket.

mod common;

use common::{Validation, record, validate_dcc};
use meterbench_report::certificate::CertificateContext;
use meterbench_report::dcc::DccContext;
use meterbench_report::{render_certificate_html, render_dcc_xml};
use meterbench_runner::record::PortResult;

const RECORD: &str = "record-csp1-transitions.json";
const DCC: &str = "https://ptb.de/dcc";
const SI: &str = "https://ptb.de/si";

/// A transition result as the record has it: channel, point, (error, U, k) where it was
/// located, and whether it passed.
struct Transition {
    channel: String,
    point: String,
    located: Option<(f64, f64, f64)>,
    passed: bool,
}

fn transitions() -> Vec<Transition> {
    let r = record(RECORD);
    let mut v = Vec::new();
    for s in &r.steps {
        for p in &s.ports {
            if let Some(PortResult::Transition {
                error_percent,
                expanded_u_percent,
                budget,
                passed,
                ..
            }) = &p.result
            {
                let located = match (error_percent, expanded_u_percent, budget) {
                    (Some(e), Some(u), Some(b)) => Some((*e, *u, b.coverage_factor)),
                    _ => None,
                };
                v.push(Transition {
                    channel: p.port.clone(),
                    point: s.name.clone(),
                    located,
                    passed: *passed,
                });
            }
        }
    }
    v
}

#[test]
fn the_record_holds_every_kind_of_transition_result() {
    let t = transitions();
    assert_eq!(t.len(), 21);
    assert!(
        t.iter().any(|x| x.located.is_some() && x.passed),
        "located, accepted"
    );
    assert!(
        t.iter().any(|x| x.located.is_some() && !x.passed),
        "located, failed"
    );
    assert!(
        t.iter().any(|x| x.located.is_none() && !x.passed),
        "beyond the bracket"
    );
    assert!(t.iter().filter(|x| x.channel == "L1").all(|x| x.passed));
}

#[test]
fn the_certificate_shows_each_transition_and_the_method() {
    let r = record(RECORD);
    let mut c = CertificateContext::new("Dr. Erika Mustermann", "meterbench verify record.json");
    c.laboratory_address = Some("1 Reference Way, Braunschweig".into());
    let html = render_certificate_html(&r, &c).unwrap();
    for expected in [
        "<h3>Transition points</h3>",
        "Boundary b",
        "Transition &mu;",
        "Telegrams (s)",
        // L1 at 5 A: located at 4.461 A, +0.87 % with U 0.78 %, k = 2.
        "<td>5 A balanced (4 → 5)</td><td>L1</td><td class=\"num\">4 → 5 A</td><td class=\"num\">4.5 A</td><td class=\"num\">4.461 A</td><td class=\"num\">0.017 A</td><td class=\"num\">22 (66 s)</td><td class=\"num\">+0.87 %</td><td class=\"num\">0.78 %</td><td class=\"num\">2.00</td>",
        // L2 beyond the bracket: a bound, no value.
        "beyond +11.72 %",
        "<td class=\"res\">FAIL: outside ±5 %</td>",
        "5 A balanced (4 → 5), channel L2: transition outside ±5 %: the reading flips below 4.028 A (one-sided 97.5 %), an error beyond +11.72 %.",
        // The method and the uncertainty say what a transition is and what U holds.
        "At a transition point the bench steps the current",
        "Reference current, transition points",
        "at transition points the search&rsquo;s standard uncertainty of the transition current",
        // The 16 A points' unloaded channels: the 0 A check, under the readings.
        "<h3>Current readings</h3>",
        "reads 0 A",
    ] {
        assert!(html.contains(expected), "{expected:?} missing");
    }
    // No fixed-current point here: the resolution is not claimed in any budget.
    assert!(!html.contains("The budget includes the readings' resolution"));
    assert!(!html.contains("the sensor&rsquo;s reading resolution and"));
}

#[test]
fn the_dcc_states_each_transition_with_its_coverage_factor_and_validates() {
    let r = record(RECORD);
    let mut c = DccContext::new("Dr. Erika Mustermann", "DE");
    c.issue_date = Some("2026-12-06".into());
    let xml = render_dcc_xml(&r, &c).unwrap();
    match validate_dcc(&xml) {
        Validation::Valid | Validation::Skipped => {}
        Validation::Invalid(msg) => panic!("DCC does not validate:\n{msg}"),
    }
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let results: Vec<roxmltree::Node> = doc
        .descendants()
        .filter(|n| n.has_tag_name((DCC, "result")))
        .filter(|n| {
            n.attribute("id")
                .is_some_and(|id| id.starts_with("transition-"))
        })
        .collect();
    let t = transitions();
    assert_eq!(results.len(), t.len());
    let text = |n: roxmltree::Node, ns: &str, tag: &str| -> Vec<String> {
        n.descendants()
            .filter(|c| c.has_tag_name((ns, tag)))
            .filter_map(|c| c.text().map(str::to_string))
            .collect()
    };
    for (node, x) in results.iter().zip(&t) {
        let (channel, point, located, passed) = (&x.channel, &x.point, &x.located, &x.passed);
        let name = text(*node, DCC, "content").join(" ");
        assert!(
            name.contains(&format!("Channel {channel}, {point}")),
            "{name}"
        );
        let conformity = text(*node, DCC, "conformity");
        assert_eq!(
            conformity.last().map(String::as_str),
            Some(if *passed { "pass" } else { "fail" }),
            "{name}"
        );
        match located {
            // μ with its standard uncertainty (k = 1), then the error with U and k.
            Some((_, _, k)) => {
                let factors = text(*node, SI, "coverageFactor");
                assert_eq!(factors, ["1".to_string(), format!("{k:.2}")], "{name}");
                assert_eq!(text(*node, SI, "uncertainty").len(), 2);
            }
            // Beyond the bracket: no value of μ or of the error, only the statement.
            None => {
                assert!(text(*node, SI, "coverageFactor").is_empty(), "{name}");
                assert!(name.contains("transition outside ±5 %"), "{name}");
            }
        }
    }
    // The method of transition points is a method of the certificate.
    assert!(xml.contains("<dcc:usedMethod id=\"transition\">"));
}
