//! Serial ports (RS-232, USB CDC) and pseudo-terminals through `serialport`.

use super::buffered::{InputBuffer, TimedRead, classify};
use super::{Transport, TransportError};
use serialport::ClearBuffer;
use std::io::{self, Read, Write};
use std::time::Duration;

#[cfg(unix)]
pub use serialport::TTYPort;
pub use serialport::{DataBits, FlowControl, Parity, SerialPort, StopBits};

/// How to open a serial port. `Default` is 9600 8N1 without flow control.
#[derive(Debug, Clone, PartialEq)]
pub struct SerialSettings {
    pub path: String,
    pub baud_rate: u32,
    pub data_bits: DataBits,
    pub parity: Parity,
    pub stop_bits: StopBits,
    pub flow_control: FlowControl,
    /// Level to drive RTS to right after opening (`None` leaves the driver's default).
    pub rts: Option<bool>,
    /// Level to drive DTR to right after opening (`None` leaves the driver's default).
    pub dtr: Option<bool>,
}

impl SerialSettings {
    pub fn new(path: impl Into<String>, baud_rate: u32) -> Self {
        SerialSettings {
            path: path.into(),
            baud_rate,
            ..SerialSettings::default()
        }
    }
}

impl Default for SerialSettings {
    fn default() -> Self {
        SerialSettings {
            path: String::new(),
            baud_rate: 9600,
            data_bits: DataBits::Eight,
            parity: Parity::None,
            stop_bits: StopBits::One,
            flow_control: FlowControl::None,
            rts: None,
            dtr: None,
        }
    }
}

/// "8N1", "7E2", …
fn frame(data: Option<DataBits>, parity: Option<Parity>, stop: Option<StopBits>) -> String {
    let d = match data {
        Some(DataBits::Five) => "5",
        Some(DataBits::Six) => "6",
        Some(DataBits::Seven) => "7",
        Some(DataBits::Eight) => "8",
        None => "?",
    };
    let p = match parity {
        Some(Parity::None) => "N",
        Some(Parity::Odd) => "O",
        Some(Parity::Even) => "E",
        None => "?",
    };
    let s = match stop {
        Some(StopBits::One) => "1",
        Some(StopBits::Two) => "2",
        None => "?",
    };
    format!("{d}{p}{s}")
}

struct Port(Box<dyn SerialPort>);

impl TimedRead for Port {
    fn read_timed(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        self.0.set_timeout(timeout).map_err(io::Error::from)?;
        self.0.read(buf)
    }
}

/// A serial port or pseudo-terminal as a [`Transport`].
pub struct SerialTransport {
    port: Port,
    input: InputBuffer,
    description: String,
}

impl std::fmt::Debug for SerialTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialTransport")
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

impl SerialTransport {
    /// Open and configure a port.
    pub fn open(settings: &SerialSettings) -> Result<Self, TransportError> {
        let port = serialport::new(&settings.path, settings.baud_rate)
            .data_bits(settings.data_bits)
            .parity(settings.parity)
            .stop_bits(settings.stop_bits)
            .flow_control(settings.flow_control)
            .timeout(Duration::from_millis(100))
            .open()
            .map_err(|e| open_error(&settings.path, e))?;
        let mut t = SerialTransport::from_port(port);
        if let Some(level) = settings.rts {
            t.set_rts(level)?;
        }
        if let Some(level) = settings.dtr {
            t.set_dtr(level)?;
        }
        Ok(t)
    }

    /// Wrap an already opened port.
    pub fn from_port(port: Box<dyn SerialPort>) -> Self {
        let name = port.name().unwrap_or_else(|| "(unnamed)".into());
        let baud = port
            .baud_rate()
            .map_or_else(|_| "?".to_string(), |b| b.to_string());
        let mut description = format!(
            "serial {name} {baud} {}",
            frame(
                port.data_bits().ok(),
                port.parity().ok(),
                port.stop_bits().ok()
            )
        );
        match port.flow_control() {
            Ok(FlowControl::Hardware) => description.push_str(" RTS/CTS"),
            Ok(FlowControl::Software) => description.push_str(" XON/XOFF"),
            _ => {}
        }
        SerialTransport {
            port: Port(port),
            input: InputBuffer::default(),
            description,
        }
    }

    /// Wrap one end of a pseudo-terminal pair from [`TTYPort::pair`].
    #[cfg(unix)]
    pub fn from_tty(tty: TTYPort) -> Self {
        SerialTransport::from_port(Box::new(tty))
    }
}

fn open_error(path: &str, e: serialport::Error) -> TransportError {
    TransportError::Io(io::Error::new(
        io::Error::from(e.clone()).kind(),
        format!(
            "cannot open serial port {path}: {e} (check the station's port name and permissions)"
        ),
    ))
}

fn line_error(e: serialport::Error) -> TransportError {
    classify(io::Error::from(e))
}

impl Transport for SerialTransport {
    /// The bytes go straight to the kernel's tty buffer (the port has no user-space
    /// buffer). No `flush`: on a TTY it is `tcdrain`, a wait until the UART has shifted
    /// every byte out, which adds a line's transmission time to every command and tells
    /// the caller nothing the reply's arrival does not.
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), TransportError> {
        self.port.0.write_all(bytes).map_err(classify)
    }

    fn read_until(&mut self, terminator: u8, timeout: Duration) -> Result<Vec<u8>, TransportError> {
        self.input.read_until(&mut self.port, terminator, timeout)
    }

    fn read_exact(&mut self, n: usize, timeout: Duration) -> Result<Vec<u8>, TransportError> {
        self.input.read_exact(&mut self.port, n, timeout)
    }

    fn discard_input(&mut self) -> Result<(), TransportError> {
        self.input.clear();
        self.port.0.clear(ClearBuffer::Input).map_err(line_error)
    }

    fn set_rts(&mut self, level: bool) -> Result<(), TransportError> {
        self.port.0.write_request_to_send(level).map_err(line_error)
    }

    fn set_dtr(&mut self, level: bool) -> Result<(), TransportError> {
        self.port
            .0
            .write_data_terminal_ready(level)
            .map_err(line_error)
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn frame_names() {
        assert_eq!(
            frame(
                Some(DataBits::Eight),
                Some(Parity::None),
                Some(StopBits::One)
            ),
            "8N1"
        );
        assert_eq!(
            frame(
                Some(DataBits::Seven),
                Some(Parity::Even),
                Some(StopBits::Two)
            ),
            "7E2"
        );
    }

    #[test]
    fn a_pseudo_terminal_pair_carries_lines_both_ways() {
        let (master, slave) = TTYPort::pair().expect("pty pair");
        let mut a = SerialTransport::from_tty(master);
        let mut b = SerialTransport::from_tty(slave);
        assert!(b.describe().starts_with("serial /dev/"), "{}", b.describe());
        let t = Duration::from_secs(2);
        a.write_all(b"*IDN?\n").unwrap();
        assert_eq!(b.read_until(b'\n', t).unwrap(), b"*IDN?");
        b.write_all(b"FLUKE,6105A,1,2\nAB").unwrap();
        assert_eq!(a.read_until(b'\n', t).unwrap(), b"FLUKE,6105A,1,2");
        assert_eq!(a.read_exact(2, t).unwrap(), b"AB");
        match a.read_until(b'\n', Duration::from_millis(50)) {
            Err(TransportError::Timeout { .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_hung_up_far_end_is_a_closed_link_not_a_hang() {
        let (master, slave) = TTYPort::pair().expect("pty pair");
        let mut b = SerialTransport::from_tty(slave);
        drop(master);
        match b.read_until(b'\n', Duration::from_secs(2)) {
            Err(TransportError::Closed(_)) | Err(TransportError::Io(_)) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn opening_a_missing_port_names_it() {
        let e = SerialTransport::open(&SerialSettings::new("/dev/does-not-exist-mb", 115200))
            .unwrap_err();
        assert!(e.to_string().contains("/dev/does-not-exist-mb"), "{e}");
    }
}
