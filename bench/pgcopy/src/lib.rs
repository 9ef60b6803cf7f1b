//! PostgreSQL's binary COPY format ("COPY … TO STDOUT (FORMAT binary)"; PostgreSQL
//! documentation, COPY, "Binary Format"), read as it arrives in chunks of any size:
//! - a header: the 11-byte signature `PGCOPY\n\xff\r\n\0`, a 32-bit flags field (bits
//!   16–31 flag incompatible changes and must be zero: bit 16, OIDs included, is never
//!   asked for here; bits 0–15 flag compatible ones and are ignored, as the server's own
//!   reader does), and a header extension (32-bit length, then that many bytes,
//!   skipped);
//! - tuples: a 16-bit field count, then per field a 32-bit length (−1 for NULL) and that
//!   many bytes, the value in the type's binary form;
//! - a trailer: a field count of −1, after which nothing may follow.
//!
//! All integers are big-endian. Why not `tokio_postgres::binary_copy`: it allocates
//! and type-checks every row, which was a fifth of the client's processor time in an
//! audit reading two million points; here a tuple is a view of the bytes received.

pub mod pack;

/// Why the bytes are not a binary COPY stream; `offset` counts from the stream's start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CopyError {
    #[error("byte {offset}: {what}")]
    Format { offset: u64, what: String },
    #[error("the stream ended {what}")]
    Truncated { what: &'static str },
}

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
/// Signature, flags and the extension's length.
const HEADER_LEN: usize = 11 + 4 + 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Header,
    /// Skipping what is left of the header extension.
    Extension(u32),
    Tuples,
    Ended,
}

/// A binary COPY stream being read: [`push`](Self::push) each chunk received, then take
/// the tuples it completed with [`next_tuple`](Self::next_tuple) until it says `None`;
/// [`finish`](Self::finish) at the end.
#[derive(Debug)]
pub struct CopyReader {
    /// Bytes received and not yet read, from `start`.
    buf: Vec<u8>,
    start: usize,
    /// Where `buf[0]` lies in the stream.
    base: u64,
    stage: Stage,
    fields: usize,
    /// The current tuple's fields, as ranges of `buf` (None for NULL).
    ranges: Vec<Option<(usize, usize)>>,
}

/// One tuple, borrowed from the reader until the next call.
#[derive(Debug)]
pub struct Tuple<'a> {
    buf: &'a [u8],
    ranges: &'a [Option<(usize, usize)>],
    offset: u64,
}

impl CopyReader {
    /// A reader of tuples of `fields` fields each (a tuple with another count is an
    /// error: the query decides the columns).
    pub fn new(fields: usize) -> CopyReader {
        CopyReader {
            buf: Vec::new(),
            start: 0,
            base: 0,
            stage: Stage::Header,
            fields,
            ranges: Vec::with_capacity(fields),
        }
    }

    /// Add the next bytes of the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        // What was read goes first (a server sends a tuple per message: usually all of it).
        if self.start > 0 && self.start == self.buf.len() {
            self.base += self.start as u64;
            self.buf.clear();
            self.start = 0;
        } else if self.start > 4096 && self.start * 2 > self.buf.len() {
            self.base += self.start as u64;
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    fn error(&self, at: usize, what: String) -> CopyError {
        CopyError::Format {
            offset: self.base + at as u64,
            what,
        }
    }

    /// The next complete tuple, or `None` until more bytes are pushed (or after the
    /// trailer).
    pub fn next_tuple(&mut self) -> Result<Option<Tuple<'_>>, CopyError> {
        loop {
            let rest = &self.buf[self.start..];
            match self.stage {
                Stage::Header => {
                    if rest.len() < HEADER_LEN {
                        return Ok(None);
                    }
                    if &rest[..11] != SIGNATURE {
                        return Err(self.error(self.start, "not a binary COPY signature".into()));
                    }
                    let flags = be_u32(&rest[11..15]);
                    if flags >> 16 != 0 {
                        return Err(self.error(
                            self.start + 11,
                            format!(
                                "header flags {flags:#010x}: OIDs, or a change this reader does not know"
                            ),
                        ));
                    }
                    let extension = be_u32(&rest[15..19]);
                    if extension > i32::MAX as u32 {
                        return Err(self.error(self.start + 15, "negative header extension".into()));
                    }
                    self.start += HEADER_LEN;
                    self.stage = Stage::Extension(extension);
                }
                Stage::Extension(left) => {
                    let skip = (left as usize).min(rest.len());
                    self.start += skip;
                    let left = left - skip as u32;
                    if left > 0 {
                        self.stage = Stage::Extension(left);
                        return Ok(None);
                    }
                    self.stage = Stage::Tuples;
                }
                Stage::Ended => {
                    if !rest.is_empty() {
                        return Err(self.error(self.start, "bytes after the trailer".into()));
                    }
                    return Ok(None);
                }
                Stage::Tuples => return self.tuple(),
            }
        }
    }

    fn tuple(&mut self) -> Result<Option<Tuple<'_>>, CopyError> {
        let at = self.start;
        let rest = &self.buf[at..];
        if rest.len() < 2 {
            return Ok(None);
        }
        let count = i16::from_be_bytes([rest[0], rest[1]]);
        if count == -1 {
            self.start += 2;
            self.stage = Stage::Ended;
            return self.next_tuple();
        }
        if count < 0 || count as usize != self.fields {
            return Err(self.error(
                at,
                format!(
                    "a tuple of {count} fields where {} were asked for",
                    self.fields
                ),
            ));
        }
        self.ranges.clear();
        let mut pos = 2;
        for _ in 0..count {
            if rest.len() < pos + 4 {
                return Ok(None);
            }
            let len = i32::from_be_bytes([rest[pos], rest[pos + 1], rest[pos + 2], rest[pos + 3]]);
            pos += 4;
            match len {
                -1 => self.ranges.push(None),
                n if n < 0 => {
                    return Err(self.error(at + pos - 4, format!("a field length of {n}")));
                }
                n => {
                    let n = n as usize;
                    if rest.len() - pos < n {
                        return Ok(None);
                    }
                    self.ranges.push(Some((at + pos, at + pos + n)));
                    pos += n;
                }
            }
        }
        self.start += pos;
        Ok(Some(Tuple {
            buf: &self.buf,
            ranges: &self.ranges,
            offset: self.base + at as u64,
        }))
    }

    /// The stream is over: its trailer was read and nothing is left half-read.
    pub fn finish(&self) -> Result<(), CopyError> {
        match self.stage {
            Stage::Ended if self.start == self.buf.len() => Ok(()),
            Stage::Ended => Err(self.error(self.start, "bytes after the trailer".into())),
            Stage::Header | Stage::Extension(_) => Err(CopyError::Truncated {
                what: "in its header",
            }),
            Stage::Tuples if self.start < self.buf.len() => Err(CopyError::Truncated {
                what: "inside a tuple",
            }),
            Stage::Tuples => Err(CopyError::Truncated {
                what: "without its trailer",
            }),
        }
    }
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl<'a> Tuple<'a> {
    /// Where the tuple starts in the stream (for messages).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Field `i`'s bytes, `None` for NULL. Panics if `i` is not below the field count.
    pub fn raw(&self, i: usize) -> Option<&'a [u8]> {
        self.ranges[i].map(|(a, b)| &self.buf[a..b])
    }

    fn fixed<const N: usize>(&self, i: usize, type_name: &str) -> Result<[u8; N], CopyError> {
        let bytes = self.not_null(i)?;
        bytes.try_into().map_err(|_| CopyError::Format {
            offset: self.offset,
            what: format!("field {i}: {} bytes for a {type_name}", bytes.len()),
        })
    }

    fn not_null(&self, i: usize) -> Result<&'a [u8], CopyError> {
        self.raw(i).ok_or_else(|| CopyError::Format {
            offset: self.offset,
            what: format!("field {i} is NULL"),
        })
    }

    /// A `text` or `varchar` field (UTF-8: the audit's connections are UTF-8).
    pub fn text(&self, i: usize) -> Result<&'a str, CopyError> {
        std::str::from_utf8(self.not_null(i)?).map_err(|e| CopyError::Format {
            offset: self.offset,
            what: format!("field {i}: not UTF-8 ({e})"),
        })
    }

    /// A `text` or `varchar` field's bytes, unchecked (for comparing with known texts).
    pub fn text_bytes(&self, i: usize) -> Result<&'a [u8], CopyError> {
        self.not_null(i)
    }

    /// An `int4` field.
    pub fn int4(&self, i: usize) -> Result<i32, CopyError> {
        Ok(i32::from_be_bytes(self.fixed(i, "int4")?))
    }

    /// An `int8` field (also a `timestamptz`'s: microseconds since 2000-01-01 UTC).
    pub fn int8(&self, i: usize) -> Result<i64, CopyError> {
        Ok(i64::from_be_bytes(self.fixed(i, "int8")?))
    }

    /// A `float8` field, every bit of it.
    pub fn float8(&self, i: usize) -> Result<f64, CopyError> {
        Ok(f64::from_bits(u64::from_be_bytes(self.fixed(i, "float8")?)))
    }

    /// A `bool` field.
    pub fn bool(&self, i: usize) -> Result<bool, CopyError> {
        match self.fixed::<1>(i, "bool")? {
            [0] => Ok(false),
            [1] => Ok(true),
            [b] => Err(CopyError::Format {
                offset: self.offset,
                what: format!("field {i}: {b} for a bool"),
            }),
        }
    }

    /// A `date` field: days since 2000-01-01 (PostgreSQL's epoch); ±infinity are
    /// `i32::MAX` and `i32::MIN`.
    pub fn date_days(&self, i: usize) -> Result<i32, CopyError> {
        Ok(i32::from_be_bytes(self.fixed(i, "date")?))
    }
}

/// Tuples as each field's bytes (`None` for NULL).
pub type OwnedTuples = Vec<Vec<Option<Vec<u8>>>>;

/// Every tuple of `fields` fields in a stream that arrives as `chunks`, and how it
/// ended: the trailer read, or why not (for tests and the fuzz target; the audit takes
/// its tuples as they come).
pub fn read_all<'a>(
    fields: usize,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> (OwnedTuples, Result<(), CopyError>) {
    let mut reader = CopyReader::new(fields);
    let mut out = Vec::new();
    for chunk in chunks {
        reader.push(chunk);
        loop {
            match reader.next_tuple() {
                Ok(Some(t)) => {
                    out.push((0..fields).map(|i| t.raw(i).map(<[u8]>::to_vec)).collect())
                }
                Ok(None) => break,
                Err(e) => return (out, Err(e)),
            }
        }
    }
    let end = reader.finish();
    (out, end)
}
