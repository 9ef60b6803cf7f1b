//! `meterbench can identity` against the simulated CPIM1000's CAN node behind a
//! simulated SLCAN adapter on a pseudo-terminal.

use meterbench_instruments::transport::serial::{SerialPort as _, TTYPort};
use meterbench_sim::{CpimSoftware, spawn_cpim_can_node};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

mod common;
use common::{cpim1000, meterbench};

/// The identity the fixture certifies, with `edit` applied.
fn software(edit: impl FnOnce(&mut CpimSoftware)) -> CpimSoftware {
    let mut s = CpimSoftware {
        software_version: "1.8.4".into(),
        software_hash: "5D2C8A17".into(),
        lrs_hash: BTreeMap::from([
            ("left".to_string(), "A3F09C4E".to_string()),
            ("right".to_string(), "A3F09C4E".to_string()),
        ]),
        silent: false,
    };
    edit(&mut s);
    s
}

fn identity_against(sw: CpimSoftware) -> (i32, String, String) {
    let fixture = cpim1000();
    let (mut master, slave) = TTYPort::pair().unwrap();
    master.set_timeout(Duration::from_millis(10)).unwrap();
    let path = slave.name().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let node = spawn_cpim_can_node(
        master,
        fixture.can.as_ref().unwrap(),
        sw,
        None,
        stop.clone(),
    );
    let result = meterbench(&["can", "identity", &path, "--timeout-ms", "300"]);
    stop.store(true, Ordering::SeqCst);
    node.join().unwrap();
    drop(slave);
    result
}

#[test]
fn a_certified_identity_passes() {
    let (code, out, err) = identity_against(software(|_| {}));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("LRS hash left      A3F09C4E"), "{out}");
    assert!(out.contains("IDENTITY: certified"), "{out}");
    assert!(err.contains("assumed"), "the assumed ids are said: {err}");
}

#[test]
fn a_wrong_lrs_hash_on_one_port_fails_naming_the_port_and_both_hashes() {
    let (code, out, err) = identity_against(software(|s| {
        s.lrs_hash.insert("right".into(), "A3F09C4F".into());
    }));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains(
            "IDENTITY: FAIL: LRS hash of port right is A3F09C4F, the certified one is A3F09C4E"
        ),
        "{out}"
    );
    assert!(!out.contains("port left is"), "{out}");
}

#[test]
fn a_silent_meter_is_an_error_naming_the_ids_it_was_asked_on() {
    let (code, out, err) = identity_against(software(|s| s.silent = true));
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.contains("no answer on CAN id"), "{err}");
    assert!(err.contains("ReadDataByIdentifier 0xF189"), "{err}");
}
