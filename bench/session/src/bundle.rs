//! A run's signed bundle: the canonical record, the documents made from it (each a
//! [`BundleFile`]), a signed manifest over every file, and an entry in the hash-chained
//! issuance log.

use crate::outputs::Output;
use meterbench_runner::record::{Outcome, PortResult, RunRecord};
use meterbench_signing::xmldsig::{XML_PUBLIC_KEY_FILE, XmlSigningKey, sign_enveloped};
use meterbench_signing::{
    IssueError, Keyring, SIGNATURE_FILE, SigningKey, key_id, prepare_issuance_log, sign_and_append,
};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One file (or folder) of a bundle, made from the record before the bundle is signed.
pub trait BundleFile: Send + Sync {
    fn write(&self, record: &RunRecord, bundle: &Path) -> anyhow::Result<()>;
}

/// Writes `files` into `bundle`: they are independent, so a worker per core takes the
/// next one, in the order given (slowest first). As fast as a thread per file on a
/// bench's few cores, and lighter: only as many files' working memory (and malloc
/// arenas) at once as there are workers. The first failure in `files` order is returned.
fn write_files(
    files: &[Box<dyn BundleFile>],
    record: &RunRecord,
    bundle: &Path,
) -> anyhow::Result<()> {
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, files.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<anyhow::Result<()>>>> =
        files.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(file) = files.get(i) else { break };
                        let written = file.write(record, bundle);
                        *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(written);
                    }
                })
            })
            .collect();
        // Joined here, so that a writer's panic becomes an error below (its file has
        // no result) instead of unwinding through the run.
        for h in handles {
            let _ = h.join();
        }
    });
    results.into_iter().try_for_each(|r| {
        r.into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or_else(|| Err(anyhow::anyhow!("a bundle file's writer panicked")))
    })
}

/// The PDF certificate's file in a bundle (also embedded in the DCC).
const PDF_FILE: &str = "certificate.pdf";

/// The signed bundle as an output of a finished run.
pub struct Bundle {
    key: SigningKey,
    /// The keys the issuance log is verified with before each append.
    trust: Keyring,
    signer: String,
    log: PathBuf,
    /// The issuance log is a hash chain: one append at a time.
    log_lock: Mutex<()>,
    files: Vec<Box<dyn BundleFile>>,
    /// Written after `files`, from them (the DCC embeds the PDF).
    after: Vec<Box<dyn BundleFile>>,
}

impl Bundle {
    /// A bundle with the standard files: the canonical record, summary.json, junit.xml,
    /// samples.parquet, the certificate (HTML and PDF), the DCC and the plots.
    pub fn new(key: SigningKey, trust: Keyring, signer: String, log: PathBuf) -> Bundle {
        let key_id = key_id(&key.verifying_key());
        let xml_key = XmlSigningKey::derive(&key);
        let xml_key_id = xml_key.key_id();
        Bundle {
            signer: signer.clone(),
            trust,
            log,
            log_lock: Mutex::new(()),
            // Slowest first (see `write_files`): the PDF, a cold Typst compile on a
            // process's first bundle, then the plots and the samples.
            files: vec![
                Box::new(CertificatePdf {
                    signer: signer.clone(),
                    key_id: key_id.clone(),
                    xml_key_id: xml_key_id.clone(),
                }),
                Box::new(Plots),
                Box::new(Samples),
                Box::new(CertificateHtml {
                    signer: signer.clone(),
                    key_id,
                    xml_key_id,
                }),
                Box::new(CanonicalRecord),
                Box::new(Summary),
                Box::new(JUnit),
            ],
            after: vec![Box::new(Dcc { signer, xml_key })],
            key,
        }
    }

    /// One more file in every bundle (before signing).
    pub fn with_file(mut self, file: Box<dyn BundleFile>) -> Bundle {
        self.files.push(file);
        self
    }

    pub fn key_id(&self) -> String {
        key_id(&self.key.verifying_key())
    }

    /// Write the documents of a finished run into its folder, sign the folder, log it.
    ///
    /// Issuing is all or nothing: the log is first made ready to take the entry (it
    /// can be written, it verifies, a torn last line is repaired with a signed entry),
    /// so a log that cannot take one stops the issue before anything is signed; when
    /// the append itself fails after signing (a disk that fills meanwhile), the
    /// signature is withdrawn and the folder marked NOT-ISSUED: no bundle verifies that
    /// the log does not hold. The record stays; nothing re-issues such a bundle (yet): the
    /// device is measured again.
    pub fn issue(&self, record: &RunRecord, bundle: &Path) -> anyhow::Result<Issued> {
        // The log is a hash chain: one append (or repair) at a time.
        let one_at_a_time = || self.log_lock.lock().unwrap_or_else(|p| p.into_inner());
        let repairs = {
            let _log = one_at_a_time();
            prepare_issuance_log(&self.log, &self.key, &self.trust).map_err(|e| {
                anyhow::anyhow!(
                    "not issued: the issuance log {} cannot take an entry, so nothing was signed: {e}",
                    self.log.display()
                )
            })?
        };
        write_files(&self.files, record, bundle)?;
        write_files(&self.after, record, bundle)?;
        // Signed and appended under the log's lock, the bundle carrying the log's head:
        // a log cut after it contradicts the bundle its customer holds.
        let signed = {
            let _log = one_at_a_time();
            sign_and_append(
                &self.log,
                &self.key,
                &self.trust,
                &self.signer,
                &record.run_id,
                bundle,
            )
        };
        let manifest = match signed {
            Ok((manifest, _entry)) => manifest,
            Err(IssueError::NotSigned(e)) => anyhow::bail!(
                "not issued: the bundle could not be signed for the issuance log {}: {e}",
                self.log.display()
            ),
            Err(IssueError::SignedNotLogged(e)) => {
                let why = format!(
                    "the issuance log {} did not take this bundle's entry: {e}",
                    self.log.display()
                );
                withdraw(bundle, &why)?;
                anyhow::bail!(
                    "not issued: {why}; the signature was withdrawn and the folder marked {NOT_ISSUED_FILE} (the record is kept)"
                );
            }
        };
        Ok(Issued {
            bundle: bundle.to_path_buf(),
            key_id: self.key_id(),
            manifest_sha256: manifest.sha256(),
            log: self.log.clone(),
            repairs: repairs
                .iter()
                .map(|r| {
                    format!(
                        "its bytes moved to {}, the repair logged as entry {} ({})",
                        r.fields.bundle,
                        r.seq,
                        meterbench_signing::LOG_REPAIR_RUN_ID
                    )
                })
                .collect(),
        })
    }
}

/// What a bundle folder holds when its issue failed after signing.
pub const NOT_ISSUED_FILE: &str = "NOT-ISSUED.txt";

/// Take the signature back from a bundle the log did not take, and say why in it.
fn withdraw(bundle: &Path, why: &str) -> anyhow::Result<()> {
    let signature = bundle.join(SIGNATURE_FILE);
    match std::fs::remove_file(&signature) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!(
            "{why}; and its signature {} could not be withdrawn: {e}",
            signature.display()
        ),
    }
    // Best effort: the disk may be the very reason; without its signature the bundle
    // does not verify in any case.
    let _ = std::fs::write(
        bundle.join(NOT_ISSUED_FILE),
        format!(
            "This bundle was signed but not issued: {why}.\nIts signature was withdrawn, so it verifies as nothing. The run's record (record.json) is complete and kept for the laboratory; no command re-issues it: once the log can be written, measure the device again for a certificate.\n"
        ),
    );
    Ok(())
}

impl Output for Bundle {
    fn name(&self) -> &str {
        "bundle"
    }

    fn finished(&self, record: &RunRecord, folder: &Path) -> anyhow::Result<String> {
        let issued = self.issue(record, folder)?;
        let repaired = match issued.repairs.as_slice() {
            [] => String::new(),
            r => format!(
                "\nthe issuance log's torn last line was repaired ({})",
                r.join("; ")
            ),
        };
        // The keyring the station trusted, named: `verify` on its own looks beside the
        // bench's default key, which need not be the one that signed.
        let keyring = Path::new(&self.trust.origin);
        let keyring = if keyring.is_file() {
            format!(" --keyring {}", crate::shell_word(&self.trust.origin))
        } else {
            String::new()
        };
        Ok(format!(
            "certificate bundle: {}\nsigned by {} with key {} (its DCC with P-256 key {}); issuance log {}; check it with: meterbench verify {}{keyring}",
            issued.bundle.display(),
            self.signer,
            issued.key_id,
            XmlSigningKey::derive(&self.key).key_id(),
            issued.log.display(),
            crate::shell_word(&issued.bundle.display().to_string())
        ) + &repaired)
    }
}

/// The record as signed: canonical JSON (keys sorted, no insignificant whitespace).
struct CanonicalRecord;

impl BundleFile for CanonicalRecord {
    fn write(&self, record: &RunRecord, bundle: &Path) -> anyhow::Result<()> {
        let value = serde_json::to_value(record)?;
        std::fs::write(
            bundle.join("record.json"),
            format!("{}\n", serde_json::to_string(&value)?),
        )?;
        Ok(())
    }
}

/// summary.json, for MES and CI systems.
struct Summary;

impl BundleFile for Summary {
    fn write(&self, record: &RunRecord, bundle: &Path) -> anyhow::Result<()> {
        std::fs::write(
            bundle.join("summary.json"),
            format!("{}\n", serde_json::to_string(&summary(record))?),
        )?;
        Ok(())
    }
}

/// junit.xml, for CI systems.
struct JUnit;

impl BundleFile for JUnit {
    fn write(&self, record: &RunRecord, bundle: &Path) -> anyhow::Result<()> {
        std::fs::write(bundle.join("junit.xml"), junit(record)?)?;
        Ok(())
    }
}

/// Every DUT pulse timestamp and reference count: an auditor can recompute each point's
/// error from the bundle alone.
struct Samples;

impl BundleFile for Samples {
    fn write(&self, record: &RunRecord, bundle: &Path) -> anyhow::Result<()> {
        meterbench_store::write_samples_parquet(
            record,
            &bundle.join(meterbench_store::BUNDLE_SAMPLES_FILE),
        )?;
        Ok(())
    }
}

/// The certificate as HTML.
struct CertificateHtml {
    signer: String,
    /// The key that signs the bundle: printed on the certificate, so paper names the
    /// key its bundle must verify with.
    key_id: String,
    /// The key of the DCC's XML signature, printed for a reader of the DCC alone.
    xml_key_id: String,
}

impl BundleFile for CertificateHtml {
    fn write(&self, record: &RunRecord, bundle: &Path) -> anyhow::Result<()> {
        let cert = certificate_context(record, &self.signer, &self.key_id, &self.xml_key_id);
        std::fs::write(
            bundle.join("certificate.html"),
            meterbench_report::render_certificate_html(record, &cert)?,
        )?;
        Ok(())
    }
}

/// The certificate as PDF (Typst), with its plots.
struct CertificatePdf {
    signer: String,
    key_id: String,
    xml_key_id: String,
}

impl BundleFile for CertificatePdf {
    fn write(&self, record: &RunRecord, bundle: &Path) -> anyhow::Result<()> {
        let cert = certificate_context(record, &self.signer, &self.key_id, &self.xml_key_id);
        let (context, files) = meterbench_report::certificate_pdf_parts(record, &cert)?;
        let source = meterbench_pdf::certificate_source(&context)?;
        std::fs::write(
            bundle.join(PDF_FILE),
            meterbench_pdf::render_pdf(&source, &files)?,
        )?;
        Ok(())
    }
}

/// The Digital Calibration Certificate (XML) with the PDF certificate embedded, under an
/// enveloped XML signature, and the public key that signature verifies with.
struct Dcc {
    signer: String,
    xml_key: XmlSigningKey,
}

/// A DCC is a calibration certificate: a run that ended without a verdict (ERROR,
/// ABORTED) has no calibration result to state, and its test report is the PDF alone.
fn has_dcc(record: &RunRecord) -> bool {
    !matches!(record.outcome, Outcome::Error | Outcome::Aborted)
}

impl BundleFile for Dcc {
    fn write(&self, record: &RunRecord, bundle: &Path) -> anyhow::Result<()> {
        if !has_dcc(record) {
            return Ok(());
        }
        let (name, role) = signatory(record, &self.signer);
        let country = record.station.country.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "the run record names no country for the DCC: its station file {} predates `laboratory.country`",
                record.station.path
            )
        })?;
        let mut dcc = meterbench_report::DccContext::new(name, country);
        dcc.signer_role = role;
        dcc.laboratory_address =
            Some(record.station.laboratory_address.clone()).filter(|a| !a.trim().is_empty());
        if let Some(o) = &record.order {
            dcc.customer = meterbench_report::Customer {
                name: o.customer.clone(),
                address: o.contact.clone().unwrap_or_default(),
                placeholder: false,
            };
        }
        let pdf = bundle.join(PDF_FILE);
        dcc.document = Some((
            PDF_FILE.to_string(),
            std::fs::read(&pdf).map_err(|e| {
                anyhow::anyhow!(
                    "the DCC embeds {}, which cannot be read: {e}",
                    pdf.display()
                )
            })?,
        ));
        let xml = meterbench_report::render_dcc_xml(record, &dcc)?;
        let signed = sign_enveloped(&xml, &self.xml_key)?;
        std::fs::write(bundle.join("dcc.xml"), signed)?;
        std::fs::write(
            bundle.join(XML_PUBLIC_KEY_FILE),
            self.xml_key.public_key_pem(),
        )?;
        Ok(())
    }
}

/// The plots, PNG and SVG, in `plots/`.
struct Plots;

impl BundleFile for Plots {
    fn write(&self, record: &RunRecord, bundle: &Path) -> anyhow::Result<()> {
        meterbench_report::render_plots(record, &bundle.join("plots"))?;
        Ok(())
    }
}

fn certificate_context(
    record: &RunRecord,
    signer: &str,
    key_id: &str,
    xml_key_id: &str,
) -> meterbench_report::CertificateContext {
    let (name, role) = signatory(record, signer);
    let xml_key_id = has_dcc(record).then_some(xml_key_id);
    let mut c = meterbench_report::CertificateContext::new(
        name,
        how_to_verify(&record.run_id, key_id, xml_key_id),
    );
    c.signer_role = role;
    c.laboratory_address =
        Some(record.station.laboratory_address.clone()).filter(|a| !a.trim().is_empty());
    c
}

/// Who authorised the run's documents: its signatory, else (a station that lists none)
/// the laboratory and station, as `fallback` says.
fn signatory(record: &RunRecord, fallback: &str) -> (String, Option<String>) {
    match &record.signatory {
        Some(s) => (s.name.clone(), Some(s.role.clone())),
        None => (fallback.to_string(), None),
    }
}

#[derive(Debug)]
pub struct Issued {
    pub bundle: PathBuf,
    pub key_id: String,
    pub manifest_sha256: String,
    pub log: PathBuf,
    /// Repairs of the log made before this issue (a torn last line moved aside).
    pub repairs: Vec<String>,
}

/// How a customer checks a bundle, printed on the certificate with the run id (the
/// bundle folder's name) and the id of the key that signs it.
fn how_to_verify(run_id: &str, key_id: &str, xml_key_id: Option<&str>) -> String {
    let dcc = xml_key_id.map_or_else(String::new, |x| {
        format!(
            "\nThe DCC (dcc.xml) carries its own XML signature, by P-256 key id {x} (its public key dcc-signer.pub.pem is in the bundle):\n  xmlsec1 --verify --pubkey-pem dcc-signer.pub.pem dcc.xml\nand its ds:KeyName must be {x}."
        )
    });
    format!(
        "This document is one file of the signed bundle {run_id}, signed with key id {key_id}. Check every file and the signature:\n  meterbench verify {run_id}\nor with OpenSSL alone:\n  openssl pkeyutl -verify -pubin -inkey signer.pub.pem -rawin -in MANIFEST.sha256 -sigfile MANIFEST.sig\n  then compare each line of MANIFEST.sha256 with: openssl dgst -sha256 -r FILE\nThe key id in MANIFEST.sha256 must be {key_id}, and the laboratory must publish it as its own.{dcc}"
    )
}

/// The schema id summary.json carries; its JSON Schema is `docs/schemas/summary.schema.json`.
pub const SUMMARY_SCHEMA: &str = "meterbench.summary/2";

/// The numbers of one port's result as summary.json states them.
#[derive(Default)]
struct PointNumbers {
    error: Option<f64>,
    u: Option<f64>,
    k: Option<f64>,
    mpe: Option<f64>,
    conformity: Option<serde_json::Value>,
    limit_source: Option<String>,
}

fn point_numbers(result: &PortResult) -> PointNumbers {
    let conformity = |c: meterbench_metrology::Conformity| serde_json::to_value(c).ok();
    let pass_fail = |passed: bool| {
        Some(serde_json::Value::from(if passed {
            "pass"
        } else {
            "fail"
        }))
    };
    match result {
        PortResult::Accuracy {
            error_percent,
            expanded_u_percent,
            limit,
            decision,
            budget,
            ..
        } => PointNumbers {
            error: Some(*error_percent),
            u: Some(*expanded_u_percent),
            k: Some(budget.coverage_factor),
            mpe: Some(limit.mpe_percent),
            conformity: conformity(decision.conformity),
            limit_source: Some(limit.source.clone()),
        },
        // The register against the reference energy; a register that disagrees with the
        // pulses fails whatever its error.
        PortResult::Register {
            comparison,
            expanded_u_percent,
            limit,
            decision,
            consistent_with_pulses,
            ..
        } => PointNumbers {
            error: Some(comparison.error_vs_reference_percent),
            u: Some(*expanded_u_percent),
            k: None,
            mpe: Some(limit.mpe_percent),
            conformity: if *consistent_with_pulses {
                conformity(decision.conformity)
            } else {
                pass_fail(false)
            },
            limit_source: Some(limit.source.clone()),
        },
        // A sensor's readings at a fixed current: their mean error (none at 0 A, where
        // an error relative to the current has no meaning).
        PortResult::CurrentSensor {
            reference_a,
            mean_error_percent,
            expanded_u_percent,
            budget,
            limit_percent,
            limit_source,
            decision,
            passed,
            ..
        } => {
            let measured = *reference_a > 0.0;
            PointNumbers {
                error: measured.then_some(*mean_error_percent),
                u: measured.then_some(*expanded_u_percent),
                k: budget
                    .as_ref()
                    .filter(|_| measured)
                    .map(|b| b.coverage_factor),
                // Without current the limit is "reads 0 A", not a percentage.
                mpe: measured.then_some(*limit_percent),
                conformity: match decision {
                    Some(d) => conformity(d.conformity),
                    None => pass_fail(*passed),
                },
                limit_source: Some(limit_source.clone()),
            }
        }
        // A sensor's transition point: its error where located (a flip beyond the
        // bracket has none: it fails by the limit the bracket came from).
        PortResult::Transition {
            error_percent,
            expanded_u_percent,
            budget,
            limit_percent,
            limit_source,
            decision,
            passed,
            ..
        } => PointNumbers {
            error: *error_percent,
            u: *expanded_u_percent,
            k: budget
                .as_ref()
                .filter(|_| error_percent.is_some())
                .map(|b| b.coverage_factor),
            mpe: Some(*limit_percent),
            conformity: match decision {
                Some(d) if error_percent.is_some() => conformity(d.conformity),
                _ => pass_fail(*passed),
            },
            limit_source: Some(limit_source.clone()),
        },
        // The check stands by its largest difference (a failing one first).
        PortResult::LoadDifference {
            comparisons,
            limit_percent,
            limit_source,
            ..
        } => {
            let worst = meterbench_runner::record::LoadComparison::deciding(comparisons);
            PointNumbers {
                error: worst.map(|c| c.difference.difference_percent),
                u: worst.map(|c| c.difference.expanded_u_percent),
                k: worst.map(|c| c.difference.budget.coverage_factor),
                mpe: Some(*limit_percent),
                conformity: worst.and_then(|c| conformity(c.difference.decision.conformity)),
                limit_source: Some(limit_source.clone()),
            }
        }
        // Heads that saw no pulse are a bench fault: no statement about the meter.
        PortResult::PulseCheck { passed: false, .. } => PointNumbers::default(),
        other => PointNumbers {
            conformity: pass_fail(other.passed()),
            ..PointNumbers::default()
        },
    }
}

/// The outcome of one port of a step: its own result's, not the step's (a port that
/// passed in a step another port failed passed); a port without a result shares the
/// step's (ERROR, ABORTED), and heads that saw no pulses are an ERROR.
fn port_outcome(
    step: &meterbench_runner::record::StepRecord,
    result: Option<&PortResult>,
) -> Outcome {
    let outside = step.ambient.as_ref().is_some_and(|a| a.outside.is_some());
    match result {
        // In air outside the reference conditions nothing is stated of a passing port.
        Some(r) if outside && r.passed() => Outcome::NotDecidable,
        None => step.outcome,
        // Heads that see no pulses are a bench fault (a dark LED, a head off its LED), not
        // a verdict on the meter: as junit.xml says, an error.
        Some(PortResult::PulseCheck { passed: false, .. }) => Outcome::Error,
        Some(r) if r.no_statement() => Outcome::NotDecidable,
        Some(r) if r.passed() => Outcome::Pass,
        Some(_) => Outcome::Fail,
    }
}

/// The compact summary MES and CI systems ingest as it is: every port of every step with
/// its own outcome and, where the kind has them, its error, U, k, limit and conformity,
/// rounded as the certificate prints them. Its fields are documented by the JSON Schema
/// `docs/schemas/summary.schema.json`.
pub fn summary(r: &RunRecord) -> serde_json::Value {
    let mut points = Vec::new();
    for s in &r.steps {
        for p in &s.ports {
            let mut n = p.result.as_ref().map(point_numbers).unwrap_or_default();
            // A functional test in air outside the reference conditions states nothing.
            if s.ambient.as_ref().is_some_and(|a| a.outside.is_some())
                && matches!(
                    p.result,
                    Some(PortResult::Starting { .. } | PortResult::NoLoad { .. })
                )
            {
                n.conformity =
                    serde_json::to_value(meterbench_metrology::Conformity::NoStatement).ok();
            }
            // The numbers as the certificate and the DCC print them (EA-4/02): U to two
            // significant digits, the error to U's last digit; record.json keeps them whole.
            let (error, u) = match (n.error, n.u) {
                (Some(e), Some(u)) => {
                    let r = meterbench_report::round_result(e, u);
                    (r.plain.parse::<f64>().ok(), r.u.parse::<f64>().ok())
                }
                other => other,
            };
            points.push(serde_json::json!({
                "step": s.name, "kind": s.kind, "attempt": s.attempt, "port": p.port,
                "outcome": port_outcome(s, p.result.as_ref()),
                "step_outcome": s.outcome,
                "error_percent": error, "expanded_u_percent": u,
                "coverage_factor": n.k.map(|k| (k * 100.0).round() / 100.0),
                "mpe_percent": n.mpe, "conformity": n.conformity,
                "limit_source": n.limit_source,
                "ambient": s.ambient.as_ref().map(|a| serde_json::json!({
                    "temperature_c": a.temperature_range_c().map(|(lo, hi)| [lo, hi]),
                    "humidity_percent_rh": a.humidity_range_percent_rh().map(|(lo, hi)| [lo, hi]),
                    "outside_reference_conditions": a.outside,
                })),
            }));
        }
    }
    serde_json::json!({
        "schema": SUMMARY_SCHEMA,
        "run_id": r.run_id,
        "session_id": r.session_id,
        "position": r.position.as_ref().map(|p| p.id),
        "amends": r.amends,
        "outcome": r.outcome,
        "reason": r.outcome_reason,
        "simulated": r.simulated,
        "document": match r.outcome {
            Outcome::Error | Outcome::Aborted => serde_json::Value::from("test_report"),
            _ => serde_json::to_value(r.procedure.document).unwrap_or_default(),
        },
        "station": r.station.id,
        "laboratory": r.station.laboratory,
        "customer": r.order.as_ref().map(|o| &o.customer),
        "signatory": r.signatory.as_ref().map(|s| serde_json::json!({"name": s.name, "role": s.role})),
        "dut": { "type": r.dut.device_type, "serial_number": r.dut.serial_number, "kind": r.dut.kind },
        "procedure": { "id": r.procedure.id, "version": r.procedure.version, "sha256": r.procedure.sha256 },
        "started_utc": r.started_utc,
        "finished_utc": r.finished_utc,
        "reference_conditions": r.ambient.as_ref().map(|a| serde_json::json!({
            "temperature_c": a.reference.temperature_c,
            "temperature_tolerance_c": a.reference.temperature_tolerance_c,
            "humidity_percent_rh": a.reference.humidity_percent_rh.map(|(lo, hi)| [lo, hi]),
            "outside": a.reference.outside,
            "source": a.reference.source,
        })),
        "points": points,
    })
}

/// JUnit XML (quick-junit's writer): one test case per step and port. A DUT out of its
/// limits is a failure; a bench fault (a step that ended ERROR: a dark LED, a lost
/// instrument) is an error on the ports it could not measure, while a port it measured
/// keeps its own result; a point with no statement of conformity is a failure of its own
/// type; a planned step the run did not reach is skipped. The suite carries the run's
/// time on the bench clock and its serial, station, procedure and verdict as properties.
pub fn junit(r: &RunRecord) -> anyhow::Result<String> {
    use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
    let seconds = |s: f64| std::time::Duration::from_secs_f64(s.max(0.0));
    let classname = format!("{}.{}", r.dut.device_type, r.dut.serial_number);
    let mut suite = TestSuite::new(format!("{} {}", r.procedure.id, r.run_id));
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&r.started_utc) {
        suite.set_timestamp(t);
    }
    suite.set_time(seconds(r.timing.bench_duration_s));
    let position = r.position.as_ref().map(|p| p.id.to_string());
    for (name, value) in [
        ("run_id", Some(r.run_id.clone())),
        ("serial_number", Some(r.dut.serial_number.clone())),
        ("device_type", Some(r.dut.device_type.clone())),
        ("station", Some(r.station.id.clone())),
        ("position", position),
        (
            "procedure",
            Some(format!("{} {}", r.procedure.id, r.procedure.version)),
        ),
        ("verdict", Some(r.outcome.word().to_string())),
        ("reason", r.outcome_reason.clone()),
        ("simulated", Some(r.simulated.to_string())),
    ] {
        if let Some(value) = value {
            suite.add_property(Property::new(name, value));
        }
    }
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
            let detail = match result {
                Some(PortResult::Accuracy {
                    error_percent,
                    expanded_u_percent,
                    limit,
                    ..
                }) => {
                    let r = meterbench_report::round_result(*error_percent, *expanded_u_percent);
                    format!(
                        "error {} %, U(k=2) {} %, MPE ±{} %",
                        r.signed, r.u, limit.mpe_percent
                    )
                }
                Some(PortResult::Transition {
                    error_percent: Some(e),
                    expanded_u_percent: Some(u),
                    limit_percent,
                    mu_a,
                    ..
                }) => {
                    let r = meterbench_report::round_result(*e, *u);
                    format!(
                        "error {} %, U(k=2) {} %, limit ±{limit_percent} % (transition at {mu_a:.4} A)",
                        r.signed, r.u
                    )
                }
                Some(PortResult::Transition {
                    problem: Some(p), ..
                }) => p.clone(),
                Some(PortResult::LoadDifference {
                    balanced_step,
                    comparisons,
                    limit_percent,
                    ..
                }) => {
                    let each: Vec<String> = comparisons
                        .iter()
                        .map(|c| {
                            format!(
                                "{} {:+.4} % (U {:.4} %)",
                                c.step,
                                c.difference.difference_percent,
                                c.difference.expanded_u_percent
                            )
                        })
                        .collect();
                    format!(
                        "difference from {balanced_step}: {}; limit ±{limit_percent} %",
                        each.join(", ")
                    )
                }
                _ => s.message.clone().unwrap_or_default(),
            };
            let bench_fault = matches!(
                s.outcome,
                Outcome::Error | Outcome::Aborted | Outcome::InProgress
            );
            let not_ok = |kind, ty: &str, message: String| {
                let mut st = TestCaseStatus::non_success(kind);
                st.set_type(ty);
                st.set_message(message);
                st
            };
            let step_message = || s.message.clone().unwrap_or_else(|| detail.clone());
            let status = match result {
                // No statement of conformity is no pass either: a failure of its own type.
                Some(res) if res.no_statement() => not_ok(
                    NonSuccessKind::Failure,
                    "not-decidable",
                    format!("not decidable at this uncertainty: {detail}"),
                ),
                // A scanning head that saw too few pulses is the bench's to fix (the
                // runner ends such a step ERROR), not a DUT out of its limits.
                Some(res @ PortResult::PulseCheck { .. }) if !res.passed() => {
                    not_ok(NonSuccessKind::Error, "bench-fault", step_message())
                }
                Some(res) if !res.passed() => {
                    not_ok(NonSuccessKind::Failure, "out-of-limits", detail.clone())
                }
                // Measured and within its limits, whatever became of the other ports.
                Some(_) => TestCaseStatus::success(),
                None if bench_fault => not_ok(
                    NonSuccessKind::Error,
                    if s.outcome == Outcome::Aborted {
                        "aborted"
                    } else {
                        "bench-fault"
                    },
                    step_message(),
                ),
                None if s.outcome == Outcome::Fail => {
                    not_ok(NonSuccessKind::Failure, "out-of-limits", detail.clone())
                }
                None => TestCaseStatus::success(),
            };
            let name = if s.attempt > 1 {
                format!("{} (attempt {})", s.name, s.attempt)
            } else {
                s.name.clone()
            };
            let mut case = TestCase::new(format!("{name} [{port}]"), status);
            case.set_classname(classname.clone());
            case.set_time(seconds(s.duration_s));
            if !detail.is_empty() {
                case.set_system_out(detail);
            }
            suite.add_test_case(case);
        }
    }
    // The steps the run was planned to make and did not reach.
    for name in &r.procedure.planned_steps {
        if r.steps.iter().any(|s| &s.name == name) {
            continue;
        }
        let mut status = TestCaseStatus::skipped();
        status.set_type("not-reached");
        status.set_message(format!(
            "not reached: the run ended {} before this step",
            r.outcome.word()
        ));
        let mut case = TestCase::new(format!("{name} [all]"), status);
        case.set_classname(classname.clone());
        suite.add_test_case(case);
    }
    let mut report = Report::new("meterbench");
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&r.started_utc) {
        report.set_timestamp(t);
    }
    report.set_time(seconds(r.timing.bench_duration_s));
    report.add_test_suite(suite);
    Ok(report.to_string()?)
}
