#![no_main]
//! Arbitrary bytes as an instrument's SCPI reply: parsed or rejected, never a panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = meterbench_instruments::scpi::parse_reply(data);
});
