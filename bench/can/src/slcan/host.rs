//! The host side: drive an SLCAN adapter over a byte stream.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use super::{Bitrate, Command, LineReader, Message, Token, encode_command, parse_line};
use crate::bus::{CanBus, CanError};
use crate::frame::CanFrame;

/// How long an adapter may take to answer a command.
const REPLY_TIMEOUT: Duration = Duration::from_secs(1);

/// What the reader saw besides frames; garbage is counted, never fatal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlcanStats {
    pub frames_sent: u64,
    pub frames_received: u64,
    /// `z`/`Z` acknowledgements of transmitted frames.
    pub transmit_acks: u64,
    /// BEL replies: a refused command or frame.
    pub error_replies: u64,
    /// Lines that were not SLCAN, or too long, dropped up to their `\r`.
    pub discarded_lines: u64,
    pub discarded_bytes: u64,
}

/// A CAN bus behind an SLCAN adapter on a byte stream: a serial port (the
/// `serialport` crate's ports are `Read + Write` with a read timeout), a
/// pseudo-terminal, or [`crate::pipe`].
///
/// The stream should have a short read timeout (10–50 ms): reads that time
/// out (`TimedOut`/`WouldBlock`) or return 0 bytes are how [`CanBus::recv`]
/// gets to check its deadline, so that timeout is its granularity.
#[derive(Debug)]
pub struct SlcanBus<S> {
    stream: S,
    label: String,
    bitrate: Bitrate,
    reader: LineReader,
    frames: VecDeque<CanFrame>,
    replies: VecDeque<Message>,
    awaiting_reply: bool,
    stats: SlcanStats,
}

impl<S: Read + Write + Send> SlcanBus<S> {
    /// Close the channel (an earlier run may have left it open, and an open
    /// adapter refuses `S`), set `bitrate` and open it. `label` names the
    /// adapter in messages, typically its port: `/dev/ttyACM0`.
    pub fn open(stream: S, bitrate: Bitrate, label: impl Into<String>) -> Result<Self, CanError> {
        let mut bus = Self {
            stream,
            label: label.into(),
            bitrate,
            reader: LineReader::new(),
            frames: VecDeque::new(),
            replies: VecDeque::new(),
            awaiting_reply: false,
            stats: SlcanStats::default(),
        };
        // A closed adapter answers `C` with BEL: either reply will do.
        bus.command(&Command::Close, |m| {
            matches!(m, Message::Ok | Message::Error).then_some(Ok(()))
        })?;
        // Neither that BEL nor frames left over from before count.
        bus.frames.clear();
        bus.stats = SlcanStats::default();
        bus.command_ok(&Command::SetBitrate(bitrate))?;
        bus.command_ok(&Command::Open)?;
        Ok(bus)
    }

    /// The adapter's `V` answer (hardware and software version).
    pub fn version(&mut self) -> Result<String, CanError> {
        self.command(&Command::Version, |m| match m {
            Message::Version(v) => Some(Ok(v.clone())),
            Message::Error => Some(Err(())),
            _ => None,
        })
    }

    /// The adapter's `N` answer.
    pub fn serial_number(&mut self) -> Result<String, CanError> {
        self.command(&Command::SerialNumber, |m| match m {
            Message::SerialNumber(n) => Some(Ok(n.clone())),
            Message::Error => Some(Err(())),
            _ => None,
        })
    }

    /// The adapter's `F` status flags (bus errors, buffer overruns).
    pub fn status_flags(&mut self) -> Result<u8, CanError> {
        self.command(&Command::Status, |m| match m {
            Message::Status(flags) => Some(Ok(*flags)),
            Message::Error => Some(Err(())),
            _ => None,
        })
    }

    pub fn stats(&self) -> SlcanStats {
        self.stats
    }

    pub fn bitrate(&self) -> Bitrate {
        self.bitrate
    }

    /// Close the channel and hand back the stream.
    pub fn close(mut self) -> Result<S, CanError> {
        self.command_ok(&Command::Close)?;
        Ok(self.stream)
    }

    fn command_ok(&mut self, command: &Command) -> Result<(), CanError> {
        self.command(command, |m| match m {
            Message::Ok => Some(Ok(())),
            Message::Error => Some(Err(())),
            _ => None,
        })
    }

    /// Send `command` and wait for the first reply `accept` recognises
    /// (`Err(())` for a refusal); frames arriving meanwhile are queued.
    fn command<R>(
        &mut self,
        command: &Command,
        mut accept: impl FnMut(&Message) -> Option<Result<R, ()>>,
    ) -> Result<R, CanError> {
        let bytes = encode_command(command);
        let name = String::from_utf8_lossy(&bytes[..bytes.len() - 1]).into_owned();
        self.replies.clear();
        self.awaiting_reply = true;
        let result = self.write(&bytes).and_then(|()| {
            let deadline = Instant::now() + REPLY_TIMEOUT;
            loop {
                while let Some(reply) = self.replies.pop_front() {
                    if let Some(verdict) = accept(&reply) {
                        return verdict.map_err(|()| {
                            self.adapter_error(format!(
                                "refused the command '{name}' (answered BEL)"
                            ))
                        });
                    }
                }
                if Instant::now() >= deadline {
                    return Err(self.adapter_error(format!(
                        "no answer to the command '{name}' within 1 s; is an SLCAN adapter on \
                         this port, and is nothing else using it?"
                    )));
                }
                self.pump()?;
            }
        });
        self.awaiting_reply = false;
        result
    }

    fn adapter_error(&self, message: String) -> CanError {
        CanError::Adapter {
            adapter: format!("SLCAN adapter on {}", self.label),
            message,
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), CanError> {
        self.stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
            .map_err(|error| CanError::Io {
                context: format!("SLCAN adapter on {}: write failed", self.label),
                error,
            })
    }

    /// One read from the stream, every complete line handled.
    fn pump(&mut self) -> Result<(), CanError> {
        let mut buf = [0u8; 256];
        match self.stream.read(&mut buf) {
            Ok(0) => std::thread::sleep(Duration::from_millis(1)),
            Ok(n) => {
                for &byte in &buf[..n] {
                    if let Some(token) = self.reader.push(byte) {
                        self.handle(token);
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
            Err(error) => {
                return Err(CanError::Io {
                    context: format!("SLCAN adapter on {}: read failed", self.label),
                    error,
                });
            }
        }
        Ok(())
    }

    fn handle(&mut self, token: Token) {
        let message = match token {
            Token::Bell => Message::Error,
            Token::Discarded(n) => {
                self.stats.discarded_lines += 1;
                self.stats.discarded_bytes += n as u64;
                return;
            }
            Token::Line(line) => match parse_line(&line) {
                Ok(message) => message,
                Err(_) => {
                    self.stats.discarded_lines += 1;
                    self.stats.discarded_bytes += line.len() as u64 + 1;
                    return;
                }
            },
        };
        match message {
            Message::Frame { frame, .. } => {
                self.stats.frames_received += 1;
                self.frames.push_back(frame);
                return;
            }
            Message::Transmitted { .. } => self.stats.transmit_acks += 1,
            Message::Error => self.stats.error_replies += 1,
            _ => {}
        }
        if self.awaiting_reply {
            self.replies.push_back(message);
        }
    }
}

impl<S: Read + Write + Send> CanBus for SlcanBus<S> {
    fn send(&mut self, frame: &CanFrame) -> Result<(), CanError> {
        self.write(&encode_command(&Command::Transmit(*frame)))?;
        self.stats.frames_sent += 1;
        Ok(())
    }

    fn recv(&mut self, timeout: Duration) -> Result<Option<CanFrame>, CanError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(frame) = self.frames.pop_front() {
                return Ok(Some(frame));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            self.pump()?;
        }
    }

    fn describe(&self) -> String {
        let mut text = format!("SLCAN adapter on {} at {}", self.label, self.bitrate);
        let s = &self.stats;
        if s.error_replies > 0 || s.discarded_lines > 0 {
            let plural =
                |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
            text.push_str(&format!(
                " ({}, {})",
                plural(s.error_replies, "error reply", "error replies"),
                plural(s.discarded_lines, "discarded line", "discarded lines")
            ));
        }
        text
    }
}
