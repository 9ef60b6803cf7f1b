//! CI replays the `point_pack` fuzz corpus (bench/fuzz/corpus/point_pack) as the target
//! reads it (`meterbench_pgcopy::pack::check_pack`). With `METERBENCH_WRITE_FUZZ_SEEDS=1`
//! it first (re)writes the seeds: packs as a real server made them (tests/data).
use meterbench_pgcopy::pack::check_pack;
use std::path::PathBuf;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/point_pack")
}

#[test]
fn fuzz_corpus_replays() {
    if std::env::var_os("METERBENCH_WRITE_FUZZ_SEEDS").is_some() {
        std::fs::create_dir_all(corpus()).unwrap();
        let pack = include_bytes!("data/run.pack");
        std::fs::write(corpus().join("seed-run"), pack).unwrap();
        std::fs::write(corpus().join("seed-cut"), &pack[..pack.len() - 3]).unwrap();
    }
    let mut n = 0;
    for entry in std::fs::read_dir(corpus()).unwrap() {
        check_pack(&std::fs::read(entry.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n >= 2, "{n} inputs in {}", corpus().display());
}
