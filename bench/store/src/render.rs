//! `audit.html` from `templates/audit.html.j2` (minijinja).

use crate::StoreError;
use crate::audit::AuditContext;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use std::path::Path;

pub const AUDIT_TEMPLATE: &str = "audit.html.j2";
/// The copy of `templates/audit.html.j2` compiled in, used when no templates folder
/// with the file is given.
pub const EMBEDDED_AUDIT_TEMPLATE: &str = include_str!("../../../templates/audit.html.j2");

/// Render the audit report; the template comes from `templates_dir` when the file is
/// there (a lab can restyle it without a rebuild), else from the built-in copy.
pub fn render_audit_html(
    ctx: &AuditContext,
    templates_dir: Option<&Path>,
) -> Result<String, StoreError> {
    let source = match templates_dir.map(|d| d.join(AUDIT_TEMPLATE)) {
        Some(p) if p.is_file() => std::fs::read_to_string(&p).map_err(StoreError::io(&p))?,
        _ => EMBEDDED_AUDIT_TEMPLATE.to_string(),
    };
    let err = |e: minijinja::Error| StoreError::Template {
        name: AUDIT_TEMPLATE.to_string(),
        message: format!("{e:#}"),
    };
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    // Fixed-precision numbers: `x|fixed(3)`; `none` prints as an en dash.
    env.add_filter("fixed", |v: Option<f64>, digits: Option<usize>| -> String {
        match v {
            Some(x) if x.is_finite() => format!("{:.*}", digits.unwrap_or(3), x),
            _ => "–".to_string(),
        }
    });
    // A fraction as a percentage: `0.987|pct` → `98.7 %`.
    env.add_filter("pct", |v: Option<f64>| -> String {
        match v {
            Some(x) if x.is_finite() => format!("{:.1} %", 100.0 * x),
            _ => "–".to_string(),
        }
    });
    env.add_template_owned(AUDIT_TEMPLATE, source)
        .map_err(err)?;
    env.get_template(AUDIT_TEMPLATE)
        .map_err(err)?
        .render(ctx)
        .map_err(err)
}
