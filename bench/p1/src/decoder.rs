//! Streaming framing: find `/`, collect to `!`, check the CRC, hand the body to
//! the parser. Byte-at-a-time state, so any chunking of the input decodes the same.

use crc::{CRC_16_ARC, Crc, Table};

use crate::{Deviation, DeviationKind, Obis, Telegram, parse};

/// CRC-16/ARC (poly 0x8005 reflected, init 0, no xorout), DSMR 4+ clause 6.12.
/// Slice-by-16 tables (8 KiB): the CRC was the largest single cost of decoding.
const CRC16: Crc<u16, Table<16>> = Crc::<u16, Table<16>>::new(&CRC_16_ARC);

/// Size limits that keep a broken or hostile stream from growing buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest line in bytes, CRLF included. A DSMR 5 text message may carry 2048
    /// characters, i.e. 4096 hex digits plus the OBIS and parentheses.
    pub max_line: usize,
    /// Longest telegram in bytes, from `/` through `!`.
    pub max_telegram: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line: 4608,
            max_telegram: 16 * 1024,
        }
    }
}

/// A decoding error and where in the stream it happened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("P1 stream at byte {offset}: {kind}")]
pub struct DecodeError {
    /// Cumulative offset in the stream fed to the decoder; what it points at
    /// depends on the kind (see [`ErrorKind`]).
    pub offset: u64,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl DecodeError {
    /// Whether this is no loss of data but bytes between telegrams (a gateway's
    /// trailer, line noise, a capture started mid-telegram): a warning, not an error.
    pub fn is_warning(&self) -> bool {
        matches!(self.kind, ErrorKind::Skipped { .. })
    }
}

/// What went wrong. The offset of the enclosing [`DecodeError`] points at the
/// place named in each variant's doc.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// Bytes outside any telegram (offset: the first of them): the stream
    /// started mid-telegram, or a telegram's `/` was lost. CR and LF between
    /// telegrams are not counted.
    #[error("skipped {bytes} bytes that belong to no telegram (waiting for `/`)")]
    Skipped {
        /// How many bytes, from the offset up to the next `/` or the end.
        bytes: u64,
    },
    /// A telegram that never reached its `!` (offset: its `/`): the stream ended
    /// or a new `/` began.
    #[error("telegram of {bytes} bytes cut short before its `!`")]
    Truncated {
        /// Bytes received from `/` on.
        bytes: u64,
    },
    /// A line over [`Limits::max_line`] (offset: the line's first byte).
    #[error("line longer than {limit} bytes")]
    LineTooLong {
        /// The limit in force.
        limit: usize,
    },
    /// A telegram over [`Limits::max_telegram`] (offset: its `/`).
    #[error("telegram longer than {limit} bytes")]
    TelegramTooLong {
        /// The limit in force.
        limit: usize,
    },
    /// The CRC does not match the content (offset: the telegram's `/`).
    #[error("CRC mismatch: content gives {expected:04X}, telegram says {got:04X}")]
    CrcMismatch {
        /// Computed over the bytes from `/` through `!`.
        expected: u16,
        /// Sent after the `!`.
        got: u16,
    },
    /// After `!` neither CRLF nor up to 4 hex digits and CRLF (or LF) (offset: the
    /// wrong byte).
    #[error("after `!` expected 4 hex CRC digits and CRLF, found byte 0x{found:02X}")]
    MalformedTrailer {
        /// The byte found.
        found: u8,
    },
    /// A line that is not `/XXXZident`, `OBIS(..)..`, `(..)` or empty
    /// (offset: the line, or the offending byte).
    #[error("malformed line: {reason}")]
    MalformedLine {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A group whose text does not fit its object (offset: the group's text).
    #[error("bad value for {obis}: {reason}")]
    BadValue {
        /// The object.
        obis: Obis,
        /// What was expected.
        reason: &'static str,
    },
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// Waiting for `/`; non-CRLF bytes are reported as skipped.
    Hunt,
    /// Waiting for `/` after an error; the rest of the failed telegram is not
    /// reported a second time.
    Discard,
    /// Inside a telegram, before `!`.
    Body,
    /// After `!`: CRC digits so far and whether CR was seen.
    Trailer { digits: u8, crc: u16, cr: bool },
}

/// A streaming P1 decoder: feed it byte chunks as they arrive, in any split; it
/// calls back with each telegram or error in stream order. It never panics and
/// holds at most one telegram, so it can take arbitrary bytes (fuzzing, a
/// serial port at the wrong baud rate).
///
/// ```
/// let mut decoder = meterbench_p1::Decoder::default();
/// let mut telegrams = Vec::new();
/// decoder.feed(b"garbage/ISk5\\2MT382-1000\r\n\r\n1-0:1.8.1(00123.456*kWh)\r\n!\r\n", |r| {
///     telegrams.push(r)
/// });
/// assert!(decoder.finish().is_none());
/// assert!(telegrams[0].is_err()); // the skipped "garbage"
/// assert_eq!(telegrams[1].as_ref().unwrap().crc, None); // DSMR 2.2: no CRC
/// ```
#[derive(Clone, Debug)]
pub struct Decoder {
    limits: Limits,
    state: State,
    /// Offset of the next byte.
    pos: u64,
    /// Offset of the current telegram's `/`.
    start: u64,
    /// Offset of the current line's first byte.
    line_start: u64,
    /// Offset of the first skipped byte while hunting, if any.
    skip_start: Option<u64>,
    /// The current telegram from `/` through `!`.
    buf: Vec<u8>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl Decoder {
    /// A decoder with these limits, at stream offset 0.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            state: State::Hunt,
            pos: 0,
            start: 0,
            line_start: 0,
            skip_start: None,
            buf: Vec::new(),
        }
    }

    /// Stream offset of the next byte to be fed.
    pub fn offset(&self) -> u64 {
        self.pos
    }

    /// Feeds the next bytes of the stream; `on` receives every telegram or error
    /// completed by them, in stream order.
    pub fn feed(&mut self, chunk: &[u8], mut on: impl FnMut(Result<Telegram, DecodeError>)) {
        let mut i = 0;
        while i < chunk.len() {
            let rest = &chunk[i..];
            match self.state {
                State::Hunt | State::Discard => {
                    let k = memchr::memchr(b'/', rest).unwrap_or(rest.len());
                    if matches!(self.state, State::Hunt) {
                        self.note_skipped(&rest[..k], &mut on);
                    }
                    self.pos += k as u64;
                    i += k;
                    if k < rest.len() {
                        if let Some(e) = self.take_skipped() {
                            on(Err(e));
                        }
                        self.begin();
                        i += 1;
                    }
                }
                State::Body => i += self.body(rest, &mut on),
                State::Trailer { digits, crc, cr } => {
                    let b = rest[0];
                    let hex = (b as char).to_digit(16);
                    // LF alone after `!` only in a telegram whose lines end so (a
                    // converter that strips CR): in a CRLF telegram it is damage.
                    let lf_telegram = !cr && b == b'\n' && self.lf_only_header();
                    self.state = match (b, cr, hex) {
                        (b'\n', _, _) if cr || lf_telegram => {
                            let at = self.pos;
                            let mut deviations = Vec::new();
                            // Real meters: a CRC without its leading zeros, a line
                            // end without CR. Both leave the telegram unambiguous.
                            if (1..4).contains(&digits) {
                                deviations.push(Deviation {
                                    offset: at - u64::from(digits) - u64::from(cr),
                                    kind: DeviationKind::ShortCrc { digits, crc },
                                });
                            }
                            if !cr {
                                deviations.push(Deviation {
                                    offset: at,
                                    kind: DeviationKind::LfLineEnd,
                                });
                            }
                            let sent = (digits > 0).then_some(crc);
                            self.pos += 1;
                            i += 1;
                            on(self.complete(sent, deviations));
                            State::Hunt
                        }
                        (b'\r', false, _) => State::Trailer {
                            digits,
                            crc,
                            cr: true,
                        },
                        (_, false, Some(v)) if digits < 4 => State::Trailer {
                            digits: digits + 1,
                            crc: crc << 4 | v as u16,
                            cr,
                        },
                        _ => {
                            on(Err(err(self.pos, ErrorKind::MalformedTrailer { found: b })));
                            // A `/` here is the next telegram's start: keep it.
                            State::Discard
                        }
                    };
                    if let State::Trailer { .. } = self.state {
                        self.pos += 1;
                        i += 1;
                    }
                }
            }
        }
    }

    /// Ends the stream: reports a telegram cut short or trailing garbage, and
    /// resets the decoder for a new stream (offsets keep counting).
    pub fn finish(&mut self) -> Option<DecodeError> {
        let e = match self.state {
            State::Body | State::Trailer { .. } => Some(self.truncated()),
            State::Hunt => self.take_skipped(),
            State::Discard => None,
        };
        self.state = State::Hunt;
        self.skip_start = None;
        self.buf.clear();
        e
    }

    /// Whether the current telegram's header line ends with LF alone.
    fn lf_only_header(&self) -> bool {
        match self.buf.iter().position(|&b| b == b'\n') {
            Some(i) => i == 0 || self.buf[i - 1] != b'\r',
            None => false,
        }
    }

    /// Starts a telegram at the `/` at `self.pos`.
    fn begin(&mut self) {
        self.buf.clear();
        self.buf.push(b'/');
        self.start = self.pos;
        self.line_start = self.pos;
        self.pos += 1;
        self.state = State::Body;
    }

    /// Consumes body bytes up to and including the next `!` (or LF, where a limit
    /// may be crossed), or up to a `/`; returns how many bytes of `rest` it consumed.
    fn body(&mut self, rest: &[u8], on: &mut impl FnMut(Result<Telegram, DecodeError>)) -> usize {
        // Every line up to the next `!` or `/` at once, when no limit can be crossed
        // in them: one search and one copy instead of one per line. The state after
        // it is what the line-by-line path below would leave.
        let k = memchr::memchr2(b'/', b'!', rest).unwrap_or(rest.len());
        if rest.get(k) != Some(&b'/') {
            let take = (k + 1).min(rest.len());
            let seg = &rest[..take];
            let line_so_far = self.pos - self.line_start;
            if line_so_far + (take as u64) <= self.limits.max_line as u64
                && self.buf.len() + take <= self.limits.max_telegram
            {
                self.buf.extend_from_slice(seg);
                if let Some(nl) = memchr::memrchr(b'\n', seg) {
                    self.line_start = self.pos + nl as u64 + 1;
                }
                self.pos += take as u64;
                if seg.last() == Some(&b'!') {
                    self.state = State::Trailer {
                        digits: 0,
                        crc: 0,
                        cr: false,
                    };
                }
                return take;
            }
        }
        self.body_line(rest, on)
    }

    /// [`Self::body`] one line at a time, where a limit may be crossed.
    fn body_line(
        &mut self,
        rest: &[u8],
        on: &mut impl FnMut(Result<Telegram, DecodeError>),
    ) -> usize {
        let k = memchr::memchr3(b'\n', b'/', b'!', rest).unwrap_or(rest.len());
        let special = rest.get(k).copied();
        // A `/` belongs to the next telegram, so it is not taken.
        let take = if matches!(special, Some(b'\n' | b'!')) {
            k + 1
        } else {
            k
        };
        let line_len = self.pos - self.line_start + take as u64;
        let error = if line_len > self.limits.max_line as u64 {
            Some((
                self.line_start,
                ErrorKind::LineTooLong {
                    limit: self.limits.max_line,
                },
            ))
        } else if self.buf.len() + take > self.limits.max_telegram {
            Some((
                self.start,
                ErrorKind::TelegramTooLong {
                    limit: self.limits.max_telegram,
                },
            ))
        } else {
            None
        };
        if let Some((offset, kind)) = error {
            on(Err(err(offset, kind)));
            self.state = State::Discard;
            self.pos += take as u64;
            return take;
        }
        self.buf.extend_from_slice(&rest[..take]);
        self.pos += take as u64;
        match special {
            Some(b'\n') => self.line_start = self.pos,
            Some(b'!') => {
                self.state = State::Trailer {
                    digits: 0,
                    crc: 0,
                    cr: false,
                }
            }
            Some(_) => {
                // No legal telegram content contains `/`: the previous telegram
                // lost its end, and this one starts here.
                on(Err(self.truncated()));
                self.state = State::Discard;
            }
            None => {}
        }
        take
    }

    /// Checks the CRC of the framed telegram and parses it; `deviations` are the
    /// trailer's.
    fn complete(
        &mut self,
        sent: Option<u16>,
        deviations: Vec<Deviation>,
    ) -> Result<Telegram, DecodeError> {
        if let Some(got) = sent {
            let expected = CRC16.checksum(&self.buf);
            if expected != got {
                return Err(err(self.start, ErrorKind::CrcMismatch { expected, got }));
            }
        }
        let body = self.buf.strip_suffix(b"!").unwrap_or(&self.buf);
        parse::telegram(body, self.start, sent, deviations)
    }

    fn truncated(&self) -> DecodeError {
        err(
            self.start,
            ErrorKind::Truncated {
                bytes: self.pos - self.start,
            },
        )
    }

    fn note_skipped(&mut self, seg: &[u8], on: &mut impl FnMut(Result<Telegram, DecodeError>)) {
        if self.skip_start.is_none()
            && let Some(p) = seg.iter().position(|&b| b != b'\r' && b != b'\n')
        {
            self.skip_start = Some(self.pos + p as u64);
        }
        // Report long garbage runs as they grow (wrong baud rate, wrong port)
        // rather than only at the next `/`.
        if let Some(s) = self.skip_start {
            let end = self.pos + seg.len() as u64;
            if end - s >= self.limits.max_telegram as u64 {
                on(Err(err(s, ErrorKind::Skipped { bytes: end - s })));
                self.skip_start = None;
            }
        }
    }

    fn take_skipped(&mut self) -> Option<DecodeError> {
        let s = self.skip_start.take()?;
        Some(err(
            s,
            ErrorKind::Skipped {
                bytes: self.pos - s,
            },
        ))
    }
}

fn err(offset: u64, kind: ErrorKind) -> DecodeError {
    DecodeError { offset, kind }
}

/// Decodes a whole byte stream (a capture file, a fuzz input): every telegram
/// and every error, in stream order. A fuzz target is
/// `fuzz_target!(|data: &[u8]| { let _ = meterbench_p1::decode_all(data); })`.
pub fn decode_all(data: &[u8]) -> Vec<Result<Telegram, DecodeError>> {
    let mut decoder = Decoder::default();
    let mut out = Vec::new();
    decoder.feed(data, |r| out.push(r));
    out.extend(decoder.finish().map(Err));
    out
}

/// CRC-16/ARC of `bytes`, as DSMR computes it over `/` through `!`.
pub fn crc16(bytes: &[u8]) -> u16 {
    CRC16.checksum(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        assert_eq!(crc16(b"123456789"), 0xBB3D);
    }
}
