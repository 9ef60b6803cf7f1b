//! Meters: LED pulses timestamped by the station's counters against the reference
//! standard's pulse train. Every port of every position is counted from the same load;
//! a point ends when the slowest position has its pulses. Steps produce values; the
//! decision comes from the declared limits through the metrology crate.

use crate::measure::{Ctx, Measuring, Slot};
use crate::plan::{Action, PlannedStep, no_load_s, register_dose_s};
use crate::record::*;
use crate::{PortProgress, RunRequest, StepStop};
use meterbench_instruments::{
    ChannelConfig, EdgeEvent, InstrumentError, InstrumentIdentity, PulseCounter, ReferenceStandard,
    SourceSetpoint,
};
use meterbench_metrology::tests_timing::starting_pulses_in_window;
use meterbench_metrology::uncertainty::ReferenceMethod;
use meterbench_metrology::{
    BudgetInputs, Conformity, PulseTrainScatter, RegisterSteps, compare_register,
    corrected_for_reference, decide_at_ratio, drift_since_calibration_percent, gated_error_percent,
    parse_register, register_resolution_u_percent, repeat_statistics, starting_pulse_period_s,
    timed_error_percent, uncertainty_budget,
};
use meterbench_procedure::{
    AccuracyStep, Fixture, IdentitySource, NoLoadStep, PulseCheckStep, RegisterStep, StartingStep,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// Longest wall-clock time between two counter polls while a point's end is far: how
/// often the progress display moves on a real bench. Half a second, so that a display
/// (the terminal, the panel) is told something new at least once a second even with a
/// poll's round trip on top. (A stop does not wait for it: sleeps are interrupted.)
pub(crate) const DISPLAY_REFRESH_WALL_S: f64 = 0.5;

/// A scanning head's input: the counter (index into the station's) and its channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Input {
    counter: usize,
    channel: u8,
}

/// One counter of the station and what the host knows of it.
struct CounterLink<'a> {
    counter: &'a mut dyn PulseCounter,
    id: String,
    /// Serves a mounted position: identified, armed, polled.
    used: bool,
    last_sequence: u64,
    /// Its time at the last drain and the bench clock then: from them its time at any
    /// later moment, to within the link's latency.
    time: (u64, Duration),
    tb: f64,
}

/// What the counters delivered for the ports during a step.
struct Window {
    start: Vec<u64>,
    now: Vec<u64>,
    by_input: BTreeMap<Input, Vec<EdgeEvent>>,
}

impl Window {
    fn pulses(&self, input: Input) -> &[EdgeEvent] {
        self.by_input.get(&input).map_or(&[], |v| v.as_slice())
    }
}

/// One port of one position in a step.
#[derive(Debug, Clone)]
struct PortRef {
    /// Index of its slot in the step.
    slot: usize,
    /// Index of the port in the slot's record (the fixture's order).
    port: usize,
    input: Input,
    name: String,
    position: u32,
}

/// One port's point computed from a number of its repeats.
struct PointValues {
    mean_interval_s: f64,
    error_percent: f64,
    repeats: Vec<RepeatResult>,
    statistics: meterbench_metrology::RepeatStatistics,
    budget: meterbench_metrology::UncertaintyBudget,
    correction: Option<AppliedCorrection>,
}

pub(crate) struct PulseMeasuring<'r, 'a> {
    req: &'r RunRequest<'r>,
    fixture: &'r Fixture,
    reference: &'a mut dyn ReferenceStandard,
    counters: Vec<CounterLink<'a>>,
    /// Per device of the session: each fixture port's input.
    inputs: Vec<Vec<Input>>,
    polls: u64,
}

impl<'r, 'a> PulseMeasuring<'r, 'a> {
    /// `heads[d]` are the scanning heads of device `d`'s position (station order).
    pub fn new(
        req: &'r RunRequest<'r>,
        fixture: &'r Fixture,
        reference: &'a mut dyn ReferenceStandard,
        counters: Vec<&'a mut dyn PulseCounter>,
        heads: &[Vec<meterbench_procedure::HeadInput>],
    ) -> Self {
        let inputs: Vec<Vec<Input>> = heads
            .iter()
            .map(|h| {
                fixture
                    .ports
                    .iter()
                    .map(|p| {
                        let head = h[usize::from(p.head) - 1];
                        Input {
                            counter: head.counter,
                            channel: head.channel,
                        }
                    })
                    .collect()
            })
            .collect();
        let counters = counters
            .into_iter()
            .enumerate()
            .map(|(k, counter)| CounterLink {
                tb: counter.timebase_hz(),
                counter,
                id: req.station.counters[k].binding.id.clone(),
                used: inputs.iter().flatten().any(|i| i.counter == k),
                last_sequence: 0,
                time: (0, Duration::ZERO),
            })
            .collect();
        PulseMeasuring {
            req,
            fixture,
            reference,
            counters,
            inputs,
            polls: 0,
        }
    }

    /// `counter channel 2`, or `counter c2 channel 5` on a station with several.
    fn input_name(&self, input: Input) -> String {
        if self.counters.len() > 1 {
            format!(
                "counter {} channel {}",
                self.counters[input.counter].id, input.channel
            )
        } else {
            format!("counter channel {}", input.channel)
        }
    }

    fn ports(&self, slots: &[Slot], ctx: &Ctx<'_, '_>) -> Vec<PortRef> {
        let mut v = Vec::new();
        for (k, slot) in slots.iter().enumerate() {
            for (j, p) in self.fixture.ports.iter().enumerate() {
                v.push(PortRef {
                    slot: k,
                    port: j,
                    input: self.inputs[slot.device][j],
                    name: p.name.clone(),
                    position: ctx.devices[slot.device].position,
                });
            }
        }
        v
    }

    fn rel_s(&self, w: &Window, input: Input, e: &EdgeEvent) -> f64 {
        (e.timestamp_ticks - w.start[input.counter]) as f64 / self.counters[input.counter].tb
    }

    /// Time since the window began on the counters' clocks (the one behind), s.
    fn elapsed(&self, w: &Window) -> f64 {
        self.counters
            .iter()
            .enumerate()
            .filter(|(_, c)| c.used)
            .map(|(k, c)| (w.now[k] - w.start[k]) as f64 / c.tb)
            .fold(f64::INFINITY, f64::min)
    }

    /// Energise the setpoint, let it settle, and start collecting from the end of the
    /// settling time. The counters are not asked when that is: each one's time is
    /// carried forward from its last drain on the bench clock (to within a link latency,
    /// a few ms in a settling time of seconds). The next drain checks the settling
    /// time's events for gaps and drops them.
    fn settle(
        &mut self,
        setpoint: &SourceSetpoint,
        settle_s: f64,
        ctx: &mut Ctx<'_, '_>,
    ) -> Result<Window, StepStop> {
        ctx.energise(setpoint)?;
        ctx.wait(settle_s)?;
        let now = ctx.clock.now();
        let start: Vec<u64> = self
            .counters
            .iter()
            .map(|c| {
                let since = now.saturating_sub(c.time.1).as_secs_f64();
                c.time.0 + (since * c.tb).round() as u64
            })
            .collect();
        Ok(Window {
            now: start.clone(),
            start,
            by_input: BTreeMap::new(),
        })
    }

    fn drain_into(
        &mut self,
        w: &mut Window,
        keep: bool,
        ctx: &mut Ctx<'_, '_>,
    ) -> Result<(), StepStop> {
        let several = self.counters.iter().filter(|c| c.used).count() > 1;
        for (k, c) in self.counters.iter_mut().enumerate() {
            if !c.used {
                continue;
            }
            let batch = c.counter.drain()?;
            c.time = (batch.now_ticks, ctx.clock.now());
            for e in &batch.events {
                if e.sequence != c.last_sequence + 1 {
                    let which = if several {
                        format!("the counter {}", c.id)
                    } else {
                        "the counter".to_string()
                    };
                    return Err(StepStop::Bench(format!(
                        "{which} lost events (sequence jumped from {} to {}); the measurement is invalid",
                        c.last_sequence, e.sequence
                    )));
                }
                c.last_sequence = e.sequence;
                // Edges from before the collection began (the settling time) are dropped.
                if keep && e.timestamp_ticks >= w.start[k] {
                    w.by_input
                        .entry(Input {
                            counter: k,
                            channel: e.channel,
                        })
                        .or_default()
                        .push(*e);
                }
            }
            w.now[k] = w.now[k].max(batch.now_ticks);
        }
        Ok(())
    }

    /// Poll the counters until `done` says so. `period` is the expected time between
    /// two pulses (the unit of `remaining`'s estimate); `poll_s`, a fraction of it, is
    /// how late after the estimated end the point is looked at. A counter timestamps
    /// every edge itself: polling less often loses nothing, it only delays when the host
    /// learns of the edges.
    #[allow(clippy::too_many_arguments)]
    fn collect(
        &mut self,
        w: &mut Window,
        period: f64,
        poll_s: f64,
        index: usize,
        ctx: &mut Ctx<'_, '_>,
        mut done: impl FnMut(&Self, &Window, f64) -> Result<bool, StepStop>,
        mut progress: impl FnMut(&Self, &Window, f64) -> (Vec<PortProgress>, f64),
    ) -> Result<(), StepStop> {
        let fine = poll_s.clamp(0.001, 0.25);
        let display_refresh = ctx
            .clock
            .rate()
            .map_or(f64::INFINITY, |r| DISPLAY_REFRESH_WALL_S * r);
        loop {
            let elapsed = self.elapsed(w);
            if done(self, w, elapsed)? {
                return Ok(());
            }
            if ctx.aborted() {
                return Err(StepStop::Aborted);
            }
            let (ports, remaining_s) = progress(self, w, elapsed);
            ctx.progress(index, elapsed, remaining_s, ports);
            // Every poll is a round trip to each counter. While the end is far, sleep
            // most of the way (the estimate assumes the nominal pulse rate; 0.9 leaves
            // room for a slow meter), at most a display refresh on a paced clock. Near
            // the end, sleep until the estimated end plus a fraction of a period: one
            // poll usually ends the point, just after its pulse.
            // On a paced clock the technician's display is refreshed at least every
            // display period, a long wait for the last pulses included.
            let sleep = if remaining_s > 2.0 * period {
                0.9 * remaining_s
            } else {
                remaining_s + fine
            }
            .min(display_refresh);
            ctx.sleep(sleep)?;
            self.polls += 1;
            self.drain_into(w, true, ctx)?;
        }
    }

    /// Estimated time until every port of `ports` has `needed` pulses at the nominal
    /// `period`, s: the slowest port's last pulse plus a period per missing pulse (from
    /// now when it has none yet, since the phase of its first pulse is unknown).
    fn time_to_pulses(
        &self,
        w: &Window,
        ports: &[&PortRef],
        needed: u64,
        period: f64,
        elapsed: f64,
    ) -> f64 {
        ports
            .iter()
            .map(|p| {
                let pulses = w.pulses(p.input);
                let missing = needed.saturating_sub(pulses.len() as u64) as f64;
                if missing == 0.0 {
                    return 0.0;
                }
                // Before the first pulse, its arrival is counted from the start of counting
                // (at most a period away at the nominal rate): the estimate falls as the
                // wait goes on instead of standing still.
                let from = pulses.last().map_or(0.0, |e| self.rel_s(w, p.input, e));
                (from + missing * period - elapsed).max(0.0)
            })
            .fold(0.0, f64::max)
    }

    /// How far `ports` are towards `needed` pulses, and the time still to go.
    fn toward(
        &self,
        w: &Window,
        ports: &[&PortRef],
        needed: u64,
        period: f64,
        elapsed: f64,
    ) -> (Vec<PortProgress>, f64) {
        (
            Self::counted(w, ports, needed),
            self.time_to_pulses(w, ports, needed, period, elapsed),
        )
    }

    fn counted(w: &Window, ports: &[&PortRef], needed: u64) -> Vec<PortProgress> {
        ports
            .iter()
            .map(|p| PortProgress {
                position: p.position,
                port: p.name.clone(),
                counted: w.pulses(p.input).len() as u64,
                needed,
            })
            .collect()
    }

    /// Mean pulse interval of the slowest of `ports`, or the nominal period without
    /// pulses.
    fn slowest_interval(&self, w: &Window, ports: &[&PortRef], nominal: f64) -> f64 {
        ports
            .iter()
            .filter_map(|p| {
                let e = w.pulses(p.input);
                (e.len() >= 2).then(|| {
                    (e[e.len() - 1].timestamp_ticks - e[0].timestamp_ticks) as f64
                        / self.counters[p.input.counter].tb
                        / (e.len() - 1) as f64
                })
            })
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
            .unwrap_or(nominal)
    }

    fn pulse_check(
        &mut self,
        ps: &PlannedStep,
        p: &PulseCheckStep,
        slots: &mut [Slot],
        ctx: &mut Ctx<'_, '_>,
    ) -> Result<(), StepStop> {
        let mut w = self.settle(&ps.setpoint, p.settle_s, ctx)?;
        let ports = self.ports(slots, ctx);
        let all: Vec<&PortRef> = ports.iter().collect();
        let period = ps.nominal_period_s;
        self.collect(
            &mut w,
            period,
            period / 8.0,
            ps.index,
            ctx,
            |_, w, elapsed| {
                Ok(all
                    .iter()
                    .all(|q| w.pulses(q.input).len() as u64 >= p.pulses)
                    || elapsed >= p.timeout_s)
            },
            |m, w, elapsed| m.toward(w, &all, p.pulses, period, elapsed),
        )?;
        for (k, slot) in slots.iter_mut().enumerate() {
            let mine: Vec<&PortRef> = ports.iter().filter(|q| q.slot == k).collect();
            let mut dark = Vec::new();
            for q in &mine {
                let pulses = w.pulses(q.input);
                let seen = pulses.len() as u64;
                let rec = &mut slot.step.ports[q.port];
                rec.pulses = samples(pulses);
                rec.result = Some(PortResult::PulseCheck {
                    required: p.pulses,
                    seen,
                    passed: seen >= p.pulses,
                });
                if seen < p.pulses {
                    dark.push(format!(
                        "port {} ({}) gave {seen} of {} pulses",
                        q.name,
                        self.input_name(q.input),
                        p.pulses
                    ));
                }
            }
            slot.step.physical_floor_s =
                p.settle_s + p.pulses as f64 * self.slowest_interval(&w, &mine, period);
            if !dark.is_empty() {
                slot.fault(format!(
                    "{} within {} s at {} PF {}, where one pulse was expected every {:.3} s: check that the scanning head sits over the port's LED and that the LED blinks",
                    dark.join("; "),
                    p.timeout_s,
                    ps.load.current_name,
                    ps.load.power_factor,
                    period
                ));
            }
        }
        Ok(())
    }

    fn starting(
        &mut self,
        ps: &PlannedStep,
        s: &StartingStep,
        slots: &mut [Slot],
        ctx: &mut Ctx<'_, '_>,
    ) -> Result<(), StepStop> {
        let f = self.fixture;
        let tau = starting_pulse_period_s(
            f.meter_constant_imp_per_kwh,
            ps.elements,
            f.nominal_voltage_v,
            ps.load.current_a,
        );
        let window = s.window_periods * tau;
        let mut w = self.settle(&ps.setpoint, s.settle_s, ctx)?;
        let ports = self.ports(slots, ctx);
        let all: Vec<&PortRef> = ports.iter().collect();
        let times = |m: &Self, w: &Window, q: &PortRef| -> Vec<f64> {
            w.pulses(q.input)
                .iter()
                .map(|e| m.rel_s(w, q.input, e))
                .collect()
        };
        // A port is decided once it has its pulses or the window for the next one passed.
        let decided = |m: &Self, w: &Window, elapsed: f64, q: &PortRef| {
            let t = times(m, w, q);
            t.len() as u64 >= s.pulses || elapsed - t.last().copied().unwrap_or(0.0) > window
        };
        self.collect(
            &mut w,
            tau,
            tau / 16.0,
            ps.index,
            ctx,
            |m, w, elapsed| Ok(all.iter().all(|q| decided(m, w, elapsed, q))),
            |m, w, elapsed| m.toward(w, &all, s.pulses, tau, elapsed),
        )?;
        for (k, slot) in slots.iter_mut().enumerate() {
            let mine: Vec<&PortRef> = ports.iter().filter(|q| q.slot == k).collect();
            for q in &mine {
                let t = times(self, &w, q);
                let passed = starting_pulses_in_window(&t, s.pulses as usize, window).is_ok();
                let rec = &mut slot.step.ports[q.port];
                rec.pulses = samples(w.pulses(q.input));
                rec.result = Some(PortResult::Starting {
                    tau_s: tau,
                    window_s: window,
                    required: s.pulses,
                    pulse_times_s: t,
                    passed,
                });
            }
            slot.step.physical_floor_s =
                s.settle_s + s.pulses as f64 * self.slowest_interval(&w, &mine, tau);
        }
        Ok(())
    }

    fn no_load(
        &mut self,
        ps: &PlannedStep,
        n: &NoLoadStep,
        slots: &mut [Slot],
        ctx: &mut Ctx<'_, '_>,
    ) -> Result<(), StepStop> {
        let duration = no_load_s(n, ps, self.fixture);
        let mut w = self.settle(&ps.setpoint, n.settle_s, ctx)?;
        let ports = self.ports(slots, ctx);
        let all: Vec<&PortRef> = ports.iter().collect();
        // No pulse is expected: the remaining time is exact; look 0.25 s after the end.
        self.collect(
            &mut w,
            1.0,
            0.25,
            ps.index,
            ctx,
            |_, _, elapsed| Ok(elapsed >= duration),
            |_, w, elapsed| (Self::counted(w, &all, 0), (duration - elapsed).max(0.0)),
        )?;
        for (k, slot) in slots.iter_mut().enumerate() {
            for q in ports.iter().filter(|q| q.slot == k) {
                let within = w
                    .pulses(q.input)
                    .iter()
                    .filter(|e| self.rel_s(&w, q.input, e) <= duration)
                    .count() as u64;
                let rec = &mut slot.step.ports[q.port];
                rec.pulses = samples(w.pulses(q.input));
                rec.result = Some(PortResult::NoLoad {
                    voltage_v: ps.load.voltage_v,
                    duration_s: duration,
                    pulses: within,
                    max_pulses: n.max_pulses,
                    passed: within <= n.max_pulses,
                });
            }
            slot.step.physical_floor_s = n.settle_s + duration;
        }
        Ok(())
    }

    fn accuracy(
        &mut self,
        ps: &PlannedStep,
        a: &AccuracyStep,
        slots: &mut [Slot],
        ctx: &mut Ctx<'_, '_>,
    ) -> Result<(), StepStop> {
        let stopping = self.stopping_rule().cloned();
        let max_gates = a.repeats as usize;
        let min_gates = stopping
            .as_ref()
            .map_or(max_gates, |r| (r.min_repeats as usize).clamp(1, max_gates));
        let pulses_per_gate = a.pulses as usize;
        let needed = |gates: usize| (gates * pulses_per_gate + 1) as u64;
        let period = ps.nominal_period_s;
        // The first pulse may take a period plus the meter's update latency; after that a
        // pulse is due every period. Four periods and a second of silence is a dark LED.
        let stall_s = 4.0 * period + 1.0;
        let mut w = self.settle(&ps.setpoint, a.settle_s, ctx)?;
        let ports = self.ports(slots, ctx);
        let limit = ps
            .limit
            .clone()
            .expect("accuracy steps are planned with a limit");
        // A position whose LED went dark is out of this point; the others go on.
        let faults: std::cell::RefCell<Vec<Option<String>>> =
            std::cell::RefCell::new(vec![None; slots.len()]);
        // Per port: the repeats it ends with and why, once known.
        let ends: std::cell::RefCell<Vec<Option<(usize, StopReason)>>> =
            std::cell::RefCell::new(vec![None; ports.len()]);
        // The pulse count each port is waiting for next: its next repeat's end.
        let next_needed = |ends: &[Option<(usize, StopReason)>], w: &Window, k: usize| {
            let have = w.pulses(ports[k].input).len().saturating_sub(1) / pulses_per_gate;
            match ends[k] {
                Some((g, _)) => needed(g),
                None => needed((have + 1).clamp(min_gates, max_gates)),
            }
        };
        let min_ratio = self.min_ratio();
        self.collect(
            &mut w,
            period,
            period / 8.0,
            ps.index,
            ctx,
            |m, w, elapsed| {
                let mut faults = faults.borrow_mut();
                let mut ends = ends.borrow_mut();
                for (k, q) in ports.iter().enumerate() {
                    if faults[q.slot].is_some() || ends[k].is_some() {
                        continue;
                    }
                    let p = w.pulses(q.input);
                    let gates = (p.len().saturating_sub(1) / pulses_per_gate).min(max_gates);
                    if gates >= min_gates {
                        let end = match &stopping {
                            None => (gates == max_gates).then_some(StopReason::Fixed),
                            Some(rule) => {
                                let point = m.point(ps, a, q.input, &p[..needed(gates) as usize], gates);
                                let u = point.budget.expanded_u_percent;
                                // Certain: a pass or fail even with U as a guard band,
                                // and U small enough for a statement at all.
                                let certain = decide_at_ratio(
                                    meterbench_metrology::DecisionRule::GuardBanded,
                                    point.error_percent,
                                    u,
                                    limit.mpe_percent,
                                    min_ratio,
                                )
                                .conformity;
                                if u <= rule.target_u_percent_of_mpe / 100.0 * limit.mpe_percent {
                                    Some(StopReason::UncertaintyReached)
                                } else if matches!(certain, Conformity::Pass | Conformity::Fail) {
                                    Some(StopReason::Decided)
                                } else if gates == max_gates {
                                    Some(StopReason::MaxRepeats)
                                } else if elapsed >= rule.max_s {
                                    Some(StopReason::MaxTime)
                                } else {
                                    None
                                }
                            }
                        };
                        if let Some(reason) = end {
                            ends[k] = Some((gates, reason));
                            continue;
                        }
                    }
                    let last = p.last().map_or(0.0, |e| m.rel_s(w, q.input, e));
                    if elapsed - last > stall_s {
                        faults[q.slot] = Some(format!(
                            "no pulse from port {} ({}) for {:.2} s at {} PF {}, where one was expected every {:.4} s ({} of {} pulses counted): check the scanning head over the port's LED and the LED itself",
                            q.name,
                            m.input_name(q.input),
                            elapsed - last,
                            ps.load.current_name,
                            ps.load.power_factor,
                            period,
                            p.len(),
                            next_needed(&ends, w, k)
                        ));
                    }
                }
                // Done when every port of a position still measuring knows its end.
                Ok(ports
                    .iter()
                    .enumerate()
                    .all(|(k, q)| faults[q.slot].is_some() || ends[k].is_some()))
            },
            |m, w, elapsed| {
                let faults = faults.borrow();
                let ends = ends.borrow();
                let progress = ports
                    .iter()
                    .enumerate()
                    .map(|(k, q)| PortProgress {
                        position: q.position,
                        port: q.name.clone(),
                        counted: w.pulses(q.input).len() as u64,
                        needed: next_needed(&ends, w, k),
                    })
                    .collect();
                let remaining = ports
                    .iter()
                    .enumerate()
                    .filter(|(k, q)| faults[q.slot].is_none() && ends[*k].is_none())
                    .map(|(k, q)| {
                        m.time_to_pulses(w, &[q], next_needed(&ends, w, k), period, elapsed)
                    })
                    .fold(0.0, f64::max);
                (progress, remaining)
            },
        )?;
        let mut faults = faults.into_inner();
        let ends = ends.into_inner();

        for (k, slot) in slots.iter_mut().enumerate() {
            let mine: Vec<(usize, &PortRef)> = ports
                .iter()
                .enumerate()
                .filter(|(_, q)| q.slot == k)
                .collect();
            if let Some(m) = faults[k].take() {
                for (_, q) in &mine {
                    slot.step.ports[q.port].pulses = samples(w.pulses(q.input));
                }
                slot.fault(m);
                continue;
            }
            let mut longest = 0;
            for (j, q) in &mine {
                let (gates, reason) = ends[*j].expect("a port without a fault has its end");
                longest = longest.max(needed(gates));
                let used = &w.pulses(q.input)[..needed(gates) as usize];
                let point = self.point(ps, a, q.input, used, gates);
                let rec = &mut slot.step.ports[q.port];
                rec.pulses = samples(w.pulses(q.input));
                rec.result = Some(PortResult::Accuracy {
                    mean_interval_s: point.mean_interval_s,
                    error_percent: point.error_percent,
                    expanded_u_percent: point.budget.expanded_u_percent,
                    repeats: point.repeats,
                    statistics: point.statistics,
                    decision: decide_at_ratio(
                        self.decision_rule(),
                        point.error_percent,
                        point.budget.expanded_u_percent,
                        limit.mpe_percent,
                        self.min_ratio(),
                    ),
                    budget: point.budget,
                    limit: limit.clone(),
                    reference_correction: point.correction,
                    stopping: Some(PointStop {
                        reason,
                        repeats: gates as u32,
                        measuring_s: self.rel_s(&w, q.input, &used[used.len() - 1]),
                    }),
                });
            }
            let refs: Vec<&PortRef> = mine.iter().map(|(_, q)| *q).collect();
            slot.step.physical_floor_s =
                a.settle_s + longest as f64 * self.slowest_interval(&w, &refs, period);
        }
        Ok(())
    }

    /// One port's result from its first `gates` repeats (`pulses` holds exactly their
    /// pulses): the repeats' errors, corrected for the reference standard's stated
    /// error when the station declares it, their statistics and the budget.
    fn point(
        &self,
        ps: &PlannedStep,
        a: &AccuracyStep,
        input: Input,
        pulses: &[EdgeEvent],
        gates: usize,
    ) -> PointValues {
        let station = self.req.station;
        let f = self.fixture;
        let method = self.procedure_method();
        let unity = ps.setpoint.phases.iter().all(|p| p.current_lag_deg == 0.0);
        let tb = self.counters[input.counter].tb;
        let correction = match method {
            ReferenceMethod::GatedReferenceCount => {
                station.reference.correction.as_ref().and_then(|c| {
                    let current = ps
                        .setpoint
                        .phases
                        .iter()
                        .map(|p| p.current_a)
                        .fold(0.0, f64::max);
                    c.at(current, unity)
                        .map(|(range, value)| AppliedCorrection {
                            certificate: c.certificate.clone(),
                            range_up_to_a: range.up_to_a,
                            error_percent: value.error_percent,
                            u_k2_percent: value.u_k2_percent,
                            drift_bound_percent: drift_since_calibration_percent(
                                c.drift_percent_per_year,
                                (self.req.today - c.calibrated).num_days(),
                            ),
                        })
                })
            }
            _ => None,
        };
        let mut repeats = Vec::new();
        for j in 0..gates {
            let (open, close) = (
                &pulses[j * a.pulses as usize],
                &pulses[(j + 1) * a.pulses as usize],
            );
            let ref_counts = close.ref_count - open.ref_count;
            let gate_s = (close.timestamp_ticks - open.timestamp_ticks) as f64 / tb;
            let measured = match method {
                ReferenceMethod::GatedReferenceCount => gated_error_percent(
                    a.pulses,
                    f.meter_constant_imp_per_kwh,
                    ref_counts,
                    station.reference.pulse_constant_imp_per_kwh,
                ),
                ReferenceMethod::ReferenceCurrent => {
                    unreachable!("meter procedures refuse reference_current")
                }
                ReferenceMethod::Timed => timed_error_percent(
                    a.pulses,
                    f.meter_constant_imp_per_kwh,
                    ps.setpoint.active_power_w(),
                    gate_s,
                ),
            };
            repeats.push(RepeatResult {
                dut_pulses: a.pulses,
                ref_counts,
                gate_s,
                error_percent: correction.as_ref().map_or(measured, |c| {
                    corrected_for_reference(measured, c.error_percent)
                }),
            });
        }
        let errors: Vec<f64> = repeats.iter().map(|r| r.error_percent).collect();
        let statistics = repeat_statistics(&errors).expect("at least one repeat");
        let times: Vec<f64> = pulses
            .iter()
            .map(|e| e.timestamp_ticks as f64 / tb)
            .collect();
        let gate_mean = repeats.iter().map(|r| r.gate_s).sum::<f64>() / repeats.len() as f64;
        let budget = uncertainty_budget(&BudgetInputs {
            method,
            reference_u_k2_percent: match (&correction, method) {
                (Some(c), _) => c.u_k2_percent,
                (None, ReferenceMethod::GatedReferenceCount) => {
                    station.reference.energy_uncertainty_k2_percent.at(unity)
                }
                (None, ReferenceMethod::Timed) => {
                    station.source.power_uncertainty_k2_percent.at(unity)
                }
                (None, ReferenceMethod::ReferenceCurrent) => {
                    unreachable!("meter procedures refuse reference_current")
                }
            },
            reference_drift_bound_percent: correction.as_ref().map(|c| c.drift_bound_percent),
            timebase_accuracy_ppm: station.counters[input.counter].timebase_accuracy_ppm,
            timebase_resolution_s: 1.0 / tb,
            gate_s: gate_mean,
            ref_counts_per_gate: repeats.iter().map(|r| r.ref_counts as f64).sum::<f64>()
                / repeats.len() as f64,
            pulses_per_gate: a.pulses,
            pulse_timing: PulseTrainScatter::from_times(&times),
            repeats: repeats.len(),
            repeat_std_percent: statistics.std_dev,
        });
        PointValues {
            mean_interval_s: (times[times.len() - 1] - times[0]) / (times.len() - 1) as f64,
            error_percent: statistics.mean,
            repeats,
            statistics,
            budget,
            correction,
        }
    }

    fn stopping_rule(&self) -> Option<&meterbench_procedure::StoppingRule> {
        match self.req.procedure {
            meterbench_procedure::DutProcedure::Meter(p) => p.stopping.as_ref(),
            meterbench_procedure::DutProcedure::CurrentSensor(_) => None,
        }
    }

    fn procedure_method(&self) -> ReferenceMethod {
        match self.req.procedure {
            meterbench_procedure::DutProcedure::Meter(p) => p.method,
            meterbench_procedure::DutProcedure::CurrentSensor(_) => {
                ReferenceMethod::ReferenceCurrent
            }
        }
    }

    fn min_ratio(&self) -> f64 {
        self.req.procedure.test_uncertainty_ratio().min
    }

    fn decision_rule(&self) -> meterbench_metrology::DecisionRule {
        match self.req.procedure {
            meterbench_procedure::DutProcedure::Meter(p) => p.decision_rule,
            meterbench_procedure::DutProcedure::CurrentSensor(p) => p.decision_rule,
        }
    }

    /// Every port's register of the slots' devices, as the LCD (operator) or the CAN
    /// interface shows it; a device whose register cannot be read is that slot's fault.
    fn read_registers(
        &mut self,
        ps: &PlannedStep,
        r: &RegisterStep,
        when: &str,
        decimals: u32,
        slots: &mut [Slot],
        ctx: &mut Ctx<'_, '_>,
    ) -> Result<Vec<Vec<(String, RegisterSteps)>>, StepStop> {
        let mut out = Vec::new();
        for slot in slots.iter_mut() {
            let mut readings = Vec::new();
            if slot.is_faulted() {
                out.push(readings);
                continue;
            }
            for port in self.fixture.ports.iter().map(|p| p.name.clone()) {
                let text = match r.read_from {
                    IdentitySource::Lcd => ctx.ask(
                        slot.device,
                        ps,
                        &crate::questions::register_reading(&port, when, decimals),
                    ),
                    IdentitySource::Can => match ctx.devices[slot.device].software.as_deref_mut() {
                        None => Err(StepStop::Position(format!(
                            "step `{}` reads the register over CAN, but the station binds no DUT interface for it (the position's `can:`)",
                            ps.name
                        ))),
                        Some(dut) => dut
                            .read_register_kwh(&port)
                            .map_err(|e| StepStop::Position(e.to_string())),
                    },
                };
                let text = match text {
                    Ok(t) => t,
                    Err(StepStop::Position(m)) => {
                        slot.fault(m);
                        break;
                    }
                    Err(e) => return Err(e),
                };
                match parse_register(&text, decimals) {
                    Ok(steps) => readings.push((text, steps)),
                    Err(e) => {
                        slot.fault(format!("register of port {port} {when} the dose: {e}"));
                        break;
                    }
                }
            }
            out.push(readings);
        }
        Ok(out)
    }

    /// Each used counter's reference count once its status is newer than the window's
    /// time (a status report sent before then may still be in flight).
    fn reference_counts_after(&mut self, w: &Window) -> Result<Vec<u64>, StepStop> {
        let mut counts = vec![0; self.counters.len()];
        for (k, c) in self.counters.iter_mut().enumerate() {
            if !c.used {
                continue;
            }
            let mut got = None;
            for _ in 0..5 {
                let r = c.counter.reference_count()?;
                if r.now_ticks >= w.now[k] {
                    got = Some(r.ref_count);
                    break;
                }
            }
            counts[k] = got.ok_or_else(|| {
                StepStop::Bench(format!(
                    "the counter {}'s status reports lag behind its edges; cannot read the reference count",
                    c.id
                ))
            })?;
        }
        Ok(counts)
    }

    /// Read the registers at rest, apply the load for the dose, rest again, read again;
    /// compare each register's advance with its LED pulses and the reference energy.
    fn register(
        &mut self,
        ps: &PlannedStep,
        r: &RegisterStep,
        slots: &mut [Slot],
        ctx: &mut Ctx<'_, '_>,
    ) -> Result<(), StepStop> {
        let f = self.fixture;
        let station = self.req.station;
        let profile = f.register.as_ref().expect("checked against the fixture");
        let limit = ps
            .limit
            .clone()
            .expect("register steps are planned with a limit");
        let dose_s = register_dose_s(r, ps, f);
        let ports = self.ports(slots, ctx);
        let all: Vec<&PortRef> = ports.iter().collect();

        // At rest: voltage on, no current; the LED's last pulses and the register's last
        // update are over after settle_s.
        let rest = idle(&ps.setpoint);
        ctx.energise(&rest)?;
        ctx.wait(r.settle_s)?;
        let n = self.counters.len();
        let mut w = Window {
            start: vec![0; n],
            now: vec![0; n],
            by_input: BTreeMap::new(),
        };
        self.drain_into(&mut w, false, ctx)?;
        let ref_before = self.reference_counts_after(&w)?;
        let before = self.read_registers(ps, r, "before", profile.decimals, slots, ctx)?;

        // The dose. Every pulse from here until the rest after it counts.
        ctx.energise(&ps.setpoint)?;
        self.drain_into(&mut w, true, ctx)?;
        w.start = w.now.clone();
        let period = ps.nominal_period_s;
        let needed = (dose_s / period).ceil() as u64;
        self.collect(
            &mut w,
            period,
            0.25,
            ps.index,
            ctx,
            |_, _, elapsed| Ok(elapsed >= dose_s),
            |_, w, elapsed| (Self::counted(w, &all, needed), (dose_s - elapsed).max(0.0)),
        )?;
        let dosed_s = self.elapsed(&w);
        ctx.energise(&rest)?;
        ctx.wait(r.settle_s)?;
        self.drain_into(&mut w, true, ctx)?;
        let ref_after = self.reference_counts_after(&w)?;
        let after = self.read_registers(ps, r, "after", profile.decimals, slots, ctx)?;

        let unity = ps.setpoint.phases.iter().all(|p| p.current_lag_deg == 0.0);
        for (k, slot) in slots.iter_mut().enumerate() {
            let mine: Vec<&PortRef> = ports.iter().filter(|q| q.slot == k).collect();
            slot.step.physical_floor_s = 2.0 * r.settle_s + dose_s;
            if slot.is_faulted() {
                continue;
            }
            for q in &mine {
                let c = q.input.counter;
                let reference_wh = (ref_after[c] - ref_before[c]) as f64
                    / station.reference.pulse_constant_imp_per_kwh
                    * 1000.0;
                let pulses = w.pulses(q.input).len() as u64;
                let comparison = match compare_register(
                    before[k][q.port].1,
                    after[k][q.port].1,
                    profile.resolution_wh,
                    pulses,
                    f.meter_constant_imp_per_kwh,
                    reference_wh,
                ) {
                    Ok(c) => c,
                    Err(e) => {
                        slot.fault(format!("port {}: {e}", q.name));
                        break;
                    }
                };
                // Reference (k = 2 on its certificate) and the register's resolution.
                let u_ref = station.reference.energy_uncertainty_k2_percent.at(unity) / 2.0;
                let u_res = register_resolution_u_percent(
                    profile.resolution_wh,
                    comparison.register_wh.max(profile.resolution_wh),
                );
                let expanded_u_percent = 2.0 * (u_ref * u_ref + u_res * u_res).sqrt();
                let decision = decide_at_ratio(
                    self.decision_rule(),
                    comparison.error_vs_reference_percent,
                    expanded_u_percent,
                    limit.mpe_percent,
                    self.min_ratio(),
                );
                let consistent = comparison.consistent_with_pulses();
                let rec = &mut slot.step.ports[q.port];
                rec.pulses = samples(w.pulses(q.input));
                rec.result = Some(PortResult::Register {
                    read_from: r.read_from,
                    before_kwh: before[k][q.port].0.clone(),
                    after_kwh: after[k][q.port].0.clone(),
                    pulses,
                    dose_s: dosed_s,
                    consistent_with_pulses: consistent,
                    comparison,
                    expanded_u_percent,
                    limit: limit.clone(),
                    decision,
                });
            }
            if slot.is_faulted() {
                continue;
            }
            let disagreeing: Vec<String> = slot
                .step
                .ports
                .iter()
                .filter_map(|p| match &p.result {
                    Some(PortResult::Register {
                        comparison,
                        consistent_with_pulses: false,
                        ..
                    }) => Some(format!(
                        "port {}: register advanced {:.1} Wh, its pulses {:.2} Wh (more than {:.2} Wh apart)",
                        p.port,
                        comparison.register_wh,
                        comparison.pulses_wh,
                        comparison.pulses_tolerance_wh
                    )),
                    _ => None,
                })
                .collect();
            if !disagreeing.is_empty() {
                slot.step.message = Some(disagreeing.join("; "));
            }
        }
        Ok(())
    }
}

impl Measuring for PulseMeasuring<'_, '_> {
    fn instruments(&self, device: usize) -> Vec<String> {
        let mut v = vec!["source".to_string(), "reference".to_string()];
        for (k, c) in self.counters.iter().enumerate() {
            if self.inputs[device].iter().any(|i| i.counter == k) {
                v.push(c.id.clone());
            }
        }
        v
    }

    fn timebase_hz(&self, device: usize) -> f64 {
        self.inputs[device]
            .first()
            .map_or(0.0, |i| self.counters[i.counter].tb)
    }

    fn prepare(
        &mut self,
        ctx: &mut Ctx<'_, '_>,
    ) -> Result<Vec<(String, InstrumentIdentity)>, InstrumentError> {
        let mut ids = vec![("reference".to_string(), self.reference.identity()?)];
        for c in self.counters.iter_mut().filter(|c| c.used) {
            ids.push((c.id.clone(), c.counter.identity()?));
        }
        self.reference
            .configure_pulse_output(self.req.station.reference.pulse_constant_imp_per_kwh)?;
        for (k, c) in self.counters.iter_mut().enumerate() {
            if !c.used {
                continue;
            }
            let mut channels: Vec<u8> = self
                .inputs
                .iter()
                .flatten()
                .filter(|i| i.counter == k)
                .map(|i| i.channel)
                .collect();
            channels.dedup();
            let config: Vec<ChannelConfig> = channels
                .into_iter()
                .map(|channel| ChannelConfig {
                    channel,
                    glitch_filter_s: self.req.station.counters[k].glitch_filter_s,
                })
                .collect();
            c.counter.arm(&config)?;
            // The timebase restarts at 0 when armed.
            c.time = (0, ctx.clock.now());
        }
        Ok(ids)
    }

    fn port_records(&self, device: usize) -> Vec<PortRecord> {
        self.fixture
            .ports
            .iter()
            .zip(&self.inputs[device])
            .map(|(p, i)| PortRecord {
                port: p.name.clone(),
                counter: Some(self.counters[i.counter].id.clone()),
                counter_channel: i.channel,
                pulses: Vec::new(),
                result: None,
            })
            .collect()
    }

    fn port_word(&self) -> &'static str {
        "port"
    }

    fn measure(
        &mut self,
        ps: &PlannedStep,
        slots: &mut [Slot],
        ctx: &mut Ctx<'_, '_>,
    ) -> Result<(), StepStop> {
        match &ps.action {
            Action::Register(r) => self.register(ps, r, slots, ctx),
            Action::PulseCheck(p) => self.pulse_check(ps, p, slots, ctx),
            Action::Starting(s) => self.starting(ps, s, slots, ctx),
            Action::NoLoad(n) => self.no_load(ps, n, slots, ctx),
            Action::Accuracy(a) => self.accuracy(ps, a, slots, ctx),
            other => unreachable!("{:?} is not a meter measurement", other.kind()),
        }
    }

    fn polls(&self) -> u64 {
        self.polls
    }

    fn release(&mut self) {
        for c in self.counters.iter_mut().filter(|c| c.used) {
            let _ = c.counter.disarm();
        }
    }
}

/// The same voltages with no current: the meter is powered, its register stands still.
fn idle(setpoint: &SourceSetpoint) -> SourceSetpoint {
    let mut s = *setpoint;
    for p in &mut s.phases {
        p.current_a = 0.0;
        p.current_lag_deg = 0.0;
    }
    s
}

fn samples(events: &[EdgeEvent]) -> Vec<PulseSample> {
    events
        .iter()
        .map(|e| PulseSample {
            timestamp_ticks: e.timestamp_ticks,
            width_ticks: e.width_ticks,
            ref_count: e.ref_count,
            sequence: e.sequence,
        })
        .collect()
}
