//! The hash-chained issuance log: a clean log verifies; each kind of tampering is named.

mod common;

use std::fs;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use meterbench_signing::{
    GENESIS_PREV_HASH, IssuanceEntry, IssuanceFields, Keyring, Problem, ProblemKind, SigningError,
    SigningKey, append_issuance, find_bundle_in_log, key_id, sign_bundle, verify_issuance_log,
};
use sha2::{Digest, Sha256};

fn lab_key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

/// The lab's key, trusted at any time.
fn trust() -> Keyring {
    Keyring::single(lab_key().verifying_key(), "the lab key")
}

fn fields(n: u64) -> IssuanceFields {
    IssuanceFields {
        run_id: format!("2025-06-01-{n:04}"),
        bundle: format!("reports/2025-06-01-{n:04}"),
        manifest_sha256: hex::encode(Sha256::digest(n.to_le_bytes())),
    }
}

/// A log of five entries written by `append_issuance`.
fn five_entry_log() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("issuance.jsonl");
    for n in 1..=5 {
        append_issuance(&log, &fields(n), &lab_key(), &trust()).unwrap();
    }
    (dir, log)
}

fn lines(log: &Path) -> Vec<String> {
    fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn write_lines(log: &Path, lines: &[String]) {
    fs::write(
        log,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

fn log_problems(log: &Path) -> Vec<Problem> {
    verify_issuance_log(log, &trust()).unwrap_err()
}

fn find<'a>(problems: &'a [Problem], subject: &str, kind: ProblemKind) -> &'a Problem {
    problems
        .iter()
        .find(|p| p.subject == subject && p.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} for {subject} in {problems:#?}"))
}

#[test]
fn five_appended_entries_verify() {
    let (_dir, log) = five_entry_log();
    let summary = verify_issuance_log(&log, &trust()).unwrap();
    assert_eq!(summary.entries.len(), 5);
    assert_eq!(
        summary.key_id.as_deref(),
        Some(key_id(&lab_key().verifying_key()).as_str())
    );
    let mut prev = GENESIS_PREV_HASH.to_string();
    for (i, entry) in summary.entries.iter().enumerate() {
        assert_eq!(entry.seq, i as u64 + 1);
        assert_eq!(entry.fields, fields(entry.seq));
        assert_eq!(entry.prev_hash, prev);
        assert_eq!(
            entry.hash,
            hex::encode(Sha256::digest(entry.canonical_bytes()))
        );
        prev = entry.hash.clone();
    }
    assert_eq!(summary.head_hash(), Some(prev.as_str()));
    // The canonical bytes are the documented compact JSON, in the documented order.
    let canonical = String::from_utf8(summary.entries[0].canonical_bytes()).unwrap();
    assert!(
        canonical.starts_with(r#"{"seq":1,"issued":""#),
        "{canonical}"
    );
    assert!(
        canonical.ends_with(&format!(r#","prev_hash":"{GENESIS_PREV_HASH}"}}"#)),
        "{canonical}"
    );
    // Each stored line is exactly the entry's JSON line.
    assert_eq!(lines(&log)[2], summary.entries[2].to_json_line());
}

#[test]
fn a_removed_entry_is_a_sequence_gap_and_a_chain_break() {
    let (_dir, log) = five_entry_log();
    let mut l = lines(&log);
    l.remove(2); // seq 3
    write_lines(&log, &l);
    let problems = log_problems(&log);
    let gap = find(&problems, "line 3 (seq 4)", ProblemKind::SequenceGap);
    assert_eq!(
        gap.to_string(),
        "line 3 (seq 4): sequence gap: expected seq 3 after seq 2 (line 2), found 4: seq 3 was removed"
    );
    let chain = find(&problems, "line 3 (seq 4)", ProblemKind::ChainBreak);
    assert!(
        chain.detail.starts_with("chain break: prev_hash "),
        "{chain}"
    );
    assert!(
        chain
            .detail
            .ends_with("of the entry before it (line 2, seq 2)"),
        "{chain}"
    );
    assert_eq!(problems.len(), 2, "{problems:#?}");

    // Removing the first entry is caught as well.
    let (_dir, log) = five_entry_log();
    let l = lines(&log);
    write_lines(&log, &l[1..]);
    let problems = log_problems(&log);
    let gap = find(&problems, "line 1 (seq 2)", ProblemKind::SequenceGap);
    assert!(
        gap.detail
            .starts_with("the first entry has seq 2, expected 1"),
        "{gap}"
    );
    find(&problems, "line 1 (seq 2)", ProblemKind::ChainBreak);
}

#[test]
fn reordered_entries_are_out_of_order() {
    let (_dir, log) = five_entry_log();
    let mut l = lines(&log);
    l.swap(1, 2);
    write_lines(&log, &l);
    let problems = log_problems(&log);
    let out_of_order = find(&problems, "line 3 (seq 2)", ProblemKind::OutOfOrder);
    assert_eq!(
        out_of_order.to_string(),
        "line 3 (seq 2): out of order: seq 2 comes after seq 3 (line 2); entries were reordered or duplicated"
    );
    find(&problems, "line 2 (seq 3)", ProblemKind::SequenceGap);
    find(&problems, "line 2 (seq 3)", ProblemKind::ChainBreak);
    find(&problems, "line 3 (seq 2)", ProblemKind::ChainBreak);
}

#[test]
fn an_edited_entry_is_named() {
    // Edited in place: the recorded hash no longer matches.
    let (_dir, log) = five_entry_log();
    let mut l = lines(&log);
    l[1] = l[1].replace("2025-06-01-0002", "2025-06-01-0099");
    write_lines(&log, &l);
    let problems = log_problems(&log);
    let modified = find(&problems, "line 2 (seq 2)", ProblemKind::EntryModified);
    assert!(
        modified
            .detail
            .starts_with("entry was modified: its contents hash to "),
        "{modified}"
    );
    assert_eq!(problems.len(), 1, "{problems:#?}");

    // Edited with the hash recomputed, as someone without the key would:
    // the signature and the next link give it away.
    let (_dir, log) = five_entry_log();
    let mut l = lines(&log);
    let mut value: serde_json::Value = serde_json::from_str(&l[1]).unwrap();
    value["bundle"] = "reports/somewhere-else".into();
    let canonical = format!(
        r#"{{"seq":{},"issued":{},"run_id":{},"bundle":{},"manifest_sha256":{},"key_id":{},"prev_hash":{}}}"#,
        value["seq"],
        value["issued"],
        value["run_id"],
        value["bundle"],
        value["manifest_sha256"],
        value["key_id"],
        value["prev_hash"]
    );
    value["hash"] = hex::encode(Sha256::digest(canonical.as_bytes())).into();
    l[1] = value.to_string();
    write_lines(&log, &l);
    let problems = log_problems(&log);
    let bad = find(&problems, "line 2 (seq 2)", ProblemKind::BadSignature);
    assert_eq!(
        bad.detail,
        format!(
            "signature over the entry's hash does not verify with key id {}",
            key_id(&lab_key().verifying_key())
        )
    );
    find(&problems, "line 3 (seq 3)", ProblemKind::ChainBreak);
    assert!(
        !problems
            .iter()
            .any(|p| p.kind == ProblemKind::EntryModified),
        "{problems:#?}"
    );
}

/// Builds a log entry by entry with chosen timestamps, as a key holder could.
fn forged_log(log: &Path, times: &[DateTime<Utc>], key: &SigningKey) {
    let mut prev = GENESIS_PREV_HASH.to_string();
    let mut text = String::new();
    for (i, t) in times.iter().enumerate() {
        let entry = IssuanceEntry::new_signed(i as u64 + 1, *t, fields(i as u64 + 1), &prev, key);
        text.push_str(&entry.to_json_line());
        text.push('\n');
        prev = entry.hash;
    }
    fs::write(log, text).unwrap();
}

#[test]
fn a_back_dated_entry_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("issuance.jsonl");
    let t0 = DateTime::parse_from_rfc3339("2025-06-01T08:00:00Z")
        .unwrap()
        .to_utc();
    let hours = |h| t0 + Duration::hours(h);
    // Same timestamps are fine: two issuances can share a millisecond.
    forged_log(
        &log,
        &[hours(0), hours(1), hours(1), hours(3), hours(4)],
        &lab_key(),
    );
    verify_issuance_log(&log, &trust()).unwrap();

    // Entry 4 claims to predate entry 3, correctly hashed, chained and signed.
    forged_log(
        &log,
        &[hours(0), hours(1), hours(2), hours(-24), hours(4)],
        &lab_key(),
    );
    let problems = log_problems(&log);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(
        problems[0].to_string(),
        "line 4 (seq 4): back-dated: issued 2025-05-31T08:00:00.000Z is earlier than \
         2025-06-01T10:00:00.000Z of the entry before it (line 3, seq 3)"
    );
    assert_eq!(problems[0].kind, ProblemKind::BackDated);
}

#[test]
fn an_entry_signed_by_another_key_is_named() {
    let (_dir, log) = five_entry_log();
    let intruder = SigningKey::from_bytes(&[1; 32]);
    let summary_before = verify_issuance_log(&log, &trust()).unwrap();
    let last = summary_before.entries.last().unwrap();
    let forged = IssuanceEntry::new_signed(6, Utc::now(), fields(6), &last.hash, &intruder);
    let mut l = lines(&log);
    l.push(forged.to_json_line());
    write_lines(&log, &l);
    let problems = log_problems(&log);
    find(&problems, "line 6 (seq 6)", ProblemKind::BadSignature);
    let mismatch = find(&problems, "line 6 (seq 6)", ProblemKind::KeyMismatch);
    assert!(
        mismatch.detail.contains(&key_id(&intruder.verifying_key())),
        "{mismatch}"
    );

    // And the appender refuses to chain onto it.
    let err = append_issuance(&log, &fields(7), &lab_key(), &trust()).unwrap_err();
    assert!(matches!(err, SigningError::LogInvalid { .. }), "{err}");
    assert!(err.to_string().contains("refusing to append"), "{err}");
}

#[test]
fn damaged_lines_are_named() {
    let (_dir, log) = five_entry_log();
    let mut text = fs::read_to_string(&log).unwrap();
    text.truncate(text.len() - 20); // a torn last write
    fs::write(&log, &text).unwrap();
    let problems = log_problems(&log);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0]
            .to_string()
            .starts_with("line 5: not a valid issuance entry"),
        "{problems:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.jsonl");
    let problems = verify_issuance_log(&missing, &trust()).unwrap_err();
    assert_eq!(problems[0].kind, ProblemKind::Missing);
    // An empty log is a valid log with nothing issued yet.
    fs::write(&missing, "").unwrap();
    assert!(
        verify_issuance_log(&missing, &trust())
            .unwrap()
            .entries
            .is_empty()
    );
}

#[test]
fn a_signed_bundle_is_found_in_the_log_and_an_unissued_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("issuance.jsonl");
    let key = lab_key();
    let issued = dir.path().join("run-0001");
    let unissued = dir.path().join("run-0002");
    for bundle in [&issued, &unissued] {
        fs::create_dir(bundle).unwrap();
        common::make_bundle(bundle);
        // Real runs differ at least in their run record.
        fs::write(bundle.join("run.json"), bundle.to_string_lossy().as_bytes()).unwrap();
        sign_bundle(bundle, &key, "lab").unwrap();
    }
    append_issuance(&log, &fields(1), &key, &trust()).unwrap();
    let entry = append_issuance(
        &log,
        &IssuanceFields::for_bundle("run-0001", &issued).unwrap(),
        &key,
        &trust(),
    )
    .unwrap();
    assert_eq!(entry.seq, 2);

    let found = find_bundle_in_log(&log, &issued, &trust()).unwrap();
    assert_eq!(found, entry);
    let problems = find_bundle_in_log(&log, &unissued, &trust()).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].kind, ProblemKind::NotInLog);
    assert!(
        problems[0]
            .to_string()
            .starts_with("MANIFEST.sha256: its SHA-256 ")
            && problems[0]
                .detail
                .contains("appears in no entry of the issuance log"),
        "{}",
        problems[0]
    );
}

/// A write cut short (a crash, a full disk) leaves a torn last line: the next append
/// moves it aside, logs a signed repair entry naming where it went and the SHA-256 of
/// its bytes, and issues on; the whole log verifies again.
#[test]
fn a_torn_last_line_is_repaired_with_a_signed_entry_on_the_next_append() {
    let (dir, log) = five_entry_log();
    let mut text = fs::read_to_string(&log).unwrap();
    text.truncate(text.len() - 20);
    let torn = text[text.rfind('\n').unwrap() + 1..].to_string();
    fs::write(&log, &text).unwrap();

    let repairs = meterbench_signing::prepare_issuance_log(&log, &lab_key(), &trust()).unwrap();
    assert_eq!(repairs.len(), 1);
    let r = &repairs[0];
    assert_eq!(r.fields.run_id, meterbench_signing::LOG_REPAIR_RUN_ID);
    assert_eq!(r.seq, 5, "the torn line's entry never was");
    assert_eq!(
        r.fields.manifest_sha256,
        hex::encode(Sha256::digest(torn.as_bytes()))
    );
    let aside = Path::new(&r.fields.bundle);
    assert!(aside.starts_with(dir.path()), "{aside:?}");
    assert_eq!(
        fs::read_to_string(aside).unwrap(),
        torn,
        "kept for the auditor"
    );

    append_issuance(&log, &fields(6), &lab_key(), &trust()).unwrap();
    let summary = verify_issuance_log(&log, &trust()).unwrap();
    let ids: Vec<&str> = summary
        .entries
        .iter()
        .map(|e| e.fields.run_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "2025-06-01-0001",
            "2025-06-01-0002",
            "2025-06-01-0003",
            "2025-06-01-0004",
            "log-repair",
            "2025-06-01-0006"
        ]
    );
    // A log that verifies needs no repair.
    assert!(
        meterbench_signing::prepare_issuance_log(&log, &lab_key(), &trust())
            .unwrap()
            .is_empty()
    );
}

/// A whole entry that only lacks its newline was issued: it is completed, not moved.
#[test]
fn a_last_entry_without_its_newline_is_completed() {
    let (_dir, log) = five_entry_log();
    let text = fs::read_to_string(&log).unwrap();
    fs::write(&log, text.trim_end_matches('\n')).unwrap();
    assert!(
        meterbench_signing::prepare_issuance_log(&log, &lab_key(), &trust())
            .unwrap()
            .is_empty()
    );
    assert_eq!(fs::read_to_string(&log).unwrap(), text);
}

/// Damage that is not at the end is not "repaired": the log is refused as it was.
#[test]
fn damage_before_the_last_line_is_refused_not_repaired() {
    let (_dir, log) = five_entry_log();
    let mut l = lines(&log);
    l[2] = l[2].replace("\"seq\":3", "\"seq\":33");
    write_lines(&log, &l);
    let before = fs::read_to_string(&log).unwrap();
    let e = meterbench_signing::prepare_issuance_log(&log, &lab_key(), &trust()).unwrap_err();
    assert!(matches!(e, SigningError::LogInvalid { .. }), "{e}");
    assert_eq!(fs::read_to_string(&log).unwrap(), before);
}

/// A bundle issued with `sign_and_append` names the head it was appended after; a log
/// rebuilt with the same key (entries replaced, the chain valid again) no longer holds
/// that head, and the bundle says so, as it says when the log was cut.
#[test]
fn a_bundle_knows_the_log_head_it_was_appended_after() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("issuance.jsonl");
    append_issuance(&log, &fields(1), &lab_key(), &trust()).unwrap();
    let bundle = dir.path().join("run-2");
    fs::create_dir(&bundle).unwrap();
    fs::write(bundle.join("record.json"), "{}\n").unwrap();
    let (_, entry) =
        meterbench_signing::sign_and_append(&log, &lab_key(), &trust(), "lab", "run-2", &bundle)
            .unwrap();
    assert_eq!(entry.seq, 2);
    let head: meterbench_signing::LogHead = serde_json::from_str(
        &fs::read_to_string(bundle.join(meterbench_signing::LOG_HEAD_FILE)).unwrap(),
    )
    .unwrap();
    assert_eq!(head.seq, 1);
    let key = trust();
    assert_eq!(find_bundle_in_log(&log, &bundle, &key).unwrap().seq, 2);

    // The same key rewrites entry 1 and re-appends the bundle: a valid chain, but not the
    // head the bundle was signed against.
    fs::remove_file(&log).unwrap();
    append_issuance(&log, &fields(9), &lab_key(), &trust()).unwrap();
    append_issuance(
        &log,
        &IssuanceFields::for_bundle("run-2", &bundle).unwrap(),
        &lab_key(),
        &trust(),
    )
    .unwrap();
    let problems = find_bundle_in_log(&log, &bundle, &key).unwrap_err();
    assert!(
        problems[0].detail.contains("the log was rewritten"),
        "{problems:?}"
    );
}
