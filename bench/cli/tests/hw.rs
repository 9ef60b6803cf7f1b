//! `meterbench hw info` against the simulated counter on a pseudo-terminal, and the
//! refusals of `hw flash` / `hw info` when nothing is attached (no probe or counter is
//! on a CI machine; flashing a real board is a manual check, see hw/pulse-counter/README.md).

mod common;

use common::{meterbench, sim_world};
use meterbench_instruments::transport::serial::{SerialPort as _, TTYPort};
use meterbench_sim::spawn_counter_device;
use std::time::Duration;

fn hw(args: &[&str]) -> (i32, String, String) {
    meterbench(&[&["hw"], args].concat())
}

#[test]
fn info_reads_the_counters_hello() {
    let world = sim_world();
    let (mut master, slave) = TTYPort::pair().unwrap();
    master.set_timeout(Duration::from_millis(50)).unwrap();
    let path = slave.name().unwrap();
    let _device = spawn_counter_device(world, 0, master, "CNT-7781", 8, Vec::new());
    let (code, out, err) = hw(&["info", &path]);
    assert_eq!(code, 0, "{out}\n{err}");
    for line in [
        format!("port            {path}"),
        "serial number   CNT-7781".to_string(),
        "protocol        v1".to_string(),
        "channels        8".to_string(),
        "timebase        125000000 Hz".to_string(),
    ] {
        assert!(out.contains(&line), "{line:?} missing from\n{out}");
    }
    drop(slave);
}

#[test]
fn info_refuses_a_port_without_a_counter() {
    // A pseudo-terminal nobody answers on.
    let (_master, slave) = TTYPort::pair().unwrap();
    let path = slave.name().unwrap();
    let (code, _, err) = hw(&["info", &path, "--timeout-ms", "200"]);
    assert_eq!(code, 2);
    assert!(
        err.contains(&path) && err.contains("no pulse counter hello"),
        "{err}"
    );
    let (code, _, err) = hw(&["info", "/dev/meterbench-no-such-port"]);
    assert_eq!(code, 2);
    assert!(err.contains("/dev/meterbench-no-such-port"), "{err}");
}

#[test]
fn flash_refuses_a_missing_or_foreign_image_before_touching_a_probe() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("pulse-counter");
    let (code, _, err) = hw(&["flash", "--elf", missing.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("build the firmware first"), "{err}");

    // This test's own binary: an ELF, but for the host, not the RP2040.
    let host_elf = std::env::current_exe().unwrap();
    let (code, _, err) = hw(&["flash", "--elf", host_elf.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("needs 32-bit little-endian ARM"), "{err}");
}

#[test]
fn flash_refuses_clearly_when_no_probe_is_attached() {
    // A minimal 32-bit little-endian ARM ELF header: accepted as an image, so the
    // command goes on to look for a probe.
    let dir = tempfile::tempdir().unwrap();
    let elf = dir.path().join("pulse-counter");
    let mut header = vec![0u8; 52];
    header[..4].copy_from_slice(b"\x7fELF");
    header[4] = 1; // ELFCLASS32
    header[5] = 1; // little endian
    header[6] = 1; // version
    header[18..20].copy_from_slice(&40u16.to_le_bytes()); // EM_ARM
    std::fs::write(&elf, header).unwrap();
    let (code, _, err) = hw(&["flash", "--elf", elf.to_str().unwrap()]);
    if cfg!(not(feature = "flash")) {
        // Built without probe-rs: the image was accepted, then the user is told how to
        // get a binary that flashes.
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("built without flashing support") && err.contains("--features flash"),
            "{err}"
        );
        return;
    }
    if err.contains("debug probes attached") || err.contains("attaching") {
        eprintln!("a debug probe is attached to this machine; the refusal is not tested here");
        return;
    }
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no debug probe found"), "{err}");
}

/// On a bench with a counter board and a debug probe attached: build the firmware
/// (`bash hw/pulse-counter/build.sh`), then
/// `cargo test -p meterbench --features flash --test hw -- --ignored`.
#[test]
#[ignore = "needs a debug probe and an RP2040 counter board"]
fn flash_and_identify_a_real_counter() {
    let (code, out, err) = hw(&["flash"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("flashed and verified"), "{out}");
    // USB enumeration after the reset takes a moment.
    std::thread::sleep(Duration::from_secs(3));
    let (code, out, err) = hw(&["info"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("protocol        v1"), "{out}");
}
