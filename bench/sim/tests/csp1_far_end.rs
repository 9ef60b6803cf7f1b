//! The P1 reader against the simulated CSP1 over a real pseudo-terminal: telegrams only
//! while the request line is raised, one per simulated second, each CT's RMS over that
//! second with its gain error and the device's 1 A resolution.

use meterbench_instruments::p1::{P1Event, P1Reader, P1Settings};
use meterbench_instruments::transport::serial::{SerialPort as _, TTYPort};
use meterbench_instruments::transport::{
    SerialSettings, SerialTransport, Transport, TransportError,
};
use meterbench_instruments::{PhaseSetpoint, SourceSetpoint};
use meterbench_p1::Decimal;
use meterbench_procedure::Fixture;
use meterbench_procedure::station::Station;
use meterbench_sim::{Csp1SimConfig, RequestWire, SharedWorld, WiredPty, World, spawn_csp1_device};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(p)
}

fn world_with_currents(currents: [f64; 3]) -> SharedWorld {
    let station = Station::load(&repo("hw/stations/sim.yaml")).unwrap();
    let fixture = Fixture::load(&repo("fixtures/cpim1000.yaml")).unwrap();
    let mut w = World::for_station(&station, &fixture);
    w.source_apply(SourceSetpoint {
        frequency_hz: 50.0,
        phases: currents.map(|current_a| PhaseSetpoint {
            voltage_v: 230.0,
            current_a,
            current_lag_deg: 0.0,
        }),
    });
    w.source_set_output(true);
    Arc::new(Mutex::new(w))
}

fn events(reader: &mut P1Reader<WiredPty>) -> Vec<P1Event> {
    let mut v = Vec::new();
    while let Some(e) = reader.next_event(Duration::from_millis(300)).unwrap() {
        v.push(e);
    }
    v
}

#[test]
fn sends_each_seconds_rms_with_its_gain_error_only_while_asked() {
    let world = world_with_currents([10.0, 24.0, 5.0]);
    world.lock().unwrap().advance(2.0); // the source has settled
    let (master, slave) = TTYPort::pair().unwrap();
    let path = slave.name().unwrap();
    let wire = RequestWire::default();
    let stop = Arc::new(AtomicBool::new(false));
    let config = Csp1SimConfig {
        gain_percent: [0.0, 3.0, 0.0],
        ..Csp1SimConfig::default()
    };
    let device = spawn_csp1_device(world.clone(), master, config, wire.clone(), stop.clone());

    // Not asked: three seconds pass in silence.
    world.lock().unwrap().advance(3.0);
    std::thread::sleep(Duration::from_millis(100));
    let mut quiet = SerialTransport::open(&SerialSettings::new(path.clone(), 115_200)).unwrap();
    match quiet.read_until(b'\n', Duration::from_millis(100)) {
        Err(TransportError::Timeout { partial, .. }) => {
            assert!(partial.is_empty(), "sent without request: {partial:?}")
        }
        other => panic!("sent without request: {other:?}"),
    }
    drop(quiet);

    let serial = SerialTransport::open(&SerialSettings::new(path, 115_200)).unwrap();
    let port = WiredPty {
        serial,
        request: wire.clone(),
    };
    let mut reader = P1Reader::open(port, P1Settings::default()).unwrap();
    assert!(wire.is_raised());
    world.lock().unwrap().advance(4.0);
    let got = events(&mut reader);
    assert_eq!(got.len(), 4, "one telegram per second: {got:?}");
    for e in &got {
        let P1Event::Telegram(t) = e else {
            panic!("{e:?}")
        };
        // 24 A × 1.03 = 24.72 A, sent at 1 A resolution.
        let amps = [10, 25, 5].map(|a| Some(Decimal::new(a, 0)));
        assert_eq!(t.telegram.currents(), amps);
        assert_eq!(t.telegram.firmware_id(), Some("XMX_P1CS_V05"));
        assert!(t.telegram.crc.is_some());
    }
    let stats = reader.close().unwrap();
    assert_eq!((stats.telegrams, stats.crc_failures), (4, 0));
    assert!(!wire.is_raised(), "closing lowers the request line");

    stop.store(true, Ordering::SeqCst);
    device.join().unwrap();
    drop(slave);
}

#[test]
fn each_second_is_the_rms_over_that_second() {
    // Switching on mid-second: the first second's RMS is the partial second's.
    let world = world_with_currents([0.0; 3]);
    {
        let mut w = world.lock().unwrap();
        w.advance(0.5);
        w.source_apply(SourceSetpoint {
            frequency_hz: 50.0,
            phases: [PhaseSetpoint {
                voltage_v: 230.0,
                current_a: 40.0,
                current_lag_deg: 0.0,
            }; 3],
        });
        w.advance(2.5);
    }
    let seconds = world.lock().unwrap().ct_seconds_after(0.0);
    let ends: Vec<f64> = seconds.iter().map(|s| s.0).collect();
    assert_eq!(ends, [1.0, 2.0, 3.0]);
    // i(t) = 40 A · (1 − e^(−(t − 0.5)/τ)), τ = 0.1 s, from t = 0.5 s:
    // ∫ i² dt over 0.5..1 = 1600 · (0.5 − 2τ(1 − e^−5) + τ/2 (1 − e^−10)) = 562.2 A²s,
    // RMS = √562.2 = 23.71 A. The world steps the source at 100 Hz (each 10 ms slice at
    // its end value), which reads about 1 % high.
    let first = seconds[0].1[0];
    assert!((first - 23.71).abs() < 0.25, "{first}");
    // Settled: the source's amplitude error (0.005 %) on 40 A.
    let settled = seconds[2].1[0];
    assert!((settled - 40.002).abs() < 0.001, "{settled}");
}
