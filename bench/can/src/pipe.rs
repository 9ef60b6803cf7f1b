//! An in-memory duplex byte pipe with a read timeout, standing in for a
//! serial line or pseudo-terminal in tests and in-process simulations.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

#[derive(Debug, Default)]
struct Direction {
    state: Mutex<(VecDeque<u8>, bool)>,
    ready: Condvar,
}

impl Direction {
    fn lock(&self) -> MutexGuard<'_, (VecDeque<u8>, bool)> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn close(&self) {
        self.lock().1 = true;
        self.ready.notify_all();
    }
}

/// One end of a [`duplex`] pipe. Reads wait up to the read timeout (10 ms
/// unless set) and then fail with `TimedOut`, as a serial port does; once
/// the other end is dropped, reads drain what is left and then return 0 and
/// writes fail with `BrokenPipe`.
#[derive(Debug)]
pub struct PipeEnd {
    incoming: Arc<Direction>,
    outgoing: Arc<Direction>,
    read_timeout: Duration,
}

/// Two connected ends: bytes written to one are read from the other.
pub fn duplex() -> (PipeEnd, PipeEnd) {
    let a_to_b = Arc::new(Direction::default());
    let b_to_a = Arc::new(Direction::default());
    let a = PipeEnd {
        incoming: b_to_a.clone(),
        outgoing: a_to_b.clone(),
        read_timeout: Duration::from_millis(10),
    };
    let b = PipeEnd {
        incoming: a_to_b,
        outgoing: b_to_a,
        read_timeout: Duration::from_millis(10),
    };
    (a, b)
}

impl PipeEnd {
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.read_timeout = timeout;
    }
}

impl Read for PipeEnd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let guard = self.incoming.lock();
        let (mut guard, _) = self
            .incoming
            .ready
            .wait_timeout_while(guard, self.read_timeout, |(data, closed)| {
                data.is_empty() && !*closed
            })
            .unwrap_or_else(PoisonError::into_inner);
        let (data, closed) = &mut *guard;
        if data.is_empty() {
            return if *closed {
                Ok(0)
            } else {
                Err(io::ErrorKind::TimedOut.into())
            };
        }
        let n = buf.len().min(data.len());
        for (slot, byte) in buf.iter_mut().zip(data.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }
}

impl Write for PipeEnd {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut guard = self.outgoing.lock();
        if guard.1 {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        guard.0.extend(buf);
        drop(guard);
        self.outgoing.ready.notify_all();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        self.incoming.close();
        self.outgoing.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_cross_and_reads_time_out() {
        let (mut a, mut b) = duplex();
        a.write_all(b"abc").unwrap();
        let mut buf = [0; 8];
        assert_eq!(b.read(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"abc");
        assert_eq!(
            b.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
        b.write_all(b"x").unwrap();
        drop(b);
        assert_eq!(a.read(&mut buf).unwrap(), 1);
        assert_eq!(a.read(&mut buf).unwrap(), 0);
        assert_eq!(a.write(b"y").unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }
}
