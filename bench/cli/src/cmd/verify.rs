use clap::Args;
use meterbench_session::paths::{BenchHome, public_key_path};
use meterbench_signing::{
    KEY_ROTATION_RUN_ID, find_bundle_in_log, verify_bundle, verify_bundle_trusted,
    verify_issuance_log,
};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A certificate bundle folder (reports/<run>/) to check: every file's SHA-256 and the
    /// Ed25519 signature of its manifest.
    #[arg(required_unless_present = "log")]
    pub bundle: Option<PathBuf>,
    /// Check an issuance log instead: the hash chain, order, dates and signatures.
    #[arg(long, value_name = "LOG")]
    pub log: Option<PathBuf>,
    /// One trusted public key (PEM), trusted at any time. A bundle is only OK when signed
    /// by a trusted key; without one the answer is that it could not be checked.
    #[arg(long, conflicts_with = "keyring")]
    pub key: Option<PathBuf>,
    /// The laboratory's published keyring (keyring.json): its keys, each in its validity
    /// period, are trusted [default: keys/keyring.json beside the bench's signing key,
    /// else the bench's own public key, when this machine has one].
    #[arg(long)]
    pub keyring: Option<PathBuf>,
}

/// `given` as named (from the current folder), else in the bench home when it is there
/// (`reports/RUN_ID` from any folder, as `run` names it).
fn in_home(given: &std::path::Path, home: &BenchHome) -> PathBuf {
    if given.exists() || given.is_absolute() || !home.file(given).exists() {
        given.to_path_buf()
    } else {
        home.file(given)
    }
}

pub fn main(mut args: VerifyArgs, home: &BenchHome) -> i32 {
    args.bundle = args.bundle.map(|b| in_home(&b, home));
    args.log = args.log.map(|l| in_home(&l, home));
    // A path that is not there is bad input (exit 2), not a bundle that failed its check.
    if let Some(bundle) = &args.bundle
        && !bundle.is_dir()
    {
        eprintln!(
            "error: {}: {}; give a bundle folder (reports/RUN_ID) holding MANIFEST.sha256, from the current folder or {}",
            bundle.display(),
            if bundle.exists() {
                "not a folder"
            } else {
                "no such folder"
            },
            home.describe()
        );
        return 2;
    }
    if let Some(log) = &args.log
        && !log.is_file()
    {
        eprintln!(
            "error: {}: no such file; give an issuance log (reports/issuance-log.jsonl), from the current folder or {}",
            log.display(),
            home.describe()
        );
        return 2;
    }
    let trusted = match crate::cmd::keys::trusted_keys(
        args.key.as_deref(),
        args.keyring.as_deref(),
        home,
    ) {
        Ok(Some(t)) => Some(t),
        Ok(None) if args.log.is_some() => {
            eprintln!(
                "error: checking an issuance log needs the trusted keys: --keyring keyring.json or --key PUB.pem"
            );
            return 2;
        }
        Ok(None) => None,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let mut bad = false;
    if let Some(bundle) = &args.bundle {
        let checked = match &trusted {
            Some(t) => verify_bundle_trusted(bundle, t),
            None => verify_bundle(bundle, None),
        };
        match checked {
            Ok(report) if report.trusted_key_checked => {
                crate::sayln!(
                    "OK {}: {} files intact, signed on {} by the trusted key {} ({}) of the keyring {}",
                    bundle.display(),
                    report.manifest.entries.len(),
                    report
                        .manifest
                        .created
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    report.manifest.key_id,
                    report.manifest.signer,
                    trusted.as_ref().map_or("", |t| t.origin.as_str()),
                );
                // Issued means logged: with the log at hand (given, or beside the
                // bundle in its reports folder), the bundle must be in it.
                let log = args.log.clone().or_else(|| {
                    // Of the absolute path: `.`, a bundle named from inside it, has none.
                    let beside = std::path::absolute(bundle)
                        .ok()?
                        .parent()?
                        .join("issuance-log.jsonl");
                    beside.exists().then_some(beside)
                });
                // A retired key's signing date is its signer's statement (a leaked key can
                // date a bundle inside its period): only the log places it.
                let retired = trusted
                    .as_ref()
                    .and_then(|t| t.get(&report.manifest.key_id))
                    .filter(|k| k.valid_until.is_some());
                if let (Some(k), None) = (retired, &log) {
                    crate::sayln!(
                        "NOTE {}: key {} is retired ({}); the bundle's date is its signer's own statement, and no issuance log is at hand to place it: verify it with --log reports/issuance-log.jsonl",
                        bundle.display(),
                        k.key_id,
                        k.period()
                    );
                }
                if let (Some(log), Some(key)) = (log, trusted.as_ref()) {
                    match find_bundle_in_log(&log, bundle, key) {
                        Ok(entry) => crate::sayln!(
                            "OK {}: issued as entry {} of {} on {}",
                            bundle.display(),
                            entry.seq,
                            log.display(),
                            entry
                                .issued
                                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                        ),
                        Err(problems) => {
                            for p in problems {
                                crate::sayln!(
                                    "FAILED {}: {} ({p})",
                                    bundle.display(),
                                    log.display()
                                );
                            }
                            bad = true;
                        }
                    }
                }
            }
            Ok(report) => {
                crate::sayln!(
                    "NOT TRUSTED {}: intact as signed by key {} ({}), but there is no trusted key to compare it with: {} has none ({}); give the laboratory's published keyring with --keyring keyring.json (or one key with --key PUB.pem), or name the bench home that signed it with --home DIR",
                    bundle.display(),
                    report.manifest.key_id,
                    report.manifest.signer,
                    home.describe(),
                    public_key_path(&home.signing_key()).display(),
                );
                bad = true;
            }
            Err(problems) => {
                for p in problems {
                    crate::sayln!("FAILED {}: {p}", bundle.display());
                }
                bad = true;
            }
        }
    }
    if let Some(log) = &args.log {
        let key = trusted.expect("a key is loaded for --log");
        match verify_issuance_log(log, &key) {
            Ok(summary) => {
                crate::sayln!(
                    "OK {}: {} entries, chain intact, head {}",
                    log.display(),
                    summary.entries.len(),
                    summary.head_hash().unwrap_or("(empty)")
                );
                for k in &summary.keys {
                    match k.retired_by {
                        Some(seq) => crate::sayln!(
                            "  key id {} kept it from entry {} to entry {seq} ({KEY_ROTATION_RUN_ID})",
                            k.key_id,
                            k.from_seq
                        ),
                        None => {
                            crate::sayln!(
                                "  key id {} keeps it since entry {}",
                                k.key_id,
                                k.from_seq
                            )
                        }
                    }
                }
                // A chain cut at its end still verifies; the signed bundles beside it
                // contradict it: each must be in the log.
                let missing = bundles_not_in(log, &summary);
                for b in &missing {
                    crate::sayln!(
                        "FAILED {}: the signed bundle {} is not in it (entries cut off its end, or a bundle never issued)",
                        log.display(),
                        b.display()
                    );
                }
                bad |= !missing.is_empty();
            }
            Err(problems) => {
                for p in problems {
                    crate::sayln!("FAILED {}: {p}", log.display());
                }
                bad = true;
            }
        }
    }
    if bad { 1 } else { 0 }
}

/// The signed bundles in the log's folder (its run folders) whose manifest the log does
/// not hold.
fn bundles_not_in(log: &std::path::Path, summary: &meterbench_signing::LogSummary) -> Vec<PathBuf> {
    let Some(dir) = log.parent() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
        std::path::Path::new(".")
    } else {
        dir
    }) else {
        return Vec::new();
    };
    let mut missing: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("MANIFEST.sig").is_file())
        .filter(|p| {
            meterbench_signing::bundle_manifest_sha256(p).is_ok_and(|h| {
                !summary
                    .entries
                    .iter()
                    .any(|e| e.fields.manifest_sha256 == h)
            })
        })
        .collect();
    missing.sort();
    missing
}
