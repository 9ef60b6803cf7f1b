//! CI replays the fuzz corpus (bench/fuzz/corpus/p1_decode): whole and split decoding agree.
#[test]
fn fuzz_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/p1_decode");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let whole = meterbench_p1::decode_all(&data);
        let mut decoder = meterbench_p1::Decoder::default();
        let mut split = Vec::new();
        let mid = data.len() / 2;
        decoder.feed(&data[..mid], |r| split.push(r));
        decoder.feed(&data[mid..], |r| split.push(r));
        assert_eq!(whole.len(), split.len());
        n += 1;
    }
    assert!(n >= 1);
}
