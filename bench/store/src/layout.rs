//! Where things live in a store directory:
//!
//! ```text
//! <store>/index.sqlite                                        runs + instruments (schema.sql)
//! <store>/samples/station=<id>/date=<YYYY-MM-DD>/<run_id>.parquet   one row per DUT pulse
//! <store>/points/station=<id>/date=<YYYY-MM-DD>/<run_id>.parquet    one row per accuracy point and port
//! <store>/{samples,points}/station=<id>/date=<YYYY-MM-DD>/compacted.parquet
//!                                          the per-run files of a past day, merged (see `compact`)
//! ```
//!
//! The date is the UTC date the run started. Station ids and run ids become path
//! components, so anything but `[A-Za-z0-9._-]` is replaced by `_`.

use crate::StoreError;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use std::path::{Path, PathBuf};

pub const INDEX_FILE: &str = "index.sqlite";
pub const SAMPLES_DIR: &str = "samples";
pub const POINTS_DIR: &str = "points";
/// The file [`crate::compact`] merges a partition's per-run files into.
pub const COMPACTED_FILE: &str = "compacted.parquet";

/// A file or directory name made of safe characters only.
pub fn path_component(s: &str) -> String {
    let c: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match c.as_str() {
        "" | "." | ".." => format!("_{c}"),
        _ => c,
    }
}

/// `<store>/<kind>/station=<id>/date=<date>`
pub fn partition_dir(store: &Path, kind: &str, station: &str, date: NaiveDate) -> PathBuf {
    store
        .join(kind)
        .join(format!("station={}", path_component(station)))
        .join(format!("date={}", date.format("%Y-%m-%d")))
}

/// `<store>/<kind>/station=<id>/date=<date>/<run_id>.parquet`
pub fn run_file(store: &Path, kind: &str, station: &str, date: NaiveDate, run_id: &str) -> PathBuf {
    partition_dir(store, kind, station, date).join(format!("{}.parquet", path_component(run_id)))
}

/// Parse an RFC 3339 UTC time of a record.
pub(crate) fn parse_utc(run_id: &str, s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Record {
            run_id: run_id.to_string(),
            message: format!("time {s:?} is not RFC 3339: {e}"),
        })
}

/// The one text form of a time in the index: fixed width, so text order is time order
/// (SQLite compares the text; PostgreSQL parses it into TIMESTAMP WITH TIME ZONE).
pub(crate) fn canonical_utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The date directories of `<store>/<kind>` whose date lies in `from..=to`, all stations.
pub(crate) fn partitions_in_range(
    store: &Path,
    kind: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<PathBuf>, StoreError> {
    let root = store.join(kind);
    let mut out = Vec::new();
    if !root.is_dir() {
        return Ok(out);
    }
    for station in sorted_dirs(&root)? {
        let is_station = station
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("station="));
        if !is_station {
            continue;
        }
        for date_dir in sorted_dirs(&station)? {
            let date = date_dir
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("date="))
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
            if date.is_some_and(|d| d >= from && d <= to) {
                out.push(date_dir);
            }
        }
    }
    Ok(out)
}

/// The `.parquet` files in the partitions of `<store>/<kind>` within the range.
pub(crate) fn files_in_range(
    store: &Path,
    kind: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<PathBuf>, StoreError> {
    let mut files = Vec::new();
    for dir in partitions_in_range(store, kind, from, to)? {
        let mut here: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(StoreError::io(&dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "parquet") && p.is_file())
            .collect();
        here.sort();
        files.extend(here);
    }
    Ok(files)
}

fn sorted_dirs(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(StoreError::io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    Ok(v)
}

/// Write `bytes` to `path` through a temporary file in the same directory and a rename,
/// so a reader (or a crash) never sees half a file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).map_err(StoreError::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(StoreError::io(path))
}

/// `target` relative to the directory `base` (both absolute), for links in a report.
pub fn relative_path(base: &Path, target: &Path) -> PathBuf {
    let b: Vec<_> = base.components().collect();
    let t: Vec<_> = target.components().collect();
    let common = b.iter().zip(&t).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// An absolute form of `p` without touching the file system more than needed:
/// canonical when it exists, else joined to the current directory.
pub(crate) fn absolute(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_sanitised() {
        assert_eq!(path_component("sim-1"), "sim-1");
        assert_eq!(path_component("lab 2/a"), "lab_2_a");
        assert_eq!(path_component(".."), "_..");
    }

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_path(Path::new("/a/b/out"), Path::new("/a/reports/r1")),
            PathBuf::from("../../reports/r1")
        );
        assert_eq!(
            relative_path(Path::new("/a"), Path::new("/a/x")),
            PathBuf::from("x")
        );
    }

    #[test]
    fn canonical_times_sort_as_text() {
        let a = parse_utc("r", "2026-11-21T20:21:21.258443953+00:00").unwrap();
        let b = parse_utc("r", "2026-11-21T21:21:21+01:00").unwrap();
        assert_eq!(canonical_utc(a), "2026-11-21T20:21:21.258443Z");
        assert_eq!(canonical_utc(b), "2026-11-21T20:21:21.000000Z");
        assert!(canonical_utc(b) < canonical_utc(a));
    }
}
