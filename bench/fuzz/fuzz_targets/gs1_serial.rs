//! A barcode scanner's bytes (a GS1 element string) into a serial number: decoded or
//! refused, never a panic; a decoded serial is printable ASCII of at most 20 characters.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(serial) = meterbench_procedure::gs1::serial_of(text)
    {
        assert!(!serial.is_empty() && serial.len() <= 20);
        assert!(serial.chars().all(|c| c.is_ascii_graphic()));
    }
});
