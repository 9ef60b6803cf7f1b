//! Issuing a run's bundle: the canonical record, the documents made from it, a signed
//! manifest over every file, and an entry in the hash-chained issuance log.

use meterbench_runner::record::{Outcome, PortResult, RunRecord};
use meterbench_signing::{
    IssuanceFields, SigningKey, append_issuance, generate_key, key_id, load_signing_key,
    sign_bundle,
};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The results store a run is filed into unless told otherwise: `$METERBENCH_STORE`,
/// else `store/` inside the reports folder.
pub fn default_store_path(reports: &Path) -> PathBuf {
    std::env::var_os("METERBENCH_STORE")
        .map(PathBuf::from)
        .unwrap_or_else(|| reports.join("store"))
}

/// Where the bench's signing key lives unless told otherwise.
pub fn default_key_path() -> PathBuf {
    if let Some(p) = std::env::var_os("METERBENCH_SIGNING_KEY") {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("meterbench").join("signing-key.pem")
}

/// The public key file that sits beside a private key file.
pub fn public_key_path(private: &Path) -> PathBuf {
    let stem = private
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("signing-key");
    private.with_file_name(format!("{stem}.pub.pem"))
}

/// Load the signing key, creating one on first use (its id is printed so it can be published).
pub fn load_or_create_key(path: &Path) -> anyhow::Result<(SigningKey, bool)> {
    if path.exists() {
        return Ok((load_signing_key(path)?, false));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    Ok((generate_key(path, &public_key_path(path))?, true))
}

#[derive(Debug)]
pub struct Issued {
    pub bundle: PathBuf,
    pub key_id: String,
    pub manifest_sha256: String,
    pub log: PathBuf,
}

/// Write the documents of a finished run into its folder, sign the folder, log it.
pub fn issue(
    record: &RunRecord,
    bundle: &Path,
    key: &SigningKey,
    signer: &str,
    log: &Path,
) -> anyhow::Result<Issued> {
    // The record as signed: canonical JSON (keys sorted, no insignificant whitespace).
    let value = serde_json::to_value(record)?;
    std::fs::write(
        bundle.join("record.json"),
        format!("{}\n", serde_json::to_string(&value)?),
    )?;
    std::fs::write(
        bundle.join("summary.json"),
        format!("{}\n", serde_json::to_string(&summary(record))?),
    )?;
    std::fs::write(bundle.join("junit.xml"), junit(record))?;
    // Every DUT pulse timestamp and reference count, signed with the rest: an auditor
    // can recompute each point's error from the bundle alone.
    meterbench_store::write_samples_parquet(
        record,
        &bundle.join(meterbench_store::BUNDLE_SAMPLES_FILE),
    )?;
    documents(record, bundle, signer)?;
    let manifest = sign_bundle(bundle, key, signer)?;
    let fields = IssuanceFields::for_bundle(&record.run_id, bundle)?;
    append_issuance(log, &fields, key)?;
    Ok(Issued {
        bundle: bundle.to_path_buf(),
        key_id: key_id(&key.verifying_key()),
        manifest_sha256: manifest.sha256(),
        log: log.to_path_buf(),
    })
}

/// How a customer checks a bundle, printed on the certificate.
const HOW_TO_VERIFY: &str = "This certificate is one file of a signed bundle. Check every file and the signature:\n  meterbench verify BUNDLE_FOLDER\nor with OpenSSL alone:\n  openssl pkeyutl -verify -pubin -inkey signer.pub.pem -rawin -in MANIFEST.sha256 -sigfile MANIFEST.sig\n  then compare each line of MANIFEST.sha256 with: openssl dgst -sha256 -r FILE\nCompare the key id in MANIFEST.sha256 with the one the laboratory publishes.";

/// The certificate (HTML, PDF), the DCC XML and the plots.
fn documents(record: &RunRecord, bundle: &Path, signer: &str) -> anyhow::Result<()> {
    use meterbench_report::{CertificateContext, DccContext};
    let cert = CertificateContext::new(signer.to_string(), HOW_TO_VERIFY.to_string());
    std::fs::write(
        bundle.join("certificate.html"),
        meterbench_report::render_certificate_html(record, &cert)?,
    )?;
    let (context, files) = meterbench_report::certificate_pdf_parts(record, &cert)?;
    let source = meterbench_pdf::certificate_source(&context)?;
    std::fs::write(
        bundle.join("certificate.pdf"),
        meterbench_pdf::render_pdf(&source, &files)?,
    )?;
    let dcc = DccContext::new(signer.to_string(), "DE".to_string());
    std::fs::write(
        bundle.join("dcc.xml"),
        meterbench_report::render_dcc_xml(record, &dcc)?,
    )?;
    meterbench_report::render_plots(record, &bundle.join("plots"))?;
    Ok(())
}

/// The compact summary MES and CI systems ingest as it is.
pub fn summary(r: &RunRecord) -> serde_json::Value {
    let mut points = Vec::new();
    for s in &r.steps {
        for p in &s.ports {
            let (error, u, mpe, conformity) = match &p.result {
                Some(PortResult::Accuracy {
                    error_percent,
                    expanded_u_percent,
                    limit,
                    decision,
                    ..
                }) => (
                    Some(*error_percent),
                    Some(*expanded_u_percent),
                    Some(limit.mpe_percent),
                    serde_json::to_value(decision.conformity).ok(),
                ),
                Some(other) => (
                    None,
                    None,
                    None,
                    Some(if other.passed() { "pass" } else { "fail" }.into()),
                ),
                None => (None, None, None, None),
            };
            points.push(serde_json::json!({
                "step": s.name, "kind": s.kind, "port": p.port, "outcome": s.outcome,
                "error_percent": error, "expanded_u_percent": u, "mpe_percent": mpe, "conformity": conformity,
            }));
        }
    }
    serde_json::json!({
        "schema": "meterbench.summary/1",
        "run_id": r.run_id,
        "outcome": r.outcome,
        "reason": r.outcome_reason,
        "station": r.station.id,
        "dut": { "type": r.dut.device_type, "serial_number": r.dut.serial_number },
        "procedure": { "id": r.procedure.id, "version": r.procedure.version, "sha256": r.procedure.sha256 },
        "started_utc": r.started_utc,
        "finished_utc": r.finished_utc,
        "points": points,
    })
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// JUnit XML: one test case per step and port; FAIL is a failure, ERROR an error.
pub fn junit(r: &RunRecord) -> String {
    let mut cases = String::new();
    let (mut tests, mut failures, mut errors) = (0, 0, 0);
    for s in &r.steps {
        let ports: Vec<(String, Option<&PortResult>)> =
            if s.ports.iter().any(|p| p.result.is_some()) {
                s.ports
                    .iter()
                    .map(|p| (p.port.clone(), p.result.as_ref()))
                    .collect()
            } else {
                vec![("all".to_string(), None)]
            };
        for (port, result) in ports {
            tests += 1;
            let _ = write!(
                cases,
                "    <testcase classname=\"{}.{}\" name=\"{} [{}]\" time=\"{:.3}\">",
                xml(&r.dut.device_type),
                xml(&r.dut.serial_number),
                xml(&s.name),
                xml(&port),
                s.duration_s
            );
            let detail = match result {
                Some(PortResult::Accuracy {
                    error_percent,
                    expanded_u_percent,
                    limit,
                    ..
                }) => {
                    format!(
                        "error {error_percent:+.4} %, U(k=2) {expanded_u_percent:.4} %, MPE ±{} %",
                        limit.mpe_percent
                    )
                }
                _ => s.message.clone().unwrap_or_default(),
            };
            match (s.outcome, result) {
                (_, Some(res)) if !res.passed() => {
                    failures += 1;
                    let _ = write!(cases, "<failure message=\"{}\"/>", xml(&detail));
                }
                (Outcome::Error | Outcome::Aborted, _) => {
                    errors += 1;
                    let _ = write!(
                        cases,
                        "<error message=\"{}\"/>",
                        xml(s.message.as_deref().unwrap_or(""))
                    );
                }
                _ => {
                    let _ = write!(cases, "<system-out>{}</system-out>", xml(&detail));
                }
            }
            cases.push_str("</testcase>\n");
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"{} {}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" timestamp=\"{}\">\n{cases}  </testsuite>\n</testsuites>\n",
        xml(&r.procedure.id),
        xml(&r.run_id),
        xml(&r.started_utc),
    )
}
