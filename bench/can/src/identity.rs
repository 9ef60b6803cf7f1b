//! Reading a meter's software identity over UDS ReadDataByIdentifier: the software
//! version (ASCII), the software hash and one legally relevant software (LRS) hash per
//! measuring port (raw bytes, shown as upper-case hex as on the meter's LCD). Which
//! identifiers hold them is fixture data.

use crate::isotp::IsoTpClient;
use crate::uds::{UdsError, UdsTimeouts, read_data_by_identifier};
use crate::{CanBus, CanId};

/// Where the identity is: the request/response CAN ids and the data identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityDids {
    pub request_id: CanId,
    pub response_id: CanId,
    pub software_version: u16,
    pub software_hash: u16,
    /// (port, DID), in the fixture's port order.
    pub lrs_hash: Vec<(String, u16)>,
}

/// A software identity as the meter reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftwareIdentity {
    pub software_version: String,
    pub software_hash: String,
    /// (port, hash).
    pub lrs_hash: Vec<(String, String)>,
}

/// Upper-case hex of raw hash bytes.
pub fn hash_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The bytes a hash's upper- or lower-case hex stands for (`None`: not hex).
pub fn hash_bytes(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Read version, software hash and every port's LRS hash, one request each.
pub fn read_software_identity<B: CanBus>(
    isotp: &mut IsoTpClient<B>,
    dids: &IdentityDids,
    timeout: impl Into<UdsTimeouts> + Copy,
) -> Result<SoftwareIdentity, UdsError> {
    let mut read =
        |did| read_data_by_identifier(isotp, dids.request_id, dids.response_id, did, timeout);
    let version = read(dids.software_version)?;
    let software_hash = hash_hex(&read(dids.software_hash)?);
    let mut lrs_hash = Vec::new();
    for (port, did) in &dids.lrs_hash {
        lrs_hash.push((port.clone(), hash_hex(&read(*did)?)));
    }
    Ok(SoftwareIdentity {
        software_version: String::from_utf8_lossy(&version).trim().to_string(),
        software_hash,
        lrs_hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_round_trip_through_hex() {
        assert_eq!(hash_hex(&[0xA3, 0xF0, 0x9C, 0x4E]), "A3F09C4E");
        assert_eq!(hash_bytes("a3f09c4e"), Some(vec![0xA3, 0xF0, 0x9C, 0x4E]));
        assert_eq!(hash_bytes("A3F"), None);
        assert_eq!(hash_bytes("ZZ"), None);
    }
}
