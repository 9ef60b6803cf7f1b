//! An issuance log as `meterbench verify --log` and every issuing run read it: verified
//! or refused with its problems, never a panic. A log that verifies holds one entry per
//! line, each signed by a key of the chain it reports.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meterbench_signing::{Keyring, SigningKey, verify_issuance_log_text};
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    // The keys the corpus replay test signs its seed logs with: one that begins the log,
    // one it is rotated to.
    static TRUST: OnceLock<Keyring> = OnceLock::new();
    let trust = TRUST.get_or_init(|| {
        let mut ring = Keyring::single(SigningKey::from_bytes(&[7; 32]).verifying_key(), "fuzz");
        ring.keys.extend(
            Keyring::single(SigningKey::from_bytes(&[8; 32]).verifying_key(), "fuzz").keys,
        );
        ring
    });
    let text = String::from_utf8_lossy(data);
    if let Ok(summary) = verify_issuance_log_text(&text, trust) {
        assert_eq!(summary.entries.len(), text.lines().count());
        for e in &summary.entries {
            assert!(summary.keys.iter().any(|k| k.key_id == e.key_id));
        }
    }
});
