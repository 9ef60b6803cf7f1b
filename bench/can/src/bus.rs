//! The capability every CAN transport offers, and its error type.

use std::io;
use std::time::Duration;

use crate::frame::{CanFrame, FrameError};

/// A CAN bus: send and receive classic frames.
///
/// Implemented by [`SlcanBus`](crate::SlcanBus) (serial-line adapters),
/// `SocketCanBus` (Linux), [`SlcanDevice`](crate::SlcanDevice) (the far end
/// a simulated adapter serves) and [`ScriptedBus`](crate::ScriptedBus) (tests).
pub trait CanBus: Send {
    /// Queue one frame for transmission.
    fn send(&mut self, frame: &CanFrame) -> Result<(), CanError>;

    /// The next received frame, or `None` when none arrived within `timeout`.
    ///
    /// Transports honour `timeout` to their own read granularity (a serial
    /// port's read timeout, for instance).
    fn recv(&mut self, timeout: Duration) -> Result<Option<CanFrame>, CanError>;

    /// What this bus is, for logs and error messages: `SLCAN adapter on
    /// /dev/ttyACM0 at 500 kbit/s`.
    fn describe(&self) -> String;
}

impl<B: CanBus + ?Sized> CanBus for &mut B {
    fn send(&mut self, frame: &CanFrame) -> Result<(), CanError> {
        (**self).send(frame)
    }

    fn recv(&mut self, timeout: Duration) -> Result<Option<CanFrame>, CanError> {
        (**self).recv(timeout)
    }

    fn describe(&self) -> String {
        (**self).describe()
    }
}

impl<B: CanBus + ?Sized> CanBus for Box<B> {
    fn send(&mut self, frame: &CanFrame) -> Result<(), CanError> {
        (**self).send(frame)
    }

    fn recv(&mut self, timeout: Duration) -> Result<Option<CanFrame>, CanError> {
        (**self).recv(timeout)
    }

    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// A transport failure.
#[derive(Debug, thiserror::Error)]
pub enum CanError {
    /// The byte stream or socket under the bus failed.
    #[error("{context}: {error}")]
    Io { context: String, error: io::Error },
    /// The adapter refused a command or did not answer it.
    #[error("{adapter}: {message}")]
    Adapter { adapter: String, message: String },
    #[error(transparent)]
    Frame(#[from] FrameError),
}
