//! A DCC as `meterbench verify` reads it from a bundle: canonicalized and its XML
//! signature checked, or refused, never a panic; a document that verifies canonicalizes
//! the same twice (the form is a function of the bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use meterbench_signing::c14n::{Subset, canonicalize};
use meterbench_signing::xmldsig::{XmlSigningKey, verify_enveloped};
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    static KEY: OnceLock<String> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        XmlSigningKey::derive(&meterbench_signing::SigningKey::from_bytes(&[7; 32]))
            .public_key_pem()
    });
    if let Ok(first) = canonicalize(data, Subset::Document) {
        assert_eq!(canonicalize(data, Subset::Document).ok(), Some(first.clone()));
        // Canonical form is a fixed point: canonicalizing it again changes nothing.
        assert_eq!(canonicalize(&first, Subset::Document).ok(), Some(first));
    }
    let _ = verify_enveloped(data, key);
});
