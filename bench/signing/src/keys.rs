//! Ed25519 keys in the PEM forms OpenSSL reads and writes.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, KeypairBytes,
};
use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::{SigningError, sha256_hex};

/// Generates a fresh Ed25519 key pair from the operating system's CSPRNG and
/// writes it: the private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`,
/// file mode 0600 on Unix) and the public key as SubjectPublicKeyInfo PEM
/// (`-----BEGIN PUBLIC KEY-----`, byte for byte what
/// `openssl pkey -in PRIVATE -pubout` prints).
///
/// Refuses to overwrite either file: losing a signing key orphans every
/// bundle it signed. Returns the new key.
pub fn generate_key(private_path: &Path, public_path: &Path) -> Result<SigningKey, SigningError> {
    for path in [private_path, public_path] {
        if path.exists() {
            return Err(SigningError::AlreadyExists {
                path: path.to_path_buf(),
                why: "a key is never replaced in place; move the old one away first",
            });
        }
    }
    let key = SigningKey::generate(&mut rand_core::OsRng);
    // PKCS#8 v1 (no embedded public key), the form `openssl genpkey` writes;
    // the v2 form the library would emit by default is rejected by some tools.
    let keypair = KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    };
    let pem = keypair
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| SigningError::BadPrivateKey {
            path: private_path.to_path_buf(),
            detail: e.to_string(),
        })?;
    write_new_file(private_path, pem.as_bytes(), 0o600)?;
    write_public_key(public_path, &key.verifying_key())?;
    Ok(key)
}

/// Writes `key` as SubjectPublicKeyInfo PEM to a new file (mode 0644 on Unix).
pub fn write_public_key(path: &Path, key: &VerifyingKey) -> Result<(), SigningError> {
    write_new_file(path, public_key_pem(key).as_bytes(), 0o644)
}

/// The SubjectPublicKeyInfo PEM text of `key`, LF line endings, as OpenSSL writes it.
pub fn public_key_pem(key: &VerifyingKey) -> String {
    // Encoding 32 known-good bytes into a fixed SPKI structure cannot fail.
    key.to_public_key_pem(LineEnding::LF)
        .expect("an Ed25519 public key always encodes as SPKI PEM")
}

/// The key id: the first 16 hex digits of SHA-256 over the public key's DER
/// (SubjectPublicKeyInfo) encoding.
///
/// An auditor gets the same with
/// `openssl pkey -pubin -in signer.pub.pem -outform DER | openssl dgst -sha256`.
pub fn key_id(key: &VerifyingKey) -> String {
    key_fingerprint(key)[..16].to_string()
}

/// The whole SHA-256 (64 hex digits) over the public key's DER (SubjectPublicKeyInfo)
/// encoding, of which the key id is the start: what a key rotation in the issuance log
/// names the new key by, so that a second key sharing its 64-bit id cannot stand in.
pub fn key_fingerprint(key: &VerifyingKey) -> String {
    let der = key
        .to_public_key_der()
        .expect("an Ed25519 public key always encodes as SPKI DER");
    sha256_hex(der.as_bytes())
}

/// Loads an Ed25519 private key from a PKCS#8 PEM file (ours or `openssl genpkey`'s).
pub fn load_signing_key(path: &Path) -> Result<SigningKey, SigningError> {
    let text = fs::read_to_string(path).map_err(|e| SigningError::io(path, e))?;
    // The PEM parser's own words for a file with no PEM block at all are about a NUL
    // byte the file need not hold; a block of another kind (an OpenSSH or an EC key) is
    // left to the parser to name.
    let detail = if !text.contains("-----BEGIN ") {
        Some("no `-----BEGIN PRIVATE KEY-----` block in it".to_string())
    } else {
        None
    };
    SigningKey::from_pkcs8_pem(&text).map_err(|e| SigningError::BadPrivateKey {
        path: path.to_path_buf(),
        detail: detail.unwrap_or_else(|| e.to_string()),
    })
}

/// Loads an Ed25519 public key from a SubjectPublicKeyInfo PEM file.
pub fn load_verifying_key(path: &Path) -> Result<VerifyingKey, SigningError> {
    let text = fs::read_to_string(path).map_err(|e| SigningError::io(path, e))?;
    parse_public_key_pem(&text).map_err(|detail| SigningError::BadPublicKey {
        path: path.to_path_buf(),
        detail,
    })
}

pub(crate) fn parse_public_key_pem(text: &str) -> Result<VerifyingKey, String> {
    VerifyingKey::from_public_key_pem(text).map_err(|e| e.to_string())
}

/// Creates `path` (which must not exist) with `mode` and writes `bytes`.
///
/// The mode is set at creation, not afterwards, so a private key is never
/// readable by others, not even for a moment.
pub(crate) fn write_new_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SigningError> {
    // Written whole under a name of its own, then linked to its name: another process
    // (two runs starting at once on a new bench) never reads half a key, and a file that
    // exists is never replaced (the link fails if the name is taken).
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let written = options.open(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(SigningError::io(path, e));
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    linked.map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => SigningError::AlreadyExists {
            path: path.to_path_buf(),
            why: "it would be silently replaced",
        },
        _ => SigningError::io(path, e),
    })
}
