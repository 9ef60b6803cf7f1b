//! PDF output for meterbench: Typst, used as a library, turns Typst source (written by
//! the minijinja templates `templates/certificate.typ.j2` and `templates/audit.typ.j2`)
//! into PDF bytes.
//!
//! - **Self-contained**: fonts are compiled in ([`font_families`]); no system fonts, no
//!   network. `#import "@preview/..."` fails with a clear error: Typst packages are
//!   never downloaded.
//! - **Deterministic**: the same source and files give the same bytes, on any machine
//!   and at any time. There is no clock (`datetime.today()` is an error); the PDF has no
//!   creation date unless the source sets one with `#set document(date: ...)`, and its
//!   document ID is derived from a SHA-256 of the inputs.
//! - **Findable errors**: a failed compile returns Typst's diagnostics with line and
//!   column in the generated source ([`PdfError::Compile`]).
//! - **Escaped**: [`typst_environment`] auto-escapes every value in `*.typ.j2` templates,
//!   so text from a run record cannot act as Typst markup or code.
//!
//! ```
//! let source = meterbench_pdf::render_template(
//!     "note.typ.j2",
//!     "#set page(width: 60mm, height: auto)\nSerial: *{{ serial }}*\n#image(\"dot.svg\", width: 5mm)\n",
//!     serde_json::json!({ "serial": "#panic(\"no\")" }),
//! )?;
//! let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><circle cx="2" cy="2" r="2"/></svg>"#;
//! let pdf = meterbench_pdf::render_pdf(&source, &[("dot.svg".into(), svg.to_vec())])?;
//! assert!(pdf.starts_with(b"%PDF-"));
//! # Ok::<(), meterbench_pdf::PdfError>(())
//! ```

mod error;
mod escape;
mod fonts;
mod world;

pub use error::{Diagnostic, PdfError, Severity};
pub use escape::{typst_environment, typst_escape, typst_str};
pub use fonts::font_families;

/// The Typst compiler version this crate renders with.
pub fn typst_version() -> &'static str {
    typst::utils::version().raw()
}

use serde::Serialize;
use sha2::{Digest, Sha256};
use typst::foundations::Smart;
use typst_layout::PagedDocument;
use world::BenchWorld;

/// File name of the certificate template, in a templates directory and in `templates/`.
pub const CERTIFICATE_TEMPLATE_NAME: &str = "certificate.typ.j2";
/// The certificate template as compiled into the binary (`templates/certificate.typ.j2`).
pub const CERTIFICATE_TEMPLATE: &str = include_str!("../../../templates/certificate.typ.j2");
/// File name of the audit report template.
pub const AUDIT_TEMPLATE_NAME: &str = "audit.typ.j2";
/// The audit template as compiled into the binary (`templates/audit.typ.j2`).
pub const AUDIT_TEMPLATE: &str = include_str!("../../../templates/audit.typ.j2");

/// A PDF and the warnings Typst gave while making it.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub pdf: Vec<u8>,
    pub warnings: Vec<Diagnostic>,
}

/// Compile Typst source to PDF bytes.
///
/// `files` is the document's file system: `("error.svg", bytes)` is what
/// `#image("error.svg")` in the source reads. Names are relative to the root (`/`),
/// may contain `/` for folders, and may not be `main.typ` (the source itself). `.typ`
/// files among them can be `#include`d or `#import`ed.
pub fn render_pdf(typst_source: &str, files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, PdfError> {
    compile_pdf(typst_source, files).map(|r| r.pdf)
}

/// [`render_pdf`], also returning Typst's warnings (an unknown font family, say).
pub fn compile_pdf(typst_source: &str, files: &[(String, Vec<u8>)]) -> Result<Rendered, PdfError> {
    let world = BenchWorld::new(typst_source, files)?;
    let result = compile(&world).and_then(|(document, warnings)| {
        typst_pdf::pdf(&document, &pdf_options(typst_source, files))
            .map(|pdf| Rendered { pdf, warnings })
            .map_err(|errors| PdfError::Export {
                diagnostics: world.diagnostics(&errors),
            })
    });
    forget_old_compilations();
    result
}

/// The text of the laid-out document, one string per page: the text runs in layout
/// order, separated by single spaces. It is what a reader of the PDF sees (minus
/// images), for tests and search; no layout information.
pub fn render_text(
    typst_source: &str,
    files: &[(String, Vec<u8>)],
) -> Result<Vec<String>, PdfError> {
    let world = BenchWorld::new(typst_source, files)?;
    let result = compile(&world).map(|(document, _)| {
        document
            .pages()
            .iter()
            .map(|page| {
                let mut runs = Vec::new();
                collect_text(&page.frame, &mut runs);
                runs.join(" ")
            })
            .collect()
    });
    forget_old_compilations();
    result
}

fn collect_text(frame: &typst::layout::Frame, out: &mut Vec<String>) {
    for (_, item) in frame.items() {
        match item {
            typst::layout::FrameItem::Group(g) => collect_text(&g.frame, out),
            typst::layout::FrameItem::Text(t) => out.push(t.text.to_string()),
            _ => {}
        }
    }
}

fn compile(world: &BenchWorld) -> Result<(PagedDocument, Vec<Diagnostic>), PdfError> {
    let warned = typst::compile::<PagedDocument>(world);
    let mut warnings = world.diagnostics(&warned.warnings);
    match warned.output {
        Ok(document) => Ok((document, warnings)),
        Err(errors) => {
            let mut diagnostics = world.diagnostics(&errors);
            diagnostics.append(&mut warnings);
            Err(PdfError::Compile { diagnostics })
        }
    }
}

/// Typst memoises across compilations; keep what the last few renders used (fonts,
/// layout of unchanged parts) and drop the rest, so a long-running process does not
/// grow without bound.
fn forget_old_compilations() {
    typst::comemo::evict(10);
}

/// Fixed metadata: no timestamp from the clock, a document ID from the inputs.
fn pdf_options(source: &str, files: &[(String, Vec<u8>)]) -> typst_pdf::PdfOptions {
    typst_pdf::PdfOptions {
        ident: Smart::Custom(input_digest(source, files)),
        creator: Smart::Custom(Some(format!(
            "meterbench-pdf {} (Typst {})",
            env!("CARGO_PKG_VERSION"),
            typst::utils::version().raw()
        ))),
        timestamp: None,
        ..Default::default()
    }
}

/// SHA-256 over the source and the files sorted by name, each length-prefixed.
fn input_digest(source: &str, files: &[(String, Vec<u8>)]) -> String {
    let mut h = Sha256::new();
    let mut part = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    part(source.as_bytes());
    let mut sorted: Vec<&(String, Vec<u8>)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, data) in sorted {
        part(name.as_bytes());
        part(data);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Render a Typst template with [`typst_environment`]: `name` decides auto-escaping
/// (`*.typ.j2` is escaped) and appears in error messages.
pub fn render_template<S: Serialize>(
    name: &str,
    template: &str,
    ctx: S,
) -> Result<String, PdfError> {
    typst_environment()
        .render_named_str(name, template, ctx)
        .map_err(|source| PdfError::Template {
            name: name.to_string(),
            source,
        })
}

/// The certificate as Typst source, from the embedded `templates/certificate.typ.j2`.
/// The context is documented at the top of that template.
pub fn certificate_source<S: Serialize>(ctx: S) -> Result<String, PdfError> {
    render_template(CERTIFICATE_TEMPLATE_NAME, CERTIFICATE_TEMPLATE, ctx)
}

/// The audit report as Typst source, from the embedded `templates/audit.typ.j2`.
pub fn audit_source<S: Serialize>(ctx: S) -> Result<String, PdfError> {
    render_template(AUDIT_TEMPLATE_NAME, AUDIT_TEMPLATE, ctx)
}
