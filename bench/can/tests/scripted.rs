//! ISO-TP and UDS ReadDataByIdentifier against scripted frame sequences.

use std::time::{Duration, Instant};

use meterbench_can::isotp::{IsoTpAddress, StMin};
use meterbench_can::{
    CanFrame, CanId, IsoTpClient, IsoTpConfig, IsoTpError, IsoTpServer, Nrc, ScriptedBus, UdsError,
    UdsServer, UdsTimeouts, read_data_by_identifier,
};

const REQ: u16 = 0x7E0;
const RESP: u16 = 0x7E8;
const VERSION: u16 = 0xF189;
const HASH: u16 = 0xF1A0;
const SHORT: Duration = Duration::from_millis(100);

fn id(raw: u16) -> CanId {
    CanId::standard(raw).unwrap()
}

fn f(raw: u16, data: &[u8]) -> CanFrame {
    CanFrame::new(id(raw), data).unwrap()
}

/// `data` padded with 0xAA to 8 bytes, on `raw`.
fn p(raw: u16, data: &[u8]) -> CanFrame {
    let mut bytes = data.to_vec();
    bytes.resize(8, 0xAA);
    f(raw, &bytes)
}

fn config() -> IsoTpConfig {
    IsoTpConfig {
        padding: Some(0xAA),
        n_bs: SHORT,
        n_cr: SHORT,
        ..IsoTpConfig::default()
    }
}

fn client(bus: ScriptedBus) -> IsoTpClient<ScriptedBus> {
    IsoTpClient::new(bus, config())
}

fn rdbi(isotp: &mut IsoTpClient<ScriptedBus>, did: u16) -> Result<Vec<u8>, UdsError> {
    read_data_by_identifier(isotp, id(REQ), id(RESP), did, SHORT)
}

/// The consecutive frames of `message` after its first 6 bytes, padded.
fn consecutive_frames(raw: u16, message: &[u8], first_sn: u8) -> Vec<CanFrame> {
    message[6..]
        .chunks(7)
        .enumerate()
        .map(|(i, chunk)| {
            let mut data = vec![0x20 | ((usize::from(first_sn) + i) % 16) as u8];
            data.extend_from_slice(chunk);
            p(raw, &data)
        })
        .collect()
}

/// A 64-character hex hash, as a meter might report its software hash.
fn hex_hash() -> Vec<u8> {
    b"3f9a1c0e5b7d2468ace013579bdf2468ace013579bdf02468ace13579bdf0246".to_vec()
}

#[test]
fn single_frame_request_and_response() {
    let bus = ScriptedBus::new()
        .expect(p(REQ, &[0x03, 0x22, 0xF1, 0x89]))
        .reply(p(RESP, &[0x07, 0x62, 0xF1, 0x89, b'2', b'.', b'1', b'0']));
    let mut isotp = client(bus);
    assert_eq!(rdbi(&mut isotp, VERSION).unwrap(), b"2.10");
    isotp.bus().assert_done();
}

#[test]
fn frames_of_other_ids_and_remote_frames_are_ignored() {
    let bus = ScriptedBus::new()
        .expect(p(REQ, &[0x03, 0x22, 0xF1, 0x89]))
        .reply(f(0x123, &[0x01, 0x02]))
        .reply(CanFrame::remote(id(RESP), 8).unwrap())
        .reply(CanFrame::new(CanId::extended(u32::from(RESP)).unwrap(), &[0x01]).unwrap())
        .reply(p(RESP, &[0x04, 0x62, 0xF1, 0x89, b'7']));
    let mut isotp = client(bus);
    assert_eq!(rdbi(&mut isotp, VERSION).unwrap(), b"7");
}

#[test]
fn multi_frame_response_of_a_64_character_hash_with_flow_control() {
    let hash = hex_hash();
    let mut response = vec![0x62, 0xF1, 0xA0];
    response.extend_from_slice(&hash);
    assert_eq!(response.len(), 67);
    let mut bus = ScriptedBus::new()
        .expect(p(REQ, &[0x03, 0x22, 0xF1, 0xA0]))
        .reply(f(RESP, &[0x10, 0x43, 0x62, 0xF1, 0xA0, b'3', b'f', b'9']))
        .expect(p(REQ, &[0x30, 0x00, 0x00]));
    let cfs = consecutive_frames(RESP, &response, 1);
    assert_eq!(cfs.len(), 9);
    for cf in cfs {
        bus = bus.reply(cf);
    }
    let mut isotp = client(bus);
    assert_eq!(rdbi(&mut isotp, HASH).unwrap(), hash);
    isotp.bus().assert_done();
}

#[test]
fn block_size_brings_a_second_flow_control_and_sequence_numbers_wrap() {
    // 32 raw bytes of hash and a long tail, so the sequence number wraps.
    let mut response = vec![0x62, 0xF1, 0xA1];
    response.extend((0..130).map(|i| i as u8));
    let isotp_config = IsoTpConfig {
        block_size: 8,
        st_min: StMin::from_raw(0xF2),
        ..config()
    };
    let fc = p(REQ, &[0x30, 0x08, 0xF2]);
    let mut bus = ScriptedBus::new()
        .expect(p(REQ, &[0x03, 0x22, 0xF1, 0xA1]))
        .reply(f(RESP, &[0x10, 133, 0x62, 0xF1, 0xA1, 0, 1, 2]))
        .expect(fc);
    let cfs = consecutive_frames(RESP, &response, 1);
    assert_eq!(cfs.len(), 19);
    for (i, cf) in cfs.into_iter().enumerate() {
        bus = bus.reply(cf);
        if i % 8 == 7 {
            bus = bus.expect(fc);
        }
    }
    let mut isotp = IsoTpClient::new(bus, isotp_config);
    assert_eq!(
        read_data_by_identifier(&mut isotp, id(REQ), id(RESP), 0xF1A1, SHORT).unwrap(),
        response[3..]
    );
    isotp.bus().assert_done();
}

#[test]
fn multi_frame_request_follows_block_size_and_st_min() {
    let message: Vec<u8> = (1..=30).collect();
    let bus = ScriptedBus::new()
        .expect(f(REQ, &[0x10, 30, 1, 2, 3, 4, 5, 6]))
        .reply(p(RESP, &[0x30, 2, 5]))
        .expect(f(REQ, &[0x21, 7, 8, 9, 10, 11, 12, 13]))
        .expect(f(REQ, &[0x22, 14, 15, 16, 17, 18, 19, 20]))
        .reply(p(RESP, &[0x30, 2, 5]))
        .expect(f(REQ, &[0x23, 21, 22, 23, 24, 25, 26, 27]))
        .expect(p(REQ, &[0x24, 28, 29, 30]));
    let mut isotp = client(bus);
    let start = Instant::now();
    isotp
        .send(IsoTpAddress::new(id(REQ), id(RESP)), &message)
        .unwrap();
    // Two gaps of STmin 5 ms (between CF1-CF2 and CF3-CF4).
    assert!(start.elapsed() >= Duration::from_millis(10));
    isotp.bus().assert_done();
}

#[test]
fn wait_flow_control_restarts_n_bs() {
    let bus = ScriptedBus::new()
        .expect(f(REQ, &[0x10, 10, 1, 2, 3, 4, 5, 6]))
        .reply(p(RESP, &[0x31, 0, 0]))
        .reply(p(RESP, &[0x31, 0, 0]))
        .reply(p(RESP, &[0x30, 0, 0]))
        .expect(p(REQ, &[0x21, 7, 8, 9, 10]));
    let mut isotp = client(bus);
    isotp
        .send(
            IsoTpAddress::new(id(REQ), id(RESP)),
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        )
        .unwrap();
    isotp.bus().assert_done();
}

#[test]
fn too_many_waits_and_overflow_are_errors() {
    let mut bus = ScriptedBus::new().expect(f(REQ, &[0x10, 10, 1, 2, 3, 4, 5, 6]));
    for _ in 0..3 {
        bus = bus.reply(p(RESP, &[0x31, 0, 0]));
    }
    let mut isotp = IsoTpClient::new(
        bus,
        IsoTpConfig {
            max_wait_frames: 2,
            ..config()
        },
    );
    let error = isotp
        .send(
            IsoTpAddress::new(id(REQ), id(RESP)),
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        )
        .unwrap_err();
    assert!(
        matches!(error, IsoTpError::TooManyWaits { max: 2 }),
        "{error}"
    );

    let bus = ScriptedBus::new()
        .expect(f(REQ, &[0x10, 10, 1, 2, 3, 4, 5, 6]))
        .reply(p(RESP, &[0x32, 0, 0]));
    let error = client(bus)
        .send(
            IsoTpAddress::new(id(REQ), id(RESP)),
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        )
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the receiver answered flow status OVERFLOW: a 10-byte message is too long for it"
    );
}

#[test]
fn missing_flow_control_times_out_after_n_bs() {
    let bus = ScriptedBus::new().expect(f(REQ, &[0x10, 10, 1, 2, 3, 4, 5, 6]));
    let start = Instant::now();
    let error = client(bus)
        .send(
            IsoTpAddress::new(id(REQ), id(RESP)),
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        )
        .unwrap_err();
    assert!(start.elapsed() >= SHORT);
    assert_eq!(
        error.to_string(),
        "no flow control within 100 ms (N_Bs) after sending 6 of 10 bytes"
    );
}

#[test]
fn wrong_sequence_number_is_reported_with_the_ids() {
    let bus = ScriptedBus::new()
        .expect(p(REQ, &[0x03, 0x22, 0xF1, 0xA0]))
        .reply(f(RESP, &[0x10, 0x43, 0x62, 0xF1, 0xA0, 1, 2, 3]))
        .expect(p(REQ, &[0x30, 0, 0]))
        .reply(f(RESP, &[0x21, 4, 5, 6, 7, 8, 9, 10]))
        .reply(f(RESP, &[0x23, 11, 12, 13, 14, 15, 16, 17]));
    let mut isotp = client(bus);
    let error = rdbi(&mut isotp, HASH).unwrap_err();
    assert!(
        matches!(
            &error,
            UdsError::IsoTp {
                error: IsoTpError::WrongSequenceNumber {
                    expected: 2,
                    got: 3,
                    ..
                },
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "ReadDataByIdentifier 0xF1A0 (request on 0x7E0, answer on 0x7E8): wrong sequence number \
         in consecutive frame: expected 2, got 3 (after 13 of 67 bytes)"
    );
}

#[test]
fn consecutive_frames_stopping_time_out_after_n_cr() {
    let bus = ScriptedBus::new()
        .expect(p(REQ, &[0x03, 0x22, 0xF1, 0xA0]))
        .reply(f(RESP, &[0x10, 0x43, 0x62, 0xF1, 0xA0, 1, 2, 3]))
        .expect(p(REQ, &[0x30, 0, 0]))
        .reply(f(RESP, &[0x21, 4, 5, 6, 7, 8, 9, 10]));
    let mut isotp = client(bus);
    let start = Instant::now();
    let error = rdbi(&mut isotp, HASH).unwrap_err();
    let elapsed = start.elapsed();
    assert!(elapsed >= SHORT && elapsed < SHORT * 10, "{elapsed:?}");
    assert!(
        matches!(
            &error,
            UdsError::IsoTp {
                error: IsoTpError::ConsecutiveFrameTimeout {
                    received: 13,
                    total: 67,
                    ..
                },
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .ends_with("no consecutive frame within 100 ms (N_Cr) after receiving 13 of 67 bytes")
    );
}

#[test]
fn unexpected_frames_are_clear_errors() {
    // A consecutive frame with no first frame before it.
    let bus = ScriptedBus::new()
        .expect(p(REQ, &[0x03, 0x22, 0xF1, 0x89]))
        .reply(p(RESP, &[0x21, 1, 2, 3]));
    let error = rdbi(&mut client(bus), VERSION).unwrap_err();
    assert!(
        error.to_string().ends_with(
            "unexpected consecutive frame [21 01 02 03 AA AA AA AA] while waiting for a single \
             or first frame"
        ),
        "{error}"
    );

    // A single frame in the middle of a segmented response.
    let bus = ScriptedBus::new()
        .expect(p(REQ, &[0x03, 0x22, 0xF1, 0xA0]))
        .reply(f(RESP, &[0x10, 0x43, 0x62, 0xF1, 0xA0, 1, 2, 3]))
        .expect(p(REQ, &[0x30, 0, 0]))
        .reply(p(RESP, &[0x03, 0x7F, 0x22, 0x31]));
    let error = rdbi(&mut client(bus), HASH).unwrap_err();
    assert!(matches!(
        error,
        UdsError::IsoTp {
            error: IsoTpError::UnexpectedFrame { .. },
            ..
        }
    ));

    // A negative response instead of flow control to a multi-frame request.
    let bus = ScriptedBus::new()
        .expect(f(REQ, &[0x10, 10, 1, 2, 3, 4, 5, 6]))
        .reply(p(RESP, &[0x03, 0x7F, 0x22, 0x13]));
    let error = client(bus)
        .send(
            IsoTpAddress::new(id(REQ), id(RESP)),
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        )
        .unwrap_err();
    assert!(error.to_string().starts_with(
        "unexpected single frame [03 7F 22 13 AA AA AA AA] while waiting for flow control"
    ));
}

#[test]
fn negative_responses_map_to_named_errors() {
    let cases = [
        (0x10, Nrc::GeneralReject, "generalReject"),
        (0x11, Nrc::ServiceNotSupported, "serviceNotSupported"),
        (
            0x12,
            Nrc::SubFunctionNotSupported,
            "subFunctionNotSupported",
        ),
        (
            0x13,
            Nrc::IncorrectMessageLengthOrInvalidFormat,
            "incorrectMessageLengthOrInvalidFormat",
        ),
        (0x14, Nrc::ResponseTooLong, "responseTooLong"),
        (0x22, Nrc::ConditionsNotCorrect, "conditionsNotCorrect"),
        (0x31, Nrc::RequestOutOfRange, "requestOutOfRange"),
        (0x33, Nrc::SecurityAccessDenied, "securityAccessDenied"),
        (0x7E, Nrc::Other(0x7E), "NRC 0x7E"),
    ];
    for (code, nrc, name) in cases {
        let bus = ScriptedBus::new()
            .expect(p(REQ, &[0x03, 0x22, 0xF1, 0x89]))
            .reply(p(RESP, &[0x03, 0x7F, 0x22, code]));
        let error = rdbi(&mut client(bus), VERSION).unwrap_err();
        match &error {
            UdsError::Negative { nrc: got, did, .. } => {
                assert_eq!((*got, *did), (nrc, VERSION));
            }
            other => panic!("{other:?}"),
        }
        let text = error.to_string();
        assert!(
            text.starts_with("ReadDataByIdentifier 0xF189 sent on 0x7E0 was refused on 0x7E8: "),
            "{text}"
        );
        assert!(text.contains(name), "{text}");
    }
}

#[test]
fn response_pending_keeps_waiting_until_the_positive_answer() {
    let bus = ScriptedBus::new()
        .expect(p(REQ, &[0x03, 0x22, 0xF1, 0x89]))
        .reply(p(RESP, &[0x03, 0x7F, 0x22, 0x78]))
        .reply(p(RESP, &[0x03, 0x7F, 0x22, 0x78]))
        .reply(p(RESP, &[0x05, 0x62, 0xF1, 0x89, b'3', b'3']));
    let mut isotp = client(bus);
    assert_eq!(rdbi(&mut isotp, VERSION).unwrap(), b"33");
    isotp.bus().assert_done();
}

#[test]
fn response_pending_without_an_end_times_out_after_p2_star() {
    let bus = ScriptedBus::new()
        .expect(p(REQ, &[0x03, 0x22, 0xF1, 0x89]))
        .reply(p(RESP, &[0x03, 0x7F, 0x22, 0x78]));
    let timeouts = UdsTimeouts {
        p2: Duration::from_millis(50),
        p2_star: Duration::from_millis(150),
    };
    let start = Instant::now();
    let error = read_data_by_identifier(&mut client(bus), id(REQ), id(RESP), VERSION, timeouts)
        .unwrap_err();
    assert!(start.elapsed() >= Duration::from_millis(150));
    assert_eq!(
        error.to_string(),
        "ReadDataByIdentifier 0xF189 sent on 0x7E0: the meter answered 'response pending' \
         (NRC 0x78) on 0x7E8 but no final answer followed within 150 ms"
    );
}

#[test]
fn a_silent_bus_names_the_ids_and_the_did() {
    let bus = ScriptedBus::new().expect(p(REQ, &[0x03, 0x22, 0xF1, 0x90]));
    let start = Instant::now();
    let error = read_data_by_identifier(
        &mut client(bus),
        id(REQ),
        id(RESP),
        0xF190,
        Duration::from_secs(1),
    )
    .unwrap_err();
    assert!(start.elapsed() >= Duration::from_secs(1));
    assert!(matches!(error, UdsError::NoAnswer { .. }));
    assert_eq!(
        error.to_string(),
        "no answer on CAN id 0x7E8 to ReadDataByIdentifier 0xF190 sent on 0x7E0 within 1 s \
         (scripted CAN bus); check wiring, termination, bitrate and the CAN ids in the fixture \
         profile"
    );
}

#[test]
fn an_answer_for_another_did_or_service_is_an_error() {
    let bus = ScriptedBus::new()
        .expect(p(REQ, &[0x03, 0x22, 0xF1, 0x89]))
        .reply(p(RESP, &[0x04, 0x62, 0xF1, 0x90, 0x01]));
    let error = rdbi(&mut client(bus), VERSION).unwrap_err();
    assert!(matches!(error, UdsError::DidMismatch { got: 0xF190, .. }));
    assert_eq!(
        error.to_string(),
        "asked ReadDataByIdentifier 0xF189 on 0x7E0 but the answer on 0x7E8 is for 0xF190; is \
         another tester on the bus?"
    );

    let bus = ScriptedBus::new()
        .expect(p(REQ, &[0x03, 0x22, 0xF1, 0x89]))
        .reply(p(RESP, &[0x02, 0x50, 0x01]));
    let error = rdbi(&mut client(bus), VERSION).unwrap_err();
    assert_eq!(
        error.to_string(),
        "unexpected answer [50 01] on 0x7E8 to ReadDataByIdentifier 0xF189 sent on 0x7E0: not a \
         ReadDataByIdentifier response"
    );
}

#[test]
fn unpadded_frames_and_extended_ids() {
    let req = CanId::extended(0x18DA_10F1).unwrap();
    let resp = CanId::extended(0x18DA_F110).unwrap();
    let bus = ScriptedBus::new()
        .expect(CanFrame::new(req, &[0x03, 0x22, 0xF1, 0x89]).unwrap())
        .reply(CanFrame::new(resp, &[0x10, 0x09, 0x62, 0xF1, 0x89, 1, 2, 3]).unwrap())
        .expect(CanFrame::new(req, &[0x30, 0x00, 0x00]).unwrap())
        .reply(CanFrame::new(resp, &[0x21, 4, 5, 6]).unwrap());
    let mut isotp = IsoTpClient::new(
        bus,
        IsoTpConfig {
            padding: None,
            ..config()
        },
    );
    let data = read_data_by_identifier(&mut isotp, req, resp, VERSION, SHORT).unwrap();
    assert_eq!(data, [1, 2, 3, 4, 5, 6]);
    isotp.bus().assert_done();
}

#[test]
fn the_server_answers_a_request_with_a_segmented_response() {
    let hash = hex_hash();
    let uds = UdsServer::new().with_did(HASH, hash.clone());
    let mut response = vec![0x62, 0xF1, 0xA0];
    response.extend_from_slice(&hash);
    let mut bus = ScriptedBus::new()
        .reply(p(REQ, &[0x03, 0x22, 0xF1, 0xA0]))
        .expect(f(RESP, &[0x10, 0x43, 0x62, 0xF1, 0xA0, b'3', b'f', b'9']))
        .reply(p(REQ, &[0x30, 0x04, 0x01]));
    for (i, cf) in consecutive_frames(RESP, &response, 1)
        .into_iter()
        .enumerate()
    {
        bus = bus.expect(cf);
        if i == 3 || i == 7 {
            bus = bus.reply(p(REQ, &[0x30, 0x04, 0x01]));
        }
    }
    // A request for an unknown DID on the second port.
    bus = bus
        .reply(p(0x7E1, &[0x03, 0x22, 0x12, 0x34]))
        .expect(p(0x7E9, &[0x03, 0x7F, 0x22, 0x31]));
    let mut server = IsoTpServer::new(bus, config())
        .listen(id(REQ), id(RESP))
        .listen(id(0x7E1), id(0x7E9));
    let start = Instant::now();
    assert!(
        server
            .serve_once(SHORT, |request| uds.handle(&request.data))
            .unwrap()
    );
    // STmin 1 ms between the frames of each block of 4: 6 gaps.
    assert!(start.elapsed() >= Duration::from_millis(6));
    let request = server.recv_request(SHORT).unwrap().unwrap();
    assert_eq!(request.address, IsoTpAddress::new(id(0x7E9), id(0x7E1)));
    server
        .send_response(request.address, &uds.handle(&request.data).unwrap())
        .unwrap();
    assert!(
        !server
            .serve_once(Duration::from_millis(20), |_| None)
            .unwrap()
    );
    server.bus().assert_done();
}

#[test]
fn the_server_reassembles_a_segmented_request_and_refuses_oversized_ones() {
    let message: Vec<u8> = (0..20).collect();
    let mut bus = ScriptedBus::new()
        .reply(f(REQ, &[0x10, 20, 0, 1, 2, 3, 4, 5]))
        .expect(p(RESP, &[0x30, 0, 0]));
    for cf in consecutive_frames(REQ, &message, 1) {
        bus = bus.reply(cf);
    }
    bus = bus
        .reply(f(REQ, &[0x10, 0xFF, 0, 0, 0, 0, 0, 0]))
        .expect(p(RESP, &[0x32, 0, 0]));
    let mut server = IsoTpServer::new(
        bus,
        IsoTpConfig {
            max_message_len: 64,
            ..config()
        },
    )
    .listen(id(REQ), id(RESP));
    assert_eq!(server.recv_request(SHORT).unwrap().unwrap().data, message);
    let error = server.recv_request(SHORT).unwrap_err();
    assert_eq!(
        error.to_string(),
        "a message of 255 bytes is longer than the 64 bytes accepted"
    );
    server.bus().assert_done();
}
