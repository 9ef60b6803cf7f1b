//! The simulated Xemex CSP1 on the far end of a pseudo-terminal: while its request line
//! is raised it sends, for every whole second of the simulated world, a DSMR P1
//! telegram in the CSP1's format with the RMS current of each CT over that second
//! (1 A resolution), with a configurable gain and offset error per CT and a noise on each
//! second's value before it is rounded (seeded: a run is reproduced exactly).
//!
//! A pseudo-terminal has no modem lines, so the request line travels beside it:
//! [`RequestWire`] is the wire from the host's RTS/DTR to the device's request pin, and
//! [`WiredPty`] is the host's end of the cable (a serial transport whose RTS and DTR
//! drive that wire, as a P1 cable drives the device's pin).

use crate::world::{SharedWorld, device_seed, standard_normal};
use meterbench_instruments::transport::{SerialTransport, Transport, TransportError};
use meterbench_p1::{Csp1Params, encode_csp1_telegram};
use meterbench_procedure::SimCsp1Spec;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
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
    /// RMS noise of each CT's value over one second, before it is rounded, A: what makes
    /// the flip between two readings a probability rather than a step.
    pub noise_a: [f64; 3],
    /// Seed of the noise. Each second of the world draws from its own stream of it (the
    /// second's number), so the readings depend on the seed and the currents only, not
    /// on when the device was plugged in or the bench asks.
    pub noise_seed: u64,
}

impl Default for Csp1SimConfig {
    fn default() -> Self {
        Csp1SimConfig {
            identity: Csp1Params::default(),
            gain_percent: [0.0; 3],
            offset_a: [0.0; 3],
            noise_a: [0.0; 3],
            noise_seed: 0,
        }
    }
}

impl Csp1SimConfig {
    /// The simulated CSP1 a station declares at `position`, its noise seeded from the
    /// world's seed and the position (as each simulated meter's is).
    pub fn for_position(spec: &SimCsp1Spec, world_seed: u64, position: u32) -> Csp1SimConfig {
        Csp1SimConfig {
            identity: Csp1Params {
                equipment_id: spec.serial_number.clone(),
                firmware: spec.firmware.clone(),
                ..Csp1Params::default()
            },
            gain_percent: spec.gain_percent,
            offset_a: spec.offset_a,
            noise_a: spec.noise_a,
            noise_seed: device_seed(world_seed, position, "csp1"),
        }
    }

    /// The value the device holds for a true RMS current `i_a` on CT `k` with that
    /// second's standard normal draw `z` (before its 1 A rounding).
    pub fn reading_a(&self, k: usize, i_a: f64, z: f64) -> f64 {
        (i_a * (1.0 + self.gain_percent[k] / 100.0) + self.offset_a[k] + self.noise_a[k] * z)
            .max(0.0)
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
    // Seconds that ended before the device was plugged in (now, not when its thread
    // starts) are not reported.
    let mut last_second = world.lock().unwrap().now_s().floor();
    std::thread::Builder::new()
        .name("sim-csp1".into())
        .spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let seconds = world.lock().unwrap().ct_seconds_after(last_second);
                for (end, rms) in seconds {
                    last_second = end;
                    let z = second_draws(config.noise_seed, end);
                    // Unasked, the device stays silent; that second is not sent later.
                    if !request.is_raised() {
                        continue;
                    }
                    let mut p = config.identity.clone();
                    p.currents = [0, 1, 2].map(|k| config.reading_a(k, rms[k], z[k]));
                    if stream.write_all(&encode_csp1_telegram(&p)).is_err() {
                        return;
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
        .expect("spawn the simulated CSP1")
}

/// The standard normal draws of each CT for the second that ends at `end_s`: from the
/// seed's stream numbered by the second.
fn second_draws(seed: u64, end_s: f64) -> [f64; 3] {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(end_s.round() as u64);
    [(); 3].map(|()| standard_normal(&mut rng))
}
