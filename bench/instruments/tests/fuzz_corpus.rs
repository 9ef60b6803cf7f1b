//! CI replays the fuzz corpus (bench/fuzz/corpus/scpi_reply) through the SCPI reply parser.
#[test]
fn fuzz_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/scpi_reply");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let _ = meterbench_instruments::scpi::parse_reply(&data);
        n += 1;
    }
    assert!(n >= 5, "corpus has {n} inputs");
    assert_eq!(
        meterbench_instruments::scpi::parse_reply(b"+1.23450E+02\n")
            .unwrap()
            .numbers()
            .unwrap(),
        vec![123.45]
    );
}
