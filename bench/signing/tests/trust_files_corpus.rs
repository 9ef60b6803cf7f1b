//! CI replays the `keyring` and `issuance_log` fuzz corpora (bench/fuzz/corpus/) as the
//! fuzz targets do: parsed or verified, or refused, never a panic. With
//! `METERBENCH_WRITE_FUZZ_SEEDS=1` it first (re)writes the seeds: a keyring after a
//! rotation, and logs signed with the targets' keys (one rotated, one with an entry
//! edited).
use chrono::{Duration, Utc};
use meterbench_signing::{
    IssuanceFields, Keyring, SigningKey, append_issuance, key_id, rotate_key,
    verify_issuance_log_text,
};
use std::path::{Path, PathBuf};

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// The keys the `issuance_log` target trusts.
fn keys() -> (SigningKey, SigningKey) {
    (
        SigningKey::from_bytes(&[7; 32]),
        SigningKey::from_bytes(&[8; 32]),
    )
}

fn target_trust() -> Keyring {
    let (a, b) = keys();
    let mut ring = Keyring::single(a.verifying_key(), "fuzz");
    ring.keys
        .extend(Keyring::single(b.verifying_key(), "fuzz").keys);
    ring
}

fn write_seeds() {
    let (a, b) = keys();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.jsonl");
    let ring = Keyring::new_key(a.verifying_key(), Utc::now() - Duration::hours(1), "seed");
    let fields = |n: u32| IssuanceFields {
        run_id: format!("run-{n}"),
        bundle: format!("reports/run-{n}"),
        manifest_sha256: format!("{:064x}", n),
    };
    append_issuance(&log, &fields(1), &a, &ring).unwrap();
    let plain = std::fs::read_to_string(&log).unwrap();
    let rotation = rotate_key(&log, &a, &b.verifying_key(), &ring).unwrap();
    let ring = ring.rotated(
        &key_id(&a.verifying_key()),
        b.verifying_key(),
        rotation.issued,
        None,
    );
    append_issuance(&log, &fields(3), &b, &ring).unwrap();
    let rotated = std::fs::read_to_string(&log).unwrap();
    for dir in ["keyring", "issuance_log"] {
        std::fs::create_dir_all(corpus(dir)).unwrap();
    }
    std::fs::write(corpus("keyring").join("seed-rotated.json"), ring.to_json()).unwrap();
    let out = corpus("issuance_log");
    std::fs::write(out.join("seed-one-entry.jsonl"), &plain).unwrap();
    std::fs::write(out.join("seed-rotated.jsonl"), &rotated).unwrap();
    std::fs::write(
        out.join("seed-edited.jsonl"),
        rotated.replacen("run-3", "run-4", 1),
    )
    .unwrap();
}

#[test]
fn trust_file_corpora_replay() {
    if std::env::var_os("METERBENCH_WRITE_FUZZ_SEEDS").is_some() {
        write_seeds();
    }
    let read = |target: &str| -> Vec<Vec<u8>> {
        std::fs::read_dir(corpus(target))
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect()
    };
    let rings = read("keyring");
    let parsed = rings
        .iter()
        .filter_map(|d| std::str::from_utf8(d).ok())
        .filter_map(|t| Keyring::parse(t, "corpus").ok())
        .inspect(|r| {
            assert_eq!(Keyring::parse(&r.to_json(), "again").unwrap().keys, r.keys);
        })
        .count();
    assert!(parsed >= 1, "the seed keyring parses");

    let trust = target_trust();
    let logs = read("issuance_log");
    let verified = logs
        .iter()
        .filter(|d| verify_issuance_log_text(&String::from_utf8_lossy(d), &trust).is_ok())
        .count();
    assert!(logs.len() >= 3, "the corpus has {} logs", logs.len());
    assert!(verified >= 2, "the seed logs verify");
    assert!(verified < logs.len(), "the edited seed does not");
}
