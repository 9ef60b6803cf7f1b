//! A serial number from what a barcode scanner sends for a GS1 code (a DataMatrix or
//! GS1-128 label): an element string of application identifiers (AIs), variable-length
//! fields ended by the FNC1 separator, which scanners transmit as ASCII GS (0x1D),
//! often after a symbology identifier such as `]d2`. The serial number is AI (21).
//!
//! The lengths below are those of the GS1 General Specifications' table of element
//! strings with predefined length and of the common variable-length AIs (section 3.2
//! and 7.8 of the General Specifications) [U: from the specification's tables as
//! generally reproduced, not checked against the current edition]. An AI not listed
//! is refused rather than guessed.

/// The FNC1 separator as scanners transmit it.
pub const GS: char = '\u{1d}';

/// Symbology identifiers of the GS1 symbologies (ISO/IEC 15424), as a scanner may
/// prefix them.
const SYMBOLOGY_IDS: [&str; 5] = ["]C1", "]d2", "]Q3", "]e0", "]J1"];

/// (AI, data length) of element strings whose length is fixed.
const FIXED: &[(&str, usize)] = &[
    ("00", 18),
    ("01", 14),
    ("02", 14),
    ("03", 14),
    ("04", 16),
    ("11", 6),
    ("12", 6),
    ("13", 6),
    ("14", 6),
    ("15", 6),
    ("16", 6),
    ("17", 6),
    ("18", 6),
    ("19", 6),
    ("20", 2),
];

/// (AI, longest data) of variable-length element strings, ended by FNC1 or the end.
const VARIABLE: &[(&str, usize)] = &[
    ("10", 20),
    ("21", 20),
    ("22", 20),
    ("240", 30),
    ("241", 30),
    ("250", 30),
    ("251", 30),
    ("30", 8),
    ("37", 8),
    ("90", 30),
    ("91", 90),
    ("92", 90),
    ("93", 90),
    ("94", 90),
    ("95", 90),
    ("96", 90),
    ("97", 90),
    ("98", 90),
    ("99", 90),
];

/// Whether `text` is a GS1 element string as a scanner sends it (a separator or a
/// symbology identifier in it).
pub fn looks_like_gs1(text: &str) -> bool {
    text.contains(GS) || SYMBOLOGY_IDS.iter().any(|id| text.starts_with(id))
}

/// The serial number (AI 21) of a GS1 element string, or why there is none.
pub fn serial_of(text: &str) -> Result<String, String> {
    let mut rest = SYMBOLOGY_IDS
        .iter()
        .find_map(|id| text.strip_prefix(id))
        .unwrap_or(text);
    // A leading FNC1 (as some scanners send it) starts nothing.
    rest = rest.trim_start_matches(GS);
    let mut serial = None;
    while !rest.is_empty() {
        let at = text.len() - rest.len();
        if let Some((ai, len)) = FIXED.iter().find(|(ai, _)| rest.starts_with(ai)) {
            let data = rest[ai.len()..]
                .get(..*len)
                .ok_or_else(|| format!("GS1 ({ai}) at character {at} needs {len} characters"))?;
            if !data.chars().all(|c| c.is_ascii_digit()) {
                return Err(format!("GS1 ({ai}) at character {at} is not {len} digits"));
            }
            rest = rest[ai.len() + len..].trim_start_matches(GS);
        } else if let Some((ai, max)) = VARIABLE.iter().find(|(ai, _)| rest.starts_with(ai)) {
            let field = &rest[ai.len()..];
            let end = field.find(GS).unwrap_or(field.len());
            let data = &field[..end];
            if data.is_empty() || data.chars().count() > *max {
                return Err(format!(
                    "GS1 ({ai}) at character {at} holds {} characters; 1 to {max} are allowed",
                    data.chars().count()
                ));
            }
            if let Some(c) = data.chars().find(|c| !c.is_ascii_graphic()) {
                return Err(format!("GS1 ({ai}) at character {at} holds {c:?}"));
            }
            if *ai == "21" {
                serial = Some(data.to_string());
            }
            rest = field[end..].trim_start_matches(GS);
        } else {
            let ai: String = rest.chars().take(4).collect();
            return Err(format!(
                "no known GS1 application identifier at character {at} ({ai:?}…)"
            ));
        }
    }
    serial.ok_or_else(|| "the GS1 code holds no serial number (AI 21)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scanned_datamatrix_yields_its_serial() {
        // GTIN, then serial ended by FNC1, then expiry; with the DataMatrix identifier.
        let scanned = "]d20104012345678901\u{1d}21SIM-CPIM-000123\u{1d}17261231";
        assert!(looks_like_gs1(scanned));
        assert_eq!(serial_of(scanned), Ok("SIM-CPIM-000123".into()));
        // Serial last, no separator needed; no symbology identifier.
        assert_eq!(
            serial_of("010401234567890121CP123\u{1d}"),
            Ok("CP123".into())
        );
        assert_eq!(serial_of("\u{1d}21CP-9"), Ok("CP-9".into()));
    }

    #[test]
    fn what_is_not_a_serial_is_said() {
        assert_eq!(
            serial_of("]d2010401234567890117261231"),
            Err("the GS1 code holds no serial number (AI 21)".into())
        );
        assert!(serial_of("01123\u{1d}21X").unwrap_err().contains("(01)"));
        assert!(
            serial_of("\u{1d}8888")
                .unwrap_err()
                .contains("no known GS1 application identifier at character 1")
        );
        assert!(
            serial_of("21\u{1d}")
                .unwrap_err()
                .contains("holds 0 characters")
        );
        assert!(
            serial_of(&format!("21{}", "A".repeat(21)))
                .unwrap_err()
                .contains("1 to 20")
        );
        assert!(!looks_like_gs1("SIM-CPIM-000123"));
    }
}
