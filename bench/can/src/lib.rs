//! The bench's CAN stack, for reading a meter's software identity: CAN
//! transports behind one trait, ISO-TP (ISO 15765-2) and UDS
//! ReadDataByIdentifier (ISO 14229-1).
//!
//! - [`CanBus`]: send and receive classic [`CanFrame`]s. Transports:
//!   [`SlcanBus`] (USB-CAN adapters speaking SLCAN over a serial line or
//!   pseudo-terminal), `SocketCanBus` (Linux), [`ScriptedBus`] (tests), and
//!   [`SlcanDevice`], the adapter's end for simulated meters.
//! - [`isotp`]: pure segmentation state machines, [`IsoTpClient`] and
//!   [`IsoTpServer`].
//! - [`uds`]: [`read_data_by_identifier`] and [`UdsServer`].
//!
//! ```
//! use std::time::Duration;
//! use meterbench_can::{
//!     CanFrame, CanId, IsoTpClient, IsoTpConfig, ScriptedBus, read_data_by_identifier,
//! };
//!
//! let (request, response) = (CanId::standard(0x7E0)?, CanId::standard(0x7E8)?);
//! let bus = ScriptedBus::new()
//!     .expect(CanFrame::new(request, &[0x03, 0x22, 0xF1, 0x89, 0xCC, 0xCC, 0xCC, 0xCC])?)
//!     .reply(CanFrame::new(response, &[0x06, 0x62, 0xF1, 0x89, b'1', b'.', b'4'])?);
//! let mut isotp = IsoTpClient::new(bus, IsoTpConfig::default());
//! let version = read_data_by_identifier(&mut isotp, request, response, 0xF189, Duration::from_secs(1))?;
//! assert_eq!(version, b"1.4");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bus;
mod frame;
pub mod identity;
pub mod isotp;
pub mod pipe;
mod scripted;
pub mod slcan;
#[cfg(target_os = "linux")]
mod socket_can;
pub mod uds;
mod util;

pub use bus::{CanBus, CanError};
pub use frame::{CanFrame, CanId, FrameError};
pub use identity::{IdentityDids, SoftwareIdentity, hash_bytes, hash_hex, read_software_identity};
pub use isotp::{IsoTpAddress, IsoTpClient, IsoTpConfig, IsoTpError, IsoTpServer};
pub use scripted::ScriptedBus;
pub use slcan::{Bitrate, SlcanBus, SlcanDevice, SlcanStats};
#[cfg(target_os = "linux")]
pub use socket_can::SocketCanBus;
pub use uds::{Nrc, UdsError, UdsServer, UdsTimeouts, read_data_by_identifier};
