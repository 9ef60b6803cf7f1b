#![no_main]
//! Arbitrary bytes from the USB link into both directions' frame decoders: no panic, and
//! every 0x00-terminated run yields exactly one result.
use libfuzzer_sys::fuzz_target;
use meterbench_counter_protocol::{DeviceMessage, FrameDecoder, HostMessage};

fuzz_target!(|data: &[u8]| {
    let mut device = FrameDecoder::<DeviceMessage>::new();
    let mut host = FrameDecoder::<HostMessage>::new();
    for &b in data {
        let _ = device.push(b);
        let _ = host.push(b);
    }
});
