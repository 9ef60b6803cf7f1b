//! SCPI over any [`Transport`]: commands, queries, `*IDN?`, and the `SYST:ERR?` queue.
//! Every failure becomes an [`InstrumentError`] naming the command and the reply.

mod parse;

pub use parse::{Reply, ScpiError, ScpiParseError, Value, parse_idn, parse_reply};

use crate::transport::{Transport, TransportError};
use crate::{InstrumentError, InstrumentIdentity, InstrumentResult};
use std::time::Duration;

/// Error queues are finite; a device that never reports "No error" is broken, not busy.
const MAX_QUEUED_ERRORS: usize = 32;

/// The standard SCPI-99 error queue query.
pub const ERROR_QUERY: &str = "SYST:ERR?";

/// A conversation with one SCPI instrument. Messages end in `\n` both ways.
#[derive(Debug)]
pub struct ScpiSession<T: Transport> {
    transport: T,
    instrument: String,
    timeout: Duration,
    error_query: String,
}

impl<T: Transport> ScpiSession<T> {
    /// `timeout` bounds every reply.
    pub fn new(transport: T, timeout: Duration) -> Self {
        ScpiSession {
            instrument: transport.describe(),
            transport,
            timeout,
            error_query: ERROR_QUERY.into(),
        }
    }

    /// How errors name the instrument (defaults to the transport's description).
    pub fn set_instrument_name(&mut self, name: impl Into<String>) {
        self.instrument = name.into();
    }

    pub fn instrument_name(&self) -> &str {
        &self.instrument
    }

    pub fn set_error_query(&mut self, query: impl Into<String>) {
        self.error_query = query.into();
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    pub fn transport(&self) -> &T {
        &self.transport
    }

    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    pub fn into_transport(self) -> T {
        self.transport
    }

    fn link(&self, request: &str, e: TransportError) -> InstrumentError {
        InstrumentError::Link {
            instrument: self.instrument.clone(),
            message: format!("{request}: {e}"),
        }
    }

    /// Send a command (no reply expected). Does not check the error queue.
    pub fn send(&mut self, command: &str) -> InstrumentResult<()> {
        let mut line = Vec::with_capacity(command.len() + 1);
        line.extend_from_slice(command.as_bytes());
        line.push(b'\n');
        self.transport
            .write_all(&line)
            .map_err(|e| self.link(&format!("sending `{command}`"), e))
    }

    /// Send a query and return its reply text (terminator removed). `context` names what
    /// the query is part of in errors.
    fn query_in(&mut self, query: &str, context: Option<&str>) -> InstrumentResult<String> {
        let request = match context {
            Some(c) => format!("{query} (after {c})"),
            None => query.to_string(),
        };
        self.send(query)?;
        match self.transport.read_until(b'\n', self.timeout) {
            Ok(mut line) => {
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                Ok(String::from_utf8_lossy(&line).into_owned())
            }
            Err(TransportError::Timeout { partial, .. }) => {
                // A late reply must not be taken as the answer to the next query.
                let _ = self.transport.discard_input();
                let request = if partial.is_empty() {
                    request
                } else {
                    format!(
                        "{request} (incomplete reply \"{}\")",
                        partial.escape_ascii()
                    )
                };
                Err(InstrumentError::Timeout {
                    instrument: self.instrument.clone(),
                    request,
                    timeout: self.timeout,
                })
            }
            Err(e) => Err(self.link(&format!("waiting for the reply to `{request}`"), e)),
        }
    }

    /// Send a query and return its reply text (terminator removed).
    pub fn query(&mut self, query: &str) -> InstrumentResult<String> {
        self.query_in(query, None)
    }

    /// Send a query and parse its reply.
    pub fn query_reply(&mut self, query: &str) -> InstrumentResult<Reply> {
        let text = self.query(query)?;
        parse_reply(text.as_bytes()).map_err(|e| InstrumentError::Device {
            instrument: self.instrument.clone(),
            request: query.to_string(),
            reply: format!("unparsable reply `{text}` ({e})"),
        })
    }

    /// `*IDN?`.
    pub fn identify(&mut self) -> InstrumentResult<InstrumentIdentity> {
        let text = self.query("*IDN?")?;
        parse_idn(text.as_bytes()).ok_or_else(|| InstrumentError::Device {
            instrument: self.instrument.clone(),
            request: "*IDN?".into(),
            reply: format!(
                "`{text}` is not an identification (manufacturer,model,serial,firmware)"
            ),
        })
    }

    /// Every entry of the error queue, oldest first, until "No error".
    pub fn drain_errors(&mut self, context: Option<&str>) -> InstrumentResult<Vec<ScpiError>> {
        let mut errors = Vec::new();
        for _ in 0..MAX_QUEUED_ERRORS {
            let query = self.error_query.clone();
            let text = self.query_in(&query, context)?;
            let entry =
                ScpiError::parse(text.as_bytes()).ok_or_else(|| InstrumentError::Device {
                    instrument: self.instrument.clone(),
                    request: query.clone(),
                    reply: format!("`{text}` is not an error queue entry (code,\"message\")"),
                })?;
            if !entry.is_error() {
                return Ok(errors);
            }
            errors.push(entry);
        }
        Err(InstrumentError::Device {
            instrument: self.instrument.clone(),
            request: self.error_query.clone(),
            reply: format!(
                "the error queue did not empty after {MAX_QUEUED_ERRORS} reads (last: {})",
                errors.last().map(ToString::to_string).unwrap_or_default()
            ),
        })
    }

    /// Send `commands`, then read the error queue once: any error fails the group with
    /// the commands and the queue's entries in the message.
    ///
    /// The commands go out in one write: the same bytes on the wire as one write per
    /// command, with one system call instead of many.
    pub fn command_group<S: AsRef<str>>(&mut self, commands: &[S]) -> InstrumentResult<()> {
        let sent: Vec<&str> = commands.iter().map(AsRef::as_ref).collect();
        if !sent.is_empty() {
            let mut lines = sent.join("\n");
            lines.push('\n');
            self.transport
                .write_all(lines.as_bytes())
                .map_err(|e| self.link(&format!("sending `{}`", sent.join("; ")), e))?;
        }
        let sent = sent.join("; ");
        let errors = self.drain_errors(Some(&sent))?;
        if errors.is_empty() {
            return Ok(());
        }
        let reply: Vec<String> = errors.iter().map(ToString::to_string).collect();
        Err(InstrumentError::Device {
            instrument: self.instrument.clone(),
            request: sent,
            reply: format!("{} → {}", self.error_query, reply.join("; ")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{ScriptStep, ScriptedTransport};

    fn session(steps: Vec<ScriptStep>) -> ScpiSession<ScriptedTransport> {
        ScpiSession::new(ScriptedTransport::new(steps), Duration::from_millis(200))
    }

    #[test]
    fn identify_parses_idn() {
        let mut s = session(vec![ScriptStep::exchange(
            "*IDN?\n",
            "FLUKE,6105A,12345,2.0\r\n",
        )]);
        let id = s.identify().unwrap();
        assert_eq!((id.model.as_str(), id.firmware.as_str()), ("6105A", "2.0"));
        s.transport().assert_finished();
    }

    #[test]
    fn a_command_group_reports_every_queued_error() {
        let mut s = session(vec![
            ScriptStep::command("VOLT:AC 400\n"),
            ScriptStep::command("FREQ 50\n"),
            ScriptStep::exchange("SYST:ERR?\n", "-222,\"Data out of range\"\n"),
            ScriptStep::exchange("SYST:ERR?\n", "-221,\"Settings conflict\"\n"),
            ScriptStep::exchange("SYST:ERR?\n", "0,\"No error\"\n"),
        ]);
        match s.command_group(&["VOLT:AC 400", "FREQ 50"]) {
            Err(InstrumentError::Device { request, reply, .. }) => {
                assert_eq!(request, "VOLT:AC 400; FREQ 50");
                assert_eq!(
                    reply,
                    "SYST:ERR? → -222,\"Data out of range\"; -221,\"Settings conflict\""
                );
            }
            other => panic!("{other:?}"),
        }
        s.transport().assert_finished();
    }

    #[test]
    fn a_silent_instrument_is_a_timeout_naming_the_command() {
        let mut s = session(vec![
            ScriptStep::command("OUTP ON\n"),
            ScriptStep::timeout("SYST:ERR?\n"),
        ]);
        match s.command_group(&["OUTP ON"]) {
            Err(e @ InstrumentError::Timeout { .. }) => {
                let text = e.to_string();
                assert!(text.contains("SYST:ERR? (after OUTP ON)"), "{text}");
                assert!(
                    text.starts_with("scripted: no answer within 200ms"),
                    "{text}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unparsable_replies_are_device_errors() {
        let mut s = session(vec![
            ScriptStep::exchange("*IDN?\n", "hello\n"),
            ScriptStep::exchange("OUTP?\n", "maybe so\n"),
            ScriptStep::exchange("SYST:ERR?\n", "what\n"),
        ]);
        assert!(matches!(s.identify(), Err(InstrumentError::Device { .. })));
        assert!(matches!(
            s.query_reply("OUTP?"),
            Err(InstrumentError::Device { .. })
        ));
        assert!(matches!(
            s.drain_errors(None),
            Err(InstrumentError::Device { .. })
        ));
    }

    #[test]
    fn a_dropped_link_is_a_link_error() {
        let mut s = session(vec![ScriptStep::Disconnect]);
        match s.send("OUTP OFF") {
            Err(InstrumentError::Link { message, .. }) => {
                assert!(message.contains("OUTP OFF"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
}
