//! Every procedure, fixture and station in the repository loads and validates.

use meterbench_procedure::{Fixture, Procedure, SensorFixture, SensorProcedure, Station};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no YAML files in {dir}");
    v
}

/// Current sensor files (the CSP1) are a kind of their own, named by their schema.
fn is_sensor(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .unwrap()
        .contains("schema: meterbench.sensor-")
}

#[test]
fn every_fixture_validates() {
    for f in yaml_files("fixtures") {
        if is_sensor(&f) {
            SensorFixture::load(&f).unwrap_or_else(|e| panic!("{e}"));
        } else {
            Fixture::load(&f).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

#[test]
fn every_station_validates() {
    for f in yaml_files("hw/stations") {
        Station::load(&f).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn every_answers_file_validates() {
    for f in yaml_files("hw/answers") {
        meterbench_procedure::Answers::load(&f).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn every_procedure_validates_against_the_fixture_of_its_class() {
    let (sensor_files, meter_files): (Vec<PathBuf>, Vec<PathBuf>) = yaml_files("fixtures")
        .into_iter()
        .partition(|f| is_sensor(f));
    let fixtures: Vec<Fixture> = meter_files
        .iter()
        .map(|f| Fixture::load(f).unwrap())
        .collect();
    let sensors: Vec<SensorFixture> = sensor_files
        .iter()
        .map(|f| SensorFixture::load(f).unwrap())
        .collect();
    for f in yaml_files("procedures") {
        if is_sensor(&f) {
            let p = SensorProcedure::load(&f).unwrap_or_else(|e| panic!("{e}"));
            assert!(!sensors.is_empty(), "{}: no sensor fixture", f.display());
            for s in &sensors {
                p.check_against(s).unwrap_or_else(|e| panic!("{e}"));
            }
            continue;
        }
        let p = Procedure::load(&f).unwrap_or_else(|e| panic!("{e}"));
        let matching: Vec<&Fixture> = fixtures
            .iter()
            .filter(|x| x.accuracy_class == p.accuracy_class)
            .collect();
        assert!(
            !matching.is_empty(),
            "{}: no fixture of class {}",
            f.display(),
            p.accuracy_class
        );
        for fx in matching {
            p.check_against(fx).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

#[test]
fn the_cpim_fixture_carries_the_guide_numbers() {
    let f = Fixture::load(&repo().join("fixtures/cpim1000.yaml")).unwrap();
    assert_eq!(f.meter_constant_imp_per_kwh, 20000.0);
    assert_eq!(
        [
            f.rated.ist,
            f.rated.imin,
            f.rated.itr,
            f.rated.iref,
            f.rated.imax
        ],
        [0.02, 0.25, 0.5, 5.0, 32.0]
    );
    assert_eq!(
        f.ports.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["left", "right"]
    );
    let mins: Vec<u64> = f.min_pulses.values().copied().collect();
    assert_eq!(mins, [5, 15, 100, 300]);
    assert!(f.min_pulses_source.contains("CPIM1000 guide"));
}

#[test]
fn the_csp1_fixture_carries_the_manuals_numbers() {
    let f = SensorFixture::load(&repo().join("fixtures/csp1.yaml")).unwrap();
    assert_eq!(
        f.channels
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["L1", "L2", "L3"]
    );
    assert_eq!(
        (f.range_from_a, f.range_through_a, f.ct_ratio),
        (1.0, 80.0, 2000.0)
    );
    assert_eq!((f.resolution_a, f.limit_percent), (1.0, 5.0));
    assert!(f.limit_source.contains("CSP1 user manual"));
    assert_eq!(f.firmware, ["XMX_P1CS_V05"]);
    assert_eq!(f.telegram_period_s, 1.0);
}

/// Every `docs/NAME.md` a shipped data file cites (in a `source:` note or a comment) is
/// in the repository, and so is the section it names (`docs/metrology.md, Limits`: a
/// heading; `, test N`: item N of the numbered tests): an auditor can follow every
/// source a certificate prints.
#[test]
fn every_cited_document_and_section_exists() {
    let mut cited = 0;
    for dir in ["procedures", "fixtures", "hw/stations", "hw/answers"] {
        for file in yaml_files(dir) {
            let text = std::fs::read_to_string(&file).unwrap();
            for (at, _) in text.match_indices("docs/") {
                let rest = &text[at..];
                let Some(end) = rest.find(".md") else {
                    continue;
                };
                let doc_path = &rest[..end + 3];
                let doc = std::fs::read_to_string(repo().join(doc_path)).unwrap_or_else(|e| {
                    panic!(
                        "{} cites {doc_path}, which is not in the repository: {e}",
                        file.display()
                    )
                });
                cited += 1;
                let Some(section) = rest[end + 3..].strip_prefix(", ") else {
                    continue;
                };
                let section: String = section
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == ' ')
                    .collect();
                let section = section.trim();
                if let Some(n) = section.strip_prefix("test ") {
                    let tests = doc
                        .split("\n## ")
                        .find(|s| s.starts_with("Tests of a verification run"))
                        .unwrap_or_else(|| panic!("{doc_path} has no numbered tests"));
                    assert!(
                        tests.contains(&format!("\n{n}. ")),
                        "{} cites {doc_path}, test {n}, which is not there",
                        file.display()
                    );
                } else {
                    assert!(
                        doc.contains(&format!("\n## {section}")),
                        "{} cites {doc_path}, {section}: no such section",
                        file.display()
                    );
                }
            }
        }
    }
    assert!(cited > 10, "only {cited} citations found");
}

/// A file of one kind given where another is wanted is named by its kind, for every
/// kind, not refused by the first field the wanted kind does not know.
#[test]
fn a_file_of_another_kind_is_named_by_its_kind() {
    use meterbench_procedure::{Answers, DutFixture, DutProcedure};
    let procedure = repo().join("procedures/en50470-3-class-b.yaml");
    let sensor_fixture = repo().join("fixtures/csp1.yaml");
    let station = repo().join("hw/stations/sim.yaml");
    let answers = repo().join("hw/answers/sim-cpim1000.yaml");
    let said = |r: Result<(), String>| r.unwrap_err();
    let as_station = |p: &Path| said(Station::load(p).map(drop).map_err(|e| e.to_string()));
    let as_answers = |p: &Path| said(Answers::load(p).map(drop).map_err(|e| e.to_string()));
    let as_procedure = |p: &Path| said(DutProcedure::load(p).map(drop).map_err(|e| e.to_string()));
    let as_fixture = |p: &Path| said(DutFixture::load(p).map(drop).map_err(|e| e.to_string()));
    for (got, wanted) in [
        (
            as_station(&procedure),
            "this is a meter procedure (`schema: meterbench.procedure/1`), not a station",
        ),
        (as_station(&answers), "this is an answers file"),
        (
            as_answers(&station),
            "this is a station (`schema: meterbench.station/2`), not an answers file",
        ),
        (
            as_answers(&sensor_fixture),
            "this is a current sensor fixture",
        ),
        (as_procedure(&station), "this is a station, not a procedure"),
        (
            as_fixture(&answers),
            "this is an answers file, not a fixture",
        ),
    ] {
        assert!(got.contains(wanted), "{got}");
    }
}

/// A calibration's due date and a reference's calibration date with a two-digit year are
/// refused at their line: chrono alone reads them as the year 26, a calibration two
/// thousand years old (its drift added to every point) or long past due.
#[test]
fn a_calibration_date_with_a_two_digit_year_is_refused_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    for (station, find, short) in [
        (
            "sim-inprocess.yaml",
            "calibrated: 2026-01-12",
            "calibrated: 26-01-12",
        ),
        ("sim.yaml", "due: 2028-06-30", "due: 28-06-30"),
    ] {
        let text = std::fs::read_to_string(repo().join("hw/stations").join(station)).unwrap();
        let at = text
            .find(find)
            .unwrap_or_else(|| panic!("{station} has {find}"));
        let line = text[..at].matches('\n').count() + 1;
        let path = dir.path().join(station);
        std::fs::write(&path, text.replacen(find, short, 1)).unwrap();
        let e = Station::load(&path).map(drop).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}:{line}:", path.display()))
                && e.contains(
                    "outside the years 1000 to 9999: write it YYYY-MM-DD with the year in full"
                ),
            "{station}: {e} (line {line})"
        );
    }
}
