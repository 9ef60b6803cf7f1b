//! The receiving state machine.

use super::{FlowControl, IsoTpConfig, IsoTpError, Pdu, StMin};

/// What the receiver should do after a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RxEvent {
    /// A whole message arrived.
    Complete(Vec<u8>),
    /// Send this flow control (after a first frame, or at the end of a
    /// block), then wait up to N_Cr for the next consecutive frame.
    SendFlowControl(FlowControl),
    /// Wait up to N_Cr for the next consecutive frame.
    Continue,
    /// The first frame announced more than we accept: send this OVERFLOW
    /// flow control; the reception is over.
    Overflow { flow_control: FlowControl, len: u32 },
}

#[derive(Debug, Clone)]
struct Reception {
    buf: Vec<u8>,
    total: usize,
    next_sn: u8,
    block_left: u8,
}

/// Reassembles one message at a time from frame payloads.
#[derive(Debug, Clone)]
pub struct Receiver {
    block_size: u8,
    st_min: StMin,
    max_len: usize,
    reception: Option<Reception>,
}

impl Receiver {
    pub fn new(config: &IsoTpConfig) -> Self {
        Self {
            block_size: config.block_size,
            st_min: config.st_min,
            max_len: config.max_message_len,
            reception: None,
        }
    }

    pub fn is_receiving(&self) -> bool {
        self.reception.is_some()
    }

    /// `(received, total)` bytes of a segmented message in progress.
    pub fn progress(&self) -> Option<(usize, usize)> {
        self.reception.as_ref().map(|r| (r.buf.len(), r.total))
    }

    /// Abandon a message in progress.
    pub fn reset(&mut self) {
        self.reception = None;
    }

    /// Feed the payload of a frame received on the connection's receive id.
    /// Any error abandons the message in progress.
    pub fn on_frame(&mut self, payload: &[u8]) -> Result<RxEvent, IsoTpError> {
        let result = self.step(payload);
        if result.is_err() {
            self.reception = None;
        }
        result
    }

    fn step(&mut self, payload: &[u8]) -> Result<RxEvent, IsoTpError> {
        let pdu = Pdu::decode(payload)?;
        match (pdu, self.reception.as_mut()) {
            (Pdu::Single(data), None) => Ok(RxEvent::Complete(data.to_vec())),
            (Pdu::First { len, data }, None) => {
                let total = len as usize;
                if total > self.max_len {
                    return Ok(RxEvent::Overflow {
                        flow_control: FlowControl::overflow(),
                        len,
                    });
                }
                self.reception = Some(Reception {
                    buf: data[..data.len().min(total)].to_vec(),
                    total,
                    next_sn: 1,
                    block_left: self.block_size,
                });
                Ok(RxEvent::SendFlowControl(self.clear_to_send()))
            }
            (Pdu::Consecutive { sn, data }, Some(r)) => {
                if sn != r.next_sn {
                    return Err(IsoTpError::WrongSequenceNumber {
                        expected: r.next_sn,
                        got: sn,
                        received: r.buf.len(),
                        total: r.total,
                    });
                }
                let need = (r.total - r.buf.len()).min(7);
                if data.len() < need {
                    return Err(IsoTpError::InvalidFrame {
                        frame: payload.to_vec(),
                        reason: format!(
                            "consecutive frame carries {} bytes where {need} are due",
                            data.len()
                        ),
                    });
                }
                r.buf.extend_from_slice(&data[..need]);
                r.next_sn = (r.next_sn + 1) & 0x0F;
                if r.buf.len() == r.total {
                    let message = std::mem::take(&mut r.buf);
                    self.reception = None;
                    return Ok(RxEvent::Complete(message));
                }
                if self.block_size > 0 {
                    r.block_left -= 1;
                    if r.block_left == 0 {
                        r.block_left = self.block_size;
                        return Ok(RxEvent::SendFlowControl(self.clear_to_send()));
                    }
                }
                Ok(RxEvent::Continue)
            }
            (pdu, reception) => Err(IsoTpError::UnexpectedFrame {
                got: pdu.kind(),
                frame: payload.to_vec(),
                context: match reception {
                    Some(r) => format!(
                        "receiving a {}-byte message ({} bytes so far)",
                        r.total,
                        r.buf.len()
                    ),
                    None => "waiting for a single or first frame".into(),
                },
            }),
        }
    }

    fn clear_to_send(&self) -> FlowControl {
        FlowControl::continue_to_send(self.block_size, self.st_min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receiver(block_size: u8) -> Receiver {
        Receiver::new(&IsoTpConfig {
            block_size,
            ..IsoTpConfig::default()
        })
    }

    #[test]
    fn single_frames_complete_at_once_padding_ignored() {
        let mut rx = receiver(0);
        assert_eq!(
            rx.on_frame(&[0x03, 0x62, 0xF1, 0x90, 0xAA, 0xAA, 0xAA, 0xAA])
                .unwrap(),
            RxEvent::Complete(vec![0x62, 0xF1, 0x90])
        );
        assert!(!rx.is_receiving());
    }

    #[test]
    fn segmented_messages_reassemble_with_block_flow_control() {
        let mut rx = receiver(2);
        let message: Vec<u8> = (0..30).collect();
        let fc = FlowControl::continue_to_send(2, StMin::ZERO);
        let mut first = vec![0x10, 30];
        first.extend_from_slice(&message[..6]);
        assert_eq!(rx.on_frame(&first).unwrap(), RxEvent::SendFlowControl(fc));
        let mut cf = |sn: u8, range: std::ops::Range<usize>| {
            let mut payload = vec![0x20 | sn];
            payload.extend_from_slice(&message[range]);
            payload.resize(8, 0xCC);
            rx.on_frame(&payload).unwrap()
        };
        assert_eq!(cf(1, 6..13), RxEvent::Continue);
        assert_eq!(cf(2, 13..20), RxEvent::SendFlowControl(fc));
        assert_eq!(cf(3, 20..27), RxEvent::Continue);
        assert_eq!(cf(4, 27..30), RxEvent::Complete(message.clone()));
    }

    #[test]
    fn wrong_sequence_numbers_and_stray_frames_are_errors() {
        let mut rx = receiver(0);
        rx.on_frame(&[0x10, 20, 0, 1, 2, 3, 4, 5]).unwrap();
        rx.on_frame(&[0x21, 6, 7, 8, 9, 10, 11, 12]).unwrap();
        let error = rx
            .on_frame(&[0x23, 13, 14, 15, 16, 17, 18, 19])
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "wrong sequence number in consecutive frame: expected 2, got 3 (after 13 of 20 bytes)"
        );
        assert!(!rx.is_receiving());

        let error = rx.on_frame(&[0x21, 1, 2]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "unexpected consecutive frame [21 01 02] while waiting for a single or first frame"
        );

        rx.on_frame(&[0x10, 20, 0, 1, 2, 3, 4, 5]).unwrap();
        let error = rx.on_frame(&[0x02, 0x7F, 0x22]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "unexpected single frame [02 7F 22] while receiving a 20-byte message (6 bytes so far)"
        );

        rx.on_frame(&[0x10, 20, 0, 1, 2, 3, 4, 5]).unwrap();
        assert!(
            rx.on_frame(&[0x21, 6, 7])
                .unwrap_err()
                .to_string()
                .contains("2 bytes where 7")
        );
    }

    #[test]
    fn too_long_messages_get_an_overflow() {
        let mut rx = Receiver::new(&IsoTpConfig {
            max_message_len: 100,
            ..IsoTpConfig::default()
        });
        assert_eq!(
            rx.on_frame(&[0x10, 101, 0, 0, 0, 0, 0, 0]).unwrap(),
            RxEvent::Overflow {
                flow_control: FlowControl::overflow(),
                len: 101
            }
        );
        assert!(!rx.is_receiving());
    }
}
