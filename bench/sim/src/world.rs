//! The one physical world of the simulated bench, advanced on a virtual clock.

use crate::meter::{LedPulse, MeterModel, PhaseLoad};
use meterbench_instruments::{EdgeEvent, SourceSetpoint};
use meterbench_procedure::{Fixture, SimulationSpec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::{Arc, Mutex};

pub type SharedWorld = Arc<Mutex<World>>;

/// An edge the counter has seen but not yet delivered.
#[derive(Debug, Clone, Copy)]
struct PendingEdge {
    t: f64,
    channel: u8,
    width_s: f64,
    ref_count: u64,
}

#[derive(Debug)]
struct SourceModel {
    target: SourceSetpoint,
    on: bool,
    ever_on: bool,
    /// Present amplitudes per phase (V, A), relaxing towards the target.
    voltage: [f64; 3],
    current: [f64; 3],
    settling_tau_s: f64,
    amplitude_gain: f64,
}

#[derive(Debug)]
struct CounterModel {
    timebase_hz: f64,
    rate_factor: f64,
    armed_at: Option<f64>,
    ref_count_at_arm: u64,
    channels: Vec<(u8, f64)>,
    pending: Vec<PendingEdge>,
    sequence: u64,
}

#[derive(Debug)]
pub struct World {
    t: f64,
    rng: ChaCha8Rng,
    source: SourceModel,
    reference_gain: f64,
    reference_imp_per_kwh: f64,
    reference_phase: f64,
    true_energy_j: f64,
    meters: Vec<MeterModel>,
    /// Counter channel of each meter's scanning head (from the fixture's ports).
    meter_channels: Vec<u8>,
    update_period_s: f64,
    counter: CounterModel,
    scratch: Vec<LedPulse>,
    ct: CtSeconds,
}

/// The RMS current per phase over each whole second of virtual time: what a current
/// sensor that reports once a second (the CSP1) measures.
#[derive(Debug, Default)]
struct CtSeconds {
    /// ∫ i² dt per phase since the start of the current second, A²·s.
    integral_sq: [f64; 3],
    /// Completed seconds, oldest first: (end of the second, RMS per phase in A).
    completed: std::collections::VecDeque<(f64, [f64; 3])>,
}

/// Completed seconds kept for sensors to read (an hour).
const CT_SECONDS_KEPT: usize = 3600;

impl World {
    pub fn new(spec: &SimulationSpec, fixture: &Fixture) -> World {
        World::with_heads(spec, |port| fixture.port(port).map(|p| p.counter_channel))
    }

    /// The world with the scanning head of each meter port on the counter channel
    /// `head(port)` gives (`None`: no head over that LED, e.g. when the bench tests a
    /// current sensor).
    pub fn with_heads(spec: &SimulationSpec, head: impl Fn(&str) -> Option<u8>) -> World {
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        let mut meters = Vec::new();
        let mut meter_channels = Vec::new();
        for m in &spec.dut.meters {
            let phase: f64 = rng.random();
            meters.push(MeterModel::new(&spec.dut, m, phase));
            // A meter whose port the fixture does not mount has no scanning head.
            meter_channels.push(head(&m.port).unwrap_or(u8::MAX));
        }
        World {
            t: 0.0,
            reference_phase: rng.random(),
            rng,
            source: SourceModel {
                target: SourceSetpoint::default(),
                on: false,
                ever_on: false,
                voltage: [0.0; 3],
                current: [0.0; 3],
                settling_tau_s: spec.source_settling_time_constant_s,
                amplitude_gain: 1.0 + spec.source_amplitude_error_percent / 100.0,
            },
            reference_gain: 1.0 + spec.reference_actual_error_percent / 100.0,
            reference_imp_per_kwh: 0.0,
            true_energy_j: 0.0,
            meters,
            meter_channels,
            update_period_s: 1.0 / spec.dut.energy_update_hz,
            counter: CounterModel {
                timebase_hz: spec.counter_timebase_hz,
                rate_factor: 1.0 + spec.counter_timebase_offset_ppm * 1e-6,
                armed_at: None,
                ref_count_at_arm: 0,
                channels: Vec::new(),
                pending: Vec::new(),
                sequence: 0,
            },
            scratch: Vec::new(),
            ct: CtSeconds::default(),
        }
    }

    /// Virtual time, seconds.
    pub fn now_s(&self) -> f64 {
        self.t
    }

    // --- source ---------------------------------------------------------------------

    pub fn source_apply(&mut self, setpoint: SourceSetpoint) {
        self.source.target = setpoint;
    }

    pub fn source_set_output(&mut self, on: bool) {
        self.source.on = on;
        self.source.ever_on |= on;
        if !on {
            self.source.voltage = [0.0; 3];
            self.source.current = [0.0; 3];
        }
    }

    pub fn source_output_is_on(&self) -> bool {
        self.source.on
    }

    /// Whether the output was ever switched on since the world began.
    pub fn source_was_ever_on(&self) -> bool {
        self.source.ever_on
    }

    /// What each meter element sees right now.
    fn loads(&self) -> [PhaseLoad; 3] {
        let mut l = [PhaseLoad::default(); 3];
        for (k, p) in l.iter_mut().enumerate() {
            *p = PhaseLoad {
                voltage_v: self.source.voltage[k],
                current_a: self.source.current[k],
                lag_deg: self.source.target.phases[k].current_lag_deg,
            };
        }
        l
    }

    /// The settled load a setpoint gives, as the meters would see it.
    pub fn settled_loads(&self, setpoint: &SourceSetpoint) -> [PhaseLoad; 3] {
        let g = self.source.amplitude_gain;
        let mut l = [PhaseLoad::default(); 3];
        for (k, p) in l.iter_mut().enumerate() {
            let sp = setpoint.phases[k];
            *p = PhaseLoad {
                voltage_v: sp.voltage_v * g,
                current_a: sp.current_a * g,
                lag_deg: sp.current_lag_deg,
            };
        }
        l
    }

    /// Error, %, the model gives the meter of `port` at a setpoint (what the bench must find,
    /// apart from the reference standard's own error).
    pub fn injected_error_percent(&self, port: &str, setpoint: &SourceSetpoint) -> Option<f64> {
        let loads = self.settled_loads(setpoint);
        self.meters
            .iter()
            .find(|m| m.port == port)
            .map(|m| m.injected_error_percent(&loads))
    }

    /// A port's register as its LCD (and its CAN interface) shows it: kWh text with
    /// `decimals` decimals.
    pub fn display_register_kwh(&self, port: &str, decimals: u32) -> Option<String> {
        self.meters
            .iter()
            .find(|m| m.port == port)
            .map(|m| m.display_register_kwh(decimals))
    }

    /// Registered energy of a port's meter, Wh (what its LCD register holds).
    pub fn register_wh(&self, port: &str) -> Option<f64> {
        self.meters
            .iter()
            .find(|m| m.port == port)
            .map(|m| m.register_j / 3600.0)
    }

    // --- reference standard ---------------------------------------------------------

    /// The reference standard's actual error, % (its certificate covers it with U).
    pub fn reference_error_percent(&self) -> f64 {
        (self.reference_gain - 1.0) * 100.0
    }

    pub fn reference_configure(&mut self, imp_per_kwh: f64) {
        self.reference_imp_per_kwh = imp_per_kwh;
    }

    fn reference_count_at(&self, true_energy_j: f64) -> u64 {
        let pulses = true_energy_j * self.reference_gain * self.reference_imp_per_kwh / 3.6e6;
        (pulses + self.reference_phase).floor() as u64
    }

    // --- counter --------------------------------------------------------------------

    pub fn counter_arm(&mut self, channels: &[(u8, f64)]) {
        self.counter.armed_at = Some(self.t);
        self.counter.ref_count_at_arm = self.reference_count_at(self.true_energy_j);
        self.counter.channels = channels.to_vec();
        self.counter.pending.clear();
        self.counter.sequence = 0;
    }

    pub fn counter_disarm(&mut self) {
        self.counter.armed_at = None;
        self.counter.pending.clear();
    }

    pub fn counter_timebase_hz(&self) -> f64 {
        self.counter.timebase_hz
    }

    fn ticks(&self, t: f64) -> u64 {
        let since = t - self.counter.armed_at.unwrap_or(t);
        (since * self.counter.timebase_hz * self.counter.rate_factor)
            .floor()
            .max(0.0) as u64
    }

    /// The counter's time now, ticks since it was armed.
    pub fn counter_now_ticks(&self) -> u64 {
        self.ticks(self.t)
    }

    /// The reference count since arming, now.
    pub fn counter_ref_count_now(&self) -> u64 {
        self.reference_count_at(self.true_energy_j)
            .saturating_sub(self.counter.ref_count_at_arm)
    }

    /// Every edge up to now, in time order, and the counter's time.
    pub fn counter_drain(&mut self) -> (Vec<EdgeEvent>, u64) {
        let now = self.t;
        let mut due: Vec<PendingEdge> = Vec::new();
        self.counter.pending.retain(|e| {
            if e.t <= now {
                due.push(*e);
                false
            } else {
                true
            }
        });
        due.sort_by(|a, b| a.t.total_cmp(&b.t));
        let mut events = Vec::with_capacity(due.len());
        for e in due {
            self.counter.sequence += 1;
            let f = self.counter.timebase_hz * self.counter.rate_factor;
            events.push(EdgeEvent {
                channel: e.channel,
                timestamp_ticks: self.ticks(e.t),
                width_ticks: (e.width_s * f).round() as u32,
                ref_count: e.ref_count - self.counter.ref_count_at_arm.min(e.ref_count),
                sequence: self.counter.sequence,
            });
        }
        (events, self.ticks(now))
    }

    // --- current sensors ------------------------------------------------------------

    /// RMS current per phase (A) of each whole second of virtual time that ended after
    /// `after_s`, as (end of the second, [L1, L2, L3]), oldest first.
    pub fn ct_seconds_after(&self, after_s: f64) -> Vec<(f64, [f64; 3])> {
        self.ct
            .completed
            .iter()
            .filter(|(t, _)| *t > after_s + 1e-9)
            .copied()
            .collect()
    }

    /// Accumulate i² over `t0 .. t0 + dt` (the slice's current), closing whole seconds.
    fn ct_accumulate(&mut self, t0: f64, dt: f64) {
        let i = self.source.current;
        let mut t = t0;
        let end = t0 + dt;
        while t < end - 1e-12 {
            let second_end = (t + 1e-9).floor() + 1.0;
            let t1 = second_end.min(end);
            for (acc, ik) in self.ct.integral_sq.iter_mut().zip(i) {
                *acc += ik * ik * (t1 - t);
            }
            if (t1 - second_end).abs() < 1e-9 {
                let rms = self.ct.integral_sq.map(|x| x.max(0.0).sqrt());
                self.ct.completed.push_back((second_end, rms));
                if self.ct.completed.len() > CT_SECONDS_KEPT {
                    self.ct.completed.pop_front();
                }
                self.ct.integral_sq = [0.0; 3];
            }
            t = t1;
        }
    }

    // --- time -----------------------------------------------------------------------

    /// Advance the world by `duration_s` seconds of virtual time.
    pub fn advance(&mut self, duration_s: f64) {
        let end = self.t + duration_s.max(0.0);
        while self.t < end - 1e-12 {
            // Index of the next grid line; a time within 1 ns of a line counts as on it.
            let k = ((self.t + 1e-9) / self.update_period_s).floor() + 1.0;
            let boundary = k * self.update_period_s;
            let (t1, ends_interval) = if boundary <= end + 1e-9 {
                (boundary, true)
            } else {
                (end, false)
            };
            self.step(self.t, t1 - self.t, ends_interval);
            self.t = t1;
        }
    }

    fn step(&mut self, t0: f64, dt: f64, ends_interval: bool) {
        // The source's amplitudes relax towards the target; use the slice's mean value.
        let s = &mut self.source;
        let relax = if s.settling_tau_s > 0.0 {
            (-dt / s.settling_tau_s).exp()
        } else {
            0.0
        };
        for k in 0..3 {
            let (tv, ti) = if s.on {
                (
                    s.target.phases[k].voltage_v * s.amplitude_gain,
                    s.target.phases[k].current_a * s.amplitude_gain,
                )
            } else {
                (0.0, 0.0)
            };
            s.voltage[k] = tv + (s.voltage[k] - tv) * relax;
            s.current[k] = ti + (s.current[k] - ti) * relax;
        }
        self.ct_accumulate(t0, dt);
        let loads = self.loads();
        let power: f64 = loads.iter().map(|l| l.power_w()).sum();
        let energy_before = self.true_energy_j;
        self.true_energy_j += power * dt;

        for m in 0..self.meters.len() {
            let noise = standard_normal(&mut self.rng);
            self.scratch.clear();
            let mut pulses = std::mem::take(&mut self.scratch);
            self.meters[m].advance(t0, dt, ends_interval, &loads, noise, &mut pulses);
            let channel = self.meter_channels[m];
            if let Some(&(_, glitch_s)) = self.counter.channels.iter().find(|c| c.0 == channel)
                && self.counter.armed_at.is_some()
            {
                for p in &pulses {
                    if p.width_s < glitch_s {
                        continue;
                    }
                    let e = energy_before + power * (p.rising_s - t0);
                    let ref_count = self.reference_count_at(e);
                    self.counter.pending.push(PendingEdge {
                        t: p.rising_s,
                        channel,
                        width_s: p.width_s,
                        ref_count,
                    });
                }
            }
            self.scratch = pulses;
        }
    }
}

/// A standard normal draw (Box–Muller), so the model needs no distribution crate.
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
