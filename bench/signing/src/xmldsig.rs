//! Enveloped XML signatures (W3C XML Signature 1.1) over the bench's XML documents (the
//! DCC), in the one form stock `xmlsec1 --verify` checks:
//!
//! - ECDSA over P-256 with SHA-256 (`xmldsig-more#ecdsa-sha256`): the xmlsec1 that
//!   Debian ships (1.2) verifies no Ed25519;
//! - one reference to the whole document (`URI=""`) with the enveloped-signature and
//!   exclusive canonicalization transforms, digest SHA-256;
//! - `SignedInfo` canonicalized exclusively; the key named by its key id.
//!
//! The P-256 key is derived from the bench's Ed25519 signing key (SHA-256 of a
//! domain-separation label and the Ed25519 seed): one key to keep, rotate and publish.
//! Its public key travels in the bundle as `dcc-signer.pub.pem`, which the Ed25519
//! manifest covers, so the DCC signature is as trusted as the bundle.

use crate::c14n::{self, C14nError, Subset};
use crate::sha256_hex;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use sha2::{Digest, Sha256};

/// The bundle file holding the public key of the DCC's XML signature.
pub const XML_PUBLIC_KEY_FILE: &str = "dcc-signer.pub.pem";

const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const DERIVATION_LABEL: &[u8] = b"meterbench xml-signature P-256 key v1\0";

#[derive(Debug, thiserror::Error)]
pub enum XmlSigError {
    #[error("cannot canonicalize the document: {0}")]
    C14n(#[from] C14nError),
    #[error("the document has no root element to sign")]
    NoRoot,
    #[error("the document is already signed")]
    AlreadySigned,
    #[error("the document carries no XML signature")]
    Unsigned,
    #[error("the XML signature is not in the form the bench writes: {0}")]
    Form(String),
    #[error(
        "the document's digest differs from the signed one: the document was changed after signing"
    )]
    DigestMismatch,
    #[error("the XML signature does not verify with the given key")]
    BadSignature,
    #[error("not a P-256 public key: {0}")]
    BadKey(String),
}

/// The P-256 key of the bench's XML signatures.
pub struct XmlSigningKey {
    key: p256::ecdsa::SigningKey,
}

impl XmlSigningKey {
    /// The XML signing key that belongs to the bench's Ed25519 signing key.
    pub fn derive(ed25519: &SigningKey) -> XmlSigningKey {
        let mut counter = 0u8;
        loop {
            // A hash at or above the curve's order (or zero) is no scalar: the chance is
            // about 2^-32; the next counter value is taken.
            let seed = Sha256::new()
                .chain_update(DERIVATION_LABEL)
                .chain_update(ed25519.to_bytes())
                .chain_update([counter])
                .finalize();
            if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&seed) {
                return XmlSigningKey { key };
            }
            counter = counter.wrapping_add(1);
        }
    }

    /// SubjectPublicKeyInfo PEM, as `openssl pkey -pubout` writes it and xmlsec1 reads.
    pub fn public_key_pem(&self) -> String {
        self.key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("a P-256 public key always encodes as SPKI PEM")
    }

    /// The first 16 hex digits of SHA-256 over the public key's DER, as for the
    /// Ed25519 key.
    pub fn key_id(&self) -> String {
        let der = self
            .key
            .verifying_key()
            .to_public_key_der()
            .expect("a P-256 public key always encodes as SPKI DER");
        sha256_hex(der.as_bytes())[..16].to_string()
    }
}

/// `SignedInfo` in exclusive canonical form, as it is also written into the document
/// (standing alone it declares `ds`; inside the Signature the Signature does).
fn signed_info(digest_b64: &str) -> String {
    signed_info_body(digest_b64, &format!(" xmlns:ds=\"{DSIG}\""))
}

fn signed_info_body(digest_b64: &str, declaration: &str) -> String {
    format!(
        "<ds:SignedInfo{declaration}><ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\"></ds:CanonicalizationMethod><ds:SignatureMethod Algorithm=\"{ECDSA_SHA256}\"></ds:SignatureMethod><ds:Reference URI=\"\"><ds:Transforms><ds:Transform Algorithm=\"{ENVELOPED}\"></ds:Transform><ds:Transform Algorithm=\"{EXC_C14N}\"></ds:Transform></ds:Transforms><ds:DigestMethod Algorithm=\"{SHA256}\"></ds:DigestMethod><ds:DigestValue>{digest_b64}</ds:DigestValue></ds:Reference></ds:SignedInfo>"
    )
}

/// Sign `xml` with an enveloped signature, the last child of its root element.
pub fn sign_enveloped(xml: &str, key: &XmlSigningKey) -> Result<String, XmlSigError> {
    if xml.contains(DSIG) {
        return Err(XmlSigError::AlreadySigned);
    }
    // The verifier refuses them (they can change what a reader sees without changing
    // the canonical form); and the signature goes before the root's end tag, found last.
    if xml.contains("<!--") || xml.contains("<![CDATA[") {
        return Err(XmlSigError::Form(
            "the document holds a comment or CDATA, which the bench neither writes nor signs"
                .into(),
        ));
    }
    let canonical = c14n::canonicalize(xml.as_bytes(), Subset::Document)?;
    let digest = STANDARD.encode(Sha256::digest(&canonical));
    let info = signed_info(&digest);
    let signature: p256::ecdsa::Signature = key.key.sign(info.as_bytes());
    // XML Signature 1.1: the value is r ‖ s, each 32 bytes, not DER.
    let value = STANDARD.encode(signature.to_bytes());
    // Inserted with no white space of its own: the document without it (what the
    // enveloped-signature transform digests) is then exactly the one digested here.
    let close = xml.trim_end().rfind("</").ok_or(XmlSigError::NoRoot)?;
    let element = format!(
        "<ds:Signature xmlns:ds=\"{DSIG}\">{info}<ds:SignatureValue>{value}</ds:SignatureValue><ds:KeyInfo><ds:KeyName>{}</ds:KeyName></ds:KeyInfo></ds:Signature>",
        key.key_id()
    );
    let mut signed = String::with_capacity(xml.len() + element.len());
    signed.push_str(&xml[..close]);
    signed.push_str(&element);
    signed.push_str(&xml[close..]);
    Ok(signed)
}

/// Verify the enveloped signature of `xml` against the P-256 public key `public_pem`:
/// the signature must be the bench's form exactly (no other algorithm, reference or
/// transform is accepted), its digest the document's, its value the key's.
pub fn verify_enveloped(xml: &[u8], public_pem: &str) -> Result<(), XmlSigError> {
    let key = p256::ecdsa::VerifyingKey::from_public_key_pem(public_pem)
        .map_err(|e| XmlSigError::BadKey(e.to_string()))?;
    let key_name = {
        let der = key
            .to_public_key_der()
            .map_err(|e| XmlSigError::BadKey(e.to_string()))?;
        sha256_hex(der.as_bytes())[..16].to_string()
    };
    // A comment or CDATA changes what a reader sees (`000<!-- -->123` reads as `000` to
    // a DOM's first text child) while canonical form keeps only the text: the bench
    // writes neither, so a document with one is not the bench's.
    let has = |needle: &[u8]| xml.windows(needle.len()).any(|w| w == needle);
    if has(b"<!--") || has(b"<![CDATA[") {
        return Err(XmlSigError::Form(
            "the document holds a comment or CDATA, which the bench never writes".into(),
        ));
    }
    let signature = match c14n::canonicalize(
        xml,
        Subset::Element {
            namespace: DSIG,
            local: "Signature",
        },
    ) {
        Ok(s) => String::from_utf8(s).map_err(|e| XmlSigError::Form(e.to_string()))?,
        Err(C14nError::NoSuchElement(_)) => return Err(XmlSigError::Unsigned),
        Err(e) => return Err(e.into()),
    };
    // The whole Signature must be the bench's form, nothing added inside it (an Object,
    // a second Signature, a reference), its value and key name read from it.
    let digest = between(&signature, "<ds:DigestValue>", "</ds:DigestValue>")
        .ok_or_else(|| XmlSigError::Form("SignedInfo has no DigestValue".into()))?;
    let head = format!(
        "<ds:Signature xmlns:ds=\"{DSIG}\">{}<ds:SignatureValue>",
        signed_info_body(digest, "")
    );
    let tail = format!(
        "</ds:SignatureValue><ds:KeyInfo><ds:KeyName>{key_name}</ds:KeyName></ds:KeyInfo></ds:Signature>"
    );
    let value = signature
        .strip_prefix(&head)
        .and_then(|r| r.strip_suffix(&tail))
        .filter(|v| v.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)))
        .ok_or_else(|| {
            XmlSigError::Form(format!(
                "the Signature is not the bench's form for this key (exclusive c14n, ECDSA-SHA256, one enveloped reference to the whole document, SHA-256, key name {key_name}, nothing else)"
            ))
        })?;
    // One Signature, the last child of the root: the document's canonical form ends with
    // it and the root's end tag, and names the signature namespace nowhere else.
    let whole = String::from_utf8(c14n::canonicalize(xml, Subset::Document)?)
        .map_err(|e| XmlSigError::Form(e.to_string()))?;
    let after = whole
        .strip_suffix('>')
        .and_then(|w| w.rfind("</").map(|i| &whole[..i]))
        .filter(|before| before.ends_with(&signature));
    if after.is_none() || whole.matches(&format!("\"{DSIG}\"")).count() != 1 {
        return Err(XmlSigError::Form(
            "the document must carry exactly one Signature, as the last child of its root".into(),
        ));
    }
    let canonical = c14n::canonicalize(
        xml,
        Subset::DocumentWithout {
            namespace: DSIG,
            local: "Signature",
        },
    )?;
    if STANDARD.encode(Sha256::digest(&canonical)) != digest {
        return Err(XmlSigError::DigestMismatch);
    }
    let bytes = STANDARD
        .decode(value)
        .map_err(|e| XmlSigError::Form(format!("SignatureValue is not base64: {e}")))?;
    let signature = p256::ecdsa::Signature::from_slice(&bytes)
        .map_err(|_| XmlSigError::Form("SignatureValue is not 64 bytes of r and s".into()))?;
    key.verify(signed_info(digest).as_bytes(), &signature)
        .map_err(|_| XmlSigError::BadSignature)
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<d:r xmlns:d=\"urn:d\" xmlns:unused=\"urn:u\">\n  <d:x a=\"1\">caf\u{e9} &amp; co</d:x>\n  <d:empty/>\n</d:r>\n";

    fn key() -> XmlSigningKey {
        XmlSigningKey::derive(&SigningKey::from_bytes(&[7u8; 32]))
    }

    #[test]
    fn a_signed_document_verifies_and_a_changed_byte_does_not() {
        let k = key();
        let signed = sign_enveloped(DOC, &k).unwrap();
        assert!(signed.ends_with("</ds:Signature></d:r>\n"), "{signed}");
        verify_enveloped(signed.as_bytes(), &k.public_key_pem()).unwrap();
        let changed = signed.replace(">caf\u{e9}", ">cafe");
        assert!(matches!(
            verify_enveloped(changed.as_bytes(), &k.public_key_pem()),
            Err(XmlSigError::DigestMismatch)
        ));
        // Formatting that canonical form removes does not matter.
        let reformatted = signed.replace("<d:empty/>", "<d:empty></d:empty>");
        verify_enveloped(reformatted.as_bytes(), &k.public_key_pem()).unwrap();
    }

    #[test]
    fn another_key_or_another_algorithm_is_refused() {
        let signed = sign_enveloped(DOC, &key()).unwrap();
        let other = XmlSigningKey::derive(&SigningKey::from_bytes(&[8u8; 32]));
        // Another key has another name: the Signature is not the bench's for it.
        assert!(matches!(
            verify_enveloped(signed.as_bytes(), &other.public_key_pem()),
            Err(XmlSigError::Form(_))
        ));
        // Named as the other key, the value still does not verify with it.
        let renamed = signed.replace(&key().key_id(), &other.key_id());
        assert!(matches!(
            verify_enveloped(renamed.as_bytes(), &other.public_key_pem()),
            Err(XmlSigError::BadSignature)
        ));
        let swapped = signed.replace("ecdsa-sha256", "ecdsa-sha1");
        assert!(matches!(
            verify_enveloped(swapped.as_bytes(), &key().public_key_pem()),
            Err(XmlSigError::Form(_))
        ));
        assert!(matches!(
            verify_enveloped(DOC.as_bytes(), &key().public_key_pem()),
            Err(XmlSigError::Unsigned)
        ));
        assert!(matches!(
            sign_enveloped(&signed, &key()),
            Err(XmlSigError::AlreadySigned)
        ));
    }

    /// What a reviewer tried: content hidden inside the Signature, a second Signature, a
    /// value in a comment, a Signature before the root, a key name changed, a comment
    /// inside a value. Each is refused though the digest of the rest may still match.
    #[test]
    fn additions_around_and_inside_the_signature_are_refused() {
        let k = key();
        let pem = k.public_key_pem();
        let signed = sign_enveloped(DOC, &k).unwrap();
        let sig_start = signed.find("<ds:Signature").unwrap();
        let sig_end = signed.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
        let signature = &signed[sig_start..sig_end];
        let attempts = [
            signed.replace(
                "</ds:KeyInfo>",
                "</ds:KeyInfo><ds:Object><d:x>FAKE</d:x></ds:Object>",
            ),
            signed.replace("</ds:KeyInfo>", &format!("</ds:KeyInfo>{signature}")),
            signed.replace(
                "<ds:SignatureValue>",
                "<!-- <ds:SignatureValue>AAAA</ds:SignatureValue> --><ds:SignatureValue>",
            ),
            signed.replace(signature, "").replace(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
                &format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{signature}"),
            ),
            signed.replace(&k.key_id(), "0000000000000000"),
            signed.replace("caf\u{e9}", "ca<!-- -->f\u{e9}"),
            signed.replace("</d:r>", "</d:r><d:r/>"),
            signed
                .replace(signature, "")
                .replace("<d:empty/>", &format!("<d:empty/>{signature}<d:late/>")),
        ];
        for (i, a) in attempts.iter().enumerate() {
            assert!(
                verify_enveloped(a.as_bytes(), &pem).is_err(),
                "attempt {i} verified:\n{a}"
            );
        }
        verify_enveloped(signed.as_bytes(), &pem).unwrap();
    }

    #[test]
    fn the_key_is_derived_the_same_each_time_and_differs_per_bench_key() {
        assert_eq!(key().public_key_pem(), key().public_key_pem());
        let other = XmlSigningKey::derive(&SigningKey::from_bytes(&[8u8; 32]));
        assert_ne!(key().key_id(), other.key_id());
        assert!(
            key()
                .public_key_pem()
                .starts_with("-----BEGIN PUBLIC KEY-----\n")
        );
    }
}
