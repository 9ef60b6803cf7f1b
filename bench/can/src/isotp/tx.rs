//! The sending state machine.

use std::time::Duration;

use super::{FlowStatus, IsoTpConfig, IsoTpError, MAX_SHORT_LEN, Pdu, StMin, pad};

/// What the sender should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxStep {
    /// Send this payload, at least `gap` after the previous frame (STmin).
    Send {
        payload: Vec<u8>,
        gap: Duration,
    },
    /// Wait (up to N_Bs) for a flow control and pass it to
    /// [`Transmitter::on_flow_control`].
    AwaitFlowControl,
    Done,
}

/// What a flow control means for the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowOutcome {
    /// Clear to send: continue with [`Transmitter::next_step`].
    Continue,
    /// WAIT: restart the N_Bs timer and keep waiting.
    Wait,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    AwaitFc,
    Sending,
    Done,
}

/// Cuts one message into frames and follows the receiver's flow control.
#[derive(Debug, Clone)]
pub struct Transmitter {
    message: Vec<u8>,
    offset: usize,
    sn: u8,
    padding: Option<u8>,
    state: State,
    block_left: Option<u8>,
    st_min: StMin,
    first_in_block: bool,
    waits: u16,
    max_waits: u16,
}

impl Transmitter {
    pub fn new(message: &[u8], config: &IsoTpConfig) -> Result<Self, IsoTpError> {
        if message.is_empty() {
            return Err(IsoTpError::EmptyMessage);
        }
        if u32::try_from(message.len()).is_err() {
            return Err(IsoTpError::MessageTooLong {
                len: message.len(),
                max: u32::MAX as usize,
            });
        }
        Ok(Self {
            message: message.to_vec(),
            offset: 0,
            sn: 0,
            padding: config.padding,
            state: State::Start,
            block_left: None,
            st_min: StMin::ZERO,
            first_in_block: true,
            waits: 0,
            max_waits: config.max_wait_frames,
        })
    }

    /// Bytes of the message already handed out in frames.
    pub fn sent(&self) -> usize {
        self.offset
    }

    pub fn total(&self) -> usize {
        self.message.len()
    }

    pub fn next_step(&mut self) -> TxStep {
        let len = self.message.len();
        match self.state {
            State::Done => TxStep::Done,
            State::AwaitFc => TxStep::AwaitFlowControl,
            State::Start if len <= 7 => {
                let mut payload = vec![len as u8];
                payload.extend_from_slice(&self.message);
                self.offset = len;
                self.state = State::Done;
                self.send(payload, Duration::ZERO)
            }
            State::Start => {
                let mut payload = if len <= MAX_SHORT_LEN {
                    vec![0x10 | (len >> 8) as u8, len as u8]
                } else {
                    let mut escape = vec![0x10, 0x00];
                    escape.extend_from_slice(&(len as u32).to_be_bytes());
                    escape
                };
                self.offset = 8 - payload.len();
                payload.extend_from_slice(&self.message[..self.offset]);
                self.sn = 1;
                self.state = State::AwaitFc;
                self.send(payload, Duration::ZERO)
            }
            State::Sending => {
                let end = len.min(self.offset + 7);
                let mut payload = vec![0x20 | self.sn];
                payload.extend_from_slice(&self.message[self.offset..end]);
                self.offset = end;
                self.sn = (self.sn + 1) & 0x0F;
                // STmin separates consecutive frames; the first one after a
                // flow control may follow it at once.
                let gap = if self.first_in_block {
                    Duration::ZERO
                } else {
                    self.st_min.duration()
                };
                self.first_in_block = false;
                if end == len {
                    self.state = State::Done;
                } else if let Some(left) = &mut self.block_left {
                    *left -= 1;
                    if *left == 0 {
                        self.state = State::AwaitFc;
                    }
                }
                self.send(payload, gap)
            }
        }
    }

    fn send(&self, payload: Vec<u8>, gap: Duration) -> TxStep {
        TxStep::Send {
            payload: pad(payload, self.padding),
            gap,
        }
    }

    /// Feed a frame received on the connection's receive id while
    /// [`TxStep::AwaitFlowControl`].
    pub fn on_flow_control(&mut self, payload: &[u8]) -> Result<FlowOutcome, IsoTpError> {
        let pdu = Pdu::decode(payload)?;
        let Pdu::FlowControl(fc) = pdu else {
            return Err(IsoTpError::UnexpectedFrame {
                got: pdu.kind(),
                frame: payload.to_vec(),
                context: format!(
                    "waiting for flow control after sending {} of {} bytes",
                    self.offset,
                    self.message.len()
                ),
            });
        };
        if self.state != State::AwaitFc {
            return Err(IsoTpError::UnexpectedFrame {
                got: pdu.kind(),
                frame: payload.to_vec(),
                context: "not waiting for flow control".into(),
            });
        }
        match fc.status {
            FlowStatus::ContinueToSend => {
                self.state = State::Sending;
                self.block_left = (fc.block_size > 0).then_some(fc.block_size);
                self.st_min = fc.st_min;
                self.first_in_block = true;
                self.waits = 0;
                Ok(FlowOutcome::Continue)
            }
            FlowStatus::Wait => {
                self.waits += 1;
                if self.waits > self.max_waits {
                    self.state = State::Done;
                    return Err(IsoTpError::TooManyWaits {
                        max: self.max_waits,
                    });
                }
                Ok(FlowOutcome::Wait)
            }
            FlowStatus::Overflow => {
                self.state = State::Done;
                Err(IsoTpError::Overflow {
                    len: self.message.len(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(padding: Option<u8>) -> IsoTpConfig {
        IsoTpConfig {
            padding,
            ..IsoTpConfig::default()
        }
    }

    fn payload(step: TxStep) -> Vec<u8> {
        match step {
            TxStep::Send { payload, .. } => payload,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[test]
    fn short_messages_go_in_one_single_frame() {
        let mut tx = Transmitter::new(&[0x22, 0xF1, 0x90], &config(Some(0xAA))).unwrap();
        assert_eq!(
            payload(tx.next_step()),
            [0x03, 0x22, 0xF1, 0x90, 0xAA, 0xAA, 0xAA, 0xAA]
        );
        assert_eq!(tx.next_step(), TxStep::Done);
        let mut tx = Transmitter::new(&[1; 7], &config(None)).unwrap();
        assert_eq!(payload(tx.next_step()), [0x07, 1, 1, 1, 1, 1, 1, 1]);
        assert!(matches!(
            Transmitter::new(&[], &config(None)),
            Err(IsoTpError::EmptyMessage)
        ));
    }

    #[test]
    fn sequence_numbers_wrap_from_15_to_0() {
        let message: Vec<u8> = (0..=255).collect();
        let mut tx = Transmitter::new(&message, &config(None)).unwrap();
        assert_eq!(payload(tx.next_step())[..2], [0x11, 0x00]);
        assert_eq!(tx.next_step(), TxStep::AwaitFlowControl);
        assert_eq!(
            tx.on_flow_control(&[0x30, 0, 0]).unwrap(),
            FlowOutcome::Continue
        );
        let mut sns = Vec::new();
        let mut rebuilt = message[..6].to_vec();
        while let TxStep::Send { payload, .. } = tx.next_step() {
            sns.push(payload[0] & 0x0F);
            assert_eq!(payload[0] >> 4, 2);
            rebuilt.extend_from_slice(&payload[1..]);
        }
        let expected: Vec<u8> = (1..=sns.len()).map(|i| (i % 16) as u8).collect();
        assert_eq!(sns, expected);
        assert_eq!(&sns[14..17], &[15, 0, 1]);
        assert_eq!(rebuilt, message);
    }

    #[test]
    fn block_size_and_st_min_are_followed() {
        let mut tx = Transmitter::new(&[7; 40], &config(Some(0xCC))).unwrap();
        tx.next_step();
        tx.on_flow_control(&[0x30, 2, 0xF3]).unwrap();
        let gaps: Vec<Duration> = (0..2)
            .map(|_| match tx.next_step() {
                TxStep::Send { gap, .. } => gap,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(gaps, [Duration::ZERO, Duration::from_micros(300)]);
        assert_eq!(tx.next_step(), TxStep::AwaitFlowControl);
        assert_eq!(
            tx.on_flow_control(&[0x31, 0, 0]).unwrap(),
            FlowOutcome::Wait
        );
        tx.on_flow_control(&[0x30, 0, 0]).unwrap();
        assert_eq!(payload(tx.next_step())[0], 0x23);
        assert_eq!(payload(tx.next_step())[0], 0x24);
        let last = payload(tx.next_step());
        assert_eq!(last, [0x25, 7, 7, 7, 7, 7, 7, 0xCC]);
        assert_eq!(tx.next_step(), TxStep::Done);
    }

    #[test]
    fn long_messages_use_the_escaped_first_frame() {
        let message = vec![9; 5000];
        let mut tx = Transmitter::new(&message, &config(None)).unwrap();
        assert_eq!(
            payload(tx.next_step()),
            [0x10, 0x00, 0x00, 0x00, 0x13, 0x88, 9, 9]
        );
    }

    #[test]
    fn overflow_waits_and_unexpected_frames_are_errors() {
        let mut tx = Transmitter::new(&[0; 20], &config(None)).unwrap();
        tx.next_step();
        assert!(matches!(
            tx.on_flow_control(&[0x32, 0, 0]),
            Err(IsoTpError::Overflow { len: 20 })
        ));

        let mut tx = Transmitter::new(
            &[0; 20],
            &IsoTpConfig {
                max_wait_frames: 1,
                ..config(None)
            },
        )
        .unwrap();
        tx.next_step();
        assert_eq!(
            tx.on_flow_control(&[0x31, 0, 0]).unwrap(),
            FlowOutcome::Wait
        );
        assert!(matches!(
            tx.on_flow_control(&[0x31, 0, 0]),
            Err(IsoTpError::TooManyWaits { max: 1 })
        ));

        let mut tx = Transmitter::new(&[0; 20], &config(None)).unwrap();
        tx.next_step();
        let error = tx.on_flow_control(&[0x03, 0x7F, 0x22, 0x13]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "unexpected single frame [03 7F 22 13] while waiting for flow control after \
             sending 6 of 20 bytes"
        );
    }
}
