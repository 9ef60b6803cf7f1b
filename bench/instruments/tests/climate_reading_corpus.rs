//! CI replays the `climate_reading` fuzz corpus (bench/fuzz/corpus/climate_reading)
//! as the fuzz target does: every input through the HMT330 reading and identity
//! parsers, parsed within the documented ranges or refused, never a panic.
use meterbench_instruments::AmbientReading;
use meterbench_instruments::climate::{
    HUMIDITY_RANGE_PERCENT_RH, Hmt330Identity, TEMPERATURE_RANGE_C, parse_identity, parse_reading,
};
use std::path::Path;

#[test]
fn climate_reading_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/climate_reading");
    let (mut n, mut readings, mut identities) = (0, 0, 0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&data);
        n += 1;
        if let Ok(r) = parse_reading(&text) {
            assert!(TEMPERATURE_RANGE_C.contains(&r.temperature_c), "{r:?}");
            assert!(
                r.humidity_percent_rh
                    .is_none_or(|h| HUMIDITY_RANGE_PERCENT_RH.contains(&h)),
                "{r:?}"
            );
            readings += 1;
        }
        if let Ok(id) = parse_identity(&text) {
            assert!(
                !id.model.is_empty() && !id.serial_number.is_empty() && !id.firmware.is_empty()
            );
            identities += 1;
        }
    }
    assert!(n >= 5, "the corpus has {n} inputs");
    assert!(
        readings >= 2 && identities >= 1,
        "{readings} readings, {identities} identities"
    );

    let seed = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    assert_eq!(
        parse_reading(&seed("seed-default-form")),
        Ok(AmbientReading {
            temperature_c: 31.1,
            humidity_percent_rh: Some(98.4)
        })
    );
    assert_eq!(
        parse_identity(&seed("seed-info")),
        Ok(Hmt330Identity {
            model: "HMT330".into(),
            serial_number: "F1234567".into(),
            firmware: "5.16".into(),
        })
    );
}
