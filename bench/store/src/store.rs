//! The results store as a type with a backend: where it is ([`StoreLocation`]) and what
//! it does ([`Store`]). Both backends hold the same schema (`schema.sql`):
//!
//! - **embedded** (a folder): an SQLite index and Parquet files of samples and points,
//!   for one station, no server (see [`crate::layout`]);
//! - **PostgreSQL** (`postgres://…`): runs, instruments and points of many stations in
//!   one database; raw samples stay in the signed bundles.

use crate::audit::{
    AuditOptions, AuditReads, AuditSummary, indexed_point_groups, joined, read_point_files,
};
use crate::compact::CompactSummary;
use crate::index::{RunDetail, RunFilter, RunRow};
use crate::synth::SynthSummary;
use crate::{StoreError, index, pg};
use chrono::NaiveDate;
use meterbench_runner::record::RunRecord;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where a store is: a folder (embedded) or a PostgreSQL connection string.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Embedded(PathBuf),
    /// A `postgres://` or `postgresql://` URL (user, password, host or socket folder,
    /// port, database, as libpq takes them).
    Postgres(String),
}

impl StoreLocation {
    /// A URL of the PostgreSQL scheme is a shared store; anything else is a folder.
    pub fn parse(s: &str) -> StoreLocation {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            StoreLocation::Postgres(s.to_string())
        } else {
            StoreLocation::Embedded(PathBuf::from(s))
        }
    }

    /// The embedded store's folder.
    pub fn folder(&self) -> Option<&Path> {
        match self {
            StoreLocation::Embedded(p) => Some(p),
            StoreLocation::Postgres(_) => None,
        }
    }
}

/// For the command line: an empty value names nothing (an unset variable expanded in a
/// script), and is refused rather than taken for the current folder.
impl std::str::FromStr for StoreLocation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Err("empty: give a store folder or a postgres:// URL".to_string());
        }
        Ok(StoreLocation::parse(s))
    }
}

impl From<PathBuf> for StoreLocation {
    fn from(p: PathBuf) -> Self {
        StoreLocation::Embedded(p)
    }
}

impl From<&Path> for StoreLocation {
    fn from(p: &Path) -> Self {
        StoreLocation::Embedded(p.to_path_buf())
    }
}

/// Shown in messages and reports: a folder as it is, a URL without its password.
impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Embedded(p) => write!(f, "{}", p.display()),
            StoreLocation::Postgres(url) => f.write_str(&redact_password(url)),
        }
    }
}

impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreLocation({self})")
    }
}

/// `postgres://user:secret@host/db?password=secret` → `postgres://user:***@host/db?password=***`.
pub(crate) fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k == "password" => format!("{k}=***"),
                    _ => p.to_string(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

enum Backend {
    Embedded(PathBuf),
    Postgres(Box<pg::PgStore>),
}

/// An open results store.
pub struct Store {
    location: StoreLocation,
    backend: Backend,
}

impl Store {
    /// Open an existing store: an embedded store must have been made by a filing; a
    /// PostgreSQL database gets the schema (idempotently) when it lacks it.
    pub fn open(location: &StoreLocation) -> Result<Store, StoreError> {
        Store::connect(location, false)
    }

    /// Open a store, making an embedded one when its folder has none (filing does).
    pub fn create(location: &StoreLocation) -> Result<Store, StoreError> {
        Store::connect(location, true)
    }

    fn connect(location: &StoreLocation, create: bool) -> Result<Store, StoreError> {
        let backend = match location {
            StoreLocation::Embedded(dir) => {
                // Applies the schema, so that an older store gains new tables.
                index::open_index(dir, create)?;
                Backend::Embedded(dir.clone())
            }
            StoreLocation::Postgres(url) => Backend::Postgres(Box::new(pg::PgStore::connect(url)?)),
        };
        Ok(Store {
            location: location.clone(),
            backend,
        })
    }

    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    /// File a finished run: its row, instruments and accuracy points (and, in the
    /// embedded store, its samples and points as Parquet files). Filing the same run
    /// again replaces what the store had of it.
    pub fn ingest(&self, record: &RunRecord, bundle: &Path) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Embedded(dir) => index::ingest(dir, record, bundle),
            Backend::Postgres(pg) => pg.ingest(record, bundle),
        }
    }

    /// Runs matching `filter`, oldest first (by start time, then run id).
    pub fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRow>, StoreError> {
        match &self.backend {
            Backend::Embedded(dir) => index::list_runs(dir, filter),
            Backend::Postgres(pg) => pg.list_runs(filter),
        }
    }

    /// Everything the store holds about `run_id`, or `None` when it has no such run.
    pub fn show_run(&self, run_id: &str) -> Result<Option<RunDetail>, StoreError> {
        match &self.backend {
            Backend::Embedded(dir) => index::show_run(dir, run_id),
            Backend::Postgres(pg) => pg.show_run(run_id),
        }
    }

    /// The audit over `opts.from..=opts.to`, written into `out_dir`.
    pub fn audit(&self, opts: &AuditOptions, out_dir: &Path) -> Result<AuditSummary, StoreError> {
        crate::audit::audit_with(self, opts, out_dir)
    }

    /// Merge the embedded store's per-run Parquet files of days before `before`. A
    /// PostgreSQL store has no such files.
    pub fn compact(&self, before: NaiveDate) -> Result<CompactSummary, StoreError> {
        match &self.backend {
            Backend::Embedded(dir) => crate::compact::compact(dir, before),
            Backend::Postgres(_) => Err(StoreError::Argument(format!(
                "{}: a PostgreSQL store keeps its points in tables; compaction merges the \
                 Parquet files of an embedded store",
                self.location
            ))),
        }
    }

    /// Fill the store with `n` synthetic runs (benchmarks, tests).
    pub fn synthesize(&self, n: usize, seed: u64) -> Result<SynthSummary, StoreError> {
        match &self.backend {
            Backend::Embedded(dir) => crate::synth::synthesize_embedded(dir, n, seed),
            Backend::Postgres(pg) => crate::synth::synthesize_into(pg, n, seed),
        }
    }

    /// The runs dated `from..=to`, counted for the audit's yield and problem list.
    /// What the audit reads of the store: the runs' tally, the load points' statistics
    /// with the control charts, and the instruments' uses, all dated `opts.from..=opts.to`.
    /// Three reads that need nothing of each other, side by side (a bench PC has a few
    /// cores; the points are most of the work); a PostgreSQL store reads them in one
    /// snapshot.
    pub(crate) fn audit_reads(&self, opts: &AuditOptions) -> Result<AuditReads, StoreError> {
        match &self.backend {
            Backend::Embedded(dir) => std::thread::scope(|s| {
                let files = s.spawn(|| read_point_files(dir, opts.from, opts.to));
                let uses = s.spawn(|| index::instrument_uses(dir, opts.from, opts.to));
                // The runs, naming their points files: only those points count (a file
                // of a run the index does not hold, or not yet, is left out).
                let tally = index::tally_runs(
                    dir,
                    opts.from,
                    opts.to,
                    crate::audit::RunTally::naming_points_files(),
                );
                let (files, uses) = (joined(files), joined(uses));
                let mut tally = tally?;
                let indexed = tally.points_files.take().unwrap_or_default();
                let groups = indexed_point_groups(files?, &indexed);
                Ok(AuditReads::of(tally, &groups, uses?, opts))
            }),
            Backend::Postgres(pg) => pg.audit_reads(opts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_postgres_and_the_rest_folders() {
        assert_eq!(
            StoreLocation::parse("postgres://lab@db/bench"),
            StoreLocation::Postgres("postgres://lab@db/bench".into())
        );
        assert!(matches!(
            StoreLocation::parse("postgresql://db/bench"),
            StoreLocation::Postgres(_)
        ));
        assert_eq!(
            StoreLocation::parse("reports/store"),
            StoreLocation::Embedded("reports/store".into())
        );
        // A folder that happens to be called like the scheme stays a folder.
        assert!(matches!(
            StoreLocation::parse("postgres/store"),
            StoreLocation::Embedded(_)
        ));
    }

    #[test]
    fn an_empty_store_argument_is_refused() {
        assert!("".parse::<StoreLocation>().is_err());
        assert!("  ".parse::<StoreLocation>().is_err());
        assert!("store".parse::<StoreLocation>().is_ok());
    }

    #[test]
    fn passwords_never_reach_a_message() {
        let l = StoreLocation::parse("postgres://lab:s3cret@db.example:5433/bench?sslmode=disable");
        assert_eq!(
            l.to_string(),
            "postgres://lab:***@db.example:5433/bench?sslmode=disable"
        );
        assert!(!format!("{l:?}").contains("s3cret"));
        // An @ in the password: the last @ ends the user info.
        assert_eq!(
            redact_password("postgresql://a:p@ss@host/db"),
            "postgresql://a:***@host/db"
        );
        assert_eq!(redact_password("postgres://host/db"), "postgres://host/db");
        assert_eq!(
            redact_password("postgres:///db?host=/run/pg&password=s3cret&user=lab"),
            "postgres:///db?host=/run/pg&password=***&user=lab"
        );
        assert_eq!(
            redact_password("postgres://lab@host/db"),
            "postgres://lab@host/db"
        );
    }
}
