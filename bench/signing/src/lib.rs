//! Signed certificate bundles and the hash-chained issuance log.
//!
//! A *bundle* is the folder one bench run produces (run record, certificate,
//! plots, DCC XML, ...). [`sign_bundle`] makes it tamper-evident:
//!
//! ```text
//! BUNDLE/
//!   run.json, certificate.html, plots/error.png, ...   the run's own files
//!   signer.pub.pem     the public key (SubjectPublicKeyInfo PEM), itself listed in the manifest
//!   MANIFEST.sha256    a small `#` header (format, algorithm, key id, signer, created UTC)
//!                      followed by one `<64 hex> *<path>` line per file, sorted
//!   MANIFEST.sig       raw 64-byte Ed25519 signature over MANIFEST.sha256's exact bytes
//! ```
//!
//! The manifest is at once the signed statement and a checksum file that
//! `sha256sum -c MANIFEST.sha256` accepts (GNU sha256sum skips `#` lines), and
//! the lines are exactly what `openssl dgst -sha256 -r` prints, so an auditor
//! needs nothing of ours: `verify-with-openssl.sh` (next to this crate's
//! `Cargo.toml`, also in [`OPENSSL_VERIFY_SCRIPT`]) checks the signature and
//! every file with stock OpenSSL and a POSIX shell.
//!
//! `signer.pub.pem` only makes the recipe self-contained: anyone can sign a
//! bundle with their own key. Trust comes from comparing the key id (the first
//! 16 hex digits of SHA-256 over the public key's DER, see [`key_id`]) with the
//! one the lab publishes, or from passing the trusted key to [`verify_bundle`].
//!
//! The *issuance log* ([`append_issuance`], [`verify_issuance_log`]) records
//! every bundle the lab issued as one JSON line, each line carrying the hash of
//! the one before and an Ed25519 signature over its own hash, so removing,
//! reordering, editing or back-dating entries is detected.

#![forbid(unsafe_code)]

mod bundle;
pub mod c14n;
mod issuance;
mod keyring;
mod keys;
pub mod xmldsig;

use std::fmt;
use std::path::PathBuf;

pub use bundle::{
    MANIFEST_FILE, MANIFEST_FORMAT, Manifest, ManifestEntry, PUBLIC_KEY_FILE, SIGNATURE_ALGORITHM,
    SIGNATURE_FILE, VerifyReport, bundle_manifest_sha256, sign_bundle, verify_bundle,
    verify_bundle_trusted,
};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use issuance::{
    GENESIS_PREV_HASH, IssuanceEntry, IssuanceFields, IssueError, KEY_ROTATION_RUN_ID, KeyInLog,
    LOG_HEAD_FILE, LOG_REPAIR_RUN_ID, LogHead, LogSummary, append_issuance, check_log_head,
    find_bundle_in_log, prepare_issuance_log, rotate_key, sign_and_append, verify_issuance_log,
    verify_issuance_log_text,
};
pub use keyring::{KEYRING_FILE, KEYRING_FORMAT, Keyring, LastEntry, TrustedKey, keyring_path};
pub use keys::{
    generate_key, key_fingerprint, key_id, load_signing_key, load_verifying_key, public_key_pem,
    write_public_key,
};

/// The OpenSSL-only verification recipe, a POSIX shell script
/// (`verify-with-openssl.sh BUNDLE_DIR [EXPECTED_KEY_ID]`).
///
/// Shipped as text so a tool can drop it next to a bundle for an auditor.
pub const OPENSSL_VERIFY_SCRIPT: &str = include_str!("../verify-with-openssl.sh");

/// What kind of thing is wrong; lets callers react without parsing messages (the
/// panel says each kind in the operator's language by its snake_case name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A file the manifest lists (or a file every bundle needs) is absent.
    Missing,
    /// A file is in the bundle but not in the manifest.
    Extra,
    /// A file's SHA-256 differs from the one the manifest records.
    HashMismatch,
    /// A symbolic link, FIFO, device...: a bundle holds only regular files.
    NotRegularFile,
    /// The file exists but could not be read.
    Unreadable,
    /// The manifest, signature, key or log line is not in the expected format.
    Malformed,
    /// An Ed25519 signature does not verify.
    BadSignature,
    /// The key id written in the manifest or log differs from the key's real id.
    KeyMismatch,
    /// Signed with a valid key, but not the one the caller trusts.
    UntrustedKey,
    /// Issuance log: a sequence number is skipped (an entry was removed).
    SequenceGap,
    /// Issuance log: a sequence number is repeated or goes backwards (reordered entries).
    OutOfOrder,
    /// Issuance log: an entry's `prev_hash` is not the hash of the entry before it.
    ChainBreak,
    /// Issuance log: an entry is timestamped earlier than its predecessor.
    BackDated,
    /// Issuance log: an entry's recorded hash does not match its contents.
    EntryModified,
    /// The bundle's manifest hash does not appear in the issuance log.
    NotInLog,
}

/// One thing found wrong by a verification, naming what it concerns.
///
/// Displays as `subject: detail`, e.g.
/// `certificate.html: SHA-256 differs from the manifest (expected …, got …)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What is wrong: a path relative to the bundle (always with `/`), or a
    /// log position such as `line 3 (seq 3)`.
    pub subject: String,
    /// The category, for programmatic use.
    pub kind: ProblemKind,
    /// A sentence that says exactly what is wrong.
    pub detail: String,
}

impl Problem {
    pub(crate) fn new(
        subject: impl Into<String>,
        kind: ProblemKind,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            subject: subject.into(),
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.detail)
    }
}

/// Errors while generating or loading keys, signing a bundle, or appending to the log.
///
/// Verification does not use this type: it returns every [`Problem`] it finds.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The target file already exists and overwriting it would destroy something.
    #[error("{}: already exists; refusing to overwrite it ({why})", path.display())]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
        /// Why overwriting is refused and what to do instead.
        why: &'static str,
    },
    /// The private key file is not an Ed25519 PKCS#8 PEM key.
    #[error(
        "{}: not an Ed25519 private key in PKCS#8 PEM ({detail}); create one with \
         `meterbench keys generate --out FILE` or `openssl genpkey -algorithm ed25519 -out FILE`",
        path.display()
    )]
    BadPrivateKey {
        /// The key file.
        path: PathBuf,
        /// What the parser said.
        detail: String,
    },
    /// The public key file is not an Ed25519 SubjectPublicKeyInfo PEM key.
    #[error(
        "{}: not an Ed25519 public key in SubjectPublicKeyInfo PEM ({detail}); derive one with \
         `openssl pkey -in PRIVATE.pem -pubout -out FILE`",
        path.display()
    )]
    BadPublicKey {
        /// The key file.
        path: PathBuf,
        /// What the parser said.
        detail: String,
    },
    /// A file in the bundle cannot be listed in a signed manifest.
    #[error("{path}: {reason}")]
    Unlistable {
        /// Path relative to the bundle.
        path: String,
        /// Why, and what to do.
        reason: String,
    },
    /// A text field (signer name, run id, bundle path...) cannot be recorded as given.
    #[error("{field} {value:?}: {reason}")]
    InvalidField {
        /// Which field.
        field: &'static str,
        /// The rejected value.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// The existing issuance log does not verify, so nothing is appended to it.
    #[error(
        "{}: the issuance log does not verify, refusing to append to it:\n  {}",
        path.display(),
        problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  ")
    )]
    LogInvalid {
        /// The log file.
        path: PathBuf,
        /// What is wrong with it.
        problems: Vec<Problem>,
    },
    /// A keyring file that cannot be used as it is.
    #[error("{}: not a keyring this bench can trust ({detail})", path.display())]
    BadKeyring {
        /// The keyring file.
        path: PathBuf,
        /// What is wrong, with the line and column when the JSON itself is broken.
        detail: String,
    },
    /// The key given cannot append to this issuance log: it is not the key the log is
    /// kept with now, or the keyring does not trust it now.
    #[error("{}: {detail}", path.display())]
    NotTheLogsKey {
        /// The log file.
        path: PathBuf,
        /// The key that would have signed.
        key_id: String,
        /// The key the log is kept with now (its last rotation's, else its first
        /// entry's); `None` for an empty log.
        current: Option<String>,
        /// The entry that retired `key_id`, when it was retired by a rotation.
        retired_by: Option<u64>,
        /// The whole story, in words.
        detail: String,
    },
    /// The clock is behind the last log entry; appending would back-date the new entry.
    #[error(
        "the system clock says {now}, earlier than the last issuance log entry ({last}); \
         fix the clock before issuing"
    )]
    ClockBehind {
        /// Now, per the system clock.
        now: String,
        /// The last entry's `issued` timestamp.
        last: String,
    },
}

impl SigningError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// True if `s` is exactly 64 lowercase hex digits, the form every hash here is written in.
pub(crate) fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
