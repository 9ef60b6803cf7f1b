//! ISO-TP state machines: any message survives segmentation and
//! reassembly, and no payload makes the decoder or receiver panic.

use meterbench_can::IsoTpConfig;
use meterbench_can::isotp::{FlowControl, Pdu, Receiver, RxEvent, StMin, Transmitter, TxStep};
use proptest::prelude::*;

proptest! {
    #[test]
    fn messages_round_trip_through_transmitter_and_receiver(
        message in proptest::collection::vec(any::<u8>(), 1..5000),
        padding in proptest::option::of(prop_oneof![Just(0xAA), Just(0xCC)]),
        block_size in 0u8..6,
    ) {
        let config = IsoTpConfig {
            padding,
            block_size,
            max_message_len: 8192,
            ..IsoTpConfig::default()
        };
        let mut tx = Transmitter::new(&message, &config).unwrap();
        let mut rx = Receiver::new(&config);
        let mut flow_control: Option<FlowControl> = None;
        let mut frames = 0usize;
        let received = loop {
            match tx.next_step() {
                TxStep::Send { payload, .. } => {
                    frames += 1;
                    prop_assert!(payload.len() <= 8);
                    if padding.is_some() {
                        prop_assert_eq!(payload.len(), 8);
                    }
                    match rx.on_frame(&payload).unwrap() {
                        RxEvent::Complete(m) => break m,
                        RxEvent::SendFlowControl(fc) => flow_control = Some(fc),
                        RxEvent::Continue => {}
                        RxEvent::Overflow { .. } => prop_assert!(false, "overflow"),
                    }
                }
                TxStep::AwaitFlowControl => {
                    let fc = flow_control.take().expect("the receiver owes a flow control");
                    tx.on_flow_control(&fc.encode(padding)).unwrap();
                }
                TxStep::Done => prop_assert!(false, "sender done before receiver complete"),
            }
        };
        prop_assert_eq!(tx.next_step(), TxStep::Done);
        prop_assert_eq!(&received, &message);
        let expected_frames = if message.len() <= 7 {
            1
        } else if message.len() <= 4095 {
            1 + (message.len() - 6).div_ceil(7)
        } else {
            1 + (message.len() - 2).div_ceil(7)
        };
        prop_assert_eq!(frames, expected_frames);
    }

    #[test]
    fn decoding_and_receiving_never_panic(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..=8), 1..20),
    ) {
        let mut rx = Receiver::new(&IsoTpConfig::default());
        let mut tx = Transmitter::new(&[0; 100], &IsoTpConfig::default()).unwrap();
        tx.next_step();
        for payload in &payloads {
            let _ = Pdu::decode(payload);
            let _ = rx.on_frame(payload);
            let _ = tx.on_flow_control(payload);
            let _ = StMin::from_raw(payload.first().copied().unwrap_or(0)).duration();
        }
    }
}
