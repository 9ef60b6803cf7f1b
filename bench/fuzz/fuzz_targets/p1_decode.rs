#![no_main]
//! Arbitrary bytes on a P1 port, in one chunk and split in two, each stream ended with
//! `finish`: no panic, and the same telegrams and errors in the same order.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let whole = meterbench_p1::decode_all(data);
    let mut decoder = meterbench_p1::Decoder::default();
    let mut split = Vec::new();
    let mid = data.len() / 2;
    decoder.feed(&data[..mid], |r| split.push(r));
    decoder.feed(&data[mid..], |r| split.push(r));
    split.extend(decoder.finish().map(Err));
    assert_eq!(whole, split);
});
