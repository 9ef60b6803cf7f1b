//! The real HMT330 driver against the simulated transmitter over a real pseudo-terminal:
//! it reads what the room model says with the transmitter's one decimal, the same as
//! the in-process sensor, identifies the transmitter by its serial number, and sees the
//! room drift as the world's clock advances.

use meterbench_instruments::climate::{Hmt330Identity, VaisalaHmt, hmt330_serial_settings};
use meterbench_instruments::transport::SerialTransport;
use meterbench_instruments::transport::serial::{SerialPort as _, TTYPort};
use meterbench_instruments::{AmbientReading, ClimateSensor, InstrumentIdentity};
use meterbench_procedure::Fixture;
use meterbench_procedure::station::Station;
use meterbench_sim::{AmbientModel, SharedWorld, SimClimate, World, spawn_hmt330_device};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(p)
}

fn world() -> SharedWorld {
    let station = Station::load(&repo("hw/stations/sim.yaml")).unwrap();
    let fixture = Fixture::load(&repo("fixtures/cpim1000.yaml")).unwrap();
    Arc::new(Mutex::new(World::for_station(&station, &fixture)))
}

const ROOM: AmbientModel = AmbientModel {
    temperature_c: 23.0,
    humidity_percent_rh: 45.0,
    drift_c_per_h: 1.5,
    drift_percent_rh_per_h: -3.0,
    noise_c: 0.02,
    noise_percent_rh: 0.2,
    seed: 11,
};

fn transmitter() -> Hmt330Identity {
    Hmt330Identity {
        model: "HMT330".into(),
        serial_number: "SIM-HMT-0001".into(),
        firmware: "5.16".into(),
    }
}

/// The model's value as the transmitter prints it: one decimal.
fn shown(v: f64) -> f64 {
    format!("{v:.1}").parse().unwrap()
}

fn as_shown(r: AmbientReading) -> AmbientReading {
    AmbientReading {
        temperature_c: shown(r.temperature_c),
        humidity_percent_rh: r.humidity_percent_rh.map(shown),
    }
}

#[test]
fn the_driver_reads_the_room_through_the_wire() {
    let world = world();
    let (master, slave) = TTYPort::pair().unwrap();
    let path = slave.name().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let device = spawn_hmt330_device(world.clone(), master, ROOM, transmitter(), stop.clone());
    let serial = SerialTransport::open(&hmt330_serial_settings(path, 4800)).unwrap();
    let mut hmt = VaisalaHmt::open(serial, Duration::from_secs(2));
    assert!(hmt.describe().starts_with("Vaisala HMT330 on serial /dev/"));
    let mut sim = SimClimate::new(
        world.clone(),
        ROOM,
        InstrumentIdentity {
            manufacturer: "meterbench simulated bench".into(),
            model: "HMT330".into(),
            serial_number: "SIM-HMT-0001".into(),
            firmware: "sim".into(),
        },
    );

    let id = hmt.identity().unwrap();
    assert_eq!(
        (id.manufacturer.as_str(), id.model.as_str()),
        ("Vaisala", "HMT330")
    );
    assert_eq!(
        (id.serial_number.as_str(), id.firmware.as_str()),
        ("SIM-HMT-0001", "5.16")
    );

    world.lock().unwrap().advance(5.5);
    let start = hmt.read().unwrap();
    assert_eq!(start, as_shown(ROOM.reading_at(5.5)));
    assert_eq!(
        start,
        sim.read().unwrap(),
        "the wire and the in-process sensor agree"
    );
    // Asked again within the same second: the same reading.
    assert_eq!(hmt.read().unwrap(), start);

    world.lock().unwrap().advance(3600.0);
    let later = hmt.read().unwrap();
    assert_eq!(later, sim.read().unwrap());
    // The drift, within the noise of both readings (4 σ) and their one-decimal rounding.
    let moved = later.temperature_c - start.temperature_c;
    assert!(
        (moved - ROOM.drift_c_per_h).abs() <= 2.0 * 4.0 * ROOM.noise_c + 0.1,
        "moved {moved} °C"
    );
    let moved_rh = later.humidity_percent_rh.unwrap() - start.humidity_percent_rh.unwrap();
    assert!(
        (moved_rh - ROOM.drift_percent_rh_per_h).abs() <= 2.0 * 4.0 * ROOM.noise_percent_rh + 0.1,
        "moved {moved_rh} %RH"
    );
    // A second identity after readings: the prompts in between do not confuse it.
    assert_eq!(hmt.identity().unwrap(), id);

    stop.store(true, Ordering::SeqCst);
    device.join().unwrap();
    drop(slave);
}

#[test]
fn the_device_ends_when_the_driver_end_closes() {
    let world = world();
    let (master, slave) = TTYPort::pair().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let device = spawn_hmt330_device(world, master, ROOM, transmitter(), stop);
    let mut hmt = VaisalaHmt::open(SerialTransport::from_tty(slave), Duration::from_secs(2));
    assert!(hmt.read().is_ok());
    drop(hmt);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !device.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(device.is_finished(), "the device outlived its cable");
    device.join().unwrap();
}
