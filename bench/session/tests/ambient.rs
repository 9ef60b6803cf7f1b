//! The air the points are measured in (ISO/IEC 17025 7.8.4.1 b), through the real
//! HMT330 driver on a pseudo-terminal to the simulated room: every point records it, a
//! room that drifts out of the reference conditions marks the points measured outside
//! (no statement of conformity), a room outside at the start is refused before anything
//! is switched on, and a station with no climate sensor cannot run such a procedure.

use meterbench_metrology::Conformity;
use meterbench_runner::record::{Outcome, PortResult, RunRecord};
use meterbench_sim::AmbientModel;

mod common;
use common::{edited, options, repo, run, source_is_off, source_was_ever_on};

const ROOM: &str = "climate: { temperature_c: 23.4, humidity_percent_rh: 45, drift_c_per_h: 0.3, drift_percent_rh_per_h: 1, noise_c: 0.02, noise_percent_rh: 0.2 }";

/// `procedure` on the wired simulated station whose room starts at `t0` °C and drifts
/// `drift` °C per hour: the record and whether the source was ever switched on.
fn in_room(procedure: &str, t0: f64, drift: f64) -> (RunRecord, bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(
        procedure,
        "fixtures/cpim1000.yaml",
        "hw/stations/sim.yaml",
        dir.path(),
    );
    o.station = edited(
        "hw/stations/sim.yaml",
        ROOM,
        &format!(
            "climate: {{ temperature_c: {t0}, humidity_percent_rh: 45, drift_c_per_h: {drift}, drift_percent_rh_per_h: 1, noise_c: 0.02, noise_percent_rh: 0.2 }}"
        ),
        dir.path(),
    );
    o.serials = vec![(None, "AIR-0001".into())];
    let (session, bound) = run(o).unwrap();
    assert!(source_is_off(&bound));
    let on = source_was_ever_on(&bound);
    (session.runs.into_iter().next().unwrap().record, on)
}

/// (step, outside, conformities) of every accuracy point.
fn points(r: &RunRecord) -> Vec<(String, bool, Vec<Conformity>)> {
    r.steps
        .iter()
        .filter(|s| s.kind.is_point())
        .map(|s| {
            let outside = s
                .ambient
                .as_ref()
                .expect("every point has its air")
                .outside
                .is_some();
            let c = s
                .ports
                .iter()
                .filter_map(|p| match &p.result {
                    Some(PortResult::Accuracy { decision, .. }) => Some(decision.conformity),
                    _ => None,
                })
                .collect();
            (s.name.clone(), outside, c)
        })
        .collect()
}

#[test]
fn every_point_records_the_air_the_room_had() {
    let (r, _) = in_room("procedures/en50470-3-class-b.yaml", 23.4, 0.3);
    assert_eq!(r.outcome, Outcome::Pass, "{:?}", r.outcome_reason);
    let setup = r
        .ambient
        .as_ref()
        .expect("the run records its reference conditions");
    assert_eq!(setup.reference.temperature_c, 23.0);
    assert_eq!(setup.temperature_u_k2_c, 0.2);
    let climate = r.instruments.iter().find(|i| i.role == "climate").unwrap();
    assert_eq!(
        climate.reported.as_ref().map(|i| i.serial_number.as_str()),
        Some("SIM-CLM-0001"),
        "identified over the wire"
    );
    // Each reading against the injected room: the drift at its time, within the
    // transmitter's noise (4 σ) and its one-decimal display.
    let station =
        meterbench_procedure::Station::load(&repo().join("hw/stations/sim.yaml")).unwrap();
    let model = AmbientModel::for_simulation(station.simulation.as_ref().unwrap()).unwrap();
    let mut readings = vec![setup.at_start.unwrap()];
    for s in r.steps.iter().filter(|s| s.kind.is_point()) {
        let a = s.ambient.as_ref().expect("every point has its air");
        assert_eq!(
            a.readings.len(),
            2,
            "{}: as it began and as it ended",
            s.name
        );
        assert!(a.readings[0].t_s <= a.readings[1].t_s);
        assert!(a.outside.is_none());
        readings.extend(a.readings.iter().copied());
    }
    assert!(readings.len() > 20);
    // The functional tests and the register decide about the device too: their air is
    // read as well.
    for kind in [
        meterbench_runner::StepKind::Starting,
        meterbench_runner::StepKind::NoLoad,
    ] {
        let s = r.steps.iter().find(|s| s.kind == kind).unwrap();
        assert_eq!(
            s.ambient.as_ref().map(|a| a.readings.len()),
            Some(2),
            "{}",
            s.name
        );
    }
    for rd in &readings {
        let truth = model.temperature_c + model.drift_c_per_h * rd.t_s / 3600.0;
        assert!(
            (rd.temperature_c - truth).abs() <= 4.0 * model.noise_c + 0.05 + 1e-9,
            "{rd:?} against {truth}"
        );
        let rh = rd.humidity_percent_rh.unwrap();
        let truth = model.humidity_percent_rh + model.drift_percent_rh_per_h * rd.t_s / 3600.0;
        assert!(
            (rh - truth).abs() <= 4.0 * model.noise_percent_rh + 0.05 + 1e-9,
            "{rd:?}"
        );
    }
}

#[test]
fn a_room_that_drifts_out_marks_the_points_measured_outside() {
    // 24.7 °C and 6 °C per hour: past 25 °C after three minutes of the eight.
    let (r, on) = in_room("procedures/en50470-3-class-b.yaml", 24.7, 6.0);
    assert!(on, "inside at the start: the run went ahead");
    let pts = points(&r);
    let inside: Vec<_> = pts.iter().filter(|p| !p.1).collect();
    let outside: Vec<_> = pts.iter().filter(|p| p.1).collect();
    assert!(!inside.is_empty() && !outside.is_empty(), "{pts:?}");
    for (name, _, c) in &inside {
        assert!(c.iter().all(|c| *c == Conformity::Pass), "{name}: {c:?}");
    }
    for (name, _, c) in &outside {
        assert!(
            c.iter().all(|c| *c == Conformity::NoStatement),
            "{name}: {c:?}"
        );
    }
    // Once out, the room stays out: the points are the last ones.
    let first_out = pts.iter().position(|p| p.1).unwrap();
    assert!(pts[first_out..].iter().all(|p| p.1), "{pts:?}");
    let marked = r
        .steps
        .iter()
        .find(|s| s.ambient.as_ref().is_some_and(|a| a.outside.is_some()))
        .unwrap();
    assert_eq!(marked.outcome, Outcome::NotDecidable);
    let m = marked.message.as_deref().unwrap();
    assert!(
        m.contains("measured outside the reference conditions") && m.contains("23 ± 2 °C"),
        "{m}"
    );
    // The single-phase check compares points measured outside: it states nothing either.
    let check = r
        .steps
        .iter()
        .find(|s| s.kind == meterbench_runner::StepKind::LoadDifference)
        .unwrap();
    assert_eq!(check.outcome, Outcome::NotDecidable, "{:?}", check.message);
    assert!(
        check
            .message
            .as_deref()
            .unwrap()
            .contains("outside the reference conditions")
    );
    assert_eq!(r.outcome, Outcome::NotDecidable, "{:?}", r.outcome_reason);
}

#[test]
fn a_room_outside_at_the_start_is_refused_before_anything_is_switched_on() {
    let (r, on) = in_room("procedures/en50470-3-class-b.yaml", 26.0, 0.0);
    assert!(!on, "nothing was switched on");
    assert_eq!(r.outcome, Outcome::Error);
    let why = r.outcome_reason.as_deref().unwrap();
    assert!(
        why.contains("26 °C is outside 23 ± 2 °C") && why.contains("nothing was switched on"),
        "{why}"
    );
    assert!(
        r.steps
            .iter()
            .all(|s| s.kind != meterbench_runner::StepKind::Accuracy)
    );
    assert_eq!(r.ambient.unwrap().at_start.unwrap().temperature_c, 26.0);
}

#[test]
fn a_procedure_that_marks_runs_on_and_marks_every_point() {
    // The end-of-line procedure says `outside: mark`: a line does not stop for its room.
    let (r, on) = in_room("procedures/cpim1000-eol.yaml", 26.0, 0.0);
    assert!(on);
    let pts = points(&r);
    assert!(!pts.is_empty());
    assert!(
        pts.iter()
            .all(|(_, outside, c)| *outside && c.iter().all(|c| *c == Conformity::NoStatement)),
        "{pts:?}"
    );
    assert!(r.log.iter().any(|l| {
        l.message
            .contains("outside the reference conditions at the start")
    }));
    // Every step that read the air states nothing: no pass, no fail.
    let measured: Vec<_> = r.steps.iter().filter(|s| s.ambient.is_some()).collect();
    assert!(!measured.is_empty());
    for s in measured {
        assert_eq!(s.outcome, Outcome::NotDecidable, "{} ({})", s.name, s.kind);
    }
    assert_eq!(r.outcome, Outcome::NotDecidable, "{:?}", r.outcome_reason);
}

#[test]
fn a_station_without_a_climate_sensor_cannot_run_a_procedure_with_reference_conditions() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("hw/stations/sim.yaml")).unwrap();
    let start = text.find("  # The air at the bench").unwrap();
    let end = start + text[start..].find("\n\n").unwrap() + 1;
    let without = format!("{}{}", &text[..start], &text[end..]);
    let room = without.find("  # The room's air").unwrap();
    let room_end = room + without[room..].find(ROOM).unwrap() + ROOM.len() + 1;
    let without = format!("{}{}", &without[..room], &without[room_end..]);
    let station = dir.path().join("no-climate.yaml");
    std::fs::write(&station, without).unwrap();
    let mut o = options(
        "procedures/en50470-3-class-b.yaml",
        "fixtures/cpim1000.yaml",
        "hw/stations/sim.yaml",
        dir.path(),
    );
    o.station = station;
    let err = meterbench_session::Prepared::load(o)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("en50470-3-class-b.yaml:")
            && err.contains("no climate sensor")
            && err.contains("refused before anything is switched on"),
        "{err}"
    );
}
