//! The simulated pulse counter on the far end of a byte stream (a pseudo-terminal), speaking
//! exactly the protocol of hw/pulse-counter/PROTOCOL.md, backed by the simulated world.
//! Link faults can be injected to prove the host never measures silently wrong.

use crate::world::SharedWorld;
use meterbench_counter_protocol::{
    DeviceMessage, Edge, FrameDecoder, Heartbeat, Hello, HostMessage, MAX_FRAME_LEN, Message,
    PROTOCOL_VERSION, Pong, encode, id,
};
use meterbench_instruments::EdgeEvent;
use std::io::{ErrorKind, Read, Write};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A misbehaviour of the link or the device, starting at the given Ping (1-based).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CounterLinkFault {
    /// The device disappears (cable pulled): the stream is closed.
    Unplug { at_ping: u32 },
    /// Bytes of line noise before the answer.
    Garbage { at_ping: u32 },
    /// The first Edge frame of the answer is cut short.
    TruncateFrame { at_ping: u32 },
    /// One Edge frame of the answer never arrives.
    DropEdge { at_ping: u32 },
    /// Two Edge frames of the answer arrive swapped.
    ReorderEdges { at_ping: u32 },
    /// The answer comes only after this delay.
    DelayPong { at_ping: u32, delay: Duration },
}

/// Start the device on its own thread; it runs until the stream closes or errors.
/// The stream's reads must time out (e.g. a serial port with a 50 ms timeout) so the
/// device can send its heartbeats.
pub fn spawn_counter_device<S>(
    world: SharedWorld,
    counter: usize,
    stream: S,
    serial_number: &str,
    channel_count: u8,
    faults: Vec<CounterLinkFault>,
) -> JoinHandle<()>
where
    S: Read + Write + Send + 'static,
{
    let mut serial = [0u8; 16];
    for (d, s) in serial.iter_mut().zip(serial_number.bytes()) {
        *d = s;
    }
    let device = Device {
        world,
        counter,
        stream,
        serial,
        channel_count,
        glitch_s: vec![0.0; channel_count as usize],
        pings: 0,
        last_sequence: 0,
        faults,
    };
    std::thread::Builder::new()
        .name("sim-counter".into())
        .spawn(move || device.run())
        .expect("spawn the simulated counter")
}

struct Device<S> {
    world: SharedWorld,
    /// Which of the world's counters this device is.
    counter: usize,
    stream: S,
    serial: [u8; 16],
    channel_count: u8,
    glitch_s: Vec<f64>,
    pings: u32,
    last_sequence: u32,
    faults: Vec<CounterLinkFault>,
}

fn frame<M: Message>(m: &M) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let n = encode(m, &mut buf).expect("every v1 message fits a frame");
    buf[..n].to_vec()
}

impl<S: Read + Write> Device<S> {
    fn run(mut self) {
        // PROTOCOL.md, session start: a lone delimiter ends any half frame.
        if self.write_fully(&[0]).is_err() {
            return;
        }
        let mut decoder = FrameDecoder::<HostMessage>::new();
        let mut buf = [0u8; 256];
        let mut next_heartbeat = Instant::now() + Duration::from_millis(100);
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    for &b in &buf[..n] {
                        let alive = match decoder.push(b) {
                            Some(Ok(msg)) => self.handle(msg),
                            Some(Err(e)) => self.send(&DeviceMessage::nak_for(&e)).is_ok(),
                            None => true,
                        };
                        if !alive {
                            return;
                        }
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::TimedOut | ErrorKind::WouldBlock | ErrorKind::Interrupted
                    ) => {}
                Err(_) => return,
            }
            if Instant::now() >= next_heartbeat {
                next_heartbeat = Instant::now() + Duration::from_millis(100);
                let hb = self.heartbeat();
                if self.send(&hb).is_err() {
                    return;
                }
            }
        }
    }

    fn send(&mut self, m: &DeviceMessage) -> std::io::Result<()> {
        self.write_fully(&frame(m))
    }

    /// Write every byte, however long the host takes to read them. A USB device's frames
    /// wait in its endpoint until the host reads them (while an operator answers a prompt,
    /// say): never cut in half, never a reason to drop the link. Only a real error (the
    /// host closed its end) ends the device.
    fn write_fully(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        while !bytes.is_empty() {
            match self.stream.write(bytes) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::TimedOut | ErrorKind::WouldBlock | ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        self.stream.flush()
    }

    fn heartbeat(&self) -> DeviceMessage {
        let w = self.world.lock().unwrap();
        DeviceMessage::Heartbeat(Heartbeat {
            sequence: self.last_sequence,
            timestamp_ticks: w.counter_now_ticks(self.counter),
            ref_count: w.counter_ref_count_now(self.counter),
            dropped_events: 0,
            flags: 0,
        })
    }

    /// The fault due at this Ping: from its `at_ping` on, at the first answer it can spoil
    /// (a frame fault needs edges in the answer); each fault happens once.
    fn take_fault(&mut self, edges: usize) -> Option<CounterLinkFault> {
        let pings = self.pings;
        let k = self.faults.iter().position(|f| {
            let (at, needs) = match *f {
                CounterLinkFault::Unplug { at_ping } | CounterLinkFault::Garbage { at_ping } => {
                    (at_ping, 0)
                }
                CounterLinkFault::DelayPong { at_ping, .. } => (at_ping, 0),
                CounterLinkFault::TruncateFrame { at_ping }
                | CounterLinkFault::DropEdge { at_ping } => (at_ping, 1),
                CounterLinkFault::ReorderEdges { at_ping } => (at_ping, 2),
            };
            pings >= at && edges >= needs
        })?;
        Some(self.faults.remove(k))
    }

    /// Answer one host message; false ends the session.
    fn handle(&mut self, msg: HostMessage) -> bool {
        let reply = match msg {
            HostMessage::GetHello => {
                let tb = self.world.lock().unwrap().counter_timebase_hz(self.counter);
                DeviceMessage::Hello(Hello {
                    protocol_version: PROTOCOL_VERSION,
                    firmware_version: (0, 1, 0),
                    serial_number: self.serial,
                    timebase_hz: tb.round() as u32,
                    channel_count: self.channel_count,
                    reference_input: true,
                    external_clock: false,
                })
            }
            HostMessage::ConfigureChannel {
                channel,
                glitch_filter_ticks,
                ..
            } => {
                if channel >= self.channel_count {
                    DeviceMessage::Nak {
                        message_id: id::CONFIGURE_CHANNEL,
                        code: meterbench_counter_protocol::nak::INVALID_CHANNEL,
                    }
                } else {
                    let tb = self.world.lock().unwrap().counter_timebase_hz(self.counter);
                    self.glitch_s[channel as usize] = glitch_filter_ticks as f64 / tb;
                    DeviceMessage::Ack {
                        message_id: id::CONFIGURE_CHANNEL,
                    }
                }
            }
            HostMessage::Arm { channel_mask } => {
                let channels: Vec<(u8, f64)> = (0..self.channel_count)
                    .filter(|c| channel_mask & (1u32 << c) != 0)
                    .map(|c| (c, self.glitch_s[c as usize]))
                    .collect();
                self.world
                    .lock()
                    .unwrap()
                    .counter_arm(self.counter, &channels);
                self.last_sequence = 0;
                DeviceMessage::Ack {
                    message_id: id::ARM,
                }
            }
            HostMessage::Disarm => {
                self.world.lock().unwrap().counter_disarm(self.counter);
                DeviceMessage::Ack {
                    message_id: id::DISARM,
                }
            }
            HostMessage::Ping { token } => return self.pong(token),
        };
        self.send(&reply).is_ok()
    }

    fn pong(&mut self, token: u32) -> bool {
        self.pings += 1;
        let (events, now_ticks) = self.world.lock().unwrap().counter_drain(self.counter);
        if !self.faults.is_empty() {
            return self.pong_with_faults(token, &events, now_ticks);
        }
        // As a USB device sends packets while it has more to send: the host decodes the
        // first edges while the last are still being written.
        const PACKET: usize = 4096;
        let mut out = Vec::with_capacity(2 * PACKET);
        let mut frame_buf = [0u8; MAX_FRAME_LEN];
        for e in &events {
            let edge = self.edge(e);
            let n = encode(&edge, &mut frame_buf).expect("every v1 message fits a frame");
            out.extend_from_slice(&frame_buf[..n]);
            if out.len() >= PACKET {
                if self.write_fully(&out).is_err() {
                    return false;
                }
                out.clear();
            }
        }
        out.extend_from_slice(&frame(&DeviceMessage::Pong(Pong {
            token,
            timestamp_ticks: now_ticks,
            last_sequence: self.last_sequence,
        })));
        self.write_fully(&out).is_ok()
    }

    /// The Edge message of a world edge; it is the last one sent.
    fn edge(&mut self, e: &EdgeEvent) -> DeviceMessage {
        self.last_sequence = e.sequence as u32;
        DeviceMessage::Edge(Edge {
            sequence: e.sequence as u32,
            channel: e.channel,
            timestamp_ticks: e.timestamp_ticks,
            width_ticks: e.width_ticks,
            ref_count: e.ref_count,
            flags: 0,
        })
    }

    /// The answer to a Ping while link faults are pending: the whole answer is built
    /// first, so a fault can spoil any part of it.
    fn pong_with_faults(&mut self, token: u32, events: &[EdgeEvent], now_ticks: u64) -> bool {
        let mut frames: Vec<Vec<u8>> = events.iter().map(|e| frame(&self.edge(e))).collect();
        let mut out = Vec::new();
        match self.take_fault(frames.len()) {
            Some(CounterLinkFault::Unplug { .. }) => return false,
            Some(CounterLinkFault::Garbage { .. }) => {
                out.extend_from_slice(b"\x13\x37garbage\x55\xaa\x00")
            }
            Some(CounterLinkFault::TruncateFrame { .. }) if !frames.is_empty() => {
                let f = &mut frames[0];
                let keep = f.len() / 2;
                f.truncate(keep);
                f.push(0);
            }
            Some(CounterLinkFault::DropEdge { .. }) if !frames.is_empty() => {
                frames.remove(0);
            }
            Some(CounterLinkFault::ReorderEdges { .. }) if frames.len() >= 2 => frames.swap(0, 1),
            Some(CounterLinkFault::DelayPong { delay, .. }) => std::thread::sleep(delay),
            _ => {}
        }
        for f in frames {
            out.extend_from_slice(&f);
        }
        out.extend_from_slice(&frame(&DeviceMessage::Pong(Pong {
            token,
            timestamp_ticks: now_ticks,
            last_sequence: self.last_sequence,
        })));
        self.write_fully(&out).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::World;
    use meterbench_procedure::{DutFixture, Station};
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    /// A host that does not read for a while: every write times out until `stall` writes
    /// have been refused, then everything is taken (and kept, to be decoded).
    struct StalledHost {
        stall: Arc<Mutex<u32>>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Read for StalledHost {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            std::thread::sleep(Duration::from_millis(5));
            if self.written.lock().unwrap().len() > 400 {
                // Enough seen: the host hangs up.
                return Ok(0);
            }
            Err(ErrorKind::TimedOut.into())
        }
    }

    impl Write for StalledHost {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let mut stall = self.stall.lock().unwrap();
            if *stall > 0 {
                *stall -= 1;
                return Err(ErrorKind::TimedOut.into());
            }
            // Half of what is offered: frames cross write calls.
            let n = b.len().div_ceil(2);
            self.written.lock().unwrap().extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_host_that_stops_reading_gets_whole_frames_later_not_a_dropped_link() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let station = Station::load(&root.join("hw/stations/sim.yaml")).unwrap();
        let DutFixture::Meter(fixture) =
            DutFixture::load(&root.join("fixtures/cpim1000.yaml")).unwrap()
        else {
            panic!("a meter fixture")
        };
        let world = Arc::new(Mutex::new(World::for_station(&station, &fixture)));
        let written = Arc::new(Mutex::new(Vec::new()));
        let host = StalledHost {
            stall: Arc::new(Mutex::new(200)),
            written: written.clone(),
        };
        spawn_counter_device(world, 0, host, "CNT-1", 8, Vec::new())
            .join()
            .unwrap();
        let bytes = written.lock().unwrap().clone();
        let mut decoder = FrameDecoder::<DeviceMessage>::new();
        let mut heartbeats = 0;
        for b in bytes {
            match decoder.push(b) {
                Some(Ok(DeviceMessage::Heartbeat(_))) => heartbeats += 1,
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("a frame was cut or spoiled: {e:?}"),
                None => {}
            }
        }
        assert!(heartbeats >= 5, "{heartbeats} heartbeats");
    }
}
