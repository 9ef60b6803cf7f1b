//! Signing and verifying a bundle folder.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keys::{key_id, parse_public_key_pem, public_key_pem, write_new_file};
use crate::xmldsig::XML_PUBLIC_KEY_FILE;
use crate::{Problem, ProblemKind, SigningError, is_sha256_hex, sha256_hex};

/// The signed manifest: a `#` header, then `<sha256> *<path>` lines.
pub const MANIFEST_FILE: &str = "MANIFEST.sha256";
/// The raw 64-byte Ed25519 signature over [`MANIFEST_FILE`]'s exact bytes.
pub const SIGNATURE_FILE: &str = "MANIFEST.sig";
/// The signer's public key (SubjectPublicKeyInfo PEM); listed in the manifest like any file.
pub const PUBLIC_KEY_FILE: &str = "signer.pub.pem";
/// First line of every manifest, after `# `.
pub const MANIFEST_FORMAT: &str = "meterbench signed bundle manifest v1";
/// The `algorithm` header value: what is signed, and how files are hashed.
pub const SIGNATURE_ALGORITHM: &str =
    "Ed25519 signature in MANIFEST.sig over this file's exact bytes; SHA-256 per file";

/// One listed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Path relative to the bundle folder, components joined with `/`.
    pub path: String,
    /// Lowercase hex SHA-256 of the file's bytes.
    pub sha256: String,
}

/// The content of `MANIFEST.sha256`.
///
/// Its text form (see [`Manifest::to_text`]) is both what is signed and a
/// checksum file that `sha256sum -c` and `openssl dgst -sha256 -r` agree with:
///
/// ```text
/// # meterbench signed bundle manifest v1
/// # algorithm: Ed25519 signature in MANIFEST.sig over this file's exact bytes; SHA-256 per file
/// # key-id: 3f0c9a1b2d4e5f60
/// # signer: Calibration lab 1
/// # created: 2025-06-01T12:00:00Z
/// 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 *certificate.html
/// ...
/// ```
///
/// The header sits inside the signed bytes, so the signature covers the key
/// id, signer and date as well as the file list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The signing key's id (see [`key_id`](crate::key_id)).
    pub key_id: String,
    /// Who signed, free text on one line (a person, a station, a lab).
    pub signer: String,
    /// When the bundle was signed, UTC, whole seconds.
    pub created: DateTime<Utc>,
    /// Always [`SIGNATURE_ALGORITHM`] in this format version.
    pub algorithm: String,
    /// Every file of the bundle except `MANIFEST.sha256` and `MANIFEST.sig`, sorted by path.
    pub entries: Vec<ManifestEntry>,
}

impl Manifest {
    /// The exact bytes written to `MANIFEST.sha256` and signed.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "# {MANIFEST_FORMAT}\n# algorithm: {}\n# key-id: {}\n# signer: {}\n# created: {}\n",
            self.algorithm,
            self.key_id,
            self.signer,
            self.created.to_rfc3339_opts(SecondsFormat::Secs, true)
        );
        for entry in &self.entries {
            // ` *` (binary mode) is what `openssl dgst -r` prints and what
            // `sha256sum -c` accepts; it is also free of any newline translation.
            text.push_str(&format!("{} *{}\n", entry.sha256, entry.path));
        }
        text
    }

    /// Parses a manifest's text, strictly: every deviation from the format is a problem.
    pub fn parse(text: &str) -> Result<Manifest, Vec<Problem>> {
        let parsed = parse_manifest(text);
        match (parsed.header, parsed.problems.is_empty()) {
            (Some(header), true) => Ok(Manifest {
                key_id: header.key_id,
                signer: header.signer,
                created: header.created,
                algorithm: header.algorithm,
                entries: parsed.entries.into_iter().map(|(_, e)| e).collect(),
            }),
            _ => Err(parsed.problems),
        }
    }

    /// SHA-256 of [`to_text`](Self::to_text): the value the issuance log records.
    pub fn sha256(&self) -> String {
        sha256_hex(self.to_text().as_bytes())
    }
}

/// What a successful [`verify_bundle`] established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The verified manifest.
    pub manifest: Manifest,
    /// SHA-256 of `MANIFEST.sha256`, as recorded in the issuance log.
    pub manifest_sha256: String,
    /// True if the signing key was compared with a trusted key; false means
    /// only "internally consistent, signed by whoever holds key `manifest.key_id`".
    pub trusted_key_checked: bool,
}

/// Signs the bundle in `dir`: writes `signer.pub.pem`, `MANIFEST.sha256`
/// listing every regular file (recursively, sorted, `/`-separated, including
/// `signer.pub.pem`) and `MANIFEST.sig`.
///
/// Refuses to re-sign a bundle that already carries any of these files, and
/// refuses symbolic links, special files and names that a `sha256sum`-style
/// manifest cannot hold (non-UTF-8, control characters, backslashes), before
/// writing anything.
pub fn sign_bundle(dir: &Path, key: &SigningKey, signer: &str) -> Result<Manifest, SigningError> {
    if signer.trim().is_empty() || signer.chars().any(char::is_control) {
        return Err(SigningError::InvalidField {
            field: "signer",
            value: signer.to_string(),
            reason: "must be one non-empty line of text: it goes into the manifest header",
        });
    }
    for name in [MANIFEST_FILE, SIGNATURE_FILE, PUBLIC_KEY_FILE] {
        let path = dir.join(name);
        if fs::symlink_metadata(&path).is_ok() {
            return Err(SigningError::AlreadyExists {
                path,
                why: "the bundle is already signed; a signed bundle is never re-signed in place",
            });
        }
    }

    let mut paths = Vec::new();
    for item in walk(dir).map_err(|(path, e)| SigningError::io(path, e))? {
        if !item.utf8 {
            return Err(unlistable(
                &item.rel,
                "the name is not valid UTF-8; rename the file",
            ));
        }
        if item.kind != Kind::Regular {
            return Err(unlistable(
                &item.rel,
                "is not a regular file (symbolic link, FIFO, device...); a bundle must hold \
                 only regular files, so copy the content in",
            ));
        }
        if let Err(why) = check_listable_path(&item.rel) {
            return Err(unlistable(&item.rel, why));
        }
        paths.push(item.rel);
    }

    let verifying_key = key.verifying_key();
    write_new_file(
        &dir.join(PUBLIC_KEY_FILE),
        public_key_pem(&verifying_key).as_bytes(),
        0o644,
    )?;
    // Anything that fails from here on leaves no half-signed bundle behind.
    let result = write_manifest_and_signature(dir, key, signer, paths);
    if result.is_err() {
        for name in [PUBLIC_KEY_FILE, MANIFEST_FILE, SIGNATURE_FILE] {
            let _ = fs::remove_file(dir.join(name));
        }
    }
    result
}

fn write_manifest_and_signature(
    dir: &Path,
    key: &SigningKey,
    signer: &str,
    mut paths: Vec<String>,
) -> Result<Manifest, SigningError> {
    // The public key is listed like any other file, so a changed byte in it is
    // caught by the hash check even by tools that never parse it.
    paths.push(PUBLIC_KEY_FILE.to_string());
    paths.sort();
    let mut entries = Vec::with_capacity(paths.len());
    for path in paths {
        let full = dir.join(&path);
        let sha256 = hash_file(&full).map_err(|e| SigningError::io(full, e))?;
        entries.push(ManifestEntry { path, sha256 });
    }
    let manifest = Manifest {
        key_id: key_id(&key.verifying_key()),
        signer: signer.to_string(),
        // Whole seconds: the header is meant to be read by people, and a
        // parse → print round trip gives back the same bytes.
        created: Utc::now().trunc_subsecs(0),
        algorithm: SIGNATURE_ALGORITHM.to_string(),
        entries,
    };
    let text = manifest.to_text();
    write_new_file(&dir.join(MANIFEST_FILE), text.as_bytes(), 0o644)?;
    let signature = key.sign(text.as_bytes());
    // Written last: a bundle interrupted before this point fails verification
    // with "MANIFEST.sig: missing" instead of looking signed.
    write_new_file(&dir.join(SIGNATURE_FILE), &signature.to_bytes(), 0o644)?;
    Ok(manifest)
}

/// SHA-256 of a bundle's `MANIFEST.sha256` file, as recorded in the issuance log.
///
/// Reads the file as it is; it does not verify the bundle (use [`verify_bundle`]).
pub fn bundle_manifest_sha256(dir: &Path) -> Result<String, SigningError> {
    let path = dir.join(MANIFEST_FILE);
    let bytes = fs::read(&path).map_err(|e| SigningError::io(path, e))?;
    Ok(sha256_hex(&bytes))
}

/// Verifies the bundle in `dir` and reports every problem found, each naming
/// the file concerned:
///
/// - the signature in `MANIFEST.sig` over `MANIFEST.sha256` (with `trusted`
///   if given, else with `signer.pub.pem`);
/// - if `trusted` is given, that `signer.pub.pem` holds that very key;
/// - that the manifest header's key id is the key's real id;
/// - every listed file: present, a regular file, same SHA-256;
/// - no file in the folder that the manifest does not list.
///
/// Without `trusted`, success only means the bundle is intact *as signed by
/// key `report.manifest.key_id`*; compare that id with the published one.
pub fn verify_bundle(
    dir: &Path,
    trusted: Option<&VerifyingKey>,
) -> Result<VerifyReport, Vec<Problem>> {
    let mut problems = Vec::new();
    if !dir.is_dir() {
        let detail = "not a folder; expected a bundle folder holding MANIFEST.sha256";
        return Err(vec![Problem::new(
            dir.display().to_string(),
            ProblemKind::Missing,
            detail,
        )]);
    }
    // Files already reported missing, so the entry check does not repeat them.
    let mut reported_missing = BTreeSet::new();

    let manifest_bytes = read_required(dir, MANIFEST_FILE, &mut problems, &mut reported_missing);
    let signature = read_required(dir, SIGNATURE_FILE, &mut problems, &mut reported_missing)
        .and_then(|bytes| match <[u8; 64]>::try_from(bytes.as_slice()) {
            Ok(raw) => Some(Signature::from_bytes(&raw)),
            Err(_) => {
                problems.push(Problem::new(
                    SIGNATURE_FILE,
                    ProblemKind::Malformed,
                    format!(
                        "is {} bytes long; a raw Ed25519 signature is 64 bytes",
                        bytes.len()
                    ),
                ));
                None
            }
        });
    let embedded_key = read_required(dir, PUBLIC_KEY_FILE, &mut problems, &mut reported_missing)
        .and_then(|bytes| {
            let parsed = String::from_utf8(bytes)
                .map_err(|_| "not UTF-8 text".to_string())
                .and_then(|text| parse_public_key_pem(&text));
            match parsed {
                Ok(key) => Some(key),
                Err(detail) => {
                    problems.push(Problem::new(
                        PUBLIC_KEY_FILE,
                        ProblemKind::Malformed,
                        format!("not an Ed25519 public key in SubjectPublicKeyInfo PEM ({detail})"),
                    ));
                    None
                }
            }
        });

    if let (Some(trusted), Some(embedded)) = (trusted, embedded_key.as_ref())
        && trusted != embedded
    {
        problems.push(Problem::new(
            PUBLIC_KEY_FILE,
            ProblemKind::UntrustedKey,
            format!(
                "the bundle is signed by key id {}, not by the trusted key id {}",
                key_id(embedded),
                key_id(trusted)
            ),
        ));
    }

    // With a trusted key, the signature is checked against it directly: the
    // embedded copy is then only a convenience that must match it.
    let (signature_key, key_source) = match trusted {
        Some(key) => (Some(*key), "the trusted key"),
        None => (embedded_key, PUBLIC_KEY_FILE),
    };
    if let (Some(bytes), Some(signature), Some(key)) = (
        manifest_bytes.as_ref(),
        signature.as_ref(),
        signature_key.as_ref(),
    ) && key.verify_strict(bytes, signature).is_err()
    {
        problems.push(Problem::new(
            SIGNATURE_FILE,
            ProblemKind::BadSignature,
            format!(
                "signature over {MANIFEST_FILE} does not verify with {key_source} (key id {}): \
                 {MANIFEST_FILE} or {SIGNATURE_FILE} was altered, or they come from \
                 different signings",
                key_id(key)
            ),
        ));
    }

    let Some(manifest_bytes) = manifest_bytes else {
        return Err(problems);
    };
    let Ok(text) = std::str::from_utf8(&manifest_bytes) else {
        problems.push(Problem::new(
            MANIFEST_FILE,
            ProblemKind::Malformed,
            "not UTF-8 text",
        ));
        return Err(problems);
    };
    let parsed = parse_manifest(text);
    problems.extend(parsed.problems);

    if let (Some(header), Some(key)) = (&parsed.header, signature_key.as_ref()) {
        let real = key_id(key);
        if header.key_id != real {
            problems.push(Problem::new(
                MANIFEST_FILE,
                ProblemKind::KeyMismatch,
                format!(
                    "the header names key id {}, but the signing key ({key_source}) has \
                     key id {real}",
                    header.key_id
                ),
            ));
        }
    }

    let mut listed = BTreeMap::new();
    for (line, entry) in &parsed.entries {
        if listed.insert(entry.path.clone(), *line).is_some() {
            problems.push(Problem::new(
                MANIFEST_FILE,
                ProblemKind::Malformed,
                format!("line {line}: {} is listed twice", entry.path),
            ));
            continue;
        }
        check_entry(dir, entry, &reported_missing, &mut problems);
    }

    match walk(dir) {
        Err((path, e)) => problems.push(Problem::new(
            path.display().to_string(),
            ProblemKind::Unreadable,
            format!("cannot list this folder: {e}"),
        )),
        Ok(items) => {
            for item in items {
                let is_manifest_file = item.rel == MANIFEST_FILE || item.rel == SIGNATURE_FILE;
                if is_manifest_file || listed.contains_key(&item.rel) {
                    continue; // checked above
                }
                let (kind, detail) = match item.kind {
                    Kind::Regular => (ProblemKind::Extra, "present but not in the manifest"),
                    Kind::Symlink => (
                        ProblemKind::NotRegularFile,
                        "a symbolic link, not in the manifest; a bundle holds only regular files",
                    ),
                    Kind::Other => (
                        ProblemKind::NotRegularFile,
                        "a special file, not in the manifest; a bundle holds only regular files",
                    ),
                };
                problems.push(Problem::new(item.rel, kind, detail));
            }
        }
    }

    // The DCC's own XML signature, with the key the manifest lists beside it: a reader
    // of the DCC alone (xmlsec1) checks that, so it must hold as the manifest does.
    if listed.contains_key(DCC_FILE) && listed.contains_key(XML_PUBLIC_KEY_FILE) {
        let xml = fs::read(dir.join(DCC_FILE));
        let key = fs::read_to_string(dir.join(XML_PUBLIC_KEY_FILE));
        if let (Ok(xml), Ok(key)) = (xml, key)
            && let Err(e) = crate::xmldsig::verify_enveloped(&xml, &key)
        {
            problems.push(Problem::new(
                DCC_FILE,
                ProblemKind::BadSignature,
                format!("its XML signature does not verify with {XML_PUBLIC_KEY_FILE}: {e}"),
            ));
        }
    }

    match (parsed.header, problems.is_empty()) {
        (Some(header), true) => Ok(VerifyReport {
            manifest_sha256: sha256_hex(&manifest_bytes),
            manifest: Manifest {
                key_id: header.key_id,
                signer: header.signer,
                created: header.created,
                algorithm: header.algorithm,
                entries: parsed.entries.into_iter().map(|(_, e)| e).collect(),
            },
            trusted_key_checked: trusted.is_some(),
        }),
        _ => Err(problems),
    }
}

/// Verifies the bundle in `dir` as [`verify_bundle`] does, and that the key that signed
/// it is in `trust` and was valid when the bundle was signed (its manifest's `created`):
/// a bundle signed by a key retired before that time, or by a key the keyring does not
/// list, is refused, naming the key and the keyring.
pub fn verify_bundle_trusted(
    dir: &Path,
    trust: &crate::Keyring,
) -> Result<VerifyReport, Vec<Problem>> {
    // The bundle's key id as its manifest names it: when the keyring trusts that key,
    // one verification with the keyring's own copy of it says all (the bundle's files are
    // hashed and its two signatures checked once, not twice: filing does this for every
    // run). Otherwise the bundle is checked with its own key first, so that a tampered
    // bundle is reported as tampered before its key as unknown.
    let named = fs::read_to_string(dir.join(MANIFEST_FILE))
        .ok()
        .and_then(|text| Manifest::parse(&text).ok())
        .and_then(|m| trust.get(&m.key_id));
    let intact = match named {
        Some(trusted) => verify_bundle(dir, Some(&trusted.key))?,
        None => verify_bundle(dir, None)?,
    };
    let id = &intact.manifest.key_id;
    let Some(trusted) = trust.get(id) else {
        return Err(vec![Problem::new(
            PUBLIC_KEY_FILE,
            ProblemKind::UntrustedKey,
            format!(
                "the bundle is signed by key id {id}, which the keyring {} does not trust (it trusts {})",
                trust.origin,
                trust.describe()
            ),
        )]);
    };
    if !trusted.covers(intact.manifest.created) {
        return Err(vec![Problem::new(
            PUBLIC_KEY_FILE,
            ProblemKind::UntrustedKey,
            format!(
                "the bundle was signed on {} by key id {id}, which is {} in the keyring {}",
                intact
                    .manifest
                    .created
                    .to_rfc3339_opts(SecondsFormat::Secs, true),
                trusted.period(),
                trust.origin
            ),
        )]);
    }
    if named.is_some() {
        return Ok(intact);
    }
    // Checked again with the keyring's own copy of the key, not the bundle's.
    verify_bundle(dir, Some(&trusted.key))
}

/// The DCC in a bundle, which carries an XML signature of its own.
const DCC_FILE: &str = "dcc.xml";

/// Reads one of the three files every signed bundle has, recording a problem if it can't.
fn read_required(
    dir: &Path,
    name: &str,
    problems: &mut Vec<Problem>,
    reported_missing: &mut BTreeSet<String>,
) -> Option<Vec<u8>> {
    let path = dir.join(name);
    match fs::symlink_metadata(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let detail = match name {
                MANIFEST_FILE => {
                    "missing: this folder is not a signed bundle, or its manifest was removed"
                }
                SIGNATURE_FILE => "missing: the manifest is not signed",
                _ => "missing: the signature cannot be checked without the signer's public key",
            };
            problems.push(Problem::new(name, ProblemKind::Missing, detail));
            reported_missing.insert(name.to_string());
            return None;
        }
        Ok(meta) if !meta.file_type().is_file() => {
            let detail = "not a regular file; a bundle holds only regular files";
            problems.push(Problem::new(name, ProblemKind::NotRegularFile, detail));
            return None;
        }
        _ => {}
    }
    match fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            problems.push(Problem::new(
                name,
                ProblemKind::Unreadable,
                format!("cannot be read: {e}"),
            ));
            None
        }
    }
}

fn check_entry(
    dir: &Path,
    entry: &ManifestEntry,
    reported_missing: &BTreeSet<String>,
    problems: &mut Vec<Problem>,
) {
    let full = dir.join(&entry.path);
    let problem = |kind, detail: String| Problem::new(entry.path.clone(), kind, detail);
    match fs::symlink_metadata(&full) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if !reported_missing.contains(&entry.path) {
                let detail = "listed in the manifest but missing".to_string();
                problems.push(problem(ProblemKind::Missing, detail));
            }
        }
        Err(e) => problems.push(problem(
            ProblemKind::Unreadable,
            format!("cannot be read: {e}"),
        )),
        Ok(meta) if meta.file_type().is_symlink() => problems.push(problem(
            ProblemKind::NotRegularFile,
            "is a symbolic link; a bundle holds only regular files".to_string(),
        )),
        Ok(meta) if !meta.is_file() => problems.push(problem(
            ProblemKind::NotRegularFile,
            "is not a regular file; a bundle holds only regular files".to_string(),
        )),
        Ok(_) => match hash_file(&full) {
            Err(e) => problems.push(problem(
                ProblemKind::Unreadable,
                format!("cannot be read: {e}"),
            )),
            Ok(got) if got != entry.sha256 => problems.push(problem(
                ProblemKind::HashMismatch,
                format!(
                    "SHA-256 differs from the manifest (expected {}, got {got})",
                    entry.sha256
                ),
            )),
            Ok(_) => {}
        },
    }
}

struct Header {
    algorithm: String,
    key_id: String,
    signer: String,
    created: DateTime<Utc>,
}

struct Parsed {
    header: Option<Header>,
    /// (line number, entry), in file order.
    entries: Vec<(usize, ManifestEntry)>,
    problems: Vec<Problem>,
}

/// Parses as much as possible, so a damaged manifest still lets the file
/// checks run and tell the auditor what else differs.
fn parse_manifest(text: &str) -> Parsed {
    let mut problems = Vec::new();
    let mut bad = |line: usize, detail: String| {
        problems.push(Problem::new(
            MANIFEST_FILE,
            ProblemKind::Malformed,
            format!("line {line}: {detail}"),
        ))
    };
    let body = text.strip_suffix('\n').unwrap_or_else(|| {
        bad(
            text.split('\n').count(),
            "the file does not end with a newline".to_string(),
        );
        text
    });

    let mut fields: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
    let mut entries = Vec::new();
    let mut in_header = true;
    for (index, line) in body.split('\n').enumerate() {
        let n = index + 1;
        if n == 1 {
            if line != format!("# {MANIFEST_FORMAT}") {
                bad(n, format!("expected `# {MANIFEST_FORMAT}`, found {line:?}"));
            }
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            if !in_header {
                bad(n, "header line after the file list".to_string());
                continue;
            }
            let Some((key, value)) = comment.strip_prefix(' ').and_then(|c| c.split_once(": "))
            else {
                bad(n, format!("expected `# key: value`, found {line:?}"));
                continue;
            };
            if !matches!(key, "algorithm" | "key-id" | "signer" | "created") {
                bad(n, format!("unknown header field {key:?}"));
            } else if fields.insert(key, (n, value)).is_some() {
                bad(n, format!("header field {key:?} appears twice"));
            }
            continue;
        }
        in_header = false;
        match parse_entry_line(line) {
            Ok(entry) => entries.push((n, entry)),
            Err(detail) => bad(n, detail),
        }
    }

    let mut field = |key: &str| match fields.get(key) {
        Some(&(_, value)) => Some(value),
        None => {
            bad(1, format!("header field {key:?} is missing"));
            None
        }
    };
    let algorithm = field("algorithm");
    let key_id = field("key-id");
    let signer = field("signer");
    let created = field("created");
    let mut header_ok = true;
    if let Some(algorithm) = algorithm
        && algorithm != SIGNATURE_ALGORITHM
    {
        bad(
            fields["algorithm"].0,
            format!("unsupported algorithm {algorithm:?}"),
        );
        header_ok = false;
    }
    if let Some(id) = key_id
        && !(id.len() == 16 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    {
        bad(
            fields["key-id"].0,
            format!("key id {id:?} is not 16 lowercase hex digits"),
        );
        header_ok = false;
    }
    let created = created.and_then(|value| match parse_utc(value) {
        Ok(t) => Some(t),
        Err(detail) => {
            bad(fields["created"].0, detail);
            None
        }
    });
    let header = match (algorithm, key_id, signer, created, header_ok) {
        (Some(algorithm), Some(key_id), Some(signer), Some(created), true) => Some(Header {
            algorithm: algorithm.to_string(),
            key_id: key_id.to_string(),
            signer: signer.to_string(),
            created,
        }),
        _ => None,
    };
    Parsed {
        header,
        entries,
        problems,
    }
}

fn parse_entry_line(line: &str) -> Result<ManifestEntry, String> {
    let Some((hash, path)) = line.split_once(" *") else {
        return Err(format!("expected `<sha256> *<path>`, found {line:?}"));
    };
    if !is_sha256_hex(hash) {
        return Err(format!(
            "{hash:?} is not a SHA-256 in 64 lowercase hex digits"
        ));
    }
    check_listable_path(path).map_err(|why| format!("path {path:?}: {why}"))?;
    Ok(ManifestEntry {
        path: path.to_string(),
        sha256: hash.to_string(),
    })
}

/// Timestamps are RFC 3339 in UTC with a `Z`, the only form either format writes.
pub(crate) fn parse_utc(value: &str) -> Result<DateTime<Utc>, String> {
    if !value.ends_with('Z') {
        return Err(format!("timestamp {value:?} is not in UTC (must end in Z)"));
    }
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("timestamp {value:?} is not RFC 3339: {e}"))
}

/// Whether `path` can be a manifest line: relative, normalised, and free of
/// the characters `sha256sum` escapes (which would break the plain format).
fn check_listable_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("empty path");
    }
    if path.starts_with('/') {
        return Err("absolute path; manifest paths are relative to the bundle");
    }
    if path.chars().any(|c| c.is_control() || c == '\\') {
        return Err("contains a control character or backslash, which sha256sum would escape");
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err("has an empty, `.` or `..` component; manifest paths stay inside the bundle");
    }
    Ok(())
}

fn unlistable(path: &str, reason: &str) -> SigningError {
    SigningError::Unlistable {
        path: path.to_string(),
        reason: reason.to_string(),
    }
}

fn hash_file(path: &Path) -> io::Result<String> {
    let mut hasher = Sha256::new();
    io::copy(&mut File::open(path)?, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Regular,
    Symlink,
    Other,
}

struct Item {
    /// Relative path with `/` (lossy if the name is not UTF-8).
    rel: String,
    utf8: bool,
    kind: Kind,
}

/// Every non-directory below `root`, sorted by relative path; symbolic links
/// are reported, never followed, so nothing outside the bundle is read.
fn walk(root: &Path) -> Result<Vec<Item>, (PathBuf, io::Error)> {
    let mut items = Vec::new();
    let mut pending = vec![(root.to_path_buf(), String::new(), true)];
    while let Some((dir, prefix, prefix_utf8)) = pending.pop() {
        let entries = fs::read_dir(&dir).map_err(|e| (dir.clone(), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| (dir.clone(), e))?;
            let name = entry.file_name();
            let utf8 = prefix_utf8 && name.to_str().is_some();
            let rel = format!("{prefix}{}", name.to_string_lossy());
            let file_type = entry.file_type().map_err(|e| (entry.path(), e))?;
            if file_type.is_dir() {
                pending.push((entry.path(), format!("{rel}/"), utf8));
            } else {
                let kind = if file_type.is_file() {
                    Kind::Regular
                } else if file_type.is_symlink() {
                    Kind::Symlink
                } else {
                    Kind::Other
                };
                items.push(Item { rel, utf8, kind });
            }
        }
    }
    items.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            key_id: "0123456789abcdef".into(),
            signer: "Lab 1".into(),
            created: DateTime::from_timestamp(1_750_000_000, 0).unwrap(),
            algorithm: SIGNATURE_ALGORITHM.into(),
            entries: vec![
                ManifestEntry {
                    path: "a b.txt".into(),
                    sha256: "a".repeat(64),
                },
                ManifestEntry {
                    path: "plots/x.png".into(),
                    sha256: "b".repeat(64),
                },
            ],
        }
    }

    #[test]
    fn text_round_trips() {
        let text = sample().to_text();
        assert!(text.starts_with("# meterbench signed bundle manifest v1\n"));
        assert!(text.contains("\n# created: 2025-06-15T15:06:40Z\n"));
        assert!(text.ends_with(&format!("{} *plots/x.png\n", "b".repeat(64))));
        assert_eq!(Manifest::parse(&text).unwrap(), sample());
    }

    #[test]
    fn parse_reports_each_malformed_line() {
        let text = sample()
            .to_text()
            .replace(" *a b.txt", "  a b.txt")
            .replace("Lab 1", "Lab 1\n# colour: red");
        let problems = Manifest::parse(&text).unwrap_err();
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            shown
                .iter()
                .any(|p| p.contains("line 5: unknown header field \"colour\"")),
            "{shown:?}"
        );
        assert!(
            shown
                .iter()
                .any(|p| p.contains("line 7: expected `<sha256> *<path>`")),
            "{shown:?}"
        );
    }

    #[test]
    fn unsafe_paths_are_rejected() {
        for path in ["../x", "/etc/passwd", "a//b", "a/./b", "a\\b", "a\nb", ""] {
            assert!(check_listable_path(path).is_err(), "{path:?}");
        }
        assert!(check_listable_path("plots/error curve.png").is_ok());
    }

    #[test]
    fn missing_trailing_newline_is_reported() {
        let text = sample().to_text();
        let problems = Manifest::parse(text.trim_end()).unwrap_err();
        assert!(
            problems[0].detail.contains("does not end with a newline"),
            "{problems:?}"
        );
    }
}
