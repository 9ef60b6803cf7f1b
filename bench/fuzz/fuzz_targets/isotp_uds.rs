#![no_main]
//! Arbitrary CAN frames from a DUT: reassembled by the ISO-TP receiver, and answering a
//! UDS ReadDataByIdentifier request; refused, accepted or timed out, never a panic.
//! The input is a run of frames, each a length byte (0–8) and that many data bytes.
use libfuzzer_sys::fuzz_target;
use meterbench_can::isotp::Receiver;
use meterbench_can::{
    CanBus, CanError, CanFrame, CanId, IsoTpClient, IsoTpConfig, read_data_by_identifier,
};
use std::collections::VecDeque;
use std::time::Duration;

/// A bus that takes whatever is sent and hands out the fuzzer's frames, then fails.
struct Frames(VecDeque<CanFrame>);

impl CanBus for Frames {
    fn send(&mut self, _: &CanFrame) -> Result<(), CanError> {
        Ok(())
    }
    fn recv(&mut self, _: Duration) -> Result<Option<CanFrame>, CanError> {
        match self.0.pop_front() {
            Some(f) => Ok(Some(f)),
            None => Err(CanError::Adapter {
                adapter: "fuzz".into(),
                message: "no more frames".into(),
            }),
        }
    }
    fn describe(&self) -> String {
        "fuzz frames".into()
    }
}

fuzz_target!(|data: &[u8]| {
    let response = CanId::new(0x7E8, false).unwrap();
    let request = CanId::new(0x7E0, false).unwrap();
    let mut payloads: Vec<&[u8]> = Vec::new();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len % 9).min(tail.len());
        payloads.push(&tail[..n]);
        rest = &tail[n..];
    }
    let mut receiver = Receiver::new(&IsoTpConfig::default());
    for p in &payloads {
        let _ = receiver.on_frame(p);
    }
    let frames: VecDeque<CanFrame> = payloads
        .iter()
        .filter_map(|p| CanFrame::new(response, p).ok())
        .collect();
    let mut client = IsoTpClient::new(Frames(frames), IsoTpConfig::default());
    let _ = read_data_by_identifier(
        &mut client,
        request,
        response,
        0xF189,
        Duration::from_millis(50),
    );
});
