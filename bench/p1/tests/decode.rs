//! Decoder and encoder against the CSP1 manual's example and hand-built telegrams.

use meterbench_p1::{
    Csp1Params, Decimal, DecodeError, Decoder, ErrorKind, Limits, Obis, Season, Telegram, Value,
    crc16, decode_all, encode_csp1_telegram,
};
use proptest::prelude::*;

/// The CSP1 manual's example telegram, byte-exact (CRLF, 755 bytes).
const EXAMPLE: &[u8] = include_bytes!("data/csp1-example-telegram.p1");

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// `header`, a blank line, `lines`, `!` and the CRC, CRLF throughout.
fn frame(header: &str, lines: &[&str]) -> Vec<u8> {
    let mut t = format!("/{header}\r\n\r\n");
    for l in lines {
        t.push_str(l);
        t.push_str("\r\n");
    }
    t.push('!');
    let crc = crc16(t.as_bytes());
    format!("{t}{crc:04X}\r\n").into_bytes()
}

fn one(bytes: &[u8]) -> Telegram {
    match decode_all(bytes).as_slice() {
        [Ok(t)] => t.clone(),
        other => panic!("expected one telegram, got {other:?}"),
    }
}

fn one_err(bytes: &[u8]) -> DecodeError {
    match decode_all(bytes).as_slice() {
        [Err(e)] => e.clone(),
        other => panic!("expected one error, got {other:?}"),
    }
}

#[test]
fn example_decodes_with_valid_crc() {
    assert_eq!(EXAMPLE.len(), 755);
    let t = one(EXAMPLE);
    assert_eq!(t.crc, Some(0x19D6));
    assert_eq!(t.offset, 0);
    assert_eq!(t.currents(), [Some(d("24")); 3]);
    assert_eq!(t.current(meterbench_p1::Phase::L2).unwrap().to_f64(), 24.0);
    assert_eq!(t.value(Obis::CURRENT_L3).unwrap().unit(), Some("A"));
    assert_eq!(
        (
            t.header.manufacturer.as_str(),
            t.header.baud,
            t.header.identification.as_str()
        ),
        ("XMX", '5', "XMXCQA0000008879")
    );
    assert_eq!(t.version(), Some("40"));
    assert_eq!(t.firmware_id(), Some("XMX_P1CS_V05"));
    assert_eq!(t.equipment_id().unwrap().text(), "E0000000000000000");
    assert_eq!(t.text_message().unwrap().text(), "");
    let ts = t.timestamp().unwrap();
    assert_eq!(
        (ts.year, ts.month, ts.day, ts.season),
        (0, 1, 1, Some(Season::Winter))
    );
    assert!(t.power_failures().is_empty());
    assert_eq!(t.lines.len(), 32);
    assert_eq!(t.value(Obis::TARIFF), Some(&Value::String("0001".into())));
    assert_eq!(
        t.value(Obis::new(1, 0, 1, 8, 1)),
        Some(&Value::Decimal {
            value: Decimal::new(0, 3),
            unit: Some("kWh".into())
        })
    );
    let json = serde_json::to_value(&t).unwrap();
    assert_eq!(json["lines"][23]["obis"], "1-0:31.7.0");
    assert_eq!(json["lines"][23]["values"][0]["decimal"]["value"], "24");
}

#[test]
fn encoder_reproduces_the_example_byte_for_byte() {
    let params = Csp1Params {
        identification: "XMXCQA0000008879".into(),
        equipment_id: "E0000000000000000".into(),
        currents: [24.0, 24.0, 24.0],
        firmware: "XMX_P1CS_V05".into(),
    };
    assert_eq!(params, Csp1Params::default());
    let bytes = encode_csp1_telegram(&params);
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        String::from_utf8_lossy(EXAMPLE)
    );
    assert_eq!(bytes, EXAMPLE);
}

#[test]
fn encoder_quantises_to_whole_amperes() {
    let p = Csp1Params {
        currents: [0.4, 23.5, 80.49],
        ..Default::default()
    };
    assert_eq!(
        one(&encode_csp1_telegram(&p)).currents(),
        [d("0"), d("24"), d("80")].map(Some)
    );
}

/// Every byte position, every replacement value: a changed byte is reported
/// (CRC mismatch, framing or parse error), never decoded into different values.
/// The only change that decodes is a CRC digit turned to the other case.
#[test]
fn every_single_byte_change_is_reported() {
    let original = one(EXAMPLE);
    let mut silently_same = 0;
    for pos in 0..EXAMPLE.len() {
        for b in 0..=255u8 {
            if b == EXAMPLE[pos] {
                continue;
            }
            let mut bytes = EXAMPLE.to_vec();
            bytes[pos] = b;
            let results = decode_all(&bytes);
            let ok: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
            for t in &ok {
                assert_eq!(
                    **t, original,
                    "byte {pos} -> {b:#04x} decoded to different values"
                );
                silently_same += 1;
            }
            assert!(
                !ok.is_empty() || results.iter().any(Result::is_err),
                "byte {pos} -> {b:#04x}: neither a telegram nor an error"
            );
        }
    }
    // 'D' -> 'd' in "19D6" is the only accepted change.
    assert_eq!(silently_same, 1);
}

#[test]
fn flipped_byte_in_content_is_a_crc_mismatch_at_the_telegram() {
    let mut bytes = EXAMPLE.to_vec();
    let pos = bytes.windows(5).position(|w| w == b"024*A").unwrap();
    bytes[pos + 1] = b'5'; // 024 A -> 054 A
    let e = one_err(&bytes);
    assert_eq!(e.offset, 0);
    assert!(
        matches!(
            e.kind,
            ErrorKind::CrcMismatch {
                expected: _,
                got: 0x19D6
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("CRC mismatch"), "{e}");
}

#[test]
fn lowercase_crc_is_accepted() {
    let mut bytes = EXAMPLE.to_vec();
    let n = bytes.len();
    bytes[n - 4] = b'd';
    assert_eq!(one(&bytes).crc, Some(0x19D6));
}

#[test]
fn dsmr22_telegram_without_crc() {
    let bytes = b"/ISk5\\2MT382-1000\r\n\r\n\
        0-0:96.1.1(4B384547303034303436333935353037)\r\n\
        1-0:1.8.1(12345.678*kWh)\r\n\
        1-0:1.8.2(12345.678*kWh)\r\n\
        1-0:2.8.1(12345.678*kWh)\r\n\
        1-0:2.8.2(12345.678*kWh)\r\n\
        0-0:96.14.0(0002)\r\n\
        1-0:1.7.0(001.19*kW)\r\n\
        1-0:2.7.0(000.00*kW)\r\n\
        0-0:17.0.0(016*A)\r\n\
        0-0:96.3.10(1)\r\n\
        0-0:96.13.1(303132333435363738)\r\n\
        0-0:96.13.0(303132333435363738393A3B3C3D3E3F)\r\n\
        0-1:96.1.0(3232323241424344313233343536373839)\r\n\
        0-1:24.1.0(03)\r\n\
        0-1:24.3.0(090212160000)(00)(60)(1)(0-1:24.2.1)(m3)\r\n\
        (00001.001)\r\n\
        0-1:24.4.0(1)\r\n\
        !\r\n";
    let t = one(bytes);
    assert_eq!(t.crc, None, "flagged as carrying no CRC");
    assert_eq!(
        (
            t.header.manufacturer.as_str(),
            t.header.baud,
            t.header.identification.as_str()
        ),
        ("ISk", '5', "\\2MT382-1000")
    );
    assert_eq!(t.version(), None);
    assert_eq!(t.firmware_id(), Some("012345678"));
    assert_eq!(t.equipment_id().unwrap().text(), "K8EG004046395507");
    assert_eq!(
        t.value(Obis::new(1, 0, 1, 7, 0)).unwrap().as_decimal(),
        Some(d("1.19"))
    );
    // The gas reading on its own line joins the object before it.
    let gas = t.line(Obis::new(0, 1, 24, 3, 0)).unwrap();
    assert_eq!(gas.values.len(), 7);
    assert_eq!(gas.values[4], Value::Obis(Obis::new(0, 1, 24, 2, 1)));
    assert_eq!(gas.values[5], Value::String("m3".into()));
    assert_eq!(gas.values[6].as_decimal(), Some(d("1.001")));
    assert_eq!(
        gas.raw,
        "(090212160000)(00)(60)(1)(0-1:24.2.1)(m3)(00001.001)"
    );
}

#[test]
fn stream_starting_mid_telegram_resynchronises() {
    let mut stream = EXAMPLE[300..].to_vec();
    stream.extend_from_slice(EXAMPLE);
    let results = decode_all(&stream);
    let skipped = 755 - 300;
    assert_eq!(results.len(), 2, "{results:?}");
    assert_eq!(
        results[0],
        Err(DecodeError {
            offset: 0,
            kind: ErrorKind::Skipped { bytes: skipped }
        })
    );
    let t = results[1].as_ref().unwrap();
    assert_eq!(t.offset, skipped);
    assert_eq!(t.currents(), [Some(d("24")); 3]);
}

#[test]
fn new_slash_cuts_a_telegram_short_and_starts_the_next() {
    let mut stream = EXAMPLE[..200].to_vec();
    stream.extend_from_slice(EXAMPLE);
    let results = decode_all(&stream);
    assert_eq!(
        results[0],
        Err(DecodeError {
            offset: 0,
            kind: ErrorKind::Truncated { bytes: 200 }
        })
    );
    assert_eq!(results[1].as_ref().unwrap().offset, 200);
    // And a stream that ends mid-telegram.
    let e = one_err(&EXAMPLE[..700]);
    assert_eq!(
        e,
        DecodeError {
            offset: 0,
            kind: ErrorKind::Truncated { bytes: 700 }
        }
    );
}

#[test]
fn oversize_line_and_telegram_are_rejected_with_offsets() {
    let long = format!("0-0:96.13.0({})", "41".repeat(3000));
    let bytes = frame("XMX5TEST", &["1-3:0.2.8(40)", &long]);
    // 6000 hex digits: a legal length here? No: over the 4608-byte default line limit.
    let line_at = bytes.windows(11).position(|w| w == b"0-0:96.13.0").unwrap() as u64;
    let mut stream = EXAMPLE.to_vec();
    stream.extend_from_slice(&bytes);
    stream.extend_from_slice(EXAMPLE);
    let results = decode_all(&stream);
    assert_eq!(results.len(), 3, "{results:?}");
    assert!(results[0].is_ok() && results[2].is_ok());
    assert_eq!(
        results[1],
        Err(DecodeError {
            offset: 755 + line_at,
            kind: ErrorKind::LineTooLong { limit: 4608 }
        })
    );
    assert_eq!(
        results[2].as_ref().unwrap().offset,
        755 + bytes.len() as u64
    );

    // A 2048-octet text message (4096 hex digits) is legal with the defaults.
    let legal = format!("0-0:96.13.0({})", "41".repeat(2048));
    let t = one(&frame("XMX5TEST", &[&legal]));
    assert_eq!(t.text_message().unwrap().text(), "A".repeat(2048));

    // Telegram limit: many short lines.
    let many: Vec<String> = (0..100)
        .map(|i| format!("1-0:1.8.1({i:010}.000*kWh)"))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let big = frame("XMX5TEST", &many);
    let limits = Limits {
        max_line: 100,
        max_telegram: 1000,
    };
    let mut decoder = Decoder::new(limits);
    let mut results = Vec::new();
    decoder.feed(&[&b"xx"[..], &big, EXAMPLE].concat(), |r| results.push(r));
    assert_eq!(decoder.finish(), None);
    assert_eq!(results.len(), 3, "{results:?}");
    assert_eq!(
        results[0],
        Err(DecodeError {
            offset: 0,
            kind: ErrorKind::Skipped { bytes: 2 }
        })
    );
    assert_eq!(
        results[1],
        Err(DecodeError {
            offset: 2,
            kind: ErrorKind::TelegramTooLong { limit: 1000 }
        })
    );
    assert!(results[2].is_ok());
}

#[test]
fn decimals_keep_their_exact_value_and_precision() {
    let t = one(&frame(
        "XMX5TEST",
        &[
            "1-0:31.7.0(024.5*A)",
            "1-0:51.7.0(024*A)",
            "1-0:71.7.0(024.0*A)",
            "1-0:32.7.0(230.1*V)",
        ],
    ));
    let [l1, l2, l3] = t.currents().map(Option::unwrap);
    assert_eq!(
        (l1.mantissa(), l1.scale(), l1.to_string()),
        (245, 1, "24.5".into())
    );
    assert_eq!(
        (l2.mantissa(), l2.scale(), l2.to_string()),
        (24, 0, "24".into())
    );
    assert_eq!(
        (l3.mantissa(), l3.scale(), l3.to_string()),
        (240, 1, "24.0".into())
    );
    assert!(l2.numeric_eq(l3) && l2 != l3);
    assert_eq!(l1.to_f64(), 24.5);
    let json = serde_json::to_value(&t).unwrap();
    assert_eq!(json["lines"][2]["values"][0]["decimal"]["value"], "24.0");
}

#[test]
fn power_failure_log_and_mbus_reading() {
    let t = one(&frame(
        "KFM5KAIFA-METER",
        &[
            "1-0:99.97.0(2)(0-0:96.7.19)(101208152415W)(0000000240*s)(101208151004S)(0000000301*s)",
            "0-1:24.1.0(003)",
            "0-1:96.1.0(3232323241424344313233343536373839)",
            "0-1:24.2.1(101209112500W)(12785.123*m3)",
            // No device on channel 2: a meter's invalid dummy stamp, no unit.
            "0-2:24.2.1(632525252525S)(00000.000)",
        ],
    ));
    let log = t.power_failures();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].end.to_string(), "101208152415W");
    assert_eq!(log[0].duration_s, d("0000000240"));
    assert_eq!(log[1].end.season, Some(Season::Summer));
    assert_eq!(log[1].duration_s.to_f64(), 301.0);
    let mbus = t.mbus_readings();
    assert_eq!(mbus.len(), 2);
    assert_eq!(
        (mbus[1].channel, mbus[1].captured.is_valid(), mbus[1].unit),
        (2, false, None)
    );
    assert_eq!(mbus[0].channel, 1);
    assert_eq!(mbus[0].captured.to_string(), "101209112500W");
    assert_eq!((mbus[0].value, mbus[0].unit), (d("12785.123"), Some("m3")));

    // The empty log as many meters send it.
    let t = one(&frame("ISK5X", &["1-0:99.97.0()", "1-0:32.32.0(00005)"]));
    assert!(t.power_failures().is_empty());

    // A log whose count does not match its entries is a bad value at its line.
    let bytes = frame(
        "KFM5X",
        &["1-0:99.97.0(2)(0-0:96.7.19)(101208152415W)(0000000240*s)"],
    );
    let e = one_err(&bytes);
    assert!(
        matches!(
            e.kind,
            ErrorKind::BadValue {
                obis: Obis::POWER_FAILURE_LOG,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.offset, 10, "points at the line");
}

#[test]
fn hex_text_message_is_decoded_and_raw_kept() {
    let t = one(&frame(
        "XMX5TEST",
        &["0-0:96.13.0(48656C6c6F2C20776F726C64)"],
    ));
    let msg = t.text_message().unwrap();
    assert_eq!(msg.text(), "Hello, world");
    assert_eq!(msg.raw, "48656C6c6F2C20776F726C64");
    assert_eq!(msg.bytes.as_deref(), Some(&b"Hello, world"[..]));
}

#[test]
fn unknown_lines_are_kept_and_order_does_not_matter() {
    let lines = [
        "1-0:71.7.0(003*A)",
        "0-0:96.13.1(XMX_P1CS_V05)",
        "9-9:99.99.9(abc)(12*xyz)()(0042)",
        "1-0:31.7.0(001*A)",
        "1-3:0.2.8(50)",
        "1-0:51.7.0(002*A)",
    ];
    let t = one(&frame("XMX5TEST", &lines));
    assert_eq!(t.currents(), [d("1"), d("2"), d("3")].map(Some));
    assert_eq!(
        (t.version(), t.firmware_id()),
        (Some("50"), Some("XMX_P1CS_V05"))
    );
    let unknown = t.line(Obis::new(9, 9, 99, 99, 9)).unwrap();
    assert_eq!(
        unknown.values[..],
        [
            Value::String("abc".into()),
            Value::Decimal {
                value: d("12"),
                unit: Some("xyz".into())
            },
            Value::Empty,
            Value::Integer(42),
        ]
    );
    assert_eq!(unknown.raw, "(abc)(12*xyz)()(0042)");
}

#[test]
fn malformed_lines_and_bad_values_say_where() {
    let bytes = frame("XMX5TEST", &["1-3:0.2.8(40)", "hello"]);
    let e = one_err(&bytes);
    assert_eq!(e.offset, 28, "points at the line");
    assert!(matches!(e.kind, ErrorKind::MalformedLine { .. }), "{e}");

    let bytes = frame("XMX5TEST", &["1-0:31.7.0(02X*A)"]);
    let e = one_err(&bytes);
    assert_eq!(e.offset, 13 + 11, "points at the group's text");
    assert_eq!(
        e.kind,
        ErrorKind::BadValue {
            obis: Obis::CURRENT_L1,
            reason: "expected a current, a decimal in A"
        }
    );
    assert!(
        e.to_string()
            .contains("at byte 24: bad value for 1-0:31.7.0"),
        "{e}"
    );

    let e = one_err(&frame("XMX5TEST", &["1-0:31.7.0(024*V)"]));
    assert!(matches!(e.kind, ErrorKind::BadValue { .. }), "{e}");
    let e = one_err(&frame("XMX5TEST", &["0-0:1.0.0(0013010100W)"]));
    assert!(matches!(e.kind, ErrorKind::BadValue { .. }), "{e}");
    let e = one_err(&frame("X5", &[]));
    assert!(matches!(e.kind, ErrorKind::MalformedLine { .. }), "{e}");
    // Three CRC digits are read as a CRC without its leading zero, and checked.
    let e = one_err(b"/XMX5TEST\r\n\r\n1-3:0.2.8(40)\r\n!19D\r\n");
    assert!(
        matches!(e.kind, ErrorKind::CrcMismatch { got: 0x019D, .. }),
        "{e}"
    );
    let e = one_err(b"/XMX5TEST\r\n\r\n1-3:0.2.8(40)\r\n!19D6A\r\n");
    assert_eq!(
        e,
        DecodeError {
            offset: 33,
            kind: ErrorKind::MalformedTrailer { found: b'A' }
        }
    );
}

#[test]
fn finish_reports_trailing_garbage_once() {
    let mut decoder = Decoder::default();
    let mut results = Vec::new();
    decoder.feed(EXAMPLE, |r| results.push(r));
    decoder.feed(b"\r\nnoise", |r| results.push(r));
    assert_eq!(results.len(), 1);
    assert_eq!(
        decoder.finish(),
        Some(DecodeError {
            offset: 757,
            kind: ErrorKind::Skipped { bytes: 5 }
        })
    );
    assert_eq!(decoder.finish(), None);
    assert_eq!(decoder.offset(), 762);
}

/// One CSP1 telegram's parameters, with arbitrary currents and idents.
fn csp1_params() -> impl Strategy<Value = Csp1Params> {
    (
        "[ -~]{0,40}",
        "[ -~]{0,20}",
        proptest::array::uniform3(0.0f64..80.0),
        // Plain ASCII that is not all hex pairs, as the CSP1's `XMX_P1CS_V05`:
        // an id of hex digits only would read as hex (its raw text is kept).
        "XMX_[A-Za-z0-9_.]{0,12}",
    )
        .prop_map(
            |(identification, equipment_id, currents, firmware)| Csp1Params {
                identification,
                equipment_id,
                currents,
                firmware,
            },
        )
}

/// Garbage between telegrams: anything but `!`. It may hold `/`, which starts a
/// bogus telegram that the next real `/` cuts short; without `!` no bogus
/// telegram can complete, so every real telegram must come through.
fn garbage() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>().prop_filter("no `!`", |&b| b != b'!'), 0..64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn csp1_telegrams_survive_garbage_and_any_chunking(
        items in proptest::collection::vec((garbage(), csp1_params()), 1..6),
        tail in garbage(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (junk, params) in &items {
            stream.extend_from_slice(junk);
            let offset = stream.len() as u64;
            stream.extend_from_slice(&encode_csp1_telegram(params));
            expected.push((offset, params.clone()));
        }
        stream.extend_from_slice(&tail);

        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        cuts.push(0);
        cuts.push(stream.len());
        cuts.sort_unstable();
        let mut decoder = Decoder::default();
        let mut telegrams = Vec::new();
        for w in cuts.windows(2) {
            decoder.feed(&stream[w[0]..w[1]], |r| if let Ok(t) = r { telegrams.push(t) });
        }
        decoder.finish();

        prop_assert_eq!(telegrams.len(), expected.len());
        for (t, (offset, p)) in telegrams.iter().zip(&expected) {
            prop_assert_eq!(t.offset, *offset);
            prop_assert_eq!(t.crc.is_some(), true);
            let amps = p.currents.map(|a| Some(Decimal::new(a.round() as i64, 0)));
            prop_assert_eq!(t.currents(), amps);
            let ident = p.identification.replace(['/', '!'], "_");
            prop_assert_eq!(&t.header.identification, &ident);
            prop_assert_eq!(t.equipment_id().unwrap().bytes.as_deref(), Some(p.equipment_id.as_bytes()));
            prop_assert_eq!(t.firmware_id(), Some(p.firmware.as_str()));
            prop_assert_eq!(t.version(), Some("40"));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_chunking_does_not_matter(
        data in proptest::collection::vec(
            prop_oneof![any::<u8>(), Just(b'/'), Just(b'!'), Just(b'\r'), Just(b'\n'), Just(b'(')],
            0..512,
        ),
        cut in any::<prop::sample::Index>(),
    ) {
        let whole = decode_all(&data);
        let cut = cut.index(data.len() + 1);
        let mut decoder = Decoder::default();
        let mut split = Vec::new();
        decoder.feed(&data[..cut], |r| split.push(r));
        decoder.feed(&data[cut..], |r| split.push(r));
        split.extend(decoder.finish().map(Err));
        prop_assert_eq!(whole, split);
    }
}
