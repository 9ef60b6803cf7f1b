//! Parses a framed telegram body (`/` up to, not including, `!`) into the model.

use crate::decoder::{DecodeError, ErrorKind};
use crate::{
    Decimal, Deviation, DeviationKind, Header, Line, Obis, Octets, Telegram, Timestamp, Value,
};
use compact_str::CompactString;
use smallvec::SmallVec;
use std::borrow::Cow;

/// Parses `body`, which starts at stream offset `start`; `trailer` holds the
/// deviations already seen after its `!`.
pub(crate) fn telegram(
    body: &[u8],
    start: u64,
    crc: Option<u16>,
    trailer: Vec<Deviation>,
) -> Result<Telegram, DecodeError> {
    let at = |off: usize, kind| DecodeError {
        offset: start + off as u64,
        kind,
    };
    let malformed = |off: usize, reason| at(off, ErrorKind::MalformedLine { reason });

    let mut header = None;
    // One allocation each, as a rule: DSMR lines are rarely under 16 bytes (the
    // header and the empty line after it are counted here too).
    let most = body.len() / 16 + 2;
    let mut lines: Vec<Line> = Vec::with_capacity(most);
    // Stream offsets of each line, for the shape checks at the end.
    let mut line_offsets = Vec::with_capacity(most);
    let mut deviations: Vec<Deviation> = Vec::new();
    // Each kind of deviation once per telegram, at its first occurrence.
    let mut deviate = |off: usize, kind: DeviationKind| {
        if !deviations
            .iter()
            .any(|d| std::mem::discriminant(&d.kind) == std::mem::discriminant(&kind))
        {
            deviations.push(Deviation {
                offset: start + off as u64,
                kind,
            });
        }
    };
    let whole_text = std::str::from_utf8(body).ok();
    let mut off = 0;
    // One search over the body for its line ends, not one per line.
    let mut line_ends = memchr::memchr_iter(b'\n', body);
    while off < body.len() {
        let rest = &body[off..];
        let Some(nl) = line_ends.next().map(|end| end - off) else {
            return Err(malformed(off, "`!` must start a line of its own"));
        };
        let line = match rest[..nl].strip_suffix(b"\r") {
            Some(line) => line,
            None => {
                deviate(off + nl, DeviationKind::LfLineEnd);
                &rest[..nl]
            }
        };
        // Checked without an early exit so that it vectorises; the position is looked
        // up only for a line that fails.
        let printable = line
            .iter()
            .fold(true, |ok, &b| ok & (b.wrapping_sub(0x20) < 0x5f));
        if !printable {
            let p = line
                .iter()
                .position(|&b| !(0x20..=0x7e).contains(&b))
                .unwrap_or(0);
            return Err(malformed(off + p, "byte outside printable ASCII"));
        }
        // A printable line is ASCII: a slice of the body's text when the whole body
        // is text (one validation per telegram, not one per line).
        let text = match whole_text {
            Some(all) => &all[off..off + line.len()],
            None => std::str::from_utf8(line)
                .map_err(|_| malformed(off, "byte outside printable ASCII"))?,
        };
        if off == 0 {
            let h = parse_header(text).ok_or_else(|| {
                malformed(
                    0,
                    "header is not /XXXZ<identification> (3 letters, baud character)",
                )
            })?;
            if !h.baud.is_ascii_alphanumeric() {
                deviate(4, DeviationKind::HeaderBaudCharacter { found: h.baud });
            }
            header = Some(h);
        } else if text.starts_with('(') {
            // DSMR 2.2/3.0 put the gas reading on a line of its own after `0-n:24.3.0`.
            let Some(last) = lines.last_mut() else {
                return Err(malformed(
                    off,
                    "continuation line `(...)` without an object before it",
                ));
            };
            add_groups(last, text).map_err(|(p, kind)| at(off + p, kind))?;
        } else if !text.is_empty() {
            // DSMR puts an empty line after the header; empty lines elsewhere are harmless.
            let open =
                find_byte(text, b'(').ok_or_else(|| malformed(off, "expected OBIS(value)"))?;
            let (reference, group_f) = match split_at_byte(&text[..open], b'*') {
                Some((r, f)) => (r, Some(f)),
                None => (&text[..open], None),
            };
            let obis = Obis::parse(reference)
                .ok_or_else(|| malformed(off, "does not start with an OBIS reference A-B:C.D.E"))?;
            if let Some(f) = group_f {
                let f = (!f.is_empty() && f.len() <= 3 && f.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| f.parse::<u8>().ok())
                    .flatten()
                    .ok_or_else(|| malformed(off, "OBIS value group F after `*` is not 0-255"))?;
                deviate(off, DeviationKind::ObisValueGroupF { f });
            }
            // Filled where it lies in `lines`: a line is moved once, empty.
            lines.push(Line {
                obis,
                values: SmallVec::new(),
                raw: CompactString::default(),
            });
            line_offsets.push(off);
            if let Some(line) = lines.last_mut() {
                add_groups(line, &text[open..]).map_err(|(p, kind)| at(off + open + p, kind))?;
            }
        }
        off += nl + 1;
    }
    for (line, &off) in lines.iter().zip(&line_offsets) {
        if let Err(reason) = check_shape(line) {
            return Err(at(
                off,
                ErrorKind::BadValue {
                    obis: line.obis,
                    reason,
                },
            ));
        }
    }
    let header = header.ok_or_else(|| malformed(0, "telegram has no header line"))?;
    // The trailer's LF-only ending is the same deviation as the lines'.
    for d in trailer {
        deviate((d.offset - start) as usize, d.kind);
    }
    deviations.sort_by_key(|d| d.offset);
    Ok(Telegram {
        offset: start,
        header,
        lines,
        crc,
        deviations,
    })
}

fn parse_header(text: &str) -> Option<Header> {
    let b = text.as_bytes();
    let (manufacturer, baud) = (b.get(1..4)?, *b.get(4)?);
    // The baud character may be any printable one (a deviation when not a digit or a
    // letter); `text` is printable ASCII already.
    if !manufacturer.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    Some(Header {
        manufacturer: CompactString::from(&text[1..4]),
        baud: char::from(baud),
        identification: CompactString::from(&text[5..]),
    })
}

/// Appends the `(..)(..)` groups of `text` to `line`; on error, the offset in `text`.
fn add_groups(line: &mut Line, text: &str) -> Result<(), (usize, ErrorKind)> {
    let malformed = |p, reason| (p, ErrorKind::MalformedLine { reason });
    let mut p = 0;
    while p < text.len() {
        if !text[p..].starts_with('(') {
            return Err(malformed(p, "expected `(` after `)`"));
        }
        let content = &text[p + 1..];
        // One scan for the `)` that closes the group and any `(` before it.
        let close = match content.bytes().position(|b| b == b')' || b == b'(') {
            Some(i) if content.as_bytes()[i] == b')' => i,
            Some(i) if find_byte(&content[i..], b')').is_some() => {
                return Err(malformed(p, "`(` inside a group"));
            }
            _ => return Err(malformed(p, "`(` without `)`")),
        };
        let content = &content[..close];
        let value = typed(line.obis, line.values.len(), content).map_err(|reason| {
            (
                p + 1,
                ErrorKind::BadValue {
                    obis: line.obis,
                    reason,
                },
            )
        })?;
        line.values.push(value);
        p += close + 2;
    }
    if line.raw.is_empty() {
        line.raw = CompactString::from(text);
    } else {
        line.raw.push_str(text);
    }
    Ok(())
}

/// The first `byte` of `text` (ASCII): a plain byte scan, which beats the `char`
/// searcher on the short texts of a telegram.
fn find_byte(text: &str, byte: u8) -> Option<usize> {
    text.bytes().position(|b| b == byte)
}

/// `text` split at its first `byte` (ASCII), which is dropped.
fn split_at_byte(text: &str, byte: u8) -> Option<(&str, &str)> {
    find_byte(text, byte).map(|i| (&text[..i], &text[i + 1..]))
}

/// What the group at `idx` of an object must hold. Objects not listed are
/// typed by shape, so unknown objects never fail.
enum Kind {
    Generic,
    Octets,
    Text,
    Timestamp,
    Decimal,
    Current,
    Count,
    ObisRef,
}

fn kind(obis: Obis, idx: usize) -> Kind {
    match (obis.0, idx) {
        ([0, 0, 96, 1, 1] | [0, _, 96, 1, 0] | [0, 0, 96, 13, 0 | 1], 0) => Kind::Octets,
        ([1, 3, 0, 2, 8] | [0, 0, 96, 14, 0], 0) => Kind::Text,
        ([0, 0, 1, 0, 0] | [0, _, 24, 2, 1], 0) => Kind::Timestamp,
        ([1, 0, 31 | 51 | 71, 7, 0], 0) => Kind::Current,
        // Electricity registers: instantaneous values (D = 7) and energies (D = 8).
        ([1, _, _, 7 | 8, _], 0) | ([0, _, 24, 2, 1], 1) => Kind::Decimal,
        ([1, 0, 99, 97, 0], 0) => Kind::Count,
        ([1, 0, 99, 97, 0], 1) => Kind::ObisRef,
        ([1, 0, 99, 97, 0], i) if i % 2 == 0 => Kind::Timestamp,
        ([1, 0, 99, 97, 0], _) => Kind::Decimal,
        _ => Kind::Generic,
    }
}

fn typed(obis: Obis, idx: usize, text: &str) -> Result<Value, &'static str> {
    Ok(match kind(obis, idx) {
        Kind::Generic => generic(text),
        Kind::Octets => Value::Octets(Octets::new(text)),
        Kind::Text => Value::String(CompactString::from(text)),
        Kind::Timestamp => Value::Timestamp(
            Timestamp::parse(text, true).ok_or("expected a timestamp YYMMDDhhmmssX")?,
        ),
        Kind::Decimal => decimal(text).ok_or("expected a decimal with an optional *unit")?,
        Kind::Current => match decimal(text) {
            Some(v @ Value::Decimal { unit: None, .. }) => v,
            Some(v) if v.unit() == Some("A") => v,
            _ => return Err("expected a current, a decimal in A"),
        },
        // Many DSMR 4/5 meters send an empty log as `1-0:99.97.0()`.
        Kind::Count if text.is_empty() => Value::Empty,
        Kind::Count => Value::Integer(count(text).ok_or("expected a count")?),
        Kind::ObisRef => Value::Obis(Obis::parse(text).ok_or("expected an OBIS reference")?),
    })
}

/// The units meters send are static strings, shared rather than allocated for every
/// value (a `match` rather than a search of a list: it runs for every register).
fn unit(u: &str) -> Cow<'static, str> {
    Cow::Borrowed(match u {
        "kWh" => "kWh",
        "kW" => "kW",
        "A" => "A",
        "V" => "V",
        "m3" => "m3",
        "s" => "s",
        "W" => "W",
        "Wh" => "Wh",
        "GJ" => "GJ",
        "varh" => "varh",
        "var" => "var",
        "kvarh" => "kvarh",
        "kvar" => "kvar",
        "Hz" => "Hz",
        other => return Cow::Owned(other.to_owned()),
    })
}

/// `digits[.digits][*unit]` with an alphanumeric unit.
fn decimal(text: &str) -> Option<Value> {
    let (number, unit) = match split_at_byte(text, b'*') {
        Some((n, u)) if !u.is_empty() && u.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            (n, Some(self::unit(u)))
        }
        Some(_) => return None,
        None => (text, None),
    };
    Some(Value::Decimal {
        value: number.parse::<Decimal>().ok()?,
        unit,
    })
}

/// Digits only (`u64`'s `FromStr` would also take a `+`).
fn count(text: &str) -> Option<u64> {
    text.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| text.parse().ok())
        .flatten()
}

/// Types a group of an object the decoder does not know, by its shape.
fn generic(text: &str) -> Value {
    if text.is_empty() {
        return Value::Empty;
    }
    if let Some(o) = Obis::parse(text) {
        return Value::Obis(o);
    }
    if let Some(t) = Timestamp::parse(text, false) {
        return Value::Timestamp(t);
    }
    if let Some(n) = count(text) {
        return Value::Integer(n);
    }
    decimal(text).unwrap_or_else(|| Value::String(CompactString::from(text)))
}

/// Checks multi-group objects as a whole.
fn check_shape(line: &Line) -> Result<(), &'static str> {
    let n = line.values.len();
    match line.obis.0 {
        [1, 0, 99, 97, 0] => {
            let count = match line.values.first() {
                Some(Value::Integer(c)) => *c,
                Some(Value::Empty) if n == 1 => 0,
                _ => return Err("power-failure log must start with its entry count"),
            };
            let expected = count.checked_mul(2).and_then(|c| c.checked_add(2));
            // An empty log may leave out the `(0-0:96.7.19)` reference.
            if expected != Some(n as u64) && !(count == 0 && n == 1) {
                return Err(
                    "power-failure log: entry count does not match the (time)(duration) pairs",
                );
            }
            Ok(())
        }
        [0, _, 24, 2, 1] if n != 2 => Err("M-Bus reading must be (timestamp)(value*unit)"),
        _ => Ok(()),
    }
}
