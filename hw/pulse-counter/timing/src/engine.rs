//! The device side of the protocol, without hardware: commands in, messages out.
//!
//! The firmware owns one [`Engine`] and feeds it decoded host frames
//! ([`Engine::handle`]), captured transitions ([`Engine::edge`]) and the time
//! ([`Engine::poll`]); it takes messages to send from [`Engine::next_message`].
//! Commands that need the hardware come back as an [`Action`]: the firmware does
//! its part (restart the state machines, stop capture, wait for the capture
//! pipeline) and then completes the command with [`Engine::armed`],
//! [`Engine::disarmed`] or [`Engine::flush`] + [`Engine::pong`].

use crate::CHANNEL_COUNT;
use crate::capture::Polarity;
use crate::clock::{TIMEBASE_HZ, ticks_from_ms};
use crate::output::{Output, Snapshot};
use crate::pairing::{ChannelConfig, ChannelTracker, Pulse, RawEdge, STUCK_TIMEOUT_MS};
use crate::protocol::{
    DecodeError, DeviceMessage, Edges, Hello, HostMessage, PROTOCOL_VERSION, id, nak,
};

/// Longest glitch filter the device accepts (the `Both`-mode stuck timeout,
/// 100 ms): a Ping flush may wait for a filter to decide, and must stay short.
pub const MAX_GLITCH_FILTER_TICKS: u32 = ticks_from_ms(STUCK_TIMEOUT_MS) as u32;

/// Identity of the device, as sent in Hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Firmware (major, minor, patch).
    pub firmware_version: (u8, u8, u8),
    /// ASCII serial number, zero padded.
    pub serial_number: [u8; 16],
    /// A reference-frequency input is fitted.
    pub reference_input: bool,
    /// The timebase can run on an external 10 MHz reference.
    pub external_clock_capable: bool,
}

impl DeviceInfo {
    /// Placeholder until the firmware has read the flash unique id.
    pub const UNKNOWN: Self = Self {
        firmware_version: (0, 0, 0),
        serial_number: [0; 16],
        reference_input: false,
        external_clock_capable: false,
    };
}

/// What the firmware must do after [`Engine::handle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The reply is queued; nothing else to do.
    Done,
    /// Stop capture, clear the PIO FIFOs, restart every state machine from its
    /// entry (`low_entry_mask` bit n: channel n starts in the "input low" loop),
    /// restart the timebase and the reference counter at 0 with the sync strobe,
    /// then call [`Engine::armed`].
    Arm {
        /// Channels to report.
        channel_mask: u32,
        /// Channels whose pulses are low-going (`Falling`).
        low_entry_mask: u32,
    },
    /// Stop capture, pass every transition still in the pipeline to
    /// [`Engine::edge`], then call [`Engine::disarmed`].
    Disarm,
    /// Wait until every transition before tick `t_ping` went through
    /// [`Engine::edge`], then call [`Engine::flush`] until it returns true and
    /// finish with [`Engine::pong`].
    Ping {
        /// The Ping's token.
        token: u32,
        /// Ticks when the Ping was received.
        t_ping: u64,
    },
}

/// How the status LED should look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indicator {
    /// Disarmed and healthy: a short blink every 2 s.
    Idle,
    /// Armed and healthy: blinking at 2 Hz.
    Armed,
    /// Events were lost since Arm: solid on.
    Error,
}

impl Indicator {
    /// LED level at `now_ms` for this state.
    pub const fn led_on(self, now_ms: u64) -> bool {
        match self {
            Self::Idle => now_ms % 2_000 < 50,
            Self::Armed => (now_ms / 250).is_multiple_of(2),
            Self::Error => true,
        }
    }
}

/// Protocol state machine of the pulse counter with an Edge queue of `N`.
#[derive(Debug, Clone)]
pub struct Engine<const N: usize> {
    info: DeviceInfo,
    trackers: [ChannelTracker; CHANNEL_COUNT],
    armed: bool,
    channel_mask: u32,
    external_clock: bool,
    output: Output<N>,
}

const fn trackers() -> [ChannelTracker; CHANNEL_COUNT] {
    let mut t = [const { ChannelTracker::new(0) }; CHANNEL_COUNT];
    let mut i = 0;
    while i < CHANNEL_COUNT {
        t[i] = ChannelTracker::new(i as u8);
        i += 1;
    }
    t
}

impl<const N: usize> Engine<N> {
    /// Power-up state: disarmed, every channel Rising without filter.
    pub const fn new(info: DeviceInfo, external_clock: bool) -> Self {
        Self {
            info,
            trackers: trackers(),
            armed: false,
            channel_mask: 0,
            external_clock,
            output: Output::new(),
        }
    }

    /// Replaces the identity (once the serial number is known).
    pub fn set_info(&mut self, info: DeviceInfo) {
        self.info = info;
    }

    /// Records whether the timebase runs on the external reference.
    pub fn set_external_clock(&mut self, external: bool) {
        self.external_clock = external;
    }

    /// The Hello this device sends.
    pub const fn hello(&self) -> Hello {
        Hello {
            protocol_version: PROTOCOL_VERSION,
            firmware_version: self.info.firmware_version,
            serial_number: self.info.serial_number,
            timebase_hz: TIMEBASE_HZ,
            channel_count: CHANNEL_COUNT as u8,
            reference_input: self.info.reference_input,
            external_clock: self.info.external_clock_capable,
        }
    }

    /// Handles one received frame; `now` is the tick count at its delimiter.
    pub fn handle(&mut self, frame: Result<HostMessage, DecodeError>, now: u64) -> Action {
        let msg = match frame {
            Ok(m) => m,
            Err(e) => return self.reply(DeviceMessage::nak_for(&e)),
        };
        match msg {
            HostMessage::GetHello => self.reply(DeviceMessage::Hello(self.hello())),
            HostMessage::ConfigureChannel {
                channel,
                edges,
                glitch_filter_ticks,
            } => {
                let Some(t) = self.trackers.get_mut(usize::from(channel)) else {
                    return self.nak(id::CONFIGURE_CHANNEL, nak::INVALID_CHANNEL);
                };
                if glitch_filter_ticks > MAX_GLITCH_FILTER_TICKS {
                    return self.nak(id::CONFIGURE_CHANNEL, nak::INVALID_ARGUMENT);
                }
                if self.armed {
                    return self.nak(id::CONFIGURE_CHANNEL, nak::BUSY);
                }
                t.configure(ChannelConfig {
                    edges,
                    glitch_filter_ticks,
                });
                self.reply(DeviceMessage::Ack {
                    message_id: id::CONFIGURE_CHANNEL,
                })
            }
            HostMessage::Arm { channel_mask } => {
                if channel_mask >> CHANNEL_COUNT != 0 {
                    return self.nak(id::ARM, nak::INVALID_CHANNEL);
                }
                if channel_mask == 0 {
                    return self.nak(id::ARM, nak::INVALID_ARGUMENT);
                }
                let low_entry_mask = self
                    .trackers
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| t.config().edges == Edges::Falling)
                    .fold(0, |m, (i, _)| m | 1 << i);
                Action::Arm {
                    channel_mask,
                    low_entry_mask,
                }
            }
            HostMessage::Disarm => Action::Disarm,
            HostMessage::Ping { token } => Action::Ping { token, t_ping: now },
        }
    }

    fn reply(&mut self, msg: DeviceMessage) -> Action {
        self.output.push_reply(msg);
        Action::Done
    }

    fn nak(&mut self, message_id: u8, code: u8) -> Action {
        self.reply(DeviceMessage::Nak { message_id, code })
    }

    /// Completes Arm once capture restarted: the Ack is the first frame of the
    /// new arming.
    pub fn armed(&mut self, channel_mask: u32) {
        for t in &mut self.trackers {
            t.reset();
        }
        self.output.reset_for_arm();
        self.armed = true;
        self.channel_mask = channel_mask;
        self.output.push_reply(DeviceMessage::Ack {
            message_id: id::ARM,
        });
    }

    /// Completes Disarm once capture stopped and its pipeline was drained:
    /// pending pulses accepted by `now` are queued, then the Ack.
    pub fn disarmed(&mut self, now: u64) {
        if self.armed {
            for i in 0..CHANNEL_COUNT {
                if let Some(p) = self.trackers[i].finish(now) {
                    self.queue(&p);
                }
            }
        }
        self.armed = false;
        self.output.push_reply(DeviceMessage::Ack {
            message_id: id::DISARM,
        });
    }

    /// A captured transition (in capture order per channel).
    pub fn edge(&mut self, e: &RawEdge) {
        let ch = usize::from(e.channel);
        if !self.armed || ch >= CHANNEL_COUNT || self.channel_mask & (1 << ch) == 0 {
            return;
        }
        let out = self.trackers[ch].edge(e.polarity, e.ticks, e.ref_count);
        if out.lost_edge {
            self.output.edges().record_drop();
        }
        if let Some(p) = out.pulse {
            self.queue(&p);
        }
    }

    /// An event lost before it reached the engine (capture overrun, full
    /// channel between the cores).
    pub fn record_drop(&mut self) {
        if self.armed {
            self.output.edges().record_drop();
        }
    }

    /// Time-driven decisions (glitch filter acceptance, stuck inputs). `now`:
    /// every transition before it has been passed to [`edge`](Self::edge).
    pub fn poll(&mut self, now: u64) {
        if !self.armed {
            return;
        }
        for i in 0..CHANNEL_COUNT {
            if let Some(p) = self.trackers[i].poll(now) {
                self.queue(&p);
            }
        }
    }

    /// Ping flush: queues every pulse that started before `t_ping` and is
    /// decided at `now`. Returns false while a pulse is still inside its glitch
    /// filter (call again later).
    pub fn flush(&mut self, t_ping: u64, now: u64) -> bool {
        if !self.armed {
            return true;
        }
        let mut done = true;
        for i in 0..CHANNEL_COUNT {
            let out = self.trackers[i].flush(t_ping, now);
            if let Some(p) = out.pulse {
                self.queue(&p);
            }
            done &= !out.blocked;
        }
        done
    }

    /// Completes Ping after the flush: the Pong follows every Edge queued so far.
    pub fn pong(&mut self, token: u32, t_ping: u64) {
        self.output.push_pong(token, t_ping);
    }

    fn queue(&mut self, p: &Pulse) {
        let ext = self.external_clock;
        self.output.edges().push(p, ext);
    }

    /// Asks for a Heartbeat.
    pub fn request_heartbeat(&mut self) {
        self.output.request_heartbeat();
    }

    /// The next message to send; `snapshot` gives ticks and reference count now.
    pub fn next_message(&mut self, snapshot: impl FnOnce() -> (u64, u64)) -> Option<DeviceMessage> {
        let ext = self.external_clock;
        self.output.next(|| {
            let (ticks, ref_count) = snapshot();
            Snapshot {
                ticks,
                ref_count,
                external_clock: ext,
            }
        })
    }

    /// Nothing waits to be sent.
    pub const fn is_idle(&self) -> bool {
        self.output.is_idle()
    }

    /// Capture is running.
    pub const fn is_armed(&self) -> bool {
        self.armed
    }

    /// A channel's current configuration.
    pub fn channel_config(&self, channel: usize) -> Option<ChannelConfig> {
        self.trackers.get(channel).map(ChannelTracker::config)
    }

    /// Events dropped since Arm.
    pub const fn dropped_events(&self) -> u32 {
        self.output.edges_ref().dropped_events()
    }

    /// State for the status LED.
    pub const fn indicator(&self) -> Indicator {
        if self.dropped_events() > 0 {
            Indicator::Error
        } else if self.armed {
            Indicator::Armed
        } else {
            Indicator::Idle
        }
    }
}

/// Convenience for tests and simulators: the transition pair of one pulse.
pub const fn pulse_edges(channel: u8, start: u64, width: u64, ref_count: u64) -> [RawEdge; 2] {
    [
        RawEdge {
            channel,
            polarity: Polarity::Rising,
            ticks: start,
            ref_count,
        },
        RawEdge {
            channel,
            polarity: Polarity::Falling,
            ticks: start + width,
            ref_count,
        },
    ]
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;
    use crate::protocol::{Edge, SequenceTracker, edge_flags};

    type E = Engine<16>;

    fn engine() -> E {
        let mut serial = [0; 16];
        serial[..4].copy_from_slice(b"E661");
        Engine::new(
            DeviceInfo {
                firmware_version: (0, 1, 0),
                serial_number: serial,
                reference_input: true,
                external_clock_capable: true,
            },
            false,
        )
    }

    fn drain(e: &mut E) -> Vec<DeviceMessage> {
        core::iter::from_fn(|| e.next_message(|| (5, 6))).collect()
    }

    fn arm(e: &mut E, mask: u32) {
        match e.handle(Ok(HostMessage::Arm { channel_mask: mask }), 0) {
            Action::Arm { channel_mask, .. } => e.armed(channel_mask),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hello_describes_the_counter() {
        let mut e = engine();
        assert_eq!(e.handle(Ok(HostMessage::GetHello), 0), Action::Done);
        let [DeviceMessage::Hello(h)] = drain(&mut e)[..] else {
            panic!("hello expected");
        };
        assert_eq!(h.timebase_hz, 62_500_000);
        assert_eq!(h.channel_count, 8);
        assert_eq!(h.serial_number_str(), Some("E661"));
        assert!(h.reference_input && h.external_clock);
        assert_eq!(h.protocol_version, PROTOCOL_VERSION);
    }

    #[test]
    fn command_validation() {
        let mut e = engine();
        let cases = [
            (
                HostMessage::Arm { channel_mask: 0 },
                id::ARM,
                nak::INVALID_ARGUMENT,
            ),
            (
                HostMessage::Arm {
                    channel_mask: 1 << 8,
                },
                id::ARM,
                nak::INVALID_CHANNEL,
            ),
            (
                HostMessage::ConfigureChannel {
                    channel: 8,
                    edges: Edges::Both,
                    glitch_filter_ticks: 0,
                },
                id::CONFIGURE_CHANNEL,
                nak::INVALID_CHANNEL,
            ),
            (
                HostMessage::ConfigureChannel {
                    channel: 0,
                    edges: Edges::Both,
                    glitch_filter_ticks: MAX_GLITCH_FILTER_TICKS + 1,
                },
                id::CONFIGURE_CHANNEL,
                nak::INVALID_ARGUMENT,
            ),
        ];
        for (msg, message_id, code) in cases {
            assert_eq!(e.handle(Ok(msg), 0), Action::Done);
            assert_eq!(
                drain(&mut e),
                [DeviceMessage::Nak { message_id, code }],
                "{msg:?}"
            );
        }
        // Decode errors become Naks too.
        e.handle(Err(DecodeError::Framing), 0);
        e.handle(Err(DecodeError::UnknownMessage { message_id: 0x42 }), 0);
        assert_eq!(
            drain(&mut e),
            [
                DeviceMessage::Nak {
                    message_id: 0,
                    code: nak::BAD_FRAME
                },
                DeviceMessage::Nak {
                    message_id: 0x42,
                    code: nak::UNKNOWN_MESSAGE
                }
            ]
        );
    }

    #[test]
    fn configure_only_while_disarmed() {
        let mut e = engine();
        let cfg = HostMessage::ConfigureChannel {
            channel: 2,
            edges: Edges::Falling,
            glitch_filter_ticks: 10,
        };
        e.handle(Ok(cfg), 0);
        let Action::Arm { low_entry_mask, .. } = e.handle(
            Ok(HostMessage::Arm {
                channel_mask: 0b111,
            }),
            0,
        ) else {
            panic!("arm action expected");
        };
        assert_eq!(low_entry_mask, 0b100, "channel 2 counts low-going pulses");
        e.armed(0b111);
        e.handle(Ok(cfg), 0);
        let m = drain(&mut e);
        assert_eq!(
            m,
            [
                DeviceMessage::Ack {
                    message_id: id::CONFIGURE_CHANNEL
                },
                DeviceMessage::Ack {
                    message_id: id::ARM
                },
                DeviceMessage::Nak {
                    message_id: id::CONFIGURE_CHANNEL,
                    code: nak::BUSY
                },
            ]
        );
        assert_eq!(e.channel_config(2).unwrap().glitch_filter_ticks, 10);
    }

    #[test]
    fn a_session_end_to_end() {
        let mut e = engine();
        e.handle(
            Ok(HostMessage::ConfigureChannel {
                channel: 1,
                edges: Edges::Both,
                glitch_filter_ticks: 100,
            }),
            0,
        );
        arm(&mut e, 0b110);
        let mut tracker = SequenceTracker::new();
        let mut seen: Vec<Edge> = Vec::new();
        let mut check = |e: &mut E, seen: &mut Vec<Edge>| {
            for m in drain(e) {
                tracker.observe(&m).unwrap();
                if let DeviceMessage::Edge(x) = m {
                    seen.push(x);
                }
            }
        };
        // Channel 1 (Both): a pulse, a glitch, a pulse; channel 2 (Rising): two
        // pulses; channel 0 is not armed.
        for r in [
            pulse_edges(1, 1_000, 500, 10),
            pulse_edges(2, 1_100, 300, 11),
            pulse_edges(1, 5_000, 50, 20),
            pulse_edges(0, 6_000, 500, 21),
            pulse_edges(1, 9_000, 700, 30),
            pulse_edges(2, 9_100, 300, 31),
        ] {
            for x in &r {
                e.edge(x);
            }
        }
        check(&mut e, &mut seen);
        let summary: Vec<(u32, u8, u64, u32, u64)> = seen
            .iter()
            .map(|x| {
                (
                    x.sequence,
                    x.channel,
                    x.timestamp_ticks,
                    x.width_ticks,
                    x.ref_count,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (1, 1, 1_000, 500, 10),
                (2, 2, 1_100, 0, 11),
                (3, 1, 9_000, 700, 30),
                (4, 2, 9_100, 0, 31),
            ]
        );
        // A pulse still high at Ping is flushed with width 0 before the Pong.
        e.edge(&pulse_edges(1, 20_000, 0, 40)[0]);
        let Action::Ping { token, t_ping } = e.handle(Ok(HostMessage::Ping { token: 9 }), 20_050)
        else {
            panic!("ping action expected");
        };
        assert!(!e.flush(t_ping, 20_050), "inside the 100-tick filter");
        assert!(e.flush(t_ping, 20_100));
        e.pong(token, t_ping);
        let m = drain(&mut e);
        assert!(matches!(m[0], DeviceMessage::Edge(x) if x.sequence == 5 && x.width_ticks == 0));
        assert!(matches!(m[1], DeviceMessage::Pong(p) if p.token == 9 && p.last_sequence == 5));
        for x in &m {
            tracker.observe(x).unwrap();
        }
        // Its falling edge is swallowed; Disarm acks after the last Edge.
        e.edge(&pulse_edges(1, 20_000, 5_000, 40)[1]);
        e.edge(&pulse_edges(2, 30_000, 10, 50)[0]);
        assert_eq!(e.handle(Ok(HostMessage::Disarm), 40_000), Action::Disarm);
        e.disarmed(40_000);
        let m = drain(&mut e);
        assert!(matches!(m[0], DeviceMessage::Edge(x) if x.sequence == 6 && x.channel == 2));
        assert_eq!(
            m[1],
            DeviceMessage::Ack {
                message_id: id::DISARM
            }
        );
        assert_eq!(m.len(), 2);
        assert!(!e.is_armed());
        // Disarmed: transitions are ignored, Disarm is still acked.
        e.edge(&pulse_edges(2, 50_000, 10, 50)[0]);
        e.handle(Ok(HostMessage::Disarm), 0);
        e.disarmed(60_000);
        assert_eq!(
            drain(&mut e),
            [DeviceMessage::Ack {
                message_id: id::DISARM
            }]
        );
    }

    #[test]
    fn lost_edges_and_drops_reach_the_host() {
        let mut e = engine();
        arm(&mut e, 1);
        drain(&mut e);
        let [r, f] = pulse_edges(0, 100, 10, 0);
        e.edge(&r);
        e.edge(&f);
        e.edge(&f); // a rising edge went missing in between
        e.record_drop();
        e.edge(&pulse_edges(0, 500, 10, 0)[0]);
        e.request_heartbeat();
        let m = drain(&mut e);
        let DeviceMessage::Heartbeat(h) = m[0] else {
            panic!("a due heartbeat goes before queued edges")
        };
        assert_eq!((h.dropped_events, h.sequence), (2, 0));
        assert!(matches!(m[1], DeviceMessage::Edge(x) if x.flags == 0));
        assert!(
            matches!(m[2], DeviceMessage::Edge(x) if x.flags & edge_flags::DROPPED_BEFORE != 0)
        );
        assert_eq!(e.indicator(), Indicator::Error);
        arm(&mut e, 1);
        assert_eq!(e.indicator(), Indicator::Armed);
    }

    #[test]
    fn stuck_input_in_both_mode_times_out() {
        let mut e = engine();
        e.handle(
            Ok(HostMessage::ConfigureChannel {
                channel: 0,
                edges: Edges::Both,
                glitch_filter_ticks: 0,
            }),
            0,
        );
        arm(&mut e, 1);
        drain(&mut e);
        e.edge(&pulse_edges(0, 1_000, 0, 0)[0]);
        e.poll(1_000 + 6_249_999);
        assert!(e.is_idle());
        e.poll(1_000 + 6_250_000);
        assert!(matches!(drain(&mut e)[..], [DeviceMessage::Edge(x)] if x.width_ticks == 0));
    }

    #[test]
    fn external_clock_flags() {
        let mut e = engine();
        e.set_external_clock(true);
        arm(&mut e, 1);
        drain(&mut e);
        e.edge(&pulse_edges(0, 1, 1, 0)[0]);
        e.request_heartbeat();
        let m = drain(&mut e);
        assert!(
            matches!(m[0], DeviceMessage::Heartbeat(h) if h.flags == 0x02 && h.timestamp_ticks == 5 && h.ref_count == 6)
        );
        assert!(matches!(m[1], DeviceMessage::Edge(x) if x.flags == edge_flags::EXTERNAL_CLOCK));
    }

    #[test]
    fn indicator_patterns() {
        assert!(Indicator::Error.led_on(1_234));
        assert!(Indicator::Armed.led_on(0) && !Indicator::Armed.led_on(250));
        assert!(Indicator::Idle.led_on(2_010) && !Indicator::Idle.led_on(2_100));
    }
}
