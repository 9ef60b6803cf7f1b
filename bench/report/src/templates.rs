//! Template loading: the file in a templates directory when there is one (so a lab can
//! restyle its certificate without rebuilding), else the copy compiled into the binary.

use crate::RenderError;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Where a template came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateOrigin {
    /// Read at run time from this file.
    File(PathBuf),
    /// The copy of `templates/<name>` compiled into the binary.
    Embedded,
}

/// Which source a render with `templates_dir` would use for `name`.
pub fn template_origin(name: &str, templates_dir: Option<&Path>) -> TemplateOrigin {
    match templates_dir.map(|d| d.join(name)) {
        Some(p) if p.is_file() => TemplateOrigin::File(p),
        _ => TemplateOrigin::Embedded,
    }
}

/// Escaping for HTML. minijinja's HTML escaping also turns `/` into `&#x2f;`, which is
/// valid but makes `ILAC-G8:09/2019` unreadable in the page's source.
const MARKUP: AutoEscape = AutoEscape::Custom("markup");

fn escape_markup(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Render `name` with `ctx`. `.html.j2` templates are auto-escaped (`& < > " '`). XML is
/// not rendered from templates: the DCC has its own writer (`dcc`).
pub(crate) fn render<S: Serialize>(
    name: &str,
    embedded: &'static str,
    templates_dir: Option<&Path>,
    ctx: S,
) -> Result<String, RenderError> {
    let source = match template_origin(name, templates_dir) {
        TemplateOrigin::File(path) => std::fs::read_to_string(&path)
            .map_err(|source| RenderError::TemplateRead { path, source })?,
        TemplateOrigin::Embedded => embedded.to_string(),
    };
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    env.set_auto_escape_callback(|name| {
        let base = name.strip_suffix(".j2").unwrap_or(name);
        if base.ends_with(".html") || base.ends_with(".svg") {
            MARKUP
        } else {
            AutoEscape::None
        }
    });
    env.set_formatter(|out, state, value| {
        if state.auto_escape() == MARKUP && !value.is_safe() {
            out.write_str(&escape_markup(&value.to_string()))
                .map_err(minijinja::Error::from)
        } else {
            minijinja::escape_formatter(out, state, value)
        }
    });
    let err = |source| RenderError::Template {
        name: name.to_string(),
        source,
    };
    env.template_from_named_str(name, &source)
        .and_then(|t| t.render(ctx))
        .map_err(err)
}
