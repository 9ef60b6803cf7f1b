//! CI replays the `xml_signature` fuzz corpus (bench/fuzz/corpus/xml_signature) as the
//! fuzz target does: canonicalized and verified, or refused, never a panic. With
//! `METERBENCH_WRITE_FUZZ_SEEDS=1` it first (re)writes the seeds: documents signed with
//! the target's key, one with a byte changed, and unsigned ones that exercise the
//! canonical form's namespace, reference and CDATA rules.
use meterbench_signing::SigningKey;
use meterbench_signing::c14n::{Subset, canonicalize};
use meterbench_signing::xmldsig::{XmlSigningKey, sign_enveloped, verify_enveloped};
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/xml_signature")
}

/// The key the fuzz target verifies with.
fn key() -> XmlSigningKey {
    XmlSigningKey::derive(&SigningKey::from_bytes(&[7; 32]))
}

const UNSIGNED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<dcc:r xmlns:dcc=\"https://ptb.de/dcc\" xmlns:si=\"https://ptb.de/si\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:schemaLocation=\"https://ptb.de/dcc x.xsd\" schemaVersion=\"3.2.1\">\n  <dcc:name><dcc:content lang=\"en\">A &amp; B &lt;x&gt; &#x41;&#65; \"q\"</dcc:content></dcc:name>\n  <si:real><si:value>1.5</si:value><si:unit>\\percent</si:unit></si:real>\n  <d xmlns=\"urn:d\"><e xmlns=\"\" a=\"x&#xA;y\"/><![CDATA[<raw> & ]]></d>\n  <!-- a comment -->\n</dcc:r>\n";

/// What the bench signs: no comment, no CDATA.
const PLAIN: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<dcc:r xmlns:dcc=\"https://ptb.de/dcc\" xmlns:si=\"https://ptb.de/si\">\n  <dcc:name><dcc:content lang=\"en\">A &amp; B &lt;x&gt; \"q\"</dcc:content></dcc:name>\n  <si:real><si:value>1.5</si:value><si:unit>\\percent</si:unit></si:real>\n  <d xmlns=\"urn:d\"><e xmlns=\"\" a=\"x&#xA;y\"/></d>\n</dcc:r>\n";

#[test]
fn xml_signature_corpus_replays() {
    if std::env::var_os("METERBENCH_WRITE_FUZZ_SEEDS").is_some() {
        let signed = sign_enveloped(PLAIN, &key()).unwrap();
        std::fs::create_dir_all(corpus()).unwrap();
        std::fs::write(corpus().join("seed-signed.xml"), &signed).unwrap();
        std::fs::write(
            corpus().join("seed-changed.xml"),
            signed.replacen("1.5", "1.6", 1),
        )
        .unwrap();
        std::fs::write(corpus().join("seed-unsigned.xml"), UNSIGNED).unwrap();
    }
    let pem = key().public_key_pem();
    let mut verified = 0;
    let mut n = 0;
    for entry in std::fs::read_dir(corpus()).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        n += 1;
        if let Ok(first) = canonicalize(&data, Subset::Document) {
            assert_eq!(canonicalize(&first, Subset::Document).ok(), Some(first));
        }
        if verify_enveloped(&data, &pem).is_ok() {
            verified += 1;
        }
    }
    assert!(n >= 3, "the corpus has {n} inputs");
    assert!(verified >= 1, "the signed seed verifies");
}
