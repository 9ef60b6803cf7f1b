//! Raw SCPI over a TCP socket (the "SCPI-RAW" port of LAN instruments).

use super::buffered::{InputBuffer, TimedRead, classify};
use super::{Transport, TransportError};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The IANA-registered raw SCPI socket port.
pub const DEFAULT_SCPI_PORT: u16 = 5025;

struct Stream(TcpStream);

impl TimedRead for Stream {
    fn read_timed(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        self.0.set_read_timeout(Some(timeout))?;
        self.0.read(buf)
    }
}

/// A connected raw SCPI socket as a [`Transport`].
pub struct TcpTransport {
    stream: Stream,
    input: InputBuffer,
    peer: String,
}

impl std::fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpTransport")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

/// `host` or `host:port`; a bare host (or IPv6 address) gets port 5025.
fn with_default_port(address: &str) -> String {
    let is_port = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if address.starts_with('[') {
        match address.rsplit_once("]:") {
            Some((_, port)) if is_port(port) => address.to_string(),
            _ => format!("{address}:{DEFAULT_SCPI_PORT}"),
        }
    } else {
        match address.matches(':').count() {
            0 => format!("{address}:{DEFAULT_SCPI_PORT}"),
            1 => address.to_string(),
            _ => format!("[{address}]:{DEFAULT_SCPI_PORT}"),
        }
    }
}

impl TcpTransport {
    /// Connect to `host[:port]` (port 5025 when omitted), giving up after `connect_timeout`
    /// per resolved address.
    pub fn connect(address: &str, connect_timeout: Duration) -> Result<Self, TransportError> {
        let target = with_default_port(address);
        let addrs: Vec<SocketAddr> = target
            .to_socket_addrs()
            .map_err(|e| {
                TransportError::Io(io::Error::new(
                    e.kind(),
                    format!("cannot resolve {target}: {e}"),
                ))
            })?
            .collect();
        let mut last = None;
        for a in &addrs {
            match TcpStream::connect_timeout(a, connect_timeout) {
                Ok(s) => return TcpTransport::from_stream(s),
                Err(e) => last = Some(e),
            }
        }
        let e = last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"));
        Err(TransportError::Io(io::Error::new(
            e.kind(),
            format!("cannot connect to {target}: {e} (is the instrument on and on this network?)"),
        )))
    }

    /// Wrap a connected stream.
    pub fn from_stream(stream: TcpStream) -> Result<Self, TransportError> {
        // SCPI messages are small request/reply pairs: Nagle only adds latency.
        stream.set_nodelay(true)?;
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "(unknown peer)".into(), |a| a.to_string());
        Ok(TcpTransport {
            stream: Stream(stream),
            input: InputBuffer::default(),
            peer,
        })
    }
}

impl Transport for TcpTransport {
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), TransportError> {
        self.stream.0.write_all(bytes).map_err(classify)?;
        self.stream.0.flush().map_err(classify)
    }

    fn read_until(&mut self, terminator: u8, timeout: Duration) -> Result<Vec<u8>, TransportError> {
        self.input.read_until(&mut self.stream, terminator, timeout)
    }

    fn read_exact(&mut self, n: usize, timeout: Duration) -> Result<Vec<u8>, TransportError> {
        self.input.read_exact(&mut self.stream, n, timeout)
    }

    fn discard_input(&mut self) -> Result<(), TransportError> {
        self.input.clear();
        self.stream.0.set_nonblocking(true)?;
        let mut chunk = [0u8; 4096];
        let result = loop {
            match self.stream.0.read(&mut chunk) {
                Ok(0) => break Err(TransportError::Closed("end of stream".into())),
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(classify(e)),
            }
        };
        self.stream.0.set_nonblocking(false)?;
        result
    }

    fn describe(&self) -> String {
        format!("tcp {}", self.peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn default_port_is_added_only_when_missing() {
        assert_eq!(with_default_port("192.168.0.5"), "192.168.0.5:5025");
        assert_eq!(with_default_port("192.168.0.5:5026"), "192.168.0.5:5026");
        assert_eq!(with_default_port("fluke-6105a.lab"), "fluke-6105a.lab:5025");
        assert_eq!(with_default_port("::1"), "[::1]:5025");
        assert_eq!(with_default_port("[::1]:7000"), "[::1]:7000");
        assert_eq!(with_default_port("[::1]"), "[::1]:5025");
    }

    #[test]
    fn loopback_exchange_timeout_and_close() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 6];
            s.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"*IDN?\n");
            s.write_all(b"FLUKE,6105A,1,2\n").unwrap();
            // Wait for the client's second message, then hang up without answering it.
            s.read_exact(&mut buf[..3]).unwrap();
        });
        let mut t = TcpTransport::connect(&addr.to_string(), Duration::from_secs(2)).unwrap();
        assert_eq!(t.describe(), format!("tcp {addr}"));
        t.write_all(b"*IDN?\n").unwrap();
        assert_eq!(
            t.read_until(b'\n', Duration::from_secs(2)).unwrap(),
            b"FLUKE,6105A,1,2"
        );
        assert!(matches!(
            t.read_until(b'\n', Duration::from_millis(30)),
            Err(TransportError::Timeout { .. })
        ));
        assert!(t.set_rts(true).is_err());
        t.write_all(b"X?\n").unwrap();
        server.join().unwrap();
        assert!(matches!(
            t.read_until(b'\n', Duration::from_secs(2)),
            Err(TransportError::Closed(_))
        ));
    }
}
