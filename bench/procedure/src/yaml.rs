//! YAML loading with input budgets and file:line:column diagnostics.

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};

/// Largest data file we accept; procedures and fixtures are a few kB.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// A position in a data file (1-based line and column; 0 when unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
}

impl Pos {
    pub(crate) fn of<T>(s: &serde_saphyr::Spanned<T>) -> Pos {
        Pos {
            line: s.referenced.line(),
            column: s.referenced.column(),
        }
    }
}

/// An error in a data file, always with where it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct DataError {
    pub file: PathBuf,
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.pos.line,
            self.pos.column,
            self.message
        )
    }
}

impl DataError {
    pub fn at(file: &Path, pos: Pos, message: impl Into<String>) -> DataError {
        DataError {
            file: file.to_path_buf(),
            pos,
            message: message.into(),
        }
    }
}

/// The bytes of a data file, kept for hashing into the run record.
#[derive(Debug, Clone)]
pub struct LoadedFile {
    pub path: PathBuf,
    pub text: String,
    pub sha256: String,
}

impl LoadedFile {
    pub fn read(path: &Path) -> Result<LoadedFile, DataError> {
        let at_start = |m: String| DataError::at(path, Pos { line: 1, column: 1 }, m);
        let meta = std::fs::metadata(path).map_err(|e| at_start(format!("cannot read: {e}")))?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(at_start(format!(
                "file is {} bytes; data files are limited to {MAX_FILE_BYTES}",
                meta.len()
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| at_start(format!("cannot read: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let offset = e.utf8_error().valid_up_to();
            let before = &e.as_bytes()[..offset];
            let line = before.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
            let column = (offset
                - before
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |p| p + 1)) as u64
                + 1;
            DataError::at(path, Pos { line, column }, "file is not valid UTF-8")
        })?;
        Ok(LoadedFile::from_text(path, text))
    }

    pub fn from_text(path: &Path, text: String) -> LoadedFile {
        let sha256 = hex::encode(Sha256::digest(text.as_bytes()));
        LoadedFile {
            path: path.to_path_buf(),
            text,
            sha256,
        }
    }

    /// Parse the raw serde model; syntax and schema errors keep their position.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, DataError> {
        let options = serde_saphyr::Options::default();
        serde_saphyr::from_str_with_options(&self.text, options).map_err(|e| {
            let pos = e
                .location()
                .map(|l| Pos {
                    line: l.line(),
                    column: l.column(),
                })
                .unwrap_or_default();
            let message = plain_words(&first_line(&e.without_snippet().to_string()));
            match self.tab_near(pos) {
                // The parser trips over a tab at the end of the line before it, or on
                // it; either way the fix is the tab.
                Some(tab) => DataError::at(
                    &self.path,
                    tab,
                    "the line is indented with a tab (YAML indents with spaces only)",
                ),
                None => DataError::at(&self.path, pos, message),
            }
        })
    }

    /// A tab in the indentation of the line of `pos` or the next one: where the
    /// parser's error comes from when a tab indents a line.
    fn tab_near(&self, pos: Pos) -> Option<Pos> {
        let first = pos.line.max(1) as usize - 1;
        self.text
            .lines()
            .enumerate()
            .skip(first)
            .take(2)
            .find_map(|(n, l)| {
                let indent: String = l.chars().take_while(|c| c.is_whitespace()).collect();
                indent.find('\t').map(|col| Pos {
                    line: n as u64 + 1,
                    column: col as u64 + 1,
                })
            })
    }
}

/// The parser's words for what a person fixes in the file.
fn plain_words(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(", set ").next().unwrap_or(rest);
        return format!("`{key}` is given twice in the same mapping (a key may appear once)");
    }
    if message.starts_with("non-finite float") {
        let value = message.split('`').nth(1).unwrap_or("");
        return format!("`{value}` is not a number; a finite number is needed here");
    }
    if message.starts_with("budget breached: ") {
        // An alias bomb, or a file far beyond any of ours.
        return "the file expands to more YAML than any data file of the bench holds (aliases that repeat each other?)".into();
    }
    for (ty, range) in [
        ("u8", "0 to 255"),
        ("u16", "0 to 65535"),
        ("u32", "0 to 4294967295"),
        ("u64", "0 to 18446744073709551615"),
    ] {
        if message.starts_with(&format!("invalid {ty}")) {
            return format!("a whole number is needed here (from {range})");
        }
    }
    if message == "recursion limit exceeded" {
        return "nested too deeply (no data file of the bench needs that many levels)".into();
    }
    message.to_string()
}

/// serde-saphyr appends the location to its message; we print it in front instead.
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or(message).trim();
    match line.rfind(" at line ") {
        Some(i) => line[..i].to_string(),
        None => line.to_string(),
    }
}
