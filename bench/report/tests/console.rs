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

/// A current sensor's table: every column starts where its heading does (a long detail
/// such as `33 tel, μ 1.497 A` widens its column instead of running into the limit), an
/// unloaded phase's readings are summed up rather than listed one by one, and the
/// telegram rows, which apply no load of their own, show no current or power factor.
#[test]
fn columns_line_up_and_unloaded_phases_are_summed_up() {
    let r = common::record("record-csp1-transitions.json");
    let table = results_table(&r);
    let lines: Vec<&str> = table.lines().collect();
    let head = lines
        .iter()
        .find(|l| l.starts_with("step "))
        .unwrap_or_else(|| panic!("{table}"));
    let detail_at = head.find("pulses").unwrap();
    let result_at = head.find("result").unwrap();
    // The rows: from the heading to the blank line after them.
    let rows: Vec<&&str> = lines
        .iter()
        .skip_while(|l| !l.starts_with("step "))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(rows.len() > 20, "{table}");
    // The heading is ASCII: its byte offsets are its columns; rows are counted in
    // characters (μ, →, × in them).
    assert!(head.is_ascii());
    let (detail_col, result_col) = (detail_at, result_at);
    for row in &rows {
        let chars: Vec<char> = row.chars().collect();
        assert_eq!(chars[detail_col - 1], ' ', "{row}");
        assert_eq!(
            chars[detail_col - 2],
            ' ',
            "two spaces before the detail: {row}"
        );
        assert_eq!(chars[result_col - 1], ' ', "{row}");
        assert_ne!(
            chars[result_col], ' ',
            "the result starts under its heading: {row}"
        );
    }
    let unloaded: Vec<&&&str> = rows.iter().filter(|l| l.contains("reads 0 A")).collect();
    assert!(!unloaded.is_empty(), "{table}");
    for row in unloaded {
        assert!(row.contains(" × 0 A"), "{row}");
        assert!(!row.contains("0 0 0"), "{row}");
    }
    for row in rows.iter().filter(|l| l.starts_with("Telegrams")) {
        assert!(!row.contains(" A "), "no current: {row}");
    }
}

/// What the source said of its output at the end is on the screen before anyone touches
/// the terminals: after a run cut short always, otherwise when it did not confirm it off;
/// and a run cut short compares its bench time with no expectation.
#[test]
fn the_source_state_at_the_end_is_said_when_it_matters() {
    use meterbench_runner::record::Outcome;
    let source_line = |table: &str| {
        table
            .lines()
            .find(|l| l.starts_with("source: "))
            .map(str::to_string)
    };
    let mut r = common::record("record-pass.json");
    r.source.off_confirmed = Some(true);
    let table = results_table(&r);
    assert_eq!(source_line(&table), None, "{table}");
    assert!(table.contains("expected from settling"), "{table}");

    r.source.off_confirmed = Some(false);
    let table = results_table(&r);
    assert!(
        source_line(&table)
            .is_some_and(|l| l.starts_with("source: output OFF NOT CONFIRMED by the source")),
        "{table}"
    );
    r.source.off_confirmed = None;
    let table = results_table(&r);
    assert!(
        source_line(&table).is_some_and(|l| l.contains("is not known")),
        "{table}"
    );

    r.source.off_confirmed = Some(true);
    r.outcome = Outcome::Aborted;
    let table = results_table(&r);
    assert_eq!(
        source_line(&table).as_deref(),
        Some("source: output off, confirmed by the source"),
        "{table}"
    );
    assert!(!table.contains("expected from settling"), "{table}");
}
