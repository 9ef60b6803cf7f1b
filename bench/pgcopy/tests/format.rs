//! The binary COPY reader against bytes a PostgreSQL server sent (tests/data), against
//! hand-built streams, and against streams of random tuples cut into random chunks.
use meterbench_pgcopy::{CopyError, CopyReader, OwnedTuples};
use proptest::prelude::*;

type Tuples = OwnedTuples;

fn read_all(fields: usize, chunks: &[&[u8]]) -> (Tuples, Result<(), CopyError>) {
    meterbench_pgcopy::read_all(fields, chunks.iter().copied())
}

fn header() -> Vec<u8> {
    let mut b = b"PGCOPY\n\xff\r\n\0".to_vec();
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b
}

fn encode(tuples: &Tuples) -> Vec<u8> {
    let mut b = header();
    for t in tuples {
        b.extend_from_slice(&(t.len() as i16).to_be_bytes());
        for f in t {
            match f {
                None => b.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(v) => {
                    b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    b.extend_from_slice(v);
                }
            }
        }
    }
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b
}

#[test]
fn a_servers_points_read_as_its_text_form_says() {
    let bytes = include_bytes!("data/points.copy");
    let text = include_str!("data/points.txt");
    let mut reader = CopyReader::new(10);
    // One byte at a time: every cut falls somewhere.
    let mut rows = 0;
    for b in bytes.chunks(1) {
        reader.push(b);
        while let Some(t) = reader.next_tuple().unwrap() {
            let line = text.lines().nth(rows).unwrap();
            let want: Vec<&str> = line.split('\t').collect();
            assert_eq!(t.text(0).unwrap(), want[0]);
            // 2026-01-05 is 9 501 days after 2000-01-01 (26 years, 7 of them leap).
            assert_eq!(want[1], "2026-01-05");
            assert_eq!(t.date_days(1).unwrap(), 9501);
            assert_eq!(t.text(2).unwrap(), want[2]);
            assert_eq!(t.text_bytes(2).unwrap(), want[2].as_bytes());
            assert_eq!(t.int4(3).unwrap().to_string(), want[3]);
            assert_eq!(t.text(4).unwrap(), want[4]);
            assert_eq!(t.text(5).unwrap(), want[5]);
            assert_eq!(t.float8(6).unwrap(), want[6].parse::<f64>().unwrap());
            // Every bit: the text form is the shortest that reads back exactly.
            assert_eq!(
                t.float8(7).unwrap().to_bits(),
                want[7].parse::<f64>().unwrap().to_bits()
            );
            assert_eq!(t.bool(8).unwrap(), want[8] == "t");
            assert_eq!(want[9], "\\N");
            assert_eq!(t.raw(9), None);
            assert!(t.text(9).is_err(), "NULL is not a text");
            rows += 1;
        }
    }
    assert_eq!(rows, 4);
    reader.finish().unwrap();
}

#[test]
fn a_servers_start_times_are_microseconds_since_2000() {
    let bytes = include_bytes!("data/runs.copy");
    let text = include_str!("data/runs.txt");
    let (tuples, end) = read_all(4, &[bytes]);
    end.unwrap();
    assert_eq!(tuples.len(), 3);
    let mut reader = CopyReader::new(4);
    reader.push(bytes);
    for line in text.lines() {
        let want: Vec<&str> = line.split('\t').collect();
        let t = reader.next_tuple().unwrap().unwrap();
        assert_eq!(t.text(0).unwrap(), want[0]);
        // 2000-01-01 is 10 957 days after 1970-01-01: 946 684 800 s.
        let unix_micros: i64 = want[1].parse().unwrap();
        assert_eq!(t.int8(1).unwrap() + 946_684_800_000_000, unix_micros);
        assert_eq!(t.text(2).unwrap(), want[2]);
        assert_eq!(want[3], "\\N");
        assert_eq!(t.raw(3), None);
        assert!(t.int4(1).is_err(), "8 bytes are no int4");
    }
    assert!(reader.next_tuple().unwrap().is_none());
    reader.finish().unwrap();
}

#[test]
fn hand_built_values_and_their_refusals() {
    let tuples = vec![vec![
        Some(7i32.to_be_bytes().to_vec()),
        Some((-0.125f64).to_bits().to_be_bytes().to_vec()),
        Some(vec![1]),
        Some(vec![2]),
        Some(vec![0xff, 0xfe]),
        Some(vec![1, 2, 3]),
    ]];
    let bytes = encode(&tuples);
    let mut reader = CopyReader::new(6);
    reader.push(&bytes);
    let t = reader.next_tuple().unwrap().unwrap();
    assert_eq!(t.offset(), 19);
    assert_eq!(t.int4(0).unwrap(), 7);
    assert_eq!(t.float8(1).unwrap(), -0.125);
    assert!(t.bool(2).unwrap());
    assert!(t.bool(3).is_err(), "2 is no bool");
    assert!(t.text(4).is_err(), "not UTF-8");
    assert!(t.int4(5).is_err(), "3 bytes are no int4");
    assert!(t.float8(0).is_err(), "4 bytes are no float8");
    assert!(t.int8(0).is_err(), "4 bytes are no int8");
    assert!(reader.next_tuple().unwrap().is_none());
    reader.finish().unwrap();
}

#[test]
fn broken_streams_are_refused_with_their_place() {
    let good = encode(&vec![vec![Some(b"a".to_vec())]]);
    let refused = |bytes: &[u8], fields: usize| read_all(fields, &[bytes]).1.unwrap_err();
    // Another signature.
    let mut b = good.clone();
    b[0] = b'X';
    assert_eq!(
        refused(&b, 1),
        CopyError::Format {
            offset: 0,
            what: "not a binary COPY signature".into()
        }
    );
    // OIDs (flag bit 16: the flags are big-endian from byte 11), or any other of the
    // incompatible bits 16-31.
    for (byte, bit) in [(12, 1), (11, 0x80)] {
        let mut b = good.clone();
        b[byte] = bit;
        assert!(matches!(
            refused(&b, 1),
            CopyError::Format { offset: 11, .. }
        ));
    }
    // Compatible flags (bits 0-15) are ignored, as the server's own reader does.
    let mut b = good.clone();
    b[13] = 0x80;
    b[14] = 1;
    assert_eq!(
        read_all(1, &[&b]),
        (vec![vec![Some(b"a".to_vec())]], Ok(()))
    );
    // A tuple of another width than asked for.
    assert!(matches!(
        refused(&good, 2),
        CopyError::Format { offset: 19, .. }
    ));
    // A negative length other than -1.
    let mut b = good.clone();
    b[21..25].copy_from_slice(&(-2i32).to_be_bytes());
    assert!(matches!(
        refused(&b, 1),
        CopyError::Format { offset: 21, .. }
    ));
    // Bytes after the trailer.
    let mut b = good.clone();
    b.push(0);
    assert!(matches!(refused(&b, 1), CopyError::Format { .. }));
    // Cut short anywhere: an error at the end, never a tuple made up.
    for cut in 0..good.len() {
        let (tuples, end) = read_all(1, &[&good[..cut]]);
        assert!(end.is_err(), "cut at {cut}");
        assert!(tuples.len() <= 1);
        if let Some(t) = tuples.first() {
            assert_eq!(t, &vec![Some(b"a".to_vec())]);
        }
    }
    // A header extension is skipped, however it is cut.
    let mut b = header();
    b[15..19].copy_from_slice(&3u32.to_be_bytes());
    b.extend_from_slice(b"xyz");
    b.extend_from_slice(&good[19..]);
    for cut in 0..b.len() {
        let (tuples, end) = read_all(1, &[&b[..cut], &b[cut..]]);
        assert_eq!(
            (tuples, end),
            (vec![vec![Some(b"a".to_vec())]], Ok(())),
            "cut at {cut}"
        );
    }
}

fn tuples(fields: usize) -> impl Strategy<Value = Tuples> {
    proptest::collection::vec(
        proptest::collection::vec(
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
            fields,
        ),
        0..30,
    )
}

proptest! {
    /// Whatever the tuples and however the stream is cut, the same tuples come out.
    #[test]
    fn random_tuples_in_random_chunks_come_back(t in tuples(4), cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12)) {
        let bytes = encode(&t);
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        at.sort_unstable();
        let mut chunks = Vec::new();
        let mut from = 0;
        for c in at {
            chunks.push(&bytes[from..c]);
            from = c;
        }
        chunks.push(&bytes[from..]);
        let (back, end) = read_all(4, &chunks);
        prop_assert_eq!(end, Ok(()));
        prop_assert_eq!(back, t);
    }

    /// Any byte changed: tuples and an end, or an error, never a panic; and the same
    /// whether the bytes came whole or cut in two.
    #[test]
    fn a_changed_byte_is_read_or_refused_the_same_whole_or_cut(t in tuples(3), at in any::<prop::sample::Index>(), to in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let mut bytes = encode(&t);
        let i = at.index(bytes.len());
        bytes[i] = to;
        let whole = read_all(3, &[&bytes]);
        let c = cut.index(bytes.len() + 1);
        let split = read_all(3, &[&bytes[..c], &bytes[c..]]);
        prop_assert_eq!(whole, split);
    }
}
