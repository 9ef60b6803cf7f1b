#![no_main]
//! Arbitrary bytes from a climate transmitter's serial line (lossy UTF-8) into the
//! reading and identity parsers: no panic, and a reading the bench accepts has finite
//! values within the documented ranges, an identity no empty field.
use libfuzzer_sys::fuzz_target;
use meterbench_instruments::climate::{
    HUMIDITY_RANGE_PERCENT_RH, TEMPERATURE_RANGE_C, parse_identity, parse_reading,
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(r) = parse_reading(&text) {
        assert!(r.temperature_c.is_finite() && TEMPERATURE_RANGE_C.contains(&r.temperature_c));
        if let Some(h) = r.humidity_percent_rh {
            assert!(h.is_finite() && HUMIDITY_RANGE_PERCENT_RH.contains(&h));
        }
    }
    if let Ok(id) = parse_identity(&text) {
        assert!(!id.model.is_empty() && !id.serial_number.is_empty() && !id.firmware.is_empty());
    }
});
