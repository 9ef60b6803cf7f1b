//! SCPI / IEEE 488.2 response parsing. Total over arbitrary bytes: every input gives a
//! value or an error, never a panic (a fuzz target relies on this).

use crate::InstrumentIdentity;

/// One element of a response message.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// NR1, NR2, NR3 or #H/#Q/#B data. SCPI's 9.91E37 is NaN, ±9.9E37 is ±infinity.
    Number(f64),
    /// String data, quotes removed and doubled quotes collapsed.
    String(String),
    /// Character data (a mnemonic such as `ON`, `FIXED`, `RUNNING`).
    Word(String),
    /// Arbitrary block data (`#<n><length><bytes>` or `#0<bytes>`).
    Block(Vec<u8>),
}

impl Value {
    /// The number, also for the mnemonics some instruments send instead of the
    /// 9.91E37 convention (`NAN`, `INF`, `NINF`).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            Value::Word(w) => match w.to_ascii_uppercase().as_str() {
                "NAN" => Some(f64::NAN),
                "INF" => Some(f64::INFINITY),
                "NINF" => Some(f64::NEG_INFINITY),
                _ => None,
            },
            _ => None,
        }
    }

    /// `1`/`0` or `ON`/`OFF`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Number(n) if *n == 1.0 => Some(true),
            Value::Number(n) if *n == 0.0 => Some(false),
            Value::Word(w) if w.eq_ignore_ascii_case("ON") => Some(true),
            Value::Word(w) if w.eq_ignore_ascii_case("OFF") => Some(false),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::Word(s) => Some(s),
            _ => None,
        }
    }
}

/// A whole response: its comma-separated elements.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub values: Vec<Value>,
}

impl Reply {
    /// The only element, if there is exactly one.
    pub fn single(&self) -> Option<&Value> {
        match self.values.as_slice() {
            [v] => Some(v),
            _ => None,
        }
    }

    /// Every element as a number, if they all are.
    pub fn numbers(&self) -> Option<Vec<f64>> {
        self.values.iter().map(Value::as_f64).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScpiParseError {
    #[error("empty reply")]
    Empty,
    #[error("empty element at byte {0}")]
    EmptyElement(usize),
    #[error("unterminated string starting at byte {0}")]
    UnterminatedString(usize),
    #[error("invalid number `{text}` at byte {at}")]
    InvalidNumber { at: usize, text: String },
    #[error("unexpected byte 0x{byte:02x} at {at}")]
    Unexpected { at: usize, byte: u8 },
    #[error("malformed block data at byte {0}")]
    BadBlock(usize),
    #[error("text is not UTF-8 at byte {0}")]
    NotUtf8(usize),
}

/// SCPI-99 §7.2.1.5 "not a number" and the ±infinity representations.
const SCPI_NAN: f64 = 9.91e37;
const SCPI_INF: f64 = 9.9e37;

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t' || b == b'\r'
}

/// Parse one response message (with or without its `\n` / `\r\n` terminator).
pub fn parse_reply(bytes: &[u8]) -> Result<Reply, ScpiParseError> {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    let mut p = Parser { b: bytes, pos: 0 };
    let mut values = Vec::new();
    loop {
        p.skip_space();
        if p.pos >= p.b.len() {
            return Err(if values.is_empty() {
                ScpiParseError::Empty
            } else {
                ScpiParseError::EmptyElement(p.pos)
            });
        }
        if matches!(p.b[p.pos], b',' | b';') {
            return Err(ScpiParseError::EmptyElement(p.pos));
        }
        values.push(p.element()?);
        p.skip_space();
        match p.peek() {
            None => break,
            // A `;` separates the replies to several queries of one program message.
            Some(b',') | Some(b';') => p.pos += 1,
            Some(byte) => return Err(ScpiParseError::Unexpected { at: p.pos, byte }),
        }
    }
    Ok(Reply { values })
}

struct Parser<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.pos += 1;
        }
    }

    fn element(&mut self) -> Result<Value, ScpiParseError> {
        let at = self.pos;
        match self.peek() {
            Some(q @ (b'"' | b'\'')) => self.string(q),
            Some(b'#') => self.hash(),
            Some(b'+' | b'-' | b'.' | b'0'..=b'9') => self.number(),
            Some(b) if b.is_ascii_alphabetic() => {
                let end = self.scan(|b| b.is_ascii_alphanumeric() || b == b'_');
                Ok(Value::Word(ascii(&self.b[at..end])))
            }
            Some(byte) => Err(ScpiParseError::Unexpected { at, byte }),
            None => Err(ScpiParseError::EmptyElement(at)),
        }
    }

    /// Advance over bytes matching `f`; returns the end position.
    fn scan(&mut self, f: impl Fn(u8) -> bool) -> usize {
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        self.pos
    }

    fn string(&mut self, quote: u8) -> Result<Value, ScpiParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(ScpiParseError::UnterminatedString(start)),
                Some(b) if b == quote => {
                    if self.b.get(self.pos + 1) == Some(&quote) {
                        out.push(quote);
                        self.pos += 2;
                    } else {
                        self.pos += 1;
                        break;
                    }
                }
                Some(b) => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
        String::from_utf8(out)
            .map(Value::String)
            .map_err(|e| ScpiParseError::NotUtf8(start + 1 + e.utf8_error().valid_up_to()))
    }

    fn hash(&mut self) -> Result<Value, ScpiParseError> {
        let at = self.pos;
        let Some(kind) = self.b.get(at + 1).copied() else {
            return Err(ScpiParseError::BadBlock(at));
        };
        self.pos = at + 2;
        let radix = match kind.to_ascii_uppercase() {
            b'H' => 16,
            b'Q' => 8,
            b'B' => 2,
            b'0' => {
                // Indefinite block: everything up to the end of the message.
                let data = self.b[self.pos..].to_vec();
                self.pos = self.b.len();
                return Ok(Value::Block(data));
            }
            d @ b'1'..=b'9' => return self.block(at, usize::from(d - b'0')),
            _ => return Err(ScpiParseError::BadBlock(at)),
        };
        let start = self.pos;
        let end = self.scan(|b| b.is_ascii_alphanumeric());
        let text = ascii(&self.b[start..end]);
        u64::from_str_radix(&text, radix)
            .map(|n| Value::Number(n as f64))
            .map_err(|_| ScpiParseError::InvalidNumber {
                at,
                text: ascii(&self.b[at..end]),
            })
    }

    fn block(&mut self, at: usize, digits: usize) -> Result<Value, ScpiParseError> {
        let len_end = self
            .pos
            .checked_add(digits)
            .ok_or(ScpiParseError::BadBlock(at))?;
        let len_bytes = self
            .b
            .get(self.pos..len_end)
            .ok_or(ScpiParseError::BadBlock(at))?;
        if !len_bytes.iter().all(u8::is_ascii_digit) {
            return Err(ScpiParseError::BadBlock(at));
        }
        let len: usize = ascii(len_bytes)
            .parse()
            .map_err(|_| ScpiParseError::BadBlock(at))?;
        let data_end = len_end
            .checked_add(len)
            .ok_or(ScpiParseError::BadBlock(at))?;
        let data = self
            .b
            .get(len_end..data_end)
            .ok_or(ScpiParseError::BadBlock(at))?;
        self.pos = data_end;
        Ok(Value::Block(data.to_vec()))
    }

    fn number(&mut self) -> Result<Value, ScpiParseError> {
        let at = self.pos;
        let end =
            self.scan(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
        let text = ascii(&self.b[at..end]);
        let invalid = || ScpiParseError::InvalidNumber {
            at,
            text: text.clone(),
        };
        // The delimiter check keeps "230V" or "1.5E3X" from passing as numbers.
        if self
            .peek()
            .is_some_and(|b| !is_space(b) && b != b',' && b != b';')
        {
            let stop = self.scan(|b| !is_space(b) && b != b',' && b != b';');
            return Err(ScpiParseError::InvalidNumber {
                at,
                text: String::from_utf8_lossy(&self.b[at..stop]).into_owned(),
            });
        }
        if !is_decimal_numeric(&text) {
            return Err(invalid());
        }
        let n: f64 = text.parse().map_err(|_| invalid())?;
        Ok(Value::Number(if n == SCPI_NAN {
            f64::NAN
        } else if n == SCPI_INF {
            f64::INFINITY
        } else if n == -SCPI_INF {
            f64::NEG_INFINITY
        } else {
            n
        }))
    }
}

/// IEEE 488.2 decimal numeric: [sign] digits [. digits] [E [sign] digits], with at least
/// one mantissa digit.
fn is_decimal_numeric(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let int_start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let mut mantissa_digits = i - int_start;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let frac_start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        mantissa_digits += i - frac_start;
    }
    if mantissa_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == b.len()
}

fn ascii(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One entry of the SCPI error queue, e.g. `-222,"Data out of range"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScpiError {
    pub code: i32,
    pub message: String,
}

impl ScpiError {
    /// Parses `<code>,"<message>"`; the message may be unquoted (some firmware) or
    /// absent.
    pub fn parse(reply: &[u8]) -> Option<ScpiError> {
        let text = String::from_utf8_lossy(reply);
        let text = text.trim();
        let (code, message) = match text.split_once(',') {
            Some((c, m)) => (c.trim(), m.trim()),
            None => (text, ""),
        };
        let code: i32 = code.strip_prefix('+').unwrap_or(code).parse().ok()?;
        let message = match parse_reply(message.as_bytes()) {
            Ok(Reply { values }) if matches!(values.as_slice(), [Value::String(_)]) => {
                values[0].as_str().unwrap_or_default().to_string()
            }
            _ => message.to_string(),
        };
        Some(ScpiError { code, message })
    }

    /// Code 0 is the "No error" entry that ends the queue.
    pub fn is_error(&self) -> bool {
        self.code != 0
    }
}

impl std::fmt::Display for ScpiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},\"{}\"", self.code, self.message)
    }
}

/// `*IDN?` → manufacturer, model, serial, firmware. Firmware keeps every field from the
/// fourth on (Chroma reports one version per board: "1.00,1.01,1.02").
pub fn parse_idn(reply: &[u8]) -> Option<InstrumentIdentity> {
    let text = String::from_utf8_lossy(reply);
    let fields: Vec<&str> = text.trim().split(',').map(str::trim).collect();
    if fields.len() < 4 || fields[0].is_empty() || fields[1].is_empty() {
        return None;
    }
    Some(InstrumentIdentity {
        manufacturer: fields[0].to_string(),
        model: fields[1].to_string(),
        serial_number: fields[2].to_string(),
        firmware: fields[3..].join(","),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn one(s: &str) -> Value {
        let r = parse_reply(s.as_bytes()).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        assert_eq!(r.values.len(), 1, "{s:?}");
        r.values[0].clone()
    }

    #[test]
    fn numbers_in_every_format() {
        assert_eq!(one("+1.23450E+02\n"), Value::Number(123.45));
        assert_eq!(one("42"), Value::Number(42.0));
        assert_eq!(one("-0.5"), Value::Number(-0.5));
        assert_eq!(one(".5"), Value::Number(0.5));
        assert_eq!(one("5."), Value::Number(5.0));
        assert_eq!(one("2.43E4\r\n"), Value::Number(24300.0));
        assert_eq!(one("1e-3"), Value::Number(0.001));
        assert_eq!(one("  7  "), Value::Number(7.0));
        assert_eq!(one("#HFF"), Value::Number(255.0));
        assert_eq!(one("#Q17"), Value::Number(15.0));
        assert_eq!(one("#B101"), Value::Number(5.0));
    }

    #[test]
    fn scpi_nan_and_infinity() {
        assert!(matches!(one("9.91E+37"), Value::Number(n) if n.is_nan()));
        assert!(matches!(one("+9.910000E+37"), Value::Number(n) if n.is_nan()));
        assert_eq!(one("9.9E37"), Value::Number(f64::INFINITY));
        assert_eq!(one("-9.9E37"), Value::Number(f64::NEG_INFINITY));
        assert!(one("NAN").as_f64().unwrap().is_nan());
    }

    #[test]
    fn strings_words_lists_and_blocks() {
        assert_eq!(one("\"No error\""), Value::String("No error".into()));
        assert_eq!(
            one("'say \"\"hi\"\"'"),
            Value::String("say \"\"hi\"\"".into())
        );
        assert_eq!(
            one("\"a \"\"quoted\"\" word\""),
            Value::String("a \"quoted\" word".into())
        );
        assert_eq!(one("RUNNING"), Value::Word("RUNNING".into()));
        let r = parse_reply(b"-222,\"Data out of range\"\n").unwrap();
        assert_eq!(
            r.values,
            vec![
                Value::Number(-222.0),
                Value::String("Data out of range".into())
            ]
        );
        let r = parse_reply(b"1.0E0, 2 ,ON;3").unwrap();
        assert_eq!(r.numbers(), None);
        assert_eq!(r.values[2].as_bool(), Some(true));
        assert_eq!(r.values.len(), 4);
        assert_eq!(one("#15a,b\n\x01"), Value::Block(b"a,b\n\x01".to_vec()));
        assert_eq!(one("#0raw bytes"), Value::Block(b"raw bytes".to_vec()));
        // Fluke lists harmonics as one quoted string of numbers.
        let inner = one("\"2.5E1,9.0E1,0.0E0\"");
        let nested = parse_reply(inner.as_str().unwrap().as_bytes()).unwrap();
        assert_eq!(nested.numbers(), Some(vec![25.0, 90.0, 0.0]));
    }

    #[test]
    fn malformed_replies_are_errors() {
        assert_eq!(parse_reply(b""), Err(ScpiParseError::Empty));
        assert_eq!(parse_reply(b"\r\n"), Err(ScpiParseError::Empty));
        assert_eq!(parse_reply(b"1,"), Err(ScpiParseError::EmptyElement(2)));
        assert_eq!(parse_reply(b",1"), Err(ScpiParseError::EmptyElement(0)));
        assert_eq!(
            parse_reply(b"\"open"),
            Err(ScpiParseError::UnterminatedString(0))
        );
        assert!(matches!(
            parse_reply(b"230V"),
            Err(ScpiParseError::InvalidNumber { .. })
        ));
        assert!(matches!(
            parse_reply(b"1.2.3"),
            Err(ScpiParseError::InvalidNumber { .. })
        ));
        assert!(matches!(
            parse_reply(b"1E"),
            Err(ScpiParseError::InvalidNumber { .. })
        ));
        assert!(matches!(
            parse_reply(b"-"),
            Err(ScpiParseError::InvalidNumber { .. })
        ));
        assert!(matches!(
            parse_reply(b"#9123"),
            Err(ScpiParseError::BadBlock(0))
        ));
        assert!(matches!(
            parse_reply(b"#"),
            Err(ScpiParseError::BadBlock(0))
        ));
        assert!(matches!(
            parse_reply(b"@"),
            Err(ScpiParseError::Unexpected { at: 0, byte: b'@' })
        ));
        assert!(matches!(
            parse_reply(b"1 2"),
            Err(ScpiParseError::Unexpected { at: 2, .. })
        ));
        assert!(matches!(
            parse_reply(b"\"\xff\""),
            Err(ScpiParseError::NotUtf8(1))
        ));
    }

    #[test]
    fn error_queue_entries() {
        let e = ScpiError::parse(b"-222,\"Data out of range\"").unwrap();
        assert_eq!((e.code, e.message.as_str()), (-222, "Data out of range"));
        assert!(e.is_error());
        assert_eq!(e.to_string(), "-222,\"Data out of range\"");
        assert!(!ScpiError::parse(b"0,\"No error\"\n").unwrap().is_error());
        assert!(!ScpiError::parse(b"+0,No error").unwrap().is_error());
        assert_eq!(
            ScpiError::parse(b"-113,Undefined header").unwrap().message,
            "Undefined header"
        );
        assert_eq!(ScpiError::parse(b"garbage"), None);
    }

    #[test]
    fn idn_answers() {
        let id = parse_idn(b"FLUKE,6105A,123456,1.4.0\n").unwrap();
        assert_eq!(
            (
                id.manufacturer.as_str(),
                id.model.as_str(),
                id.serial_number.as_str(),
                id.firmware.as_str()
            ),
            ("FLUKE", "6105A", "123456", "1.4.0")
        );
        let id = parse_idn(b"Chroma ATE,61504,123456,1.00,1.01,1.02").unwrap();
        assert_eq!(
            (id.model.as_str(), id.firmware.as_str()),
            ("61504", "1.00,1.01,1.02")
        );
        assert_eq!(parse_idn(b"just a name"), None);
        assert_eq!(parse_idn(b",,,"), None);
    }

    fn roundtrip(text: &str) -> f64 {
        match parse_reply(text.as_bytes()) {
            Ok(Reply { values }) => match values.as_slice() {
                [Value::Number(n)] => *n,
                other => panic!("{text:?} → {other:?}"),
            },
            Err(e) => panic!("{text:?} → {e}"),
        }
    }

    proptest! {
        #[test]
        fn nr1_round_trips(n in -(1i64 << 53)..(1i64 << 53), plus in any::<bool>()) {
            let text = if plus && n >= 0 { format!("+{n}") } else { n.to_string() };
            prop_assert_eq!(roundtrip(&text), n as f64);
        }

        #[test]
        fn nr2_round_trips(x in -1.0e9f64..1.0e9, decimals in 0usize..9) {
            let text = format!("{x:.decimals$}");
            let expected: f64 = text.parse().unwrap();
            prop_assert_eq!(roundtrip(&text), expected);
        }

        #[test]
        fn nr3_round_trips(x in proptest::num::f64::NORMAL, digits in 0usize..17, lower in any::<bool>()) {
            // "+1.23450E+02" style: explicit signs, upper or lower case exponent.
            let formatted = format!("{x:.digits$E}");
            let (mantissa, exp) = formatted.split_once('E').unwrap();
            let exp: i32 = exp.parse().unwrap();
            let sign = if mantissa.starts_with('-') { "" } else { "+" };
            let e = if lower { 'e' } else { 'E' };
            let text = format!("{sign}{mantissa}{e}{exp:+03}");
            let expected: f64 = formatted.parse().unwrap();
            let parsed = roundtrip(&text);
            if expected == SCPI_NAN {
                prop_assert!(parsed.is_nan());
            } else if expected.abs() == SCPI_INF {
                prop_assert!(parsed.is_infinite());
            } else {
                prop_assert_eq!(parsed, expected);
            }
        }

        #[test]
        fn lists_of_numbers_round_trip(xs in proptest::collection::vec(-1.0e6f64..1.0e6, 1..20)) {
            let text: Vec<String> = xs.iter().map(|x| format!("{x:E}")).collect();
            let r = parse_reply(text.join(",").as_bytes()).unwrap();
            prop_assert_eq!(r.numbers().unwrap(), xs);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_reply(&bytes);
            let _ = ScpiError::parse(&bytes);
            let _ = parse_idn(&bytes);
        }

        #[test]
        fn scpi_looking_bytes_never_panic(s in "[-+.0-9eE#HQB\"', ;a-zA-Z\r\n]{0,64}") {
            let _ = parse_reply(s.as_bytes());
        }
    }
}
