//! CAN identifiers and classic CAN frames, validated at construction.

use std::fmt;

use crate::util::hex;

/// An 11-bit standard or 29-bit extended CAN identifier.
///
/// Displayed as hex with the width of its format: `0x7E8`, `0x18DAF110`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CanId {
    raw: u32,
    extended: bool,
}

impl CanId {
    /// Largest 11-bit identifier.
    pub const STANDARD_MAX: u16 = 0x7FF;
    /// Largest 29-bit identifier.
    pub const EXTENDED_MAX: u32 = 0x1FFF_FFFF;

    /// A standard (11-bit) identifier, `0..=0x7FF`.
    pub const fn standard(id: u16) -> Result<Self, FrameError> {
        if id > Self::STANDARD_MAX {
            return Err(FrameError::StandardIdOutOfRange(id));
        }
        Ok(Self {
            raw: id as u32,
            extended: false,
        })
    }

    /// An extended (29-bit) identifier, `0..=0x1FFF_FFFF`.
    pub const fn extended(id: u32) -> Result<Self, FrameError> {
        if id > Self::EXTENDED_MAX {
            return Err(FrameError::ExtendedIdOutOfRange(id));
        }
        Ok(Self {
            raw: id,
            extended: true,
        })
    }

    /// A 29-bit identifier when `extended`, else an 11-bit one.
    pub const fn new(id: u32, extended: bool) -> Result<Self, FrameError> {
        if extended {
            Self::extended(id)
        } else if id > u16::MAX as u32 {
            Err(FrameError::StandardIdOutOfRange(u16::MAX))
        } else {
            Self::standard(id as u16)
        }
    }

    /// The identifier's numeric value.
    pub const fn raw(self) -> u32 {
        self.raw
    }

    /// Whether this is a 29-bit identifier.
    pub const fn is_extended(self) -> bool {
        self.extended
    }
}

impl fmt::Display for CanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.extended {
            write!(f, "{:#010X}", self.raw)
        } else {
            write!(f, "{:#05X}", self.raw)
        }
    }
}

impl fmt::Debug for CanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A classic CAN frame: up to 8 data bytes, or a remote (RTR) frame with a DLC
/// and no data.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CanFrame {
    id: CanId,
    len: u8,
    data: [u8; 8],
    rtr: bool,
}

impl CanFrame {
    /// Most data bytes in a classic CAN frame.
    pub const MAX_DATA: usize = 8;

    /// A data frame.
    pub fn new(id: CanId, data: &[u8]) -> Result<Self, FrameError> {
        if data.len() > Self::MAX_DATA {
            return Err(FrameError::TooLong(data.len()));
        }
        let mut bytes = [0; 8];
        bytes[..data.len()].copy_from_slice(data);
        Ok(Self {
            id,
            len: data.len() as u8,
            data: bytes,
            rtr: false,
        })
    }

    /// A remote (RTR) frame requesting `dlc` bytes.
    pub fn remote(id: CanId, dlc: u8) -> Result<Self, FrameError> {
        if usize::from(dlc) > Self::MAX_DATA {
            return Err(FrameError::DlcTooLarge(dlc));
        }
        Ok(Self {
            id,
            len: dlc,
            data: [0; 8],
            rtr: true,
        })
    }

    pub fn id(&self) -> CanId {
        self.id
    }

    /// The data bytes; empty for a remote frame.
    pub fn data(&self) -> &[u8] {
        if self.rtr {
            &[]
        } else {
            &self.data[..usize::from(self.len)]
        }
    }

    /// The data length code: the data length, or the requested length of a
    /// remote frame.
    pub fn dlc(&self) -> u8 {
        self.len
    }

    pub fn is_remote(&self) -> bool {
        self.rtr
    }
}

impl fmt::Display for CanFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rtr {
            write!(f, "{} RTR dlc {}", self.id, self.len)
        } else {
            write!(f, "{} [{}]", self.id, hex(self.data()))
        }
    }
}

impl fmt::Debug for CanFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CanFrame({self})")
    }
}

/// An identifier or frame that classic CAN cannot carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("standard CAN id {0:#X} is out of range (11 bits, at most 0x7FF)")]
    StandardIdOutOfRange(u16),
    #[error("extended CAN id {0:#X} is out of range (29 bits, at most 0x1FFFFFFF)")]
    ExtendedIdOutOfRange(u32),
    #[error("{0} data bytes do not fit a classic CAN frame (at most 8)")]
    TooLong(usize),
    #[error("DLC {0} is out of range for classic CAN (at most 8)")]
    DlcTooLarge(u8),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_validated_and_displayed_with_their_width() {
        assert_eq!(CanId::standard(0x7E8).unwrap().to_string(), "0x7E8");
        assert_eq!(CanId::standard(0x10).unwrap().to_string(), "0x010");
        assert_eq!(
            CanId::extended(0x18DA_F110).unwrap().to_string(),
            "0x18DAF110"
        );
        assert_eq!(
            CanId::standard(0x800),
            Err(FrameError::StandardIdOutOfRange(0x800))
        );
        assert!(CanId::extended(0x2000_0000).is_err());
        assert_ne!(CanId::standard(0x100), CanId::extended(0x100));
    }

    #[test]
    fn frames_hold_at_most_eight_bytes() {
        let id = CanId::standard(0x123).unwrap();
        let frame = CanFrame::new(id, &[1, 2, 3]).unwrap();
        assert_eq!(frame.data(), &[1, 2, 3]);
        assert_eq!(frame.dlc(), 3);
        assert_eq!(frame.to_string(), "0x123 [01 02 03]");
        assert_eq!(CanFrame::new(id, &[0; 9]), Err(FrameError::TooLong(9)));
        let remote = CanFrame::remote(id, 8).unwrap();
        assert!(remote.is_remote());
        assert!(remote.data().is_empty());
        assert_eq!(remote.dlc(), 8);
        assert!(CanFrame::remote(id, 9).is_err());
    }
}
