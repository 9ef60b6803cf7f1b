//! Protocol tests: the driver against recorded exchanges, byte for byte.

use super::*;
use crate::PhaseSetpoint;
use crate::transport::{ScriptStep, ScriptedTransport};

const TIMEOUT: Duration = Duration::from_millis(250);
const FLUKE_IDN: &str = "FLUKE,6105A,1234567,2.04\r\n";
const CHROMA_IDN: &str = "Chroma ATE,61504,615040001234,1.00,1.01,1.02\n";

fn no_error() -> ScriptStep {
    ScriptStep::exchange("SYST:ERR?\n", "0,\"No error\"\n")
}

fn cmd(s: &str) -> ScriptStep {
    ScriptStep::command(format!("{s}\n"))
}

fn fluke_connect() -> Vec<ScriptStep> {
    vec![
        ScriptStep::exchange("*IDN?\n", FLUKE_IDN),
        cmd("*CLS"),
        no_error(),
    ]
}

fn chroma_connect() -> Vec<ScriptStep> {
    vec![
        ScriptStep::exchange("*IDN?\n", CHROMA_IDN),
        cmd("*CLS"),
        cmd("OUTP:MODE FIXED"),
        cmd("INST:PHAS THREE"),
        no_error(),
    ]
}

fn connect(steps: Vec<ScriptStep>) -> ScpiAcSource<ScriptedTransport> {
    ScpiAcSource::connect(ScriptedTransport::new(steps), TIMEOUT).expect("connect")
}

fn setpoint(voltage_v: f64, current_a: f64, lag: f64) -> SourceSetpoint {
    SourceSetpoint {
        frequency_hz: 50.0,
        phases: [PhaseSetpoint {
            voltage_v,
            current_a,
            current_lag_deg: lag,
        }; 3],
    }
}

fn fluke_phase(n: u8, v: &str, v_angle: &str, i: &str, i_angle: &str) -> Vec<ScriptStep> {
    vec![
        cmd(&format!("SOUR:PHAS{n}:VOLT:RANG {v},{v}")),
        cmd(&format!("SOUR:PHAS{n}:VOLT:MHAR:HARM1 {v},{v_angle}")),
        cmd(&format!("SOUR:PHAS{n}:CURR:RANG {i},{i}")),
        cmd(&format!("SOUR:PHAS{n}:CURR:MHAR:HARM1 {i},{i_angle}")),
    ]
}

#[test]
fn fluke_identifies_and_clears_its_status() {
    let mut s = connect(fluke_connect());
    assert_eq!(s.profile(), &FLUKE_6100B_6105A);
    let id = AcSource::identity(&mut s).unwrap();
    assert_eq!(
        (
            id.manufacturer.as_str(),
            id.model.as_str(),
            id.serial_number.as_str(),
            id.firmware.as_str()
        ),
        ("FLUKE", "6105A", "1234567", "2.04")
    );
    s.transport().assert_finished();
}

#[test]
fn fluke_applies_a_three_phase_setpoint_through_the_harmonic_tree() {
    let mut steps = fluke_connect();
    // A setpoint is one command group: one error query after all of it.
    steps.push(cmd("SOUR:FREQ 50"));
    steps.extend(fluke_phase(1, "230", "0", "5", "-60"));
    steps.extend(fluke_phase(2, "230", "-120", "5", "-60"));
    steps.extend(fluke_phase(3, "230", "120", "5", "-60"));
    steps.push(no_error());
    let mut s = connect(steps);
    s.apply(&setpoint(230.0, 5.0, 60.0)).unwrap();
    s.transport().assert_finished();

    // The recorded bytes of the whole session, as a reviewer would read them on the wire.
    let wire: String = s
        .transport()
        .transcript()
        .iter()
        .map(|(sent, _)| String::from_utf8_lossy(sent).into_owned())
        .collect();
    assert!(wire.contains(
        "SOUR:PHAS2:VOLT:RANG 230,230\nSOUR:PHAS2:VOLT:MHAR:HARM1 230,-120\n\
         SOUR:PHAS2:CURR:RANG 5,5\nSOUR:PHAS2:CURR:MHAR:HARM1 5,-60\nSOUR:PHAS3:VOLT:RANG 230,230\n"
    ));
}

#[test]
fn fluke_capacitive_setpoint_leads_and_small_currents_keep_their_digits() {
    let mut steps = fluke_connect();
    steps.push(cmd("SOUR:FREQ 60"));
    for (n, va) in [(1, "0"), (2, "-120"), (3, "120")] {
        steps.extend(fluke_phase(n, "57.735", va, "0.025", "36.87"));
    }
    steps.push(no_error());
    let mut s = connect(steps);
    let mut sp = setpoint(57.735, 0.025, -36.87);
    sp.frequency_hz = 60.0;
    s.apply(&sp).unwrap();
    s.transport().assert_finished();
}

#[test]
fn fluke_output_on_off_and_state() {
    let mut steps = fluke_connect();
    steps.extend([
        cmd("OUTP ON"),
        no_error(),
        ScriptStep::exchange("OUTP?\n", "1\n"),
        cmd("OUTP OFF"),
        no_error(),
        ScriptStep::exchange("OUTP?\n", "OFF\n"),
    ]);
    let mut s = connect(steps);
    s.set_output(true).unwrap();
    assert!(s.output_is_on().unwrap());
    s.set_output(false).unwrap();
    assert!(!s.output_is_on().unwrap());
    s.transport().assert_finished();
}

#[test]
fn fluke_energy_pulse_output_constant() {
    let mut steps = fluke_connect();
    steps.extend([
        cmd("ENER:OUTP:CONS:UNIT IPKWH"),
        cmd("ENER:OUTP:CONS 160000000"),
        no_error(),
    ]);
    let mut s = connect(steps);
    s.configure_pulse_output(1.6e8).unwrap();
    assert!(matches!(
        s.configure_pulse_output(0.0),
        Err(InstrumentError::Refused { .. })
    ));
    s.transport().assert_finished();
}

#[test]
fn an_error_in_the_queue_is_a_device_error_naming_command_and_reply() {
    let mut steps = fluke_connect();
    steps.push(cmd("SOUR:FREQ 50"));
    steps.extend(fluke_phase(1, "400", "0", "5", "0"));
    steps.extend(fluke_phase(2, "400", "-120", "5", "0"));
    steps.extend(fluke_phase(3, "400", "120", "5", "0"));
    steps.extend([
        ScriptStep::exchange("SYST:ERR?\n", "-222,\"Data out of range\"\n"),
        no_error(),
    ]);
    let mut s = connect(steps);
    let e = s.apply(&setpoint(400.0, 5.0, 0.0)).unwrap_err();
    match &e {
        InstrumentError::Device {
            instrument,
            request,
            reply,
        } => {
            assert_eq!(instrument, "FLUKE 6105A SN 1234567 (scripted)");
            assert!(
                request.contains("SOUR:PHAS1:VOLT:MHAR:HARM1 400,0"),
                "{request}"
            );
            assert_eq!(reply, "SYST:ERR? → -222,\"Data out of range\"");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("Data out of range"));
    // Every command of the group is named, so the operator sees what was asked.
    assert!(
        e.to_string().contains("SOUR:PHAS3:CURR:MHAR:HARM1 5,0"),
        "{e}"
    );
    s.transport().assert_finished();
}

#[test]
fn a_silent_instrument_is_a_timeout_naming_the_command() {
    let mut steps = fluke_connect();
    steps.extend([cmd("OUTP ON"), ScriptStep::timeout("SYST:ERR?\n")]);
    let mut s = connect(steps);
    match s.set_output(true) {
        Err(InstrumentError::Timeout {
            request, timeout, ..
        }) => {
            assert_eq!(request, "SYST:ERR? (after OUTP ON)");
            assert_eq!(timeout, TIMEOUT);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unanswered_query_is_a_timeout_naming_it() {
    let mut steps = fluke_connect();
    steps.push(ScriptStep::timeout("OUTP?\n"));
    let mut s = connect(steps);
    match s.output_is_on() {
        Err(InstrumentError::Timeout { request, .. }) => assert_eq!(request, "OUTP?"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_dropped_link_is_a_link_error() {
    let mut steps = fluke_connect();
    steps.push(ScriptStep::Disconnect);
    let mut s = connect(steps);
    match s.set_output(false) {
        Err(InstrumentError::Link { message, .. }) => {
            assert!(message.contains("OUTP OFF"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unknown_instrument_is_refused_with_the_known_models() {
    let t = ScriptedTransport::new([ScriptStep::exchange(
        "*IDN?\n",
        "Keysight Technologies,AC6801B,MY123,A.01\n",
    )]);
    match ScpiAcSource::connect(t, TIMEOUT) {
        Err(InstrumentError::Refused {
            request, reason, ..
        }) => {
            assert_eq!(request, "*IDN?");
            assert!(reason.contains("AC6801B"), "{reason}");
            for m in ["Fluke 6100B", "Fluke 6105A", "Chroma 61504"] {
                assert!(reason.contains(m), "{reason}");
            }
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn setpoints_that_are_not_numbers_are_refused_before_sending() {
    let mut s = connect(fluke_connect());
    let mut sp = setpoint(230.0, 5.0, 0.0);
    sp.phases[2].current_a = f64::NAN;
    assert!(matches!(s.apply(&sp), Err(InstrumentError::Refused { .. })));
    sp = setpoint(-1.0, 5.0, 0.0);
    assert!(matches!(s.apply(&sp), Err(InstrumentError::Refused { .. })));
    sp = setpoint(230.0, 5.0, 0.0);
    sp.frequency_hz = 0.0;
    assert!(matches!(s.apply(&sp), Err(InstrumentError::Refused { .. })));
    s.transport().assert_finished();
}

#[test]
fn chroma_identifies_and_enters_three_phase_mode() {
    let s = connect(chroma_connect());
    assert_eq!(s.profile(), &CHROMA_61500);
    assert_eq!(s.instrument_identity().firmware, "1.00,1.01,1.02");
    s.transport().assert_finished();
}

#[test]
fn chroma_applies_voltages_limits_and_angles_per_selected_phase() {
    let mut steps = chroma_connect();
    steps.push(cmd("FREQ 50"));
    for (n, angle) in [(1, "0"), (2, "240"), (3, "120")] {
        steps.extend([
            cmd(&format!("INST:NSEL {n}")),
            cmd("VOLT:AC 230"),
            cmd("CURR:LIM 10"),
            cmd(&format!("PHAS {angle}")),
        ]);
    }
    steps.push(no_error());
    steps.extend([cmd("OUTP ON"), no_error(), cmd("OUTP OFF"), no_error()]);
    let mut s = connect(steps);
    s.apply(&setpoint(230.0, 10.0, 0.0)).unwrap();
    s.set_output(true).unwrap();
    s.set_output(false).unwrap();
    s.transport().assert_finished();
}

#[test]
fn chroma_refuses_what_an_ac_source_cannot_do() {
    let mut s = connect(chroma_connect());
    match s.apply(&setpoint(230.0, 5.0, 60.0)) {
        Err(InstrumentError::Refused { reason, .. }) => {
            assert!(
                reason.contains("cannot set the current's phase"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    match s.configure_pulse_output(1000.0) {
        Err(InstrumentError::Refused { reason, .. }) => {
            assert!(reason.contains("no energy pulse output"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    s.transport().assert_finished();
}

#[test]
fn chroma_error_names_the_phase_commands() {
    let mut steps = chroma_connect();
    steps.push(cmd("FREQ 50"));
    for (n, angle) in [(1, "0"), (2, "240"), (3, "120")] {
        steps.extend([
            cmd(&format!("INST:NSEL {n}")),
            cmd("VOLT:AC 330"),
            cmd("CURR:LIM 5"),
            cmd(&format!("PHAS {angle}")),
        ]);
    }
    steps.extend([
        ScriptStep::exchange("SYST:ERR?\n", "-222,\"Data out of range\"\n"),
        no_error(),
    ]);
    let mut s = connect(steps);
    match s.apply(&setpoint(330.0, 5.0, 0.0)) {
        Err(InstrumentError::Device { request, reply, .. }) => {
            assert!(
                request.starts_with("FREQ 50; INST:NSEL 1; VOLT:AC 330; CURR:LIM 5; PHAS 0; "),
                "{request}"
            );
            assert!(reply.contains("-222,\"Data out of range\""), "{reply}");
        }
        other => panic!("{other:?}"),
    }
    s.transport().assert_finished();
}

#[test]
fn a_setup_error_fails_the_connection() {
    let t = ScriptedTransport::new([
        ScriptStep::exchange("*IDN?\n", CHROMA_IDN),
        cmd("*CLS"),
        cmd("OUTP:MODE FIXED"),
        cmd("INST:PHAS THREE"),
        ScriptStep::exchange("SYST:ERR?\n", "-113,\"Undefined header\"\n"),
        no_error(),
    ]);
    match ScpiAcSource::connect(t, TIMEOUT) {
        Err(InstrumentError::Device { request, reply, .. }) => {
            assert!(request.contains("INST:PHAS THREE"), "{request}");
            assert!(reply.contains("-113"), "{reply}");
        }
        other => panic!("{other:?}"),
    }
}
