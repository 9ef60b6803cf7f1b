//! Signing bundles and verifying them with our code and with the OpenSSL-only recipe.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{all_files, make_bundle, openssl_available, run_openssl_script};
use meterbench_signing::{
    MANIFEST_FILE, PUBLIC_KEY_FILE, Problem, ProblemKind, SIGNATURE_FILE, SigningError, SigningKey,
    key_id, sign_bundle, verify_bundle,
};

fn test_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn signed_bundle() -> (tempfile::TempDir, SigningKey) {
    let dir = tempfile::tempdir().unwrap();
    make_bundle(dir.path());
    let key = test_key(7);
    sign_bundle(dir.path(), &key, "Calibration lab 1, station A").unwrap();
    (dir, key)
}

fn shown(problems: &[Problem]) -> Vec<String> {
    problems.iter().map(ToString::to_string).collect()
}

#[test]
fn a_signed_bundle_verifies_with_our_code_and_with_openssl() {
    let (dir, key) = signed_bundle();

    let report = verify_bundle(dir.path(), Some(&key.verifying_key())).unwrap();
    assert!(report.trusted_key_checked);
    assert_eq!(report.manifest.key_id, key_id(&key.verifying_key()));
    assert_eq!(report.manifest.signer, "Calibration lab 1, station A");
    let listed: Vec<&str> = report
        .manifest
        .entries
        .iter()
        .map(|e| e.path.as_str())
        .collect();
    assert_eq!(
        listed,
        [
            ".run-id",
            "certificate.html",
            "certificate.pdf",
            "dcc/dcc.xml",
            "plots/error.png",
            "plots/svg/error curve.svg",
            "run.json",
            "signer.pub.pem",
        ]
    );
    let manifest_bytes = fs::read(dir.path().join(MANIFEST_FILE)).unwrap();
    assert_eq!(
        String::from_utf8(manifest_bytes).unwrap(),
        report.manifest.to_text()
    );
    assert_eq!(report.manifest_sha256, report.manifest.sha256());
    assert_eq!(fs::read(dir.path().join(SIGNATURE_FILE)).unwrap().len(), 64);

    let untrusted = verify_bundle(dir.path(), None).unwrap();
    assert!(!untrusted.trusted_key_checked);

    if !openssl_available() {
        return;
    }
    let (ok, out) = run_openssl_script(dir.path(), None);
    assert!(ok, "{out}");
    assert!(
        out.contains("OK: signature valid, 8 files match MANIFEST.sha256"),
        "{out}"
    );
    assert!(out.contains(&key_id(&key.verifying_key())), "{out}");
    let (ok, out) = run_openssl_script(dir.path(), Some(&key_id(&key.verifying_key())));
    assert!(ok, "{out}");
}

#[test]
fn the_manifest_is_a_valid_sha256sum_checksum_file() {
    let (dir, _) = signed_bundle();
    let Ok(output) = Command::new("sha256sum")
        .args(["--strict", "-c", MANIFEST_FILE])
        .current_dir(dir.path())
        .output()
    else {
        println!("SKIPPED: sha256sum is not on PATH");
        return;
    };
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        out.lines().filter(|l| l.ends_with(": OK")).count(),
        8,
        "{out}"
    );
}

/// Flips one bit of one byte; returns the original to put back.
fn flip(path: &Path, at: usize) -> Vec<u8> {
    let original = fs::read(path).unwrap();
    let mut changed = original.clone();
    changed[at] ^= 0x01;
    fs::write(path, changed).unwrap();
    original
}

#[test]
fn every_single_byte_change_in_every_file_is_detected_and_named() {
    let (dir, key) = signed_bundle();
    let openssl = openssl_available();
    let files = all_files(dir.path());
    // The manifest files themselves are part of what must be tamper-evident.
    for must in [MANIFEST_FILE, SIGNATURE_FILE, PUBLIC_KEY_FILE] {
        assert!(files.iter().any(|f| f == must), "{files:?}");
    }
    let mut cases = 0;
    for file in &files {
        let path = dir.path().join(file);
        let len = fs::metadata(&path).unwrap().len() as usize;
        let mut positions = vec![0, len / 2, len - 1];
        positions.dedup();
        for at in positions {
            let original = flip(&path, at);
            cases += 1;

            let problems = verify_bundle(dir.path(), None)
                .expect_err(&format!("{file} byte {at} changed, yet our verify passed"));
            let expected_kind = match file.as_str() {
                MANIFEST_FILE | SIGNATURE_FILE => ProblemKind::BadSignature,
                _ => ProblemKind::HashMismatch,
            };
            let named = problems.iter().any(|p| {
                p.kind == expected_kind
                    && (p.subject == *file || p.to_string().contains(file.as_str()))
            });
            assert!(
                named,
                "{file} byte {at}: no {expected_kind:?} naming it in {:?}",
                shown(&problems)
            );
            if expected_kind == ProblemKind::HashMismatch {
                let message = problems
                    .iter()
                    .find(|p| p.subject == *file && p.kind == ProblemKind::HashMismatch)
                    .unwrap()
                    .to_string();
                assert!(
                    message.starts_with(&format!(
                        "{file}: SHA-256 differs from the manifest (expected "
                    )),
                    "{message}"
                );
            }
            // The trusted-key path must catch it too.
            assert!(verify_bundle(dir.path(), Some(&key.verifying_key())).is_err());

            if openssl {
                let (ok, out) = run_openssl_script(dir.path(), None);
                assert!(
                    !ok,
                    "{file} byte {at} changed, yet the OpenSSL recipe passed:\n{out}"
                );
                let failure_names_file = out
                    .lines()
                    .any(|l| l.starts_with("FAILED: ") && l.contains(file.as_str()));
                assert!(failure_names_file, "{file} byte {at}: not named in\n{out}");
            }

            fs::write(&path, original).unwrap();
        }
    }
    assert!(
        cases >= 3 * files.len() - 2,
        "{cases} cases for {} files",
        files.len()
    );
    // Every change was put back: the bundle verifies again.
    verify_bundle(dir.path(), Some(&key.verifying_key())).unwrap();
}

#[test]
fn a_deleted_file_is_named_by_both_verifiers() {
    let (dir, _) = signed_bundle();
    fs::remove_file(dir.path().join("plots/error.png")).unwrap();
    let problems = verify_bundle(dir.path(), None).unwrap_err();
    assert_eq!(
        shown(&problems),
        ["plots/error.png: listed in the manifest but missing"],
        "{problems:?}"
    );
    assert_eq!(problems[0].kind, ProblemKind::Missing);
    if openssl_available() {
        let (ok, out) = run_openssl_script(dir.path(), None);
        assert!(!ok);
        assert!(
            out.contains("FAILED: plots/error.png: listed in the manifest but missing"),
            "{out}"
        );
    }
}

#[test]
fn added_files_are_named_by_both_verifiers() {
    let (dir, _) = signed_bundle();
    fs::write(dir.path().join("extra.txt"), "not part of the run").unwrap();
    fs::write(dir.path().join("plots/.hidden"), "sneaky").unwrap();
    fs::create_dir(dir.path().join("new folder")).unwrap();
    fs::write(
        dir.path().join("new folder/certificate-corrected.pdf"),
        "%PDF",
    )
    .unwrap();
    let problems = verify_bundle(dir.path(), None).unwrap_err();
    assert_eq!(
        shown(&problems),
        [
            "extra.txt: present but not in the manifest",
            "new folder/certificate-corrected.pdf: present but not in the manifest",
            "plots/.hidden: present but not in the manifest",
        ]
    );
    assert!(problems.iter().all(|p| p.kind == ProblemKind::Extra));
    if openssl_available() {
        let (ok, out) = run_openssl_script(dir.path(), None);
        assert!(!ok);
        for name in [
            "extra.txt",
            "plots/.hidden",
            "new folder/certificate-corrected.pdf",
        ] {
            assert!(
                out.contains(&format!("FAILED: {name}: present but not in the manifest")),
                "{out}"
            );
        }
    }
}

#[test]
fn a_bundle_signed_by_another_key_is_reported_against_the_trusted_key() {
    let (dir, lab_key) = signed_bundle();
    let trusted = lab_key.verifying_key();

    // Someone edits the certificate and re-signs the whole bundle with their own key.
    let forger = test_key(99);
    fs::write(
        dir.path().join("certificate.html"),
        "<html>all good, honest</html>",
    )
    .unwrap();
    for name in [MANIFEST_FILE, SIGNATURE_FILE, PUBLIC_KEY_FILE] {
        fs::remove_file(dir.path().join(name)).unwrap();
    }
    sign_bundle(dir.path(), &forger, "Calibration lab 1, station A").unwrap();

    // Internally consistent: only the key id gives it away...
    let report = verify_bundle(dir.path(), None).unwrap();
    assert_ne!(report.manifest.key_id, key_id(&trusted));
    // ...and with the trusted key, the verifier says exactly that.
    let problems = verify_bundle(dir.path(), Some(&trusted)).unwrap_err();
    let text = shown(&problems).join("\n");
    assert!(text.contains(&format!(
        "signer.pub.pem: the bundle is signed by key id {}, not by the trusted key id {}",
        key_id(&forger.verifying_key()),
        key_id(&trusted)
    )));
    assert!(
        text.contains(
            "MANIFEST.sig: signature over MANIFEST.sha256 does not verify with the trusted key"
        ),
        "{text}"
    );
    assert!(problems.iter().any(|p| p.kind == ProblemKind::UntrustedKey));

    if openssl_available() {
        let (ok, out) = run_openssl_script(dir.path(), Some(&key_id(&trusted)));
        assert!(!ok, "{out}");
        assert!(
            out.contains(&format!("is not the expected key id {}", key_id(&trusted))),
            "{out}"
        );
    }
}

#[test]
fn missing_signature_and_key_files_are_named() {
    let (dir, _) = signed_bundle();
    fs::remove_file(dir.path().join(SIGNATURE_FILE)).unwrap();
    fs::remove_file(dir.path().join(PUBLIC_KEY_FILE)).unwrap();
    let problems = verify_bundle(dir.path(), None).unwrap_err();
    assert_eq!(
        shown(&problems),
        [
            "MANIFEST.sig: missing: the manifest is not signed",
            "signer.pub.pem: missing: the signature cannot be checked without the signer's public key",
        ]
    );
    let empty = tempfile::tempdir().unwrap();
    let problems = verify_bundle(empty.path(), None).unwrap_err();
    assert!(
        shown(&problems)[0].starts_with("MANIFEST.sha256: missing"),
        "{problems:?}"
    );
}

#[test]
fn signing_refuses_to_resign_or_to_list_what_a_bundle_cannot_hold() {
    let (dir, key) = signed_bundle();
    let err = sign_bundle(dir.path(), &key, "again").unwrap_err();
    assert!(matches!(err, SigningError::AlreadyExists { .. }), "{err}");
    assert!(err.to_string().contains("already signed"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    make_bundle(dir.path());
    let err = sign_bundle(dir.path(), &key, "two\nlines").unwrap_err();
    assert!(
        err.to_string().starts_with("signer \"two\\nlines\""),
        "{err}"
    );

    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("plots/link")).unwrap();
        let err = sign_bundle(dir.path(), &key, "lab").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("plots/link: is not a regular file"),
            "{err}"
        );
        // Nothing was written: the bundle can be fixed and signed.
        assert!(!dir.path().join(PUBLIC_KEY_FILE).exists());
        fs::remove_file(dir.path().join("plots/link")).unwrap();
        sign_bundle(dir.path(), &key, "lab").unwrap();

        // A symlink slipped in after signing is reported, not followed.
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("link")).unwrap();
        let problems = verify_bundle(dir.path(), None).unwrap_err();
        assert_eq!(
            problems[0].kind,
            ProblemKind::NotRegularFile,
            "{problems:?}"
        );
        assert_eq!(problems[0].subject, "link");
    }
}
