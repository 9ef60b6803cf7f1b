//! Byte layouts against hand-written expected bytes, and one test per error.

use meterbench_counter_protocol::{
    CRC, DecodeError, DeviceMessage, Edge, EncodeError, FrameDecoder, Heartbeat, Hello,
    HostMessage, MAX_FRAME_LEN, Message, Pong, encode, encode_frame, nak,
};

fn payload<M: Message>(msg: &M) -> Vec<u8> {
    let mut out = [0u8; 64];
    let n = msg.to_payload(&mut out);
    out[..n].to_vec()
}

fn frame<M: Message>(msg: &M) -> Vec<u8> {
    let mut out = [0u8; MAX_FRAME_LEN];
    let n = encode(msg, &mut out).unwrap();
    out[..n].to_vec()
}

fn decode_all<M: Message>(bytes: &[u8]) -> Vec<Result<M, DecodeError>> {
    let mut d = FrameDecoder::<M>::new();
    bytes.iter().filter_map(|&b| d.push(b)).collect()
}

/// Layout check plus a decode of the exact bytes, so both directions agree
/// with the hand-written table.
fn check<M: Message + PartialEq + std::fmt::Debug>(msg: M, expected: &[u8]) {
    assert_eq!(payload(&msg), expected, "payload of {msg:?}");
    assert_eq!(M::from_payload(expected), Ok(msg));
}

#[test]
fn crc_is_crc32_iso_hdlc() {
    assert_eq!(CRC.checksum(b"123456789"), 0xCBF4_3926);
}

#[test]
fn hello_layout() {
    let mut serial = [0u8; 16];
    serial[..6].copy_from_slice(b"PC0042");
    let hello = Hello {
        protocol_version: 1,
        firmware_version: (1, 2, 3),
        serial_number: serial,
        timebase_hz: 125_000_000,
        channel_count: 24,
        reference_input: true,
        external_clock: false,
    };
    #[rustfmt::skip]
    let expected = [
        0x01, 0x81,
        0x01,
        0x01, 0x02, 0x03,
        b'P', b'C', b'0', b'0', b'4', b'2', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0x40, 0x59, 0x73, 0x07, // 125_000_000
        24,
        0b01,
    ];
    check(DeviceMessage::Hello(hello), &expected);
    assert_eq!(hello.serial_number_str(), Some("PC0042"));
    // Undefined capability bits are ignored.
    let mut future = expected;
    future[27] = 0xFE;
    let Ok(DeviceMessage::Hello(h)) = DeviceMessage::from_payload(&future) else {
        panic!("hello with extra capability bits");
    };
    assert!(!h.reference_input && h.external_clock);
}

#[test]
fn edge_layout() {
    let edge = Edge {
        sequence: 0x0403_0201,
        channel: 7,
        timestamp_ticks: 0x0F0E_0D0C_0B0A_0908,
        width_ticks: 0x1312_1110,
        ref_count: 0x1B1A_1918_1716_1514,
        flags: 0x02,
    };
    #[rustfmt::skip]
    let expected = [
        0x01, 0x82,
        0x01, 0x02, 0x03, 0x04,
        0x07,
        0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F,
        0x10, 0x11, 0x12, 0x13,
        0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1B,
        0x02,
    ];
    check(DeviceMessage::Edge(edge), &expected);
}

#[test]
fn heartbeat_layout() {
    let hb = Heartbeat {
        sequence: 0x0000_1234,
        timestamp_ticks: 0x0000_0001_0000_0002,
        ref_count: 0x0000_0000_0000_0300,
        dropped_events: 5,
        flags: 0x03,
    };
    #[rustfmt::skip]
    let expected = [
        0x01, 0x83,
        0x34, 0x12, 0x00, 0x00,
        0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x05, 0x00, 0x00, 0x00,
        0x03,
    ];
    check(DeviceMessage::Heartbeat(hb), &expected);
}

#[test]
fn pong_layout() {
    let pong = Pong {
        token: 0xDEAD_BEEF,
        timestamp_ticks: 1_000,
        last_sequence: 42,
    };
    #[rustfmt::skip]
    let expected = [
        0x01, 0x84,
        0xEF, 0xBE, 0xAD, 0xDE,
        0xE8, 0x03, 0, 0, 0, 0, 0, 0,
        42, 0, 0, 0,
    ];
    check(DeviceMessage::Pong(pong), &expected);
}

#[test]
fn ack_nak_layout() {
    check(DeviceMessage::Ack { message_id: 0x03 }, &[0x01, 0x85, 0x03]);
    check(
        DeviceMessage::Nak {
            message_id: 0x02,
            code: nak::BUSY,
        },
        &[0x01, 0x86, 0x02, 0x07],
    );
}

#[test]
fn host_layouts() {
    use meterbench_counter_protocol::Edges;
    check(HostMessage::GetHello, &[0x01, 0x01]);
    check(
        HostMessage::ConfigureChannel {
            channel: 3,
            edges: Edges::Both,
            glitch_filter_ticks: 12_500,
        },
        &[0x01, 0x02, 0x03, 0x03, 0xD4, 0x30, 0x00, 0x00],
    );
    check(
        HostMessage::Arm {
            channel_mask: 0x8000_0005,
        },
        &[0x01, 0x03, 0x05, 0x00, 0x00, 0x80],
    );
    check(HostMessage::Disarm, &[0x01, 0x04]);
    check(
        HostMessage::Ping { token: 0x1234_5678 },
        &[0x01, 0x05, 0x78, 0x56, 0x34, 0x12],
    );
}

/// The example frame of PROTOCOL.md, byte for byte.
#[test]
fn documented_example_frames() {
    let ping = frame(&HostMessage::Ping { token: 0x1234_5678 });
    assert_eq!(
        ping,
        [
            0x0B, 0x01, 0x05, 0x78, 0x56, 0x34, 0x12, 0xB8, 0xA5, 0x57, 0x3C, 0x00
        ],
        "{ping:02X?}"
    );
    let arm = frame(&HostMessage::Arm { channel_mask: 0x3 });
    assert_eq!(
        arm,
        [
            0x04, 0x01, 0x03, 0x03, 0x01, 0x01, 0x05, 0x38, 0xA7, 0x8B, 0x2F, 0x00
        ],
        "{arm:02X?}"
    );
}

/// The example Edge frame of PROTOCOL.md: 1 s after Arm on a 125 MHz
/// timebase, a 10 ms wide pulse.
#[test]
fn documented_example_edge_frame() {
    let edge = frame(&DeviceMessage::Edge(Edge {
        sequence: 1,
        channel: 0,
        timestamp_ticks: 125_000_000,
        width_ticks: 1_250_000,
        ref_count: 50,
        flags: 0,
    }));
    #[rustfmt::skip]
    let expected = [
        0x04, 0x01, 0x82, 0x01, 0x01, 0x01, 0x01, 0x05, 0x40, 0x59, 0x73, 0x07,
        0x01, 0x01, 0x01, 0x04, 0xD0, 0x12, 0x13, 0x02, 0x32, 0x01, 0x01, 0x01,
        0x01, 0x01, 0x01, 0x01, 0x05, 0xDC, 0xE7, 0x33, 0xB8, 0x00,
    ];
    assert_eq!(edge, expected, "{edge:02X?}");
}

#[test]
fn every_frame_ends_with_its_only_zero() {
    let f = frame(&DeviceMessage::Edge(Edge {
        sequence: 0,
        channel: 0,
        timestamp_ticks: 0,
        width_ticks: 0,
        ref_count: 0,
        flags: 0,
    }));
    assert_eq!(f.len(), 28 + 4 + 2);
    assert_eq!(f.iter().position(|&b| b == 0), Some(f.len() - 1));
}

#[test]
fn encode_reports_small_buffer() {
    let mut out = [0u8; 8];
    assert_eq!(
        encode(&HostMessage::Ping { token: 1 }, &mut out),
        Err(EncodeError::BufferTooSmall { needed: 12 })
    );
    assert_eq!(
        encode_frame(&[1u8; 65], &mut [0u8; 128]),
        Err(EncodeError::PayloadTooLong { len: 65 })
    );
}

fn raw_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = [0u8; MAX_FRAME_LEN];
    let n = encode_frame(payload, &mut out).unwrap();
    out[..n].to_vec()
}

#[test]
fn each_error_has_its_variant() {
    let ping = frame(&HostMessage::Ping { token: 9 });
    let cases: Vec<(Vec<u8>, DecodeError)> = vec![
        // COBS block cut by the delimiter.
        (vec![0x05, 0x01, 0x00], DecodeError::Framing),
        // Too few bytes for version, id and CRC.
        (raw_frame(&[0x01]), DecodeError::TooShort { len: 5 }),
        (
            vec![0x03, 0x01, 0x05, 0x00],
            DecodeError::TooShort { len: 2 },
        ),
        (
            {
                let mut f = ping.clone();
                f[3] ^= 0x01;
                f
            },
            DecodeError::BadCrc {
                received: u32::from_le_bytes([0xFC, 0xB2, 0x76, 0xCF]),
                computed: CRC.checksum(&[0x01, 0x05, 0x08, 0x00, 0x00, 0x00]),
            },
        ),
        (
            raw_frame(&[0x02, 0x81]),
            DecodeError::UnsupportedVersion {
                version: 2,
                message_id: 0x81,
            },
        ),
        (
            raw_frame(&[0x01, 0x7F]),
            DecodeError::UnknownMessage { message_id: 0x7F },
        ),
        (
            raw_frame(&[0x01, 0x05, 1, 2, 3]),
            DecodeError::BadLength {
                message_id: 0x05,
                len: 5,
            },
        ),
        (
            raw_frame(&[0x01, 0x05, 1, 2, 3, 4, 5]),
            DecodeError::BadLength {
                message_id: 0x05,
                len: 7,
            },
        ),
        (
            raw_frame(&[0x01, 0x02, 0, 4, 0, 0, 0, 0]),
            DecodeError::InvalidField { message_id: 0x02 },
        ),
        (
            [vec![0x01; 100], vec![0x00]].concat(),
            DecodeError::Oversize { capacity: 68 },
        ),
    ];
    for (bytes, err) in cases {
        // Each bad frame is followed by a good one: it must still come out.
        let stream = [bytes.clone(), ping.clone()].concat();
        assert_eq!(
            decode_all::<HostMessage>(&stream),
            [Err(err), Ok(HostMessage::Ping { token: 9 })],
            "{bytes:02X?}"
        );
    }
}

#[test]
fn wrong_direction_is_unknown_message() {
    let f = frame(&HostMessage::GetHello);
    assert_eq!(
        decode_all::<DeviceMessage>(&f),
        [Err(DecodeError::UnknownMessage { message_id: 0x01 })]
    );
}

#[test]
fn oversize_with_small_capacity() {
    // Firmware may choose a smaller buffer: a Hello (28 + 4 bytes) does not fit in 16.
    let mut d = FrameDecoder::<DeviceMessage, 16>::new();
    let f = frame(&DeviceMessage::Ack { message_id: 1 });
    let big = frame(&DeviceMessage::Hello(Hello {
        protocol_version: 1,
        firmware_version: (0, 0, 0),
        serial_number: [b'x'; 16],
        timebase_hz: 1,
        channel_count: 1,
        reference_input: false,
        external_clock: false,
    }));
    let out: Vec<_> = [big, f]
        .concat()
        .iter()
        .filter_map(|&b| d.push(b))
        .collect();
    assert_eq!(
        out,
        [
            Err(DecodeError::Oversize { capacity: 16 }),
            Ok(DeviceMessage::Ack { message_id: 1 })
        ]
    );
}

#[test]
fn repeated_delimiters_are_ignored() {
    let f = frame(&HostMessage::Disarm);
    let stream = [vec![0, 0, 0], f.clone(), vec![0, 0], f].concat();
    assert_eq!(
        decode_all::<HostMessage>(&stream),
        [Ok(HostMessage::Disarm), Ok(HostMessage::Disarm)]
    );
}

#[test]
fn push_payload_exposes_checked_payload() {
    let f = frame(&HostMessage::Arm { channel_mask: 1 });
    let mut d = FrameDecoder::<HostMessage>::new();
    let mut got = None;
    for &b in &f {
        if let Some(r) = d.push_payload(b) {
            got = Some(r.map(<[u8]>::to_vec));
        }
    }
    assert_eq!(got, Some(Ok(vec![0x01, 0x03, 1, 0, 0, 0])));
}

#[test]
fn nak_for_decode_errors() {
    assert_eq!(
        DeviceMessage::nak_for(&DecodeError::Framing),
        DeviceMessage::Nak {
            message_id: 0,
            code: nak::BAD_FRAME
        }
    );
    assert_eq!(
        DeviceMessage::nak_for(&DecodeError::UnknownMessage { message_id: 0x42 }),
        DeviceMessage::Nak {
            message_id: 0x42,
            code: nak::UNKNOWN_MESSAGE
        }
    );
}
