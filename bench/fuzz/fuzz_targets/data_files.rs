#![no_main]
//! Arbitrary text as a data file (procedure, sensor procedure, fixture, sensor fixture,
//! station, answers, audit settings): loaded or refused with a position, never a panic, whatever the
//! YAML (anchors, merge keys, deep nesting, huge numbers, NaN).
use libfuzzer_sys::fuzz_target;
use meterbench_procedure::{
    Answers, AuditSettings, Fixture, LoadedFile, Procedure, SensorFixture, SensorProcedure,
    Station,
};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = || LoadedFile::from_text(Path::new("fuzz.yaml"), text.to_string());
    let _ = Procedure::from_file(file());
    let _ = SensorProcedure::from_file(file());
    let _ = Fixture::from_file(file());
    let _ = SensorFixture::from_file(file());
    let _ = Station::from_file(file());
    let _ = Answers::from_file(file());
    let _ = AuditSettings::from_file(file());
});
