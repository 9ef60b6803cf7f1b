//! Deadline-bounded, buffered reading shared by the stream transports.

use super::{MAX_MESSAGE_BYTES, TransportError};
use std::io;
use std::time::{Duration, Instant};

/// A byte source whose single reads can be bounded in time.
pub(crate) trait TimedRead {
    /// Read some bytes, waiting at most `timeout` (never zero).
    fn read_timed(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;
}

/// Bytes received but not yet handed out: `buf[start..]`. Messages are handed out by
/// moving `start`, not by shifting the rest to the front each time (a read of 4 KB can
/// hold a hundred counter frames).
#[derive(Debug, Default)]
pub(crate) struct InputBuffer {
    buf: Vec<u8>,
    start: usize,
}

impl InputBuffer {
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.start = 0;
    }

    fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Hand out `len` bytes from the front, then skip `skip` more (a terminator).
    fn take(&mut self, len: usize, skip: usize) -> Vec<u8> {
        let out = self.buf[self.start..self.start + len].to_vec();
        self.start += len + skip;
        if self.start == self.buf.len() {
            self.clear();
        }
        out
    }

    pub(crate) fn read_until<S: TimedRead>(
        &mut self,
        source: &mut S,
        terminator: u8,
        timeout: Duration,
    ) -> Result<Vec<u8>, TransportError> {
        let deadline = Instant::now() + timeout;
        // Bytes of the pending data already searched for the terminator.
        let mut scanned = 0;
        loop {
            let from = self.start + scanned;
            if let Some(i) = self.buf[from..].iter().position(|&b| b == terminator) {
                return Ok(self.take(scanned + i, 1));
            }
            scanned = self.pending();
            if scanned > MAX_MESSAGE_BYTES {
                self.clear();
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
        while self.pending() < n {
            self.fill(source, deadline, timeout)?;
        }
        Ok(self.take(n, 0))
    }

    fn fill<S: TimedRead>(
        &mut self,
        source: &mut S,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), TransportError> {
        // What was handed out goes before more comes in: one move per read, not per message.
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
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
    fn many_messages_in_one_read_then_the_rest_of_a_cut_one() {
        let mut src = Chunks(VecDeque::from([
            Ok(b"a\0bb\0\0ccc\0dd".to_vec()),
            Ok(b"d\0eeee".to_vec()),
        ]));
        let mut b = InputBuffer::default();
        let t = Duration::from_millis(50);
        let mut got = Vec::new();
        for _ in 0..5 {
            got.push(b.read_until(&mut src, 0, t).unwrap());
        }
        assert_eq!(
            got,
            [&b"a"[..], b"bb", b"", b"ccc", b"ddd"].map(|x| x.to_vec())
        );
        assert_eq!(b.read_exact(&mut src, 2, t).unwrap(), b"ee");
        assert_eq!(b.read_exact(&mut src, 2, t).unwrap(), b"ee");
        assert!(matches!(
            b.read_until(&mut src, 0, t),
            Err(TransportError::Timeout { partial, .. }) if partial.is_empty()
        ));
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
