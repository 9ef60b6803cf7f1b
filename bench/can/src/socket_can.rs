//! Linux SocketCAN interfaces (`can0`, `vcan0`, …).

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use socketcan::{CanSocket, EmbeddedFrame, ExtendedId, Id, Socket, StandardId};

use crate::bus::{CanBus, CanError};
use crate::frame::{CanFrame, CanId};

/// A CAN bus on a SocketCAN network interface. The interface must exist and
/// be up (`ip link set can0 up type can bitrate 500000`): bitrate is the
/// kernel's business here, not ours.
#[derive(Debug)]
pub struct SocketCanBus {
    socket: CanSocket,
    interface: String,
}

impl SocketCanBus {
    pub fn open(interface: &str) -> Result<Self, CanError> {
        let socket = CanSocket::open(interface).map_err(|error| CanError::Io {
            context: format!(
                "SocketCAN interface {interface}: cannot open it (is it there and up? \
                 `ip link show {interface}`)"
            ),
            error,
        })?;
        Ok(Self {
            socket,
            interface: interface.to_owned(),
        })
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    fn io_error(&self, what: &str, error: std::io::Error) -> CanError {
        CanError::Io {
            context: format!("SocketCAN interface {}: {what} failed", self.interface),
            error,
        }
    }
}

fn to_socketcan(frame: &CanFrame) -> socketcan::CanFrame {
    let raw = frame.id().raw();
    // CanId and CanFrame are validated, so the conversions cannot fail.
    let id = if frame.id().is_extended() {
        Id::Extended(ExtendedId::new(raw).expect("CanId holds a valid 29-bit id"))
    } else {
        Id::Standard(StandardId::new(raw as u16).expect("CanId holds a valid 11-bit id"))
    };
    let converted = if frame.is_remote() {
        socketcan::CanFrame::new_remote(id, usize::from(frame.dlc()))
    } else {
        socketcan::CanFrame::new(id, frame.data())
    };
    converted.expect("CanFrame holds a valid classic frame")
}

fn from_socketcan(frame: &socketcan::CanFrame) -> Result<CanFrame, CanError> {
    let id = match frame.id() {
        Id::Standard(id) => CanId::standard(id.as_raw())?,
        Id::Extended(id) => CanId::extended(id.as_raw())?,
    };
    Ok(if frame.is_remote_frame() {
        CanFrame::remote(id, frame.dlc() as u8)?
    } else {
        CanFrame::new(id, frame.data())?
    })
}

impl CanBus for SocketCanBus {
    fn send(&mut self, frame: &CanFrame) -> Result<(), CanError> {
        self.socket
            .write_frame(&to_socketcan(frame))
            .map_err(|e| self.io_error("send", e))
    }

    fn recv(&mut self, timeout: Duration) -> Result<Option<CanFrame>, CanError> {
        let deadline = Instant::now() + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self.socket.read_frame_timeout(remaining) {
                // Error frames only arrive when subscribed to; skip them.
                Ok(socketcan::CanFrame::Error(_)) => {}
                Ok(frame) => return from_socketcan(&frame).map(Some),
                Err(e) if e.kind() == ErrorKind::TimedOut => return Ok(None),
                Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::WouldBlock) => {}
                Err(e) => return Err(self.io_error("receive", e)),
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }

    fn describe(&self) -> String {
        format!("SocketCAN interface {}", self.interface)
    }
}
