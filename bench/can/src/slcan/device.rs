//! The adapter side: what a simulated USB-CAN adapter runs on the far end of
//! a pseudo-terminal, with the simulated bus behind it.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use super::{Bitrate, Command, LineReader, Message, Token, encode_message, parse_command};
use crate::bus::{CanBus, CanError};
use crate::frame::CanFrame;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Closed,
    Open,
    ListenOnly,
}

/// A simulated SLCAN adapter. As a [`CanBus`] it is the bus the simulated
/// nodes sit on: [`recv`](CanBus::recv) answers the host's commands and
/// yields the frames the host transmits; [`send`](CanBus::send) puts a frame
/// on the bus, which the host sees while its channel is open.
///
/// Strict like a Lawicel CANUSB: `O` needs a bitrate set first, `S` and `Z`
/// need the channel closed, and refused or malformed commands get BEL.
#[derive(Debug)]
pub struct SlcanDevice<S> {
    stream: S,
    reader: LineReader,
    channel: Channel,
    bitrate: Option<Bitrate>,
    timestamps: bool,
    opened_at: Instant,
    version: String,
    serial_number: String,
    frames: VecDeque<CanFrame>,
}

impl<S: Read + Write + Send> SlcanDevice<S> {
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            reader: LineReader::new(),
            channel: Channel::Closed,
            bitrate: None,
            timestamps: false,
            opened_at: Instant::now(),
            version: "1010".into(),
            serial_number: "SIM0".into(),
            frames: VecDeque::new(),
        }
    }

    /// What `V` and `N` answer (printable ASCII, no spaces).
    pub fn with_identity(
        mut self,
        version: impl Into<String>,
        serial_number: impl Into<String>,
    ) -> Self {
        self.version = version.into();
        self.serial_number = serial_number.into();
        self
    }

    pub fn is_open(&self) -> bool {
        self.channel != Channel::Closed
    }

    pub fn bitrate(&self) -> Option<Bitrate> {
        self.bitrate
    }

    pub fn into_inner(self) -> S {
        self.stream
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), CanError> {
        self.stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
            .map_err(|error| CanError::Io {
                context: "simulated SLCAN adapter: write to host failed".into(),
                error,
            })
    }

    fn pump(&mut self) -> Result<(), CanError> {
        let mut buf = [0u8; 256];
        match self.stream.read(&mut buf) {
            Ok(0) => std::thread::sleep(Duration::from_millis(1)),
            Ok(n) => {
                for &byte in &buf[..n] {
                    match self.reader.push(byte) {
                        Some(Token::Line(line)) => {
                            let reply = self.execute(&line);
                            self.write(&encode_message(&reply))?;
                        }
                        Some(Token::Discarded(_)) => {
                            self.write(&encode_message(&Message::Error))?
                        }
                        Some(Token::Bell) | None => {}
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
            Err(error) => {
                return Err(CanError::Io {
                    context: "simulated SLCAN adapter: read from host failed".into(),
                    error,
                });
            }
        }
        Ok(())
    }

    fn execute(&mut self, line: &[u8]) -> Message {
        let Ok(command) = parse_command(line) else {
            return Message::Error;
        };
        let closed = self.channel == Channel::Closed;
        match command {
            Command::Open | Command::ListenOnly if closed && self.bitrate.is_some() => {
                self.channel = if command == Command::Open {
                    Channel::Open
                } else {
                    Channel::ListenOnly
                };
                self.opened_at = Instant::now();
                Message::Ok
            }
            Command::Close if !closed => {
                self.channel = Channel::Closed;
                Message::Ok
            }
            Command::SetBitrate(bitrate) if closed => {
                self.bitrate = Some(bitrate);
                Message::Ok
            }
            Command::Timestamps(on) if closed => {
                self.timestamps = on;
                Message::Ok
            }
            Command::Transmit(frame) if self.channel == Channel::Open => {
                self.frames.push_back(frame);
                Message::Transmitted {
                    extended: frame.id().is_extended(),
                }
            }
            Command::Version => Message::Version(self.version.clone()),
            Command::SerialNumber => Message::SerialNumber(self.serial_number.clone()),
            Command::Status if !closed => Message::Status(0),
            _ => Message::Error,
        }
    }
}

impl<S: Read + Write + Send> CanBus for SlcanDevice<S> {
    /// Frames sent while the host's channel is closed are on the bus but not
    /// forwarded, as with real hardware.
    fn send(&mut self, frame: &CanFrame) -> Result<(), CanError> {
        if self.channel == Channel::Closed {
            return Ok(());
        }
        // Lawicel timestamps are milliseconds wrapping at 60 000.
        let timestamp = self
            .timestamps
            .then(|| (self.opened_at.elapsed().as_millis() % 60_000) as u16);
        self.write(&encode_message(&Message::Frame {
            frame: *frame,
            timestamp,
        }))
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
        match (self.channel, self.bitrate) {
            (Channel::Closed, _) | (_, None) => "simulated SLCAN adapter (channel closed)".into(),
            (_, Some(bitrate)) => format!("simulated SLCAN adapter (channel open at {bitrate})"),
        }
    }
}
