//! SLCAN: codec properties, garbage tolerance of the host driver, the
//! simulated adapter, and the whole stack end to end over an in-memory pipe.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use meterbench_can::isotp::StMin;
use meterbench_can::pipe::{PipeEnd, duplex};
use meterbench_can::slcan::{
    Command, LineReader, Message, encode_command, encode_message, parse_command, parse_line,
};
use meterbench_can::{
    Bitrate, CanBus, CanFrame, CanId, IsoTpClient, IsoTpConfig, IsoTpServer, Nrc, SlcanBus,
    SlcanDevice, UdsError, UdsServer, read_data_by_identifier,
};
use proptest::prelude::*;

fn any_id() -> impl Strategy<Value = CanId> {
    prop_oneof![
        (0..=CanId::STANDARD_MAX).prop_map(|raw| CanId::standard(raw).unwrap()),
        (0..=CanId::EXTENDED_MAX).prop_map(|raw| CanId::extended(raw).unwrap()),
    ]
}

fn any_frame() -> impl Strategy<Value = CanFrame> {
    prop_oneof![
        (any_id(), proptest::collection::vec(any::<u8>(), 0..=8))
            .prop_map(|(id, data)| CanFrame::new(id, &data).unwrap()),
        (any_id(), 0..=8u8).prop_map(|(id, dlc)| CanFrame::remote(id, dlc).unwrap()),
    ]
}

fn any_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::Open),
        Just(Command::ListenOnly),
        Just(Command::Close),
        Just(Command::Version),
        Just(Command::SerialNumber),
        Just(Command::Status),
        any::<bool>().prop_map(Command::Timestamps),
        proptest::sample::select(Bitrate::ALL.to_vec()).prop_map(Command::SetBitrate),
        any_frame().prop_map(Command::Transmit),
    ]
}

fn any_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        Just(Message::Ok),
        Just(Message::Error),
        any::<bool>().prop_map(|extended| Message::Transmitted { extended }),
        (any_frame(), proptest::option::of(any::<u16>()))
            .prop_map(|(frame, timestamp)| Message::Frame { frame, timestamp }),
        "[0-9A-Za-z]{1,8}".prop_map(Message::Version),
        "[0-9A-Za-z]{1,8}".prop_map(Message::SerialNumber),
        any::<u8>().prop_map(Message::Status),
    ]
}

proptest! {
    #[test]
    fn commands_round_trip(command in any_command()) {
        prop_assert_eq!(parse_command(&encode_command(&command)), Ok(command));
    }

    #[test]
    fn messages_round_trip(message in any_message()) {
        prop_assert_eq!(parse_line(&encode_message(&message)), Ok(message));
    }

    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = parse_line(&bytes);
        let _ = parse_command(&bytes);
        let mut reader = LineReader::new();
        for byte in bytes {
            if let Some(meterbench_can::slcan::Token::Line(line)) = reader.push(byte) {
                let _ = parse_line(&line);
            }
        }
        prop_assert!(reader.pending() <= 64);
    }

    #[test]
    fn frames_survive_garbage_and_any_chunking(
        frames in proptest::collection::vec(any_frame(), 1..6),
        garbage in proptest::collection::vec(any::<u8>(), 0..80),
        chunk in 1usize..16,
    ) {
        // Garbage with no line end or BEL of its own, then a line end, then frames.
        let mut stream: Vec<u8> =
            garbage.into_iter().filter(|b| !matches!(b, b'\r' | 0x07)).collect();
        stream.push(b'\r');
        for frame in &frames {
            stream.extend(encode_message(&Message::Frame { frame: *frame, timestamp: None }));
        }
        let mut reader = LineReader::new();
        let mut parsed = Vec::new();
        for piece in stream.chunks(chunk) {
            for &byte in piece {
                if let Some(meterbench_can::slcan::Token::Line(line)) = reader.push(byte)
                    && let Ok(Message::Frame { frame, .. }) = parse_line(&line)
                {
                    parsed.push(frame);
                }
            }
        }
        // The garbage line may by chance parse as a frame; the real ones follow it.
        prop_assert!(parsed.ends_with(&frames));
    }
}

fn std_id(raw: u16) -> CanId {
    CanId::standard(raw).unwrap()
}

/// A scripted adapter on the far end of a pipe: answers the `C`, `S6`, `O`
/// handshake, then writes `after_open` and keeps the pipe open until told.
fn fake_adapter(
    mut end: PipeEnd,
    after_open: Vec<u8>,
    done: Arc<AtomicBool>,
) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 64];
        let mut answered = 0;
        loop {
            // Stop only on a read that finds nothing once told to: whatever
            // the host wrote before telling is read first.
            match end.read(&mut buf) {
                Ok(n) if n > 0 => seen.extend_from_slice(&buf[..n]),
                _ if done.load(Ordering::SeqCst) => break,
                _ => {}
            }
            let commands = seen.iter().filter(|&&b| b == b'\r').count();
            while answered < commands.min(3) {
                // Already closed: BEL for `C`, then OK for `S6` and `O`.
                end.write_all(if answered == 0 { b"\x07" } else { b"\r" })
                    .unwrap();
                answered += 1;
                if answered == 3 {
                    end.write_all(&after_open).unwrap();
                }
            }
        }
        seen
    })
}

#[test]
fn slcan_bus_opens_and_skips_garbage_and_partial_lines() {
    let (host, adapter) = duplex();
    let mut after_open = b"garbage\rt7E8".to_vec();
    after_open.extend_from_slice(b"3AABBCC\r\x07z\r");
    after_open.extend_from_slice(&[b'#'; 50]);
    after_open.extend_from_slice(b"\rT18DAF1102010200FF\r");
    let done = Arc::new(AtomicBool::new(false));
    let thread = fake_adapter(adapter, after_open, done.clone());

    let mut bus = SlcanBus::open(host, Bitrate::K500, "pipe").unwrap();
    let first = bus.recv(Duration::from_millis(500)).unwrap().unwrap();
    assert_eq!(
        first,
        CanFrame::new(std_id(0x7E8), &[0xAA, 0xBB, 0xCC]).unwrap()
    );
    let second = bus.recv(Duration::from_millis(500)).unwrap().unwrap();
    assert_eq!(
        second,
        CanFrame::new(CanId::extended(0x18DA_F110).unwrap(), &[0x01, 0x02]).unwrap(),
        "a trailing timestamp is accepted"
    );
    assert_eq!(bus.recv(Duration::from_millis(30)).unwrap(), None);
    bus.send(&CanFrame::new(std_id(0x7E0), &[0x02, 0x3E, 0x00]).unwrap())
        .unwrap();
    let stats = bus.stats();
    assert_eq!(stats.frames_received, 2);
    assert_eq!(stats.frames_sent, 1);
    assert_eq!(stats.transmit_acks, 1);
    assert_eq!(
        stats.error_replies, 1,
        "the BEL in the stream, not the one to the first C"
    );
    assert_eq!(stats.discarded_lines, 2);
    assert_eq!(stats.discarded_bytes, 8 + 51);
    assert_eq!(
        bus.describe(),
        "SLCAN adapter on pipe at 500 kbit/s (1 error reply, 2 discarded lines)"
    );
    done.store(true, Ordering::SeqCst);
    let seen = thread.join().unwrap();
    assert_eq!(seen, b"C\rS6\rO\rt7E03023E00\r");
}

#[test]
fn slcan_bus_reports_a_silent_or_refusing_adapter() {
    let (host, _adapter) = duplex();
    let start = Instant::now();
    let error = SlcanBus::open(host, Bitrate::K500, "/dev/ttyACM0").unwrap_err();
    assert!(start.elapsed() >= Duration::from_secs(1));
    assert_eq!(
        error.to_string(),
        "SLCAN adapter on /dev/ttyACM0: no answer to the command 'C' within 1 s; is an SLCAN \
         adapter on this port, and is nothing else using it?"
    );

    let (host, mut adapter) = duplex();
    let refuser = thread::spawn(move || {
        let mut buf = [0u8; 16];
        let mut replies = 0;
        while replies < 2 {
            if let Ok(n) = adapter.read(&mut buf) {
                for _ in buf[..n].iter().filter(|&&b| b == b'\r') {
                    adapter.write_all(b"\x07").unwrap();
                    replies += 1;
                }
            }
        }
        adapter
    });
    let error = SlcanBus::open(host, Bitrate::M1, "/dev/ttyUSB1").unwrap_err();
    assert_eq!(
        error.to_string(),
        "SLCAN adapter on /dev/ttyUSB1: refused the command 'S8' (answered BEL)"
    );
    drop(refuser.join().unwrap());
}

/// Send raw command bytes to a device through a pipe and collect its replies.
fn exchange(device: &mut SlcanDevice<PipeEnd>, host: &mut PipeEnd, bytes: &[u8]) -> Vec<u8> {
    host.write_all(bytes).unwrap();
    let _ = device.recv(Duration::from_millis(20)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 64];
    while let Ok(n) = host.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

#[test]
fn slcan_device_behaves_like_a_lawicel_adapter() {
    let (mut host, end) = duplex();
    let mut device = SlcanDevice::new(end).with_identity("1013", "A042");
    assert_eq!(
        exchange(&mut device, &mut host, b"O\r"),
        b"\x07",
        "no bitrate yet"
    );
    assert_eq!(
        exchange(&mut device, &mut host, b"t7E0111\r"),
        b"\x07",
        "closed"
    );
    assert_eq!(
        exchange(&mut device, &mut host, b"C\r"),
        b"\x07",
        "already closed"
    );
    assert_eq!(
        exchange(&mut device, &mut host, b"V\rN\r"),
        b"V1013\rNA042\r"
    );
    assert_eq!(exchange(&mut device, &mut host, b"S6\rZ1\rO\r"), b"\r\r\r");
    assert!(device.is_open());
    assert_eq!(device.bitrate(), Some(Bitrate::K500));
    assert_eq!(exchange(&mut device, &mut host, b"S4\r"), b"\x07", "open");
    assert_eq!(exchange(&mut device, &mut host, b"F\r"), b"F00\r");
    assert_eq!(exchange(&mut device, &mut host, b"nonsense\r"), b"\x07");

    host.write_all(b"t7E030302AB\rT18DA10F10\r").unwrap();
    let frame = device.recv(Duration::from_millis(100)).unwrap().unwrap();
    assert_eq!(
        frame,
        CanFrame::new(std_id(0x7E0), &[0x03, 0x02, 0xAB]).unwrap()
    );
    let frame = device.recv(Duration::from_millis(100)).unwrap().unwrap();
    assert_eq!(
        frame,
        CanFrame::new(CanId::extended(0x18DA_10F1).unwrap(), &[]).unwrap()
    );
    let mut acks = [0u8; 4];
    host.read_exact(&mut acks).unwrap();
    assert_eq!(&acks, b"z\rZ\r");

    device
        .send(&CanFrame::new(std_id(0x7E8), &[0x01]).unwrap())
        .unwrap();
    let mut line = [0u8; 12];
    host.read_exact(&mut line).unwrap();
    assert_eq!(&line[..7], b"t7E8101", "then a 4-digit timestamp");
    let Ok(Message::Frame {
        timestamp: Some(ms),
        ..
    }) = parse_line(&line)
    else {
        panic!("{line:?}");
    };
    assert!(ms < 60_000);
}

const PORTS: [(u16, u16); 2] = [(0x7E0, 0x7E8), (0x7E1, 0x7E9)];
const DID_VERSION: u16 = 0xF189;
const DID_SOFTWARE_HASH: u16 = 0xF1A0;
const DID_LRS_HASH: u16 = 0xF1A1;

fn identities() -> [(Vec<u8>, Vec<u8>, Vec<u8>); 2] {
    let port = |n: u8| {
        let version = format!("CPIM-{n}.4.2").into_bytes();
        let hash: Vec<u8> =
            format!("{:064x}", 0x1234_5678_9abc_def0_u128 * u128::from(n)).into_bytes();
        let lrs: Vec<u8> = (0..32).map(|i| i * 7 + n).collect();
        (version, hash, lrs)
    };
    [port(1), port(2)]
}

#[test]
fn end_to_end_host_reads_three_dids_of_two_ports_through_a_simulated_adapter() {
    let (host_end, device_end) = duplex();
    let stop = Arc::new(AtomicBool::new(false));
    let meter = {
        let stop = stop.clone();
        thread::spawn(move || {
            let servers: Vec<(CanId, UdsServer)> = PORTS
                .iter()
                .zip(identities())
                .map(|(&(request, _), (version, hash, lrs))| {
                    let uds = UdsServer::new()
                        .with_did(DID_VERSION, version)
                        .with_did(DID_SOFTWARE_HASH, hash)
                        .with_did(DID_LRS_HASH, lrs);
                    (std_id(request), uds)
                })
                .collect();
            let device = SlcanDevice::new(device_end);
            let mut server = IsoTpServer::new(
                device,
                IsoTpConfig {
                    block_size: 4,
                    ..IsoTpConfig::default()
                },
            );
            for (request, response) in PORTS {
                server = server.listen(std_id(request), std_id(response));
            }
            let mut handled = 0;
            while !stop.load(Ordering::SeqCst) {
                let served = server
                    .serve_once(Duration::from_millis(20), |request| {
                        let (_, uds) = servers
                            .iter()
                            .find(|(id, _)| *id == request.address.rx_id)?;
                        uds.handle(&request.data)
                    })
                    .unwrap();
                handled += usize::from(served);
            }
            handled
        })
    };

    let bus = SlcanBus::open(host_end, Bitrate::K500, "pipe").unwrap();
    let mut isotp = IsoTpClient::new(
        bus,
        IsoTpConfig {
            block_size: 2,
            st_min: StMin::from_raw(0xF1),
            ..IsoTpConfig::default()
        },
    );
    let timeout = Duration::from_secs(1);
    for (&(request, response), (version, hash, lrs)) in PORTS.iter().zip(identities()) {
        let (request, response) = (std_id(request), std_id(response));
        let read = |isotp: &mut IsoTpClient<_>, did| {
            read_data_by_identifier(isotp, request, response, did, timeout).unwrap()
        };
        assert_eq!(read(&mut isotp, DID_VERSION), version);
        assert_eq!(read(&mut isotp, DID_SOFTWARE_HASH), hash);
        assert_eq!(read(&mut isotp, DID_LRS_HASH), lrs);
    }
    let error = read_data_by_identifier(&mut isotp, std_id(0x7E0), std_id(0x7E8), 0xF190, timeout)
        .unwrap_err();
    assert!(matches!(
        error,
        UdsError::Negative {
            nrc: Nrc::RequestOutOfRange,
            ..
        }
    ));
    let error = read_data_by_identifier(
        &mut isotp,
        std_id(0x7E2),
        std_id(0x7EA),
        0xF189,
        Duration::from_millis(100),
    )
    .unwrap_err();
    assert!(
        error.to_string().starts_with(
            "no answer on CAN id 0x7EA to ReadDataByIdentifier 0xF189 sent on 0x7E2 within 100 ms \
         (SLCAN adapter on pipe at 500 kbit/s)"
        ),
        "{error}"
    );

    let bus = isotp.into_inner();
    let stats = bus.stats();
    assert_eq!(stats.discarded_lines, 0);
    assert_eq!(
        stats.error_replies, 0,
        "the BEL to the opening C is not an error"
    );
    assert_eq!(stats.transmit_acks, stats.frames_sent);
    drop(bus.close().unwrap());
    stop.store(true, Ordering::SeqCst);
    assert_eq!(meter.join().unwrap(), 7);
}
