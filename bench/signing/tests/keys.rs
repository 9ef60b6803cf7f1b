//! Key files: our PEM forms are OpenSSL's, and OpenSSL's keys work with us.

mod common;

use std::fs;
use std::process::Command;

use common::{make_bundle, openssl_available, run_openssl_script};
use meterbench_signing::{
    SigningError, generate_key, key_id, load_signing_key, load_verifying_key, sign_bundle,
    verify_bundle,
};

fn openssl(args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[test]
fn generated_keys_are_pem_files_openssl_agrees_with() {
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("lab.key.pem");
    let public = dir.path().join("lab.pub.pem");
    let key = generate_key(&private, &public).unwrap();

    let private_text = fs::read_to_string(&private).unwrap();
    assert!(
        private_text.starts_with("-----BEGIN PRIVATE KEY-----\n"),
        "{private_text}"
    );
    let public_text = fs::read_to_string(&public).unwrap();
    assert!(
        public_text.starts_with("-----BEGIN PUBLIC KEY-----\n"),
        "{public_text}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&private).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "private key mode {mode:o}");
    }

    assert_eq!(
        load_signing_key(&private).unwrap().to_bytes(),
        key.to_bytes()
    );
    assert_eq!(load_verifying_key(&public).unwrap(), key.verifying_key());

    if !openssl_available() {
        return;
    }
    let private_arg = private.to_str().unwrap();
    let public_arg = public.to_str().unwrap();
    // `openssl pkey -pubout` derives exactly our public key file.
    let derived = openssl(&["pkey", "-in", private_arg, "-pubout"]);
    assert_eq!(String::from_utf8(derived).unwrap(), public_text);
    // The key id is what an auditor computes with OpenSSL.
    let der = openssl(&["pkey", "-pubin", "-in", public_arg, "-outform", "DER"]);
    let der_path = dir.path().join("pub.der");
    fs::write(&der_path, der).unwrap();
    let digest = openssl(&["dgst", "-sha256", "-r", der_path.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8(digest).unwrap()[..16],
        key_id(&key.verifying_key())
    );
}

#[test]
fn keys_made_by_openssl_sign_bundles_that_verify() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("openssl.key.pem");
    let public = dir.path().join("openssl.pub.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        private.to_str().unwrap(),
    ]);
    openssl(&[
        "pkey",
        "-in",
        private.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    let key = load_signing_key(&private).unwrap();
    let trusted = load_verifying_key(&public).unwrap();
    assert_eq!(key.verifying_key(), trusted);

    let bundle = dir.path().join("bundle");
    fs::create_dir(&bundle).unwrap();
    make_bundle(&bundle);
    sign_bundle(&bundle, &key, "openssl-made key").unwrap();
    verify_bundle(&bundle, Some(&trusted)).unwrap();
    let (ok, out) = run_openssl_script(&bundle, Some(&key_id(&trusted)));
    assert!(ok, "{out}");
}

#[test]
fn key_errors_say_what_is_wrong_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pem");
    let err = load_signing_key(&missing).unwrap_err();
    assert!(matches!(err, SigningError::Io { .. }), "{err}");
    assert!(err.to_string().contains("nope.pem"), "{err}");

    let garbage = dir.path().join("garbage.pem");
    fs::write(&garbage, "hello").unwrap();
    let err = load_signing_key(&garbage).unwrap_err().to_string();
    assert!(
        err.contains("garbage.pem: not an Ed25519 private key in PKCS#8 PEM"),
        "{err}"
    );
    assert!(err.contains("openssl genpkey -algorithm ed25519"), "{err}");
    // What the file lacks, not the PEM parser's NUL byte; and the bench's own command.
    assert!(
        err.contains("(no `-----BEGIN PRIVATE KEY-----` block in it)") && !err.contains("NUL"),
        "{err}"
    );
    assert!(
        err.contains("`meterbench keys generate --out FILE`"),
        "{err}"
    );
    let err = load_verifying_key(&garbage).unwrap_err().to_string();
    assert!(
        err.contains("garbage.pem: not an Ed25519 public key in SubjectPublicKeyInfo PEM"),
        "{err}"
    );

    // A public key where a private one is expected is a mistake worth naming.
    let private = dir.path().join("k.pem");
    let public = dir.path().join("k.pub.pem");
    generate_key(&private, &public).unwrap();
    let err = load_signing_key(&public).unwrap_err().to_string();
    assert!(err.contains("not an Ed25519 private key"), "{err}");

    // Never overwrite a key.
    let err = generate_key(&private, &dir.path().join("other.pub.pem")).unwrap_err();
    assert!(matches!(err, SigningError::AlreadyExists { .. }), "{err}");
    assert!(!dir.path().join("other.pub.pem").exists());
}
