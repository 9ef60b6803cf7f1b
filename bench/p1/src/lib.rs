//! DSMR P1 telegrams, pure (no I/O): a streaming [`Decoder`] that frames and
//! CRC-checks telegrams in a byte stream of any chunking, the typed [`Telegram`]
//! model, and [`encode_csp1_telegram`], the Xemex CSP1's telegram for the
//! simulated bench.
//!
//! Facts followed: DSMR P1 Companion Standard 5.0.2 (and 4.x, 2.2/3.0) and the
//! CSP1 manual; see `shared/docs/p1.md`.
//!
//! ```
//! use meterbench_p1::{Csp1Params, Decimal, decode_all, encode_csp1_telegram};
//!
//! let bytes = encode_csp1_telegram(&Csp1Params::default());
//! let telegram = decode_all(&bytes).remove(0).unwrap();
//! assert_eq!(telegram.currents(), [Some(Decimal::new(24, 0)); 3]);
//! assert_eq!(telegram.firmware_id(), Some("XMX_P1CS_V05"));
//! ```

mod csp1;
mod decimal;
mod decoder;
mod model;
mod parse;

pub use csp1::{Csp1Params, csp1_quantise, encode_csp1_telegram};
pub use decimal::{Decimal, DecimalError};
pub use decoder::{DecodeError, Decoder, ErrorKind, Limits, crc16, decode_all};
pub use model::{
    Deviation, DeviationKind, Header, Line, MbusReading, Obis, Octets, Phase, PowerFailure, Season,
    Telegram, Timestamp, Value,
};
