//! Consumers of a finished run record. They read the record and never measure.
//!
//! - [`console`]: the results table printed at the end of a run;
//! - [`certificate`]: the human certificate (HTML, A4);
//! - [`dcc`]: the PTB Digital Calibration Certificate (DCC 3.2.1 XML);
//! - [`plots`]: error-versus-current and pulse-interval plots (PNG and SVG).
//!
//! Certificates and plots depend only on the record and the context passed in (no clock,
//! no environment), so rendering the same record twice gives the same bytes.

pub mod certificate;
pub mod console;
pub mod dcc;
mod error;
mod glyphs;
pub mod plots;
mod templates;
mod view;

pub use certificate::{CertificateContext, certificate_pdf_parts, render_certificate_html};
pub use dcc::{Customer, DccContext, render_dcc_xml};
pub use error::RenderError;
pub use plots::render_plots;
pub use templates::{TemplateOrigin, template_origin};
pub use view::{Rounded, round_result};
