//! CI replays the `pgcopy` fuzz corpus (bench/fuzz/corpus/pgcopy) as the target reads
//! it: the first byte the field count (mod 12), the rest a COPY stream, read whole and
//! cut at every byte (the target cuts where its second byte says), the same tuples and
//! end each time, and every typed reading a value or a refusal. With
//! `METERBENCH_WRITE_FUZZ_SEEDS=1` it first (re)writes the seeds from tests/data.
use meterbench_pgcopy::{CopyReader, read_all};
use std::path::PathBuf;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/pgcopy")
}

fn replay(data: &[u8]) {
    let [fields, _, stream @ ..] = data else {
        return;
    };
    let fields = usize::from(fields % 12);
    let whole = read_all(fields, [stream]);
    for cut in 0..=stream.len() {
        assert_eq!(
            whole,
            read_all(fields, [&stream[..cut], &stream[cut..]]),
            "cut at {cut}"
        );
    }
    let mut reader = CopyReader::new(fields);
    reader.push(stream);
    while let Ok(Some(t)) = reader.next_tuple() {
        for i in 0..fields {
            let _ = (
                t.text(i),
                t.int4(i),
                t.int8(i),
                t.float8(i),
                t.bool(i),
                t.date_days(i),
            );
        }
    }
}

#[test]
fn fuzz_corpus_replays() {
    if std::env::var_os("METERBENCH_WRITE_FUZZ_SEEDS").is_some() {
        std::fs::create_dir_all(corpus()).unwrap();
        let mut seed = vec![10, 100];
        seed.extend_from_slice(include_bytes!("data/points.copy"));
        std::fs::write(corpus().join("seed-points"), &seed).unwrap();
        // The header with an extension, a tuple with a NULL, and the trailer.
        let mut seed = vec![2, 22];
        seed.extend_from_slice(b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\x02ab");
        seed.extend_from_slice(&[0, 2, 0, 0, 0, 1, b'x', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        std::fs::write(corpus().join("seed-extension-null"), &seed).unwrap();
    }
    let mut n = 0;
    for entry in std::fs::read_dir(corpus()).unwrap() {
        replay(&std::fs::read(entry.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n >= 2, "{n} inputs in {}", corpus().display());
}
