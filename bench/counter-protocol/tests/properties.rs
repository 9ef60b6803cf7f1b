//! Property tests: round trips, resynchronisation after garbage, bit flips,
//! truncation, and "every delimited run yields exactly one result".

use meterbench_counter_protocol::{
    CRC, CRC_LEN, DecodeError, DeviceMessage, Edge, Edges, FrameDecoder, Heartbeat, Hello,
    HostMessage, MAX_FRAME_LEN, Message, Pong, encode,
};
use proptest::prelude::*;

fn edges() -> impl Strategy<Value = Edges> {
    prop_oneof![Just(Edges::Rising), Just(Edges::Falling), Just(Edges::Both)]
}

fn host_message() -> impl Strategy<Value = HostMessage> {
    prop_oneof![
        Just(HostMessage::GetHello),
        (any::<u8>(), edges(), any::<u32>()).prop_map(|(channel, edges, glitch_filter_ticks)| {
            HostMessage::ConfigureChannel {
                channel,
                edges,
                glitch_filter_ticks,
            }
        }),
        any::<u32>().prop_map(|channel_mask| HostMessage::Arm { channel_mask }),
        Just(HostMessage::Disarm),
        any::<u32>().prop_map(|token| HostMessage::Ping { token }),
    ]
}

fn device_message() -> impl Strategy<Value = DeviceMessage> {
    prop_oneof![
        (
            any::<u8>(),
            any::<(u8, u8, u8)>(),
            any::<[u8; 16]>(),
            any::<u32>(),
            any::<u8>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(pv, fw, serial, hz, count, reference, external)| {
                DeviceMessage::Hello(Hello {
                    protocol_version: pv,
                    firmware_version: fw,
                    serial_number: serial,
                    timebase_hz: hz,
                    channel_count: count,
                    reference_input: reference,
                    external_clock: external,
                })
            }),
        (
            any::<u32>(),
            any::<u8>(),
            any::<u64>(),
            any::<u32>(),
            any::<u64>(),
            any::<u8>()
        )
            .prop_map(
                |(sequence, channel, timestamp_ticks, width_ticks, ref_count, flags)| {
                    DeviceMessage::Edge(Edge {
                        sequence,
                        channel,
                        timestamp_ticks,
                        width_ticks,
                        ref_count,
                        flags,
                    })
                }
            ),
        (
            any::<u32>(),
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
            any::<u8>()
        )
            .prop_map(
                |(sequence, timestamp_ticks, ref_count, dropped_events, flags)| {
                    DeviceMessage::Heartbeat(Heartbeat {
                        sequence,
                        timestamp_ticks,
                        ref_count,
                        dropped_events,
                        flags,
                    })
                }
            ),
        (any::<u32>(), any::<u64>(), any::<u32>()).prop_map(
            |(token, timestamp_ticks, last_sequence)| DeviceMessage::Pong(Pong {
                token,
                timestamp_ticks,
                last_sequence,
            })
        ),
        any::<u8>().prop_map(|message_id| DeviceMessage::Ack { message_id }),
        (any::<u8>(), any::<u8>())
            .prop_map(|(message_id, code)| DeviceMessage::Nak { message_id, code }),
    ]
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

/// Independent oracle (not the decoder under test): would this zero-free run
/// pass COBS and CRC as a frame of its own?
fn run_passes_crc(run: &[u8]) -> bool {
    let mut buf = [0u8; 512];
    match cobs::decode(run, &mut buf) {
        Ok(report) => {
            let decoded = &buf[..report.frame_size()];
            decoded.len() >= 2 + CRC_LEN && {
                let (payload, crc) = decoded.split_at(decoded.len() - CRC_LEN);
                CRC.checksum(payload).to_le_bytes() == crc
            }
        }
        Err(_) => false,
    }
}

/// Line noise that is not, by a 2^-32 accident, a valid frame itself.
fn garbage_run() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(1u8..=255, 1..100)
        .prop_filter("accidentally a valid frame", |run| !run_passes_crc(run))
}

proptest! {
    #[test]
    fn host_messages_round_trip(msg in host_message()) {
        prop_assert_eq!(decode_all::<HostMessage>(&frame(&msg)), vec![Ok(msg)]);
    }

    #[test]
    fn device_messages_round_trip(msg in device_message()) {
        prop_assert_eq!(decode_all::<DeviceMessage>(&frame(&msg)), vec![Ok(msg)]);
    }

    /// Garbage runs (closed by a delimiter, as the sender's session-start 0x00
    /// or the delimiter of a half-seen frame closes them) before and between
    /// frames: each yields exactly one error and every frame still comes out,
    /// in order.
    #[test]
    fn resync_after_zero_free_garbage(
        items in prop::collection::vec((prop::option::of(garbage_run()), device_message()), 1..20),
        tail in prop::option::of(garbage_run()),
    ) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (garbage, msg) in &items {
            if let Some(g) = garbage {
                stream.extend_from_slice(g);
                stream.push(0);
                expected.push(None);
            }
            stream.extend_from_slice(&frame(msg));
            expected.push(Some(*msg));
        }
        if let Some(g) = &tail {
            stream.extend_from_slice(g);
            stream.push(0);
            expected.push(None);
        }
        let got = decode_all::<DeviceMessage>(&stream);
        prop_assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(&expected) {
            match e {
                Some(msg) => prop_assert_eq!(g, &Ok(*msg)),
                None => prop_assert!(g.is_err(), "garbage decoded as {:?}", g),
            }
        }
    }

    /// Arbitrary bytes, zeros included, before and between frames: every sent
    /// message still comes out, in order (unfiltered garbage may, with
    /// probability ~2^-32 per run, hold a valid frame, so extra messages are
    /// tolerated here; the test above is the exact one).
    #[test]
    fn resync_after_arbitrary_garbage(
        items in prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 0..100), host_message()),
            1..20,
        ),
    ) {
        let mut stream = Vec::new();
        for (garbage, msg) in &items {
            stream.extend_from_slice(garbage);
            stream.push(0);
            stream.extend_from_slice(&frame(msg));
        }
        let got: Vec<HostMessage> =
            decode_all::<HostMessage>(&stream).into_iter().filter_map(Result::ok).collect();
        let mut rest = got.iter();
        for (_, msg) in &items {
            prop_assert!(rest.any(|g| g == msg), "{:?} missing or out of order", msg);
        }
    }

    /// Nothing is dropped silently and nothing panics: every non-empty run of
    /// bytes closed by a 0x00 yields exactly one result, whatever the bytes.
    #[test]
    fn every_delimited_run_yields_one_result(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let runs = bytes
            .split(|&b| b == 0)
            .rev()
            .skip(1) // the bytes after the last 0x00 are not closed yet
            .filter(|run| !run.is_empty())
            .count();
        prop_assert_eq!(decode_all::<DeviceMessage>(&bytes).len(), runs);
        prop_assert_eq!(decode_all::<HostMessage>(&bytes).len(), runs);
    }

    /// Any single-bit flip anywhere in a frame, the delimiter included, gives
    /// errors only, and the decoder recovers for the next frame.
    #[test]
    fn single_bit_flips_are_errors(msg in device_message()) {
        let good = frame(&msg);
        let next = DeviceMessage::Ack { message_id: 0x42 };
        for bit in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            // The extra 0x00 closes the frame when the flip hit its delimiter.
            let stream = [bad, vec![0], frame(&next)].concat();
            let got = decode_all::<DeviceMessage>(&stream);
            let (last, before) = got.split_last().unwrap();
            prop_assert_eq!(last, &Ok(next));
            prop_assert!(!before.is_empty(), "bit {} flip gave no error", bit);
            prop_assert!(before.iter().all(Result::is_err), "bit {}: {:?}", bit, before);
        }
    }

    /// A frame cut anywhere and closed by a delimiter is one error; cut and not
    /// closed, it spoils only the frame it runs into.
    #[test]
    fn truncated_frames_are_errors(msg in device_message(), next in device_message()) {
        let good = frame(&msg);
        for cut in 1..good.len() - 1 {
            let closed = [&good[..cut], &[0], &frame(&next)[..]].concat();
            let got = decode_all::<DeviceMessage>(&closed);
            prop_assert_eq!(got.len(), 2);
            prop_assert!(got[0].is_err(), "cut at {}: {:?}", cut, got[0]);
            prop_assert_eq!(got[1], Ok(next));

            let unclosed = [&good[..cut], &frame(&next)[..], &frame(&next)[..]].concat();
            let got = decode_all::<DeviceMessage>(&unclosed);
            prop_assert_eq!(got.len(), 2);
            prop_assert!(got[0].is_err(), "cut at {}: {:?}", cut, got[0]);
            prop_assert_eq!(got[1], Ok(next));
        }
    }
}
