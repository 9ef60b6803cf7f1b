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
            DataError::at(&self.path, pos, self.with_tab_hint(pos, message))
        })
    }

    /// A tab where YAML wants spaces is reported by the parser as a structure error
    /// ("did not find expected key"); name the tab when the line has one before `pos`.
    fn with_tab_hint(&self, pos: Pos, message: String) -> String {
        let line = self.text.lines().nth(pos.line.saturating_sub(1) as usize);
        let indent_has_tab = line.is_some_and(|l| {
            l.chars()
                .take_while(|c| c.is_whitespace())
                .any(|c| c == '\t')
        });
        if indent_has_tab {
            format!("{message}: the line is indented with a tab (YAML indents with spaces only)")
        } else {
            message
        }
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
    if let Some(rest) = message.strip_prefix("budget breached: ") {
        // e.g. `Nodes { nodes: 250001 }`: an alias bomb, or a file far beyond any of ours.
        let what = rest.split(" at line ").next().unwrap_or(rest);
        return format!(
            "the file expands beyond what the bench reads ({what}); aliases that repeat each other?"
        );
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
