//! Shared helpers of the report tests: fixture records and the offline DCC validator.
#![allow(dead_code)]

use meterbench_runner::record::RunRecord;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// `record-pass.json` or `record-fail.json`: real records of the simulated bench with the
/// raw pulses cut to 50 per port (see tests/data/README.md).
pub fn record(name: &str) -> RunRecord {
    let path = data_dir().join(name);
    RunRecord::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The workspace's `templates/` directory.
pub fn templates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates")
}

/// What xmllint said about a document.
pub enum Validation {
    Valid,
    Invalid(String),
    /// xmllint is not installed; the caller skips.
    Skipped,
}

/// Validate `xml` against DCC 3.2.1 offline: the three schema files are copied from
/// tests/data/dcc-schema to a temporary directory and every `schemaLocation` is pointed
/// at the local copies, then `xmllint --nonet --schema` runs.
///
/// Without xmllint the test is skipped with a message, unless METERBENCH_REQUIRE_XMLLINT
/// is set (CI: `apt-get install -y libxml2-utils`), in which case it fails.
pub fn validate_dcc(xml: &str) -> Validation {
    if Command::new("xmllint").arg("--version").output().is_err() {
        if std::env::var_os("METERBENCH_REQUIRE_XMLLINT").is_some() {
            panic!(
                "xmllint is required (METERBENCH_REQUIRE_XMLLINT is set) but not installed: apt-get install -y libxml2-utils"
            );
        }
        eprintln!(
            "SKIP: xmllint not installed, DCC not validated against the XSD \
             (install it with `apt-get install -y libxml2-utils`)"
        );
        return Validation::Skipped;
    }
    let dir = tempfile::tempdir().unwrap();
    let schema_src = data_dir().join("dcc-schema");
    for name in [
        "dcc-3.2.1.xsd",
        "SI_Format-2.1.0.xsd",
        "xmldsig-core-schema.xsd",
    ] {
        let text = std::fs::read_to_string(schema_src.join(name)).unwrap();
        std::fs::write(dir.path().join(name), localise_schema_locations(&text)).unwrap();
    }
    let doc = dir.path().join("dcc.xml");
    std::fs::write(&doc, xml).unwrap();
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--nonet")
        .arg("--schema")
        .arg(dir.path().join("dcc-3.2.1.xsd"))
        .arg(&doc)
        .output()
        .unwrap();
    if out.status.success() {
        Validation::Valid
    } else {
        Validation::Invalid(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Point every `schemaLocation="…"` of an XSD at the local copy of the file it names
/// (the published DCC schema imports D-SI and xmldsig from ptb.de and w3.org).
pub fn localise_schema_locations(xsd: &str) -> String {
    const ATTR: &str = "schemaLocation=\"";
    let mut out = String::with_capacity(xsd.len());
    let mut rest = xsd;
    while let Some(i) = rest.find(ATTR) {
        let (head, tail) = rest.split_at(i + ATTR.len());
        out.push_str(head);
        let end = tail.find('"').expect("closing quote of schemaLocation");
        let location = &tail[..end];
        let local = if location.contains("SI_Format") {
            "SI_Format-2.1.0.xsd"
        } else if location.contains("xmldsig") {
            "xmldsig-core-schema.xsd"
        } else if location.contains("dcc") {
            "dcc-3.2.1.xsd"
        } else {
            location
        };
        out.push_str(local);
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}
