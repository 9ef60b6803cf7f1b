//! Plot files rendered from fixture records.

mod common;

use common::record;
use meterbench_report::render_plots;
use std::path::PathBuf;

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

fn names(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn writes_png_and_svg_of_every_plot() {
    let r = record("record-fail.json");
    let dir = tempfile::tempdir().unwrap();
    let paths = render_plots(&r, dir.path()).unwrap();
    let names = names(&paths);
    // 2 ports' error plots + 11 accuracy points' pulse plots, PNG and SVG each.
    assert_eq!(paths.len(), 2 * (2 + 11), "{names:?}");
    for n in [
        "error-vs-current-left.png",
        "error-vs-current-right.svg",
        "pulse-intervals-03-imin-pf1.png",
        "pulse-intervals-13-iref-pf1-l3.svg",
    ] {
        assert!(names.contains(&n.to_string()), "{n} not in {names:?}");
    }
    for p in &paths {
        let bytes = std::fs::read(p).unwrap();
        assert!(
            bytes.len() > 1000,
            "{} is {} bytes",
            p.display(),
            bytes.len()
        );
        match p.extension().and_then(|e| e.to_str()) {
            Some("png") => assert!(bytes.starts_with(PNG_MAGIC), "{}", p.display()),
            Some("svg") => {
                let text = String::from_utf8(bytes).unwrap();
                assert!(text.trim_start().starts_with("<svg"), "{}", p.display());
                assert!(text.trim_end().ends_with("</svg>"));
                assert!(text.contains("xmlns=\"http://www.w3.org/2000/svg\""));
            }
            other => panic!("unexpected file type {other:?}"),
        }
    }
    let svg = std::fs::read_to_string(dir.path().join("error-vs-current-right.svg")).unwrap();
    assert!(svg.contains("Port right: error versus current"));
    assert!(svg.contains("not accepted (FAIL)"));
}

#[test]
fn same_record_same_bytes() {
    // Both kinds of plot, fewer points: dependencies are built unoptimised in dev.
    let mut r = record("record-pass.json");
    r.steps.truncate(6);
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let pa = render_plots(&r, a.path()).unwrap();
    let pb = render_plots(&r, b.path()).unwrap();
    assert_eq!(names(&pa), names(&pb));
    for (x, y) in pa.iter().zip(&pb) {
        assert_eq!(
            std::fs::read(x).unwrap(),
            std::fs::read(y).unwrap(),
            "{}",
            x.display()
        );
    }
}

/// Every point of the error plot sits at its true current: the markers of the points at
/// one current share one x (spreading them apart once moved the Imin point out of its
/// limit band). The record's points are at 4 currents (Imin, Itr, Iref, Imax).
#[test]
fn error_plot_points_sit_at_their_true_current() {
    let r = record("record-fail.json");
    let dir = tempfile::tempdir().unwrap();
    render_plots(&r, dir.path()).unwrap();
    let svg = std::fs::read_to_string(dir.path().join("error-vs-current-left.svg")).unwrap();
    let legend_x = 760.0;
    let mut xs: Vec<f64> = svg
        .split("<circle cx=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next()?.parse::<f64>().ok())
        .filter(|x| *x < legend_x)
        .collect();
    assert!(xs.len() >= 8, "{xs:?}");
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let currents: std::collections::BTreeSet<String> = r
        .steps
        .iter()
        .filter(|s| s.kind == meterbench_runner::record::StepKind::Accuracy)
        .map(|s| format!("{:.3}", s.load.current_a))
        .collect();
    assert_eq!(
        xs.len(),
        currents.len(),
        "x {xs:?} for currents {currents:?}"
    );
}
