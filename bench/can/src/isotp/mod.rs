//! ISO-TP (ISO 15765-2) on classic CAN with normal addressing: messages of
//! up to 4095 bytes (and, with the 2016 escape, beyond) cut into a single
//! frame, or a first frame and consecutive frames paced by flow control.
//!
//! [`Transmitter`] and [`Receiver`] are pure state machines over frame
//! payloads; [`IsoTpClient`] (tester side) and [`IsoTpServer`] (ECU side, for
//! simulated meters) run them blocking over any [`CanBus`](crate::CanBus).
//!
//! Where the standard says to ignore an unexpected frame, this stack reports
//! it as an error instead: on a bench, a stray frame on the meter's response
//! id is a wiring or configuration fault worth seeing.

mod link;
mod rx;
mod tx;

pub use link::{IsoTpClient, IsoTpServer, Request};
pub use rx::{Receiver, RxEvent};
pub use tx::{FlowOutcome, Transmitter, TxStep};

use std::fmt;
use std::time::Duration;

use crate::bus::CanError;
use crate::frame::CanId;
use crate::util::{hex, human};

/// Largest message length a classic first frame's 12-bit field can carry.
pub const MAX_SHORT_LEN: usize = 4095;

/// Minimum separation time between consecutive frames, as its raw byte:
/// `0x00`–`0x7F` milliseconds, `0xF1`–`0xF9` 100–900 µs. Reserved values
/// mean 127 ms (ISO 15765-2 tells the sender to assume the longest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct StMin(u8);

impl StMin {
    pub const ZERO: StMin = StMin(0);

    pub const fn from_raw(raw: u8) -> Self {
        Self(raw)
    }

    pub const fn raw(self) -> u8 {
        self.0
    }

    /// The shortest encodable separation at least `duration` long (capped at
    /// 127 ms).
    pub fn from_duration(duration: Duration) -> Self {
        let micros = duration.as_micros();
        match micros {
            0 => Self(0),
            1..=900 => Self(0xF0 + micros.div_ceil(100) as u8),
            _ => Self(micros.div_ceil(1000).min(0x7F) as u8),
        }
    }

    pub fn duration(self) -> Duration {
        match self.0 {
            ms @ 0..=0x7F => Duration::from_millis(u64::from(ms)),
            us @ 0xF1..=0xF9 => Duration::from_micros(u64::from(us - 0xF0) * 100),
            _ => Duration::from_millis(0x7F),
        }
    }
}

/// Flow status of a flow-control frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowStatus {
    ContinueToSend,
    Wait,
    Overflow,
}

/// A flow-control frame's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowControl {
    pub status: FlowStatus,
    /// Consecutive frames before the next flow control; 0 = all of them.
    pub block_size: u8,
    pub st_min: StMin,
}

impl FlowControl {
    pub fn continue_to_send(block_size: u8, st_min: StMin) -> Self {
        Self {
            status: FlowStatus::ContinueToSend,
            block_size,
            st_min,
        }
    }

    pub fn overflow() -> Self {
        Self {
            status: FlowStatus::Overflow,
            block_size: 0,
            st_min: StMin::ZERO,
        }
    }

    /// The frame payload: `3s bs st`, padded to 8 bytes if `padding` is set.
    pub fn encode(&self, padding: Option<u8>) -> Vec<u8> {
        let status = match self.status {
            FlowStatus::ContinueToSend => 0,
            FlowStatus::Wait => 1,
            FlowStatus::Overflow => 2,
        };
        pad(
            vec![0x30 | status, self.block_size, self.st_min.raw()],
            padding,
        )
    }
}

pub(crate) fn pad(mut payload: Vec<u8>, padding: Option<u8>) -> Vec<u8> {
    if let Some(byte) = padding {
        payload.resize(8, byte);
    }
    payload
}

/// The four ISO-TP frame types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PduKind {
    Single,
    First,
    Consecutive,
    FlowControl,
}

impl fmt::Display for PduKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PduKind::Single => "single frame",
            PduKind::First => "first frame",
            PduKind::Consecutive => "consecutive frame",
            PduKind::FlowControl => "flow control frame",
        })
    }
}

/// A decoded ISO-TP frame, borrowing the CAN payload. Consecutive-frame
/// data still includes any padding; only the receiver knows where the
/// message ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pdu<'a> {
    Single(&'a [u8]),
    First { len: u32, data: &'a [u8] },
    Consecutive { sn: u8, data: &'a [u8] },
    FlowControl(FlowControl),
}

impl<'a> Pdu<'a> {
    pub fn decode(payload: &'a [u8]) -> Result<Self, IsoTpError> {
        let invalid = |reason: String| IsoTpError::InvalidFrame {
            frame: payload.to_vec(),
            reason,
        };
        let Some(&pci) = payload.first() else {
            return Err(invalid("empty CAN frame".into()));
        };
        let low = pci & 0x0F;
        match pci >> 4 {
            0 => {
                let len = usize::from(low);
                if len == 0 {
                    return Err(invalid(
                        "single frame of length 0 (the long form is CAN FD only)".into(),
                    ));
                }
                if len > payload.len() - 1 {
                    return Err(invalid(format!(
                        "single frame announces {len} bytes but carries {}",
                        payload.len() - 1
                    )));
                }
                Ok(Pdu::Single(&payload[1..=len]))
            }
            1 => {
                if payload.len() < 8 {
                    return Err(invalid("first frame shorter than 8 bytes".into()));
                }
                let short = u32::from(low) << 8 | u32::from(payload[1]);
                if short != 0 {
                    if short < 8 {
                        return Err(invalid(format!(
                            "first frame announces {short} bytes, which fit a single frame"
                        )));
                    }
                    return Ok(Pdu::First {
                        len: short,
                        data: &payload[2..],
                    });
                }
                // ISO 15765-2:2016 escape: a 32-bit length for messages > 4095 bytes.
                let len = u32::from_be_bytes([payload[2], payload[3], payload[4], payload[5]]);
                if len as usize <= MAX_SHORT_LEN {
                    return Err(invalid(format!(
                        "escaped first frame announces {len} bytes, which fit the short form"
                    )));
                }
                Ok(Pdu::First {
                    len,
                    data: &payload[6..],
                })
            }
            2 => Ok(Pdu::Consecutive {
                sn: low,
                data: &payload[1..],
            }),
            3 => {
                if payload.len() < 3 {
                    return Err(invalid("flow control shorter than 3 bytes".into()));
                }
                let status = match low {
                    0 => FlowStatus::ContinueToSend,
                    1 => FlowStatus::Wait,
                    2 => FlowStatus::Overflow,
                    other => return Err(invalid(format!("reserved flow status {other}"))),
                };
                Ok(Pdu::FlowControl(FlowControl {
                    status,
                    block_size: payload[1],
                    st_min: StMin(payload[2]),
                }))
            }
            other => Err(invalid(format!("unknown frame type {other:#X}"))),
        }
    }

    pub fn kind(&self) -> PduKind {
        match self {
            Pdu::Single(_) => PduKind::Single,
            Pdu::First { .. } => PduKind::First,
            Pdu::Consecutive { .. } => PduKind::Consecutive,
            Pdu::FlowControl(_) => PduKind::FlowControl,
        }
    }
}

/// Settings of one ISO-TP endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoTpConfig {
    /// Fill byte for frames shorter than 8 bytes (`0xCC`, `0xAA`, …), or
    /// `None` to send frames of minimal length. Received frames are accepted
    /// either way.
    pub padding: Option<u8>,
    /// Block size we ask a sender for when receiving; 0 = no further flow
    /// control after the first.
    pub block_size: u8,
    /// Separation we ask a sender for when receiving.
    pub st_min: StMin,
    /// N_Bs: how long a sender waits for flow control.
    pub n_bs: Duration,
    /// N_Cr: how long a receiver waits for the next consecutive frame.
    pub n_cr: Duration,
    /// N_WFTmax: WAIT flow controls accepted in a row.
    pub max_wait_frames: u16,
    /// Longest message we accept; longer first frames are answered OVERFLOW.
    pub max_message_len: usize,
}

impl Default for IsoTpConfig {
    /// Padding 0xCC, BS 0, STmin 0, N_Bs and N_Cr 1 s (the ISO 15765-2
    /// timeouts), N_WFTmax 10, messages up to 4095 bytes.
    fn default() -> Self {
        Self {
            padding: Some(0xCC),
            block_size: 0,
            st_min: StMin::ZERO,
            n_bs: Duration::from_secs(1),
            n_cr: Duration::from_secs(1),
            max_wait_frames: 10,
            max_message_len: MAX_SHORT_LEN,
        }
    }
}

/// The CAN ids of one ISO-TP connection, seen from one end: a tester sends
/// on the request id and receives on the response id; the ECU the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IsoTpAddress {
    pub tx_id: CanId,
    pub rx_id: CanId,
}

impl IsoTpAddress {
    pub fn new(tx_id: CanId, rx_id: CanId) -> Self {
        Self { tx_id, rx_id }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IsoTpError {
    #[error(transparent)]
    Bus(#[from] CanError),
    #[error("cannot send an empty ISO-TP message")]
    EmptyMessage,
    #[error("a message of {len} bytes is longer than the {max} bytes accepted")]
    MessageTooLong { len: usize, max: usize },
    #[error("invalid ISO-TP frame [{}]: {reason}", hex(.frame))]
    InvalidFrame { frame: Vec<u8>, reason: String },
    #[error("unexpected {got} [{}] while {context}", hex(.frame))]
    UnexpectedFrame {
        got: PduKind,
        frame: Vec<u8>,
        context: String,
    },
    #[error(
        "wrong sequence number in consecutive frame: expected {expected}, got {got} \
         (after {received} of {total} bytes)"
    )]
    WrongSequenceNumber {
        expected: u8,
        got: u8,
        received: usize,
        total: usize,
    },
    #[error("no flow control within {} (N_Bs) after sending {sent} of {total} bytes", human(.timeout))]
    FlowControlTimeout {
        timeout: Duration,
        sent: usize,
        total: usize,
    },
    #[error(
        "no consecutive frame within {} (N_Cr) after receiving {received} of {total} bytes",
        human(.timeout)
    )]
    ConsecutiveFrameTimeout {
        timeout: Duration,
        received: usize,
        total: usize,
    },
    #[error("the receiver answered flow status OVERFLOW: a {len}-byte message is too long for it")]
    Overflow { len: usize },
    #[error("the receiver sent more than {max} WAIT flow controls in a row (N_WFTmax)")]
    TooManyWaits { max: u16 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn st_min_encodes_milliseconds_and_hundreds_of_microseconds() {
        assert_eq!(StMin::from_raw(0x00).duration(), Duration::ZERO);
        assert_eq!(StMin::from_raw(0x7F).duration(), Duration::from_millis(127));
        assert_eq!(StMin::from_raw(0xF1).duration(), Duration::from_micros(100));
        assert_eq!(StMin::from_raw(0xF9).duration(), Duration::from_micros(900));
        for reserved in [0x80, 0xF0, 0xFA, 0xFF] {
            assert_eq!(
                StMin::from_raw(reserved).duration(),
                Duration::from_millis(127)
            );
        }
        assert_eq!(StMin::from_duration(Duration::from_micros(250)).raw(), 0xF3);
        assert_eq!(StMin::from_duration(Duration::from_micros(900)).raw(), 0xF9);
        assert_eq!(StMin::from_duration(Duration::from_micros(950)).raw(), 0x01);
        assert_eq!(StMin::from_duration(Duration::from_millis(20)).raw(), 20);
        assert_eq!(StMin::from_duration(Duration::from_secs(1)).raw(), 0x7F);
        for raw in (0..=0x7F).chain(0xF1..=0xF9) {
            let st = StMin::from_raw(raw);
            assert_eq!(StMin::from_duration(st.duration()), st);
        }
    }

    #[test]
    fn frames_decode() {
        assert_eq!(
            Pdu::decode(&[0x03, 0x22, 0xF1, 0x90, 0xCC, 0xCC, 0xCC, 0xCC]).unwrap(),
            Pdu::Single(&[0x22, 0xF1, 0x90])
        );
        assert_eq!(
            Pdu::decode(&[0x10, 0x43, 1, 2, 3, 4, 5, 6]).unwrap(),
            Pdu::First {
                len: 0x43,
                data: &[1, 2, 3, 4, 5, 6]
            }
        );
        assert_eq!(
            Pdu::decode(&[0x10, 0x00, 0x00, 0x00, 0x10, 0x00, 7, 8]).unwrap(),
            Pdu::First {
                len: 0x1000,
                data: &[7, 8]
            }
        );
        assert_eq!(
            Pdu::decode(&[0x2F, 1]).unwrap(),
            Pdu::Consecutive { sn: 15, data: &[1] }
        );
        assert_eq!(
            Pdu::decode(&[0x31, 0x04, 0xF5]).unwrap(),
            Pdu::FlowControl(FlowControl {
                status: FlowStatus::Wait,
                block_size: 4,
                st_min: StMin::from_raw(0xF5)
            })
        );
    }

    #[test]
    fn malformed_frames_are_explained() {
        let reason = |payload: &[u8]| match Pdu::decode(payload) {
            Err(IsoTpError::InvalidFrame { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(reason(&[]), "empty CAN frame");
        assert!(reason(&[0x00, 1]).contains("length 0"));
        assert_eq!(
            reason(&[0x05, 1, 2]),
            "single frame announces 5 bytes but carries 2"
        );
        assert_eq!(reason(&[0x10, 0x20, 1]), "first frame shorter than 8 bytes");
        assert!(reason(&[0x10, 0x05, 1, 2, 3, 4, 5, 6]).contains("fit a single frame"));
        assert!(reason(&[0x10, 0, 0, 0, 0x0F, 0xFF, 1, 2]).contains("short form"));
        assert_eq!(reason(&[0x33, 0, 0]), "reserved flow status 3");
        assert_eq!(reason(&[0x30, 0]), "flow control shorter than 3 bytes");
        assert_eq!(reason(&[0x40]), "unknown frame type 0x4");
        let error = Pdu::decode(&[0x40, 0xAB]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid ISO-TP frame [40 AB]: unknown frame type 0x4"
        );
    }

    #[test]
    fn flow_control_encodes_with_and_without_padding() {
        let fc = FlowControl::continue_to_send(4, StMin::from_raw(0xF2));
        assert_eq!(fc.encode(None), vec![0x30, 0x04, 0xF2]);
        assert_eq!(
            fc.encode(Some(0xAA)),
            vec![0x30, 0x04, 0xF2, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA]
        );
        assert_eq!(FlowControl::overflow().encode(None), vec![0x32, 0, 0]);
    }
}
