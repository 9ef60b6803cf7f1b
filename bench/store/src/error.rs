use std::path::PathBuf;

/// Everything that can go wrong in the store and the audit. Messages name the file
/// and say what the user can do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    // Here and in Polars, Index and Json, the cause is said in the message and is no
    // `source` of the error: a `{:#}` (anyhow's chain) would say it twice.
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{what}: {cause}")]
    Polars {
        what: String,
        cause: polars_core::error::PolarsError,
    },
    #[error(
        "store index {path}: {cause} (is another process writing to it, or is it not a meterbench store?)"
    )]
    Index {
        path: PathBuf,
        cause: rusqlite::Error,
    },
    #[error(
        "no store at {}: it is made by the first run filed into it (`meterbench run`, or `meterbench runs ingest BUNDLE` for a bundle made elsewhere)",
        std::path::absolute(.0).unwrap_or_else(|_| .0.clone()).display()
    )]
    NoStore(PathBuf),
    #[error("PostgreSQL store {store}: {}{}", postgres_message(.error), reach_hint(.error))]
    Postgres {
        /// The URL without its password.
        store: String,
        /// Not a `#[source]`: the message has said it in PostgreSQL's words already.
        error: postgres::Error,
    },
    #[error(
        "PostgreSQL store {store}: the rows the server sent are not what was asked for: \
         {error} (is it a PostgreSQL server, or a proxy that changes what it forwards?)"
    )]
    BinaryCopy {
        /// The URL without its password.
        store: String,
        error: meterbench_pgcopy::CopyError,
    },
    #[error("run {run_id}: {message}")]
    Record { run_id: String, message: String },
    #[error("audit template {name}: {message}")]
    Template { name: String, message: String },
    #[error("plot {what}: {message}")]
    Plot { what: String, message: String },
    #[error("{path}: {cause}")]
    Json {
        path: PathBuf,
        cause: serde_json::Error,
    },
    #[error("{0}")]
    Argument(String),
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |cause| StoreError::Io { path, cause }
    }

    pub(crate) fn polars(
        what: impl Into<String>,
    ) -> impl FnOnce(polars_core::error::PolarsError) -> StoreError {
        let what = what.into();
        move |cause| StoreError::Polars { what, cause }
    }

    pub(crate) fn index(path: impl Into<PathBuf>) -> impl FnOnce(rusqlite::Error) -> StoreError {
        let path = path.into();
        move |cause| StoreError::Index { path, cause }
    }
}

/// What went wrong in PostgreSQL's own words: the server's message, detail and hint
/// when it answered, else the client's error and its cause (refused connection...).
/// `postgres::Error`'s Display alone says only "db error".
/// How to reach the server, for an error that did not come from it (a server that
/// answered was reached: its own message says what it refused).
fn reach_hint(e: &postgres::Error) -> &'static str {
    if e.as_db_error().is_some() {
        ""
    } else {
        " (is the server running and the URL right? \
         postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE, or ?host=/socket/folder)"
    }
}

fn postgres_message(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{}: {}", db.severity(), db.message());
        if let Some(d) = db.detail() {
            s.push_str(&format!(" ({d})"));
        }
        if let Some(h) = db.hint() {
            s.push_str(&format!("; hint: {h}"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !s.contains(&c_text) {
            s.push_str(&format!(": {c_text}"));
        }
        cause = c.source();
    }
    s
}
