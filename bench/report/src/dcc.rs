//! The PTB Digital Calibration Certificate (DCC, schema 3.2.1, namespace
//! `https://ptb.de/dcc`, D-SI `https://ptb.de/si`), rendered from `templates/dcc.xml.j2`.

use crate::RenderError;
use crate::templates;
use crate::view::{self, View};
use meterbench_runner::record::RunRecord;
use serde::Serialize;
use std::path::PathBuf;

/// File name of the DCC template, in a templates directory and in `templates/`.
pub const DCC_TEMPLATE: &str = "dcc.xml.j2";
const EMBEDDED: &str = include_str!("../../../templates/dcc.xml.j2");

/// The DCC schema version the template writes.
pub const DCC_SCHEMA_VERSION: &str = "3.2.1";

/// The customer of the calibration. The run record holds no customer data.
#[derive(Debug, Clone, Serialize)]
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
    /// Directory holding `dcc.xml.j2`; when it or the file is missing the copy compiled
    /// into the binary is used.
    pub templates_dir: Option<PathBuf>,
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
            templates_dir: None,
            document: None,
        }
    }
}

#[derive(Serialize)]
struct Doc<'a> {
    r: &'a View,
    signer: String,
    signer_role: Option<String>,
    customer: Customer,
    laboratory_address: String,
    laboratory_code: Option<String>,
    country: &'a str,
    lang: &'a str,
    issue_date: Option<&'a str>,
    schema_version: &'static str,
    document: Option<EmbeddedDocument>,
}

#[derive(Serialize)]
struct EmbeddedDocument {
    file_name: String,
    base64: String,
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
    let customer = Customer {
        name: not_empty(&ctx.customer.name).unwrap_or_else(|| "not recorded".into()),
        address: not_empty(&ctx.customer.address).unwrap_or_else(|| "not recorded".into()),
        placeholder: ctx.customer.placeholder,
    };
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
    let doc = Doc {
        r: &v,
        signer,
        signer_role: ctx.signer_role.as_deref().and_then(not_empty),
        customer,
        laboratory_address,
        laboratory_code: ctx.laboratory_code.as_deref().and_then(not_empty),
        country,
        lang,
        issue_date: ctx.issue_date.as_deref(),
        schema_version: DCC_SCHEMA_VERSION,
        document: ctx.document.as_ref().map(|(name, bytes)| {
            use base64::Engine;
            EmbeddedDocument {
                file_name: name.clone(),
                base64: base64::engine::general_purpose::STANDARD.encode(bytes),
            }
        }),
    };
    let xml = templates::render(DCC_TEMPLATE, EMBEDDED, ctx.templates_dir.as_deref(), doc)?;
    Ok(xml)
}

/// The DCC's `notEmptyStringType`: no leading or trailing white space, not empty.
fn not_empty(s: &str) -> Option<String> {
    let t = s.split_whitespace().collect::<Vec<_>>().join(" ");
    (!t.is_empty()).then_some(t)
}
