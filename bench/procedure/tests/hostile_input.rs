//! Data files come from people and tools: no input may panic the loader, and every
//! rejection carries a position.

use meterbench_procedure::{Fixture, LoadedFile, Procedure, Station};
use proptest::prelude::*;
use std::path::Path;

fn repo_text(rel: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(rel),
    )
    .unwrap()
}

fn load_all(text: String) {
    let p = Path::new("hostile.yaml");
    let _ = Procedure::from_file(LoadedFile::from_text(p, text.clone()));
    let _ = Fixture::from_file(LoadedFile::from_text(p, text.clone()));
    let _ = Station::from_file(LoadedFile::from_text(p, text));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        load_all(text);
    }

    #[test]
    fn mutated_real_files_never_panic_and_errors_have_positions(
        which in 0usize..3,
        at in 0usize..4000,
        cut in 0usize..40,
        insert in "[-:{}\\[\\]&*!|>'\"#%@` a-z0-9\\n]{0,12}",
    ) {
        let rel = ["procedures/en50470-3-class-b.yaml", "fixtures/cpim1000.yaml", "hw/stations/sim.yaml"][which];
        let text = repo_text(rel);
        let mut at = at.min(text.len());
        while !text.is_char_boundary(at) { at -= 1; }
        let mut end = (at + cut).min(text.len());
        while !text.is_char_boundary(end) { end -= 1; }
        let mutated = format!("{}{}{}", &text[..at], insert, &text[end..]);
        let path = Path::new(rel);
        let result = match which {
            0 => Procedure::from_file(LoadedFile::from_text(path, mutated)).map(|_| ()),
            1 => Fixture::from_file(LoadedFile::from_text(path, mutated)).map(|_| ()),
            _ => Station::from_file(LoadedFile::from_text(path, mutated)).map(|_| ()),
        };
        if let Err(e) = result {
            prop_assert!(e.pos.line >= 1, "error without a line: {e}");
        }
    }
}

#[test]
fn alias_bombs_are_refused_by_the_input_budget() {
    // A billion-laughs style document must not expand without bound.
    let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        doc.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n",
            p = i - 1
        ));
    }
    let started = std::time::Instant::now();
    let r = Procedure::from_file(LoadedFile::from_text(Path::new("bomb.yaml"), doc));
    assert!(r.is_err());
    assert!(
        started.elapsed().as_secs() < 5,
        "took {:?}",
        started.elapsed()
    );
}
