//! The PTB Digital Calibration Certificate (DCC, schema 3.2.1, namespace
//! `https://ptb.de/dcc`, D-SI `https://ptb.de/si`), written with an XML writer
//! (quick-xml) rather than a text template: every value is escaped by the writer.

mod document;
mod xml;

use crate::RenderError;
use crate::view;
use meterbench_runner::record::RunRecord;

/// The DCC schema version the writer writes.
pub const DCC_SCHEMA_VERSION: &str = "3.2.1";

/// The customer of the calibration. The run record holds no customer data.
#[derive(Debug, Clone)]
pub struct Customer {
    pub name: String,
    /// Postal address, free text.
    pub address: String,
    /// The entry is a stand-in, not a real customer; the DCC says so in a statement.
    pub placeholder: bool,
}

impl Customer {
    /// A stand-in that says what it is, for runs without an order behind them.
    pub fn placeholder() -> Self {
        Customer {
            name: "Customer not recorded".into(),
            address: "Not recorded: the run was started without a customer".into(),
            placeholder: true,
        }
    }
}

/// What the DCC needs beyond the run record.
#[derive(Debug, Clone)]
pub struct DccContext {
    /// The responsible person who signs (`respPerson`, main signer).
    pub signer: String,
    pub signer_role: Option<String>,
    pub customer: Customer,
    /// Postal address of the laboratory; the run record holds only its name.
    pub laboratory_address: Option<String>,
    /// Accreditation or laboratory code, when there is one.
    pub laboratory_code: Option<String>,
    /// ISO 3166-1 alpha-2 code of the country of the laboratory, e.g. `DE`.
    pub country_code: String,
    /// ISO 639-1 code of the language the DCC is written in (used and mandatory).
    pub language: String,
    /// Date of issue, `YYYY-MM-DD`; omitted when none (never taken from the clock).
    pub issue_date: Option<String>,
    /// The PDF certificate to embed (`dcc:document`): its file name and bytes.
    pub document: Option<(String, Vec<u8>)>,
}

impl DccContext {
    /// English DCC of a laboratory in `country_code`, customer a stated placeholder.
    pub fn new(signer: impl Into<String>, country_code: impl Into<String>) -> Self {
        DccContext {
            signer: signer.into(),
            signer_role: None,
            customer: Customer::placeholder(),
            laboratory_address: None,
            laboratory_code: None,
            country_code: country_code.into(),
            language: "en".into(),
            issue_date: None,
            document: None,
        }
    }
}

/// Render the DCC of a finished run.
pub fn render_dcc_xml(record: &RunRecord, ctx: &DccContext) -> Result<String, RenderError> {
    let country = ctx.country_code.as_str();
    if !(country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase())) {
        return Err(RenderError::InvalidContext(format!(
            "country code `{country}` is not ISO 3166-1 alpha-2 (two capital letters, e.g. DE)"
        )));
    }
    let lang = ctx.language.as_str();
    if !(lang.len() == 2 && lang.bytes().all(|b| b.is_ascii_lowercase())) {
        return Err(RenderError::InvalidContext(format!(
            "language `{lang}` is not ISO 639-1 (two small letters, e.g. en)"
        )));
    }
    if let Some(d) = &ctx.issue_date {
        view::check_date("issue date", d)?;
    }
    let signer = not_empty(&ctx.signer).ok_or_else(|| {
        RenderError::InvalidContext("the DCC needs the name of the person who signs it".into())
    })?;
    let v = view::build(record)?;
    let laboratory_address = ctx
        .laboratory_address
        .as_deref()
        .and_then(not_empty)
        .unwrap_or_else(|| {
            format!(
                "Address not recorded; station {} ({})",
                v.station.name, v.station.id
            )
        });
    let signer_role = ctx.signer_role.as_deref().and_then(not_empty);
    let laboratory_code = ctx.laboratory_code.as_deref().and_then(not_empty);
    let pdf = ctx.document.as_ref().map(|(name, bytes)| {
        use base64::Engine;
        (
            name.as_str(),
            base64::engine::general_purpose::STANDARD.encode(bytes),
        )
    });
    let doc = document::Doc {
        v: &v,
        lang,
        signer: &signer,
        signer_role: signer_role.as_deref(),
        customer_name: &ne(&ctx.customer.name),
        customer_address: &ne(&ctx.customer.address),
        customer_placeholder: ctx.customer.placeholder,
        laboratory_address: &laboratory_address,
        laboratory_code: laboratory_code.as_deref(),
        country,
        // As the certificate: the run's end date unless one is given.
        issue_date: Some(ctx.issue_date.clone().unwrap_or_else(|| {
            v.finished
                .as_ref()
                .map_or_else(|| v.started.date.clone(), |f| f.date.clone())
        })),
        schema_version: DCC_SCHEMA_VERSION,
        document: pdf.as_ref().map(|(name, b64)| (*name, b64.as_str())),
    };
    let mut x = xml::DccWriter::new(lang);
    document::write(&mut x, &doc);
    Ok(x.finish())
}

/// The DCC's `notEmptyStringType` where a value may be missing: collapsed, else
/// `not recorded`.
fn ne(s: &str) -> String {
    not_empty(s).unwrap_or_else(|| "not recorded".into())
}

/// The DCC's `notEmptyStringType`: no leading or trailing white space, not empty.
fn not_empty(s: &str) -> Option<String> {
    let t = s.split_whitespace().collect::<Vec<_>>().join(" ");
    (!t.is_empty()).then_some(t)
}
