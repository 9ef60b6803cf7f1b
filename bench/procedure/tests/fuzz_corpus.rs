//! CI replays the fuzz corpus (bench/fuzz/corpus/data_files) through every data-file
//! loader, as the fuzz target does: loaded or refused, never a panic; the seeds (the
//! repository's own files) load as what they are.
use meterbench_procedure::{
    Answers, AuditSettings, Fixture, LoadedFile, Procedure, SensorFixture, SensorProcedure, Station,
};
use std::path::Path;

#[test]
fn data_file_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/data_files");
    let mut loaded = 0;
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let Ok(text) = String::from_utf8(data) else {
            continue;
        };
        n += 1;
        let file = || LoadedFile::from_text(Path::new("corpus.yaml"), text.clone());
        loaded += [
            Procedure::from_file(file()).is_ok(),
            SensorProcedure::from_file(file()).is_ok(),
            Fixture::from_file(file()).is_ok(),
            SensorFixture::from_file(file()).is_ok(),
            Station::from_file(file()).is_ok(),
            Answers::from_file(file()).is_ok(),
            AuditSettings::from_file(file()).is_ok(),
        ]
        .iter()
        .filter(|ok| **ok)
        .count();
    }
    assert!(n >= 7, "corpus has {n} inputs");
    assert!(loaded >= 7, "every seed loads as its kind: {loaded} of {n}");
}

/// The GS1 corpus through the decoder, as the fuzz target does; the seeds are scans.
#[test]
fn gs1_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/gs1_serial");
    let mut serials = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        if let Ok(text) = std::str::from_utf8(&data)
            && let Ok(serial) = meterbench_procedure::gs1::serial_of(text)
        {
            assert!(serial.chars().all(|c| c.is_ascii_graphic()));
            serials += 1;
        }
    }
    assert!(serials >= 3, "the seeds are scans with a serial: {serials}");
}
