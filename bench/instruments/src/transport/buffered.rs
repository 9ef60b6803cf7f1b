//! Deadline-bounded, buffered reading shared by the stream transports.

use super::{MAX_MESSAGE_BYTES, TransportError};
use std::io;
use std::time::{Duration, Instant};

/// A byte source whose single reads can be bounded in time.
pub(crate) trait TimedRead {
    /// Read some bytes, waiting at most `timeout` (never zero).
    fn read_timed(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;
}

/// Bytes received but not yet handed out.
#[derive(Debug, Default)]
pub(crate) struct InputBuffer {
    buf: Vec<u8>,
}

impl InputBuffer {
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
    }

    pub(crate) fn read_until<S: TimedRead>(
        &mut self,
        source: &mut S,
        terminator: u8,
        timeout: Duration,
    ) -> Result<Vec<u8>, TransportError> {
        let deadline = Instant::now() + timeout;
        let mut scanned = 0;
        loop {
            if let Some(i) = self.buf[scanned..].iter().position(|&b| b == terminator) {
                let end = scanned + i;
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop();
                return Ok(line);
            }
            scanned = self.buf.len();
            if scanned > MAX_MESSAGE_BYTES {
                self.buf.clear();
                return Err(TransportError::Overflow(MAX_MESSAGE_BYTES));
            }
            self.fill(source, deadline, timeout)?;
        }
    }

    pub(crate) fn read_exact<S: TimedRead>(
        &mut self,
        source: &mut S,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<u8>, TransportError> {
        let deadline = Instant::now() + timeout;
        while self.buf.len() < n {
            self.fill(source, deadline, timeout)?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    fn fill<S: TimedRead>(
        &mut self,
        source: &mut S,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), TransportError> {
        let mut chunk = [0u8; 4096];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(TransportError::Timeout {
                    waited: timeout,
                    partial: self.buf.clone(),
                });
            }
            let remaining = (deadline - now).max(Duration::from_millis(1));
            match source.read_timed(&mut chunk, remaining) {
                Ok(0) => return Err(TransportError::Closed("end of stream".into())),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => continue,
                    io::ErrorKind::Interrupted => continue,
                    _ => return Err(classify(e)),
                },
            }
        }
    }
}

/// Hang-ups and resets are a closed link; anything else stays an I/O error.
pub(crate) fn classify(e: io::Error) -> TransportError {
    match e.kind() {
        io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::NotConnected
        | io::ErrorKind::UnexpectedEof => TransportError::Closed(e.to_string()),
        _ => TransportError::Io(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// Hands out pre-cut chunks, then times out.
    struct Chunks(VecDeque<io::Result<Vec<u8>>>);

    impl TimedRead for Chunks {
        fn read_timed(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
            match self.0.pop_front() {
                Some(Ok(c)) => {
                    buf[..c.len()].copy_from_slice(&c);
                    Ok(c.len())
                }
                Some(Err(e)) => Err(e),
                None => {
                    std::thread::sleep(timeout.min(Duration::from_millis(5)));
                    Err(io::ErrorKind::TimedOut.into())
                }
            }
        }
    }

    #[test]
    fn lines_split_across_reads_and_joined_in_one_read() {
        let mut src = Chunks(VecDeque::from([
            Ok(b"1.5E".to_vec()),
            Ok(b"0\nON\nrest".to_vec()),
        ]));
        let mut b = InputBuffer::default();
        let t = Duration::from_millis(50);
        assert_eq!(b.read_until(&mut src, b'\n', t).unwrap(), b"1.5E0");
        assert_eq!(b.read_until(&mut src, b'\n', t).unwrap(), b"ON");
        match b.read_until(&mut src, b'\n', t) {
            Err(TransportError::Timeout { partial, .. }) => assert_eq!(partial, b"rest"),
            other => panic!("{other:?}"),
        }
        assert_eq!(b.read_exact(&mut src, 4, t).unwrap(), b"rest");
    }

    #[test]
    fn end_of_stream_and_hang_up_are_a_closed_link() {
        let mut src = Chunks(VecDeque::from([Ok(Vec::new())]));
        let mut b = InputBuffer::default();
        let t = Duration::from_millis(50);
        assert!(matches!(
            b.read_until(&mut src, b'\n', t),
            Err(TransportError::Closed(_))
        ));
        let mut src = Chunks(VecDeque::from([Err(io::ErrorKind::BrokenPipe.into())]));
        assert!(matches!(
            b.read_exact(&mut src, 1, t),
            Err(TransportError::Closed(_))
        ));
    }
}
