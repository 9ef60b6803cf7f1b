//! The real SCPI driver against the simulated instrument over a real pseudo-terminal and
//! a real loopback socket: the world must follow what the driver commands.

use meterbench_instruments::source::ScpiAcSource;
use meterbench_instruments::transport::{SerialSettings, SerialTransport, TcpTransport, Transport};
use meterbench_instruments::{
    AcSource, InstrumentError, PhaseSetpoint, ReferenceStandard, SourceSetpoint,
};
use meterbench_procedure::Fixture;
use meterbench_procedure::station::Station;
use meterbench_sim::{SharedWorld, SimScpiConfig, SimScpiInstrument, World};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_millis(500);

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(p)
}

fn bench() -> (SharedWorld, Station) {
    let station = Station::load(&repo("hw/stations/sim.yaml")).unwrap();
    let fixture = Fixture::load(&repo("fixtures/cpim1000.yaml")).unwrap();
    let world = World::for_station(&station, &fixture);
    (Arc::new(Mutex::new(world)), station)
}

fn balanced(voltage_v: f64, current_a: f64, lag: f64) -> SourceSetpoint {
    SourceSetpoint {
        frequency_hz: 50.0,
        phases: [PhaseSetpoint {
            voltage_v,
            current_a,
            current_lag_deg: lag,
        }; 3],
    }
}

/// Drive a full session and check the world: output, setpoint (through the energy the
/// DUT registers) and the reference pulse output (through the counter's latch).
fn session_moves_the_world<T: Transport>(world: &SharedWorld, station: &Station, transport: T) {
    let mut source = ScpiAcSource::connect(transport, TIMEOUT).expect("connect");
    let id = AcSource::identity(&mut source).unwrap();
    assert_eq!(
        (id.manufacturer.as_str(), id.model.as_str()),
        ("FLUKE", "6105A")
    );

    let sp = balanced(230.0, 5.0, 60.0);
    source.apply(&sp).unwrap();
    source.configure_pulse_output(1.6e8).unwrap();
    assert!(!source.output_is_on().unwrap());
    source.set_output(true).unwrap();
    assert!(world.lock().unwrap().source_output_is_on());
    assert!(source.output_is_on().unwrap());

    // The left port's LED sits under head 1 of position 1.
    let head = station.rack.positions[0].heads[0];
    let seconds = 10.0;
    let (register_wh, last_ref_count) = {
        let mut w = world.lock().unwrap();
        w.counter_arm(head.counter, &[(head.channel, 0.0)]);
        // The register starts where the station file says; the advance is what counts.
        let before = w.register_wh(1, "left").unwrap();
        w.advance(seconds);
        let (events, _) = w.counter_drain(head.counter);
        (
            w.register_wh(1, "left").unwrap() - before,
            events.last().map(|e| e.ref_count),
        )
    };
    // 3 · 230 V · 5 A · cos 60° = 1725 W. The source settles with τ = 0.1 s and the meter
    // has its own error of a few 0.1 %: 3 % covers both and still tells 60° from 0°.
    let expected_wh = sp.active_power_w() * seconds / 3600.0;
    assert!(
        (register_wh / expected_wh - 1.0).abs() < 0.03,
        "registered {register_wh} Wh, expected {expected_wh} Wh"
    );
    // 1.6e8 imp/kWh over ~4.8 Wh: the reference standard's pulses reached the counter.
    let count = last_ref_count.expect("DUT pulses in 10 s at 1725 W");
    assert!(count > 500_000, "reference count {count}");

    source.set_output(false).unwrap();
    assert!(!world.lock().unwrap().source_output_is_on());
}

#[test]
fn driver_over_a_pseudo_terminal_programs_the_world() {
    let (world, fixture) = bench();
    let sim = SimScpiInstrument::new(world.clone(), SimScpiConfig::fluke_6105a());
    let (transport, handle) = sim.spawn_on_pty().unwrap();
    assert!(
        transport.describe().starts_with("serial /dev/"),
        "{}",
        transport.describe()
    );
    session_moves_the_world(&world, &fixture, transport);
    handle.shutdown().unwrap();
}

#[test]
fn driver_opens_the_pseudo_terminal_by_path_like_a_serial_port() {
    let (world, fixture) = bench();
    let sim = SimScpiInstrument::new(world.clone(), SimScpiConfig::fluke_6105a());
    let device = sim.spawn_on_pty_device().unwrap();
    let transport = SerialTransport::open(&SerialSettings::new(device.path(), 115_200)).unwrap();
    assert_eq!(
        transport.describe(),
        format!("serial {} 115200 8N1", device.path())
    );
    session_moves_the_world(&world, &fixture, transport);
    device.shutdown().unwrap();
}

#[test]
fn driver_over_tcp_programs_the_world() {
    let (world, fixture) = bench();
    let sim = SimScpiInstrument::new(world.clone(), SimScpiConfig::fluke_6105a());
    let server = sim.spawn_on_tcp().unwrap();
    assert!(server.addr().ip().is_loopback());
    let transport = TcpTransport::connect(&server.addr().to_string(), TIMEOUT).unwrap();
    assert_eq!(transport.describe(), format!("tcp {}", server.addr()));
    session_moves_the_world(&world, &fixture, transport);
    server.shutdown().unwrap();
}

#[test]
fn chroma_profile_over_tcp_programs_voltage_and_limit() {
    let (world, _) = bench();
    let sim = SimScpiInstrument::new(world.clone(), SimScpiConfig::chroma_61504());
    let server = sim.spawn_on_tcp().unwrap();
    let transport = TcpTransport::connect(&server.addr().to_string(), TIMEOUT).unwrap();
    let mut source = ScpiAcSource::connect(transport, TIMEOUT).unwrap();
    assert_eq!(source.instrument_identity().model, "61504");
    let sp = balanced(230.0, 10.0, 0.0);
    source.apply(&sp).unwrap();
    source.set_output(true).unwrap();
    assert!(source.output_is_on().unwrap());
    let before = world.lock().unwrap().register_wh(1, "left").unwrap();
    let after = {
        let mut w = world.lock().unwrap();
        w.advance(5.0);
        w.register_wh(1, "left").unwrap()
    };
    let expected_wh = sp.active_power_w() * 5.0 / 3600.0;
    assert!(((after - before) / expected_wh - 1.0).abs() < 0.05);
    assert!(matches!(
        source.configure_pulse_output(1000.0),
        Err(InstrumentError::Refused { .. })
    ));
    server.shutdown().unwrap();
}

#[test]
fn a_setpoint_beyond_the_ratings_is_a_device_error_and_changes_nothing() {
    let (world, _) = bench();
    // The station's source ratings (hw/stations/sim.yaml: 300 V, 120 A).
    let config = SimScpiConfig::fluke_6105a().with_ratings(300.0, 120.0);
    let sim = SimScpiInstrument::new(world.clone(), config);
    let server = sim.spawn_on_tcp().unwrap();
    let transport = TcpTransport::connect(&server.addr().to_string(), TIMEOUT).unwrap();
    let mut source = ScpiAcSource::connect(transport, TIMEOUT).unwrap();

    source.apply(&balanced(230.0, 5.0, 0.0)).unwrap();
    match source.apply(&balanced(400.0, 5.0, 0.0)) {
        Err(e @ InstrumentError::Device { .. }) => {
            let InstrumentError::Device { request, reply, .. } = &e else {
                unreachable!()
            };
            assert!(
                request.contains("SOUR:PHAS1:VOLT:MHAR:HARM1 400,0"),
                "{request}"
            );
            assert!(reply.contains("-222,\"Data out of range\""), "{reply}");
            assert!(e.to_string().contains("SYST:ERR?"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // The previous setpoint still stands: with the output on, 230 V · 5 A · 3 = 3450 W.
    source.set_output(true).unwrap();
    let wh = {
        let mut w = world.lock().unwrap();
        let before = w.register_wh(1, "left").unwrap();
        w.advance(10.0);
        w.register_wh(1, "left").unwrap() - before
    };
    assert!(
        (wh / (3450.0 * 10.0 / 3600.0) - 1.0).abs() < 0.03,
        "{wh} Wh"
    );
    server.shutdown().unwrap();
}

fn assert_lost(result: Result<(), InstrumentError>, started: Instant) {
    match result {
        Err(InstrumentError::Link { .. }) | Err(InstrumentError::Timeout { .. }) => {}
        other => panic!("expected a Link or Timeout error, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn closing_the_pty_far_end_mid_session_is_an_error_not_a_hang() {
    let (world, _) = bench();
    let sim = SimScpiInstrument::new(world.clone(), SimScpiConfig::fluke_6105a());
    let (transport, handle) = sim.spawn_on_pty().unwrap();
    let mut source = ScpiAcSource::connect(transport, TIMEOUT).unwrap();
    source.set_output(true).unwrap();
    handle.shutdown().unwrap();
    let started = Instant::now();
    assert_lost(source.set_output(false), started);
    assert_lost(source.output_is_on().map(|_| ()), Instant::now());
}

#[test]
fn closing_the_tcp_far_end_mid_session_is_an_error_not_a_hang() {
    let (world, _) = bench();
    let sim = SimScpiInstrument::new(world.clone(), SimScpiConfig::fluke_6105a());
    let server = sim.spawn_on_tcp().unwrap();
    let transport = TcpTransport::connect(&server.addr().to_string(), TIMEOUT).unwrap();
    let mut source = ScpiAcSource::connect(transport, TIMEOUT).unwrap();
    source.apply(&balanced(230.0, 5.0, 0.0)).unwrap();
    server.shutdown().unwrap();
    let started = Instant::now();
    assert_lost(source.set_output(true), started);
    // The simulated instrument never saw OUTP ON.
    assert!(!world.lock().unwrap().source_output_is_on());
}
