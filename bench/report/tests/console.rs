//! The results table a technician reads at the end of a run: every name whole, failures
//! marked, and a verdict that names each point and port that decided it.

mod common;
use meterbench_report::console::{results_table, results_table_styled};

#[test]
fn the_verdict_names_each_failing_point_and_port_and_colour_is_only_asked_for() {
    let r = common::record("record-fail.json");
    let plain = results_table(&r);
    assert!(!plain.contains('\x1b'), "no escape codes without colour");
    let verdict = plain
        .lines()
        .position(|l| l.starts_with("VERDICT: FAIL — out of limits: Iref PF1"))
        .unwrap_or_else(|| panic!("{plain}"));
    let below: Vec<&str> = plain.lines().skip(verdict + 1).collect();
    assert_eq!(
        below,
        ["  - Iref PF1, port right: +1.524 % against ±1 % (U 0.010 %): FAIL"],
        "{plain}"
    );
    // The failing row says FAIL in capitals; the passing rows pass.
    let row = plain
        .lines()
        .find(|l| l.starts_with("Iref PF1 ") && l.contains("right"))
        .unwrap();
    assert!(row.ends_with("FAIL"), "{row}");

    let coloured = results_table_styled(&r, true);
    assert!(
        coloured.contains("\x1b[1m\x1b[31mFAIL\x1b[0m"),
        "{coloured}"
    );
    assert!(coloured.contains("VERDICT: \x1b[1m\x1b[31mFAIL\x1b[0m — out of limits"));
    // Colour changes nothing but the escapes.
    let stripped = coloured
        .replace("\x1b[1m\x1b[31m", "")
        .replace("\x1b[0m", "")
        .replace("✗", "-");
    assert_eq!(stripped, plain);
}

#[test]
fn step_names_are_never_cut() {
    let r = common::record("record-pass.json");
    let table = results_table(&r);
    for step in &r.steps {
        assert!(
            table.lines().any(|l| l.starts_with(&step.name)),
            "`{}` is not shown whole:\n{table}",
            step.name
        );
    }
    assert!(table.ends_with("VERDICT: PASS"), "{table}");
}
