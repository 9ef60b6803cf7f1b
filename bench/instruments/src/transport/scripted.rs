//! A transport that replays a recorded conversation, for protocol tests without hardware.
//!
//! Each write must equal the next step's `sent` bytes exactly; the step's reply then
//! becomes readable. A mismatch panics with the step number, so a protocol test fails
//! on the first byte the driver gets wrong.

use super::{Transport, TransportError};
use std::collections::VecDeque;
use std::time::Duration;

/// One step of a scripted conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptStep {
    /// The driver writes `sent`; `reply` (empty for a command without answer) becomes
    /// readable.
    Exchange { sent: Vec<u8>, reply: Vec<u8> },
    /// The driver writes `sent` and the instrument stays silent: the next read times out.
    Timeout { sent: Vec<u8> },
    /// The link drops here: every later write and read fails as a closed link.
    Disconnect,
}

impl ScriptStep {
    pub fn exchange(sent: impl AsRef<[u8]>, reply: impl AsRef<[u8]>) -> Self {
        ScriptStep::Exchange {
            sent: sent.as_ref().to_vec(),
            reply: reply.as_ref().to_vec(),
        }
    }

    /// A write that gets no answer (an SCPI command).
    pub fn command(sent: impl AsRef<[u8]>) -> Self {
        ScriptStep::exchange(sent, b"")
    }

    pub fn timeout(sent: impl AsRef<[u8]>) -> Self {
        ScriptStep::Timeout {
            sent: sent.as_ref().to_vec(),
        }
    }
}

/// Replays [`ScriptStep`]s; see the module docs.
#[derive(Debug, Default)]
pub struct ScriptedTransport {
    steps: VecDeque<ScriptStep>,
    /// 1-based number of the step the next write must match.
    next_step: usize,
    pending: Vec<u8>,
    silent: bool,
    disconnected: bool,
    transcript: Vec<(Vec<u8>, Vec<u8>)>,
    rts: Option<bool>,
    dtr: Option<bool>,
    /// Bytes of the next step's `sent` already written (a step may arrive in pieces).
    sent_so_far: usize,
}

fn show(bytes: &[u8]) -> String {
    format!("\"{}\"", bytes.escape_ascii())
}

impl ScriptedTransport {
    pub fn new(steps: impl IntoIterator<Item = ScriptStep>) -> Self {
        ScriptedTransport {
            steps: steps.into_iter().collect(),
            next_step: 1,
            ..ScriptedTransport::default()
        }
    }

    /// Script of `(sent, reply)` pairs; an empty reply is a command without answer.
    pub fn from_pairs<S: AsRef<[u8]>, R: AsRef<[u8]>>(
        pairs: impl IntoIterator<Item = (S, R)>,
    ) -> Self {
        ScriptedTransport::new(pairs.into_iter().map(|(s, r)| ScriptStep::exchange(s, r)))
    }

    /// Whether every step has been played.
    pub fn is_finished(&self) -> bool {
        self.steps.is_empty()
    }

    /// Panics, listing what the driver never sent, unless every step has been played.
    pub fn assert_finished(&self) {
        if !self.steps.is_empty() {
            let rest: Vec<String> = self
                .steps
                .iter()
                .map(|s| match s {
                    ScriptStep::Exchange { sent, .. } | ScriptStep::Timeout { sent } => show(sent),
                    ScriptStep::Disconnect => "(disconnect)".into(),
                })
                .collect();
            panic!(
                "scripted transport: the driver stopped at step {}; never sent: {}",
                self.next_step,
                rest.join(", ")
            );
        }
    }

    /// Every `(sent, reply)` played so far, in order (the recorded bytes of the session).
    pub fn transcript(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.transcript
    }

    /// Last RTS / DTR level the driver set, if any.
    pub fn lines(&self) -> (Option<bool>, Option<bool>) {
        (self.rts, self.dtr)
    }

    /// Play a leading `Disconnect` step, if that is what comes next.
    fn reach_disconnect(&mut self) {
        if self.steps.front() == Some(&ScriptStep::Disconnect) {
            self.steps.pop_front();
            self.next_step += 1;
            self.disconnected = true;
        }
    }

    fn closed() -> TransportError {
        TransportError::Closed("scripted disconnect".into())
    }

    fn take_pending(
        &mut self,
        terminator: Option<u8>,
        n: usize,
        waited: Duration,
    ) -> Result<Vec<u8>, TransportError> {
        let end = match terminator {
            Some(t) => self
                .pending
                .iter()
                .position(|&b| b == t)
                .map(|i| (i + 1, i)),
            None => (self.pending.len() >= n).then_some((n, n)),
        };
        if let Some((consume, keep)) = end {
            let mut out: Vec<u8> = self.pending.drain(..consume).collect();
            out.truncate(keep);
            return Ok(out);
        }
        self.reach_disconnect();
        if self.disconnected {
            return Err(ScriptedTransport::closed());
        }
        if self.silent || !self.pending.is_empty() {
            return Err(TransportError::Timeout {
                waited,
                partial: self.pending.clone(),
            });
        }
        panic!(
            "scripted transport: at step {} the driver reads, but the script has no reply \
             pending (last sent: {})",
            self.next_step,
            self.transcript
                .last()
                .map_or("nothing".into(), |(s, _)| show(s))
        );
    }
}

impl Transport for ScriptedTransport {
    /// The script is a byte stream: one write may cover several steps, or part of one
    /// (a driver may send a command group in one write or a command in pieces).
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), TransportError> {
        let mut rest = bytes;
        while !rest.is_empty() {
            self.reach_disconnect();
            if self.disconnected {
                return Err(ScriptedTransport::closed());
            }
            let step = self.next_step;
            let Some(expected) = self.steps.front() else {
                panic!(
                    "scripted transport: the script ended after step {} but the driver sent {}",
                    step - 1,
                    show(rest)
                );
            };
            let sent = match expected {
                ScriptStep::Exchange { sent, .. } | ScriptStep::Timeout { sent } => sent,
                ScriptStep::Disconnect => unreachable!("handled by reach_disconnect"),
            };
            let want = &sent[self.sent_so_far..];
            let n = want.len().min(rest.len());
            assert!(
                rest[..n] == want[..n],
                "scripted transport: step {step} expected {} but the driver sent {}",
                show(sent),
                show(&[&sent[..self.sent_so_far], rest].concat())
            );
            self.sent_so_far += n;
            rest = &rest[n..];
            if self.sent_so_far < sent.len() {
                break;
            }
            let (sent, reply, silent) = match self.steps.pop_front() {
                Some(ScriptStep::Exchange { sent, reply }) => (sent, reply, false),
                Some(ScriptStep::Timeout { sent }) => (sent, Vec::new(), true),
                _ => unreachable!("the front step was an exchange or a timeout"),
            };
            self.sent_so_far = 0;
            self.next_step += 1;
            self.silent = silent;
            self.pending.extend_from_slice(&reply);
            self.transcript.push((sent, reply));
        }
        Ok(())
    }

    fn read_until(&mut self, terminator: u8, timeout: Duration) -> Result<Vec<u8>, TransportError> {
        self.take_pending(Some(terminator), 0, timeout)
    }

    fn read_exact(&mut self, n: usize, timeout: Duration) -> Result<Vec<u8>, TransportError> {
        self.take_pending(None, n, timeout)
    }

    fn discard_input(&mut self) -> Result<(), TransportError> {
        self.pending.clear();
        Ok(())
    }

    fn set_rts(&mut self, level: bool) -> Result<(), TransportError> {
        self.rts = Some(level);
        Ok(())
    }

    fn set_dtr(&mut self, level: bool) -> Result<(), TransportError> {
        self.dtr = Some(level);
        Ok(())
    }

    fn describe(&self) -> String {
        "scripted".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_millis(10);

    #[test]
    fn replays_exchanges_and_records_them() {
        let mut t = ScriptedTransport::from_pairs([("*IDN?\n", "A,B,C,D\n"), ("OUTP ON\n", "")]);
        t.write_all(b"*IDN?\n").unwrap();
        assert_eq!(t.read_until(b'\n', T).unwrap(), b"A,B,C,D");
        t.write_all(b"OUTP ON\n").unwrap();
        t.assert_finished();
        assert_eq!(t.transcript().len(), 2);
        assert_eq!(t.transcript()[0].1, b"A,B,C,D\n");
    }

    #[test]
    #[should_panic(expected = "step 2 expected \"OUTP ON\\n\" but the driver sent \"OUTP OFF\\n\"")]
    fn a_wrong_write_names_the_step() {
        let mut t = ScriptedTransport::from_pairs([("*CLS\n", ""), ("OUTP ON\n", "")]);
        t.write_all(b"*CLS\n").unwrap();
        let _ = t.write_all(b"OUTP OFF\n");
    }

    #[test]
    #[should_panic(expected = "never sent")]
    fn unplayed_steps_fail_the_test() {
        let t = ScriptedTransport::from_pairs([("*CLS\n", "")]);
        t.assert_finished();
    }

    #[test]
    #[should_panic(expected = "no reply pending")]
    fn reading_an_unscripted_reply_fails_the_test() {
        let mut t = ScriptedTransport::from_pairs([("*CLS\n", "")]);
        t.write_all(b"*CLS\n").unwrap();
        let _ = t.read_until(b'\n', T);
    }

    #[test]
    fn scripted_timeout_partial_reply_and_disconnect() {
        let mut t = ScriptedTransport::new([
            ScriptStep::timeout("SYST:ERR?\n"),
            ScriptStep::exchange("*IDN?\n", "FLUKE,61"),
            ScriptStep::command("*CLS\n"),
            ScriptStep::Disconnect,
        ]);
        t.write_all(b"SYST:ERR?\n").unwrap();
        assert!(matches!(
            t.read_until(b'\n', T),
            Err(TransportError::Timeout { .. })
        ));
        t.write_all(b"*IDN?\n").unwrap();
        match t.read_until(b'\n', T) {
            Err(TransportError::Timeout { partial, .. }) => assert_eq!(partial, b"FLUKE,61"),
            other => panic!("{other:?}"),
        }
        t.discard_input().unwrap();
        t.write_all(b"*CLS\n").unwrap();
        assert!(matches!(
            t.write_all(b"OUTP OFF\n"),
            Err(TransportError::Closed(_))
        ));
        assert!(matches!(t.read_exact(1, T), Err(TransportError::Closed(_))));
        t.assert_finished();
    }

    #[test]
    fn the_script_is_a_byte_stream_not_a_list_of_writes() {
        let mut t = ScriptedTransport::new([
            ScriptStep::command("SOUR:FREQ 50\n"),
            ScriptStep::command("OUTP ON\n"),
            ScriptStep::exchange("SYST:ERR?\n", "0,\"No error\"\n"),
        ]);
        t.write_all(b"SOUR:FREQ 50\nOUTP").unwrap();
        t.write_all(b" ON\nSYST:").unwrap();
        t.write_all(b"ERR?\n").unwrap();
        assert_eq!(t.read_until(b'\n', T).unwrap(), b"0,\"No error\"");
        t.assert_finished();
        assert_eq!(t.transcript().len(), 3);
    }
}
