//! Timing logic of the meterbench pulse counter firmware (`hw/pulse-counter`).
//!
//! Everything here is `no_std`, allocation-free and free of hardware access, so it
//! builds for the RP2040 (`thumbv6m-none-eabi`) and is unit-tested on the host. The
//! firmware binary only moves data between the hardware and these types:
//!
//! ```text
//! core 1:  PIO word ─capture::decode_word─► (polarity, 31-bit count) ─extend::extend_near─► 64-bit ticks
//!          PWM count ─extend::WrapExtender─► 64-bit reference count (latched per word)
//!          ─► pairing::RawEdge ─ring::WordRing (lock-free, core 1 → core 0)─►
//! core 0:  engine::Engine ─ pairing::ChannelTracker (glitch filter, rising + falling → pulse)
//!                         ─ queue::EdgeQueue (sequence numbers, drop counting)
//!                         ─ output::Output (one ordered stream: Edges, Acks, Pongs, Heartbeats)
//!          ─encode::encode_message─► frame bytes ─encode::PacketPacker─► 64-byte USB packets
//! ```
//!
//! [`engine::Engine`] ties the pieces together and implements the device side of
//! `hw/pulse-counter/PROTOCOL.md`.
#![no_std]

pub mod capture;
pub mod clock;
pub mod encode;
pub mod engine;
pub mod extend;
pub mod output;
pub mod pairing;
pub mod queue;
pub mod ring;
pub mod seq;

pub use meterbench_counter_protocol as protocol;

/// Number of photodiode channels of the counter (one PIO state machine each).
pub const CHANNEL_COUNT: usize = 8;
