//! The one error type of the report layer.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(
        "run {run_id} is still in progress: certificates are made from finished records only \
         (re-run the procedure or wait for it to end)"
    )]
    NotFinished { run_id: String },

    #[error("the run record cannot be rendered: {0}")]
    InvalidRecord(String),

    #[error("the render context is invalid: {0}")]
    InvalidContext(String),

    #[error("cannot read template {}: {source}", path.display())]
    TemplateRead {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("template {name}: {source:#}")]
    Template {
        name: String,
        source: minijinja::Error,
    },

    #[error("plot {what}: {message}")]
    Plot { what: String, message: String },

    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}
