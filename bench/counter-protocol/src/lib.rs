//! Wire protocol of the meterbench pulse counter (`hw/pulse-counter`).
//!
//! One crate for both ends of the USB CDC-ACM link: the host driver encodes
//! [`HostMessage`]s and decodes [`DeviceMessage`]s, the RP2040 firmware does the
//! reverse. It is `no_std` without `alloc` because the firmware has no heap:
//! encoding writes into caller buffers and [`FrameDecoder`] owns a fixed buffer.
//!
//! The normative description (byte layouts, CRC, versioning, sequence and loss
//! semantics, heartbeat timing) is `hw/pulse-counter/PROTOCOL.md`; keep the two
//! in step.
//!
//! ```
//! use meterbench_counter_protocol::{encode, FrameDecoder, HostMessage, MAX_FRAME_LEN};
//!
//! let mut wire = [0u8; MAX_FRAME_LEN];
//! let n = encode(&HostMessage::Ping { token: 7 }, &mut wire).unwrap();
//!
//! // The firmware side: bytes arrive one at a time, messages come out.
//! let mut decoder = FrameDecoder::<HostMessage>::new();
//! let got: Vec<_> = wire[..n].iter().filter_map(|&b| decoder.push(b)).collect();
//! assert_eq!(got, [Ok(HostMessage::Ping { token: 7 })]);
//! ```
#![no_std]

mod frame;
mod message;
mod sequence;

pub use frame::{
    CRC, CRC_LEN, DEFAULT_DECODE_CAPACITY, DecodeError, EncodeError, FrameDecoder, MAX_FRAME_LEN,
    MAX_PAYLOAD_LEN, encode, encode_frame,
};
pub use message::{
    DeviceMessage, Edge, Edges, Heartbeat, Hello, HostMessage, Message, Pong, edge_flags,
    heartbeat_flags, id, nak,
};
pub use sequence::{SequenceError, SequenceTracker};

/// Protocol version carried in byte 0 of every payload. Bump it on any change
/// to a byte layout or a message's meaning (see PROTOCOL.md, "Versioning").
pub const PROTOCOL_VERSION: u8 = 1;

/// The device sends a [`Heartbeat`] this often, armed or not.
pub const HEARTBEAT_PERIOD_MS: u32 = 100;

/// The host declares the link lost when no frame at all arrived for this long
/// (five heartbeat periods: USB full-speed scheduling jitter plus a missed beat
/// or two must not abort a run, a dead device must be noticed within a second).
pub const LINK_TIMEOUT_MS: u32 = 5 * HEARTBEAT_PERIOD_MS;
