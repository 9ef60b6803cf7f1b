//! The simulated Xemex CSP1 on the far end of a pseudo-terminal: while its request line
//! is raised it sends, for every whole second of the simulated world, a DSMR P1
//! telegram in the CSP1's format with the RMS current of each CT over that second
//! (1 A resolution), with a configurable gain and offset error per CT.
//!
//! A pseudo-terminal has no modem lines, so the request line travels beside it:
//! [`RequestWire`] is the wire from the host's RTS/DTR to the device's request pin, and
//! [`WiredPty`] is the host's end of the cable (a serial transport whose RTS and DTR
//! drive that wire, as a P1 cable drives the device's pin).

use crate::world::SharedWorld;
use meterbench_instruments::transport::{SerialTransport, Transport, TransportError};
use meterbench_p1::{Csp1Params, encode_csp1_telegram};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the simulated CSP1 is and how wrong it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Csp1SimConfig {
    /// Identification, equipment id and firmware id (the currents are computed).
    pub identity: Csp1Params,
    /// Gain error of each CT, % of reading.
    pub gain_percent: [f64; 3],
    /// Offset of each CT, A.
    pub offset_a: [f64; 3],
}

impl Default for Csp1SimConfig {
    fn default() -> Self {
        Csp1SimConfig {
            identity: Csp1Params::default(),
            gain_percent: [0.0; 3],
            offset_a: [0.0; 3],
        }
    }
}

impl Csp1SimConfig {
    /// The reading the device reports for a true RMS current `i_a` on CT `k` (before
    /// its 1 A rounding).
    pub fn reading_a(&self, k: usize, i_a: f64) -> f64 {
        (i_a * (1.0 + self.gain_percent[k] / 100.0) + self.offset_a[k]).max(0.0)
    }
}

/// The request line between the host's cable and the device: raised = send.
#[derive(Debug, Clone, Default)]
pub struct RequestWire(Arc<AtomicBool>);

impl RequestWire {
    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    pub fn set(&self, raised: bool) {
        self.0.store(raised, Ordering::SeqCst)
    }
}

/// The host's end of a P1 cable to a simulated device on a pseudo-terminal: bytes go
/// through the PTY; RTS or DTR high raises the request wire (a non-inverting cable).
pub struct WiredPty {
    pub serial: SerialTransport,
    pub request: RequestWire,
}

impl Transport for WiredPty {
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), TransportError> {
        self.serial.write_all(bytes)
    }
    fn read_until(&mut self, terminator: u8, timeout: Duration) -> Result<Vec<u8>, TransportError> {
        self.serial.read_until(terminator, timeout)
    }
    fn read_exact(&mut self, n: usize, timeout: Duration) -> Result<Vec<u8>, TransportError> {
        self.serial.read_exact(n, timeout)
    }
    fn discard_input(&mut self) -> Result<(), TransportError> {
        self.serial.discard_input()
    }
    fn set_rts(&mut self, level: bool) -> Result<(), TransportError> {
        self.request.set(level);
        Ok(())
    }
    fn set_dtr(&mut self, level: bool) -> Result<(), TransportError> {
        self.request.set(level);
        Ok(())
    }
    fn describe(&self) -> String {
        format!(
            "{} (request line wired to the simulated device)",
            self.serial.describe()
        )
    }
}

/// Start the simulated CSP1 writing to `stream` (a PTY master). It ends when the far
/// end closes or `stop` is set.
pub fn spawn_csp1_device<S: Write + Send + 'static>(
    world: SharedWorld,
    mut stream: S,
    config: Csp1SimConfig,
    request: RequestWire,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("sim-csp1".into())
        .spawn(move || {
            // Seconds that ended before the device was plugged in are not reported.
            let mut last_second = world.lock().unwrap().now_s().floor();
            while !stop.load(Ordering::SeqCst) {
                let seconds = world.lock().unwrap().ct_seconds_after(last_second);
                for (end, rms) in seconds {
                    last_second = end;
                    // Unasked, the device stays silent; that second is not sent later.
                    if !request.is_raised() {
                        continue;
                    }
                    let mut p = config.identity.clone();
                    p.currents = [0, 1, 2].map(|k| config.reading_a(k, rms[k]));
                    if stream.write_all(&encode_csp1_telegram(&p)).is_err() {
                        return;
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
        .expect("spawn the simulated CSP1")
}
