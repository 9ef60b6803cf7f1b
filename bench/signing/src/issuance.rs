//! The issuance log: one signed JSON line per issued bundle, hash-chained.
//!
//! Each line is
//!
//! ```text
//! {"seq":1,"issued":"2025-06-01T12:00:00.000Z","run_id":"…","bundle":"reports/…",
//!  "manifest_sha256":"…","key_id":"…","prev_hash":"000…0","hash":"…","signature":"…"}
//! ```
//!
//! (on one line). `hash` is the SHA-256 of the entry's *canonical bytes*: the
//! compact JSON object of the first seven fields, in that order, exactly as
//! `serde_json` writes it; `signature` is the hex of the Ed25519 signature over
//! the 32 raw bytes of `hash`; `prev_hash` is the previous line's `hash`
//! ([`GENESIS_PREV_HASH`] for the first).
//!
//! A hash chain alone cannot show that entries were removed from *the end*; keep the
//! head hash ([`LogSummary::head_hash`]) somewhere else too (a certificate,
//! a published list) to detect that.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::bundle::{MANIFEST_FILE, bundle_manifest_sha256, parse_utc};
use crate::keyring::Keyring;
use crate::keys::{key_fingerprint, parse_public_key_pem, write_public_key};
use crate::{Problem, ProblemKind, SigningError, is_sha256_hex, key_id, sha256_hex};

/// `prev_hash` of the first entry: 64 zeros.
pub const GENESIS_PREV_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// What the caller says about an issuance; the log adds sequence, time, key and chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuanceFields {
    /// The run's id, as in the run record.
    pub run_id: String,
    /// Where the bundle was issued, as a path (with `/`), usually relative to the reports folder.
    pub bundle: String,
    /// SHA-256 of the bundle's `MANIFEST.sha256` (see [`bundle_manifest_sha256`](crate::bundle_manifest_sha256)).
    pub manifest_sha256: String,
}

impl IssuanceFields {
    /// Fields for the signed bundle in `bundle_dir`, reading its manifest hash.
    pub fn for_bundle(run_id: &str, bundle_dir: &Path) -> Result<Self, SigningError> {
        let bundle = bundle_dir
            .to_str()
            .ok_or_else(|| SigningError::InvalidField {
                field: "bundle",
                value: bundle_dir.to_string_lossy().into_owned(),
                reason: "the bundle path must be valid UTF-8 to be recorded",
            })?;
        Ok(Self {
            run_id: run_id.to_string(),
            bundle: bundle.replace('\\', "/"),
            manifest_sha256: bundle_manifest_sha256(bundle_dir)?,
        })
    }

    fn validate(&self) -> Result<(), SigningError> {
        let invalid = |field, value: &str, reason| {
            Err(SigningError::InvalidField {
                field,
                value: value.to_string(),
                reason,
            })
        };
        for (field, value) in [("run_id", &self.run_id), ("bundle", &self.bundle)] {
            if value.trim().is_empty() || value.chars().any(char::is_control) {
                return invalid(
                    field,
                    value,
                    "must be non-empty and free of control characters",
                );
            }
        }
        if !is_sha256_hex(&self.manifest_sha256) {
            return invalid(
                "manifest_sha256",
                &self.manifest_sha256,
                "must be a SHA-256 in 64 lowercase hex digits",
            );
        }
        Ok(())
    }
}

/// One line of the issuance log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuanceEntry {
    /// 1 for the first entry, then +1 per entry.
    pub seq: u64,
    /// When the bundle was issued, UTC, millisecond resolution.
    pub issued: DateTime<Utc>,
    /// The caller's fields.
    pub fields: IssuanceFields,
    /// Id of the key that signed this entry.
    pub key_id: String,
    /// `hash` of the previous entry, [`GENESIS_PREV_HASH`] for the first.
    pub prev_hash: String,
    /// SHA-256 (hex) over [`canonical_bytes`](Self::canonical_bytes).
    pub hash: String,
    /// Ed25519 signature (hex, 128 digits) over the 32 raw bytes of `hash`.
    pub signature: String,
}

/// The hashed part of an entry; field order here *is* the canonical order.
#[derive(Serialize)]
struct Canonical<'a> {
    seq: u64,
    issued: &'a str,
    run_id: &'a str,
    bundle: &'a str,
    manifest_sha256: &'a str,
    key_id: &'a str,
    prev_hash: &'a str,
}

impl Canonical<'_> {
    fn hash(&self) -> String {
        // Serialising strings and integers into a Vec cannot fail.
        sha256_hex(&serde_json::to_vec(self).expect("a canonical entry always serialises"))
    }
}

/// A log line as stored; strings are kept verbatim so the hash is recomputed
/// over exactly what was written.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    seq: u64,
    issued: String,
    run_id: String,
    bundle: String,
    manifest_sha256: String,
    key_id: String,
    prev_hash: String,
    hash: String,
    signature: String,
}

impl Line {
    fn canonical(&self) -> Canonical<'_> {
        Canonical {
            seq: self.seq,
            issued: &self.issued,
            run_id: &self.run_id,
            bundle: &self.bundle,
            manifest_sha256: &self.manifest_sha256,
            key_id: &self.key_id,
            prev_hash: &self.prev_hash,
        }
    }
}

fn format_issued(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl IssuanceEntry {
    /// Builds and signs an entry. [`append_issuance`] is the normal way in;
    /// this is public for tools that rebuild or migrate logs (and for tests
    /// that forge entries a correct appender would refuse to write).
    ///
    /// `issued` is truncated to milliseconds, the resolution the log records.
    pub fn new_signed(
        seq: u64,
        issued: DateTime<Utc>,
        fields: IssuanceFields,
        prev_hash: &str,
        key: &SigningKey,
    ) -> IssuanceEntry {
        let issued = issued.trunc_subsecs(3);
        let key_id = key_id(&key.verifying_key());
        let issued_text = format_issued(&issued);
        let hash = Canonical {
            seq,
            issued: &issued_text,
            run_id: &fields.run_id,
            bundle: &fields.bundle,
            manifest_sha256: &fields.manifest_sha256,
            key_id: &key_id,
            prev_hash,
        }
        .hash();
        let hash_bytes = hex::decode(&hash).expect("sha256_hex is hex");
        let signature = hex::encode(key.sign(&hash_bytes).to_bytes());
        IssuanceEntry {
            seq,
            issued,
            fields,
            key_id,
            prev_hash: prev_hash.to_string(),
            hash,
            signature,
        }
    }

    fn to_line(&self) -> Line {
        Line {
            seq: self.seq,
            issued: format_issued(&self.issued),
            run_id: self.fields.run_id.clone(),
            bundle: self.fields.bundle.clone(),
            manifest_sha256: self.fields.manifest_sha256.clone(),
            key_id: self.key_id.clone(),
            prev_hash: self.prev_hash.clone(),
            hash: self.hash.clone(),
            signature: self.signature.clone(),
        }
    }

    /// The bytes `hash` is computed over: the compact JSON object
    /// `{"seq":…,"issued":…,"run_id":…,"bundle":…,"manifest_sha256":…,"key_id":…,"prev_hash":…}`.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let line = self.to_line();
        serde_json::to_vec(&line.canonical()).expect("a canonical entry always serialises")
    }

    /// The entry as one log line, without the trailing newline.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(&self.to_line()).expect("an entry always serialises")
    }
}

/// What a successful [`verify_issuance_log`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSummary {
    /// Every entry, in log order.
    pub entries: Vec<IssuanceEntry>,
    /// Id of the key the log is kept with now: its last rotation's new key, else its
    /// first entry's; `None` for an empty log.
    pub key_id: Option<String>,
    /// Every key that kept the log, in order.
    pub keys: Vec<KeyInLog>,
}

/// One key that kept the issuance log, and for which entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInLog {
    pub key_id: String,
    pub key: VerifyingKey,
    /// The first entry it signed (or would sign: the one after its rotation).
    pub from_seq: u64,
    /// The rotation entry that handed over to the next key (the last it signed).
    pub retired_by: Option<u64>,
}

impl LogSummary {
    /// The last entry's hash: publish or record it elsewhere, since a chain
    /// alone cannot reveal entries cut off its end.
    pub fn head_hash(&self) -> Option<&str> {
        self.entries.last().map(|e| e.hash.as_str())
    }
}

/// The run id of the entry that records a repaired log: a torn last line (a write cut
/// short by a crash or a full disk) was moved aside, and this entry says where, with the
/// SHA-256 of the bytes removed.
pub const LOG_REPAIR_RUN_ID: &str = "log-repair";

/// The run id of the entry that hands the log over to a new key: signed by the key in
/// use, it names the new key by its [`key_fingerprint`] (`manifest_sha256`) and its
/// public key file beside the log (`bundle`, `keys/<key id>.pub.pem`). Every later entry
/// must be signed by the new key; the old key can append nothing more.
pub const KEY_ROTATION_RUN_ID: &str = "key-rotation";

/// Appends an entry for `fields` to the log at `log_path` (created if absent),
/// timestamped now, chained to the last entry and signed with `key`.
///
/// The whole existing log is verified against `trust` first, under an exclusive file
/// lock, and nothing is appended to a log that does not verify, that is kept with
/// another key than `key` (see [`KEY_ROTATION_RUN_ID`]), with a key `trust` does not
/// trust now, or when the clock is behind the last entry: chaining onto a tampered
/// log, or back-dating, would launder the problem. A torn last line is repaired first
/// (see [`prepare_issuance_log`]).
pub fn append_issuance(
    log_path: &Path,
    fields: &IssuanceFields,
    key: &SigningKey,
    trust: &Keyring,
) -> Result<IssuanceEntry, SigningError> {
    fields.validate()?;
    let mut open = OpenLog::open(log_path, key, trust)?;
    open.append(fields, key)
}

/// Hands the log over from `old` (the key it is kept with) to `new`: writes the new
/// public key beside the log (`keys/<key id>.pub.pem`) and appends a
/// [`KEY_ROTATION_RUN_ID`] entry signed by `old` naming it. From then on only `new`
/// can append. The caller updates the keyring (see [`Keyring::rotated`]).
pub fn rotate_key(
    log_path: &Path,
    old: &SigningKey,
    new: &VerifyingKey,
    trust: &Keyring,
) -> Result<IssuanceEntry, SigningError> {
    if *new == old.verifying_key() {
        return Err(SigningError::InvalidField {
            field: "new key",
            value: key_id(new),
            reason: "is the key the log is kept with already; a rotation needs another key",
        });
    }
    let mut open = OpenLog::open(log_path, old, trust)?;
    let rel = format!("keys/{}.pub.pem", key_id(new));
    let file = log_folder(log_path).join(&rel);
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| SigningError::io(dir, e))?;
    }
    match std::fs::read_to_string(&file) {
        // Left by a rotation cut short: the same key is kept, another refused.
        Ok(text) if parse_public_key_pem(&text).ok() == Some(*new) => {}
        Ok(_) => {
            return Err(SigningError::AlreadyExists {
                path: file,
                why: "it holds another key than the one rotated to",
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => write_public_key(&file, new)?,
        Err(e) => return Err(SigningError::io(&file, e)),
    }
    let fields = IssuanceFields {
        run_id: KEY_ROTATION_RUN_ID.to_string(),
        bundle: rel,
        manifest_sha256: key_fingerprint(new),
    };
    open.append(&fields, old)
}

/// The folder a log's relative names (rotations' key files) are resolved in.
fn log_folder(log_path: &Path) -> &Path {
    match log_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Makes the log ready to take an entry, before anything is signed: creates it if
/// absent (and so proves it can be written), verifies it, and repairs a torn last line.
/// A torn line that is a whole valid entry only missing its newline is completed; any
/// other is moved to `LOG.torn-<time>` and a signed [`LOG_REPAIR_RUN_ID`] entry naming
/// that file and the SHA-256 of its bytes is appended. Returns the repair entries made.
pub fn prepare_issuance_log(
    log_path: &Path,
    key: &SigningKey,
    trust: &Keyring,
) -> Result<Vec<IssuanceEntry>, SigningError> {
    Ok(OpenLog::open(log_path, key, trust)?.repairs)
}

/// The bundle file that names the issuance log's head the bundle was appended after.
pub const LOG_HEAD_FILE: &str = "issuance-head.json";
const LOG_HEAD_FORMAT: &str = "meterbench.issuance-head/1";

/// The log's last entry before a bundle's own, written into the bundle before it is
/// signed: a customer who holds the bundle holds a signed statement that the log had
/// `seq` entries, the last with `hash`. A log cut after that (its last entries deleted,
/// which the hash chain alone cannot show) contradicts every bundle issued later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogHead {
    pub format: String,
    /// The last entry's seq; 0 when the log was empty.
    pub seq: u64,
    /// The last entry's hash; [`GENESIS_PREV_HASH`] when the log was empty.
    pub hash: String,
}

/// Why [`sign_and_append`] stopped, and whether the bundle was signed by then (a signed
/// bundle the log did not take must have its signature withdrawn by the caller).
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("{0}")]
    NotSigned(SigningError),
    #[error("{0}")]
    SignedNotLogged(SigningError),
}

/// Sign the bundle in `bundle_dir` and append it to the log, in one hold of the log's
/// lock: the bundle first gets [`LOG_HEAD_FILE`] naming the log's head, which the
/// manifest then signs, and no other issue can append in between (so the head is the
/// entry just before the bundle's own).
pub fn sign_and_append(
    log_path: &Path,
    key: &SigningKey,
    trust: &Keyring,
    signer: &str,
    run_id: &str,
    bundle_dir: &Path,
) -> Result<(crate::Manifest, IssuanceEntry), IssueError> {
    let mut open = OpenLog::open(log_path, key, trust).map_err(IssueError::NotSigned)?;
    let head = match open.summary.entries.last() {
        Some(last) => LogHead {
            format: LOG_HEAD_FORMAT.into(),
            seq: last.seq,
            hash: last.hash.clone(),
        },
        None => LogHead {
            format: LOG_HEAD_FORMAT.into(),
            seq: 0,
            hash: GENESIS_PREV_HASH.into(),
        },
    };
    let path = bundle_dir.join(LOG_HEAD_FILE);
    let text = serde_json::to_string(&head).expect("a log head always serialises") + "\n";
    std::fs::write(&path, text).map_err(|e| IssueError::NotSigned(SigningError::io(&path, e)))?;
    let manifest = crate::sign_bundle(bundle_dir, key, signer).map_err(IssueError::NotSigned)?;
    let fields =
        IssuanceFields::for_bundle(run_id, bundle_dir).map_err(IssueError::SignedNotLogged)?;
    fields.validate().map_err(IssueError::SignedNotLogged)?;
    let entry = open
        .append(&fields, key)
        .map_err(IssueError::SignedNotLogged)?;
    Ok((manifest, entry))
}

/// What the bundle's [`LOG_HEAD_FILE`] says about `log` (verified): nothing when the
/// bundle has none (issued before heads were written), else a problem when the log no
/// longer holds that head (cut or rewritten), or when the bundle's own entry (`own`) is
/// not the one right after it.
pub fn check_log_head(
    bundle_dir: &Path,
    log: &LogSummary,
    own: Option<&IssuanceEntry>,
) -> Result<Option<LogHead>, Problem> {
    let path = bundle_dir.join(LOG_HEAD_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Problem::new(
                LOG_HEAD_FILE,
                ProblemKind::Unreadable,
                format!("cannot be read: {e}"),
            ));
        }
    };
    let head: LogHead = serde_json::from_str(&text)
        .ok()
        .filter(|h: &LogHead| h.format == LOG_HEAD_FORMAT)
        .ok_or_else(|| {
            Problem::new(
                LOG_HEAD_FILE,
                ProblemKind::Malformed,
                format!("not a {LOG_HEAD_FORMAT} head"),
            )
        })?;
    let held = log.entries.len() as u64;
    if head.seq > held {
        return Err(Problem::new(
            LOG_HEAD_FILE,
            ProblemKind::NotInLog,
            format!(
                "this bundle was appended after entry {} of the issuance log, which now ends at entry {held}: entries were cut off the log's end",
                head.seq
            ),
        ));
    }
    let there = match head.seq {
        0 => GENESIS_PREV_HASH,
        n => log.entries[(n - 1) as usize].hash.as_str(),
    };
    if there != head.hash {
        return Err(Problem::new(
            LOG_HEAD_FILE,
            ProblemKind::NotInLog,
            format!(
                "this bundle was appended after entry {} with hash {}, but the log's entry {} has hash {there}: the log was rewritten",
                head.seq, head.hash, head.seq
            ),
        ));
    }
    if let Some(own) = own
        && own.seq != head.seq + 1
    {
        return Err(Problem::new(
            LOG_HEAD_FILE,
            ProblemKind::NotInLog,
            format!(
                "this bundle was appended after entry {}, but the log holds it as entry {}",
                head.seq, own.seq
            ),
        ));
    }
    Ok(Some(head))
}

/// The log open, locked, verified and repaired.
struct OpenLog<'p> {
    path: &'p Path,
    file: File,
    summary: LogSummary,
    repairs: Vec<IssuanceEntry>,
}

impl<'p> OpenLog<'p> {
    fn open(
        path: &'p Path,
        key: &SigningKey,
        trust: &Keyring,
    ) -> Result<OpenLog<'p>, SigningError> {
        let io_err = |e| SigningError::io(path, e);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io_err)?;
        // Two stations appending at once would otherwise both take the same seq.
        file.lock().map_err(io_err)?;
        let mut bytes = Vec::new();
        (&file).read_to_end(&mut bytes).map_err(io_err)?;
        let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let invalid = |problems| SigningError::LogInvalid {
            path: path.to_path_buf(),
            problems,
        };
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let folder = log_folder(path);
        let summary =
            verify_log_text(&text(&bytes[..whole]), trust, Some(folder)).map_err(invalid)?;
        check_appender(path, key, trust, &summary)?;
        let mut open = OpenLog {
            path,
            file,
            summary: summary.clone(),
            repairs: Vec::new(),
        };
        let torn = &bytes[whole..];
        if torn.is_empty() {
            return Ok(open);
        }
        // A whole entry that only lacks its newline was issued: complete it.
        let mut completed = bytes.clone();
        completed.push(b'\n');
        if let Ok(s) = verify_log_text(&text(&completed), trust, Some(folder))
            && s.entries.len() == summary.entries.len() + 1
        {
            open.write_line(b"\n")?;
            open.summary = s;
            return Ok(open);
        }
        // Anything else is moved aside, kept for the auditor, and the repair logged.
        let aside = torn_path(path);
        std::fs::write(&aside, torn).map_err(|e| SigningError::io(&aside, e))?;
        open.file.set_len(whole as u64).map_err(io_err)?;
        open.file.sync_all().map_err(io_err)?;
        let repair = IssuanceFields {
            run_id: LOG_REPAIR_RUN_ID.to_string(),
            bundle: aside.to_string_lossy().replace('\\', "/"),
            manifest_sha256: sha256_hex(torn),
        };
        let entry = open.append(&repair, key)?;
        open.repairs.push(entry);
        Ok(open)
    }

    fn write_line(&mut self, line: &[u8]) -> Result<(), SigningError> {
        self.file
            .write_all(line)
            .and_then(|()| self.file.sync_all())
            .map_err(|e| SigningError::io(self.path, e))
    }

    fn append(
        &mut self,
        fields: &IssuanceFields,
        key: &SigningKey,
    ) -> Result<IssuanceEntry, SigningError> {
        let now = Utc::now().trunc_subsecs(3);
        let (seq, prev_hash) = match self.summary.entries.last() {
            None => (1, GENESIS_PREV_HASH.to_string()),
            Some(last) => {
                if now < last.issued {
                    return Err(SigningError::ClockBehind {
                        now: format_issued(&now),
                        last: format_issued(&last.issued),
                    });
                }
                (last.seq + 1, last.hash.clone())
            }
        };
        let entry = IssuanceEntry::new_signed(seq, now, fields.clone(), &prev_hash, key);
        // One write of the whole line, so a crash leaves at worst a torn last
        // line, which the next append repairs, never a silently merged one.
        let line = format!("{}\n", entry.to_json_line());
        let before = self
            .file
            .metadata()
            .map_err(|e| SigningError::io(self.path, e))?
            .len();
        if let Err(e) = self.write_line(line.as_bytes()) {
            // A short write (a full disk) would leave a torn line: take it back now
            // when the file lets us; the next start repairs it otherwise.
            let _ = self.file.set_len(before);
            return Err(e);
        }
        self.summary.entries.push(entry.clone());
        Ok(entry)
    }
}

/// Whether `key` may append to the log `summary` describes: it must be the key the log
/// is kept with now, and trusted now.
fn check_appender(
    path: &Path,
    key: &SigningKey,
    trust: &Keyring,
    summary: &LogSummary,
) -> Result<(), SigningError> {
    let ours = key_id(&key.verifying_key());
    let refuse = |retired_by, detail| SigningError::NotTheLogsKey {
        path: path.to_path_buf(),
        key_id: ours.clone(),
        current: summary.key_id.clone(),
        retired_by,
        detail,
    };
    if let Some(current) = &summary.key_id
        && *current != ours
    {
        let retired = summary
            .keys
            .iter()
            .find(|k| k.key_id == ours)
            .and_then(|k| k.retired_by);
        let detail = match retired {
            Some(seq) => format!(
                "key id {ours} was retired by the key rotation at entry {seq} of this log; the log is kept with key id {current} since"
            ),
            None => format!("the issuance log is kept with key id {current}, not {ours}"),
        };
        return Err(refuse(retired, detail));
    }
    trust
        .check(&key.verifying_key(), Utc::now())
        .map(|_| ())
        .map_err(|detail| refuse(None, detail))
}

/// Where a torn last line is kept: beside the log, named by the time it was found.
fn torn_path(log: &Path) -> std::path::PathBuf {
    let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let name = log
        .file_name()
        .map_or("issuance.log".into(), |n| n.to_string_lossy().into_owned());
    log.with_file_name(format!("{name}.torn-{stamp}"))
}

/// Verifies the whole log at `log_path` against the keys `trust` holds and reports
/// every problem, each naming the line and sequence number: malformed lines, entries
/// whose contents no longer match their hash (edited), bad signatures, sequence gaps
/// (removed entries), repeated or decreasing sequence numbers (reordered entries),
/// broken `prev_hash` links, and timestamps earlier than the previous entry's
/// (back-dated).
///
/// Keys: the first entry's key must be in `trust`; each [`KEY_ROTATION_RUN_ID`] entry
/// hands over to the key it names (found in `trust` or in its key file beside the log,
/// by its whole fingerprint), and every entry must be signed by the key the log is kept
/// with at that point. An entry signed by a key of `trust` must fall in that key's
/// validity period. So a log forged from the start with another key is refused however
/// it ends, and a retired key can add nothing.
///
/// An empty log verifies with no entries; a missing file is a problem.
pub fn verify_issuance_log(log_path: &Path, trust: &Keyring) -> Result<LogSummary, Vec<Problem>> {
    let mut text = String::new();
    // Read under a shared lock: an append (under the exclusive one) is never read half
    // written.
    let read = File::open(log_path).and_then(|mut f| {
        f.lock_shared()?;
        f.read_to_string(&mut text)
    });
    if let Err(e) = read {
        let (kind, detail) = match e.kind() {
            io::ErrorKind::NotFound => (
                ProblemKind::Missing,
                "the issuance log does not exist".to_string(),
            ),
            _ => (ProblemKind::Unreadable, format!("cannot be read: {e}")),
        };
        return Err(vec![Problem::new(
            log_path.display().to_string(),
            kind,
            detail,
        )]);
    }
    verify_log_text(&text, trust, Some(log_folder(log_path)))
}

/// Verifies a log's text as [`verify_issuance_log`] verifies its file, with no folder
/// beside it: a rotation's new key must then be in `trust`.
pub fn verify_issuance_log_text(text: &str, trust: &Keyring) -> Result<LogSummary, Vec<Problem>> {
    verify_log_text(text, trust, None)
}

/// Verifies the log, then looks for the manifest hash of the bundle in
/// `bundle_dir`; returns the entry that issued it.
///
/// This does not verify the bundle itself; pair it with [`verify_bundle`](crate::verify_bundle).
pub fn find_bundle_in_log(
    log_path: &Path,
    bundle_dir: &Path,
    trust: &Keyring,
) -> Result<IssuanceEntry, Vec<Problem>> {
    let summary = verify_issuance_log(log_path, trust)?;
    // A head the log no longer holds says more than "not in the log": it was cut.
    check_log_head(bundle_dir, &summary, None).map_err(|p| vec![p])?;
    let manifest_sha256 = bundle_manifest_sha256(bundle_dir).map_err(|e| {
        vec![Problem::new(
            MANIFEST_FILE,
            ProblemKind::Unreadable,
            format!("cannot be read: {e}"),
        )]
    })?;
    let own = summary
        .entries
        .iter()
        .find(|e| e.fields.manifest_sha256 == manifest_sha256)
        .cloned();
    if let Some(own) = &own {
        check_log_head(bundle_dir, &summary, Some(own)).map_err(|p| vec![p])?;
    }
    own.ok_or_else(|| {
        vec![Problem::new(
            MANIFEST_FILE,
            ProblemKind::NotInLog,
            format!(
                "its SHA-256 {manifest_sha256} appears in no entry of the issuance log {}: \
                     this bundle was not issued, or was changed and re-signed after issuance",
                log_path.display()
            ),
        )]
    })
}

/// The key the log must be signed with at a point of the chain.
#[derive(Clone, Copy)]
enum Chain {
    /// Before the first entry: its key comes from the keyring.
    Start,
    /// Kept with this key (the index into `keys`).
    Kept(usize),
    /// Not known: a problem was reported already, so signatures are not checked further.
    Lost,
}

fn verify_log_text(
    text: &str,
    trust: &Keyring,
    folder: Option<&Path>,
) -> Result<LogSummary, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut chain = Chain::Start;
    let mut keys: Vec<KeyInLog> = Vec::new();
    // Which log this is: its first entry's hash (a keyring's `last_entry` names it).
    let mut first_hash: Option<String> = None;
    let mut entries: Vec<(usize, IssuanceEntry)> = Vec::new();

    let (body, terminated) = match text.strip_suffix('\n') {
        Some(body) => (body, true),
        None => (text, false),
    };
    if body.is_empty() {
        return match terminated {
            // A lone newline is not something append ever writes.
            true => Err(vec![Problem::new(
                "line 1",
                ProblemKind::Malformed,
                "empty line",
            )]),
            false => Ok(LogSummary {
                entries: Vec::new(),
                key_id: None,
                keys: Vec::new(),
            }),
        };
    }
    let lines: Vec<&str> = body.split('\n').collect();
    for (index, raw) in lines.iter().enumerate() {
        let n = index + 1;
        if raw.is_empty() {
            problems.push(Problem::new(
                format!("line {n}"),
                ProblemKind::Malformed,
                "empty line",
            ));
            continue;
        }
        let line: Line = match serde_json::from_str(raw) {
            Ok(line) => line,
            Err(e) => {
                problems.push(Problem::new(
                    format!("line {n}"),
                    ProblemKind::Malformed,
                    format!("not a valid issuance entry ({e})"),
                ));
                continue;
            }
        };
        let subject = format!("line {n} (seq {})", line.seq);
        let mut report =
            |kind, detail: String| problems.push(Problem::new(subject.clone(), kind, detail));
        if n == lines.len() && !terminated {
            report(
                ProblemKind::Malformed,
                "the last line has no newline: an interrupted write?".into(),
            );
        }

        let issued = match parse_utc(&line.issued) {
            Ok(t) => Some(t),
            Err(detail) => {
                report(ProblemKind::Malformed, detail);
                None
            }
        };
        let mut well_formed = issued.is_some();
        for (name, value) in [
            ("manifest_sha256", &line.manifest_sha256),
            ("prev_hash", &line.prev_hash),
            ("hash", &line.hash),
        ] {
            if !is_sha256_hex(value) {
                report(
                    ProblemKind::Malformed,
                    format!("{name} {value:?} is not 64 lowercase hex digits"),
                );
                well_formed = false;
            }
        }
        let signature = hex::decode(&line.signature)
            .ok()
            .and_then(|bytes| <[u8; 64]>::try_from(bytes.as_slice()).ok())
            .map(|raw| Signature::from_bytes(&raw));
        if signature.is_none() {
            report(
                ProblemKind::Malformed,
                "signature is not 128 hex digits".into(),
            );
            well_formed = false;
        }

        let computed = line.canonical().hash();
        if computed != line.hash {
            report(
                ProblemKind::EntryModified,
                format!(
                    "entry was modified: its contents hash to {computed}, but it records hash {}",
                    line.hash
                ),
            );
        }
        // The key this entry must be signed with.
        let signing: Option<VerifyingKey> = match chain {
            Chain::Start => match trust.get(&line.key_id) {
                Some(k) => {
                    keys.push(KeyInLog {
                        key_id: k.key_id.clone(),
                        key: k.key,
                        from_seq: line.seq,
                        retired_by: None,
                    });
                    chain = Chain::Kept(0);
                    Some(k.key)
                }
                None => {
                    report(
                        ProblemKind::UntrustedKey,
                        format!(
                            "the log's first entry is signed by key id {}, which the keyring {} does not trust (it trusts {}): a log begun with another key",
                            line.key_id,
                            trust.origin,
                            trust.describe()
                        ),
                    );
                    chain = Chain::Lost;
                    None
                }
            },
            Chain::Kept(i) => {
                let current = &keys[i];
                if line.key_id != current.key_id {
                    let retired = keys
                        .iter()
                        .find(|k| k.key_id == line.key_id)
                        .and_then(|k| k.retired_by);
                    report(
                        ProblemKind::KeyMismatch,
                        match retired {
                            Some(r) => format!(
                                "entry is signed by key id {}, which the key rotation at seq {r} retired; the log is kept with key id {} since",
                                line.key_id, current.key_id
                            ),
                            None => format!(
                                "entry names key id {}, but the log is kept with key id {} (since seq {})",
                                line.key_id, current.key_id, current.from_seq
                            ),
                        },
                    );
                }
                Some(current.key)
            }
            Chain::Lost => None,
        };
        let mut signed = false;
        if let (Some(signature), Ok(hash_bytes), Some(key)) =
            (signature, hex::decode(&line.hash), signing)
        {
            signed = key.verify_strict(&hash_bytes, &signature).is_ok();
            if !signed {
                report(
                    ProblemKind::BadSignature,
                    format!(
                        "signature over the entry's hash does not verify with key id {}",
                        key_id(&key)
                    ),
                );
            }
        }
        if n == 1 {
            first_hash = Some(line.hash.clone());
        }
        // A key rotated out or retired signs nothing after the last entry the keyring
        // records for it in this log, however its entries are dated.
        if let Some(last) = trust
            .get(&line.key_id)
            .and_then(|t| t.last_entry.as_ref())
            .filter(|l| Some(&l.log) == first_hash.as_ref())
        {
            if line.seq > last.seq {
                report(
                    ProblemKind::UntrustedKey,
                    format!(
                        "signed by key id {} after its last entry (seq {}) that the keyring {} records: the key was rotated out or retired there",
                        line.key_id, last.seq, trust.origin
                    ),
                );
            } else if line.seq == last.seq && line.hash != last.hash {
                report(
                    ProblemKind::EntryModified,
                    format!(
                        "the keyring {} records hash {} for key id {}'s last entry, seq {}; the log holds {}: the log was rewritten",
                        trust.origin, last.hash, line.key_id, last.seq, line.hash
                    ),
                );
            }
        }
        // A key the keyring lists signs only within its period.
        if let (Some(t), Some(issued)) = (trust.get(&line.key_id), issued)
            && !t.covers(issued)
        {
            report(
                ProblemKind::UntrustedKey,
                format!(
                    "issued {} with key id {}, which is {} in the keyring {}",
                    line.issued,
                    line.key_id,
                    t.period(),
                    trust.origin
                ),
            );
        }
        // A rotation hands the log over to the key it names.
        if line.run_id == KEY_ROTATION_RUN_ID
            && signed
            && let Chain::Kept(i) = chain
        {
            match rotation_target(&line, trust, folder) {
                Ok(new) if new == keys[i].key => {
                    report(
                        ProblemKind::Malformed,
                        "a key rotation to the key already in use".into(),
                    );
                    chain = Chain::Lost;
                }
                Ok(new) => {
                    keys[i].retired_by = Some(line.seq);
                    keys.push(KeyInLog {
                        key_id: key_id(&new),
                        key: new,
                        from_seq: line.seq + 1,
                        retired_by: None,
                    });
                    chain = Chain::Kept(keys.len() - 1);
                }
                Err(detail) => {
                    report(ProblemKind::Missing, detail);
                    chain = Chain::Lost;
                }
            }
        }

        match entries.last() {
            None => {
                if line.seq != 1 {
                    report(
                        ProblemKind::SequenceGap,
                        format!(
                            "the first entry has seq {}, expected 1: entries were removed from \
                             the start of the log",
                            line.seq
                        ),
                    );
                }
                if line.prev_hash != GENESIS_PREV_HASH {
                    report(
                        ProblemKind::ChainBreak,
                        format!(
                            "chain break: the first entry's prev_hash is {}, expected 64 zeros: \
                             entries before it were removed",
                            line.prev_hash
                        ),
                    );
                }
            }
            Some((prev_n, prev)) => {
                let expected = prev.seq + 1;
                if line.seq > expected {
                    let missing = if line.seq - expected == 1 {
                        format!("seq {expected} was")
                    } else {
                        format!("seq {expected} to {} were", line.seq - 1)
                    };
                    report(
                        ProblemKind::SequenceGap,
                        format!(
                            "sequence gap: expected seq {expected} after seq {} (line {prev_n}), \
                             found {}: {missing} removed",
                            prev.seq, line.seq
                        ),
                    );
                } else if line.seq < expected {
                    report(
                        ProblemKind::OutOfOrder,
                        format!(
                            "out of order: seq {} comes after seq {} (line {prev_n}); entries \
                             were reordered or duplicated",
                            line.seq, prev.seq
                        ),
                    );
                }
                if line.prev_hash != prev.hash {
                    report(
                        ProblemKind::ChainBreak,
                        format!(
                            "chain break: prev_hash {} is not the hash {} of the entry before it \
                             (line {prev_n}, seq {})",
                            line.prev_hash, prev.hash, prev.seq
                        ),
                    );
                }
                if let Some(issued) = issued
                    && issued < prev.issued
                {
                    report(
                        ProblemKind::BackDated,
                        format!(
                            "back-dated: issued {} is earlier than {} of the entry before it \
                             (line {prev_n}, seq {})",
                            line.issued,
                            format_issued(&prev.issued),
                            prev.seq
                        ),
                    );
                }
            }
        }

        if let (true, Some(issued)) = (well_formed, issued) {
            entries.push((
                n,
                IssuanceEntry {
                    seq: line.seq,
                    issued,
                    fields: IssuanceFields {
                        run_id: line.run_id,
                        bundle: line.bundle,
                        manifest_sha256: line.manifest_sha256,
                    },
                    key_id: line.key_id,
                    prev_hash: line.prev_hash,
                    hash: line.hash,
                    signature: line.signature,
                },
            ));
        }
    }

    if problems.is_empty() {
        Ok(LogSummary {
            entries: entries.into_iter().map(|(_, e)| e).collect(),
            key_id: keys.last().map(|k| k.key_id.clone()),
            keys,
        })
    } else {
        Err(problems)
    }
}

/// The key a rotation entry hands over to: the keyring's key with the fingerprint it
/// names, else the key file it names beside the log, which must have that fingerprint.
fn rotation_target(
    line: &Line,
    trust: &Keyring,
    folder: Option<&Path>,
) -> Result<VerifyingKey, String> {
    if let Some(k) = trust.by_fingerprint(&line.manifest_sha256) {
        return Ok(k.key);
    }
    let named = line
        .bundle
        .strip_prefix("keys/")
        .and_then(|n| n.strip_suffix(".pub.pem"))
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_hexdigit()));
    let not_found = |why: String| {
        format!(
            "the key rotation names a key with fingerprint {}, which the keyring {} does not hold, and {why}",
            line.manifest_sha256, trust.origin
        )
    };
    let (true, Some(folder)) = (named, folder) else {
        return Err(not_found(format!(
            "its key file {:?} is not a keys/<key id>.pub.pem beside the log",
            line.bundle
        )));
    };
    let path = folder.join(&line.bundle);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| not_found(format!("{} cannot be read ({e})", path.display())))?;
    let key = parse_public_key_pem(&text)
        .map_err(|e| not_found(format!("{} is not a public key ({e})", path.display())))?;
    if key_fingerprint(&key) != line.manifest_sha256 {
        return Err(not_found(format!(
            "{} holds another key (fingerprint {})",
            path.display(),
            key_fingerprint(&key)
        )));
    }
    Ok(key)
}
