//! Reading DSMR P1 telegrams from a serial port: raise the request line, decode the byte
//! stream (meterbench-p1), stamp each telegram with host time, count CRC failures and
//! gaps, and lower the line when done.

use crate::transport::{SerialSettings, Transport, TransportError};
use meterbench_p1::{DecodeError, Decoder, ErrorKind, Telegram};
use serde::Serialize;
use std::time::{Duration, Instant, SystemTime};

/// The line that asks a P1 device to send: DSMR's "data request" (pin 2 of the RJ12),
/// wired on USB-P1 cables to RTS or DTR of the adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RequestLine {
    Rts,
    Dtr,
    /// The device sends unasked (or the line is wired to a fixed supply).
    None,
}

/// How to read one P1 port.
#[derive(Debug, Clone, PartialEq)]
pub struct P1Settings {
    pub request_line: RequestLine,
    /// Some cables invert the request line (an NPN stage): `true` means the device is
    /// asked to send when the control line is low.
    pub inverted: bool,
    /// The device's telegram period: one second for DSMR 5 and the CSP1, ten for DSMR 4.
    pub period: Duration,
}

impl Default for P1Settings {
    fn default() -> Self {
        P1Settings {
            request_line: RequestLine::Rts,
            inverted: false,
            period: Duration::from_secs(1),
        }
    }
}

/// Serial settings of a P1 port: 115200 8N1 (DSMR 4 and 5, the CSP1), or 9600 7E1 for
/// DSMR 2.2/3 meters.
pub fn p1_serial_settings(path: impl Into<String>, dsmr22: bool) -> SerialSettings {
    use crate::transport::serial::{DataBits, Parity};
    let mut s = SerialSettings::new(path, if dsmr22 { 9600 } else { 115_200 });
    if dsmr22 {
        s.data_bits = DataBits::Seven;
        s.parity = Parity::Even;
    }
    s
}

/// A telegram as received: when, and how long after the one before.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StampedTelegram {
    /// Host time the telegram's last byte was read (UTC, RFC 3339).
    pub received_utc: String,
    /// Seconds since the previous telegram (none for the first).
    pub interval_s: Option<f64>,
    pub telegram: Telegram,
}

/// What happened on the port so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct P1Stats {
    pub telegrams: u64,
    pub crc_failures: u64,
    /// Other decoding errors: cut-short telegrams, malformed lines, skipped bytes.
    pub other_errors: u64,
    /// Intervals between telegrams longer than 1.5 periods (a telegram lost or late).
    pub gaps: u64,
}

impl P1Stats {
    /// CRC failures per telegram that reached its end.
    pub fn crc_error_rate(&self) -> f64 {
        let ended = self.telegrams + self.crc_failures;
        if ended == 0 {
            0.0
        } else {
            self.crc_failures as f64 / ended as f64
        }
    }
}

/// One event read from the port.
#[derive(Debug)]
pub enum P1Event {
    Telegram(Box<StampedTelegram>),
    /// A decoding error (the reader goes on with the next telegram).
    Error(DecodeError),
}

/// A P1 port with its request line raised. Dropping it lowers the line.
pub struct P1Reader<T: Transport> {
    transport: T,
    settings: P1Settings,
    decoder: Decoder,
    stats: P1Stats,
    last: Option<Instant>,
    pending: std::collections::VecDeque<P1Event>,
    closed: bool,
}

impl<T: Transport> P1Reader<T> {
    /// Raise the request line and start reading.
    pub fn open(transport: T, settings: P1Settings) -> Result<Self, TransportError> {
        let mut r = P1Reader {
            transport,
            settings,
            decoder: Decoder::default(),
            stats: P1Stats::default(),
            last: None,
            pending: Default::default(),
            closed: false,
        };
        r.request(true)?;
        Ok(r)
    }

    fn request(&mut self, on: bool) -> Result<(), TransportError> {
        let level = on != self.settings.inverted;
        match self.settings.request_line {
            RequestLine::Rts => self.transport.set_rts(level),
            RequestLine::Dtr => self.transport.set_dtr(level),
            RequestLine::None => Ok(()),
        }
    }

    pub fn stats(&self) -> &P1Stats {
        &self.stats
    }

    /// The next telegram or decoding error, waiting at most `timeout` for it.
    /// `Ok(None)`: nothing complete arrived in time (a gap, or a silent device).
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<P1Event>, TransportError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Ok(Some(e));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            // P1 lines end in LF; a timeout keeps the partial line buffered for later.
            let mut line = match self.transport.read_until(b'\n', left) {
                Ok(line) => line,
                Err(TransportError::Timeout { .. }) => return Ok(None),
                Err(e) => return Err(e),
            };
            line.push(b'\n');
            let now = Instant::now();
            let mut events = Vec::new();
            self.decoder.feed(&line, |r| events.push(r));
            for r in events {
                let event = self.account(r, now);
                self.pending.push_back(event);
            }
        }
    }

    fn account(&mut self, r: Result<Telegram, DecodeError>, now: Instant) -> P1Event {
        match r {
            Ok(telegram) => {
                self.stats.telegrams += 1;
                let interval = self.last.map(|t| now.duration_since(t));
                if interval
                    .is_some_and(|i| i.as_secs_f64() > 1.5 * self.settings.period.as_secs_f64())
                {
                    self.stats.gaps += 1;
                }
                self.last = Some(now);
                let received: chrono::DateTime<chrono::Utc> = SystemTime::now().into();
                P1Event::Telegram(Box::new(StampedTelegram {
                    received_utc: received.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    interval_s: interval.map(|i| i.as_secs_f64()),
                    telegram,
                }))
            }
            Err(e) => {
                if matches!(e.kind, ErrorKind::CrcMismatch { .. }) {
                    self.stats.crc_failures += 1;
                } else {
                    self.stats.other_errors += 1;
                }
                P1Event::Error(e)
            }
        }
    }

    /// Lower the request line; what was counted.
    pub fn close(mut self) -> Result<P1Stats, TransportError> {
        self.closed = true;
        self.request(false)?;
        Ok(self.stats.clone())
    }
}

/// A P1 device as a current sensor: each telegram's three currents and firmware id.
pub struct P1CurrentSensor<T: Transport> {
    reader: P1Reader<T>,
    label: String,
}

impl<T: Transport> P1CurrentSensor<T> {
    /// Raise the request line and start reading.
    pub fn open(transport: T, settings: P1Settings) -> Result<Self, TransportError> {
        let label = format!("P1 on {}", transport.describe());
        Ok(P1CurrentSensor {
            reader: P1Reader::open(transport, settings)?,
            label,
        })
    }
}

impl<T: Transport + Send> crate::CurrentSensor for P1CurrentSensor<T> {
    fn describe(&self) -> String {
        self.label.clone()
    }

    fn next_reading(
        &mut self,
        timeout: Duration,
    ) -> crate::InstrumentResult<Option<crate::SensorReading>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self
                .reader
                .next_event(left)
                .map_err(|e| crate::InstrumentError::Link {
                    instrument: format!("current sensor ({})", self.label),
                    message: e.to_string(),
                })?;
            match event {
                None => return Ok(None),
                // Counted in the stats; a corrupt telegram is never a reading.
                Some(P1Event::Error(_)) => continue,
                Some(P1Event::Telegram(t)) => {
                    let currents = t.telegram.currents();
                    return Ok(Some(crate::SensorReading {
                        currents: currents.map(|c| c.map(|d| d.to_string())),
                        currents_a: currents.map(|c| c.map(|d| d.to_f64())),
                        firmware: t.telegram.firmware_id().map(str::to_string),
                    }));
                }
            }
        }
    }

    fn stats(&self) -> crate::SensorLinkStats {
        let s = self.reader.stats();
        crate::SensorLinkStats {
            telegrams: s.telegrams,
            crc_failures: s.crc_failures,
            other_errors: s.other_errors,
            gaps: s.gaps,
        }
    }
}

impl<T: Transport> Drop for P1Reader<T> {
    fn drop(&mut self) {
        if !self.closed {
            let _ = self.request(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meterbench_p1::{Csp1Params, Decimal, encode_csp1_telegram};
    use std::sync::{Arc, Mutex};

    /// A port whose far end is a byte string; it records the control lines.
    #[derive(Clone, Default)]
    struct FakePort {
        input: Arc<Mutex<Vec<u8>>>,
        lines: Arc<Mutex<Vec<(&'static str, bool)>>>,
    }

    impl Transport for FakePort {
        fn write_all(&mut self, _bytes: &[u8]) -> Result<(), TransportError> {
            Ok(())
        }
        fn read_until(&mut self, t: u8, timeout: Duration) -> Result<Vec<u8>, TransportError> {
            let mut input = self.input.lock().unwrap();
            match input.iter().position(|&b| b == t) {
                Some(i) => {
                    let mut line: Vec<u8> = input.drain(..=i).collect();
                    line.pop();
                    Ok(line)
                }
                None => Err(TransportError::Timeout {
                    waited: timeout,
                    partial: input.clone(),
                }),
            }
        }
        fn read_exact(&mut self, _n: usize, _t: Duration) -> Result<Vec<u8>, TransportError> {
            unimplemented!("P1 reads lines")
        }
        fn discard_input(&mut self) -> Result<(), TransportError> {
            self.input.lock().unwrap().clear();
            Ok(())
        }
        fn set_rts(&mut self, level: bool) -> Result<(), TransportError> {
            self.lines.lock().unwrap().push(("RTS", level));
            Ok(())
        }
        fn set_dtr(&mut self, level: bool) -> Result<(), TransportError> {
            self.lines.lock().unwrap().push(("DTR", level));
            Ok(())
        }
        fn describe(&self) -> String {
            "fake P1 port".into()
        }
    }

    const T: Duration = Duration::from_millis(20);

    fn telegram(l2_a: i64) -> Vec<u8> {
        let mut p = Csp1Params::default();
        p.currents[1] = l2_a as f64;
        encode_csp1_telegram(&p)
    }

    #[test]
    fn telegrams_errors_and_counts() {
        let port = FakePort::default();
        {
            let mut input = port.input.lock().unwrap();
            input.extend_from_slice(b"\x00\xffnoise\r\n");
            input.extend(telegram(12));
            let mut bad = telegram(13);
            let i = bad.iter().position(|&b| b == b'(').unwrap();
            bad[i + 1] ^= 0x01; // one byte changed: the CRC no longer matches
            input.extend(bad);
            input.extend(telegram(14));
        }
        let mut r = P1Reader::open(port.clone(), P1Settings::default()).unwrap();
        assert_eq!(*port.lines.lock().unwrap(), vec![("RTS", true)]);
        let mut got = Vec::new();
        while let Some(e) = r.next_event(T).unwrap() {
            got.push(e);
        }
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(
            matches!(&got[0], P1Event::Error(e) if matches!(e.kind, ErrorKind::Skipped { .. }))
        );
        let l2 = |e: &P1Event| match e {
            P1Event::Telegram(t) => t.telegram.currents()[1],
            P1Event::Error(e) => panic!("{e}"),
        };
        assert_eq!(l2(&got[1]), Some(Decimal::new(12, 0)));
        assert!(
            matches!(&got[2], P1Event::Error(e) if matches!(e.kind, ErrorKind::CrcMismatch { .. }))
        );
        assert_eq!(l2(&got[3]), Some(Decimal::new(14, 0)));
        match &got[3] {
            P1Event::Telegram(t) => {
                assert!(t.interval_s.is_some() && t.received_utc.ends_with('Z'))
            }
            P1Event::Error(_) => unreachable!(),
        }
        let stats = r.close().unwrap();
        assert_eq!(
            stats,
            P1Stats {
                telegrams: 2,
                crc_failures: 1,
                other_errors: 1,
                gaps: 0
            }
        );
        assert!((stats.crc_error_rate() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            *port.lines.lock().unwrap(),
            vec![("RTS", true), ("RTS", false)]
        );
    }

    #[test]
    fn a_telegram_split_over_reads_is_kept_whole() {
        let port = FakePort::default();
        let t = telegram(7);
        let mut r = P1Reader::open(port.clone(), P1Settings::default()).unwrap();
        port.input.lock().unwrap().extend_from_slice(&t[..30]);
        assert!(r.next_event(T).unwrap().is_none());
        port.input.lock().unwrap().extend_from_slice(&t[30..]);
        match r.next_event(T).unwrap() {
            Some(P1Event::Telegram(s)) => {
                assert_eq!(s.telegram.currents()[1], Some(Decimal::new(7, 0)))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn inverted_dtr_request_line_and_drop_lowers_it() {
        let port = FakePort::default();
        let settings = P1Settings {
            request_line: RequestLine::Dtr,
            inverted: true,
            ..P1Settings::default()
        };
        drop(P1Reader::open(port.clone(), settings).unwrap());
        assert_eq!(
            *port.lines.lock().unwrap(),
            vec![("DTR", false), ("DTR", true)]
        );
    }

    #[test]
    fn dsmr22_ports_are_9600_7e1() {
        use crate::transport::serial::{DataBits, Parity};
        let s = p1_serial_settings("/dev/ttyUSB0", true);
        assert_eq!(
            (s.baud_rate, s.data_bits, s.parity),
            (9600, DataBits::Seven, Parity::Even)
        );
        let s = p1_serial_settings("/dev/ttyUSB0", false);
        assert_eq!(
            (s.baud_rate, s.data_bits, s.parity),
            (115_200, DataBits::Eight, Parity::None)
        );
    }
}
