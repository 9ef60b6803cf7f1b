//! The keyring: the keys a laboratory signs with, each with the period it is valid for.
//! It is what a verifier trusts, and what the lab publishes beside its key ids.
//!
//! One JSON file (`keyring.json`, beside the signing key):
//!
//! ```text
//! {
//!   "format": "meterbench.keyring/1",
//!   "keys": [
//!     { "key_id": "3f0c9a1b2d4e5f60",
//!       "public_key": "-----BEGIN PUBLIC KEY-----\n…\n-----END PUBLIC KEY-----\n",
//!       "valid_from": "2026-01-05T08:00:00.000Z",
//!       "valid_until": "2026-12-07T09:12:31.412Z" },
//!     { "key_id": "9a0e…", "public_key": "…", "valid_from": "2026-12-07T09:12:31.412Z" }
//!   ]
//! }
//! ```
//!
//! A key without `valid_until` is in use. A rotation (see
//! [`rotate_key`](crate::rotate_key)) ends the old key's period at the instant of the
//! issuance-log entry that hands over to the new key, and starts the new key's there,
//! so a bundle signed by the old key before the rotation stays trusted and one signed by
//! it afterwards does not.

use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::SigningError;
use crate::bundle::parse_utc;
use crate::keys::{key_fingerprint, key_id, parse_public_key_pem, public_key_pem};

/// The keyring's file name, in the folder of the signing key it goes with.
pub const KEYRING_FILE: &str = "keyring.json";
/// The `format` of a keyring file.
pub const KEYRING_FORMAT: &str = "meterbench.keyring/1";

/// One trusted key and when it may have signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    pub key: VerifyingKey,
    /// [`key_id`] of `key`.
    pub key_id: String,
    /// From when it signs; `None`: since always (a key trusted on its own, `--key`).
    pub valid_from: Option<DateTime<Utc>>,
    /// Until when it signed, inclusive; `None`: still in use.
    pub valid_until: Option<DateTime<Utc>>,
    /// The last issuance-log entry it signed, recorded when it was rotated out or retired:
    /// an entry it signs after that one in that log is refused, whatever its date (a
    /// leaked key can date an entry inside its period, not sign before a later one).
    pub last_entry: Option<LastEntry>,
}

/// One entry of one issuance log: the log (by its first entry's hash), the entry's seq
/// and its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LastEntry {
    /// The `hash` of the log's first entry: which log this is.
    pub log: String,
    pub seq: u64,
    pub hash: String,
}

impl TrustedKey {
    /// Whether the key may have signed at `t`. A bundle's manifest records its time in
    /// whole seconds (cut, not rounded), so the start is compared at that resolution: a
    /// bundle signed in the very second its key took over is the new key's.
    pub fn covers(&self, t: DateTime<Utc>) -> bool {
        let after_start = self
            .valid_from
            .is_none_or(|from| t >= from.trunc_subsecs(0));
        let before_end = self.valid_until.is_none_or(|until| t <= until);
        after_start && before_end
    }

    /// "valid from A until B", "valid from A, in use", "valid at any time".
    pub fn period(&self) -> String {
        let show = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        match (&self.valid_from, &self.valid_until) {
            (None, None) => "valid at any time".into(),
            (Some(f), None) => format!("valid from {}, in use", show(f)),
            (None, Some(u)) => format!("valid until {}", show(u)),
            (Some(f), Some(u)) => format!("valid from {} until {}", show(f), show(u)),
        }
    }
}

/// The keys trusted, and where they came from (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyring {
    pub keys: Vec<TrustedKey>,
    /// Where the keys came from: a keyring file's path, or how a single key was given.
    pub origin: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    format: String,
    keys: Vec<KeyEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    key_id: String,
    public_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    valid_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    valid_until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_entry: Option<LastEntry>,
}

impl Keyring {
    /// One key trusted at any time: what `--key PUB.pem`, or a bench without a keyring,
    /// trusts.
    pub fn single(key: VerifyingKey, origin: impl Into<String>) -> Keyring {
        Keyring {
            keys: vec![TrustedKey {
                key_id: key_id(&key),
                key,
                valid_from: None,
                valid_until: None,
                last_entry: None,
            }],
            origin: origin.into(),
        }
    }

    /// A new keyring that trusts `key` from `from` on.
    pub fn new_key(key: VerifyingKey, from: DateTime<Utc>, origin: impl Into<String>) -> Keyring {
        Keyring {
            keys: vec![TrustedKey {
                key_id: key_id(&key),
                key,
                valid_from: Some(from.trunc_subsecs(3)),
                valid_until: None,
                last_entry: None,
            }],
            origin: origin.into(),
        }
    }

    /// Reads a keyring file; every error names the file, and the line and column.
    pub fn load(path: &Path) -> Result<Keyring, SigningError> {
        let text = std::fs::read_to_string(path).map_err(|e| SigningError::io(path, e))?;
        Keyring::parse(&text, &path.display().to_string()).map_err(|detail| {
            SigningError::BadKeyring {
                path: path.to_path_buf(),
                detail,
            }
        })
    }

    /// Parses a keyring's text, strictly: an unknown field, a key whose id is not its
    /// own, a period that ends before it starts, a key listed twice are refused.
    pub fn parse(text: &str, origin: &str) -> Result<Keyring, String> {
        let file: KeyringFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if file.format != KEYRING_FORMAT {
            return Err(format!(
                "format {:?}: a keyring file says \"format\": \"{KEYRING_FORMAT}\"",
                file.format
            ));
        }
        let mut keys: Vec<TrustedKey> = Vec::new();
        for (n, entry) in file.keys.into_iter().enumerate() {
            let at = format!("keys[{n}] (key id {:?})", entry.key_id);
            let key = parse_public_key_pem(&entry.public_key).map_err(|e| {
                format!("{at}: public_key is not an Ed25519 public key in PEM ({e})")
            })?;
            let real = key_id(&key);
            if real != entry.key_id {
                return Err(format!(
                    "{at}: the public key's id is {real}; the key_id and the key disagree"
                ));
            }
            let time = |field: &str, value: Option<String>| {
                value
                    .map(|v| parse_utc(&v).map_err(|e| format!("{at}: {field}: {e}")))
                    .transpose()
            };
            let valid_from = time("valid_from", entry.valid_from)?;
            let valid_until = time("valid_until", entry.valid_until)?;
            if let Some(l) = &entry.last_entry
                && !(crate::is_sha256_hex(&l.log) && crate::is_sha256_hex(&l.hash) && l.seq > 0)
            {
                return Err(format!(
                    "{at}: last_entry needs the log's first hash and the entry's hash (64 hex digits each) and a seq from 1"
                ));
            }
            if let (Some(f), Some(u)) = (valid_from, valid_until)
                && u < f
            {
                return Err(format!("{at}: valid_until is before valid_from"));
            }
            if keys.iter().any(|k| k.key_id == real) {
                return Err(format!("{at}: the key is listed twice"));
            }
            keys.push(TrustedKey {
                key,
                key_id: real,
                valid_from,
                valid_until,
                last_entry: entry.last_entry,
            });
        }
        if keys.is_empty() {
            return Err("\"keys\" is empty: a keyring trusts at least one key".into());
        }
        Ok(Keyring {
            keys,
            origin: origin.to_string(),
        })
    }

    /// The keyring file's text (pretty JSON, one trailing newline).
    pub fn to_json(&self) -> String {
        // Every digit the time has: a period written back must be the period read.
        let show =
            |t: &Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true));
        let file = KeyringFile {
            format: KEYRING_FORMAT.into(),
            keys: self
                .keys
                .iter()
                .map(|k| KeyEntry {
                    key_id: k.key_id.clone(),
                    public_key: public_key_pem(&k.key),
                    valid_from: show(&k.valid_from),
                    valid_until: show(&k.valid_until),
                    last_entry: k.last_entry.clone(),
                })
                .collect(),
        };
        serde_json::to_string_pretty(&file).expect("a keyring always serialises") + "\n"
    }

    /// Writes the keyring to `path` whole (under another name, then renamed over it), so
    /// a reader never sees half a keyring and a crash leaves the old one.
    pub fn save(&self, path: &Path) -> Result<(), SigningError> {
        let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
        let written = std::fs::write(&tmp, self.to_json())
            .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(SigningError::io(path, e));
        }
        Ok(())
    }

    /// The key with id `key_id`.
    pub fn get(&self, key_id: &str) -> Option<&TrustedKey> {
        self.keys.iter().find(|k| k.key_id == key_id)
    }

    /// The key whose [`key_fingerprint`] is `fingerprint`.
    pub(crate) fn by_fingerprint(&self, fingerprint: &str) -> Option<&TrustedKey> {
        self.keys
            .iter()
            .find(|k| key_fingerprint(&k.key) == fingerprint)
    }

    /// The keys, for messages: "3f0c… (valid from A until B), 9a0e… (valid from B, in use)".
    pub fn describe(&self) -> String {
        self.keys
            .iter()
            .map(|k| format!("{} ({})", k.key_id, k.period()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether `key` may sign at `t`; the error says why not, naming the keyring.
    pub fn check(&self, key: &VerifyingKey, t: DateTime<Utc>) -> Result<&TrustedKey, String> {
        let id = key_id(key);
        let Some(trusted) = self.get(&id) else {
            return Err(format!(
                "key id {id} is not in the keyring {}, which trusts {}",
                self.origin,
                self.describe()
            ));
        };
        if trusted.key != *key {
            // Two keys with one id: a 64-bit collision, or a forged entry.
            return Err(format!(
                "key id {id} in the keyring {} is another key",
                self.origin
            ));
        }
        if !trusted.covers(t) {
            return Err(format!(
                "key id {id} is {} in the keyring {}, so it cannot sign at {}",
                trusted.period(),
                self.origin,
                t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
            ));
        }
        Ok(trusted)
    }

    /// The keyring after a rotation from `old` to `new` at `at`, logged as `entry`: the
    /// old key's period ends there (its last entry recorded), the new key's starts there.
    /// Idempotent (a rotation resumed after a crash changes nothing twice).
    pub fn rotated(
        &self,
        old: &str,
        new: VerifyingKey,
        at: DateTime<Utc>,
        entry: Option<LastEntry>,
    ) -> Keyring {
        let at = at.trunc_subsecs(3);
        let mut next = self.clone();
        // The old key's period ends at the rotation, or earlier where it already did.
        for k in &mut next.keys {
            if k.key_id == old {
                k.valid_until = Some(k.valid_until.map_or(at, |u| u.min(at)));
                if k.last_entry.is_none() {
                    k.last_entry = entry.clone();
                }
            }
        }
        if next.get(&key_id(&new)).is_none() {
            next.keys.push(TrustedKey {
                key_id: key_id(&new),
                key: new,
                valid_from: Some(at),
                valid_until: None,
                last_entry: None,
            });
        }
        next
    }
}

/// The keyring that goes with the signing key at `private_key`: `keyring.json` beside it.
pub fn keyring_path(private_key: &Path) -> PathBuf {
    private_key.with_file_name(KEYRING_FILE)
}
