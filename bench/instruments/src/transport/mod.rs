//! Byte transports under the instrument protocols: a serial port (or a pseudo-terminal),
//! a raw TCP socket, and a scripted transport that replays recorded exchanges so protocol
//! code is tested without hardware.

mod buffered;
pub mod scripted;
pub mod serial;
pub mod tcp;

pub use scripted::{ScriptStep, ScriptedTransport};
pub use serial::{SerialSettings, SerialTransport};
pub use tcp::{DEFAULT_SCPI_PORT, TcpTransport};

use std::time::Duration;

/// Why a transport operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Nothing (or not enough) arrived in time; `partial` holds what did arrive.
    #[error("no complete message within {waited:?} (received so far: {partial:?})", partial = String::from_utf8_lossy(partial))]
    Timeout { waited: Duration, partial: Vec<u8> },
    /// The far end went away (EOF, hang-up, reset).
    #[error("link closed: {0}")]
    Closed(String),
    /// The transport cannot do this (e.g. RTS on a TCP socket).
    #[error("{operation} is not supported on {transport}")]
    Unsupported {
        operation: &'static str,
        transport: String,
    },
    /// A message grew beyond the limit without its terminator: the framing is lost.
    #[error("no terminator within {0} bytes")]
    Overflow(usize),
    // Transparent: shown once in an error chain, not as itself and again as its source.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Messages longer than this without a terminator are a framing error, not a reply.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// A byte link to one instrument. Implementations buffer input, so bytes that arrive
/// after a terminator are kept for the next read.
pub trait Transport: Send {
    /// Write all bytes. Where one write ends says nothing on the wire (the scripted
    /// transport matches the byte stream).
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), TransportError>;
    /// Read up to and including `terminator`; returns the message without it.
    fn read_until(&mut self, terminator: u8, timeout: Duration) -> Result<Vec<u8>, TransportError>;
    /// Read exactly `n` bytes.
    fn read_exact(&mut self, n: usize, timeout: Duration) -> Result<Vec<u8>, TransportError>;
    /// Drop everything received and not yet read (stale replies after a timeout).
    fn discard_input(&mut self) -> Result<(), TransportError>;
    /// Drive the RTS line, where the transport has one.
    fn set_rts(&mut self, _level: bool) -> Result<(), TransportError> {
        Err(TransportError::Unsupported {
            operation: "RTS control",
            transport: self.describe(),
        })
    }
    /// Drive the DTR line, where the transport has one.
    fn set_dtr(&mut self, _level: bool) -> Result<(), TransportError> {
        Err(TransportError::Unsupported {
            operation: "DTR control",
            transport: self.describe(),
        })
    }
    /// Human-readable link, e.g. "serial /dev/ttyUSB0 115200 8N1" or "tcp 192.168.0.5:5025".
    fn describe(&self) -> String;
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), TransportError> {
        (**self).write_all(bytes)
    }
    fn read_until(&mut self, terminator: u8, timeout: Duration) -> Result<Vec<u8>, TransportError> {
        (**self).read_until(terminator, timeout)
    }
    fn read_exact(&mut self, n: usize, timeout: Duration) -> Result<Vec<u8>, TransportError> {
        (**self).read_exact(n, timeout)
    }
    fn discard_input(&mut self) -> Result<(), TransportError> {
        (**self).discard_input()
    }
    fn set_rts(&mut self, level: bool) -> Result<(), TransportError> {
        (**self).set_rts(level)
    }
    fn set_dtr(&mut self, level: bool) -> Result<(), TransportError> {
        (**self).set_dtr(level)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}
