//! A run's accuracy points as the PostgreSQL store packs them for its audit (the
//! `point_packs` table, built by the server from the `points` rows: see
//! `bench/store/pg_packs.sql`). One `bytea` per run holds, per point in the order of
//! step index then port, the binary send forms of PostgreSQL's own types, concatenated:
//!
//! | bytes | what |
//! |---|---|
//! | 4 | step index (`int4send`) |
//! | 8 | MPE in % (`float8send`) |
//! | 8 | error in % (`float8send`) |
//! | 1 | accepted (`boolsend`: 0 or 1) |
//! | 4 + n | the step name: its length in bytes (`int4send`), then its UTF-8 |
//! | 4 + m | the port, likewise |
//!
//! All integers are big-endian, floats IEEE 754 binary64 with every bit kept. Why packed:
//! the server's work per row was the floor of the audit's read (2.2 million point rows
//! took it 0.9–1.6 s to send; their 100 000 packs 0.13 s).

/// One point of a pack, borrowed from its bytes. The texts are as received: the reader
/// checks them as UTF-8 when it first meets them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PackedPoint<'a> {
    pub step_index: i32,
    pub mpe_percent: f64,
    pub error_percent: f64,
    pub accepted: bool,
    pub step_name: &'a [u8],
    pub port: &'a [u8],
}

/// Why a pack's bytes are not points; `offset` counts from the pack's first byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("byte {offset} of the pack: {what}")]
pub struct PackError {
    pub offset: usize,
    pub what: String,
}

/// The points of `pack`, in its order; after a refusal, nothing more.
pub fn points(pack: &[u8]) -> Points<'_> {
    Points {
        bytes: pack,
        at: 0,
        failed: false,
    }
}

/// The points of one pack (see [`points`]).
#[derive(Debug, Clone)]
pub struct Points<'a> {
    bytes: &'a [u8],
    at: usize,
    failed: bool,
}

/// A point's bytes before its texts: step index, MPE, error, accepted.
const FIXED: usize = 4 + 8 + 8 + 1;

impl<'a> Points<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], PackError> {
        let rest = &self.bytes[self.at..];
        if rest.len() < n {
            return Err(PackError {
                offset: self.at,
                what: format!("{} bytes left for {what} ({n} needed)", rest.len()),
            });
        }
        self.at += n;
        Ok(&rest[..n])
    }

    fn text(&mut self, what: &str) -> Result<&'a [u8], PackError> {
        let at = self.at;
        let len = i32::from_be_bytes(array(self.take(4, what)?));
        let len = usize::try_from(len).map_err(|_| PackError {
            offset: at,
            what: format!("{what} of length {len}"),
        })?;
        self.take(len, what)
    }

    fn point(&mut self) -> Result<PackedPoint<'a>, PackError> {
        let start = self.at;
        let fixed = self.take(FIXED, "a point")?;
        let accepted = match fixed[20] {
            0 => false,
            1 => true,
            b => {
                return Err(PackError {
                    offset: start + 20,
                    what: format!("{b} for a bool"),
                });
            }
        };
        Ok(PackedPoint {
            step_index: i32::from_be_bytes(array(&fixed[0..4])),
            mpe_percent: f64::from_bits(u64::from_be_bytes(array(&fixed[4..12]))),
            error_percent: f64::from_bits(u64::from_be_bytes(array(&fixed[12..20]))),
            accepted,
            step_name: self.text("a step name")?,
            port: self.text("a port")?,
        })
    }
}

impl<'a> Iterator for Points<'a> {
    type Item = Result<PackedPoint<'a>, PackError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.at == self.bytes.len() {
            return None;
        }
        let point = self.point();
        self.failed = point.is_err();
        Some(point)
    }
}

fn array<const N: usize>(b: &[u8]) -> [u8; N] {
    // Callers slice exactly N bytes.
    b.try_into().expect("a slice of the array's length")
}

/// Append `p` to `pack` as the server packs it (for tests, fuzz seeds and benchmarks:
/// the store's packs are built by the server). Panics on a text longer than `i32::MAX`.
pub fn push_point(pack: &mut Vec<u8>, p: &PackedPoint<'_>) {
    pack.extend_from_slice(&p.step_index.to_be_bytes());
    pack.extend_from_slice(&p.mpe_percent.to_bits().to_be_bytes());
    pack.extend_from_slice(&p.error_percent.to_bits().to_be_bytes());
    pack.push(u8::from(p.accepted));
    for text in [p.step_name, p.port] {
        let len = i32::try_from(text.len()).expect("a text of at most 2 GiB");
        pack.extend_from_slice(&len.to_be_bytes());
        pack.extend_from_slice(text);
    }
}

/// What the fuzz target and its corpus replay check of any bytes, panicking if it does
/// not hold: the points read are whole points, then at most one refusal and nothing after
/// it; the bytes cut anywhere read the points that end before the cut, the same ones.
pub fn check_pack(bytes: &[u8]) {
    let read: Vec<_> = points(bytes).collect();
    let refused = read.iter().position(Result::is_err);
    if let Some(at) = refused {
        assert_eq!(at + 1, read.len(), "a refusal is the last thing read");
    }
    let whole: Vec<_> = read.into_iter().map_while(Result::ok).collect();
    // Where each whole point ends: its bytes re-packed.
    let mut ends = Vec::with_capacity(whole.len());
    let mut packed = Vec::new();
    for p in &whole {
        push_point(&mut packed, p);
        ends.push(packed.len());
    }
    assert_eq!(
        packed,
        bytes[..packed.len()],
        "the points are the bytes they came from"
    );
    let step = (bytes.len() / 256).max(1);
    for cut in (0..=bytes.len()).step_by(step) {
        let before = ends.iter().filter(|&&e| e <= cut).count();
        let got: Vec<_> = points(&bytes[..cut]).map_while(Result::ok).collect();
        let bits = |ps: &[PackedPoint<'_>]| {
            ps.iter()
                .map(|p| (p.error_percent.to_bits(), p.mpe_percent.to_bits()))
                .collect::<Vec<_>>()
        };
        assert_eq!(got.len(), before, "points before the cut at {cut}");
        assert_eq!(bits(&got), bits(&whole[..before]), "cut at {cut}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A point written out byte by byte, as `int4send`, `float8send`, `boolsend` and
    /// the length-prefixed UTF-8 give it.
    #[test]
    fn a_point_reads_from_its_send_forms() {
        let mut b = vec![0, 0, 0, 7];
        b.extend_from_slice(&[0x3f, 0xf0, 0, 0, 0, 0, 0, 0]); // 1.0
        b.extend_from_slice(&[0xbf, 0xe0, 0, 0, 0, 0, 0, 0]); // -0.5
        b.push(1);
        b.extend_from_slice(&[0, 0, 0, 4]);
        b.extend_from_slice(b"Iref");
        b.extend_from_slice(&[0, 0, 0, 0]);
        let read: Vec<_> = points(&b).collect();
        assert_eq!(
            read,
            [Ok(PackedPoint {
                step_index: 7,
                mpe_percent: 1.0,
                error_percent: -0.5,
                accepted: true,
                step_name: b"Iref",
                port: b"",
            })]
        );
    }

    #[test]
    fn an_empty_pack_has_no_points() {
        assert_eq!(points(&[]).count(), 0);
    }

    #[test]
    fn a_cut_point_is_refused_where_it_ends() {
        let mut b = Vec::new();
        let p = PackedPoint {
            step_index: 1,
            mpe_percent: 1.0,
            error_percent: 0.25,
            accepted: false,
            step_name: b"Imax PF1",
            port: b"left",
        };
        push_point(&mut b, &p);
        push_point(&mut b, &p);
        b.pop();
        let read: Vec<_> = points(&b).collect();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0], Ok(p));
        assert_eq!(
            read[1],
            Err(PackError {
                // The first point's 41 bytes, then the second's up to its port.
                offset: 41 + FIXED + 4 + 8 + 4,
                what: "3 bytes left for a port (4 needed)".into(),
            })
        );
    }

    #[test]
    fn a_negative_length_and_a_bool_of_two_are_refused() {
        let mut b = vec![0; FIXED];
        b.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(
            points(&b).next(),
            Some(Err(PackError {
                offset: FIXED,
                what: "a step name of length -1".into(),
            }))
        );
        let mut b = vec![0; FIXED];
        b[20] = 2;
        assert_eq!(points(&b).next().unwrap().unwrap_err().what, "2 for a bool");
    }

    fn point() -> impl proptest::strategy::Strategy<Value = (i32, f64, f64, bool, Vec<u8>, Vec<u8>)>
    {
        use proptest::prelude::*;
        (
            any::<i32>(),
            any::<f64>(),
            any::<f64>(),
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..40),
            proptest::collection::vec(any::<u8>(), 0..12),
        )
    }

    proptest::proptest! {
        /// Points packed as the server packs them read back bit for bit (NaNs too), and
        /// the pack cut anywhere short reads the whole points before the cut, then a
        /// refusal.
        #[test]
        fn packed_points_read_back_and_a_cut_pack_is_refused(
            ps in proptest::collection::vec(point(), 0..8),
            cut in 0usize..1000,
        ) {
            let ps: Vec<_> = ps
                .iter()
                .map(|(i, m, e, a, n, p)| PackedPoint {
                    step_index: *i,
                    mpe_percent: *m,
                    error_percent: *e,
                    accepted: *a,
                    step_name: n,
                    port: p,
                })
                .collect();
            let mut b = Vec::new();
            let mut ends = Vec::new();
            for p in &ps {
                push_point(&mut b, p);
                ends.push(b.len());
            }
            let bits = |p: &PackedPoint<'_>| {
                (p.step_index, p.mpe_percent.to_bits(), p.error_percent.to_bits(), p.accepted,
                 p.step_name.to_vec(), p.port.to_vec())
            };
            let read: Vec<_> = points(&b).map(|p| p.map(|p| bits(&p))).collect();
            let want: Vec<_> = ps.iter().map(|p| Ok(bits(p))).collect();
            proptest::prop_assert_eq!(read, want);
            let cut = cut.min(b.len());
            let whole = ends.iter().filter(|&&e| e <= cut).count();
            let read: Vec<_> = points(&b[..cut]).collect();
            proptest::prop_assert!(read[..whole].iter().all(Result::is_ok));
            let at_end = ends.contains(&cut) || cut == 0;
            proptest::prop_assert_eq!(read.len(), whole + usize::from(!at_end));
            if !at_end {
                proptest::prop_assert!(read[whole].is_err());
            }
        }

        /// Any bytes: points or one refusal at the end, never a panic.
        #[test]
        fn any_bytes_give_points_or_one_refusal(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let read: Vec<_> = points(&b).collect();
            let errors = read.iter().filter(|p| p.is_err()).count();
            proptest::prop_assert!(errors <= 1);
            if errors == 1 {
                proptest::prop_assert!(read.last().unwrap().is_err());
            }
        }
    }
}
