//! CI replays the fuzz corpus (bench/fuzz/corpus/p1_decode) and the fuzzer's saved
//! findings (bench/fuzz/regressions/p1_decode-*): decoding a stream whole and split at
//! any byte gives the same telegrams and errors.

fn split_at_every_byte_agrees(data: &[u8]) {
    let whole = meterbench_p1::decode_all(data);
    for mid in 0..=data.len() {
        let mut decoder = meterbench_p1::Decoder::default();
        let mut split = Vec::new();
        decoder.feed(&data[..mid], |r| split.push(r));
        decoder.feed(&data[mid..], |r| split.push(r));
        split.extend(decoder.finish().map(Err));
        assert_eq!(whole, split, "split at byte {mid}");
    }
}

fn replay(dir: &std::path::Path, prefix: &str) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with(prefix) {
            continue;
        }
        split_at_every_byte_agrees(&std::fs::read(&path).unwrap());
        n += 1;
    }
    n
}

#[test]
fn fuzz_corpus_replays() {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    assert!(replay(&fuzz.join("corpus/p1_decode"), "") >= 1);
}

/// The fuzzer's "whole vs split mismatch" was its own: the split stream was never
/// ended with `finish`, so a telegram cut short at the end was reported only whole.
#[test]
fn fuzz_regressions_replay() {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    assert!(replay(&fuzz.join("regressions"), "p1_decode-") >= 1);
}
