//! From a PIO capture word to the host decoder, through exactly the functions
//! the firmware uses: `decode_word` → `extend_near` → `Engine` (pairing, queue,
//! ordering) → `encode_message` → `PacketPacker` → bytes on the wire →
//! `FrameDecoder<DeviceMessage>` (the host driver's decoder) → the same Edge.

use meterbench_counter_protocol::{
    DeviceMessage, Edge, Edges, FrameDecoder, HostMessage, MAX_FRAME_LEN, SequenceTracker,
    edge_flags, encode,
};
use pulse_counter_timing::capture::{Capture, Polarity, WORD_TICK_BITS, decode_word, encode_word};
use pulse_counter_timing::clock::{TickClock, ticks_from_ms};
use pulse_counter_timing::encode::{PacketPacker, encode_message};
use pulse_counter_timing::engine::{Action, DeviceInfo, Engine};
use pulse_counter_timing::extend::{WrapExtender, extend_near};
use pulse_counter_timing::pairing::RawEdge;

const INFO: DeviceInfo = DeviceInfo {
    firmware_version: (0, 1, 0),
    serial_number: *b"E6614103E7A1B22F",
    reference_input: true,
    external_clock_capable: false,
};

/// The firmware's USB writer: every message through `encode_message`, packed
/// into 64-byte packets; returns the packets as the host would receive them.
fn send_all(engine: &mut Engine<256>, packer: &mut PacketPacker, wire: &mut Vec<Vec<u8>>) {
    let mut frame = [0u8; MAX_FRAME_LEN];
    while let Some(msg) = engine.next_message(|| (0, 0)) {
        let n = encode_message(&msg, &mut frame);
        let mut rest = &frame[..n];
        while !rest.is_empty() {
            let k = packer.fill(rest);
            rest = &rest[k..];
            if let Some(p) = packer.full_packet() {
                wire.push(p.to_vec());
            }
        }
    }
    if let Some(p) = packer.flush() {
        wire.push(p.to_vec());
    }
}

fn host_decode(wire: &[Vec<u8>]) -> Vec<DeviceMessage> {
    let mut dec = FrameDecoder::<DeviceMessage>::new();
    wire.iter()
        .flatten()
        .filter_map(|&b| dec.push(b))
        .map(|r| r.expect("every frame decodes"))
        .collect()
}

#[test]
fn captured_pulses_arrive_as_identical_edges() {
    let mut engine = Engine::<256>::new(INFO, false);
    for ch in 0..8u8 {
        engine.handle(
            Ok(HostMessage::ConfigureChannel {
                channel: ch,
                edges: Edges::Both,
                glitch_filter_ticks: 0,
            }),
            0,
        );
    }
    let Action::Arm { channel_mask, .. } =
        engine.handle(Ok(HostMessage::Arm { channel_mask: 0xFF }), 0)
    else {
        panic!("arm");
    };
    engine.armed(channel_mask);

    // Eight CPIM1000 ports at 32 A three-phase: 122.7 Hz (8.15 ms period), 2 ms pulses, staggered,
    // for 40 s so the 31-bit PIO count wraps (every 34.4 s) and the 16-bit
    // reference counter (1 MHz) wraps hundreds of times.
    let period = 62_500_000.0 / 122.7;
    let width = ticks_from_ms(2);
    let clock = TickClock::new();
    let mut ref_ext = WrapExtender::new(16);
    ref_ext.reset(0);
    let mut expected: Vec<Edge> = Vec::new();
    let mut events: Vec<(u64, u8, Polarity)> = Vec::new();
    for ch in 0..8u8 {
        let mut t = 1_000.0 + f64::from(ch) * 77_777.0;
        while t < 40.0 * 62_500_000.0 {
            let start = t as u64;
            events.push((start, ch, Polarity::Rising));
            events.push((start + width, ch, Polarity::Falling));
            t += period;
        }
    }
    events.sort();
    let mut packer = PacketPacker::new();
    let mut wire = vec![vec![0u8]]; // the session's lone delimiter
    for (k, &(ticks, ch, polarity)) in events.iter().enumerate() {
        // What the hardware would give: a PIO word with 31 bits of X, the 16-bit
        // PWM count of a 1 MHz reference, and the system timer a few µs later.
        let word = encode_word(Capture {
            polarity,
            ticks: (ticks & ((1 << WORD_TICK_BITS) - 1)) as u32,
        });
        let ref_true = ticks * 1_000_000 / 62_500_000;
        let cap = decode_word(word);
        let now_us = ticks * 2 / 125 + 3;
        let ticks64 = extend_near(cap.ticks, WORD_TICK_BITS, clock.ticks_at(now_us));
        assert_eq!(ticks64, ticks);
        let ref64 = ref_ext.update((ref_true & 0xFFFF) as u32);
        assert_eq!(ref64, ref_true);
        engine.edge(&RawEdge {
            channel: ch,
            polarity: cap.polarity,
            ticks: ticks64,
            ref_count: ref64,
        });
        if polarity == Polarity::Falling {
            expected.push(Edge {
                sequence: expected.len() as u32 + 1,
                channel: ch,
                timestamp_ticks: ticks - width,
                width_ticks: width as u32,
                ref_count: (ticks - width) * 1_000_000 / 62_500_000,
                flags: 0,
            });
        }
        if k % 37 == 0 {
            send_all(&mut engine, &mut packer, &mut wire);
        }
    }
    send_all(&mut engine, &mut packer, &mut wire);

    let msgs = host_decode(&wire);
    let mut tracker = SequenceTracker::new();
    let mut edges = Vec::new();
    for m in &msgs {
        if matches!(m, DeviceMessage::Ack { .. }) {
            tracker.reset();
            continue;
        }
        tracker.observe(m).expect("no gap, no drop");
        if let DeviceMessage::Edge(e) = m {
            edges.push(*e);
        }
    }
    assert!(edges.len() > 8 * 4_800, "{} edges", edges.len());
    assert_eq!(edges, expected);
    assert!(wire.iter().all(|p| p.len() <= 64));
}

#[test]
fn the_firmware_path_matches_the_protocol_reference_encoding() {
    // PROTOCOL.md §11 example Edge, through the firmware's encoder.
    let edge = Edge {
        sequence: 1,
        channel: 0,
        timestamp_ticks: 125_000_000,
        width_ticks: 1_250_000,
        ref_count: 50,
        flags: 0,
    };
    let mut frame = [0u8; MAX_FRAME_LEN];
    let n = encode_message(&DeviceMessage::Edge(edge), &mut frame);
    let expected = [
        0x04, 0x01, 0x82, 0x01, 0x01, 0x01, 0x01, 0x05, 0x40, 0x59, 0x73, 0x07, 0x01, 0x01, 0x01,
        0x04, 0xD0, 0x12, 0x13, 0x02, 0x32, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x05, 0xDC,
        0xE7, 0x33, 0xB8, 0x00,
    ];
    assert_eq!(&frame[..n], &expected);
    let mut reference = [0u8; MAX_FRAME_LEN];
    let m = encode(&DeviceMessage::Edge(edge), &mut reference).unwrap();
    assert_eq!(&frame[..n], &reference[..m]);
}

#[test]
fn flags_survive_the_wire() {
    let mut engine = Engine::<256>::new(INFO, true);
    let Action::Arm { channel_mask, .. } =
        engine.handle(Ok(HostMessage::Arm { channel_mask: 1 }), 0)
    else {
        panic!("arm");
    };
    engine.armed(channel_mask);
    engine.record_drop();
    engine.edge(&RawEdge {
        channel: 0,
        polarity: Polarity::Rising,
        ticks: u64::MAX - 5,
        ref_count: u64::MAX,
    });
    let mut packer = PacketPacker::new();
    let mut wire = Vec::new();
    send_all(&mut engine, &mut packer, &mut wire);
    let msgs = host_decode(&wire);
    let DeviceMessage::Edge(e) = msgs[1] else {
        panic!("{msgs:?}");
    };
    assert_eq!(
        e.flags,
        edge_flags::DROPPED_BEFORE | edge_flags::EXTERNAL_CLOCK
    );
    assert_eq!(
        (e.timestamp_ticks, e.ref_count, e.sequence),
        (u64::MAX - 5, u64::MAX, 1)
    );
}
