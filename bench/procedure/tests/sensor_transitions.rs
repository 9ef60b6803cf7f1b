//! Transition points of a sensor procedure: the step form loads with the fixture's
//! rounding and limit behind it, and bad values are refused where they are written.

use meterbench_procedure::sensor::{Rounding, SensorPoint, TransitionPoint};
use meterbench_procedure::{DataError, LoadedFile, SensorFixture, SensorProcedure};
use std::path::{Path, PathBuf};

const PROCEDURE: &str = "procedures/csp1-accuracy.yaml";
const FIXTURE: &str = "fixtures/csp1.yaml";

fn repo_file(rel: &str) -> (PathBuf, String) {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    let text = std::fs::read_to_string(&p).unwrap();
    (p, text)
}

/// Line and column (1-based) of the first `needle` in `text`.
fn position(text: &str, needle: &str) -> (u64, u64) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in the file"));
    let line = text[..at].matches('\n').count() as u64 + 1;
    let column = (at - text[..at].rfind('\n').map_or(0, |i| i + 1)) as u64 + 1;
    (line, column)
}

/// The repository file with the first `from` replaced by `to`, loaded with `load`.
fn load_edited<T>(
    rel: &str,
    from: &str,
    to: &str,
    load: impl Fn(LoadedFile) -> Result<T, DataError>,
) -> (Result<T, DataError>, String) {
    let (path, text) = repo_file(rel);
    assert!(text.contains(from), "`{from}` not in {rel}");
    let changed = text.replacen(from, to, 1);
    (load(LoadedFile::from_text(&path, changed.clone())), changed)
}

fn refused<T: std::fmt::Debug>(r: Result<T, DataError>) -> DataError {
    match r {
        Ok(v) => panic!("accepted: {v:?}"),
        Err(e) => e,
    }
}

fn fixture() -> SensorFixture {
    let (path, _) = repo_file(FIXTURE);
    SensorFixture::load(&path).unwrap()
}

fn transitions(p: &SensorProcedure) -> Vec<(&str, TransitionPoint)> {
    p.steps
        .iter()
        .filter_map(|s| match &s.point {
            SensorPoint::Transition(t) => Some((s.name.as_str(), *t)),
            SensorPoint::Current { .. } => None,
        })
        .collect()
}

const FIVE_A: &str = "{ name: 5 A balanced (4 → 5),   transition: { between_a: [4, 5], target_u_percent: 0.4, max_telegrams: 60 }, settle_s: 1 }";

#[test]
fn the_csp1_procedure_is_transition_points_with_the_fixtures_rounding_behind_them() {
    let (path, _) = repo_file(PROCEDURE);
    let p = SensorProcedure::load(&path).unwrap();
    let f = fixture();
    p.check_against(&f).unwrap();
    let points = transitions(&p);
    assert_eq!(points.len(), p.steps.len(), "every point is a transition");
    let five = points
        .iter()
        .find(|(n, _)| *n == "5 A balanced (4 → 5)")
        .unwrap()
        .1;
    assert_eq!(
        five,
        TransitionPoint {
            between_a: (4.0, 5.0),
            target_u_percent: 0.4,
            max_telegrams: 60
        }
    );
    // Rounded to the nearest ampere: the flip from 4 to 5 is at 4.5 A of the sensor's
    // value; the search's bracket is where a sensor at twice ±5 % flips, ± 3 × 50 mA of
    // expected noise.
    let profile = f.transitions.as_ref().unwrap();
    assert_eq!(profile.rounding, Rounding::Nearest);
    assert!(profile.source.contains("[U]"));
    assert_eq!(f.transition_boundary_a(&five), Some(4.5));
    let (lo, hi) = f.transition_bracket_a(&five).unwrap();
    assert!((lo - (4.5 / 1.1 - 0.15)).abs() < 1e-12, "{lo}");
    assert!((hi - (4.5 / 0.9 + 0.15)).abs() < 1e-12, "{hi}");
    // The nominal current of each point (a sensor without error) lies in the range.
    for s in &p.steps {
        let i = s.nominal_current_a(&f).unwrap();
        assert!((1.0..=80.0).contains(&i), "{}: {i} A", s.name);
    }
    // Every point's target gives U(k=2) under 1 % (reference 0.02 % aside).
    assert!(points.iter().all(|(_, t)| 2.0 * t.target_u_percent < 1.0));
}

#[test]
fn a_truncating_sensor_flips_at_the_upper_reading() {
    let (r, _) = load_edited(
        FIXTURE,
        "rounding: nearest",
        "rounding: down",
        SensorFixture::from_file,
    );
    let f = r.unwrap();
    let t = TransitionPoint {
        between_a: (4.0, 5.0),
        target_u_percent: 0.4,
        max_telegrams: 60,
    };
    assert_eq!(f.transition_boundary_a(&t), Some(5.0));
}

#[test]
fn a_current_point_still_loads_beside_transition_points() {
    // The step keeps its name (its German in `translations:` names it).
    let (r, _) = load_edited(
        PROCEDURE,
        FIVE_A,
        "{ name: 5 A balanced (4 → 5), current_a: 5, settle_s: 2, telegrams: 5 }",
        SensorProcedure::from_file,
    );
    let p = r.unwrap();
    let s = p
        .steps
        .iter()
        .find(|s| s.name == "5 A balanced (4 → 5)")
        .unwrap();
    assert_eq!(
        s.point,
        SensorPoint::Current {
            current_a: 5.0,
            telegrams: 5
        }
    );
    p.check_against(&fixture()).unwrap();
}

/// Bad values in a transition step, each refused at the value (or its step) with what
/// is wrong.
#[test]
fn bad_transition_values_are_refused_where_they_are() {
    let cases: &[(&str, &str, &str, &str)] = &[
        // (edit from, edit to, where the error points, what it says)
        (
            "between_a: [4, 5]",
            "between_a: [5]",
            "[5]",
            "between_a must be two readings, the lower and the upper",
        ),
        (
            "between_a: [4, 5]",
            "between_a: [5, 4]",
            "[5, 4]",
            "between_a must be two readings in order",
        ),
        (
            "between_a: [4, 5]",
            "between_a: [-1, 5]",
            "[-1, 5]",
            "the lower at least 0 A",
        ),
        (
            "between_a: [4, 5]",
            "between_a: [4, .inf]",
            "[4, .inf]",
            "between_a must be a number above 0 and at most 10000 A, not inf",
        ),
        (
            "target_u_percent: 0.4, max_telegrams: 60",
            "target_u_percent: 0, max_telegrams: 60",
            "0, max_telegrams: 60",
            "target_u_percent must be a number above 0 and at most 10 %, not 0",
        ),
        (
            "target_u_percent: 0.4, max_telegrams: 60",
            "target_u_percent: 40, max_telegrams: 60",
            "40, max_telegrams: 60",
            "target_u_percent must be a number above 0 and at most 10 %, not 40",
        ),
        (
            "max_telegrams: 60",
            "max_telegrams: 0",
            "0 }",
            "max_telegrams must be a whole number from 1 to 100000, not 0",
        ),
        (
            "max_telegrams: 60",
            "max_telegrams: -3",
            "-3",
            "a whole number is needed here",
        ),
        (
            "{ between_a: [4, 5],",
            "{ between: [4, 5],",
            "between: [4, 5]",
            "between",
        ),
        (
            "max_telegrams: 60 }, settle_s: 1 }",
            "max_telegrams: 60 }, settle_s: 1, telegrams: 5 }",
            "5 }",
            "give `max_telegrams:` inside `transition:`, not `telegrams:`",
        ),
        (
            "(4 → 5),   transition:",
            "(4 → 5),   current_a: 5, transition:",
            "5, transition:",
            "gives both current_a and transition",
        ),
    ];
    for (from, to, at, says) in cases {
        let (r, changed) = load_edited(PROCEDURE, from, to, SensorProcedure::from_file);
        let e = refused(r);
        // The edit is on the 5 A line; the error points at the value, or for a few of
        // the parser's messages at the flow mapping that holds it, on the same line.
        let step = changed.find("{ name: 5 A balanced").unwrap();
        let (line, step_column) = position(&changed, &changed[step..]);
        let column = step_column + changed[step..].find(at).unwrap() as u64;
        assert_eq!(e.pos.line, line, "{to}: {e}");
        assert!(
            e.pos.column <= column && e.pos.column >= step_column,
            "{to}: {e} (value at column {column})"
        );
        assert!(e.message.contains(says), "{to}: {e}");
        assert!(e.to_string().contains("csp1-accuracy.yaml:"), "{e}");
    }
}

#[test]
fn a_step_that_is_neither_kind_is_refused_at_the_step() {
    let (r, changed) = load_edited(
        PROCEDURE,
        "transition: { between_a: [4, 5], target_u_percent: 0.4, max_telegrams: 60 }, ",
        "",
        SensorProcedure::from_file,
    );
    let e = refused(r);
    let (line, _) = position(&changed, "{ name: 5 A balanced (4 → 5)");
    assert_eq!(e.pos.line, line, "{e}");
    assert!(
        e.message
            .contains("needs current_a (a current point) or transition (a transition point)"),
        "{e}"
    );
}

/// What only the fixture can tell: neighbouring readings at its resolution, a boundary
/// within its range, a fixture that says how it rounds. Refused at the step, before
/// anything is switched on.
#[test]
fn transitions_the_fixture_cannot_support_are_refused_at_the_step() {
    let f = fixture();
    for (to, says) in [
        (
            "between_a: [4, 6]",
            "between_a [4, 6] are not two neighbouring readings of CSP1, whose resolution is 1 A",
        ),
        (
            "between_a: [4.5, 5.5]",
            "between_a [4.5, 5.5] are not two neighbouring readings",
        ),
        // The flip 0 → 1 is at 0.5 A, below the rated 1 A.
        (
            "between_a: [0, 1]",
            "asks 0.5 A, outside CSP1's range 1 … 80 A",
        ),
    ] {
        let (r, changed) = load_edited(
            PROCEDURE,
            "between_a: [4, 5]",
            to,
            SensorProcedure::from_file,
        );
        let p = r.unwrap();
        let e = p.check_against(&f).unwrap_err();
        let (line, _) = position(&changed, "{ name: 5 A balanced (4 → 5)");
        assert_eq!(e.pos.line, line, "{to}: {e}");
        assert!(e.message.contains(says), "{to}: {e}");
    }
    // A fixture that does not say how its readings round supports no transition point.
    let (path, text) = repo_file(FIXTURE);
    let start = text.find("transitions:").unwrap();
    let end = text.find("nominal_voltage_v:").unwrap();
    let without = format!("{}{}", &text[..start], &text[end..]);
    let bare = SensorFixture::from_file(LoadedFile::from_text(&path, without)).unwrap();
    assert!(bare.transitions.is_none());
    let (path, _) = repo_file(PROCEDURE);
    let e = SensorProcedure::load(&path)
        .unwrap()
        .check_against(&bare)
        .unwrap_err();
    assert!(
        e.message
            .contains("does not say how its readings round (`transitions:`)"),
        "{e}"
    );
}

#[test]
fn bad_transition_profiles_are_refused_where_they_are() {
    for (from, to, says) in [
        ("rounding: nearest", "rounding: sideways", "sideways"),
        (
            "expected_noise_a: 0.05",
            "expected_noise_a: -0.05",
            "transitions.expected_noise_a must be a number above 0",
        ),
        (
            "expected_noise_a: 0.05",
            "expected_noise: 0.05",
            "expected_noise",
        ),
    ] {
        let (r, changed) = load_edited(FIXTURE, from, to, SensorFixture::from_file);
        let e = refused(r);
        let (line, _) = position(&changed, to);
        assert_eq!(e.pos.line, line, "{to}: {e}");
        assert!(e.message.contains(says), "{to}: {e}");
    }
}
