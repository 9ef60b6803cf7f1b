//! The meterbench pulse counter (hw/pulse-counter) over its framed binary protocol.
//! The same driver talks to the RP2040 firmware on USB CDC and to the simulated counter
//! on a pseudo-terminal.

use crate::transport::Transport;
use crate::{
    ChannelConfig, CounterBatch, EdgeEvent, InstrumentError, InstrumentIdentity, InstrumentResult,
    PulseCounter, ReferenceCount,
};
use meterbench_counter_protocol::{
    DeviceMessage, Edges, FrameDecoder, Hello, HostMessage, MAX_FRAME_LEN, SequenceTracker, encode,
    id,
};
use std::time::{Duration, Instant};

/// A pulse counter speaking protocol v1 (see hw/pulse-counter/PROTOCOL.md).
pub struct ProtocolCounter<T: Transport> {
    transport: T,
    decoder: FrameDecoder<DeviceMessage>,
    hello: Hello,
    tracker: SequenceTracker,
    /// Upper 32 bits of the 64-bit sequence handed to the runner.
    sequence_epoch: u64,
    last_sequence32: u32,
    token: u32,
    timeout: Duration,
    /// Edges read while waiting for something else; the next drain returns them first.
    pending: Vec<EdgeEvent>,
}

impl<T: Transport> ProtocolCounter<T> {
    /// Say hello: a lone 0x00 ends any half frame, then GetHello must be answered.
    pub fn open(mut transport: T, timeout: Duration) -> InstrumentResult<Self> {
        let name = format!("counter on {}", transport.describe());
        transport.write_all(&[0]).map_err(|e| link(&name, e))?;
        let _ = transport.discard_input();
        let mut c = ProtocolCounter {
            transport,
            decoder: FrameDecoder::new(),
            hello: Hello {
                protocol_version: 0,
                firmware_version: (0, 0, 0),
                serial_number: [0; 16],
                timebase_hz: 0,
                channel_count: 0,
                reference_input: false,
                external_clock: false,
            },
            tracker: SequenceTracker::new(),
            sequence_epoch: 0,
            last_sequence32: 0,
            token: 0,
            timeout,
            pending: Vec::new(),
        };
        c.send(&HostMessage::GetHello)?;
        let deadline = Instant::now() + timeout;
        loop {
            match c.next_message(deadline, "GetHello")? {
                DeviceMessage::Hello(h) => {
                    c.hello = h;
                    break;
                }
                // Heartbeats of an earlier session may still be on their way.
                _ => continue,
            }
        }
        if c.hello.timebase_hz == 0 {
            return Err(InstrumentError::Device {
                instrument: c.name(),
                request: "GetHello".into(),
                reply: "hello with a timebase of 0 Hz".into(),
            });
        }
        Ok(c)
    }

    /// An Edge with its sequence extended past 32-bit wrap-around.
    fn edge_event(&mut self, e: &meterbench_counter_protocol::Edge) -> EdgeEvent {
        if e.sequence < self.last_sequence32 {
            self.sequence_epoch += 1 << 32;
        }
        self.last_sequence32 = e.sequence;
        EdgeEvent {
            channel: e.channel,
            timestamp_ticks: e.timestamp_ticks,
            width_ticks: e.width_ticks,
            ref_count: e.ref_count,
            sequence: self.sequence_epoch + e.sequence as u64,
        }
    }

    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    fn name(&self) -> String {
        format!(
            "counter {} on {}",
            self.hello.serial_number_str().unwrap_or("?"),
            self.transport.describe()
        )
    }

    fn send(&mut self, msg: &HostMessage) -> InstrumentResult<()> {
        let mut buf = [0u8; MAX_FRAME_LEN];
        let n = encode(msg, &mut buf).map_err(|e| InstrumentError::Link {
            instrument: self.name(),
            message: format!("cannot encode {msg:?}: {e:?}"),
        })?;
        let name = self.name();
        self.transport
            .write_all(&buf[..n])
            .map_err(|e| link(&name, e))
    }

    /// The next well-formed message; a corrupted frame is an error, never skipped.
    fn next_message(
        &mut self,
        deadline: Instant,
        request: &str,
    ) -> InstrumentResult<DeviceMessage> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(InstrumentError::Timeout {
                    instrument: self.name(),
                    request: request.into(),
                    timeout: self.timeout,
                });
            }
            let frame = match self.transport.read_until(0, left) {
                Ok(f) => f,
                Err(crate::transport::TransportError::Timeout { .. }) => {
                    return Err(InstrumentError::Timeout {
                        instrument: self.name(),
                        request: request.into(),
                        timeout: self.timeout,
                    });
                }
                Err(e) => return Err(link(&self.name(), e)),
            };
            if frame.is_empty() {
                continue; // a flush marker
            }
            let mut result = None;
            for &b in frame.iter().chain(std::iter::once(&0u8)) {
                if let Some(r) = self.decoder.push(b) {
                    result = Some(r);
                }
            }
            match result {
                Some(Ok(m)) => return Ok(m),
                Some(Err(e)) => {
                    return Err(InstrumentError::Link {
                        instrument: self.name(),
                        message: format!(
                            "corrupted frame from the counter ({e:?}) while waiting for the answer to {request}; the measurement is invalid"
                        ),
                    });
                }
                None => continue,
            }
        }
    }

    fn expect_ack(&mut self, message_id: u8, request: &str) -> InstrumentResult<()> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.next_message(deadline, request)? {
                DeviceMessage::Ack { message_id: m } if m == message_id => return Ok(()),
                DeviceMessage::Nak {
                    message_id: m,
                    code,
                } if m == message_id => {
                    return Err(InstrumentError::Device {
                        instrument: self.name(),
                        request: request.into(),
                        reply: format!("Nak code {code:#04x}"),
                    });
                }
                DeviceMessage::Heartbeat(_) | DeviceMessage::Edge(_) => continue,
                other => {
                    return Err(InstrumentError::Device {
                        instrument: self.name(),
                        request: request.into(),
                        reply: format!("unexpected {other:?}"),
                    });
                }
            }
        }
    }

    fn lost(&self, what: String) -> InstrumentError {
        InstrumentError::Link {
            instrument: self.name(),
            message: format!("{what}; the measurement is invalid"),
        }
    }
}

fn link(name: &str, e: crate::transport::TransportError) -> InstrumentError {
    InstrumentError::Link {
        instrument: name.to_string(),
        message: e.to_string(),
    }
}

impl<T: Transport> PulseCounter for ProtocolCounter<T> {
    fn identity(&mut self) -> InstrumentResult<InstrumentIdentity> {
        let (a, b, c) = self.hello.firmware_version;
        Ok(InstrumentIdentity {
            manufacturer: "meterbench".into(),
            model: format!(
                "pulse counter, {} channels, protocol v{}",
                self.hello.channel_count, self.hello.protocol_version
            ),
            serial_number: self.hello.serial_number_str().unwrap_or("").to_string(),
            firmware: format!("{a}.{b}.{c}"),
        })
    }

    fn timebase_hz(&self) -> f64 {
        self.hello.timebase_hz as f64
    }

    fn arm(&mut self, channels: &[ChannelConfig]) -> InstrumentResult<()> {
        let mut mask = 0u32;
        for c in channels {
            // Channels are 0-based on the wire (PROTOCOL.md, ConfigureChannel).
            if c.channel >= self.hello.channel_count || c.channel >= 32 {
                return Err(InstrumentError::Refused {
                    instrument: self.name(),
                    request: format!("channel {}", c.channel),
                    reason: format!(
                        "the counter has channels 0 … {}; check the heads wired to it in the station's rack",
                        self.hello.channel_count.saturating_sub(1)
                    ),
                });
            }
            let ticks = (c.glitch_filter_s * self.hello.timebase_hz as f64).round() as u32;
            self.send(&HostMessage::ConfigureChannel {
                channel: c.channel,
                edges: Edges::Both,
                glitch_filter_ticks: ticks,
            })?;
            self.expect_ack(
                id::CONFIGURE_CHANNEL,
                &format!("ConfigureChannel {}", c.channel),
            )?;
            mask |= 1 << c.channel;
        }
        self.send(&HostMessage::Arm { channel_mask: mask })?;
        self.expect_ack(id::ARM, "Arm")?;
        // Everything after the Ack belongs to this arming (PROTOCOL.md, Arm).
        self.tracker.reset();
        self.sequence_epoch = 0;
        self.last_sequence32 = 0;
        Ok(())
    }

    fn disarm(&mut self) -> InstrumentResult<()> {
        self.send(&HostMessage::Disarm)?;
        self.expect_ack(id::DISARM, "Disarm")
    }

    /// Wait for the next Heartbeat: it carries the reference count at its time. Edges
    /// that come first are kept for the next drain.
    fn reference_count(&mut self) -> InstrumentResult<ReferenceCount> {
        // A heartbeat is due every HEARTBEAT_PERIOD_MS; the reply timeout covers it.
        let deadline = Instant::now() + self.timeout;
        loop {
            let msg = self.next_message(deadline, "Heartbeat")?;
            if let Err(e) = self.tracker.observe(&msg) {
                return Err(self.lost(format!("counter reported or showed lost events: {e:?}")));
            }
            match msg {
                DeviceMessage::Edge(e) => {
                    let ev = self.edge_event(&e);
                    self.pending.push(ev);
                }
                DeviceMessage::Heartbeat(h) => {
                    return Ok(ReferenceCount {
                        now_ticks: h.timestamp_ticks,
                        ref_count: h.ref_count,
                    });
                }
                DeviceMessage::Pong(_) => {}
                other => {
                    return Err(InstrumentError::Device {
                        instrument: self.name(),
                        request: "Heartbeat".into(),
                        reply: format!("unexpected {other:?}"),
                    });
                }
            }
        }
    }

    /// Ping, then collect every Edge until the matching Pong: the device sends the Pong
    /// only after every edge timestamped before the Ping.
    fn drain(&mut self) -> InstrumentResult<CounterBatch> {
        self.token = self.token.wrapping_add(1);
        let token = self.token;
        self.send(&HostMessage::Ping { token })?;
        let deadline = Instant::now() + self.timeout;
        let mut events = std::mem::take(&mut self.pending);
        loop {
            let msg = self.next_message(deadline, "Ping")?;
            if let Err(e) = self.tracker.observe(&msg) {
                return Err(self.lost(format!("counter reported or showed lost events: {e:?}")));
            }
            match msg {
                DeviceMessage::Edge(e) => events.push(self.edge_event(&e)),
                DeviceMessage::Pong(p) if p.token == token => {
                    return Ok(CounterBatch {
                        events,
                        now_ticks: p.timestamp_ticks,
                    });
                }
                // Heartbeats carry no edges; stale Pongs answer an earlier, timed-out Ping.
                DeviceMessage::Heartbeat(_) | DeviceMessage::Pong(_) => {}
                other => {
                    return Err(InstrumentError::Device {
                        instrument: self.name(),
                        request: "Ping".into(),
                        reply: format!("unexpected {other:?}"),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::scripted::{ScriptStep, ScriptedTransport};
    use meterbench_counter_protocol::{Edge, Heartbeat, Pong};

    fn frame<M: meterbench_counter_protocol::Message>(m: &M) -> Vec<u8> {
        let mut buf = [0u8; MAX_FRAME_LEN];
        let n = encode(m, &mut buf).unwrap();
        buf[..n].to_vec()
    }

    fn hello() -> DeviceMessage {
        let mut serial_number = [0u8; 16];
        serial_number[..8].copy_from_slice(b"CNT-0001");
        DeviceMessage::Hello(Hello {
            protocol_version: 1,
            firmware_version: (1, 0, 0),
            serial_number,
            timebase_hz: 125_000_000,
            channel_count: 8,
            reference_input: true,
            external_clock: false,
        })
    }

    fn edge(sequence: u32, ticks: u64, ref_count: u64) -> DeviceMessage {
        DeviceMessage::Edge(Edge {
            sequence,
            channel: 1,
            timestamp_ticks: ticks,
            width_ticks: 250_000,
            ref_count,
            flags: 0,
        })
    }

    /// The reference count comes from the next Heartbeat; an Edge that arrives first is
    /// not lost but returned by the next drain, before the Pong's edges.
    #[test]
    fn reference_count_waits_for_a_heartbeat_and_keeps_earlier_edges() {
        let mut after_hello = frame(&hello());
        after_hello.extend(frame(&edge(1, 1_000, 50)));
        after_hello.extend(frame(&DeviceMessage::Heartbeat(Heartbeat {
            sequence: 1,
            timestamp_ticks: 2_000,
            ref_count: 77,
            dropped_events: 0,
            flags: 0,
        })));
        let mut pong = frame(&edge(2, 3_000, 90));
        pong.extend(frame(&DeviceMessage::Pong(Pong {
            token: 1,
            timestamp_ticks: 4_000,
            last_sequence: 2,
        })));
        let t = ScriptedTransport::new([
            ScriptStep::command([0u8]),
            ScriptStep::exchange(frame(&HostMessage::GetHello), after_hello),
            ScriptStep::exchange(frame(&HostMessage::Ping { token: 1 }), pong),
        ]);
        let mut c = ProtocolCounter::open(t, Duration::from_millis(200)).unwrap();
        let r = c.reference_count().unwrap();
        assert_eq!(
            r,
            ReferenceCount {
                now_ticks: 2_000,
                ref_count: 77
            }
        );
        let batch = c.drain().unwrap();
        let seen: Vec<(u64, u64)> = batch
            .events
            .iter()
            .map(|e| (e.sequence, e.ref_count))
            .collect();
        assert_eq!(seen, [(1, 50), (2, 90)]);
        assert_eq!(batch.now_ticks, 4_000);
    }
}
