//! UDS (ISO 14229-1) ReadDataByIdentifier over ISO-TP: the client call the
//! bench reads software identities with, and a server answering from a
//! table, for simulated meters.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use crate::bus::CanBus;
use crate::frame::CanId;
use crate::isotp::{IsoTpAddress, IsoTpClient, IsoTpError, MAX_SHORT_LEN};
use crate::util::{hex, human};

/// ReadDataByIdentifier service id.
pub const SID_READ_DATA_BY_IDENTIFIER: u8 = 0x22;
/// A positive response's service id is the request's plus this.
const POSITIVE: u8 = 0x40;
const NEGATIVE: u8 = 0x7F;

/// ISO 14229-2's default P2*server_max: how long a server may keep
/// answering "response pending".
pub const DEFAULT_P2_STAR: Duration = Duration::from_secs(5);

/// Client timeouts: P2 for the first answer, P2* after each "response
/// pending" (NRC 0x78). A plain `Duration` converts to P2 = that duration,
/// P2* = the longer of it and 5 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdsTimeouts {
    pub p2: Duration,
    pub p2_star: Duration,
}

impl From<Duration> for UdsTimeouts {
    fn from(p2: Duration) -> Self {
        Self {
            p2,
            p2_star: p2.max(DEFAULT_P2_STAR),
        }
    }
}

/// A negative response code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Nrc {
    GeneralReject,
    ServiceNotSupported,
    SubFunctionNotSupported,
    IncorrectMessageLengthOrInvalidFormat,
    ResponseTooLong,
    ConditionsNotCorrect,
    RequestOutOfRange,
    SecurityAccessDenied,
    RequestCorrectlyReceivedResponsePending,
    Other(u8),
}

impl Nrc {
    pub fn from_code(code: u8) -> Self {
        match code {
            0x10 => Nrc::GeneralReject,
            0x11 => Nrc::ServiceNotSupported,
            0x12 => Nrc::SubFunctionNotSupported,
            0x13 => Nrc::IncorrectMessageLengthOrInvalidFormat,
            0x14 => Nrc::ResponseTooLong,
            0x22 => Nrc::ConditionsNotCorrect,
            0x31 => Nrc::RequestOutOfRange,
            0x33 => Nrc::SecurityAccessDenied,
            0x78 => Nrc::RequestCorrectlyReceivedResponsePending,
            other => Nrc::Other(other),
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Nrc::GeneralReject => 0x10,
            Nrc::ServiceNotSupported => 0x11,
            Nrc::SubFunctionNotSupported => 0x12,
            Nrc::IncorrectMessageLengthOrInvalidFormat => 0x13,
            Nrc::ResponseTooLong => 0x14,
            Nrc::ConditionsNotCorrect => 0x22,
            Nrc::RequestOutOfRange => 0x31,
            Nrc::SecurityAccessDenied => 0x33,
            Nrc::RequestCorrectlyReceivedResponsePending => 0x78,
            Nrc::Other(code) => code,
        }
    }

    /// The ISO 14229-1 name, `None` for codes not named here.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Nrc::GeneralReject => "generalReject",
            Nrc::ServiceNotSupported => "serviceNotSupported",
            Nrc::SubFunctionNotSupported => "subFunctionNotSupported",
            Nrc::IncorrectMessageLengthOrInvalidFormat => "incorrectMessageLengthOrInvalidFormat",
            Nrc::ResponseTooLong => "responseTooLong",
            Nrc::ConditionsNotCorrect => "conditionsNotCorrect",
            Nrc::RequestOutOfRange => "requestOutOfRange",
            Nrc::SecurityAccessDenied => "securityAccessDenied",
            Nrc::RequestCorrectlyReceivedResponsePending => {
                "requestCorrectlyReceived-ResponsePending"
            }
            Nrc::Other(_) => return None,
        })
    }

    /// What an operator can do about it.
    fn hint(self) -> &'static str {
        match self {
            Nrc::RequestOutOfRange => {
                "; the meter does not know this data identifier: check the DIDs in the fixture \
                 profile"
            }
            Nrc::ServiceNotSupported => {
                "; the meter does not offer ReadDataByIdentifier on these ids: check the CAN ids \
                 in the fixture profile"
            }
            Nrc::SecurityAccessDenied => "; the meter wants security access for this identifier",
            Nrc::ConditionsNotCorrect => "; the meter is not in a state to answer: retry later",
            _ => "",
        }
    }
}

impl fmt::Display for Nrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} (NRC {:#04X})", self.code()),
            None => write!(f, "NRC {:#04X}", self.code()),
        }
    }
}

/// A failed ReadDataByIdentifier; every message names the DID and CAN ids.
#[derive(Debug, thiserror::Error)]
pub enum UdsError {
    #[error(
        "no answer on CAN id {response_id} to ReadDataByIdentifier {did:#06X} sent on \
         {request_id} within {} ({bus}); check wiring, termination, bitrate and the CAN ids \
         in the fixture profile",
        human(.timeout)
    )]
    NoAnswer {
        request_id: CanId,
        response_id: CanId,
        did: u16,
        timeout: Duration,
        bus: String,
    },
    #[error(
        "ReadDataByIdentifier {did:#06X} sent on {request_id}: the meter answered \
         'response pending' (NRC 0x78) on {response_id} but no final answer followed within {}",
        human(.p2_star)
    )]
    StillPending {
        request_id: CanId,
        response_id: CanId,
        did: u16,
        p2_star: Duration,
    },
    #[error(
        "ReadDataByIdentifier {did:#06X} sent on {request_id} was refused on {response_id}: \
         {nrc}{}",
        .nrc.hint()
    )]
    Negative {
        request_id: CanId,
        response_id: CanId,
        did: u16,
        nrc: Nrc,
    },
    #[error(
        "asked ReadDataByIdentifier {did:#06X} on {request_id} but the answer on \
         {response_id} is for {got:#06X}; is another tester on the bus?"
    )]
    DidMismatch {
        request_id: CanId,
        response_id: CanId,
        did: u16,
        got: u16,
    },
    #[error(
        "unexpected answer [{}] on {response_id} to ReadDataByIdentifier {did:#06X} sent on \
         {request_id}: {reason}",
        hex(.response)
    )]
    UnexpectedResponse {
        request_id: CanId,
        response_id: CanId,
        did: u16,
        response: Vec<u8>,
        reason: &'static str,
    },
    #[error(
        "ReadDataByIdentifier {did:#06X} (request on {request_id}, answer on {response_id}): \
         {error}"
    )]
    IsoTp {
        request_id: CanId,
        response_id: CanId,
        did: u16,
        error: IsoTpError,
    },
}

/// Read one data identifier: send `22 hi lo` on `request_id` and return the
/// data of the `62 hi lo data…` answer on `response_id`. Waits `timeout` (P2)
/// for an answer, and P2* more after each "response pending".
pub fn read_data_by_identifier<B: CanBus>(
    isotp: &mut IsoTpClient<B>,
    request_id: CanId,
    response_id: CanId,
    did: u16,
    timeout: impl Into<UdsTimeouts>,
) -> Result<Vec<u8>, UdsError> {
    let timeouts = timeout.into();
    let address = IsoTpAddress::new(request_id, response_id);
    let isotp_error = |error| UdsError::IsoTp {
        request_id,
        response_id,
        did,
        error,
    };
    let [hi, lo] = did.to_be_bytes();
    isotp
        .send(address, &[SID_READ_DATA_BY_IDENTIFIER, hi, lo])
        .map_err(isotp_error)?;
    let mut deadline = Instant::now() + timeouts.p2;
    let mut pending = false;
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        let Some(response) = isotp.recv(address, wait).map_err(isotp_error)? else {
            return Err(if pending {
                UdsError::StillPending {
                    request_id,
                    response_id,
                    did,
                    p2_star: timeouts.p2_star,
                }
            } else {
                UdsError::NoAnswer {
                    request_id,
                    response_id,
                    did,
                    timeout: timeouts.p2,
                    bus: isotp.bus().describe(),
                }
            });
        };
        let unexpected = |reason| UdsError::UnexpectedResponse {
            request_id,
            response_id,
            did,
            response: response.clone(),
            reason,
        };
        match response.as_slice() {
            [0x62, h, l, data @ ..] if [*h, *l] == [hi, lo] => return Ok(data.to_vec()),
            [0x62, h, l, ..] => {
                return Err(UdsError::DidMismatch {
                    request_id,
                    response_id,
                    did,
                    got: u16::from_be_bytes([*h, *l]),
                });
            }
            [NEGATIVE, SID_READ_DATA_BY_IDENTIFIER, code] => match Nrc::from_code(*code) {
                Nrc::RequestCorrectlyReceivedResponsePending => {
                    pending = true;
                    deadline = Instant::now() + timeouts.p2_star;
                }
                nrc => {
                    return Err(UdsError::Negative {
                        request_id,
                        response_id,
                        did,
                        nrc,
                    });
                }
            },
            [NEGATIVE, ..] => {
                return Err(unexpected(
                    "a negative response, but not to ReadDataByIdentifier",
                ));
            }
            [0x62, ..] => return Err(unexpected("a positive response too short to hold a DID")),
            _ => return Err(unexpected("not a ReadDataByIdentifier response")),
        }
    }
}

/// Answers ReadDataByIdentifier from a table, as a simulated meter does:
/// several DIDs per request are answered in order, unknown ones skipped,
/// and a request with none known gets NRC 0x31 (ISO 14229-1 §10.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UdsServer {
    dids: BTreeMap<u16, Vec<u8>>,
}

impl UdsServer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_did(mut self, did: u16, data: impl Into<Vec<u8>>) -> Self {
        self.set_did(did, data);
        self
    }

    pub fn set_did(&mut self, did: u16, data: impl Into<Vec<u8>>) {
        self.dids.insert(did, data.into());
    }

    pub fn did(&self, did: u16) -> Option<&[u8]> {
        self.dids.get(&did).map(Vec::as_slice)
    }

    /// The response to one request; `None` (no answer) for an empty one.
    pub fn handle(&self, request: &[u8]) -> Option<Vec<u8>> {
        let (&sid, body) = request.split_first()?;
        let negative = |nrc: Nrc| Some(vec![NEGATIVE, sid, nrc.code()]);
        if sid != SID_READ_DATA_BY_IDENTIFIER {
            return negative(Nrc::ServiceNotSupported);
        }
        if body.is_empty() || !body.len().is_multiple_of(2) {
            return negative(Nrc::IncorrectMessageLengthOrInvalidFormat);
        }
        let mut response = vec![SID_READ_DATA_BY_IDENTIFIER + POSITIVE];
        for pair in body.chunks_exact(2) {
            if let Some(data) = self.dids.get(&u16::from_be_bytes([pair[0], pair[1]])) {
                response.extend_from_slice(pair);
                response.extend_from_slice(data);
            }
        }
        if response.len() == 1 {
            return negative(Nrc::RequestOutOfRange);
        }
        if response.len() > MAX_SHORT_LEN {
            return negative(Nrc::ResponseTooLong);
        }
        Some(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nrcs_have_their_iso_names() {
        for code in 0..=255u8 {
            assert_eq!(Nrc::from_code(code).code(), code);
        }
        assert_eq!(
            Nrc::RequestOutOfRange.to_string(),
            "requestOutOfRange (NRC 0x31)"
        );
        assert_eq!(
            Nrc::from_code(0x78).to_string(),
            "requestCorrectlyReceived-ResponsePending (NRC 0x78)"
        );
        assert_eq!(Nrc::from_code(0x7E).to_string(), "NRC 0x7E");
    }

    #[test]
    fn server_answers_from_its_table() {
        let server = UdsServer::new()
            .with_did(0xF189, b"1.2.3".to_vec())
            .with_did(0xF1A0, vec![0xAB; 4]);
        assert_eq!(
            server.handle(&[0x22, 0xF1, 0x89]).unwrap(),
            b"\x62\xF1\x891.2.3".to_vec()
        );
        assert_eq!(
            server
                .handle(&[0x22, 0xF1, 0x89, 0x12, 0x34, 0xF1, 0xA0])
                .unwrap(),
            [
                &[0x62, 0xF1, 0x89][..],
                b"1.2.3",
                &[0xF1, 0xA0, 0xAB, 0xAB, 0xAB, 0xAB]
            ]
            .concat()
        );
        assert_eq!(
            server.handle(&[0x22, 0x12, 0x34]).unwrap(),
            [0x7F, 0x22, 0x31]
        );
        assert_eq!(server.handle(&[0x22, 0xF1]).unwrap(), [0x7F, 0x22, 0x13]);
        assert_eq!(server.handle(&[0x22]).unwrap(), [0x7F, 0x22, 0x13]);
        assert_eq!(server.handle(&[0x10, 0x01]).unwrap(), [0x7F, 0x10, 0x11]);
        assert_eq!(server.handle(&[]), None);
        let big = UdsServer::new().with_did(1, vec![0; 4093]);
        assert_eq!(big.handle(&[0x22, 0, 1]).unwrap(), [0x7F, 0x22, 0x14]);
    }
}
