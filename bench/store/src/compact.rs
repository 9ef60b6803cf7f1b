//! Compaction: one Parquet file per partition instead of one per run.
//!
//! Ingest writes a small file per run; a Parquet file of 22 rows is mostly header and
//! footer, and reading it costs about as much as reading thousands of rows. Once a day
//! is over, [`compact`] merges its per-run files into `compacted.parquet` and removes
//! them. Readers (the audit, [`crate::show_run`]) take both kinds of file. A run
//! ingested again later gets its rows taken out of the compacted file and a per-run
//! file of its own (see [`remove_run_rows`]).
//!
//! A crash between writing `compacted.parquet` and removing the per-run files leaves
//! rows twice until the next `compact`, which removes the duplicates (a per-run file
//! always wins over the compacted rows of its run).

use crate::StoreError;
use crate::frames::{POINTS_SCHEMA, SAMPLES_SCHEMA, parquet_bytes, read_parquet};
use crate::layout::{
    COMPACTED_FILE, POINTS_DIR, SAMPLES_DIR, partition_dir, partitions_in_range, write_atomically,
};
use chrono::NaiveDate;
use polars_core::prelude::*;
use serde::Serialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// What [`compact`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CompactSummary {
    pub partitions: usize,
    pub files_merged: usize,
    pub rows: usize,
}

fn schema_of(kind: &str) -> &'static str {
    if kind == SAMPLES_DIR {
        SAMPLES_SCHEMA
    } else {
        POINTS_SCHEMA
    }
}

/// Rows of `df` whose run_id is not in `ids`.
fn without_runs(df: &DataFrame, ids: &HashSet<String>) -> PolarsResult<DataFrame> {
    let keep: BooleanChunked = df
        .column("run_id")?
        .str()?
        .iter()
        .map(|v| Some(!v.is_some_and(|v| ids.contains(v))))
        .collect();
    df.filter(&keep)
}

fn run_ids(df: &DataFrame) -> PolarsResult<HashSet<String>> {
    Ok(df
        .column("run_id")?
        .str()?
        .iter()
        .flatten()
        .map(str::to_string)
        .collect())
}

/// The per-run `.parquet` files of a partition (everything but the compacted file).
pub(crate) fn per_run_files(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(StoreError::io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "parquet")
                && p.file_name().is_some_and(|n| n != COMPACTED_FILE)
        })
        .collect();
    v.sort();
    Ok(v)
}

/// Merge the per-run files of one partition directory into its compacted file: those
/// named in `indexed` when given (a file whose run the index does not hold, left by a
/// filing under way or cut short, stays as it is: the audit does not count it).
pub(crate) fn compact_partition(
    dir: &Path,
    kind: &str,
    indexed: Option<&rustc_hash::FxHashSet<String>>,
) -> Result<(usize, usize), StoreError> {
    let mut files = per_run_files(dir)?;
    if let Some(indexed) = indexed {
        files.retain(|f| {
            f.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| indexed.contains(n))
        });
    }
    if files.is_empty() {
        return Ok((0, 0));
    }
    let what = format!("compacting {}", dir.display());
    let mut frames = Vec::with_capacity(files.len() + 1);
    let mut ids = HashSet::new();
    for f in &files {
        let df = read_parquet(f)?;
        ids.extend(run_ids(&df).map_err(StoreError::polars(&what))?);
        frames.push(df);
    }
    let compacted = dir.join(COMPACTED_FILE);
    if compacted.is_file() {
        let old = read_parquet(&compacted)?;
        let old = without_runs(&old, &ids).map_err(StoreError::polars(&what))?;
        frames.insert(0, old);
    }
    let mut all = frames.remove(0);
    for df in &frames {
        all.vstack_mut(df).map_err(StoreError::polars(&what))?;
    }
    all.rechunk_mut();
    let rows = all.height();
    let bytes = parquet_bytes(&mut all, schema_of(kind), &what)?;
    write_atomically(&compacted, &bytes)?;
    for f in &files {
        std::fs::remove_file(f).map_err(StoreError::io(f))?;
    }
    Ok((files.len(), rows))
}

/// Merge the per-run samples and points files of every partition dated before `before`
/// (the day still being written is left alone) into one `compacted.parquet` each.
pub(crate) fn compact(store: &Path, before: NaiveDate) -> Result<CompactSummary, StoreError> {
    let mut s = CompactSummary::default();
    let Some(last) = before.pred_opt() else {
        return Ok(s);
    };
    // Asked before the files are listed: a run filed meanwhile is merged next time.
    let indexed = crate::index::indexed_run_file_names(store, NaiveDate::MIN, last)?;
    for kind in [SAMPLES_DIR, POINTS_DIR] {
        for dir in partitions_in_range(store, kind, NaiveDate::MIN, last)? {
            let (files, rows) = compact_partition(&dir, kind, Some(&indexed))?;
            if files > 0 {
                s.partitions += 1;
                s.files_merged += files;
                s.rows += rows;
            }
        }
    }
    Ok(s)
}

/// Take a run out of a partition: its per-run file and its rows in the compacted file.
pub(crate) fn remove_run_rows(
    store: &Path,
    kind: &str,
    station: &str,
    date: NaiveDate,
    run_id: &str,
) -> Result<(), StoreError> {
    let per_run = crate::layout::run_file(store, kind, station, date, run_id);
    if per_run.is_file() {
        std::fs::remove_file(&per_run).map_err(StoreError::io(&per_run))?;
    }
    let compacted = partition_dir(store, kind, station, date).join(COMPACTED_FILE);
    if !compacted.is_file() {
        return Ok(());
    }
    let what = format!("removing run {run_id} from {}", compacted.display());
    let df = read_parquet(&compacted)?;
    let ids = HashSet::from([run_id.to_string()]);
    let mut rest = without_runs(&df, &ids).map_err(StoreError::polars(&what))?;
    if rest.height() == df.height() {
        return Ok(());
    }
    if rest.height() == 0 {
        return std::fs::remove_file(&compacted).map_err(StoreError::io(&compacted));
    }
    let bytes = parquet_bytes(&mut rest, schema_of(kind), &what)?;
    write_atomically(&compacted, &bytes)
}

/// The rows of `run_id` in a partition's compacted file, with the file, when there are any.
pub(crate) fn rows_in_compacted(
    store: &Path,
    kind: &str,
    station: &str,
    date: NaiveDate,
    run_id: &str,
) -> Result<Option<(PathBuf, DataFrame)>, StoreError> {
    let compacted = partition_dir(store, kind, station, date).join(COMPACTED_FILE);
    if !compacted.is_file() {
        return Ok(None);
    }
    let what = format!("reading {}", compacted.display());
    let df = read_parquet(&compacted)?;
    let keep: BooleanChunked = df
        .column("run_id")
        .and_then(|c| c.str().cloned())
        .map_err(StoreError::polars(&what))?
        .iter()
        .map(|v| Some(v == Some(run_id)))
        .collect();
    let mine = df.filter(&keep).map_err(StoreError::polars(&what))?;
    Ok((mine.height() > 0).then_some((compacted, mine)))
}
