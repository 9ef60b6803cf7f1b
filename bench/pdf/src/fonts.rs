//! The fonts compiled into the binary: no system font lookup, so a certificate looks the
//! same (and has the same bytes) on every machine.
//!
//! - From `typst-assets` (feature `fonts`): Libertinus Serif (SIL OFL 1.1), New Computer
//!   Modern and its math font (GUST Font License), DejaVu Sans Mono (Bitstream Vera
//!   licence). Licence texts: the `NOTICE` file of the `typst-assets` crate.
//! - `bench/report/fonts/DejaVuSans.ttf` (Bitstream Vera licence, text beside it in
//!   `LICENSE-DejaVu.txt`): the sans face the HTML certificate and the plots use, and the
//!   fallback for symbols the serif lacks.

use std::sync::LazyLock;
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;

/// DejaVu Sans, shared with the plots of `meterbench-report`.
const DEJAVU_SANS: &[u8] = include_bytes!("../../report/fonts/DejaVuSans.ttf");

pub(crate) struct Fonts {
    pub book: LazyHash<FontBook>,
    pub fonts: Vec<Font>,
}

/// Parsed once per process; `Font` is reference-counted, so worlds share them.
pub(crate) static FONTS: LazyLock<Fonts> = LazyLock::new(|| {
    let fonts: Vec<Font> = typst_assets::fonts()
        .chain(std::iter::once(DEJAVU_SANS))
        .flat_map(|data| Font::iter(typst::foundations::Bytes::new(data)))
        .collect();
    Fonts {
        book: LazyHash::new(FontBook::from_fonts(&fonts)),
        fonts,
    }
});

/// Family names of the bundled fonts, sorted and deduplicated (for documentation and
/// tests: a template may name only these).
pub fn font_families() -> Vec<String> {
    let mut names: Vec<String> = FONTS
        .fonts
        .iter()
        .map(|f| f.info().family.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}
