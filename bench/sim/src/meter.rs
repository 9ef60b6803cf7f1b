//! The simulated CPIM1000 meter: a model, not a script. Each port is a meter whose
//! error is a function of current, power factor and phase; V·I is accumulated and turned
//! into energy at the energy update rate (2x mains), and the LED pulse generator spends
//! that energy over the next update interval on the device's pulse timer.

use meterbench_procedure::{SimDutSpec, SimFault, SimMeterSpec};

/// One phase as the meter's element sees it.
#[derive(Debug, Clone, Copy, Default)]
pub struct PhaseLoad {
    pub voltage_v: f64,
    pub current_a: f64,
    /// Current lag, degrees.
    pub lag_deg: f64,
}

impl PhaseLoad {
    pub fn power_w(&self) -> f64 {
        self.voltage_v * self.current_a * self.lag_deg.to_radians().cos()
    }
}

#[derive(Debug, Clone)]
pub struct MeterModel {
    pub port: String,
    spec: SimMeterSpec,
    start_threshold_a: f64,
    led_imp_per_kwh: f64,
    creep_w: f64,
    led_alive: bool,
    bumps: Vec<(f64, f64, f64, f64)>,
    update_period_s: f64,
    pulse_timer_s: f64,
    pulse_width_s: f64,
    /// Energy measured in the current update interval, J.
    interval_energy_j: f64,
    /// Rate the pulse generator spends energy at during this interval, W.
    led_rate_w: f64,
    /// Energy in the pulse generator towards the next pulse, J.
    led_register_j: f64,
    /// Total registered energy, J (the LCD register).
    pub register_j: f64,
    /// The register's own error on top of the meter's (a fault), as a factor.
    register_gain: f64,
}

/// A pulse the meter's LED emitted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LedPulse {
    pub rising_s: f64,
    pub width_s: f64,
}

impl MeterModel {
    pub fn new(dut: &SimDutSpec, spec: &SimMeterSpec, led_phase: f64) -> MeterModel {
        let mut m = MeterModel {
            port: spec.port.clone(),
            spec: spec.clone(),
            start_threshold_a: dut.start_threshold_a,
            led_imp_per_kwh: dut.led_imp_per_kwh,
            creep_w: 0.0,
            led_alive: true,
            bumps: Vec::new(),
            update_period_s: 1.0 / dut.energy_update_hz,
            pulse_timer_s: 1.0 / dut.pulse_timer_hz,
            pulse_width_s: dut.led_pulse_width_s,
            interval_energy_j: 0.0,
            led_rate_w: 0.0,
            led_register_j: 0.0,
            register_j: spec.register_start_kwh * 3.6e6,
            register_gain: 1.0,
        };
        m.led_register_j = led_phase.clamp(0.0, 1.0) * m.pulse_energy_j();
        for f in dut.faults.iter().filter(|f| f.port() == spec.port) {
            match f {
                SimFault::NoStart(t) => m.start_threshold_a = t.threshold_a,
                SimFault::Creep(c) => m.creep_w = c.power_w,
                SimFault::WrongConstant(c) => m.led_imp_per_kwh = c.imp_per_kwh,
                SimFault::DeadLed(_) => m.led_alive = false,
                SimFault::ErrorBump(b) => {
                    m.bumps.push((b.from_a, b.to_a, b.cos_phi, b.error_percent))
                }
                SimFault::RegisterError(r) => m.register_gain = 1.0 + r.error_percent / 100.0,
                SimFault::ElementError(e) => {
                    m.spec.phase_offsets_percent[e.phase.index()] += e.error_percent
                }
            }
        }
        m
    }

    fn pulse_energy_j(&self) -> f64 {
        3.6e6 / self.led_imp_per_kwh
    }

    /// The register as the LCD shows it: kWh with `decimals` decimals, six digits
    /// before the point, the last digit truncated (a register never shows energy it has
    /// not yet counted).
    pub fn display_register_kwh(&self, decimals: u32) -> String {
        let steps = (self.register_j / 3.6e6 * 10f64.powi(decimals as i32)).floor() as u64;
        let scale = 10u64.pow(decimals);
        format!(
            "{:06}.{:0width$}",
            steps / scale,
            steps % scale,
            width = decimals as usize
        )
    }

    pub fn update_period_s(&self) -> f64 {
        self.update_period_s
    }

    /// The meter's error in % for one element's load (what the model injects).
    pub fn element_error_percent(&self, phase_index: usize, load: &PhaseLoad) -> f64 {
        let curve = &self.spec.error_curve_percent;
        let i = load.current_a;
        let base = if i <= curve[0].0 {
            curve[0].1
        } else if i >= curve[curve.len() - 1].0 {
            curve[curve.len() - 1].1
        } else {
            let k = curve
                .iter()
                .position(|p| p.0 > i)
                .unwrap_or(curve.len() - 1);
            let (a, b) = (curve[k - 1], curve[k]);
            let x = (i.ln() - a.0.ln()) / (b.0.ln() - a.0.ln());
            a.1 + x * (b.1 - a.1)
        };
        let cos = load.lag_deg.to_radians().cos();
        let pf_term = if load.lag_deg > 1e-9 {
            self.spec.pf_inductive_0_5_percent * (1.0 - cos) / 0.5
        } else if load.lag_deg < -1e-9 {
            self.spec.pf_capacitive_0_8_percent * (1.0 - cos) / 0.2
        } else {
            0.0
        };
        let bump: f64 = self
            .bumps
            .iter()
            .filter(|(from, to, c, _)| i >= *from && i <= *to && (cos - c).abs() < 1e-6)
            .map(|b| b.3)
            .sum();
        base + pf_term + self.spec.phase_offsets_percent[phase_index] + bump
    }

    /// Error of the whole meter for a load, weighted by each element's power.
    pub fn injected_error_percent(&self, loads: &[PhaseLoad; 3]) -> f64 {
        let (mut p, mut pe) = (0.0, 0.0);
        for (k, l) in loads.iter().enumerate() {
            if l.current_a >= self.start_threshold_a {
                p += l.power_w();
                pe += l.power_w() * self.element_error_percent(k, l);
            }
        }
        if p == 0.0 { 0.0 } else { pe / p }
    }

    /// Power the meter measures for this load, W.
    fn measured_power_w(&self, loads: &[PhaseLoad; 3]) -> f64 {
        let mut p = 0.0;
        let mut any_current = false;
        for (k, l) in loads.iter().enumerate() {
            if l.current_a >= self.start_threshold_a {
                any_current = true;
                p += l.power_w() * (1.0 + self.element_error_percent(k, l) / 100.0);
            }
        }
        if !any_current && loads.iter().any(|l| l.voltage_v > 0.0) {
            p += self.creep_w;
        }
        p
    }

    /// `dt` seconds at a constant load: the energy the meter measures (off by
    /// `noise`, the standard normal draw of the update interval under way) goes to the
    /// interval and the register.
    pub fn accumulate(&mut self, loads: &[PhaseLoad; 3], dt: f64, noise: f64) {
        let measured =
            self.measured_power_w(loads) * dt * (1.0 + noise * self.spec.noise_percent / 100.0);
        self.interval_energy_j += measured;
        self.register_j += measured * self.register_gain;
    }

    /// The energy update: the interval's energy is what the pulse generator spends over
    /// the next one.
    pub fn end_interval(&mut self) {
        self.led_rate_w = self.interval_energy_j / self.update_period_s;
        self.interval_energy_j = 0.0;
    }

    /// The pulses the LED emits from `t0` over `dt`, spending the last interval's energy
    /// at a constant rate, each on the device's pulse timer; appended to `out`.
    pub fn emit(&mut self, t0: f64, dt: f64, out: &mut Vec<LedPulse>) {
        let e_pulse = self.pulse_energy_j();
        let mut spent_until = 0.0;
        if self.led_rate_w > 0.0 {
            loop {
                let need = (e_pulse - self.led_register_j) / self.led_rate_w;
                if spent_until + need > dt {
                    self.led_register_j += (dt - spent_until) * self.led_rate_w;
                    break;
                }
                spent_until += need;
                self.led_register_j = 0.0;
                if self.led_alive {
                    let t = t0 + spent_until;
                    let rising = (t / self.pulse_timer_s).ceil() * self.pulse_timer_s;
                    out.push(LedPulse {
                        rising_s: rising,
                        width_s: self.pulse_width_s,
                    });
                }
            }
        }
    }

    /// One slice of `dt` at a constant load from `t0` (never across an update grid
    /// line), as the world runs it: emit, measure, and when the slice ends on the grid,
    /// the energy update.
    pub fn advance(
        &mut self,
        t0: f64,
        dt: f64,
        ends_interval: bool,
        loads: &[PhaseLoad; 3],
        noise: f64,
        out: &mut Vec<LedPulse>,
    ) {
        self.emit(t0, dt, out);
        self.accumulate(loads, dt, noise);
        if ends_interval {
            self.end_interval();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meterbench_procedure::station::{BumpFault, PortFault};

    fn dut(faults: Vec<SimFault>) -> SimDutSpec {
        SimDutSpec {
            model: "cpim1000".into(),
            serial_number: "T".into(),
            led_imp_per_kwh: 20000.0,
            start_threshold_a: 0.012,
            energy_update_hz: 100.0,
            pulse_timer_hz: 3906.25,
            led_pulse_width_s: 0.002,
            meters: vec![meter()],
            faults,
            software: None,
            broken_seals: Vec::new(),
        }
    }

    fn meter() -> SimMeterSpec {
        SimMeterSpec {
            port: "left".into(),
            register_start_kwh: 0.0,
            error_curve_percent: vec![(0.25, 0.4), (5.0, 0.1), (32.0, -0.1)],
            pf_inductive_0_5_percent: 0.2,
            pf_capacitive_0_8_percent: -0.1,
            phase_offsets_percent: [0.0, 0.03, -0.03],
            noise_percent: 0.0,
        }
    }

    fn balanced(i: f64, lag: f64) -> [PhaseLoad; 3] {
        [PhaseLoad {
            voltage_v: 230.0,
            current_a: i,
            lag_deg: lag,
        }; 3]
    }

    #[test]
    fn error_curve_interpolates_in_log_current() {
        let m = MeterModel::new(&dut(vec![]), &meter(), 0.0);
        let l = |i| PhaseLoad {
            voltage_v: 230.0,
            current_a: i,
            lag_deg: 0.0,
        };
        assert!((m.element_error_percent(0, &l(5.0)) - 0.1).abs() < 1e-12);
        // geometric midpoint of 0.25 and 5 A is 1.118 A → halfway: 0.25 %
        assert!((m.element_error_percent(0, &l((0.25f64 * 5.0).sqrt())) - 0.25).abs() < 1e-12);
        // outside the curve it holds the end values
        assert!((m.element_error_percent(0, &l(80.0)) + 0.1).abs() < 1e-12);
        // balanced load: phase offsets cancel (0 + 0.03 − 0.03)
        assert!((m.injected_error_percent(&balanced(5.0, 0.0)) - 0.1).abs() < 1e-12);
        // PF 0.5i adds the full inductive term
        assert!((m.injected_error_percent(&balanced(5.0, 60.0)) - 0.3).abs() < 1e-9);
    }

    #[test]
    fn pulses_follow_measured_energy() {
        let mut m = MeterModel::new(&dut(vec![]), &meter(), 0.0);
        let loads = balanced(5.0, 0.0);
        let mut out = Vec::new();
        let dt = 0.01;
        for k in 0..1000 {
            m.advance(k as f64 * dt, dt, true, &loads, 0.0, &mut out);
        }
        // 10 s at 3450 W · 1.001 = 34534.5 J ≈ 191.86 pulses of 180 J (one interval later).
        assert!((190..=192).contains(&out.len()), "{}", out.len());
        let span = out.last().unwrap().rising_s - out[0].rising_s;
        let per_pulse = span / (out.len() - 1) as f64;
        let expected = 180.0 / (3450.0 * 1.001);
        assert!(
            (per_pulse - expected).abs() / expected < 2e-4,
            "{per_pulse} vs {expected}"
        );
        // every edge sits on the 256 µs pulse timer
        for p in &out {
            let ticks = p.rising_s * 3906.25;
            assert!((ticks - ticks.round()).abs() < 1e-6);
        }
    }

    #[test]
    fn the_register_shows_truncated_kwh_and_a_register_fault_skews_it_alone() {
        let mut spec = meter();
        spec.register_start_kwh = 12.34567;
        let run = |faults| {
            let mut m = MeterModel::new(&dut(faults), &spec, 0.0);
            let mut out = Vec::new();
            // 10 s at 3 × 230 V × 5 A, PF 1: 34.5 kJ = 9.583 Wh, +0.1 % meter error.
            for k in 0..1000 {
                m.advance(
                    k as f64 * 0.01,
                    0.01,
                    true,
                    &balanced(5.0, 0.0),
                    0.0,
                    &mut out,
                );
            }
            (m.display_register_kwh(4), out.len())
        };
        let fresh = MeterModel::new(&dut(vec![]), &spec, 0.0).display_register_kwh(4);
        assert_eq!(fresh, "000012.3456");
        let (good, good_pulses) = run(vec![]);
        // 12.34567 + 0.0095929 kWh = 12.3552629 → shown 12.3552.
        assert_eq!(good, "000012.3552");
        let (skewed, skewed_pulses) = run(vec![SimFault::RegisterError(
            meterbench_procedure::RegisterFault {
                position: None,
                port: "left".into(),
                error_percent: 2.0,
            },
        )]);
        // 12.34567 + 0.0095929 × 1.02 = 12.3554547 → 12.3554; the LED is unchanged.
        assert_eq!(skewed, "000012.3554");
        assert_eq!(skewed_pulses, good_pulses);
    }

    #[test]
    fn faults_change_the_model() {
        let mut m = MeterModel::new(
            &dut(vec![SimFault::DeadLed(PortFault {
                position: None,
                port: "left".into(),
            })]),
            &meter(),
            0.0,
        );
        let mut out = Vec::new();
        for k in 0..500 {
            m.advance(
                k as f64 * 0.01,
                0.01,
                true,
                &balanced(5.0, 0.0),
                0.0,
                &mut out,
            );
        }
        assert!(out.is_empty());
        assert!(
            m.register_j > 17_000.0,
            "the meter still registers with a dead LED"
        );
        let bumped = MeterModel::new(
            &dut(vec![SimFault::ErrorBump(BumpFault {
                position: None,
                port: "left".into(),
                from_a: 4.0,
                to_a: 6.0,
                cos_phi: 1.0,
                error_percent: 1.5,
            })]),
            &meter(),
            0.0,
        );
        assert!((bumped.injected_error_percent(&balanced(5.0, 0.0)) - 1.6).abs() < 1e-9);
        assert!((bumped.injected_error_percent(&balanced(5.0, 60.0)) - 0.3).abs() < 1e-9);
    }
}
