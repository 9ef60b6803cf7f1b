//! The human certificate: one self-contained HTML page (inline CSS, plots as inline SVG),
//! printable on A4, rendered from `templates/certificate.html.j2`.

use crate::RenderError;
use crate::plots;
use crate::templates;
use crate::view::{self, View};
use meterbench_runner::record::RunRecord;
use serde::Serialize;
use std::path::PathBuf;

/// File name of the certificate template, in a templates directory and in `templates/`.
pub const CERTIFICATE_TEMPLATE: &str = "certificate.html.j2";
const EMBEDDED: &str = include_str!("../../../templates/certificate.html.j2");

/// What the certificate needs beyond the run record.
#[derive(Debug, Clone)]
pub struct CertificateContext {
    /// The person who signs the certificate.
    pub signer: String,
    /// Their function, e.g. "Head of laboratory".
    pub signer_role: Option<String>,
    /// How a reader checks that this certificate belongs to the stored record and is
    /// unaltered (printed as given; line breaks are kept).
    pub how_to_verify: String,
    /// Postal address of the laboratory; the run record holds only its name.
    pub laboratory_address: Option<String>,
    /// Date of issue, `YYYY-MM-DD`; without it the end date of the run is printed.
    /// Never taken from the clock, so a re-render gives the same bytes.
    pub issue_date: Option<String>,
    /// Directory holding `certificate.html.j2`; when it or the file is missing the copy
    /// compiled into the binary is used.
    pub templates_dir: Option<PathBuf>,
    /// Draw the error-versus-current plot of each port into the page as inline SVG.
    pub embed_plots: bool,
}

impl CertificateContext {
    pub fn new(signer: impl Into<String>, how_to_verify: impl Into<String>) -> Self {
        CertificateContext {
            signer: signer.into(),
            signer_role: None,
            how_to_verify: how_to_verify.into(),
            laboratory_address: None,
            issue_date: None,
            templates_dir: None,
            embed_plots: true,
        }
    }
}

#[derive(Serialize)]
struct Page<'a> {
    r: &'a View,
    signer: &'a str,
    signer_role: Option<&'a str>,
    how_to_verify: &'a str,
    laboratory_address: Option<&'a str>,
    issue_date: String,
    plots: Vec<InlinePlot>,
}

#[derive(Serialize)]
struct InlinePlot {
    port: String,
    svg: String,
}

/// Render the certificate of a finished run as one HTML document.
pub fn render_certificate_html(
    record: &RunRecord,
    ctx: &CertificateContext,
) -> Result<String, RenderError> {
    if ctx.signer.trim().is_empty() {
        return Err(RenderError::InvalidContext(
            "the certificate needs the name of the person who signs it".into(),
        ));
    }
    if let Some(d) = &ctx.issue_date {
        view::check_date("issue date", d)?;
    }
    let v = view::build(record)?;
    let mut inline = Vec::new();
    if ctx.embed_plots {
        for port in &record.dut.ports {
            if let Some(svg) = plots::error_plot_svg(record, port)? {
                inline.push(InlinePlot {
                    port: port.clone(),
                    svg,
                });
            }
        }
    }
    let issue_date = issue_date(ctx, &v);
    let page = Page {
        r: &v,
        signer: ctx.signer.trim(),
        signer_role: ctx.signer_role.as_deref(),
        how_to_verify: &ctx.how_to_verify,
        laboratory_address: ctx.laboratory_address.as_deref(),
        issue_date,
        plots: inline,
    };
    templates::render(
        CERTIFICATE_TEMPLATE,
        EMBEDDED,
        ctx.templates_dir.as_deref(),
        page,
    )
}

/// Named files (plots) handed to the PDF renderer.
pub type PdfFiles = Vec<(String, Vec<u8>)>;

#[derive(Serialize)]
struct PdfPage<'a> {
    r: &'a View,
    signer: &'a str,
    signer_role: Option<&'a str>,
    how_to_verify: &'a str,
    laboratory_address: Option<&'a str>,
    issue_date: String,
    plots: Vec<PlotFile>,
}

#[derive(Serialize)]
struct PlotFile {
    port: String,
    file: String,
}

/// The certificate for the PDF path: the same view as the HTML, serialised for the Typst
/// template (`templates/certificate.typ.j2`), with each port's error plot as an SVG file
/// the PDF renderer is given by name.
pub fn certificate_pdf_parts(
    record: &RunRecord,
    ctx: &CertificateContext,
) -> Result<(serde_json::Value, PdfFiles), RenderError> {
    if ctx.signer.trim().is_empty() {
        return Err(RenderError::InvalidContext(
            "the certificate needs the name of the person who signs it".into(),
        ));
    }
    let v = view::build(record)?;
    let mut plots = Vec::new();
    let mut files = Vec::new();
    for port in &record.dut.ports {
        if let Some(svg) = plots::error_plot_svg(record, port)? {
            let file = format!("error-{port}.svg");
            files.push((file.clone(), svg.into_bytes()));
            plots.push(PlotFile {
                port: port.clone(),
                file,
            });
        }
    }
    let issue_date = issue_date(ctx, &v);
    let page = PdfPage {
        r: &v,
        signer: ctx.signer.trim(),
        signer_role: ctx.signer_role.as_deref(),
        how_to_verify: &ctx.how_to_verify,
        laboratory_address: ctx.laboratory_address.as_deref(),
        issue_date,
        plots,
    };
    let value =
        serde_json::to_value(&page).map_err(|e| RenderError::InvalidRecord(e.to_string()))?;
    Ok((value, files))
}

/// The date the certificate is issued: as given, else the day the run finished (or started).
fn issue_date(ctx: &CertificateContext, v: &view::View) -> String {
    ctx.issue_date.clone().unwrap_or_else(|| {
        v.finished
            .as_ref()
            .map_or_else(|| v.started.date.clone(), |f| f.date.clone())
    })
}
