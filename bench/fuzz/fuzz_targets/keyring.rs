//! A keyring as `meterbench verify --keyring` reads it (a file a laboratory publishes):
//! parsed or refused, never a panic; one that parses writes back to text that parses to
//! the same keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meterbench_signing::Keyring;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ring) = Keyring::parse(text, "fuzz") {
        let again = Keyring::parse(&ring.to_json(), "fuzz").expect("a written keyring parses");
        assert_eq!(again.keys, ring.keys);
    }
});
