//! Bad input is rejected with file, line and column of the offending YAML.

use meterbench_procedure::{DataError, LoadedFile, Procedure, SimFault, Station};
use std::path::{Path, PathBuf};

fn repo_file(rel: &str) -> (PathBuf, String) {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    let text = std::fs::read_to_string(&p).unwrap();
    (p, text)
}

/// Replace the first `from` by `to` and return the error plus the 1-based line of the edit.
fn edited<T>(
    rel: &str,
    from: &str,
    to: &str,
    load: impl Fn(LoadedFile) -> Result<T, DataError>,
) -> (DataError, u64, u64) {
    let (path, text) = repo_file(rel);
    let at = text
        .find(from)
        .unwrap_or_else(|| panic!("`{from}` not in {rel}"));
    let line = text[..at].matches('\n').count() as u64 + 1;
    let column = (at - text[..at].rfind('\n').map_or(0, |i| i + 1)) as u64 + 1;
    let changed = text.replacen(from, to, 1);
    let err = match load(LoadedFile::from_text(&path, changed)) {
        Ok(_) => panic!("edit `{from}` → `{to}` was accepted"),
        Err(e) => e,
    };
    assert!(
        err.to_string().starts_with(&format!("{}:", path.display())),
        "{err}"
    );
    (err, line, column)
}

#[test]
fn misspelt_key_in_a_step_is_rejected_where_it_is() {
    let (err, line, col) = edited(
        "procedures/en50470-3-class-b.yaml",
        "settle_s: 1\n      pulses: 2",
        "setle_s: 1\n      pulses: 2",
        Procedure::from_file,
    );
    assert_eq!((err.pos.line, err.pos.column), (line, col), "{err}");
    assert!(err.message.contains("setle_s"), "{err}");
}

#[test]
fn misspelt_top_level_key_is_rejected() {
    let (err, line, col) = edited(
        "procedures/en50470-3-class-b.yaml",
        "decision_rule:",
        "decision_rul:",
        Procedure::from_file,
    );
    assert_eq!((err.pos.line, err.pos.column), (line, col), "{err}");
    assert!(err.message.contains("decision_rul"), "{err}");
}

#[test]
fn missing_field_is_rejected_with_its_mapping() {
    let (err, line, _) = edited(
        "procedures/en50470-3-class-b.yaml",
        "      max_pulses: 1\n",
        "",
        Procedure::from_file,
    );
    assert!(err.message.contains("max_pulses"), "{err}");
    // The error points into the no_load mapping that lacks the field.
    assert!(
        err.pos.line > 0 && err.pos.line.abs_diff(line) <= 6,
        "{err} vs line {line}"
    );
}

#[test]
fn limit_of_the_wrong_sign_is_rejected_at_the_value() {
    let (err, line, col) = edited(
        "procedures/en50470-3-class-b.yaml",
        "mpe_percent: 1.0",
        "mpe_percent: -1.0",
        Procedure::from_file,
    );
    assert_eq!(err.pos.line, line, "{err}");
    assert_eq!(err.pos.column, col + "mpe_percent: ".len() as u64, "{err}");
    assert!(
        err.message
            .contains("mpe_percent (the limit is ± that value) must be a number above 0"),
        "{err}"
    );
}

#[test]
fn unknown_role_is_rejected() {
    let (err, line, col) = edited(
        "hw/stations/sim.yaml",
        "  counters:\n",
        "  countrs:\n",
        Station::from_file,
    );
    assert_eq!((err.pos.line, err.pos.column), (line, col + 2), "{err}");
    assert!(err.message.contains("countrs"), "{err}");
}

#[test]
fn a_head_on_an_unknown_counter_or_a_channel_wired_twice_is_refused() {
    let (err, line, _) = edited(
        "hw/stations/sim.yaml",
        "heads: [{ counter: c1, channel: 1 }, { counter: c1, channel: 2 }]",
        "heads: [{ counter: c1, channel: 1 }, { counter: c9, channel: 2 }]",
        Station::from_file,
    );
    assert_eq!(err.pos.line, line, "{err}");
    assert!(
        err.message.contains("no counter `c9`") && err.message.contains("declared: c1"),
        "{err}"
    );
    let (err, _, _) = edited(
        "hw/stations/sim.yaml",
        "heads: [{ counter: c1, channel: 1 }, { counter: c1, channel: 2 }]",
        "heads: [{ counter: c1, channel: 1 }, { counter: c1, channel: 1 }]",
        Station::from_file,
    );
    assert!(err.message.contains("channel 1 is already wired"), "{err}");
}

/// A device's pulse times are on one timebase: a position's heads share a counter.
#[test]
fn a_position_with_heads_on_two_counters_is_refused() {
    let (err, line, _) = edited(
        "hw/stations/sim-rack-10.yaml",
        "heads: [{ counter: c1, channel: 0 }, { counter: c1, channel: 1 }]",
        "heads: [{ counter: c1, channel: 0 }, { counter: c2, channel: 7 }]",
        Station::from_file,
    );
    assert_eq!(err.pos.line, line, "{err}");
    assert!(
        err.message
            .contains("wire a position's heads to one counter"),
        "{err}"
    );
}

#[test]
fn a_simulated_device_at_a_position_the_rack_lacks_is_refused() {
    let (err, line, _) = edited(
        "hw/stations/sim.yaml",
        "    - position: 1\n",
        "    - position: 4\n",
        Station::from_file,
    );
    assert_eq!(err.pos.line, line, "{err}");
    assert!(
        err.message.contains("position 4 is not in the rack"),
        "{err}"
    );
}

/// Files of the format before racks say what moved, not which keys are unknown.
#[test]
fn version_1_stations_and_fixtures_say_what_moved() {
    let (err, _, _) = edited(
        "hw/stations/sim.yaml",
        "schema: meterbench.station/2",
        "schema: meterbench.station/1",
        Station::from_file,
    );
    assert!(
        err.message.contains("roles.counters") && err.message.contains("rack:"),
        "{err}"
    );
    let (err, _, _) = edited(
        "fixtures/cpim1000.yaml",
        "schema: meterbench.fixture/2",
        "schema: meterbench.fixture/1",
        meterbench_procedure::Fixture::from_file,
    );
    assert!(
        err.message.contains("scanning head") && err.message.contains("station's rack"),
        "{err}"
    );
}

#[test]
fn unknown_driver_is_rejected() {
    let (err, line, _) = edited(
        "hw/stations/sim.yaml",
        "driver: scpi",
        "driver: scpii",
        Station::from_file,
    );
    assert_eq!(err.pos.line, line, "{err}");
    assert!(err.message.contains("scpii"), "{err}");
}

#[test]
fn bad_power_factor_and_current_are_rejected() {
    let (err, line, _) = edited(
        "procedures/en50470-3-class-b.yaml",
        "power_factor: 0.8c",
        "power_factor: 0.8",
        Procedure::from_file,
    );
    assert_eq!(err.pos.line, line, "{err}");
    assert!(err.message.contains("inductive"), "{err}");
    let (err, line, _) = edited(
        "procedures/en50470-3-class-b.yaml",
        "current: Imax",
        "current: Imx",
        Procedure::from_file,
    );
    assert_eq!(err.pos.line, line, "{err}");
}

#[test]
fn a_fault_is_parsed_from_flow_yaml() {
    assert_eq!(
        SimFault::parse("{dead_led: {port: right}}").unwrap().port(),
        "right"
    );
    let e = SimFault::parse("{dead_led: {prt: right}}").unwrap_err();
    assert!(e.to_string().contains("prt"), "{e}");
    let element =
        SimFault::parse("{element_error: {port: left, phase: L2, error_percent: 1.9}}").unwrap();
    assert_eq!((element.port(), element.position()), ("left", None));
    let e =
        SimFault::parse("{element_error: {port: left, phase: L4, error_percent: 1}}").unwrap_err();
    assert!(e.to_string().contains("L4"), "{e}");
    let e = SimFault::parse("{element_error: {port: left, phase: L1, error_percent: .nan}}")
        .unwrap_err();
    assert!(e.to_string().contains("error_percent"), "{e}");
}

#[test]
fn bad_can_profile_entries_are_rejected_where_they_are() {
    use meterbench_procedure::Fixture;
    let (err, line, _) = edited(
        "fixtures/cpim1000.yaml",
        "response_id: \"0x7E8\"",
        "response_id: \"0x7G8\"",
        Fixture::from_file,
    );
    assert_eq!(err.pos.line, line, "{err}");
    assert!(err.message.contains("not a CAN identifier"), "{err}");
    let (err, line, _) = edited(
        "fixtures/cpim1000.yaml",
        "right: \"0xF1A2\"",
        "middle: \"0xF1A2\"",
        Fixture::from_file,
    );
    assert_eq!(err.pos.line, line, "{err}");
    assert!(err.message.contains("`middle` is not a port"), "{err}");
    let (err, _, _) = edited(
        "fixtures/cpim1000.yaml",
        "lrs_hash: \"A3F09C4E\"",
        "lrs_hash: \"A3F09C4X\"",
        Fixture::from_file,
    );
    assert!(err.message.contains("not hexadecimal"), "{err}");
}

/// The Eichrecht procedure (with `procedure_edit`) checked against the CPIM1000 fixture
/// (with `fixture_edit` applied to its text): the error, and the line of the step that
/// `at` finds in the procedure.
fn eichrecht_against_fixture(
    procedure_edit: (&str, &str),
    fixture_edit: impl Fn(String) -> String,
    at: &str,
) -> (DataError, u64) {
    let (ppath, ptext) = repo_file("procedures/cpim1000-eichrecht.yaml");
    let (fpath, ftext) = repo_file("fixtures/cpim1000.yaml");
    let ptext = ptext.replacen(procedure_edit.0, procedure_edit.1, 1);
    let step = ptext.find(at).expect("step in the procedure");
    let line = ptext[..step].matches('\n').count() as u64 + 1;
    let procedure = Procedure::from_file(LoadedFile::from_text(&ppath, ptext)).unwrap();
    let fixture = meterbench_procedure::Fixture::from_file(LoadedFile::from_text(
        &fpath,
        fixture_edit(ftext),
    ))
    .unwrap();
    let err = procedure.check_against(&fixture).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}:", ppath.display())),
        "{err}"
    );
    (err, line)
}

/// The fixture text without its top-level `name:` section.
fn without_section(text: String, name: &str) -> String {
    let start = text.find(&format!("\n{name}:\n")).expect("section") + 1;
    let end = text[start + 1..]
        .find("\n# ")
        .or_else(|| text[start + 1..].find("\ninspection:"))
        .map_or(text.len(), |i| start + 1 + i + 1);
    format!("{}{}", &text[..start], &text[end..])
}

#[test]
fn a_register_step_needs_the_fixtures_register() {
    let (err, line) = eichrecht_against_fixture(
        ("", ""),
        |t| without_section(t, "register"),
        "  - register:",
    );
    assert_eq!(err.pos.line, line, "{err}");
    assert!(err.message.contains("declares no `register:`"), "{err}");
}

#[test]
fn a_register_step_needs_the_reference_pulse_count() {
    let (err, line) = eichrecht_against_fixture(
        ("method: gated_reference_count", "method: timed"),
        |t| t,
        "  - register:",
    );
    assert_eq!(err.pos.line, line, "{err}");
    assert!(
        err.message.contains("must be gated_reference_count"),
        "{err}"
    );
}

#[test]
fn a_register_read_over_can_needs_the_register_identifiers() {
    let (err, line) = eichrecht_against_fixture(
        (
            "read_from: lcd\n      min_register_steps",
            "read_from: can\n      min_register_steps",
        ),
        |t| {
            t.replacen(
                "    energy_register: { left: \"0xF1B1\", right: \"0xF1B2\" }\n",
                "",
                1,
            )
        },
        "  - register:",
    );
    assert_eq!(err.pos.line, line, "{err}");
    assert!(err.message.contains("can.dids.energy_register"), "{err}");
}

#[test]
fn an_inspection_of_a_label_the_fixture_does_not_list_is_refused() {
    let (err, line) = eichrecht_against_fixture(
        ("labels: [mid_mir, eichrecht]", "labels: [mid_mir, ukca]"),
        |t| t,
        "  - inspection:",
    );
    assert_eq!(err.pos.line, line, "{err}");
    assert!(
        err.message
            .contains("has no label `ukca` (it has: mid_mir, eichrecht)"),
        "{err}"
    );
}

#[test]
fn an_empty_inspection_is_refused_where_it_is() {
    let (err, line, _) = edited(
        "procedures/cpim1000-eichrecht.yaml",
        "      scan_serial: true\n      seals: true\n      labels: [mid_mir, eichrecht]\n",
        "",
        Procedure::from_file,
    );
    // The step's mapping starts on the line after `- inspection:`.
    assert!(
        err.pos.line + 2 >= line && err.pos.line <= line,
        "{err} (edit at line {line})"
    );
    assert!(
        err.message
            .contains("at least one of scan_serial, seals, labels"),
        "{err}"
    );
}

#[test]
fn a_sensor_fixture_without_a_positive_limit_is_refused_where_it_is() {
    let (err, line, col) = edited(
        "fixtures/csp1.yaml",
        "limit_percent: 5",
        "limit_percent: -5",
        meterbench_procedure::SensorFixture::from_file,
    );
    assert_eq!(err.pos.line, line, "{err}");
    assert!(err.pos.column >= col, "{err}");
    assert!(
        err.message
            .contains("accuracy.limit_percent must be a number above 0 and at most 100 %"),
        "{err}"
    );
}

#[test]
fn a_sensor_step_with_a_misspelt_key_is_refused_where_it_is() {
    let (err, line, _) = edited(
        "procedures/csp1-accuracy.yaml",
        "{ name: 5 A balanced (4 → 5),   transition:",
        "{ name: 5 A balanced (4 → 5),   transiton:",
        meterbench_procedure::SensorProcedure::from_file,
    );
    assert_eq!(err.pos.line, line, "{err}");
    assert!(err.message.contains("transiton"), "{err}");
}

/// A source on a real port has no watchdog the bench can rely on: its station must say
/// how long the guard process waits for the bench's heartbeat, within bounds.
#[test]
fn a_source_on_a_real_port_needs_the_guards_timeout() {
    let (path, text) = repo_file("hw/stations/sim.yaml");
    let real = text.replacen("port: sim+pty", "port: tcp://192.0.2.1:5025", 1);
    let e = Station::from_file(LoadedFile::from_text(&path, real.clone())).unwrap_err();
    assert!(
        e.message
            .starts_with("a source on a real port needs `safety.guard_timeout_s`"),
        "{e}"
    );
    // At the port that makes the guard needed.
    assert_eq!(
        e.pos.line,
        text[..text.find("port: sim+pty").unwrap()]
            .matches('\n')
            .count() as u64
            + 1
    );
    let with = |t: &str| {
        real.replacen(
            "safety:\n",
            &format!("safety:\n  guard_timeout_s: {t}\n"),
            1,
        )
    };
    let e = Station::from_file(LoadedFile::from_text(&path, with("0"))).unwrap_err();
    assert!(
        e.message
            .contains("guard_timeout_s must be a number above 0"),
        "{e}"
    );
    let s = Station::from_file(LoadedFile::from_text(&path, with("2"))).unwrap();
    assert_eq!(s.guard_timeout_s, Some(2.0));
}

/// The class B procedure with its load difference check edited, refused at the edit.
fn load_difference_refused(from: &str, to: &str, message: &str) {
    let (err, line, _) = edited(
        "procedures/en50470-3-class-b.yaml",
        from,
        to,
        Procedure::from_file,
    );
    assert_eq!(err.pos.line, line, "{err}");
    assert!(err.message.contains(message), "{err}");
}

#[test]
fn a_load_difference_check_names_earlier_points_of_one_current_and_pf_by_their_load() {
    let ok = Procedure::from_file(LoadedFile::from_text(
        &repo_file("procedures/en50470-3-class-b.yaml").0,
        repo_file("procedures/en50470-3-class-b.yaml").1,
    ))
    .unwrap();
    let check = ok
        .steps
        .iter()
        .find_map(|s| match &s.kind {
            meterbench_procedure::StepKind::LoadDifference(d) => Some(d),
            _ => None,
        })
        .expect("the class B procedure checks single-phase against balanced load");
    assert_eq!(check.balanced, "Iref PF1");
    assert_eq!(check.single_phase.len(), 3);
    assert_eq!(check.max_difference_percent, 1.5);

    load_difference_refused(
        "balanced: Iref PF1\n",
        "balanced: Iref PF2\n",
        "no accuracy step `Iref PF2` before this one",
    );
    load_difference_refused(
        "balanced: Iref PF1\n",
        "balanced: Starting current\n",
        "step `Starting current` is not an accuracy step",
    );
    load_difference_refused(
        "balanced: Iref PF1\n",
        "balanced: Iref PF1 L2\n",
        "is not a balanced load",
    );
    load_difference_refused(
        "single_phase: [Iref PF1 L1,",
        "single_phase: [Iref PF1,",
        "a single-phase point loads one element",
    );
    // Refused at the first single-phase point that does not match, the line below.
    let (err, line, _) = edited(
        "procedures/en50470-3-class-b.yaml",
        "balanced: Iref PF1\n",
        "balanced: Imax PF1\n",
        Procedure::from_file,
    );
    assert_eq!(err.pos.line, line + 1, "{err}");
    assert!(
        err.message
            .contains("the difference is taken at one current and power factor"),
        "{err}"
    );
    load_difference_refused(
        "single_phase: [Iref PF1 L1, Iref PF1 L2,",
        "single_phase: [Iref PF1 L1, Iref PF1 L1,",
        "is named twice",
    );
    load_difference_refused(
        "single_phase: [Iref PF1 L1, Iref PF1 L2, Iref PF1 L3]",
        "single_phase: []",
        "name at least one single-phase step",
    );
    load_difference_refused(
        "max_difference_percent: 1.5",
        "max_difference_percent: 0",
        "max_difference_percent (the limit is ± that value) must be a number above 0",
    );
    load_difference_refused(
        "source: \"IEC 62053-21:2003 8.1: the error with single-phase load and with balanced polyphase load at Ib and PF 1 differ by at most 1.5 % (class 1), applied to class B [U]\"",
        "source: \" \"",
        "the limit needs a source note",
    );
}

#[test]
fn a_load_difference_check_before_its_points_is_refused() {
    let (path, text) = repo_file("procedures/en50470-3-class-b.yaml");
    let at = text
        .find("  # Single-phase load on a polyphase meter")
        .unwrap();
    // The check is the last step; the file's `translations:` follow it.
    let end = text.find("\n# Operator-facing texts").unwrap();
    let check = text[at..end + 1].to_string();
    let first_accuracy = text.find("  - accuracy: { name: Imin PF1").unwrap();
    let moved = format!(
        "{}{check}{}{}",
        &text[..first_accuracy],
        &text[first_accuracy..at],
        &text[end + 1..]
    );
    let err = Procedure::from_file(LoadedFile::from_text(&path, moved)).unwrap_err();
    assert!(
        err.message
            .contains("no accuracy step `Iref PF1` before this one"),
        "{err}"
    );
}

#[test]
fn a_test_uncertainty_ratio_needs_a_sensible_minimum_and_a_source() {
    // Below 1, U could exceed the limit itself and still allow a statement.
    let (err, line, _) = edited(
        "procedures/en50470-3-class-b.yaml",
        "  min: 3\n",
        "  min: 0.5\n",
        Procedure::from_file,
    );
    assert_eq!(err.pos.line, line, "{err}");
    assert!(err.message.contains("test_uncertainty_ratio min"), "{err}");
    let (err, _, _) = edited(
        "procedures/csp1-accuracy.yaml",
        "  min: 3\n",
        "  min: .nan\n",
        meterbench_procedure::SensorProcedure::from_file,
    );
    assert!(err.message.contains("test_uncertainty_ratio min"), "{err}");
    let (err, line, _) = edited(
        "procedures/en50470-3-class-b.yaml",
        "  source: \"ILAC-G8",
        "  source: \" \"\n  #",
        Procedure::from_file,
    );
    assert_eq!(err.pos.line, line, "{err}");
    assert!(err.message.contains("needs a source note"), "{err}");
    // A procedure that declares no ratio gets U ≤ MPE/3 with its source said.
    let (path, text) = repo_file("procedures/en50470-3-class-b.yaml");
    let start = text.find("test_uncertainty_ratio:").unwrap();
    let end = start + text[start..].find("\n# ").unwrap_or(text[start..].len());
    let without = format!("{}{}", &text[..start], &text[end + 1..]);
    let p = Procedure::from_file(LoadedFile::from_text(&path, without)).unwrap();
    assert_eq!(p.test_uncertainty_ratio.min, 3.0);
    assert!(p.test_uncertainty_ratio.source.contains("ILAC-G8"));
}

#[test]
fn a_translation_of_a_text_the_procedure_does_not_hold_is_rejected_at_its_line() {
    // A step renamed (or a typo in the table): the German would silently stay unused.
    let (err, line, _) = edited(
        "procedures/en50470-3-class-b.yaml",
        "\"Starting current\": \"Anlaufstrom\"",
        "\"Startin current\": \"Anlaufstrom\"",
        Procedure::from_file,
    );
    assert_eq!(err.pos.line, line, "{err}");
    assert!(
        err.message
            .contains("translations.de: `Startin current` is not a text of this file"),
        "{err}"
    );
}

#[test]
fn a_fixture_translates_its_seals_and_labels_and_refuses_others() {
    let (path, text) = repo_file("fixtures/cpim1000.yaml");
    let f = meterbench_procedure::Fixture::from_file(LoadedFile::from_text(&path, text)).unwrap();
    assert_eq!(f.translations.get("de", "right"), Some("rechts"));
    assert_eq!(
        f.translations.get("de", "Eichrecht type label"),
        Some("Eichrecht-Typenschild")
    );
    let (err, line, _) = edited(
        "fixtures/cpim1000.yaml",
        "\"WEEE waste symbol\": ",
        "\"WEEE symbol\": ",
        meterbench_procedure::Fixture::from_file,
    );
    assert_eq!(err.pos.line, line, "{err}");
    assert!(err.message.contains("label titles and fields"), "{err}");
}
