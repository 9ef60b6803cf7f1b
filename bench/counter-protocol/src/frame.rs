//! Framing: payload ‖ CRC-32 (little-endian), COBS-encoded, 0x00-terminated.

use core::marker::PhantomData;

use cobs::{DecodeResult, DecoderState};
use crc::{CRC_32_ISO_HDLC, Crc};

use crate::message::Message;

/// Longest payload (version byte + message id + fields, without CRC) a
/// conforming sender may put in one frame. The largest message today is 28
/// bytes; the headroom lets a later protocol version grow without changing
/// buffer sizes in deployed firmware.
pub const MAX_PAYLOAD_LEN: usize = 64;

/// Length of the CRC trailer.
pub const CRC_LEN: usize = 4;

/// Default capacity of a [`FrameDecoder`]: the longest payload plus its CRC.
pub const DEFAULT_DECODE_CAPACITY: usize = MAX_PAYLOAD_LEN + CRC_LEN;

/// A buffer of this many bytes always holds one encoded frame, delimiter included.
pub const MAX_FRAME_LEN: usize = cobs::max_encoding_length(DEFAULT_DECODE_CAPACITY) + 1;

/// CRC-32/ISO-HDLC (the Ethernet/zlib CRC: poly 0x04C11DB7 reflected, init and
/// xorout 0xFFFFFFFF, check value 0xCBF43926), computed over the payload.
pub const CRC: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// Why a message could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The output buffer is shorter than the frame; [`MAX_FRAME_LEN`] always suffices.
    #[error("output buffer too small: the frame needs {needed} bytes")]
    BufferTooSmall {
        /// Bytes the frame needs, delimiter included.
        needed: usize,
    },
    /// A raw payload longer than [`MAX_PAYLOAD_LEN`] was passed to [`encode_frame`].
    #[error("payload of {len} bytes exceeds the protocol limit of {MAX_PAYLOAD_LEN} bytes")]
    PayloadTooLong {
        /// Length of the rejected payload.
        len: usize,
    },
}

/// Why received bytes did not yield a message. Every variant is reported once,
/// at the 0x00 delimiter that ends the bad frame; the decoder is then ready for
/// the next frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A delimiter arrived inside a COBS block: the frame was cut short or the
    /// bytes were line noise.
    #[error("broken COBS framing (truncated frame or line noise)")]
    Framing,
    /// More decoded bytes arrived before the delimiter than the decoder holds.
    #[error("frame longer than the decoder's {capacity} bytes")]
    Oversize {
        /// The decoder's capacity (payload + CRC).
        capacity: usize,
    },
    /// The frame is too short to hold version, message id and CRC.
    #[error("frame of {len} bytes is too short to be a message")]
    TooShort {
        /// Decoded length, CRC included.
        len: usize,
    },
    /// The CRC does not match the payload: the frame was corrupted.
    #[error("CRC mismatch: frame says {received:#010x}, payload gives {computed:#010x}")]
    BadCrc {
        /// CRC carried by the frame.
        received: u32,
        /// CRC computed over the received payload.
        computed: u32,
    },
    /// The peer speaks another protocol version.
    #[error(
        "peer speaks protocol version {version} (message {message_id:#04x}), this side speaks {}: update the firmware or the host software",
        crate::PROTOCOL_VERSION
    )]
    UnsupportedVersion {
        /// Version byte received.
        version: u8,
        /// Message id received alongside it.
        message_id: u8,
    },
    /// The message id is not defined for this direction.
    #[error("unknown message id {message_id:#04x}")]
    UnknownMessage {
        /// The id received.
        message_id: u8,
    },
    /// The payload length does not match the message's fixed layout.
    #[error(
        "message {message_id:#04x} has a payload of {len} bytes, which does not match its layout"
    )]
    BadLength {
        /// The id received.
        message_id: u8,
        /// Payload length received (version and id included, CRC excluded).
        len: usize,
    },
    /// A field holds a value the protocol does not define (e.g. an `Edges` code).
    #[error("message {message_id:#04x} carries an undefined field value")]
    InvalidField {
        /// The id received.
        message_id: u8,
    },
}

/// Encodes `msg` as one complete frame (COBS, CRC, trailing 0x00) into `out`
/// and returns the number of bytes written.
pub fn encode<M: Message>(msg: &M, out: &mut [u8]) -> Result<usize, EncodeError> {
    let mut payload = [0u8; MAX_PAYLOAD_LEN];
    let len = msg.to_payload(&mut payload);
    encode_frame(&payload[..len], out)
}

/// Frames a raw payload (version, id and fields). Meant for tests and fault
/// injection in simulators; normal code uses [`encode`].
pub fn encode_frame(payload: &[u8], out: &mut [u8]) -> Result<usize, EncodeError> {
    let len = payload.len();
    if len > MAX_PAYLOAD_LEN {
        return Err(EncodeError::PayloadTooLong { len });
    }
    // Exact for frames under 254 bytes, where COBS adds exactly one byte.
    let needed = cobs::max_encoding_length(len + CRC_LEN) + 1;
    if out.len() < needed {
        return Err(EncodeError::BufferTooSmall { needed });
    }
    let mut raw = [0u8; DEFAULT_DECODE_CAPACITY];
    raw[..len].copy_from_slice(payload);
    raw[len..len + CRC_LEN].copy_from_slice(&CRC.checksum(payload).to_le_bytes());
    let n = cobs::try_encode(&raw[..len + CRC_LEN], out)
        .map_err(|_| EncodeError::BufferTooSmall { needed })?;
    *out.get_mut(n)
        .ok_or(EncodeError::BufferTooSmall { needed })? = 0;
    Ok(n + 1)
}

/// Streaming frame decoder with a fixed buffer of `N` decoded bytes (payload +
/// CRC), decoding messages of type `M` ([`crate::DeviceMessage`] on the host,
/// [`crate::HostMessage`] in the firmware).
///
/// Feed it every received byte. Every run of non-zero bytes closed by a 0x00
/// yields exactly one result, good or bad, so nothing is dropped without an
/// error; empty runs (repeated delimiters) yield nothing, which is why each
/// side opens a session with a lone 0x00 to flush a half-received frame at
/// the other end. It never panics and resynchronises on the next delimiter
/// after any error.
#[derive(Debug)]
pub struct FrameDecoder<M, const N: usize = DEFAULT_DECODE_CAPACITY> {
    cobs: DecoderState,
    buf: [u8; N],
    len: usize,
    overflow: bool,
    message: PhantomData<fn() -> M>,
}

impl<M: Message, const N: usize> Default for FrameDecoder<M, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: Message, const N: usize> FrameDecoder<M, N> {
    /// A decoder waiting for the start of a frame.
    pub fn new() -> Self {
        Self {
            cobs: DecoderState::Idle,
            buf: [0; N],
            len: 0,
            overflow: false,
            message: PhantomData,
        }
    }

    /// Feeds one received byte; returns a result when the byte closed a frame.
    pub fn push(&mut self, byte: u8) -> Option<Result<M, DecodeError>> {
        self.push_payload(byte)
            .map(|payload| payload.and_then(M::from_payload))
    }

    /// Like [`push`](Self::push) but stops after the CRC check and returns the
    /// raw payload (version, id, fields), for logging and protocol analysers.
    pub fn push_payload(&mut self, byte: u8) -> Option<Result<&[u8], DecodeError>> {
        match self.cobs.feed(byte) {
            Ok(DecodeResult::NoData) => None,
            Ok(DecodeResult::DataStart) => {
                self.len = 0;
                self.overflow = false;
                None
            }
            Ok(DecodeResult::DataContinue(b)) => {
                // Keep consuming an oversize frame up to its delimiter so the
                // error comes out once, where the next frame starts.
                match self.buf.get_mut(self.len) {
                    Some(slot) => {
                        *slot = b;
                        self.len += 1;
                    }
                    None => self.overflow = true,
                }
                None
            }
            Ok(DecodeResult::DataComplete) => Some(self.check()),
            // The COBS state machine only fails on a 0x00, so this error is
            // also the resynchronisation point.
            Err(_) if self.overflow => Some(Err(DecodeError::Oversize { capacity: N })),
            Err(_) => Some(Err(DecodeError::Framing)),
        }
    }

    fn check(&self) -> Result<&[u8], DecodeError> {
        if self.overflow {
            return Err(DecodeError::Oversize { capacity: N });
        }
        let frame = &self.buf[..self.len];
        let Some((payload, crc)) = frame.split_last_chunk::<CRC_LEN>() else {
            return Err(DecodeError::TooShort { len: frame.len() });
        };
        if payload.len() < 2 {
            return Err(DecodeError::TooShort { len: frame.len() });
        }
        let received = u32::from_le_bytes(*crc);
        let computed = CRC.checksum(payload);
        if received != computed {
            return Err(DecodeError::BadCrc { received, computed });
        }
        Ok(payload)
    }
}
