//! Climate sensors: the air temperature and humidity at the bench, read over a serial
//! line from a Vaisala HUMICAP HMT330 series transmitter (also the HMT310, HMP155 and
//! PTU300, which share its serial command set).
//!
//! The transmitter is driven in STOP serial mode (HMT330 User's Guide M210566EN): every
//! command is ASCII ending in CR, the transmitter echoes what it receives, answers, and
//! prints a `>` prompt. `SEND` prints one reading in the configured output form, by
//! default `RH= 45.3 %RH T= 23.1 'C`; `?` prints the device information. The parsers are
//! total over arbitrary text: a value or an error sentence, never a panic (a fuzz target
//! relies on this).

use crate::transport::{SerialSettings, Transport, TransportError};
use crate::{AmbientReading, ClimateSensor, InstrumentError, InstrumentIdentity, InstrumentResult};
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

/// Temperatures a reading may state, °C. The HMT330 probes measure −70…+180 °C; a value
/// beyond this span is a fault or a garbled line, never the air at a bench.
pub const TEMPERATURE_RANGE_C: RangeInclusive<f64> = -80.0..=200.0;

/// Relative humidities a reading may state, % RH. No allowance above 100 %RH: a
/// transmitter reads above 100 only with condensation on its sensor, and no calibration
/// is valid in such air; the value is refused rather than clamped or kept.
pub const HUMIDITY_RANGE_PERCENT_RH: RangeInclusive<f64> = 0.0..=100.0;

/// What the transmitter's `?` answer says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hmt330Identity {
    /// `HMT330`, `HMP155`, `PTU300`, …
    pub model: String,
    pub serial_number: String,
    /// The software version, `5.16`.
    pub firmware: String,
}

/// The serial settings of an HMT330: `baud` (4800 by default), 7 data bits, even parity,
/// one stop bit.
pub fn hmt330_serial_settings(path: impl Into<String>, baud: u32) -> SerialSettings {
    use crate::transport::serial::{DataBits, Parity};
    let mut s = SerialSettings::new(path, baud);
    s.data_bits = DataBits::Seven;
    s.parity = Parity::Even;
    s
}

/// The line quoted for an error message: control characters escaped, at most 120
/// characters (a fuzzer or a line-noise burst can send megabytes).
fn quoted(line: &str) -> String {
    let mut q = String::from("`");
    for (i, c) in line.chars().enumerate() {
        if i == 120 {
            q.push('…');
            break;
        }
        if c.is_control() {
            q.extend(c.escape_default());
        } else {
            q.push(c);
        }
    }
    q.push('`');
    q
}

/// The line without a leading `>` prompt and surrounding whitespace (CR, LF).
fn without_prompt(line: &str) -> &str {
    line.trim().trim_start_matches('>').trim_start()
}

fn is_time(token: &str) -> bool {
    let b = token.as_bytes();
    b.len() == 8
        && b.iter().enumerate().all(|(i, c)| match i {
            2 | 5 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

fn is_date(token: &str) -> bool {
    let b = token.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

/// One `NAME= VALUE UNIT` of the output form.
#[derive(Debug)]
struct Field<'a> {
    name: &'a str,
    value: &'a str,
    unit: Option<&'a str>,
}

/// The form's fields. Values are digits, sign, point or stars; the unit may follow with
/// or without a space (`16.03%RH`); a field without a unit is followed by the next name.
fn fields(mut s: &str) -> Result<Vec<Field<'_>>, String> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start();
        if s.is_empty() {
            break;
        }
        let name_end = s
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(s.len());
        if !s[name_end..].starts_with('=') {
            let token = s.split_whitespace().next().unwrap_or(s);
            return Err(format!("{} is not a NAME= VALUE pair", quoted(token)));
        }
        let name = &s[..name_end];
        if name.is_empty() {
            return Err("a value has no name before its `=`".into());
        }
        s = s[name_end + 1..].trim_start();
        let value_end = s
            .find(|c: char| !matches!(c, '0'..='9' | '+' | '-' | '.' | '*'))
            .unwrap_or(s.len());
        let value = &s[..value_end];
        if value.is_empty() {
            return Err(format!("{}= has no value", quoted(name)));
        }
        s = &s[value_end..];
        let attached = !s.is_empty() && !s.starts_with(char::is_whitespace);
        let t = s.trim_start();
        let token_end = t.find(char::is_whitespace).unwrap_or(t.len());
        let token = &t[..token_end];
        let unit = if attached {
            if token.contains('=') {
                return Err(format!("a value runs into {}", quoted(token)));
            }
            Some(token)
        } else if token.is_empty() || token.contains('=') {
            None
        } else {
            Some(token)
        };
        if unit.is_some() {
            s = &t[token_end..];
        }
        out.push(Field { name, value, unit });
    }
    if out.is_empty() {
        return Err("it holds no NAME= VALUE pair".into());
    }
    Ok(out)
}

/// A field's number, exactly as written (never rounded).
fn number(field: &Field, what: &str, q: &str) -> Result<f64, String> {
    if field.value.contains('*') {
        return Err(format!(
            "the transmitter reports no valid {what} in {q}: stars stand for a value it \
             cannot measure (a missing or broken probe, or air beyond its range)"
        ));
    }
    let v: f64 = field.value.parse().map_err(|_| {
        format!(
            "{}= {} in {q} is not a number",
            field.name,
            quoted(field.value)
        )
    })?;
    if !v.is_finite() {
        return Err(format!(
            "{}= {} in {q} is not a finite number",
            field.name,
            quoted(field.value)
        ));
    }
    Ok(v)
}

fn temperature(field: &Field, q: &str) -> Result<f64, String> {
    let v = number(field, "temperature (T)", q)?;
    match field.unit {
        Some("'C" | "°C") => {}
        Some("'F" | "°F") => {
            return Err(format!(
                "the transmitter reports T in °F in {q}; the bench records °C: set metric \
                 units with the transmitter's UNIT command (`UNIT M`)"
            ));
        }
        Some(other) => {
            return Err(format!(
                "T is in {} in {q}; the bench reads the temperature in 'C",
                quoted(other)
            ));
        }
        None => {
            return Err(format!(
                "T has no unit in {q}, so it could be °C or °F: the bench needs the unit in \
                 the transmitter's output form (FORM), as its default form prints it"
            ));
        }
    }
    if !TEMPERATURE_RANGE_C.contains(&v) {
        return Err(format!(
            "T= {} 'C in {q} is outside {}…{} °C, where no probe of the family measures",
            field.value,
            TEMPERATURE_RANGE_C.start(),
            TEMPERATURE_RANGE_C.end()
        ));
    }
    Ok(v)
}

fn humidity(field: &Field, q: &str) -> Result<f64, String> {
    let v = number(field, "relative humidity (RH)", q)?;
    // RH has a single unit, so a form that leaves it out is still unambiguous.
    if let Some(unit) = field.unit.filter(|u| !matches!(*u, "%RH" | "%")) {
        return Err(format!(
            "RH is in {} in {q}; the bench reads the relative humidity in %RH",
            quoted(unit)
        ));
    }
    if !HUMIDITY_RANGE_PERCENT_RH.contains(&v) {
        return Err(format!(
            "RH= {} %RH in {q} is outside {}…{} %RH: above 100 the sensor has condensation \
             on it (or is faulty), and the air is no valid ambient for a calibration",
            field.value,
            HUMIDITY_RANGE_PERCENT_RH.start(),
            HUMIDITY_RANGE_PERCENT_RH.end()
        ));
    }
    Ok(v)
}

/// One reading line of the transmitter (`RH= 45.3 %RH T= 23.1 'C`).
///
/// A leading `>` prompt, whitespace and CR are ignored, as are a leading `hh:mm:ss` time
/// and `yyyy-mm-dd` date (FTIME, FDATE). `T` must be in `'C`; `RH` in `%RH` is optional
/// (`None` when the form has none); other quantities (`Tdp= 8.0 'C x= 6.7 g/kg`) are
/// skipped. Values are taken exactly as written. Refused, with a sentence quoting the
/// line: a value printed as stars, °F, a temperature outside [`TEMPERATURE_RANGE_C`], a
/// humidity outside [`HUMIDITY_RANGE_PERCENT_RH`], and anything not of this shape.
pub fn parse_reading(line: &str) -> Result<AmbientReading, String> {
    let q = quoted(line.trim());
    let mut rest = without_prompt(line);
    // At most one date and one time precede the values.
    for _ in 0..2 {
        let token = rest.split_whitespace().next().unwrap_or("");
        if !(is_time(token) || is_date(token)) {
            break;
        }
        rest = rest[token.len()..].trim_start();
    }
    let fields =
        fields(rest).map_err(|why| format!("{q} is not a reading of the transmitter: {why}"))?;
    let (mut t, mut rh) = (None, None);
    for f in &fields {
        let slot = match f.name {
            "T" => &mut t,
            "RH" => &mut rh,
            _ => continue,
        };
        if slot.is_some() {
            return Err(format!("{q} states {} twice", f.name));
        }
        *slot = Some(f);
    }
    let t = t.ok_or_else(|| {
        format!(
            "{q} has no temperature: the bench needs `T= … 'C` in the transmitter's output \
             form (FORM)"
        )
    })?;
    Ok(AmbientReading {
        temperature_c: temperature(t, &q)?,
        humidity_percent_rh: rh.map(|f| humidity(f, &q)).transpose()?,
    })
}

/// The serial number of a `Serial number  : F1234567` line, if it is one.
fn serial_number_line(line: &str) -> Option<&str> {
    let (key, value) = line.split_once(':')?;
    let key: Vec<&str> = key.split_whitespace().collect();
    let is_serial = key.len() == 2
        && key[0].eq_ignore_ascii_case("serial")
        && key[1].eq_ignore_ascii_case("number");
    Some(value.trim()).filter(|v| is_serial && !v.is_empty())
}

/// The `MODEL / VERSION` line (`HMT330 / 5.16`), if it is one. Lines with a colon are
/// settings (`Adjust. info : Helsinki / FIN`), never this one.
fn model_line(line: &str) -> Option<(&str, &str)> {
    if line.contains(':') {
        return None;
    }
    let (model, version) = line.split_once('/')?;
    let (model, version) = (model.trim(), version.trim());
    let word = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
    let starts_alphabetic = model.starts_with(|c: char| c.is_ascii_alphabetic());
    (word(model) && word(version) && starts_alphabetic).then_some((model, version))
}

/// The transmitter's answer to `?`: the `MODEL / VERSION` line (`HMT330 / 5.16`) and the
/// `Serial number : F1234567` line, in any order, among any other lines (spacing around
/// the colon and the slash, a leading prompt and the echoed `?` do not matter).
///
/// A missing serial number is refused: the bench compares it with the station file.
pub fn parse_identity(text: &str) -> Result<Hmt330Identity, String> {
    let (mut model, mut serial) = (None, None);
    for line in text.split('\n').map(without_prompt) {
        if let Some(s) = serial_number_line(line) {
            serial.get_or_insert(s);
        } else if let Some(m) = model_line(line) {
            model.get_or_insert(m);
        }
    }
    let q = quoted(text.trim());
    let Some((model, firmware)) = model else {
        return Err(format!(
            "the transmitter's `?` answer {q} has no `MODEL / VERSION` line such as \
             `HMT330 / 5.16`"
        ));
    };
    let Some(serial) = serial else {
        return Err(format!(
            "the transmitter's `?` answer {q} states no serial number (no `Serial number : …` \
             line), so it cannot be compared with the station file"
        ));
    };
    Ok(Hmt330Identity {
        model: model.to_string(),
        serial_number: serial.to_string(),
        firmware: firmware.to_string(),
    })
}

/// Once the serial number line of the `?` answer has arrived, the answer ends at the
/// prompt `>` that begins the line after it (it has no line end to wait for), or, from a
/// transmitter that prints none, at a pause this long: at 4800 baud a line takes under
/// 100 ms.
const QUIET: Duration = Duration::from_millis(300);

/// A Vaisala HMT330 series transmitter in STOP serial mode.
pub struct VaisalaHmt<T: Transport> {
    transport: T,
    timeout: Duration,
    label: String,
}

impl<T: Transport> VaisalaHmt<T> {
    /// `timeout` bounds each request. Nothing is sent until the first request.
    pub fn open(transport: T, timeout: Duration) -> Self {
        VaisalaHmt {
            label: format!("Vaisala HMT330 on {}", transport.describe()),
            transport,
            timeout,
        }
    }

    pub fn transport(&self) -> &T {
        &self.transport
    }

    pub fn into_transport(self) -> T {
        self.transport
    }

    fn instrument(&self) -> String {
        format!("climate sensor ({})", self.label)
    }

    fn link(&self, request: &str, e: TransportError) -> InstrumentError {
        InstrumentError::Link {
            instrument: self.instrument(),
            message: format!("{request}: {e}"),
        }
    }

    /// Send `command` and CR, with whatever the transmitter printed before dropped: a
    /// stale prompt or a late answer is not the answer to this command.
    fn send(&mut self, command: &str) -> InstrumentResult<()> {
        self.transport
            .discard_input()
            .map_err(|e| self.link(&format!("clearing the input before `{command}`"), e))?;
        self.transport
            .write_all(format!("{command}\r").as_bytes())
            .map_err(|e| self.link(&format!("sending `{command}`"), e))
    }

    /// The next line within `wait` (CR removed), `None` when none came.
    fn line(&mut self, request: &str, wait: Duration) -> InstrumentResult<Option<String>> {
        match self.transport.read_until(b'\n', wait) {
            Ok(mut line) => {
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                Ok(Some(String::from_utf8_lossy(&line).into_owned()))
            }
            Err(TransportError::Timeout { .. }) => Ok(None),
            Err(e) => Err(self.link(&format!("waiting for the answer to `{request}`"), e)),
        }
    }

    /// Read the rest of an answer up to the prompt at the start of a line (a `>` within
    /// a line is text), or until the transmitter pauses for [`QUIET`] or `deadline`.
    fn await_prompt(&mut self, request: &str, deadline: Instant) -> InstrumentResult<()> {
        let mut line_start = true;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            match self.transport.read_until(b'>', left.min(QUIET)) {
                Ok(text) => {
                    let text = text.strip_suffix(b"\r").unwrap_or(&text);
                    if text.last().map_or(line_start, |b| *b == b'\n') {
                        return Ok(());
                    }
                    line_start = false;
                }
                Err(TransportError::Timeout { .. }) => return Ok(()),
                Err(e) => {
                    return Err(self.link(&format!("waiting for the end of `{request}`"), e));
                }
            }
        }
    }

    fn timeout_error(&self, request: &str, unexpected: &[String]) -> InstrumentError {
        let request = if unexpected.is_empty() {
            format!(
                "`{request}` (check the cable, the port's settings, 4800 7E1 by default, and \
                 that the transmitter is in STOP serial mode, `SMODE STOP`)"
            )
        } else {
            let lines: Vec<String> = unexpected.iter().map(|l| quoted(l)).collect();
            format!("`{request}` (it printed only {})", lines.join(", "))
        };
        InstrumentError::Timeout {
            instrument: self.instrument(),
            request,
            timeout: self.timeout,
        }
    }
}

/// An empty line, a bare prompt, or the transmitter's echo of `command`.
fn is_echo_or_prompt(line: &str, command: &str) -> bool {
    let text = without_prompt(line);
    text.is_empty() || text.eq_ignore_ascii_case(command)
}

impl<T: Transport> ClimateSensor for VaisalaHmt<T> {
    fn describe(&self) -> String {
        self.label.clone()
    }

    fn identity(&mut self) -> InstrumentResult<InstrumentIdentity> {
        self.send("?")?;
        let deadline = Instant::now() + self.timeout;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let Some(line) = self.line("?", left)? else {
                break;
            };
            let serial_seen = serial_number_line(without_prompt(&line)).is_some();
            lines.push(line);
            if serial_seen {
                // The model line comes first and the serial number second: what follows
                // is read only so that the answer is over before the next command.
                self.await_prompt("?", deadline)?;
                break;
            }
        }
        // The prompt after the answer has no line end; it must not precede the next one.
        let _ = self.transport.discard_input();
        lines.retain(|l| !is_echo_or_prompt(l, "?"));
        if lines.is_empty() {
            return Err(self.timeout_error("?", &[]));
        }
        let id = parse_identity(&lines.join("\n")).map_err(|reply| InstrumentError::Device {
            instrument: self.instrument(),
            request: "?".into(),
            reply,
        })?;
        Ok(InstrumentIdentity {
            manufacturer: "Vaisala".into(),
            model: id.model,
            serial_number: id.serial_number,
            firmware: id.firmware,
        })
    }

    fn read(&mut self) -> InstrumentResult<AmbientReading> {
        self.send("SEND")?;
        let deadline = Instant::now() + self.timeout;
        // Lines that are neither echo nor reading (`Unknown command`), for the timeout's
        // message: they say more than "no answer".
        let mut unexpected = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = if left.is_zero() {
                None
            } else {
                self.line("SEND", left)?
            };
            let Some(line) = line else {
                let _ = self.transport.discard_input();
                return Err(self.timeout_error("SEND", &unexpected));
            };
            if is_echo_or_prompt(&line, "SEND") {
                continue;
            }
            if !line.contains('=') {
                unexpected.push(line);
                continue;
            }
            return parse_reading(&line).map_err(|reply| InstrumentError::Device {
                instrument: self.instrument(),
                request: "SEND".into(),
                reply,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{ScriptStep, ScriptedTransport};
    use proptest::prelude::*;

    fn reading(t: f64, rh: Option<f64>) -> AmbientReading {
        AmbientReading {
            temperature_c: t,
            humidity_percent_rh: rh,
        }
    }

    #[test]
    fn the_manuals_default_form() {
        assert_eq!(
            parse_reading("RH= 98.4 %RH T= 31.1 'C"),
            Ok(reading(31.1, Some(98.4)))
        );
    }

    #[test]
    fn prompt_cr_time_date_and_other_quantities_are_tolerated() {
        let r = Ok(reading(23.1, Some(45.3)));
        assert_eq!(parse_reading(">RH= 45.3 %RH T= 23.1 'C\r"), r);
        assert_eq!(parse_reading("> RH= 45.3 %RH T= 23.1 'C\r\n"), r);
        assert_eq!(parse_reading("09:31:13 RH= 45.3 %RH T= 23.1 'C"), r);
        assert_eq!(
            parse_reading("2008-01-31 09:31:13 RH= 45.3 %RH T= 23.1 'C"),
            r
        );
        assert_eq!(
            parse_reading("RH= 45.3 %RH T= 23.1 'C Tdp= 8.0 'C x= 6.7 g/kg"),
            r
        );
        assert_eq!(parse_reading("T= 23.1 'C RH= 45.3 %RH"), r);
        // The unit right after the value, as in the manual's `RH= 16.03%RH`.
        assert_eq!(
            parse_reading("RH= 16.03%RH T= 23.66'C"),
            Ok(reading(23.66, Some(16.03)))
        );
    }

    #[test]
    fn a_five_character_field_may_leave_no_space_after_the_equals_sign() {
        assert_eq!(
            parse_reading("RH=100.0 %RH T=-12.3 'C"),
            Ok(reading(-12.3, Some(100.0)))
        );
        assert_eq!(
            parse_reading("RH=  5.2 %RH T=  0.0 'C"),
            Ok(reading(0.0, Some(5.2)))
        );
    }

    #[test]
    fn humidity_is_optional() {
        assert_eq!(parse_reading("T= 23.1 'C"), Ok(reading(23.1, None)));
        assert_eq!(
            parse_reading("T= 23.1 'C Tdp= 8.0 'C"),
            Ok(reading(23.1, None))
        );
    }

    #[test]
    fn values_are_taken_exactly_as_written() {
        let r = parse_reading("RH= 45.27 %RH T= 23.15 'C").unwrap();
        assert_eq!(r.temperature_c, "23.15".parse::<f64>().unwrap());
        assert_eq!(r.humidity_percent_rh, Some(45.27));
    }

    #[test]
    fn fahrenheit_is_refused_with_the_unit_command() {
        let e = parse_reading("RH= 16.03%RH T= 74.66'F").unwrap_err();
        assert!(e.contains("UNIT"), "{e}");
        assert!(e.contains("`RH= 16.03%RH T= 74.66'F`"), "{e}");
    }

    #[test]
    fn stars_are_refused_naming_the_quantity() {
        let e = parse_reading("RH= 45.3 %RH T= ***.* 'C").unwrap_err();
        assert!(e.contains("no valid temperature"), "{e}");
        assert!(e.contains("***.*"), "{e}");
        let e = parse_reading("RH= ***.* %RH T= 23.1 'C").unwrap_err();
        assert!(e.contains("no valid relative humidity"), "{e}");
        // Stars in a quantity the bench does not read do not matter.
        assert_eq!(
            parse_reading("RH= 45.3 %RH T= 23.1 'C Tdp= ***.* 'C"),
            Ok(reading(23.1, Some(45.3)))
        );
    }

    #[test]
    fn out_of_range_values_are_refused() {
        for line in [
            "RH= 100.1 %RH T= 23.1 'C",
            "RH= -0.1 %RH T= 23.1 'C",
            "RH= 45.3 %RH T= 200.1 'C",
            "RH= 45.3 %RH T= -80.1 'C",
        ] {
            let e = parse_reading(line).unwrap_err();
            assert!(e.contains("outside"), "{line}: {e}");
        }
        let huge = format!("T= {} 'C", "9".repeat(400));
        assert!(parse_reading(&huge).unwrap_err().contains("finite"));
        assert_eq!(
            parse_reading("RH= 0.0 %RH T= -80.0 'C"),
            Ok(reading(-80.0, Some(0.0)))
        );
    }

    #[test]
    fn garbage_is_refused_quoting_the_line() {
        for line in [
            "",
            ">",
            "SEND",
            "Unknown command",
            "RH 45.3",
            "RH= 45.3 %RH",
            "T= abc 'C",
            "T= 1.2.3 'C",
            "T= 23.1",
            "T= 23.1 K",
            "T= 23.1 'C T= 23.2 'C",
            "=23.1 'C",
            "T= 23.1'CRH= 45.3",
            "RH= 45.3 kg T= 23.1 'C",
            "12:00 T= 23.1 'C",
        ] {
            let e = parse_reading(line).unwrap_err();
            assert!(e.contains(&format!("`{line}`")), "{line}: {e}");
        }
        let e = parse_reading("T= 23.1\t'C\u{7}x").unwrap_err();
        assert!(e.contains("\\u{7}"), "control characters are escaped: {e}");
    }

    const INFO: &str = "HMT330 / 5.16\r\n\
        Serial number  : F1234567\r\n\
        Batch number   : F2345678\r\n\
        Adjust. date   : 2008-01-21\r\n\
        Adjust. info   : Helsinki / FIN\r\n\
        Serial mode    : STOP\r\n\
        Echo           : ON\r\n";

    fn hmt330() -> Hmt330Identity {
        Hmt330Identity {
            model: "HMT330".into(),
            serial_number: "F1234567".into(),
            firmware: "5.16".into(),
        }
    }

    #[test]
    fn identity_from_the_info_answer() {
        assert_eq!(parse_identity(INFO), Ok(hmt330()));
        let echoed = format!(">?\r\n{INFO}>");
        assert_eq!(parse_identity(&echoed), Ok(hmt330()));
        // Order and spacing do not matter; `Adjust. info : Helsinki / FIN` is no model.
        let shuffled = "Adjust. info:Helsinki / FIN\nserial NUMBER:F1234567\n  HMT330/5.16  \n";
        assert_eq!(parse_identity(shuffled), Ok(hmt330()));
    }

    #[test]
    fn identity_without_serial_number_or_model_is_refused() {
        let e = parse_identity("HMT330 / 5.16\r\nSerial mode    : STOP\r\n").unwrap_err();
        assert!(e.contains("no serial number"), "{e}");
        let e = parse_identity("Serial number  : F1234567\r\n").unwrap_err();
        assert!(e.contains("MODEL / VERSION"), "{e}");
        assert!(parse_identity("Serial number  :   \r\nHMT330 / 5.16").is_err());
        assert!(parse_identity("").is_err());
    }

    #[test]
    fn serial_settings_are_7e1() {
        use crate::transport::serial::{DataBits, Parity, StopBits};
        let s = hmt330_serial_settings("/dev/ttyUSB1", 4800);
        assert_eq!(
            (
                s.path.as_str(),
                s.baud_rate,
                s.data_bits,
                s.parity,
                s.stop_bits
            ),
            (
                "/dev/ttyUSB1",
                4800,
                DataBits::Seven,
                Parity::Even,
                StopBits::One
            )
        );
    }

    const T: Duration = Duration::from_millis(50);

    #[test]
    fn read_skips_the_echo_and_returns_the_reading() {
        let script =
            ScriptedTransport::from_pairs([("SEND\r", "SEND\r\nRH= 98.4 %RH T= 31.1 'C\r\n>")]);
        let mut hmt = VaisalaHmt::open(script, T);
        assert_eq!(hmt.describe(), "Vaisala HMT330 on scripted");
        assert_eq!(hmt.read().unwrap(), reading(31.1, Some(98.4)));
        hmt.into_transport().assert_finished();
    }

    #[test]
    fn read_drops_what_was_printed_before_the_command() {
        let script = ScriptedTransport::from_pairs([
            ("SEND\r", "SEND\r\nRH= 45.3 %RH T= 23.1 'C\r\n>"),
            ("SEND\r", "SEND\r\n09:31:14 RH= 45.4 %RH T= 23.2 'C\r\n>"),
        ]);
        let mut hmt = VaisalaHmt::open(script, T);
        assert_eq!(hmt.read().unwrap(), reading(23.1, Some(45.3)));
        // The first prompt is still pending: it is no part of the second answer.
        assert_eq!(hmt.read().unwrap(), reading(23.2, Some(45.4)));
        hmt.into_transport().assert_finished();
    }

    #[test]
    fn a_reading_that_does_not_parse_is_a_device_error() {
        let script =
            ScriptedTransport::from_pairs([("SEND\r", "SEND\r\nRH= 16.03%RH T= 74.66'F\r\n>")]);
        let mut hmt = VaisalaHmt::open(script, T);
        match hmt.read() {
            Err(InstrumentError::Device { request, reply, .. }) => {
                assert_eq!(request, "SEND");
                assert!(reply.contains("UNIT"), "{reply}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn silence_is_a_timeout_naming_what_came_instead() {
        let script = ScriptedTransport::new([
            ScriptStep::timeout("SEND\r"),
            ScriptStep::exchange("SEND\r", "SEND\r\nUnknown command\r\n>"),
        ]);
        let mut hmt = VaisalaHmt::open(script, T);
        match hmt.read() {
            Err(InstrumentError::Timeout { request, .. }) => {
                assert!(request.contains("SMODE STOP"), "{request}")
            }
            other => panic!("{other:?}"),
        }
        match hmt.read() {
            Err(InstrumentError::Timeout { request, .. }) => {
                assert!(request.contains("`Unknown command`"), "{request}")
            }
            other => panic!("{other:?}"),
        }
        hmt.into_transport().assert_finished();
    }

    #[test]
    fn identity_collects_the_info_lines() {
        let script = ScriptedTransport::from_pairs([("?\r", format!("?\r\n{INFO}>"))]);
        let mut hmt = VaisalaHmt::open(script, T);
        assert_eq!(
            hmt.identity().unwrap(),
            InstrumentIdentity {
                manufacturer: "Vaisala".into(),
                model: "HMT330".into(),
                serial_number: "F1234567".into(),
                firmware: "5.16".into(),
            }
        );
        hmt.into_transport().assert_finished();
    }

    #[test]
    fn the_info_answer_ends_at_the_prompt_at_the_start_of_a_line() {
        // A `>` within a line (a free text of the adjustment) is text; the answer runs on
        // to the prompt, after which nothing more is read.
        let info = INFO.replace("Echo", "Adjust. info : cal >= 2 points\r\nEcho");
        let script = ScriptedTransport::from_pairs([
            ("?\r", format!("?\r\n{info}>")),
            ("SEND\r", "SEND\r\nRH= 45.3 %RH T= 23.1 'C\r\n>".to_string()),
        ]);
        let mut hmt = VaisalaHmt::open(script, T);
        assert_eq!(hmt.identity().unwrap().serial_number, "F1234567");
        assert_eq!(hmt.read().unwrap(), reading(23.1, Some(45.3)));
        hmt.into_transport().assert_finished();
        // A transmitter that prints no prompt: the pause ends the answer.
        let script = ScriptedTransport::from_pairs([("?\r", INFO.to_string())]);
        let mut hmt = VaisalaHmt::open(script, T);
        assert_eq!(hmt.identity().unwrap().model, "HMT330");
    }

    #[test]
    fn identity_without_serial_number_is_a_device_error() {
        let script =
            ScriptedTransport::from_pairs([("?\r", "?\r\nHMT330 / 5.16\r\nEcho : ON\r\n>")]);
        let mut hmt = VaisalaHmt::open(script, T);
        match hmt.identity() {
            Err(InstrumentError::Device { reply, .. }) => {
                assert!(reply.contains("no serial number"), "{reply}")
            }
            other => panic!("{other:?}"),
        }
        let mut silent = VaisalaHmt::open(ScriptedTransport::new([ScriptStep::timeout("?\r")]), T);
        assert!(matches!(
            silent.identity(),
            Err(InstrumentError::Timeout { .. })
        ));
    }

    proptest! {
        #[test]
        fn parse_reading_never_panics(line in any::<String>()) {
            let _ = parse_reading(&line);
            let _ = parse_identity(&line);
        }

        #[test]
        fn near_misses_never_panic_and_stay_in_range(
            line in "[ >0-9:.*+\\-=RHTCFdpx%'°\t\r\n]{0,40}"
        ) {
            if let Ok(r) = parse_reading(&line) {
                prop_assert!(TEMPERATURE_RANGE_C.contains(&r.temperature_c));
                prop_assert!(r.humidity_percent_rh.is_none_or(|h| HUMIDITY_RANGE_PERCENT_RH.contains(&h)));
            }
        }

        #[test]
        fn the_transmitters_form_reads_back_its_text_exactly(
            t in -80.0f64..=200.0,
            rh in 0.0f64..=100.0,
            spaced in any::<bool>(),
        ) {
            let line = if spaced {
                format!("RH= {rh:5.1} %RH T= {t:5.1} 'C")
            } else {
                format!("RH={rh:5.1} %RH T={t:5.1} 'C")
            };
            let text = |v: f64| format!("{v:.1}").parse::<f64>().unwrap();
            prop_assert_eq!(parse_reading(&line), Ok(reading(text(t), Some(text(rh)))));
        }
    }
}
