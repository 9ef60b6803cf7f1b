//! `meterbench devices` against simulated instruments on the far end of
//! pseudo-terminals and a loopback socket: what a technician sees before writing a
//! station file.

use meterbench_instruments::transport::serial::{SerialPort as _, TTYPort};
use meterbench_sim::scpi::{SimScpiConfig, SimScpiInstrument};
use meterbench_sim::spawn_counter_device;
use std::sync::Arc;
use std::time::Duration;

mod common;
use common::{cpim1000, meterbench, sim_world as world};

fn devices(args: &[&str]) -> (i32, String, String) {
    meterbench(&[&["devices"], args].concat())
}

#[test]
fn instruments_on_ports_are_identified_with_station_lines() {
    let w = world();
    let mut config = SimScpiConfig::fluke_6105a();
    config.identity.serial_number = "SRC-4711".into();
    let scpi_pty = SimScpiInstrument::new(w.clone(), config.clone())
        .spawn_on_pty_device()
        .unwrap();
    config.identity.serial_number = "REF-0815".into();
    let scpi_tcp = SimScpiInstrument::new(w.clone(), config)
        .spawn_on_tcp()
        .unwrap();
    let (mut master, slave) = TTYPort::pair().unwrap();
    master.set_timeout(Duration::from_millis(50)).unwrap();
    let counter_path = slave.name().unwrap();
    let _counter = spawn_counter_device(w, 0, master, "CNT-0042", 8, Vec::new());
    // A port where nothing answers.
    let (_silent_master, silent_slave) = TTYPort::pair().unwrap();
    let silent_path = silent_slave.name().unwrap();

    let (code, out, err) = devices(&[
        "--probe",
        scpi_pty.path(),
        "--probe",
        &counter_path,
        "--probe",
        &silent_path,
        "--tcp",
        &scpi_tcp.addr().to_string(),
        "--timeout-ms",
        "300",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("answers *IDN?: FLUKE 6105A, serial SRC-4711"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "station: {{ driver: scpi, port: {}, serial_number: SRC-4711 }}",
            scpi_pty.path()
        )),
        "{out}"
    );
    assert!(out.contains("serial REF-0815"), "{out}");
    assert!(
        out.contains(&format!("port: tcp://{}", scpi_tcp.addr())),
        "{out}"
    );
    assert!(
        out.contains("answers hello: meterbench pulse counter, 8 channels"),
        "{out}"
    );
    assert!(out.contains("serial CNT-0042"), "{out}");
    assert!(out.contains("timebase 125 MHz"), "{out}");
    assert!(
        out.contains(&format!(
            "station (roles.counters): - {{ id: c1, driver: meterbench-counter, port: {counter_path}, serial_number: CNT-0042 }}"
        )),
        "{out}"
    );
    let silent = out
        .split(&format!("  {silent_path}\n"))
        .nth(1)
        .expect("the silent port is listed");
    assert!(
        silent.starts_with("      no known instrument answered:"),
        "{out}"
    );
    assert!(out.contains("CAN interfaces (SocketCAN)"), "{out}");

    // The same as JSON, for scripts.
    let (code, json, _) = devices(&["--probe", &counter_path, "--json", "--timeout-ms", "300"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let port = v["serial_ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == counter_path.as_str())
        .unwrap();
    assert_eq!(port["answer"]["kind"], "counter");
    assert_eq!(port["answer"]["identity"]["serial_number"], "CNT-0042");
    assert_eq!(port["answer"]["timebase_hz"], 125_000_000);
    drop(slave);
    drop(silent_slave);
}

#[test]
fn a_port_that_does_not_exist_is_named() {
    let (code, out, _) = devices(&["--probe", "/dev/meterbench-no-such-port"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("/dev/meterbench-no-such-port") && out.contains("cannot open"),
        "{out}"
    );
}

#[test]
fn list_only_sends_nothing() {
    let (code, out, _) = devices(&["--no-identify"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("Serial ports\n"), "{out}");
    assert!(!out.contains("answers"), "{out}");
}

#[test]
fn a_usb_can_adapter_is_identified_by_its_slcan_answers() {
    use meterbench_sim::{CpimSoftware, spawn_cpim_can_node};
    use std::sync::atomic::{AtomicBool, Ordering};
    let fixture = cpim1000();
    let (mut master, slave) = TTYPort::pair().unwrap();
    master.set_timeout(Duration::from_millis(10)).unwrap();
    let path = slave.name().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let software = CpimSoftware {
        software_version: "1.8.4".into(),
        software_hash: "5D2C8A17".into(),
        lrs_hash: Default::default(),
        silent: false,
    };
    let node = spawn_cpim_can_node(
        master,
        fixture.can.as_ref().unwrap(),
        software,
        None,
        stop.clone(),
    );
    let (code, out, err) = devices(&["--probe", &path, "--timeout-ms", "300"]);
    stop.store(true, Ordering::SeqCst);
    node.join().unwrap();
    drop(slave);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("answers SLCAN: USB-CAN adapter, version 1010, serial SIMCAN01"),
        "{out}"
    );
    assert!(
        out.contains(&format!("meterbench can identity {path}")),
        "{out}"
    );
}
