//! The simulated CSP1's noise: each second's value gets its own seeded draw before it is
//! rounded, so a current near a boundary reads either neighbour in the proportion the
//! noise gives, and the same seed gives the same readings whenever the bench asks.

use meterbench_instruments::p1::{P1Event, P1Reader, P1Settings};
use meterbench_instruments::transport::SerialTransport;
use meterbench_instruments::transport::serial::{SerialPort as _, TTYPort};
use meterbench_instruments::{PhaseSetpoint, SourceSetpoint};
use meterbench_procedure::station::Station;
use meterbench_procedure::{Fixture, SimCsp1Spec};
use meterbench_sim::{Csp1SimConfig, RequestWire, SharedWorld, WiredPty, World, spawn_csp1_device};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(p)
}

fn world_at(current_a: f64) -> SharedWorld {
    let station = Station::load(&repo("hw/stations/sim.yaml")).unwrap();
    let fixture = Fixture::load(&repo("fixtures/cpim1000.yaml")).unwrap();
    let mut w = World::for_station(&station, &fixture);
    w.source_apply(SourceSetpoint {
        frequency_hz: 50.0,
        phases: [current_a, 0.0, 0.0].map(|current_a| PhaseSetpoint {
            voltage_v: 230.0,
            current_a,
            current_lag_deg: 0.0,
        }),
    });
    w.source_set_output(true);
    Arc::new(Mutex::new(w))
}

/// The L1 readings of a CSP1 with `config` over `seconds` whole seconds of a world at
/// `current_a`, the request line raised only after `silent_s` seconds (the seconds
/// before are not sent).
fn readings(config: Csp1SimConfig, current_a: f64, silent_s: u32, seconds: u32) -> Vec<u16> {
    let world = world_at(current_a);
    let (master, slave) = TTYPort::pair().unwrap();
    let path = slave.name().unwrap();
    let wire = RequestWire::default();
    let stop = Arc::new(AtomicBool::new(false));
    let device = spawn_csp1_device(world.clone(), master, config, wire.clone(), stop.clone());
    for _ in 0..silent_s {
        world.lock().unwrap().advance(1.0);
        std::thread::sleep(Duration::from_millis(5));
    }
    // Give the device time to pass the unasked seconds before the line is raised.
    std::thread::sleep(Duration::from_millis(50));
    let serial = SerialTransport::open(&meterbench_instruments::transport::SerialSettings::new(
        path, 115_200,
    ))
    .unwrap();
    let mut reader = P1Reader::open(
        WiredPty {
            serial,
            request: wire.clone(),
        },
        P1Settings::default(),
    )
    .unwrap();
    let mut got = Vec::new();
    for _ in 0..seconds {
        world.lock().unwrap().advance(1.0);
        match reader.next_event(Duration::from_millis(500)).unwrap() {
            Some(P1Event::Telegram(t)) => {
                let l1 = t.telegram.currents()[0].unwrap();
                got.push(l1.to_string().parse::<f64>().unwrap() as u16);
            }
            other => panic!("{other:?}"),
        }
    }
    reader.close().unwrap();
    stop.store(true, Ordering::SeqCst);
    device.join().unwrap();
    drop(slave);
    got
}

fn noisy(noise_a: f64, seed: u64) -> Csp1SimConfig {
    Csp1SimConfig::for_position(
        &SimCsp1Spec {
            serial_number: "SIM-NOISE".into(),
            firmware: "XMX_P1CS_V05".into(),
            gain_percent: [0.0; 3],
            offset_a: [0.0; 3],
            noise_a: [noise_a, 0.0, 0.0],
        },
        seed,
        1,
    )
}

#[test]
fn a_current_near_a_boundary_reads_either_neighbour_as_the_noise_says() {
    // 10.4 A with 0.3 A of noise: 11 when 10.4 + 0.3 z ≥ 10.5, P = 1 − Φ(1/3) = 0.3694.
    let n = 150;
    let got = readings(noisy(0.3, 7), 10.4, 1, n);
    assert!(got.iter().all(|&r| (9..=12).contains(&r)), "{got:?}");
    let elevens = got.iter().filter(|&&r| r >= 11).count();
    // Binomial(150, 0.3694): mean 55.4, sd 5.9; ±4 sd.
    assert!(
        (32..=79).contains(&elevens),
        "{elevens} of {n} read 11 or more"
    );
    // Without noise the same current always reads 10.
    let quiet = readings(noisy(0.0, 7), 10.4, 1, 10);
    assert!(quiet.iter().all(|&r| r == 10), "{quiet:?}");
}

#[test]
fn the_same_seed_gives_the_same_readings_whenever_the_bench_asks() {
    let from_start = readings(noisy(0.3, 42), 10.4, 1, 30);
    // Asked 10 s later: each second has its own draws, so the later seconds read as
    // they did.
    let later = readings(noisy(0.3, 42), 10.4, 11, 20);
    assert_eq!(&from_start[10..], &later[..]);
    // Another seed, other readings.
    let other = readings(noisy(0.3, 43), 10.4, 1, 30);
    assert_ne!(from_start, other);
}
