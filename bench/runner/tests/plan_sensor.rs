//! Planning a sensor procedure of transition points: each point's time on the source is
//! reserved for its whole telegram budget, and the source's rating is checked against
//! the highest current its search may set, before anything is switched on.

use meterbench_procedure::sensor::SensorPoint;
use meterbench_procedure::{DutFixture, DutProcedure, LoadedFile, Station};
use meterbench_runner::{Action, expected_energised_s, plan};
use std::path::Path;

fn repo(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn files() -> (DutProcedure, DutFixture, Station) {
    (
        DutProcedure::load(&repo("procedures/csp1-accuracy.yaml")).unwrap(),
        DutFixture::load(&repo("fixtures/csp1.yaml")).unwrap(),
        Station::load(&repo("hw/stations/sim.yaml")).unwrap(),
    )
}

#[test]
fn a_transition_point_reserves_its_whole_telegram_budget() {
    let (procedure, fixture, station) = files();
    let planned = plan(&procedure, &fixture, &station).unwrap();
    let mut transitions = 0;
    for ps in &planned {
        let Action::Current(step) = &ps.action else {
            continue;
        };
        let SensorPoint::Transition(t) = &step.point else {
            continue;
        };
        transitions += 1;
        // Each current set: its settling, the rest of the second under way, a second.
        assert_eq!(
            ps.expected_s,
            f64::from(t.max_telegrams) * (step.settle_s + 2.0),
            "{}",
            ps.name
        );
        // The load is where a sensor without error flips: n + 0.5 A.
        assert_eq!(ps.load.current_a, (t.between_a.0 + t.between_a.1) / 2.0);
        assert_eq!(
            ps.load.current_name,
            format!("{} → {} A flip", t.between_a.0, t.between_a.1)
        );
        for ph in &step.phases {
            assert_eq!(ps.setpoint.phases[ph.index()].current_a, ps.load.current_a);
        }
    }
    assert_eq!(transitions, 9);
    // 120 + 2 × 60 + 6 × 40 telegrams of 3 s at most.
    assert_eq!(expected_energised_s(&planned), 480.0 * 3.0);
}

/// The 80 A point's search may set up to 88.484 A (where a sensor 10 % low flips, 79.5 A
/// / 0.9, plus 0.15 A of noise margin): a source rated 85 A cannot run it, and says so at
/// the step.
#[test]
fn the_source_rating_is_checked_against_the_search_bracket() {
    let (procedure, fixture, station) = files();
    let text = std::fs::read_to_string(&station.file.path).unwrap();
    let rated_85 = text.replacen("max_current_a: 120", "max_current_a: 85", 1);
    let station = Station::from_file(LoadedFile::from_text(&station.file.path, rated_85)).unwrap();
    let e = plan(&procedure, &fixture, &station).unwrap_err();
    assert!(
        e.message
            .starts_with("step `80 A balanced (79 → 80)` asks 88.484 A"),
        "{e}"
    );
    assert!(
        e.message.contains("beyond the source's rating of 85 A"),
        "{e}"
    );
    let text = &procedure.file().text;
    let line = text[..text.find("{ name: 80 A balanced").unwrap()]
        .matches('\n')
        .count() as u64
        + 1;
    assert_eq!(e.pos.line, line, "{e}");
}

/// A station that allows less time on the source than the searches may take refuses
/// the procedure before anything is switched on.
#[test]
fn a_station_allowing_less_than_the_telegram_budgets_refuses_the_procedure() {
    let (procedure, fixture, station) = files();
    let text = std::fs::read_to_string(&station.file.path).unwrap();
    let short = text.replacen("max_energised_s: 3600", "max_energised_s: 1200", 1);
    let station = Station::from_file(LoadedFile::from_text(&station.file.path, short)).unwrap();
    let e = plan(&procedure, &fixture, &station).unwrap_err();
    assert!(
        e.message
            .contains("would keep the source energised for about 1440 s"),
        "{e}"
    );
}
