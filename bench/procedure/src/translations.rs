//! Operator-facing texts of a data file in other languages. Procedures and fixtures are
//! written in English; the station panel shows a step's name, a seal's check or a
//! label's fields in the operator's language from the file's own
//! `translations: {de: {English text: German text}}`. Each English text must be one the
//! file holds, so a typo or a renamed step is an error at its line rather than a text
//! that silently stays English on the panel.

use crate::yaml::{DataError, Pos};
use serde::Serialize;
use serde_saphyr::Spanned;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// As written: language → English text → translation.
pub(crate) type RawTranslations = BTreeMap<String, Spanned<BTreeMap<String, Spanned<String>>>>;

/// Language → English text → translation; English itself is the file's own text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Translations(BTreeMap<String, BTreeMap<String, String>>);

impl Translations {
    /// Check the raw table against `texts`, the file's translatable texts (`what` names
    /// them in the error).
    pub(crate) fn check(
        file: &Path,
        raw: Option<&Spanned<RawTranslations>>,
        texts: &BTreeSet<&str>,
        what: &str,
    ) -> Result<Translations, DataError> {
        let Some(raw) = raw else {
            return Ok(Translations::default());
        };
        let mut out = BTreeMap::new();
        for (lang, table) in &raw.value {
            let at = Pos::of(table);
            if lang.len() < 2 || lang.len() > 3 || !lang.bytes().all(|b| b.is_ascii_lowercase()) {
                return Err(DataError::at(
                    file,
                    at,
                    format!(
                        "translations: `{lang}` is not a language code (ISO 639, lower case: de, fr, nl)"
                    ),
                ));
            }
            if lang == "en" {
                return Err(DataError::at(
                    file,
                    at,
                    "translations: the file's own texts are the English ones; give other languages only",
                ));
            }
            let mut texts_of_lang = BTreeMap::new();
            for (english, translated) in &table.value {
                let at = Pos::of(translated);
                if !texts.contains(english.as_str()) {
                    return Err(DataError::at(
                        file,
                        at,
                        format!(
                            "translations.{lang}: `{english}` is not a text of this file (translatable: {what})"
                        ),
                    ));
                }
                let t = translated.value.trim();
                if t.is_empty() {
                    return Err(DataError::at(
                        file,
                        at,
                        format!("translations.{lang}: the translation of `{english}` is empty"),
                    ));
                }
                texts_of_lang.insert(english.clone(), t.to_string());
            }
            out.insert(lang.clone(), texts_of_lang);
        }
        Ok(Translations(out))
    }

    /// The translation of `english` into `lang`, if the file gives one.
    pub fn get(&self, lang: &str, english: &str) -> Option<&str> {
        self.0.get(lang)?.get(english).map(String::as_str)
    }

    /// Both files' translations in one table (a procedure's and its fixture's); where
    /// both translate the same text, `self`'s wins.
    pub fn merged(&self, other: &Translations) -> Translations {
        let mut out = other.0.clone();
        for (lang, table) in &self.0 {
            out.entry(lang.clone()).or_default().extend(table.clone());
        }
        Translations(out)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Doc {
        translations: Option<Spanned<RawTranslations>>,
    }

    fn check(yaml: &str) -> Result<Translations, DataError> {
        let doc: Doc = serde_saphyr::from_str(yaml).unwrap();
        let texts: BTreeSet<&str> = ["Starting current", "No-load (creep)"].into();
        Translations::check(
            Path::new("p.yaml"),
            doc.translations.as_ref(),
            &texts,
            "step names",
        )
    }

    #[test]
    fn a_known_text_is_translated_and_an_unknown_one_is_an_error_at_its_line() {
        let t = check("translations:\n  de:\n    Starting current: Anlauf\n").unwrap();
        assert_eq!(t.get("de", "Starting current"), Some("Anlauf"));
        assert_eq!(t.get("de", "No-load (creep)"), None);
        assert_eq!(t.get("fr", "Starting current"), None);

        let e = check(
            "translations:\n  de:\n    Starting current: Anlauf\n    Startin current: Anlauf\n",
        )
        .unwrap_err();
        assert_eq!(e.pos.line, 4, "{e}");
        assert!(
            e.message
                .contains("`Startin current` is not a text of this file"),
            "{e}"
        );
    }

    #[test]
    fn refuses_english_odd_language_codes_and_empty_translations() {
        let e = check("translations:\n  en:\n    Starting current: Start\n").unwrap_err();
        assert!(e.message.contains("English"), "{e}");
        let e = check("translations:\n  German:\n    Starting current: Anlauf\n").unwrap_err();
        assert!(e.message.contains("not a language code"), "{e}");
        let e = check("translations:\n  de:\n    Starting current: \"  \"\n").unwrap_err();
        assert!(e.message.contains("is empty"), "{e}");
        assert!(check("{}").unwrap().is_empty());
    }

    #[test]
    fn merged_keeps_both_and_the_first_wins() {
        let a = check("translations:\n  de:\n    Starting current: Anlauf\n").unwrap();
        let b = check(
            "translations:\n  de:\n    Starting current: Start\n    No-load (creep): Leerlauf\n",
        )
        .unwrap();
        let m = a.merged(&b);
        assert_eq!(m.get("de", "Starting current"), Some("Anlauf"));
        assert_eq!(m.get("de", "No-load (creep)"), Some("Leerlauf"));
    }
}
