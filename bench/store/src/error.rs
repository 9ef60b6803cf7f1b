use std::path::PathBuf;

/// Everything that can go wrong in the store and the audit. Messages name the file
/// and say what the user can do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Polars {
        what: String,
        #[source]
        source: polars_core::error::PolarsError,
    },
    #[error(
        "store index {path}: {source} (is another process writing to it, or is it not a meterbench store?)"
    )]
    Index {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "no store at {0}: it is made by the first run filed into it (`meterbench run`, or `meterbench runs ingest BUNDLE` for a bundle made elsewhere)"
    )]
    NoStore(PathBuf),
    #[error("run {run_id}: {message}")]
    Record { run_id: String, message: String },
    #[error("audit template {name}: {message}")]
    Template { name: String, message: String },
    #[error("plot {what}: {message}")]
    Plot { what: String, message: String },
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0}")]
    Argument(String),
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }

    pub(crate) fn polars(
        what: impl Into<String>,
    ) -> impl FnOnce(polars_core::error::PolarsError) -> StoreError {
        let what = what.into();
        move |source| StoreError::Polars { what, source }
    }

    pub(crate) fn index(path: impl Into<PathBuf>) -> impl FnOnce(rusqlite::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Index { path, source }
    }
}
