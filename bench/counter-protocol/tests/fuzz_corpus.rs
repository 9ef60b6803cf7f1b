//! CI replays the fuzz corpus (bench/fuzz/corpus/counter_frame) through the decoders the
//! fuzz target drives: every input must decode or be rejected without a panic.
use meterbench_counter_protocol::{DeviceMessage, FrameDecoder, HostMessage};

#[test]
fn fuzz_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/counter_frame");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let mut device = FrameDecoder::<DeviceMessage>::new();
        let mut host = FrameDecoder::<HostMessage>::new();
        let results = data.iter().filter_map(|&b| device.push(b)).count();
        let _ = data.iter().filter_map(|&b| host.push(b)).count();
        // One result per non-empty 0x00-terminated run.
        let runs = data
            .split(|&b| b == 0)
            .take(data.iter().filter(|&&b| b == 0).count())
            .filter(|r| !r.is_empty())
            .count();
        assert_eq!(results, runs);
        n += 1;
    }
    assert!(n >= 4, "corpus has {n} inputs");
}
