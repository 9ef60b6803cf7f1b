//! One trait per capability. Drivers (real instruments) and simulators implement them;
//! the runner sees only these traits, bound to roles by the station.

use serde::{Deserialize, Serialize};
use std::time::Duration;

pub mod climate;
pub mod counter;
pub mod discovery;
pub mod p1;
pub mod scpi;
pub mod source;
pub mod transport;

/// What an instrument says about itself (e.g. its `*IDN?` answer or a counter's hello).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstrumentIdentity {
    pub manufacturer: String,
    pub model: String,
    pub serial_number: String,
    pub firmware: String,
}

#[derive(Debug, thiserror::Error)]
pub enum InstrumentError {
    #[error("{instrument}: no answer within {timeout:?} to {request}")]
    Timeout {
        instrument: String,
        request: String,
        timeout: Duration,
    },
    #[error("{instrument}: {request} was answered with an error: {reply}")]
    Device {
        instrument: String,
        request: String,
        reply: String,
    },
    #[error("{instrument}: {message}")]
    Link { instrument: String, message: String },
    #[error("{instrument}: refused {request}: {reason}")]
    Refused {
        instrument: String,
        request: String,
        reason: String,
    },
}

pub type InstrumentResult<T> = Result<T, InstrumentError>;

/// The three lines of a polyphase source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum Phase {
    L1,
    L2,
    L3,
}

impl Phase {
    pub const ALL: [Phase; 3] = [Phase::L1, Phase::L2, Phase::L3];
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Setpoint of one phase of the source.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PhaseSetpoint {
    pub voltage_v: f64,
    pub current_a: f64,
    /// Angle by which the current lags its voltage, degrees (negative = leads).
    pub current_lag_deg: f64,
}

/// What the source is asked to output on all three phases.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct SourceSetpoint {
    pub frequency_hz: f64,
    pub phases: [PhaseSetpoint; 3],
}

impl SourceSetpoint {
    /// Active power the setpoint asks for, W.
    pub fn active_power_w(&self) -> f64 {
        self.phases
            .iter()
            .map(|p| p.voltage_v * p.current_a * p.current_lag_deg.to_radians().cos())
            .sum()
    }
}

/// AC reference source or electrical power standard.
pub trait AcSource: Send {
    fn identity(&mut self) -> InstrumentResult<InstrumentIdentity>;
    /// Program voltage, current and phase of every phase; does not change the output state.
    fn apply(&mut self, setpoint: &SourceSetpoint) -> InstrumentResult<()>;
    /// Switch the output on or off. Off must leave no voltage and no current.
    fn set_output(&mut self, on: bool) -> InstrumentResult<()>;
    fn output_is_on(&mut self) -> InstrumentResult<bool>;
}

/// Reference energy standard with a high-frequency pulse output into the counter's
/// reference input.
pub trait ReferenceStandard: Send {
    fn identity(&mut self) -> InstrumentResult<InstrumentIdentity>;
    /// Configure the energy pulse output constant, imp/kWh.
    fn configure_pulse_output(&mut self, imp_per_kwh: f64) -> InstrumentResult<()>;
}

/// Edge configuration of one counter input.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChannelConfig {
    pub channel: u8,
    /// Pulses shorter than this are ignored, seconds.
    pub glitch_filter_s: f64,
}

/// One DUT pulse as the counter saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeEvent {
    pub channel: u8,
    /// Rising edge, timebase ticks since the counter was armed.
    pub timestamp_ticks: u64,
    /// Pulse width in ticks (0 when the falling edge has not been seen yet).
    pub width_ticks: u32,
    /// Reference standard count latched at the rising edge.
    pub ref_count: u64,
    /// Counter's event sequence number; gaps mean lost events.
    pub sequence: u64,
}

/// Everything the counter timestamped since the last drain, and the counter's time now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterBatch {
    pub events: Vec<EdgeEvent>,
    pub now_ticks: u64,
}

/// One reading of a current sensor (one P1 telegram of the CSP1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorReading {
    /// L1, L2, L3 exactly as sent (`024`), when sent.
    pub currents: [Option<String>; 3],
    /// The same as numbers, A.
    pub currents_a: [Option<f64>; 3],
    /// The firmware id the device reported with it, if any.
    pub firmware: Option<String>,
}

/// How the sensor's link went: telegrams, CRC failures, other decoding errors, gaps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SensorLinkStats {
    pub telegrams: u64,
    pub crc_failures: u64,
    pub other_errors: u64,
    pub gaps: u64,
}

/// A current sensor under test that reports readings on its own (the CSP1 once a
/// second while its request line is raised).
pub trait CurrentSensor: Send {
    fn describe(&self) -> String;
    /// The next good reading, waiting at most `timeout`; `None`: nothing arrived.
    /// Corrupt telegrams are counted in the stats and never returned.
    fn next_reading(&mut self, timeout: Duration) -> InstrumentResult<Option<SensorReading>>;
    fn stats(&self) -> SensorLinkStats;
}

/// The ambient conditions where the devices are measured, as a climate sensor reports
/// them at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AmbientReading {
    /// Air temperature, °C.
    pub temperature_c: f64,
    /// Relative humidity, % RH; none when the sensor reports no humidity.
    pub humidity_percent_rh: Option<f64>,
}

/// A temperature and humidity sensor (transmitter or logger) at the bench.
pub trait ClimateSensor: Send {
    /// The link, for messages: "Vaisala HMT330 on /dev/ttyUSB1 4800 7E1".
    fn describe(&self) -> String;
    fn identity(&mut self) -> InstrumentResult<InstrumentIdentity>;
    /// One reading now.
    fn read(&mut self) -> InstrumentResult<AmbientReading>;
}

/// The counter's reference-frequency count (the reference standard's energy pulses
/// since Arm) at a moment of the counter's timebase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceCount {
    pub now_ticks: u64,
    pub ref_count: u64,
}

/// Pulse counter with a timebase and a reference-count latch.
pub trait PulseCounter: Send {
    fn identity(&mut self) -> InstrumentResult<InstrumentIdentity>;
    /// Nominal timebase frequency, Hz.
    fn timebase_hz(&self) -> f64;
    /// Configure and start timestamping the given channels; the timebase restarts at 0.
    fn arm(&mut self, channels: &[ChannelConfig]) -> InstrumentResult<()>;
    fn disarm(&mut self) -> InstrumentResult<()>;
    /// Every event timestamped since the last drain, in order, and the counter's time.
    fn drain(&mut self) -> InstrumentResult<CounterBatch>;
    /// The reference count now, at the counter's next status report. Edges that arrive
    /// meanwhile are kept for the next drain.
    fn reference_count(&mut self) -> InstrumentResult<ReferenceCount>;
}

/// The bench's notion of time. A real station sleeps on the wall clock; the simulated
/// bench advances its world. The runner never knows which.
pub trait Clock: Send {
    /// Time since the clock was created.
    fn now(&self) -> Duration;
    fn sleep(&mut self, duration: Duration);

    /// Seconds of this clock that pass per second of wall time while sleeping: 1 for the
    /// wall clock (and a simulation paced to it); `None` for a virtual clock that runs
    /// unpaced, where a sleep costs no wall time. The runner refreshes the technician's
    /// display every few wall-clock seconds; an unpaced clock needs no refresh between
    /// the counter polls a measurement needs.
    fn rate(&self) -> Option<f64> {
        Some(1.0)
    }

    /// Sleep, but return early (false) once `stop` is set: a long wait must not keep
    /// the source energised after a stop. Slices of at most 50 ms.
    fn sleep_unless(&mut self, duration: Duration, stop: &std::sync::atomic::AtomicBool) -> bool {
        const SLICE: Duration = Duration::from_millis(50);
        let mut left = duration;
        while !left.is_zero() {
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                return false;
            }
            let step = left.min(SLICE);
            self.sleep(step);
            left -= step;
        }
        !stop.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A software identity as the DUT reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftwareReading {
    pub software_version: String,
    /// Upper-case hex.
    pub software_hash: String,
    /// (port, upper-case hex), in the fixture's port order.
    pub lrs_hash: Vec<(String, String)>,
}

/// The DUT's own interface for its software identity (CAN, or the LCD read by a person).
pub trait DutSoftware: Send {
    /// The link, for messages: "CAN via SLCAN on /dev/ttyACM0, ids 0x7E0/0x7E8".
    fn describe(&self) -> String;
    fn read_identity(&mut self) -> InstrumentResult<SoftwareReading>;
    /// A port's energy register as the meter's display shows it (kWh text, never
    /// rounded), where the interface offers it.
    fn read_register_kwh(&mut self, port: &str) -> InstrumentResult<String>;
}

/// Wall-clock time for real stations.
#[derive(Debug)]
pub struct SystemClock {
    start: std::time::Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        SystemClock {
            start: std::time::Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }
    fn sleep(&mut self, duration: Duration) {
        std::thread::sleep(duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_power_of_a_balanced_setpoint() {
        let p = PhaseSetpoint {
            voltage_v: 230.0,
            current_a: 5.0,
            current_lag_deg: 60.0,
        };
        let s = SourceSetpoint {
            frequency_hz: 50.0,
            phases: [p; 3],
        };
        // 3 · 230 · 5 · cos 60° = 1725 W
        assert!((s.active_power_w() - 1725.0).abs() < 1e-9);
    }
}
