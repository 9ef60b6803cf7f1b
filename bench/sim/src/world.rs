//! The one physical world of the simulated bench, advanced on a virtual clock.

use crate::meter::{LedPulse, MeterModel, PhaseLoad};
use meterbench_instruments::{EdgeEvent, SourceSetpoint};
use meterbench_procedure::{Fixture, HeadInput, SimulationSpec, Station};
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
    /// Present amplitudes per phase (V, A): constant between update grid lines, where
    /// they follow the settling exponential from the last change.
    voltage: [f64; 3],
    current: [f64; 3],
    /// Amplitudes at the last change of setpoint or output, and when it was.
    from_voltage: [f64; 3],
    from_current: [f64; 3],
    changed_at: f64,
    settling_tau_s: f64,
    amplitude_gain: f64,
}

impl SourceModel {
    /// The amplitudes the output settles to.
    fn targets(&self) -> ([f64; 3], [f64; 3]) {
        if !self.on {
            return ([0.0; 3], [0.0; 3]);
        }
        let g = self.amplitude_gain;
        (
            self.target.phases.map(|p| p.voltage_v * g),
            self.target.phases.map(|p| p.current_a * g),
        )
    }

    /// A change of setpoint or output at `t`: settling starts from what is there now.
    fn changed(&mut self, t: f64) {
        self.from_voltage = self.voltage;
        self.from_current = self.current;
        self.changed_at = t;
        if self.settling_tau_s <= 0.0 {
            (self.voltage, self.current) = self.targets();
        }
    }

    /// The amplitudes at grid line `t`, on the exponential from the last change.
    fn settle_to(&mut self, t: f64) {
        let (tv, ti) = self.targets();
        let relax = if self.settling_tau_s > 0.0 {
            (-(t - self.changed_at) / self.settling_tau_s).exp()
        } else {
            0.0
        };
        for k in 0..3 {
            self.voltage[k] = tv[k] + (self.from_voltage[k] - tv[k]) * relax;
            self.current[k] = ti[k] + (self.from_current[k] - ti[k]) * relax;
        }
    }
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

/// One meter of a simulated DUT, where its LED's scanning head is wired, and its own
/// noise.
#[derive(Debug)]
struct MeterSlot {
    /// The rack position of its device.
    position: u32,
    model: MeterModel,
    /// The counter and channel of the scanning head over its LED, if one is.
    head: Option<HeadInput>,
    /// Its own noise source: a device's noise does not depend on which other devices
    /// share the world.
    rng: ChaCha8Rng,
    /// The noise draw of the energy update interval under way.
    noise: f64,
}

/// The simulated world. Its physics changes only at the meters' energy update grid
/// lines and at the bench's own actions (a new setpoint, the output switched): how
/// often the bench looks in between changes nothing the devices do.
#[derive(Debug)]
pub struct World {
    /// The bench's time, s.
    t: f64,
    /// Start of the open segment: amplitudes are constant from here to the next grid
    /// line or bench action.
    seg_start: f64,
    /// Index of the next grid line (at `k · update_period_s`).
    next_line: u64,
    source: SourceModel,
    reference_gain: f64,
    reference_imp_per_kwh: f64,
    reference_phase: f64,
    /// True energy delivered up to `seg_start`, J, and the open segment's power, W.
    energy_at_seg_start_j: f64,
    seg_power_w: f64,
    meters: Vec<MeterSlot>,
    update_period_s: f64,
    /// One per counter of the station, each latching the same reference pulse train.
    counters: Vec<CounterModel>,
    /// Pulses the LEDs emit in the interval under way, not yet seen by a counter: (meter,
    /// pulse), in time order.
    led: Vec<(usize, LedPulse)>,
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
    /// The world of a station with devices of `fixture`'s kind mounted: each meter port's
    /// LED under the scanning head the fixture names, wired as the station's rack says.
    pub fn for_station(station: &Station, fixture: &Fixture) -> World {
        let spec = station
            .simulation
            .as_ref()
            .expect("a station with simulated roles has a simulation");
        World::with_heads(spec, |position, port| {
            let head = fixture.port(port)?.head;
            let p = station.rack.position(position)?;
            p.heads.get(usize::from(head) - 1).copied()
        })
    }

    /// The world with the scanning head over the LED of each meter port where
    /// `head(position, port)` says (`None`: no head over that LED, e.g. when the bench
    /// tests a current sensor).
    pub fn with_heads(
        spec: &SimulationSpec,
        head: impl Fn(u32, &str) -> Option<HeadInput>,
    ) -> World {
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        let mut meters = Vec::new();
        // The first position's energy update rate sets the world's grid (the rack's
        // meters are of one model).
        let mut update_hz = None;
        for p in &spec.positions {
            let Some(dut) = &p.cpim1000 else { continue };
            update_hz.get_or_insert(dut.energy_update_hz);
            for m in &dut.meters {
                let mut own =
                    ChaCha8Rng::seed_from_u64(device_seed(spec.seed, p.position, &m.port));
                let phase: f64 = own.random();
                let noise = standard_normal(&mut own);
                meters.push(MeterSlot {
                    position: p.position,
                    model: MeterModel::new(dut, m, phase),
                    head: head(p.position, &m.port),
                    rng: own,
                    noise,
                });
            }
        }
        World {
            t: 0.0,
            seg_start: 0.0,
            next_line: 1,
            reference_phase: rng.random(),
            source: SourceModel {
                target: SourceSetpoint::default(),
                on: false,
                ever_on: false,
                voltage: [0.0; 3],
                current: [0.0; 3],
                from_voltage: [0.0; 3],
                from_current: [0.0; 3],
                changed_at: 0.0,
                settling_tau_s: spec.source_settling_time_constant_s,
                amplitude_gain: 1.0 + spec.source_amplitude_error_percent / 100.0,
            },
            reference_gain: 1.0 + spec.reference_actual_error_percent / 100.0,
            reference_imp_per_kwh: 0.0,
            energy_at_seg_start_j: 0.0,
            seg_power_w: 0.0,
            meters,
            // Without a meter, the grid still paces the source and the current sensors.
            update_period_s: 1.0 / update_hz.unwrap_or(100.0),
            counters: spec
                .counters
                .iter()
                .map(|c| CounterModel {
                    timebase_hz: c.timebase_hz,
                    rate_factor: 1.0 + c.timebase_offset_ppm * 1e-6,
                    armed_at: None,
                    ref_count_at_arm: 0,
                    channels: Vec::new(),
                    pending: Vec::new(),
                    sequence: 0,
                })
                .collect(),
            led: Vec::new(),
            ct: CtSeconds::default(),
        }
    }

    /// Virtual time, seconds.
    pub fn now_s(&self) -> f64 {
        self.t
    }

    // --- source ---------------------------------------------------------------------

    pub fn source_apply(&mut self, setpoint: SourceSetpoint) {
        self.close_segment(self.t);
        self.source.target = setpoint;
        self.source.changed(self.t);
        self.seg_power_w = self.power_now_w();
    }

    pub fn source_set_output(&mut self, on: bool) {
        self.close_segment(self.t);
        self.source.on = on;
        self.source.ever_on |= on;
        if !on {
            // Off is off at once: no voltage, no current.
            self.source.voltage = [0.0; 3];
            self.source.current = [0.0; 3];
        }
        self.source.changed(self.t);
        self.seg_power_w = self.power_now_w();
    }

    fn power_now_w(&self) -> f64 {
        self.loads().iter().map(|l| l.power_w()).sum()
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

    /// Error, %, the model gives the meter of `port` at `position` at a setpoint (what
    /// the bench must find, apart from the reference standard's own error).
    pub fn injected_error_percent(
        &self,
        position: u32,
        port: &str,
        setpoint: &SourceSetpoint,
    ) -> Option<f64> {
        let loads = self.settled_loads(setpoint);
        self.meter(position, port)
            .map(|m| m.injected_error_percent(&loads))
    }

    /// A port's register as its LCD (and its CAN interface) shows it: kWh text with
    /// `decimals` decimals.
    pub fn display_register_kwh(&self, position: u32, port: &str, decimals: u32) -> Option<String> {
        self.meter(position, port)
            .map(|m| m.display_register_kwh(decimals))
    }

    /// Registered energy of a port's meter, Wh (what its LCD register holds).
    pub fn register_wh(&self, position: u32, port: &str) -> Option<f64> {
        self.meter(position, port).map(|m| m.register_j / 3600.0)
    }

    fn meter(&self, position: u32, port: &str) -> Option<&MeterModel> {
        self.meters
            .iter()
            .filter(|m| m.position == position)
            .map(|m| &m.model)
            .find(|m| m.port == port)
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

    // --- counters -------------------------------------------------------------------

    /// How many counters the world has.
    pub fn counter_count(&self) -> usize {
        self.counters.len()
    }

    pub fn counter_arm(&mut self, counter: usize, channels: &[(u8, f64)]) {
        let ref_now = self.reference_count_at(self.energy_at(self.t));
        let c = &mut self.counters[counter];
        c.armed_at = Some(self.t);
        c.ref_count_at_arm = ref_now;
        c.channels = channels.to_vec();
        c.pending.clear();
        c.sequence = 0;
    }

    pub fn counter_disarm(&mut self, counter: usize) {
        let c = &mut self.counters[counter];
        c.armed_at = None;
        c.pending.clear();
    }

    pub fn counter_timebase_hz(&self, counter: usize) -> f64 {
        self.counters[counter].timebase_hz
    }

    fn ticks(&self, counter: usize, t: f64) -> u64 {
        let c = &self.counters[counter];
        let since = t - c.armed_at.unwrap_or(t);
        (since * c.timebase_hz * c.rate_factor).floor().max(0.0) as u64
    }

    /// A counter's time now, ticks since it was armed.
    pub fn counter_now_ticks(&self, counter: usize) -> u64 {
        self.ticks(counter, self.t)
    }

    /// The reference count a counter latched since arming, now.
    pub fn counter_ref_count_now(&self, counter: usize) -> u64 {
        self.reference_count_at(self.energy_at(self.t))
            .saturating_sub(self.counters[counter].ref_count_at_arm)
    }

    /// Every edge a counter timestamped up to now, in time order, and its time.
    pub fn counter_drain(&mut self, counter: usize) -> (Vec<EdgeEvent>, u64) {
        let now = self.t;
        let mut due: Vec<PendingEdge> = Vec::new();
        self.counters[counter].pending.retain(|e| {
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
            let timestamp_ticks = self.ticks(counter, e.t);
            let c = &mut self.counters[counter];
            c.sequence += 1;
            let f = c.timebase_hz * c.rate_factor;
            events.push(EdgeEvent {
                channel: e.channel,
                timestamp_ticks,
                width_ticks: (e.width_s * f).round() as u32,
                ref_count: e.ref_count - c.ref_count_at_arm.min(e.ref_count),
                sequence: c.sequence,
            });
        }
        (events, self.ticks(counter, now))
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

    /// True energy delivered up to `t` (not before the open segment's start), J.
    fn energy_at(&self, t: f64) -> f64 {
        self.energy_at_seg_start_j + self.seg_power_w * (t - self.seg_start).max(0.0)
    }

    /// Advance the world by `duration_s` seconds of virtual time.
    pub fn advance(&mut self, duration_s: f64) {
        let end = self.t + duration_s.max(0.0);
        loop {
            let line = self.next_line as f64 * self.update_period_s;
            // A time within 1 ns of a line counts as on it.
            if line > end + 1e-9 {
                break;
            }
            self.cross_line(line);
        }
        self.route_pulses(end);
        self.t = self.t.max(end);
    }

    /// The meters' energy update at grid line `line`: the interval that ends there is
    /// measured, the source's amplitudes move on along their settling curve, and each LED
    /// is given the pulses it emits over the next interval.
    fn cross_line(&mut self, line: f64) {
        self.close_segment(line);
        for m in &mut self.meters {
            m.model.end_interval();
            m.noise = standard_normal(&mut m.rng);
        }
        self.source.settle_to(line);
        self.seg_power_w = self.power_now_w();
        let mut pulses = Vec::new();
        for (k, m) in self.meters.iter_mut().enumerate() {
            pulses.clear();
            m.model.emit(line, self.update_period_s, &mut pulses);
            self.led.extend(pulses.iter().map(|p| (k, *p)));
        }
        // Time order, ties in meter order: the counter sees them so.
        self.led
            .sort_by(|a, b| a.1.rising_s.total_cmp(&b.1.rising_s).then(a.0.cmp(&b.0)));
        self.next_line += 1;
    }

    /// The open segment ends at `at`: its energy goes to the meters, the current sensors'
    /// seconds and the reference; the LED pulses inside it reach the counter.
    fn close_segment(&mut self, at: f64) {
        self.route_pulses(at);
        let dt = at - self.seg_start;
        if dt <= 0.0 {
            return;
        }
        let loads = self.loads();
        for m in &mut self.meters {
            m.model.accumulate(&loads, dt, m.noise);
        }
        self.ct_accumulate(self.seg_start, dt);
        self.energy_at_seg_start_j += self.seg_power_w * dt;
        self.seg_start = at;
    }

    /// LED pulses up to `until` reach the counter's armed channels, each with the
    /// reference count at its rising edge.
    fn route_pulses(&mut self, until: f64) {
        let due = self.led.partition_point(|(_, p)| p.rising_s <= until);
        if due == 0 {
            return;
        }
        let pulses: Vec<(usize, LedPulse)> = self.led.drain(..due).collect();
        for (m, p) in pulses {
            let Some(head) = self.meters[m].head else {
                continue;
            };
            let c = &self.counters[head.counter];
            let Some(armed_at) = c.armed_at else { continue };
            let Some(&(_, glitch_s)) = c.channels.iter().find(|c| c.0 == head.channel) else {
                continue;
            };
            if p.rising_s < armed_at || p.width_s < glitch_s {
                continue;
            }
            let ref_count = self.reference_count_at(self.energy_at(p.rising_s));
            self.counters[head.counter].pending.push(PendingEdge {
                t: p.rising_s,
                channel: head.channel,
                width_s: p.width_s,
                ref_count,
            });
        }
    }
}

/// The seed of one device's noise: the world's seed and where the device sits, so that
/// a meter behaves the same whichever other devices share the rack (FNV-1a, stable
/// across builds, unlike the standard library's hasher).
pub(crate) fn device_seed(seed: u64, position: u32, port: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in position.to_le_bytes().iter().chain(port.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A standard normal draw (Box–Muller), so the model needs no distribution crate.
pub(crate) fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use meterbench_instruments::PhaseSetpoint;
    use meterbench_procedure::Station;
    use std::path::Path;

    fn station() -> Station {
        Station::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hw/stations/sim.yaml"))
            .unwrap()
    }

    /// A world at 5 A balanced, PF 1, with both scanning heads armed.
    fn energised() -> World {
        let st = station();
        let mut w = World::with_heads(st.simulation.as_ref().unwrap(), |_, port| {
            Some(HeadInput {
                counter: 0,
                channel: if port == "left" { 1 } else { 2 },
            })
        });
        w.reference_configure(1.6e8);
        w.counter_arm(0, &[(1, 0.0), (2, 0.0)]);
        w.source_apply(SourceSetpoint {
            frequency_hz: 50.0,
            phases: [PhaseSetpoint {
                voltage_v: 230.0,
                current_a: 5.0,
                current_lag_deg: 0.0,
            }; 3],
        });
        w.source_set_output(true);
        w
    }

    #[test]
    fn what_the_meters_do_does_not_depend_on_how_often_the_bench_looks() {
        let mut once = energised();
        once.advance(10.0);
        let (a, _) = once.counter_drain(0);
        let mut often = energised();
        let mut b = Vec::new();
        // Slices that cut the 10 ms update grid anywhere: 3.7 ms each.
        for _ in 0..2703 {
            often.advance(0.0037);
            b.extend(often.counter_drain(0).0);
        }
        often.advance(10.0 - often.now_s());
        b.extend(often.counter_drain(0).0);
        assert!(a.len() > 100, "{} edges", a.len());
        assert_eq!(a, b);
    }
}
