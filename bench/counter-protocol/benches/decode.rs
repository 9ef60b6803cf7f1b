//! Host-side decode throughput on one core, against what a full bench needs:
//! 48 channels × 300 pulses/s plus 10 heartbeats/s.
//!
//! Run with `cargo bench -p meterbench-counter-protocol`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use meterbench_counter_protocol::{
    DeviceMessage, Edge, FrameDecoder, HEARTBEAT_PERIOD_MS, Heartbeat, MAX_FRAME_LEN, encode,
};

const FRAMES: u32 = 1_000_000;
const CHANNELS: u32 = 48;
const PULSE_HZ: u32 = 300;
/// Full-speed USB bulk moves at most 19 × 64-byte packets per 1 ms frame.
const USB_FS_BULK_BYTES_PER_S: f64 = 19.0 * 64.0 * 1000.0;

fn main() {
    let mut wire = Vec::with_capacity(FRAMES as usize * MAX_FRAME_LEN);
    let mut buf = [0u8; MAX_FRAME_LEN];
    let encode_start = Instant::now();
    for i in 0..FRAMES {
        // Realistic field values: a 125 MHz timebase, pulses spread over channels.
        let edge = DeviceMessage::Edge(Edge {
            sequence: i + 1,
            channel: (i % CHANNELS) as u8,
            timestamp_ticks: u64::from(i) * 8_680 + 12_345,
            width_ticks: 1_250_000 + i % 977,
            ref_count: u64::from(i) * 3_333,
            flags: 0,
        });
        let n = encode(&edge, &mut buf).unwrap();
        wire.extend_from_slice(&buf[..n]);
    }
    let encode_time = encode_start.elapsed();
    let frame_len = wire.len() as f64 / f64::from(FRAMES);

    // Warm up once, then keep the best of three runs.
    decode(&wire);
    let best = (0..3).map(|_| decode(&wire)).min().unwrap();

    let events_per_s = f64::from(FRAMES) / best.as_secs_f64();
    let mb_per_s = wire.len() as f64 / best.as_secs_f64() / 1e6;
    let heartbeat_len = {
        let hb = DeviceMessage::Heartbeat(Heartbeat {
            sequence: 1,
            timestamp_ticks: 1,
            ref_count: 1,
            dropped_events: 0,
            flags: 0,
        });
        encode(&hb, &mut buf).unwrap() as f64
    };
    let heartbeats_per_s = 1000.0 / f64::from(HEARTBEAT_PERIOD_MS);
    let need_frames = f64::from(CHANNELS * PULSE_HZ) + heartbeats_per_s;
    let need_bytes = f64::from(CHANNELS * PULSE_HZ) * frame_len + heartbeats_per_s * heartbeat_len;

    println!(
        "encoded {FRAMES} Edge frames ({} bytes, {frame_len:.1} bytes/frame) in {:.1} ms",
        wire.len(),
        encode_time.as_secs_f64() * 1e3
    );
    println!(
        "decode (best of 3, one core): {:.1} ms -> {:.2} M events/s, {mb_per_s:.1} MB/s",
        best.as_secs_f64() * 1e3,
        events_per_s / 1e6
    );
    println!(
        "need for {CHANNELS} channels x {PULSE_HZ} Hz + {heartbeats_per_s} heartbeats/s: \
         {need_frames:.0} frames/s, {:.3} MB/s -> decode headroom x{:.0}, \
         {:.2} % of one core",
        need_bytes / 1e6,
        events_per_s / need_frames,
        100.0 * need_frames / events_per_s
    );
    println!(
        "that load is {:.0} % of the USB full-speed bulk ceiling ({:.3} MB/s)",
        100.0 * need_bytes / USB_FS_BULK_BYTES_PER_S,
        USB_FS_BULK_BYTES_PER_S / 1e6
    );
}

fn decode(wire: &[u8]) -> Duration {
    let mut decoder = FrameDecoder::<DeviceMessage>::new();
    let mut edges = 0u32;
    let start = Instant::now();
    for &b in wire {
        if let Some(msg) = decoder.push(b) {
            if let Ok(DeviceMessage::Edge(e)) = msg {
                black_box(e);
                edges += 1;
            } else {
                panic!("benchmark stream must decode cleanly: {msg:?}");
            }
        }
    }
    let elapsed = start.elapsed();
    assert_eq!(edges, FRAMES);
    elapsed
}
