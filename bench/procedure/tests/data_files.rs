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
