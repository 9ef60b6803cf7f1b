//! The CPIM1000 Eichrecht procedure on the simulated station: the inspection (serial
//! scan, seals, labels), the software identity over the real CAN stack (SLCAN on a
//! pseudo-terminal, ISO-TP, UDS) against the simulated meter's CAN node, and the
//! register (meter constant) test read from the simulated LCD by the simulated
//! technician.

use meterbench_procedure::{IdentitySource, RegisterFault, SimFault};
use meterbench_runner::Outcome;
use meterbench_runner::record::{PortResult, RunRecord, StepKind};
use meterbench_session::BoundStation;

mod common;
use common::{edited, options, source_is_off};

/// Run the Eichrecht procedure on the sim station with `edit` applied to the station
/// file's text; the record, and whether the source was ever switched on.
fn run_with_station_edit(from: &str, to: &str) -> (RunRecord, BoundStation) {
    run_eichrecht(from, to, Vec::new(), None)
}

/// The same, with DUT faults and, if given, the serial number the run is for (default:
/// the simulated DUT's, as the CLI does).
fn run_eichrecht(
    from: &str,
    to: &str,
    dut_faults: Vec<SimFault>,
    dut_serial: Option<&str>,
) -> (RunRecord, BoundStation) {
    let reports = tempfile::tempdir().unwrap();
    let mut o = options(
        "procedures/cpim1000-eichrecht.yaml",
        "fixtures/cpim1000.yaml",
        "hw/stations/sim.yaml",
        reports.path(),
    );
    o.station = edited("hw/stations/sim.yaml", from, to, reports.path());
    o.sim_faults = dut_faults;
    if let Some(s) = dut_serial {
        o.serials = vec![(None, s.to_string())];
    }
    // The simulated technician answers from the simulated meter.
    let (mut session, b) = common::run(o).unwrap();
    (session.runs.remove(0).record, b)
}

/// The largest current the source was asked for in any step that ran.
fn max_current_a(rec: &RunRecord) -> f64 {
    rec.steps
        .iter()
        .flat_map(|s| s.setpoint.phases.iter().map(|p| p.current_a))
        .fold(0.0, f64::max)
}

#[test]
fn a_certified_identity_passes_and_is_on_the_record() {
    let (rec, b) = run_with_station_edit("faults: []", "faults: []");
    assert_eq!(rec.outcome, Outcome::Pass, "{:?}", rec.outcome_reason);
    let id = &rec.steps[1];
    assert_eq!((id.kind, id.outcome), (StepKind::Identity, Outcome::Pass));
    for p in &id.ports {
        match &p.result {
            Some(PortResult::Identity {
                software_version,
                lrs_hash,
                passed,
                read_from,
                ..
            }) => {
                assert_eq!(
                    (software_version.as_str(), lrs_hash.as_str(), *passed),
                    ("1.8.4", "A3F09C4E", true)
                );
                assert_eq!(*read_from, IdentitySource::Can);
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(source_is_off(&b));
}

#[test]
fn a_wrong_lrs_hash_on_one_port_fails_before_any_energy_test() {
    let (rec, b) = run_with_station_edit(
        "lrs_hash: { left: \"A3F09C4E\", right: \"A3F09C4E\" }",
        "lrs_hash: { left: \"A3F09C4E\", right: \"A3F09C4F\" }",
    );
    assert_eq!(rec.outcome, Outcome::Fail);
    let reason = rec.outcome_reason.clone().unwrap();
    assert!(
        reason.contains("LRS hash of port right is A3F09C4F, the certified one is A3F09C4E"),
        "{reason}"
    );
    assert!(reason.contains("no energy test was run"), "{reason}");
    assert_eq!(
        rec.steps.len(),
        2,
        "only the inspection and identity steps ran"
    );
    let ports: Vec<(&str, bool)> = rec.steps[1]
        .ports
        .iter()
        .map(|p| (p.port.as_str(), p.result.as_ref().unwrap().passed()))
        .collect();
    assert_eq!(ports, [("left", true), ("right", false)]);
    assert_eq!(max_current_a(&rec), 0.0, "no current was ever applied");
    assert!(source_is_off(&b));
}

#[test]
fn a_silent_meter_is_an_error_naming_the_ids_it_was_asked_on() {
    let (rec, b) = run_with_station_edit(
        "lrs_hash: { left: \"A3F09C4E\", right: \"A3F09C4E\" }",
        "lrs_hash: { left: \"A3F09C4E\", right: \"A3F09C4E\" }\n          can_silent: true",
    );
    assert_eq!(rec.outcome, Outcome::Error);
    let reason = rec.outcome_reason.clone().unwrap();
    assert!(reason.contains("no answer on CAN id 0x7E8"), "{reason}");
    assert!(reason.contains("sent on 0x7E0"), "{reason}");
    assert_eq!(rec.steps.len(), 2);
    assert!(source_is_off(&b));
}

#[test]
fn the_inspection_and_the_register_test_pass_on_an_intact_meter() {
    let (rec, b) = run_with_station_edit("faults: []", "faults: []");
    assert_eq!(rec.outcome, Outcome::Pass, "{:?}", rec.outcome_reason);
    let inspection = &rec.steps[0];
    assert_eq!(inspection.kind, StepKind::Inspection);
    match &inspection.ports[0].result {
        Some(PortResult::Inspection {
            scanned_serial,
            checks,
            passed: true,
            ..
        }) => {
            assert_eq!(scanned_serial.as_deref(), Some("SIM-CPIM-000123"));
            let keys: Vec<&str> = checks.iter().map(|c| c.key.as_str()).collect();
            assert_eq!(
                keys,
                [
                    "seal.power_plate",
                    "seal.output_connector_screws",
                    "label.mid_mir",
                    "label.eichrecht"
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        inspection.setpoint.phases[0].voltage_v, 0.0,
        "the DUT is not powered"
    );

    let register = rec
        .steps
        .iter()
        .find(|s| s.kind == StepKind::Register)
        .unwrap();
    let world = b.world.as_ref().unwrap().lock().unwrap();
    for p in &register.ports {
        let Some(PortResult::Register {
            read_from,
            before_kwh,
            after_kwh,
            pulses,
            comparison,
            decision,
            consistent_with_pulses,
            ..
        }) = &p.result
        else {
            panic!("{:?}", p.result);
        };
        assert_eq!(*read_from, IdentitySource::Lcd);
        // Readings as the LCD shows them: six digits, four decimals.
        assert_eq!(
            (before_kwh.len(), after_kwh.len()),
            (11, 11),
            "{before_kwh} {after_kwh}"
        );
        // The register advanced by its steps; one step (0.1 Wh) ≤ 1/10 of the 1 % limit.
        let steps = |t: &str| t.replace('.', "").parse::<u64>().unwrap();
        let advance_wh = (steps(after_kwh) - steps(before_kwh)) as f64 * 0.1;
        assert!((advance_wh - comparison.register_wh).abs() < 1e-9);
        assert!(
            comparison.register_wh >= 100.0,
            "{}",
            comparison.register_wh
        );
        assert!(comparison.resolution_percent <= 0.1);
        assert!((comparison.pulses_wh - *pulses as f64 / 20.0).abs() < 1e-9);
        assert!(
            *consistent_with_pulses && decision.accepted,
            "{comparison:?}"
        );
        // Against the reference: the meter's own error at Imax PF 1, within the register's
        // resolution (0.1 %).
        let injected = world
            .injected_error_percent(1, &p.port, &register.setpoint)
            .unwrap();
        assert!(
            (comparison.error_vs_reference_percent - injected).abs() < 0.12,
            "port {}: register error {} vs the model's {injected}",
            p.port,
            comparison.error_vs_reference_percent
        );
    }
}

#[test]
fn a_register_that_disagrees_with_its_pulses_fails_on_that_port_only() {
    let (rec, b) = run_eichrecht(
        "faults: []",
        "faults: []",
        vec![SimFault::RegisterError(RegisterFault {
            position: None,
            port: "right".into(),
            error_percent: 1.5,
        })],
        None,
    );
    assert_eq!(rec.outcome, Outcome::Fail);
    let register = rec
        .steps
        .iter()
        .find(|s| s.kind == StepKind::Register)
        .unwrap();
    assert_eq!(register.outcome, Outcome::Fail);
    let message = register.message.clone().unwrap();
    assert!(
        message.starts_with("port right: register advanced") && !message.contains("port left"),
        "{message}"
    );
    let verdicts: Vec<(&str, bool)> = register
        .ports
        .iter()
        .map(|p| (p.port.as_str(), p.result.as_ref().unwrap().passed()))
        .collect();
    assert_eq!(verdicts, [("left", true), ("right", false)]);
    // The LED is right: every accuracy point still passes.
    for s in rec.steps.iter().filter(|s| s.kind == StepKind::Accuracy) {
        assert_eq!(s.outcome, Outcome::Pass, "{}", s.name);
    }
    assert!(source_is_off(&b));
}

#[test]
fn a_broken_seal_fails_the_inspection_before_anything_is_switched_on() {
    let (rec, b) = run_with_station_edit(
        "faults: []",
        "faults: []\n        broken_seals: [output_connector_screws]",
    );
    assert_eq!(rec.outcome, Outcome::Fail);
    let reason = rec.outcome_reason.clone().unwrap();
    assert!(
        reason
            .contains("seal not intact: User seals on the left and right output connector screws")
            && reason.contains("no energy test was run"),
        "{reason}"
    );
    assert_eq!(rec.steps.len(), 1);
    assert!(
        rec.steps
            .iter()
            .all(|s| s.setpoint.phases.iter().all(|p| p.voltage_v == 0.0))
    );
    assert!(source_is_off(&b));
}

#[test]
fn a_scanned_serial_that_is_not_the_runs_fails_the_inspection() {
    let (rec, _) = run_eichrecht("faults: []", "faults: []", Vec::new(), Some("CPIM-OTHER-7"));
    assert_eq!(rec.outcome, Outcome::Fail);
    let reason = rec.outcome_reason.clone().unwrap();
    assert!(
        reason.contains(
            "the scanned serial number SIM-CPIM-000123 is not the one this run is for (CPIM-OTHER-7)"
        ),
        "{reason}"
    );
    assert_eq!(rec.steps.len(), 1);
}
