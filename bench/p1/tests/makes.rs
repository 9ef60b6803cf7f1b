//! Telegrams of other makes of meter (`tests/data/makes/`, see its README): each decodes,
//! and what departs from the specification is reported as a deviation with its offset,
//! never by dropping the telegram.

use meterbench_p1::{Decimal, DeviationKind, Obis, Telegram, Value, decode_all};

fn makes(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/makes")
            .join(name),
    )
    .unwrap()
}

/// The telegram of `name`, and the warnings (bytes between telegrams) around it.
fn decode(name: &str) -> (Telegram, Vec<String>) {
    let mut telegrams = Vec::new();
    let mut warnings = Vec::new();
    for r in decode_all(&makes(name)) {
        match r {
            Ok(t) => telegrams.push(t),
            Err(e) if e.is_warning() => warnings.push(e.to_string()),
            Err(e) => panic!("{name}: {e}"),
        }
    }
    assert_eq!(telegrams.len(), 1, "{name}");
    (telegrams.remove(0), warnings)
}

fn decimal(t: &Telegram, obis: Obis) -> (Decimal, Option<String>) {
    match t.value(obis) {
        Some(Value::Decimal { value, unit }) => (*value, unit.as_deref().map(str::to_string)),
        other => panic!("{obis}: {other:?}"),
    }
}

#[test]
fn telegrams_to_the_letter_decode_without_deviations() {
    for (name, crc, lines) in [
        ("iskra-mt382-dsmr2.2.p1", None, 16),
        ("iskra-mt382-dsmr3.p1", None, 16),
        ("kaifa-dsmr4.2.p1", Some(0x6796), 33),
        ("iskra-mt382-dsmr5.p1", Some(0x6EEE), 37),
        ("iskra-am550-dsmr5-two-mbus.p1", Some(0x56DD), 38),
        ("fluvius-1.7.1.p1", Some(0x3AD7), 36),
        ("fluvius-1.7.1-alt.p1", Some(0xC4B0), 36),
        ("sagemcom-t210-d-r.p1", Some(0x7EF9), 18),
        ("sagemcom-eon-hungary.p1", Some(0x99DA), 45),
    ] {
        let (t, warnings) = decode(name);
        assert_eq!(t.crc, crc, "{name}");
        assert_eq!(t.lines.len(), lines, "{name}");
        assert!(t.deviations.is_empty(), "{name}: {:?}", t.deviations);
        assert!(warnings.is_empty(), "{name}: {warnings:?}");
    }
}

#[test]
fn values_of_other_makes_read_as_sent() {
    let (kaifa, _) = decode("kaifa-dsmr4.2.p1");
    assert_eq!(kaifa.header.manufacturer, "KFM");
    assert_eq!(
        decimal(&kaifa, Obis::new(1, 0, 1, 8, 1)),
        ("1581.123".parse().unwrap(), Some("kWh".into()))
    );
    let (sagemcom, _) = decode("sagemcom-t210-d-r.p1");
    assert_eq!(
        decimal(&sagemcom, Obis::new(1, 0, 4, 8, 0)),
        ("3897726".parse().unwrap(), Some("varh".into()))
    );
    let (fluvius, _) = decode("fluvius-1.7.1.p1");
    assert_eq!(
        decimal(&fluvius, Obis::new(1, 0, 32, 7, 0)),
        ("234.7".parse().unwrap(), Some("V".into()))
    );
    let history = fluvius.line(Obis::new(0, 0, 98, 1, 0)).unwrap();
    assert_eq!(history.values.len(), 12);
}

#[test]
fn a_crc_without_its_leading_zero_is_checked_and_reported() {
    let bytes = makes("nwa-warmtelink-unpadded-crc.p1");
    let (t, _) = decode("nwa-warmtelink-unpadded-crc.p1");
    assert_eq!(t.crc, Some(0x0B9F));
    let bang = bytes.iter().position(|&b| b == b'!').unwrap() as u64;
    assert_eq!(t.deviations.len(), 2, "{:?}", t.deviations);
    assert_eq!(
        t.deviations[0].kind,
        DeviationKind::HeaderBaudCharacter { found: '-' }
    );
    assert_eq!(t.deviations[0].offset, 4);
    assert_eq!(
        t.deviations[1].offset,
        bang + 1,
        "points at the first CRC digit"
    );
    assert_eq!(
        t.deviations[1].kind,
        DeviationKind::ShortCrc {
            digits: 3,
            crc: 0x0B9F
        }
    );
    // The same telegram with one byte changed is refused: the short CRC is still a CRC.
    let mut damaged = bytes.clone();
    let i = damaged.iter().position(|&b| b == b'(').unwrap();
    damaged[i + 1] ^= 0x01;
    let results = decode_all(&damaged);
    assert!(
        results.iter().any(|r| r
            .as_ref()
            .is_err_and(|e| e.to_string().contains("CRC mismatch"))),
        "{results:?}"
    );
}

#[test]
fn obis_with_a_value_group_f_and_gateway_bytes_after_the_telegram_are_warnings() {
    for name in [
        "easymeter-q3db-com1-gateway.p1",
        "easymeter-q3da-com1-gateway.p1",
    ] {
        let bytes = makes(name);
        let (t, warnings) = decode(name);
        assert_eq!(t.header.manufacturer, "ESY", "{name}");
        // One deviation per kind and telegram, at its first line.
        assert_eq!(t.deviations.len(), 1, "{name}: {:?}", t.deviations);
        assert_eq!(
            t.deviations[0].kind,
            DeviationKind::ObisValueGroupF { f: 255 }
        );
        let first_obis = bytes.windows(4).position(|w| w == b"1-0:").unwrap() as u64;
        assert_eq!(t.deviations[0].offset, first_obis, "{name}");
        let (energy, unit) = decimal(&t, Obis::new(1, 0, 1, 8, 0));
        assert_eq!(unit.as_deref(), Some("kWh"));
        assert!(energy.to_f64() > 30_000.0, "{name}: {energy}");
        // The gateway's own line after `!` is reported where it starts.
        assert_eq!(warnings.len(), 1, "{name}: {warnings:?}");
        let after = bytes.windows(3).position(|w| w == b"!\r\n").unwrap() + 3;
        assert!(
            warnings[0].contains(&format!("at byte {after}: skipped")),
            "{name}: {warnings:?}"
        );
    }
}

#[test]
fn lines_ending_in_lf_alone_decode_with_one_deviation() {
    let crlf = makes("kaifa-dsmr4.2.p1");
    let lf: Vec<u8> = crlf.iter().copied().filter(|&b| b != b'\r').collect();
    // The CRC covers the bytes sent, so a converter that strips CR breaks it: the test
    // telegram is the CRC-less DSMR 3 one.
    let crlf = makes("iskra-mt382-dsmr3.p1");
    let lf3: Vec<u8> = crlf.iter().copied().filter(|&b| b != b'\r').collect();
    let results = decode_all(&lf3);
    assert_eq!(results.len(), 1, "{results:?}");
    let t = results[0].as_ref().unwrap();
    assert_eq!(t.deviations.len(), 1, "{:?}", t.deviations);
    assert_eq!(t.deviations[0].kind, DeviationKind::LfLineEnd);
    let first_lf = lf3.iter().position(|&b| b == b'\n').unwrap() as u64;
    assert_eq!(t.deviations[0].offset, first_lf);
    // With a CRC, the stripped CRs are a CRC mismatch: nothing is guessed.
    let results = decode_all(&lf);
    assert!(
        results[0]
            .as_ref()
            .is_err_and(|e| e.to_string().contains("CRC mismatch")),
        "{results:?}"
    );
}
