//! Messages and their payload layouts (all integers little-endian).

use crate::PROTOCOL_VERSION;
use crate::frame::{DecodeError, MAX_PAYLOAD_LEN};

/// Message id bytes. Host → device ids are below 0x80, device → host ids have
/// the top bit set, so a frame sent the wrong way (an echoing port, a swapped
/// decoder) is reported as an unknown message instead of being misread.
pub mod id {
    /// [`HostMessage::GetHello`](crate::HostMessage::GetHello).
    pub const GET_HELLO: u8 = 0x01;
    /// [`HostMessage::ConfigureChannel`](crate::HostMessage::ConfigureChannel).
    pub const CONFIGURE_CHANNEL: u8 = 0x02;
    /// [`HostMessage::Arm`](crate::HostMessage::Arm).
    pub const ARM: u8 = 0x03;
    /// [`HostMessage::Disarm`](crate::HostMessage::Disarm).
    pub const DISARM: u8 = 0x04;
    /// [`HostMessage::Ping`](crate::HostMessage::Ping).
    pub const PING: u8 = 0x05;
    /// [`DeviceMessage::Hello`](crate::DeviceMessage::Hello).
    pub const HELLO: u8 = 0x81;
    /// [`DeviceMessage::Edge`](crate::DeviceMessage::Edge).
    pub const EDGE: u8 = 0x82;
    /// [`DeviceMessage::Heartbeat`](crate::DeviceMessage::Heartbeat).
    pub const HEARTBEAT: u8 = 0x83;
    /// [`DeviceMessage::Pong`](crate::DeviceMessage::Pong).
    pub const PONG: u8 = 0x84;
    /// [`DeviceMessage::Ack`](crate::DeviceMessage::Ack).
    pub const ACK: u8 = 0x85;
    /// [`DeviceMessage::Nak`](crate::DeviceMessage::Nak).
    pub const NAK: u8 = 0x86;
}

/// Bits of [`Edge::flags`]; undefined bits are sent as 0 and ignored.
pub mod edge_flags {
    /// The device dropped at least one event since the previous Edge it queued.
    pub const DROPPED_BEFORE: u8 = 0x01;
    /// The timebase ran on the external 10 MHz reference at this edge.
    pub const EXTERNAL_CLOCK: u8 = 0x02;
}

/// Bits of [`Heartbeat::flags`]; undefined bits are sent as 0 and ignored.
pub mod heartbeat_flags {
    /// The event queue overflowed since the previous heartbeat.
    pub const OVERFLOW: u8 = 0x01;
    /// The timebase runs on the external 10 MHz reference.
    pub const EXTERNAL_CLOCK: u8 = 0x02;
}

/// Codes of [`DeviceMessage::Nak`].
pub mod nak {
    /// COBS, CRC or size error; the Nak's `message_id` is 0 because the id
    /// byte of a corrupted frame cannot be trusted.
    pub const BAD_FRAME: u8 = 0x01;
    /// The host speaks another protocol version.
    pub const UNSUPPORTED_VERSION: u8 = 0x02;
    /// Message id not known to this firmware.
    pub const UNKNOWN_MESSAGE: u8 = 0x03;
    /// Payload length does not match the message layout.
    pub const BAD_LENGTH: u8 = 0x04;
    /// A field value is undefined or out of the device's range.
    pub const INVALID_ARGUMENT: u8 = 0x05;
    /// The channel (or a bit of the channel mask) is not below `channel_count`.
    pub const INVALID_CHANNEL: u8 = 0x06;
    /// Not allowed in the current state (e.g. `ConfigureChannel` while armed).
    pub const BUSY: u8 = 0x07;
}

/// A message type that travels in a frame: implemented by [`HostMessage`] and
/// [`DeviceMessage`], and what [`FrameDecoder`](crate::FrameDecoder) decodes.
pub trait Message: Sized {
    /// The message id byte (see [`id`]).
    fn id(&self) -> u8;
    /// Writes version, id and fields into `out`; returns the payload length.
    fn to_payload(&self, out: &mut [u8; MAX_PAYLOAD_LEN]) -> usize;
    /// Parses a CRC-checked payload (version, id, fields).
    fn from_payload(payload: &[u8]) -> Result<Self, DecodeError>;
}

/// Which input transitions a channel counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Edges {
    /// One Edge per rising edge, `width_ticks` = 0.
    Rising = 1,
    /// One Edge per falling edge (inverted outputs), `width_ticks` = 0.
    Falling = 2,
    /// One Edge per pulse: rising edge timestamp plus the pulse width.
    Both = 3,
}

/// Commands from the host to the counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostMessage {
    /// Asks for [`DeviceMessage::Hello`].
    GetHello,
    /// Sets a channel's edge selection and glitch filter (refused while armed).
    ConfigureChannel {
        /// Channel number, 0-based.
        channel: u8,
        /// Edges to count.
        edges: Edges,
        /// Pulses shorter than this many timebase ticks are ignored.
        glitch_filter_ticks: u32,
    },
    /// Starts counting on the channels of the mask; restarts the timebase at 0,
    /// the sequence at 1 and `dropped_events` at 0, and discards unsent Edges
    /// of the previous arming. Every frame after its Ack belongs to this arming.
    Arm {
        /// Bit `n` enables channel `n`.
        channel_mask: u32,
    },
    /// Stops counting; the queued Edges are sent before its Ack, heartbeats go on.
    Disarm,
    /// Asks for [`DeviceMessage::Pong`] once every Edge timestamped before the
    /// Ping has been sent: the host's flush.
    Ping {
        /// Echoed in the Pong.
        token: u32,
    },
}

/// Identity and capabilities of the counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hello {
    /// Protocol version the firmware speaks (equals the header byte; kept so a
    /// logged Hello is self-describing).
    pub protocol_version: u8,
    /// Firmware (major, minor, patch).
    pub firmware_version: (u8, u8, u8),
    /// ASCII serial number, zero padded.
    pub serial_number: [u8; 16],
    /// Timebase frequency: ticks per second of every `timestamp_ticks`.
    pub timebase_hz: u32,
    /// Number of pulse inputs (at most 32); channels are `0..channel_count`.
    pub channel_count: u8,
    /// The board has a reference-frequency input (`ref_count` is meaningful).
    pub reference_input: bool,
    /// The timebase can run on an external 10 MHz reference.
    pub external_clock: bool,
}

impl Hello {
    /// The serial number without its zero padding, if it is valid ASCII.
    pub fn serial_number_str(&self) -> Option<&str> {
        let end = self
            .serial_number
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(16);
        core::str::from_utf8(&self.serial_number[..end])
            .ok()
            .filter(|s| s.is_ascii())
    }
}

/// One counted pulse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Edge {
    /// 1 for the first Edge after Arm, then +1 per Edge (mod 2^32).
    pub sequence: u32,
    /// Channel number, 0-based.
    pub channel: u8,
    /// Timebase ticks since Arm at the pulse's leading edge (rising, or falling
    /// for [`Edges::Falling`]).
    pub timestamp_ticks: u64,
    /// Ticks from rising to falling edge; 0 = falling edge not seen (yet).
    pub width_ticks: u32,
    /// Reference-frequency count latched at the leading edge.
    pub ref_count: u64,
    /// See [`edge_flags`].
    pub flags: u8,
}

/// Periodic status, every [`HEARTBEAT_PERIOD_MS`](crate::HEARTBEAT_PERIOD_MS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Heartbeat {
    /// Sequence of the last Edge sent (0 if none since Arm).
    pub sequence: u32,
    /// Timebase ticks now.
    pub timestamp_ticks: u64,
    /// Reference-frequency count now.
    pub ref_count: u64,
    /// Events the device could not queue since Arm (cumulative).
    pub dropped_events: u32,
    /// See [`heartbeat_flags`].
    pub flags: u8,
}

/// Answer to [`HostMessage::Ping`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pong {
    /// The Ping's token.
    pub token: u32,
    /// Timebase ticks when the Ping was received.
    pub timestamp_ticks: u64,
    /// Sequence of the last Edge sent before this Pong (0 if none since Arm).
    pub last_sequence: u32,
}

/// Messages from the counter to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceMessage {
    /// Answer to GetHello.
    Hello(Hello),
    /// A counted pulse.
    Edge(Edge),
    /// Periodic status.
    Heartbeat(Heartbeat),
    /// Answer to Ping.
    Pong(Pong),
    /// The command with this id was carried out.
    Ack {
        /// Id of the acknowledged command.
        message_id: u8,
    },
    /// The command with this id was refused.
    Nak {
        /// Id of the refused command (0 if the frame was unreadable).
        message_id: u8,
        /// Reason, see [`nak`].
        code: u8,
    },
}

impl DeviceMessage {
    /// The Nak the firmware answers a host frame with when decoding failed.
    pub fn nak_for(err: &DecodeError) -> Self {
        let (message_id, code) = match *err {
            DecodeError::Framing
            | DecodeError::Oversize { .. }
            | DecodeError::TooShort { .. }
            | DecodeError::BadCrc { .. } => (0, nak::BAD_FRAME),
            DecodeError::UnsupportedVersion { message_id, .. } => {
                (message_id, nak::UNSUPPORTED_VERSION)
            }
            DecodeError::UnknownMessage { message_id } => (message_id, nak::UNKNOWN_MESSAGE),
            DecodeError::BadLength { message_id, .. } => (message_id, nak::BAD_LENGTH),
            DecodeError::InvalidField { message_id } => (message_id, nak::INVALID_ARGUMENT),
        };
        Self::Nak { message_id, code }
    }
}

impl Message for HostMessage {
    fn id(&self) -> u8 {
        match self {
            Self::GetHello => id::GET_HELLO,
            Self::ConfigureChannel { .. } => id::CONFIGURE_CHANNEL,
            Self::Arm { .. } => id::ARM,
            Self::Disarm => id::DISARM,
            Self::Ping { .. } => id::PING,
        }
    }

    fn to_payload(&self, out: &mut [u8; MAX_PAYLOAD_LEN]) -> usize {
        let mut w = Writer::new(out, self.id());
        match *self {
            Self::GetHello | Self::Disarm => {}
            Self::ConfigureChannel {
                channel,
                edges,
                glitch_filter_ticks,
            } => {
                w.put(&[channel, edges as u8]);
                w.put(&glitch_filter_ticks.to_le_bytes());
            }
            Self::Arm { channel_mask } => w.put(&channel_mask.to_le_bytes()),
            Self::Ping { token } => w.put(&token.to_le_bytes()),
        }
        w.len
    }

    fn from_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload)?;
        let msg = match r.id {
            id::GET_HELLO => Self::GetHello,
            id::CONFIGURE_CHANNEL => Self::ConfigureChannel {
                channel: r.u8()?,
                edges: match r.u8()? {
                    1 => Edges::Rising,
                    2 => Edges::Falling,
                    3 => Edges::Both,
                    _ => return Err(DecodeError::InvalidField { message_id: r.id }),
                },
                glitch_filter_ticks: r.u32()?,
            },
            id::ARM => Self::Arm {
                channel_mask: r.u32()?,
            },
            id::DISARM => Self::Disarm,
            id::PING => Self::Ping { token: r.u32()? },
            message_id => return Err(DecodeError::UnknownMessage { message_id }),
        };
        r.finish(msg)
    }
}

impl Message for DeviceMessage {
    fn id(&self) -> u8 {
        match self {
            Self::Hello(_) => id::HELLO,
            Self::Edge(_) => id::EDGE,
            Self::Heartbeat(_) => id::HEARTBEAT,
            Self::Pong(_) => id::PONG,
            Self::Ack { .. } => id::ACK,
            Self::Nak { .. } => id::NAK,
        }
    }

    fn to_payload(&self, out: &mut [u8; MAX_PAYLOAD_LEN]) -> usize {
        let mut w = Writer::new(out, self.id());
        match *self {
            Self::Hello(h) => {
                let (major, minor, patch) = h.firmware_version;
                w.put(&[h.protocol_version, major, minor, patch]);
                w.put(&h.serial_number);
                w.put(&h.timebase_hz.to_le_bytes());
                let caps = u8::from(h.reference_input) | u8::from(h.external_clock) << 1;
                w.put(&[h.channel_count, caps]);
            }
            Self::Edge(e) => {
                w.put(&e.sequence.to_le_bytes());
                w.put(&[e.channel]);
                w.put(&e.timestamp_ticks.to_le_bytes());
                w.put(&e.width_ticks.to_le_bytes());
                w.put(&e.ref_count.to_le_bytes());
                w.put(&[e.flags]);
            }
            Self::Heartbeat(h) => {
                w.put(&h.sequence.to_le_bytes());
                w.put(&h.timestamp_ticks.to_le_bytes());
                w.put(&h.ref_count.to_le_bytes());
                w.put(&h.dropped_events.to_le_bytes());
                w.put(&[h.flags]);
            }
            Self::Pong(p) => {
                w.put(&p.token.to_le_bytes());
                w.put(&p.timestamp_ticks.to_le_bytes());
                w.put(&p.last_sequence.to_le_bytes());
            }
            Self::Ack { message_id } => w.put(&[message_id]),
            Self::Nak { message_id, code } => w.put(&[message_id, code]),
        }
        w.len
    }

    fn from_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload)?;
        let msg = match r.id {
            id::HELLO => {
                let protocol_version = r.u8()?;
                let firmware_version = (r.u8()?, r.u8()?, r.u8()?);
                let serial_number = r.take()?;
                let timebase_hz = r.u32()?;
                let channel_count = r.u8()?;
                // Undefined capability bits are ignored, as PROTOCOL.md says.
                let caps = r.u8()?;
                Self::Hello(Hello {
                    protocol_version,
                    firmware_version,
                    serial_number,
                    timebase_hz,
                    channel_count,
                    reference_input: caps & 0x01 != 0,
                    external_clock: caps & 0x02 != 0,
                })
            }
            id::EDGE => Self::Edge(Edge {
                sequence: r.u32()?,
                channel: r.u8()?,
                timestamp_ticks: r.u64()?,
                width_ticks: r.u32()?,
                ref_count: r.u64()?,
                flags: r.u8()?,
            }),
            id::HEARTBEAT => Self::Heartbeat(Heartbeat {
                sequence: r.u32()?,
                timestamp_ticks: r.u64()?,
                ref_count: r.u64()?,
                dropped_events: r.u32()?,
                flags: r.u8()?,
            }),
            id::PONG => Self::Pong(Pong {
                token: r.u32()?,
                timestamp_ticks: r.u64()?,
                last_sequence: r.u32()?,
            }),
            id::ACK => Self::Ack {
                message_id: r.u8()?,
            },
            id::NAK => Self::Nak {
                message_id: r.u8()?,
                code: r.u8()?,
            },
            message_id => return Err(DecodeError::UnknownMessage { message_id }),
        };
        r.finish(msg)
    }
}

/// Appends to a payload buffer. Every message is far below
/// [`MAX_PAYLOAD_LEN`], so the slice indexing cannot go out of bounds (the
/// round-trip tests encode every variant).
struct Writer<'a> {
    out: &'a mut [u8; MAX_PAYLOAD_LEN],
    len: usize,
}

impl<'a> Writer<'a> {
    fn new(out: &'a mut [u8; MAX_PAYLOAD_LEN], id: u8) -> Self {
        out[0] = PROTOCOL_VERSION;
        out[1] = id;
        Self { out, len: 2 }
    }

    fn put(&mut self, bytes: &[u8]) {
        self.out[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }
}

/// Reads fields after checking the header; running short or leaving bytes
/// over is a [`DecodeError::BadLength`], so each layout is written down once.
struct Reader<'a> {
    id: u8,
    len: usize,
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(payload: &'a [u8]) -> Result<Self, DecodeError> {
        let [version, id, rest @ ..] = payload else {
            return Err(DecodeError::TooShort { len: payload.len() });
        };
        if *version != PROTOCOL_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                version: *version,
                message_id: *id,
            });
        }
        Ok(Self {
            id: *id,
            len: payload.len(),
            rest,
        })
    }

    fn bad_length(&self) -> DecodeError {
        DecodeError::BadLength {
            message_id: self.id,
            len: self.len,
        }
    }

    fn take<const K: usize>(&mut self) -> Result<[u8; K], DecodeError> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<K>()
            .ok_or_else(|| self.bad_length())?;
        self.rest = rest;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        self.take::<1>().map(|[b]| b)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        self.take().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.take().map(u64::from_le_bytes)
    }

    fn finish<T>(self, msg: T) -> Result<T, DecodeError> {
        if self.rest.is_empty() {
            Ok(msg)
        } else {
            Err(self.bad_length())
        }
    }
}
