//! The decoded telegram: header, lines of typed values, convenience accessors.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use compact_str::CompactString;
use serde::{Serialize, Serializer};
use smallvec::SmallVec;

use crate::Decimal;

/// An OBIS reference `A-B:C.D.E` (the `.F` group is never sent on P1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Obis(pub [u8; 5]);

impl Obis {
    /// DSMR version of the P1 output (`40`, `50`, ...).
    pub const VERSION: Obis = Obis::new(1, 3, 0, 2, 8);
    /// Date and time of the telegram.
    pub const TIMESTAMP: Obis = Obis::new(0, 0, 1, 0, 0);
    /// Equipment identifier (hex octet string).
    pub const EQUIPMENT_ID: Obis = Obis::new(0, 0, 96, 1, 1);
    /// Text message, up to 1024 octets as hex (DSMR 5: 2048 characters).
    pub const TEXT_MESSAGE: Obis = Obis::new(0, 0, 96, 13, 0);
    /// Text message code; the CSP1 puts its firmware id here in plain ASCII.
    pub const TEXT_CODE: Obis = Obis::new(0, 0, 96, 13, 1);
    /// Tariff indicator (a string such as `0001`).
    pub const TARIFF: Obis = Obis::new(0, 0, 96, 14, 0);
    /// Power-failure event log.
    pub const POWER_FAILURE_LOG: Obis = Obis::new(1, 0, 99, 97, 0);
    /// Instantaneous current L1 in A.
    pub const CURRENT_L1: Obis = Obis::new(1, 0, 31, 7, 0);
    /// Instantaneous current L2 in A.
    pub const CURRENT_L2: Obis = Obis::new(1, 0, 51, 7, 0);
    /// Instantaneous current L3 in A.
    pub const CURRENT_L3: Obis = Obis::new(1, 0, 71, 7, 0);

    /// `a-b:c.d.e`.
    pub const fn new(a: u8, b: u8, c: u8, d: u8, e: u8) -> Self {
        Self([a, b, c, d, e])
    }

    /// Parses `A-B:C.D.E` with decimal groups of 1–3 digits, each at most 255.
    pub fn parse(s: &str) -> Option<Self> {
        // One pass over the bytes: this runs for every line and every untyped group.
        const SEPARATORS: [u8; 4] = [b'-', b':', b'.', b'.'];
        let bytes = s.as_bytes();
        let mut out = [0u8; 5];
        let mut group = 0;
        let (mut value, mut digits) = (0u16, 0u8);
        for &b in bytes {
            if b.is_ascii_digit() {
                digits += 1;
                if digits > 3 {
                    return None;
                }
                value = value * 10 + u16::from(b - b'0');
            } else if group < 4 && b == SEPARATORS[group] && digits > 0 {
                out[group] = u8::try_from(value).ok()?;
                group += 1;
                (value, digits) = (0, 0);
            } else {
                return None;
            }
        }
        if group != 4 || digits == 0 {
            return None;
        }
        out[4] = u8::try_from(value).ok()?;
        Some(Self(out))
    }
}

impl FromStr for Obis {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or("not an OBIS reference A-B:C.D.E")
    }
}

impl fmt::Display for Obis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e] = self.0;
        write!(f, "{a}-{b}:{c}.{d}.{e}")
    }
}

impl Serialize for Obis {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Summer or winter time flag of a timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Season {
    /// `S`: daylight-saving time.
    Summer,
    /// `W`: standard time.
    Winter,
}

/// A telegram timestamp `YYMMDDhhmmssX`, kept as written: local time, two-digit
/// year, no time-zone conversion, fields not range-checked because meters send
/// dummies such as `000101010000W` (CSP1) and `632525252525S` (no M-Bus device);
/// see [`Timestamp::is_valid`]. `season` is `None` only for DSMR 2.2/3.0 style
/// 12-digit stamps where the object demands a timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Timestamp {
    /// `YY`, two-digit year.
    pub year: u8,
    /// `MM`.
    pub month: u8,
    /// `DD`.
    pub day: u8,
    /// `hh`.
    pub hour: u8,
    /// `mm`.
    pub minute: u8,
    /// `ss`.
    pub second: u8,
    /// `S` or `W`.
    pub season: Option<Season>,
}

impl Timestamp {
    /// Parses twelve digits followed by `S`/`W` (or nothing, if `season_optional`).
    pub fn parse(s: &str, season_optional: bool) -> Option<Self> {
        let b = s.as_bytes();
        let season = match b.get(12) {
            Some(b'S') => Some(Season::Summer),
            Some(b'W') => Some(Season::Winter),
            None if season_optional => None,
            _ => return None,
        };
        if b.len() != 12 + usize::from(season.is_some()) || !b[..12].iter().all(u8::is_ascii_digit)
        {
            return None;
        }
        let f = |i: usize| (b[i] - b'0') * 10 + (b[i + 1] - b'0');
        Some(Self {
            year: f(0),
            month: f(2),
            day: f(4),
            hour: f(6),
            minute: f(8),
            second: f(10),
            season,
        })
    }

    /// Whether the fields could be a date and time (month 1–12, day 1–31,
    /// hour 0–23, minute 0–59, second 0–60); false for `632525252525S`.
    pub fn is_valid(&self) -> bool {
        (1..=12).contains(&self.month)
            && (1..=31).contains(&self.day)
            && self.hour <= 23
            && self.minute <= 59
            && self.second <= 60
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            year,
            month,
            day,
            hour,
            minute,
            second,
            season,
        } = *self;
        let x = match season {
            Some(Season::Summer) => "S",
            Some(Season::Winter) => "W",
            None => "",
        };
        write!(
            f,
            "{year:02}{month:02}{day:02}{hour:02}{minute:02}{second:02}{x}"
        )
    }
}

/// An octet-string value. The standard sends these as hex, two characters per
/// byte; some devices (the CSP1's `0-0:96.13.1`) send plain ASCII instead.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Octets {
    /// The text between the parentheses, exactly as sent.
    pub raw: CompactString,
    /// The decoded bytes, when `raw` is valid hex pairs (either case). Boxed: a
    /// value is moved several times on its way into a line, and a smaller value
    /// moves faster.
    pub bytes: Option<Box<[u8]>>,
}

impl Octets {
    pub(crate) fn new(raw: &str) -> Self {
        let b = raw.as_bytes();
        let nibble = |c: u8| (c as char).to_digit(16).map(|v| v as u8);
        let bytes = b
            .len()
            .is_multiple_of(2)
            .then(|| {
                b.chunks_exact(2)
                    .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
                    .collect()
            })
            .flatten();
        Self {
            raw: CompactString::from(raw),
            bytes,
        }
    }

    /// The text this value stands for: the decoded bytes when they are hex and
    /// decode to printable UTF-8, otherwise the raw text (plain-ASCII senders,
    /// and numeric codes such as DSMR 4's `96.13.1(12345678)` that are not text).
    pub fn text(&self) -> &str {
        match self.bytes.as_deref().map(std::str::from_utf8) {
            Some(Ok(s)) if !s.chars().any(char::is_control) => s,
            _ => &self.raw,
        }
    }
}

/// One `(...)` group of a data line, typed.
///
/// Objects the decoder knows are typed by their OBIS (octet strings, strings,
/// timestamps, electricity registers); the groups of any other line are typed
/// by their shape, falling back to [`Value::String`], so unknown lines are kept.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    /// `()`.
    Empty,
    /// A DSMR `F` value, optionally with its unit: `024*A`, `000000.000*kWh`.
    Decimal {
        /// The number, exactly as written.
        value: Decimal,
        /// The text after `*`, if any.
        /// The common units are static strings: no allocation per value.
        unit: Option<Cow<'static, str>>,
    },
    /// Digits only, in an object not known to be a decimal register (`0-0:96.3.10(1)`).
    Integer(u64),
    /// A string (`S` values such as the version `40`) or any group of unknown shape.
    String(CompactString),
    /// `YYMMDDhhmmssX`.
    Timestamp(Timestamp),
    /// A hex octet string (equipment id, text message), see [`Octets`].
    Octets(Octets),
    /// An OBIS reference inside a group, as in the power-failure log.
    Obis(Obis),
}

impl Value {
    /// The decimal, if this is one.
    pub fn as_decimal(&self) -> Option<Decimal> {
        match self {
            Value::Decimal { value, .. } => Some(*value),
            _ => None,
        }
    }

    /// The timestamp, if this is one.
    pub fn as_timestamp(&self) -> Option<&Timestamp> {
        match self {
            Value::Timestamp(t) => Some(t),
            _ => None,
        }
    }

    /// The unit of a decimal (`A`, `kWh`, `m3`, `s`).
    pub fn unit(&self) -> Option<&str> {
        match self {
            Value::Decimal { unit, .. } => unit.as_deref(),
            _ => None,
        }
    }
}

/// A data line `OBIS(value)(value)...`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Line {
    /// The object.
    pub obis: Obis,
    /// The groups, typed, in the order sent (one inline, more on the heap).
    pub values: SmallVec<[Value; 1]>,
    /// The groups exactly as sent, e.g. `(024*A)`; a DSMR 2.2/3.0 continuation
    /// line (a line that starts with `(`) is appended here. Inline up to 24 bytes.
    pub raw: CompactString,
}

/// The header line `/XXXZident`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Header {
    /// Three-letter manufacturer flag (`XMX`, `ISk`).
    pub manufacturer: CompactString,
    /// Baud-rate character (`5` for DSMR 4/5 devices).
    pub baud: char,
    /// Identification: everything after the baud character.
    pub identification: CompactString,
}

/// The three phases, for [`Telegram::current`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// `1-0:31.7.0`.
    L1,
    /// `1-0:51.7.0`.
    L2,
    /// `1-0:71.7.0`.
    L3,
}

/// One power failure from the `1-0:99.97.0` log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PowerFailure<'a> {
    /// When the failure ended.
    pub end: &'a Timestamp,
    /// How long it lasted, in seconds.
    pub duration_s: Decimal,
}

/// One `0-n:24.2.1` M-Bus device reading (gas, water, heat).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MbusReading<'a> {
    /// The M-Bus channel `n` (1–4).
    pub channel: u8,
    /// When the device captured the value.
    pub captured: &'a Timestamp,
    /// The meter reading.
    pub value: Decimal,
    /// Its unit (`m3`, `GJ`).
    pub unit: Option<&'a str>,
}

/// A decoded telegram. Lines are kept in the order sent but every accessor looks
/// them up by OBIS: DSMR fixes neither their number nor their order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Telegram {
    /// Stream offset of the leading `/`.
    pub offset: u64,
    /// The header line.
    pub header: Header,
    /// The data lines.
    pub lines: Vec<Line>,
    /// The CRC sent and verified, or `None` for a DSMR 2.2/3.0 telegram that ends
    /// with a bare `!` and carries no CRC (its content could not be checked).
    pub crc: Option<u16>,
    /// Where the telegram departs from the letter of the specification in ways real
    /// meters do and that leave its content unambiguous (decoded, and reported).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deviations: Vec<Deviation>,
}

/// A departure from the P1 specification that the decoder accepts, with the stream
/// offset where it was seen.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Deviation {
    /// Stream offset of the first byte concerned.
    pub offset: u64,
    /// What it is.
    pub kind: DeviationKind,
}

impl fmt::Display for Deviation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P1 stream at byte {}: {}", self.offset, self.kind)
    }
}

/// The deviations of real meters the decoder accepts. Each is reported once per
/// telegram, at its first occurrence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum DeviationKind {
    /// The CRC after `!` has fewer than 4 hex digits: its leading zeros were left out
    /// (seen from a Warmtelink heat meter gateway, `!B9F`). Checked as the number it is.
    #[error(
        "CRC written with {digits} hex digit(s), its leading zeros left out; checked as {crc:04X}"
    )]
    ShortCrc {
        /// Digits sent (1 to 3).
        digits: u8,
        /// The CRC they give.
        crc: u16,
    },
    /// The header's baud rate character (after the 3 manufacturer letters) is neither
    /// a digit nor a letter (the Warmtelink gateway: `/NWA-WARMTELINK`).
    #[error("header's baud rate character `{found}` is neither a digit nor a letter")]
    HeaderBaudCharacter {
        /// The character sent.
        found: char,
    },
    /// Lines end with LF alone, not CRLF (a converter that strips CR).
    #[error("line ends with LF alone, not CRLF")]
    LfLineEnd,
    /// OBIS references carry the value group F, `A-B:C.D.E*F`, which P1 leaves out
    /// (EasyMeter Q3D through its COM-1 gateway: `1-0:1.8.0*255`).
    #[error("OBIS reference with a value group F (`*{f}`), which P1 leaves out")]
    ObisValueGroupF {
        /// The value of F.
        f: u8,
    },
}

impl Telegram {
    /// The first line with this OBIS.
    pub fn line(&self, obis: Obis) -> Option<&Line> {
        self.lines.iter().find(|l| l.obis == obis)
    }

    /// The first value of the first line with this OBIS.
    pub fn value(&self, obis: Obis) -> Option<&Value> {
        self.line(obis)?.values.first()
    }

    /// The current of one phase in A, exactly as sent.
    pub fn current(&self, phase: Phase) -> Option<Decimal> {
        let obis = match phase {
            Phase::L1 => Obis::CURRENT_L1,
            Phase::L2 => Obis::CURRENT_L2,
            Phase::L3 => Obis::CURRENT_L3,
        };
        self.value(obis)?.as_decimal()
    }

    /// Currents L1, L2, L3 in A.
    pub fn currents(&self) -> [Option<Decimal>; 3] {
        [Phase::L1, Phase::L2, Phase::L3].map(|p| self.current(p))
    }

    /// The DSMR version string of `1-3:0.2.8` (`40`, `50`); absent before DSMR 4.
    pub fn version(&self) -> Option<&str> {
        match self.value(Obis::VERSION)? {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The firmware id in `0-0:96.13.1`: hex-decoded if hex, else the plain
    /// ASCII the CSP1 sends (`XMX_P1CS_V05`). Plain text made only of hex digit
    /// pairs cannot be told from hex; the line's [`Octets::raw`] keeps it as sent.
    pub fn firmware_id(&self) -> Option<&str> {
        self.octets(Obis::TEXT_CODE).map(Octets::text)
    }

    /// The equipment identifier `0-0:96.1.1`.
    pub fn equipment_id(&self) -> Option<&Octets> {
        self.octets(Obis::EQUIPMENT_ID)
    }

    /// The text message `0-0:96.13.0`.
    pub fn text_message(&self) -> Option<&Octets> {
        self.octets(Obis::TEXT_MESSAGE)
    }

    /// The telegram's timestamp `0-0:1.0.0`.
    pub fn timestamp(&self) -> Option<&Timestamp> {
        self.value(Obis::TIMESTAMP)?.as_timestamp()
    }

    /// The power-failure log `1-0:99.97.0`, oldest entry as sent first. The
    /// decoder has checked its shape, so this is empty only if there is none.
    pub fn power_failures(&self) -> Vec<PowerFailure<'_>> {
        let Some(line) = self.line(Obis::POWER_FAILURE_LOG) else {
            return Vec::new();
        };
        line.values
            .get(2..)
            .unwrap_or_default()
            .chunks_exact(2)
            .filter_map(|pair| {
                Some(PowerFailure {
                    end: pair[0].as_timestamp()?,
                    duration_s: pair[1].as_decimal()?,
                })
            })
            .collect()
    }

    /// All `0-n:24.2.1` M-Bus readings, by channel as sent.
    pub fn mbus_readings(&self) -> Vec<MbusReading<'_>> {
        self.lines
            .iter()
            .filter(|l| is_mbus_reading(l.obis))
            .filter_map(|l| {
                Some(MbusReading {
                    channel: l.obis.0[1],
                    captured: l.values.first()?.as_timestamp()?,
                    value: l.values.get(1)?.as_decimal()?,
                    unit: l.values.get(1)?.unit(),
                })
            })
            .collect()
    }

    fn octets(&self, obis: Obis) -> Option<&Octets> {
        match self.value(obis)? {
            Value::Octets(o) => Some(o),
            _ => None,
        }
    }
}

pub(crate) fn is_mbus_reading(o: Obis) -> bool {
    matches!(o.0, [0, _, 24, 2, 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn obis_round_trips_and_rejects() {
        let o = Obis::parse("1-0:31.7.0").unwrap();
        assert_eq!(o, Obis::CURRENT_L1);
        assert_eq!(o.to_string(), "1-0:31.7.0");
        for bad in [
            "",
            "1-0:31.7",
            "1-0:31.7.0.255",
            "1-0:256.7.0",
            "1-0:31.7.",
            "a-0:1.2.3",
            "1-0:31.7.0001",
            "1-0:31:7.0",
            "1-0-31.7.0",
            "-0:31.7.0",
        ] {
            assert_eq!(Obis::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn timestamps_keep_their_fields() {
        let t = Timestamp::parse("101208152415W", false).unwrap();
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute, t.second),
            (10, 12, 8, 15, 24, 15)
        );
        assert_eq!(t.season, Some(Season::Winter));
        assert_eq!(t.to_string(), "101208152415W");
        assert!(Timestamp::parse("000101010000W", false).unwrap().is_valid());
        assert!(!Timestamp::parse("632525252525S", false).unwrap().is_valid());
        assert!(Timestamp::parse("090212160000", false).is_none());
        assert_eq!(Timestamp::parse("090212160000", true).unwrap().season, None);
        assert!(Timestamp::parse("10120815241S", false).is_none());
        assert!(Timestamp::parse("101208152415X", false).is_none());
    }

    #[test]
    fn octets_fall_back_to_plain_text() {
        let hex = Octets::new("4530303030");
        assert_eq!(hex.bytes.as_deref(), Some(&b"E0000"[..]));
        assert_eq!(hex.text(), "E0000");
        assert_eq!(Octets::new("4a4B").text(), "JK");
        let plain = Octets::new("XMX_P1CS_V05");
        assert_eq!(plain.bytes, None);
        assert_eq!(plain.text(), "XMX_P1CS_V05");
        assert_eq!(Octets::new("453").bytes, None);
    }
}
