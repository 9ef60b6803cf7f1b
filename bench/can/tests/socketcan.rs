//! SocketCAN on a virtual interface, when the machine has one.
#![cfg(target_os = "linux")]

use std::path::Path;
use std::time::Duration;

use meterbench_can::{CanBus, CanFrame, CanId, SocketCanBus};

#[test]
fn frames_cross_vcan0() {
    if !Path::new("/sys/class/net/vcan0").exists() {
        println!(
            "skipped: no vcan0 interface (sudo modprobe vcan && sudo ip link add vcan0 type vcan \
             && sudo ip link set vcan0 up)"
        );
        return;
    }
    let mut a = SocketCanBus::open("vcan0").unwrap();
    let mut b = SocketCanBus::open("vcan0").unwrap();
    assert_eq!(a.describe(), "SocketCAN interface vcan0");
    let frames = [
        CanFrame::new(CanId::standard(0x7E0).unwrap(), &[0x03, 0x22, 0xF1, 0x89]).unwrap(),
        CanFrame::new(
            CanId::extended(0x18DA_F110).unwrap(),
            &[1, 2, 3, 4, 5, 6, 7, 8],
        )
        .unwrap(),
        CanFrame::remote(CanId::standard(0x123).unwrap(), 2).unwrap(),
    ];
    for frame in &frames {
        a.send(frame).unwrap();
        assert_eq!(
            b.recv(Duration::from_secs(1)).unwrap().as_ref(),
            Some(frame)
        );
    }
    assert_eq!(b.recv(Duration::from_millis(50)).unwrap(), None);
}

#[test]
fn opening_a_missing_interface_says_what_to_check() {
    let error = SocketCanBus::open("nocan7").unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("SocketCAN interface nocan7: cannot open it (is it there and up?"),
        "{error}"
    );
}
