//! Key rotation and the keyring: a log handed over from one key to the next stays
//! verifiable from its first key, the old key can add nothing after it, a log forged
//! with another key is refused however it ends, and a bundle is trusted only when its
//! key was valid at the time it was signed.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{Duration, SubsecRound, Utc};
use meterbench_signing::{
    IssuanceEntry, IssuanceFields, KEY_ROTATION_RUN_ID, Keyring, ProblemKind, SigningError,
    SigningKey, append_issuance, key_fingerprint, key_id, rotate_key, sign_bundle,
    verify_bundle_trusted, verify_issuance_log,
};
use sha2::{Digest, Sha256};

fn old_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn new_key() -> SigningKey {
    SigningKey::from_bytes(&[8; 32])
}

fn fields(n: u64) -> IssuanceFields {
    IssuanceFields {
        run_id: format!("run-{n:04}"),
        bundle: format!("reports/run-{n:04}"),
        manifest_sha256: hex::encode(Sha256::digest(n.to_le_bytes())),
    }
}

/// The old key's keyring, as `keys generate` starts it (valid from an hour ago).
fn first_keyring() -> Keyring {
    Keyring::new_key(
        old_key().verifying_key(),
        Utc::now() - Duration::hours(1),
        "first keyring",
    )
}

/// A log of two entries by the old key, a rotation, one entry by the new key: (folder,
/// log, keyring after the rotation).
fn rotated_log() -> (tempfile::TempDir, PathBuf, Keyring) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("issuance-log.jsonl");
    let ring = first_keyring();
    append_issuance(&log, &fields(1), &old_key(), &ring).unwrap();
    append_issuance(&log, &fields(2), &old_key(), &ring).unwrap();
    let rotation = rotate_key(&log, &old_key(), &new_key().verifying_key(), &ring).unwrap();
    assert_eq!(rotation.seq, 3);
    assert_eq!(rotation.fields.run_id, KEY_ROTATION_RUN_ID);
    assert_eq!(rotation.key_id, key_id(&old_key().verifying_key()));
    let first = verify_issuance_log(&log, &ring).unwrap().entries[0]
        .hash
        .clone();
    let ring = ring.rotated(
        &key_id(&old_key().verifying_key()),
        new_key().verifying_key(),
        rotation.issued,
        Some(meterbench_signing::LastEntry {
            log: first,
            seq: rotation.seq,
            hash: rotation.hash.clone(),
        }),
    );
    append_issuance(&log, &fields(4), &new_key(), &ring).unwrap();
    (dir, log, ring)
}

fn lines(log: &Path) -> Vec<String> {
    fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn a_rotated_log_verifies_from_its_first_key_and_names_both_keys() {
    let (_dir, log, ring) = rotated_log();
    let old_id = key_id(&old_key().verifying_key());
    let new_id = key_id(&new_key().verifying_key());
    let summary = verify_issuance_log(&log, &ring).unwrap();
    assert_eq!(summary.entries.len(), 4);
    assert_eq!(summary.key_id.as_deref(), Some(new_id.as_str()));
    let keys: Vec<(&str, u64, Option<u64>)> = summary
        .keys
        .iter()
        .map(|k| (k.key_id.as_str(), k.from_seq, k.retired_by))
        .collect();
    assert_eq!(
        keys,
        [(old_id.as_str(), 1, Some(3)), (new_id.as_str(), 4, None)]
    );
    // The rotation names the new key by its whole fingerprint and its key file.
    let rotation = &summary.entries[2];
    assert_eq!(
        rotation.fields.manifest_sha256,
        key_fingerprint(&new_key().verifying_key())
    );
    assert_eq!(rotation.fields.bundle, format!("keys/{new_id}.pub.pem"));

    // A verifier who holds only the first key follows the rotation through the key file
    // beside the log.
    let first_only = Keyring::single(old_key().verifying_key(), "the first key alone");
    assert_eq!(
        verify_issuance_log(&log, &first_only)
            .unwrap()
            .entries
            .len(),
        4
    );
}

#[test]
fn the_retired_key_can_append_nothing() {
    let (_dir, log, ring) = rotated_log();
    let before = fs::read_to_string(&log).unwrap();
    let err = append_issuance(&log, &fields(5), &old_key(), &ring).unwrap_err();
    match &err {
        SigningError::NotTheLogsKey {
            retired_by,
            current,
            ..
        } => {
            assert_eq!(*retired_by, Some(3));
            assert_eq!(
                current.as_deref(),
                Some(key_id(&new_key().verifying_key()).as_str())
            );
        }
        other => panic!("{other}"),
    }
    assert!(
        err.to_string()
            .contains("retired by the key rotation at entry 3"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        before,
        "nothing appended"
    );

    // Nor can a line it signs be slipped in by hand: named for what it is.
    let summary = verify_issuance_log(&log, &ring).unwrap();
    let last = summary.entries.last().unwrap();
    let forged = IssuanceEntry::new_signed(5, Utc::now(), fields(5), &last.hash, &old_key());
    let mut l = lines(&log);
    l.push(forged.to_json_line());
    fs::write(&log, l.join("\n") + "\n").unwrap();
    let problems = verify_issuance_log(&log, &ring).unwrap_err();
    let p = problems
        .iter()
        .find(|p| p.kind == ProblemKind::KeyMismatch)
        .unwrap_or_else(|| panic!("{problems:#?}"));
    assert_eq!(p.subject, "line 5 (seq 5)");
    assert!(
        p.detail.contains("which the key rotation at seq 3 retired"),
        "{p}"
    );
    // And the keyring says the old key's period ended before it.
    assert!(
        problems
            .iter()
            .any(|p| p.kind == ProblemKind::UntrustedKey && p.subject == "line 5 (seq 5)"),
        "{problems:#?}"
    );
}

#[test]
fn a_key_that_never_kept_the_log_can_neither_append_nor_rotate() {
    let (_dir, log, ring) = rotated_log();
    let stranger = SigningKey::from_bytes(&[9; 32]);
    let err = append_issuance(&log, &fields(5), &stranger, &ring).unwrap_err();
    assert!(
        matches!(
            &err,
            SigningError::NotTheLogsKey {
                retired_by: None,
                ..
            }
        ),
        "{err}"
    );
    let err = rotate_key(&log, &stranger, &old_key().verifying_key(), &ring).unwrap_err();
    assert!(matches!(&err, SigningError::NotTheLogsKey { .. }), "{err}");
    // A rotation entry it signs itself, handing the log to itself, is refused as an
    // entry signed by the wrong key.
    let summary = verify_issuance_log(&log, &ring).unwrap();
    let last = summary.entries.last().unwrap();
    let grab = IssuanceFields {
        run_id: KEY_ROTATION_RUN_ID.into(),
        bundle: format!("keys/{}.pub.pem", key_id(&stranger.verifying_key())),
        manifest_sha256: key_fingerprint(&stranger.verifying_key()),
    };
    let forged = IssuanceEntry::new_signed(5, Utc::now(), grab, &last.hash, &stranger);
    let mut l = lines(&log);
    l.push(forged.to_json_line());
    fs::write(&log, l.join("\n") + "\n").unwrap();
    let problems = verify_issuance_log(&log, &ring).unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.kind == ProblemKind::KeyMismatch && p.subject == "line 5 (seq 5)"),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.kind == ProblemKind::BadSignature && p.subject == "line 5 (seq 5)"),
        "{problems:#?}"
    );
}

/// A forger who knows the new public key writes a log of their own from the start and
/// rotates it to the lab's new key, so the lab's next entries would chain onto it. The
/// first entry's key is not the lab's: refused, by verifiers and by the appender.
#[test]
fn a_log_begun_with_another_key_is_refused_however_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("issuance-log.jsonl");
    let forger = SigningKey::from_bytes(&[66; 32]);
    let forger_ring = Keyring::single(forger.verifying_key(), "the forger's");
    append_issuance(&log, &fields(1), &forger, &forger_ring).unwrap();
    rotate_key(&log, &forger, &new_key().verifying_key(), &forger_ring).unwrap();

    let lab_ring = Keyring::single(new_key().verifying_key(), "the lab's new key");
    let problems = verify_issuance_log(&log, &lab_ring).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].kind, ProblemKind::UntrustedKey);
    assert!(
        problems[0]
            .detail
            .contains("the log's first entry is signed by key id")
    );
    let err = append_issuance(&log, &fields(3), &new_key(), &lab_ring).unwrap_err();
    assert!(matches!(err, SigningError::LogInvalid { .. }), "{err}");
}

#[test]
fn a_rotation_whose_key_file_was_swapped_is_refused() {
    let (dir, log, _ring) = rotated_log();
    let new_id = key_id(&new_key().verifying_key());
    let file = dir.path().join(format!("keys/{new_id}.pub.pem"));
    let other = SigningKey::from_bytes(&[10; 32]);
    fs::write(
        &file,
        meterbench_signing::public_key_pem(&other.verifying_key()),
    )
    .unwrap();
    // Only the first key at hand: the new key must come from the file, which lies.
    let first_only = Keyring::single(old_key().verifying_key(), "the first key alone");
    let problems = verify_issuance_log(&log, &first_only).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].subject, "line 3 (seq 3)");
    assert!(
        problems[0].detail.contains("holds another key"),
        "{}",
        problems[0]
    );
}

#[test]
fn a_bundle_is_trusted_only_within_its_keys_period() {
    let (dir, _log, mut ring) = rotated_log();
    // The rotation ten minutes back: a manifest records its time in whole seconds, so a
    // bundle signed within the rotation's own second cannot be placed on either side.
    let rotated_at = Utc::now().trunc_subsecs(3) - Duration::minutes(10);
    ring.keys[0].valid_until = Some(rotated_at);
    ring.keys[1].valid_from = Some(rotated_at);
    let bundle = |name: &str, key: &SigningKey| {
        let b = dir.path().join(name);
        fs::create_dir(&b).unwrap();
        common::make_bundle(&b);
        sign_bundle(&b, key, "lab").unwrap();
        b
    };
    // Signed now by the new key: trusted.
    let fresh = bundle("by-new", &new_key());
    let report = verify_bundle_trusted(&fresh, &ring).unwrap();
    assert!(report.trusted_key_checked);
    // Signed now by the retired key (someone kept it): refused, naming the period.
    let late = bundle("by-old-after", &old_key());
    let problems = verify_bundle_trusted(&late, &ring).unwrap_err();
    assert_eq!(problems[0].kind, ProblemKind::UntrustedKey);
    assert!(problems[0].detail.contains("valid from"), "{}", problems[0]);
    assert!(problems[0].detail.contains("until"), "{}", problems[0]);
    // The same bundle, had the old key still been valid when it was signed, is trusted:
    // a rotation keeps what the old key signed before it verifiable.
    let mut longer = ring.clone();
    longer.keys[0].valid_until = Some(rotated_at + Duration::hours(1));
    verify_bundle_trusted(&late, &longer).unwrap();
    // A key the keyring does not list at all.
    let stranger = bundle("by-stranger", &SigningKey::from_bytes(&[11; 32]));
    let problems = verify_bundle_trusted(&stranger, &ring).unwrap_err();
    assert!(
        problems[0].detail.contains("does not trust"),
        "{}",
        problems[0]
    );
    // The stranger's bundle with its manifest and key file claiming the new key's id:
    // checked against the keyring's copy of that key, its signature fails.
    let manifest = stranger.join("MANIFEST.sha256");
    let text = fs::read_to_string(&manifest).unwrap();
    let stranger_id = key_id(&SigningKey::from_bytes(&[11; 32]).verifying_key());
    let claimed = text.replace(&stranger_id, &key_id(&new_key().verifying_key()));
    assert_ne!(claimed, text);
    fs::write(&manifest, claimed).unwrap();
    let problems = verify_bundle_trusted(&stranger, &ring).unwrap_err();
    assert!(
        problems.iter().any(|p| p.subject == "MANIFEST.sig"),
        "{problems:?}"
    );
}

#[test]
fn a_keyring_round_trips_and_refuses_what_it_cannot_trust() {
    let (_dir, _log, ring) = rotated_log();
    let text = ring.to_json();
    let back = Keyring::parse(&text, "test").unwrap();
    assert_eq!(back.keys, ring.keys);

    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["keys"][1]["key_id"] = "0000000000000000".into();
    let e = Keyring::parse(&v.to_string(), "test").unwrap_err();
    assert!(e.contains("the key_id and the key disagree"), "{e}");

    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["keys"][0]["valid_until"] = "2000-01-01T00:00:00Z".into();
    let e = Keyring::parse(&v.to_string(), "test").unwrap_err();
    assert!(e.contains("valid_until is before valid_from"), "{e}");

    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["keys"][1] = v["keys"][0].clone();
    let e = Keyring::parse(&v.to_string(), "test").unwrap_err();
    assert!(e.contains("listed twice"), "{e}");

    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["keys"][0]["trusted"] = true.into();
    let e = Keyring::parse(&v.to_string(), "test").unwrap_err();
    assert!(e.contains("unknown field"), "{e}");

    // Broken JSON names its line and column.
    let e = Keyring::parse(
        "{\n  \"format\": \"meterbench.keyring/1\",\n  \"keys\": [,]\n}",
        "t",
    )
    .unwrap_err();
    assert!(e.contains("line 3 column"), "{e}");
    assert!(Keyring::parse(r#"{"format":"meterbench.keyring/1","keys":[]}"#, "t").is_err());
}

/// A lost key retired with its last entry recorded: an entry it signs after that one in
/// that log is refused even when dated inside its period (a copy of the log extended
/// with the leaked key), and a log whose recorded entry was rewritten is refused too.
#[test]
fn a_retired_key_signs_nothing_after_its_recorded_last_entry() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("issuance-log.jsonl");
    let ring = first_keyring();
    for n in 1..=3 {
        append_issuance(&log, &fields(n), &old_key(), &ring).unwrap();
    }
    let summary = verify_issuance_log(&log, &ring).unwrap();
    let (first, last) = (&summary.entries[0], &summary.entries[2]);
    let mut retired = ring.clone();
    // Its period ends in an hour: a leaked key dates its entries inside it.
    retired.keys[0].valid_until = Some(Utc::now() + Duration::hours(1));
    retired.keys[0].last_entry = Some(meterbench_signing::LastEntry {
        log: first.hash.clone(),
        seq: last.seq,
        hash: last.hash.clone(),
    });
    verify_issuance_log(&log, &retired).unwrap();

    let forged = IssuanceEntry::new_signed(4, Utc::now(), fields(4), &last.hash, &old_key());
    let mut l = lines(&log);
    l.push(forged.to_json_line());
    fs::write(&log, l.join("\n") + "\n").unwrap();
    let problems = verify_issuance_log(&log, &retired).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].kind, ProblemKind::UntrustedKey);
    assert!(
        problems[0].detail.contains("after its last entry (seq 3)"),
        "{}",
        problems[0]
    );

    // The same key rebuilds the log from entry 3 on: the recorded hash no longer matches.
    let l = lines(&log);
    let rebuilt = IssuanceEntry::new_signed(
        3,
        Utc::now(),
        fields(33),
        &summary.entries[1].hash,
        &old_key(),
    );
    fs::write(
        &log,
        format!("{}\n{}\n{}\n", l[0], l[1], rebuilt.to_json_line()),
    )
    .unwrap();
    let problems = verify_issuance_log(&log, &retired).unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.kind == ProblemKind::EntryModified
                && p.detail.contains("the log was rewritten")),
        "{problems:#?}"
    );
    // Another log of the same key (its own first entry) is not judged by this record.
    let other = dir.path().join("other.jsonl");
    append_issuance(&other, &fields(7), &old_key(), &ring).unwrap();
    for n in 8..=12 {
        append_issuance(&other, &fields(n), &old_key(), &ring).unwrap();
    }
    verify_issuance_log(&other, &retired).unwrap();
}
