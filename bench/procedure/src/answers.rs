//! Answers file: what an unattended station (or a barcode scanner feeding a file) answers
//! to the bench's operator prompts, by prompt key.
//!
//! ```yaml
//! schema: meterbench.answers/1
//! answers:
//!   serial_number: "CP6K-2026-000123"
//!   lcd.lrs_hash: "A3F09C4E"
//!   seal.power_plate: "yes"
//! ```

use crate::yaml::{DataError, LoadedFile, Pos};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::path::Path;

pub const ANSWERS_SCHEMA: &str = "meterbench.answers/1";

mod raw {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Answers {
        pub schema: Spanned<String>,
        pub answers: BTreeMap<String, Spanned<String>>,
    }
}

/// The answers of a file, each with where it is written.
#[derive(Debug, Clone)]
pub struct Answers {
    pub file: LoadedFile,
    entries: BTreeMap<String, (String, Pos)>,
}

impl Answers {
    pub fn load(path: &Path) -> Result<Answers, DataError> {
        Answers::from_file(LoadedFile::read(path)?)
    }

    pub fn from_file(file: LoadedFile) -> Result<Answers, DataError> {
        crate::kinds::refuse_another_kind(&file, "meterbench.answers", "an answers file")?;
        let raw: raw::Answers = file.parse()?;
        if raw.schema.value != ANSWERS_SCHEMA {
            return Err(DataError::at(
                &file.path,
                Pos::of(&raw.schema),
                format!("schema `{}` is not `{ANSWERS_SCHEMA}`", raw.schema.value),
            ));
        }
        let entries = raw
            .answers
            .into_iter()
            .map(|(k, v)| {
                let pos = Pos::of(&v);
                (k, (v.value, pos))
            })
            .collect();
        Ok(Answers { file, entries })
    }

    /// The answer to prompt `key` and where it is written.
    pub fn get(&self, key: &str) -> Option<(&str, Pos)> {
        self.entries.get(key).map(|(v, p)| (v.as_str(), *p))
    }

    /// Every key answered.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// An error about the answer to `key`, at its position (or the file's start).
    pub fn error(&self, key: &str, message: impl Into<String>) -> DataError {
        // An answer that is not there is missing from the `answers:` map.
        let answers_line = || {
            let line = self
                .file
                .text
                .lines()
                .position(|l| l.starts_with("answers:"))
                .map_or(1, |n| n as u64 + 1);
            Pos { line, column: 1 }
        };
        let pos = self.entries.get(key).map_or_else(answers_line, |e| e.1);
        DataError::at(&self.file.path, pos, message)
    }
}
