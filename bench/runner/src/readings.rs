//! Current sensors: per point, the source drives the current, the bench waits for it to
//! settle, then takes each sensor's next telegrams whose measuring second lies wholly
//! inside the settled interval and compares each channel's reading with the reference
//! current. Every position's sensor reads the same current; each is judged on its own.
//!
//! A transition point instead searches, per channel, the reference current at which the
//! reading flips between two neighbouring values: each probe sets every loaded phase to
//! its own current, waits for it to settle and takes one telegram per position, whose
//! reading answers "above or below" for every channel at once.

use crate::measure::{Ctx, Measuring, Slot};
use crate::plan::{Action, PlannedStep};
use crate::record::*;
use crate::{PortProgress, StepStop};
use meterbench_instruments::{
    CurrentSensor, InstrumentError, InstrumentIdentity, Phase, SensorLinkStats, SensorReading,
};
// The search's stop reason; the record's `StopReason` is an accuracy point's.
use meterbench_metrology::transition::StopReason as SearchStop;
use meterbench_metrology::{
    BracketEdge, DecisionRule, TransitionSearch, TransitionSearchConfig, current_budget,
    current_error_percent, decide, decide_at_ratio, transition_budget, transition_error_percent,
};
use meterbench_procedure::sensor::{SensorPoint, TransitionPoint};
use meterbench_procedure::{SensorChannel, SensorFixture, SensorStep};
use std::time::Duration;

/// How often the bench looks for a telegram, s of bench time: the stamp of a telegram
/// is at most this late, well inside the fixture's latency allowance.
const LOOK_EVERY_S: f64 = 0.1;

/// Wall time without a telegram after which the line counts as drained: far below the
/// 1 s period, far above the time a telegram takes to arrive once sent.
const QUIET: Duration = Duration::from_millis(30);

/// Wall time the bench waits for a telegram that is due before it looks again.
const TELEGRAM_WAIT: Duration = Duration::from_millis(50);

/// Cells of a transition search's grid per target u(μ): a cell's width enters u(μ) as
/// width/√12, so at a tenth of the target it adds under 0.5 % to it (see
/// [`TransitionSearchConfig::grid_points`]).
const GRID_CELLS_PER_TARGET: f64 = 10.0;

/// A telegram with the bench time it was taken in.
struct Stamped {
    at_s: f64,
    reading: SensorReading,
}

/// One position's sensor and what its stream showed over the run.
struct SensorLink<'a> {
    sensor: Option<&'a mut dyn CurrentSensor>,
    /// Time between telegrams within points, s.
    intervals: Vec<f64>,
    firmware_seen: Vec<String>,
    /// Bench time the latest telegram was seen, s, whichever step read it: the next is
    /// due a period later.
    last_seen_s: Option<f64>,
}

/// What one position's telegram stream showed during a step.
#[derive(Default)]
struct Taking {
    /// Telegrams whose measuring second began at or after the settling they were taken
    /// against.
    taken: Vec<Stamped>,
    last_seen: Option<f64>,
    /// Arrival of every telegram seen, s.
    stamps: Vec<f64>,
}

/// One channel's search at a transition point.
struct ChannelSearch {
    /// Index of the channel in the fixture (and of its port record).
    channel: usize,
    phase: Phase,
    search: TransitionSearch,
    probes: Vec<TransitionProbe>,
    /// It stopped, or cannot go on (`problem`).
    done: bool,
    problem: Option<String>,
}

pub(crate) struct ReadingMeasuring<'a> {
    fixture: &'a SensorFixture,
    decision_rule: DecisionRule,
    /// The smallest limit/U at which a point gets a statement of conformity.
    min_ratio: f64,
    /// Expanded uncertainty (k=2) of the source's current, %.
    reference_u: f64,
    /// Per device of the session.
    links: Vec<SensorLink<'a>>,
}

impl<'a> ReadingMeasuring<'a> {
    pub fn new(
        fixture: &'a SensorFixture,
        decision_rule: DecisionRule,
        min_ratio: f64,
        reference_u: f64,
        sensors: Vec<Option<&'a mut dyn CurrentSensor>>,
    ) -> Self {
        ReadingMeasuring {
            fixture,
            decision_rule,
            min_ratio,
            reference_u,
            links: sensors
                .into_iter()
                .map(|sensor| SensorLink {
                    sensor,
                    intervals: Vec::new(),
                    firmware_seen: Vec::new(),
                    last_seen_s: None,
                })
                .collect(),
        }
    }

    /// Read each slot's line until it is quiet, so that no telegram from before now is
    /// taken for a new one (telegrams from before and during settling are counted by the
    /// link, unused). A slot without a sensor, or whose link fails, is faulted. Per
    /// slot, the stream as the drain leaves it.
    fn drain(&mut self, slots: &mut [Slot], ctx: &Ctx<'_, '_>) -> Vec<Taking> {
        let mut taking: Vec<Taking> = slots.iter().map(|_| Taking::default()).collect();
        for (slot, t) in slots.iter_mut().zip(&mut taking) {
            let link = &mut self.links[slot.device];
            let Some(sensor) = link.sensor.as_deref_mut() else {
                slot.fault(format!(
                    "no current sensor is bound at position {} (the position's `p1:`)",
                    ctx.devices[slot.device].position
                ));
                continue;
            };
            // A sensor's own link failing (its cable pulled) is that position's fault.
            loop {
                match sensor.next_reading(QUIET) {
                    Ok(Some(_)) => {
                        t.last_seen = Some(ctx.elapsed_s());
                        link.last_seen_s = t.last_seen;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        slot.fault(e.to_string());
                        break;
                    }
                }
            }
        }
        taking
    }

    /// One look at a slot's telegram stream: every telegram that has arrived is stamped
    /// with the bench time (its firmware id kept), and taken when its measuring second
    /// began at or after `settled`. A link error, or silence longer than the fixture
    /// allows, faults the slot; `waiting` says for the message what the step waited for.
    fn look(
        &mut self,
        slot: &mut Slot,
        t: &mut Taking,
        settled: f64,
        ctx: &Ctx<'_, '_>,
        waiting: impl FnOnce(&Taking) -> String,
    ) {
        let f = self.fixture;
        let link = &mut self.links[slot.device];
        let Some(sensor) = link.sensor.as_deref_mut() else {
            return;
        };
        // When a telegram is due, give the device a moment of wall time to send it (the
        // simulated one answers within milliseconds of its second ending; on a real
        // bench it is already waiting). Between telegrams, only look. Due is reckoned
        // from the link's latest telegram, also one of an earlier step: a step that began
        // just after one would otherwise wait at every look of its first second.
        let now = ctx.elapsed_s();
        let due = link
            .last_seen_s
            .is_none_or(|last| now - last >= f.telegram_period_s - LOOK_EVERY_S / 2.0);
        let mut wait = if due { TELEGRAM_WAIT } else { Duration::ZERO };
        loop {
            let reading = match sensor.next_reading(wait) {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    slot.fault(e.to_string());
                    return;
                }
            };
            wait = Duration::ZERO;
            let at_s = ctx.elapsed_s();
            t.stamps.push(at_s);
            t.last_seen = Some(at_s);
            link.last_seen_s = Some(at_s);
            if let Some(fw) = &reading.firmware
                && !link.firmware_seen.contains(fw)
            {
                link.firmware_seen.push(fw.clone());
            }
            // Its measuring second ended at most max_latency before it arrived: take it
            // only if that second began after settling.
            if at_s - f.telegram_period_s - f.max_latency_s >= settled {
                t.taken.push(Stamped { at_s, reading });
            }
        }
        let silent = ctx.elapsed_s() - t.last_seen.unwrap_or(settled);
        if silent > 3.0 * f.telegram_period_s + f.max_latency_s {
            slot.fault(format!(
                "no telegram from the sensor ({}) for {silent:.1} s; {}",
                sensor.describe(),
                waiting(t)
            ));
        }
    }

    /// Periods are judged within a point: between points the bench settles and does not
    /// look.
    fn keep_intervals(&mut self, slot: &Slot, t: &Taking) {
        self.links[slot.device]
            .intervals
            .extend(t.stamps.windows(2).map(|w| w[1] - w[0]));
    }

    fn current(
        &mut self,
        ps: &PlannedStep,
        step: &SensorStep,
        (current_a, telegrams): (f64, u32),
        slots: &mut [Slot],
        ctx: &mut Ctx<'_, '_>,
    ) -> Result<(), StepStop> {
        let f = self.fixture;
        for slot in slots.iter_mut() {
            slot.step.physical_floor_s =
                step.settle_s + (telegrams + 1) as f64 * f.telegram_period_s;
        }
        ctx.energise(&ps.setpoint)?;
        ctx.sleep(step.settle_s)?;
        let mut taking = self.drain(slots, ctx);
        let settled = ctx.elapsed_s();
        let wanted = telegrams as usize;
        let waiting = |slots: &[Slot], taking: &[Taking]| {
            slots
                .iter()
                .zip(taking)
                .any(|(s, t)| !s.is_faulted() && t.taken.len() < wanted)
        };
        while waiting(slots, &taking) {
            ctx.sleep(LOOK_EVERY_S)?;
            for (slot, t) in slots.iter_mut().zip(taking.iter_mut()) {
                if slot.is_faulted() || t.taken.len() >= wanted {
                    continue;
                }
                self.look(slot, t, settled, ctx, |t| {
                    format!(
                        "{} of {} taken at {} A",
                        t.taken.len(),
                        telegrams,
                        current_a
                    )
                });
            }
            let ports: Vec<PortProgress> = slots
                .iter()
                .zip(&taking)
                .flat_map(|(slot, t)| {
                    let position = ctx.devices[slot.device].position;
                    f.channels.iter().map(move |c| PortProgress {
                        position,
                        port: c.name.clone(),
                        counted: t.taken.len() as u64,
                        needed: wanted as u64,
                    })
                })
                .collect();
            let elapsed = ctx.elapsed_s() - settled;
            let remaining = taking
                .iter()
                .map(|t| wanted.saturating_sub(t.taken.len()) as f64 * f.telegram_period_s)
                .fold(0.0, f64::max);
            ctx.progress(ps.index, elapsed, remaining, ports);
        }
        for (slot, t) in slots.iter_mut().zip(taking) {
            if slot.is_faulted() {
                continue;
            }
            self.keep_intervals(slot, &t);
            self.judge(step, current_a, &t.taken, &mut slot.step);
        }
        Ok(())
    }

    /// Each channel's readings against the reference current of its phase.
    fn judge(&self, step: &SensorStep, current_a: f64, taken: &[Stamped], record: &mut StepRecord) {
        let f = self.fixture;
        for (k, c) in f.channels.iter().enumerate() {
            if !step.phases.contains(&c.phase) {
                record.ports[k].result = Some(zero_check(f, c, taken));
                continue;
            }
            let reference_a = current_a;
            let i = c.phase.index();
            let readings: Vec<String> = taken
                .iter()
                .map(|t| t.reading.currents[i].clone().unwrap_or_default())
                .collect();
            let values: Vec<Option<f64>> = taken.iter().map(|t| t.reading.currents_a[i]).collect();
            let reading_times_s: Vec<f64> = taken.iter().map(|t| t.at_s).collect();
            let missing = values.iter().any(Option::is_none);
            let errors: Vec<f64> = values
                .iter()
                .map(|v| current_error_percent(v.unwrap_or(0.0), reference_a))
                .collect();
            let stats = meterbench_metrology::repeat_statistics(&errors);
            let mean = stats.as_ref().map_or(0.0, |s| s.mean);
            let budget = current_budget(
                reference_a,
                self.reference_u,
                f.resolution_a,
                stats.as_ref().and_then(|s| s.std_dev),
                errors.len(),
            );
            let decision = decide_at_ratio(
                self.decision_rule,
                mean,
                budget.expanded_u_percent,
                f.limit_percent,
                self.min_ratio,
            );
            record.ports[k].result = Some(PortResult::CurrentSensor {
                phase: c.phase,
                reference_a,
                readings,
                reading_times_s,
                errors_percent: errors,
                mean_error_percent: mean,
                expanded_u_percent: budget.expanded_u_percent,
                budget: Some(budget),
                limit_percent: f.limit_percent,
                limit_source: f.limit_source.clone(),
                passed: decision.accepted && !missing,
                decision: Some(decision),
            });
        }
    }

    /// A transition point: one search per channel whose phase carries current, all
    /// searched at once. Each probe sets every loaded phase to the current its searches
    /// ask for (several positions on one phase take turns choosing it; every search of
    /// the phase learns from every probe), waits `settle_s`, and takes from each
    /// position the first telegram whose measuring second began after that. It ends
    /// when every search has stopped.
    fn transition(
        &mut self,
        ps: &PlannedStep,
        step: &SensorStep,
        point: &TransitionPoint,
        slots: &mut [Slot],
        ctx: &mut Ctx<'_, '_>,
    ) -> Result<(), StepStop> {
        let f = self.fixture;
        let config = search_config(f, point);
        let mut searches: Vec<Vec<ChannelSearch>> = slots
            .iter()
            .map(|_| {
                f.channels
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| step.phases.contains(&c.phase))
                    .map(|(channel, c)| ChannelSearch {
                        channel,
                        phase: c.phase,
                        search: TransitionSearch::new(config)
                            .expect("a bracket and target from validated data"),
                        probes: Vec::new(),
                        done: false,
                        problem: None,
                    })
                    .collect()
            })
            .collect();
        let mut taking: Vec<Taking> = Vec::new();
        // Per slot, the telegram of every probe (the unloaded channels' 0 A check).
        let mut probe_telegrams: Vec<Vec<Stamped>> = slots.iter().map(|_| Vec::new()).collect();
        let mut setpoint = ps.setpoint;
        // Per phase, whose turn it is to choose the next probe among its searches.
        let mut turn = [0usize; 3];
        let started = ctx.elapsed_s();
        let mut first = true;
        loop {
            let mut set_any = false;
            for phase in Phase::ALL {
                let mut choosers: Vec<&ChannelSearch> = slots
                    .iter()
                    .zip(&searches)
                    .filter(|(slot, _)| !slot.is_faulted())
                    .flat_map(|(_, s)| s.iter())
                    .filter(|s| s.phase == phase && !s.done)
                    .collect();
                if choosers.is_empty() {
                    // Finished (or never loaded): the phase keeps its current.
                    continue;
                }
                let chooser = choosers.swap_remove(turn[phase.index()] % choosers.len());
                turn[phase.index()] += 1;
                if let Some(x) = chooser.search.next_probe() {
                    setpoint.phases[phase.index()].current_a = x;
                    set_any = true;
                }
            }
            if !set_any {
                break;
            }
            ctx.energise(&setpoint)?;
            if first {
                taking = self.drain(slots, ctx);
                first = false;
            }
            let settled = ctx.elapsed_s() + step.settle_s;
            for t in &mut taking {
                t.taken.clear();
            }
            let waiting = |slots: &[Slot], taking: &[Taking]| {
                slots
                    .iter()
                    .zip(taking)
                    .any(|(s, t)| !s.is_faulted() && t.taken.is_empty())
            };
            while waiting(slots, &taking) {
                ctx.sleep(LOOK_EVERY_S)?;
                for (slot, t) in slots.iter_mut().zip(taking.iter_mut()) {
                    if slot.is_faulted() {
                        continue;
                    }
                    // Every slot's line is read, its telegram taken or not: stamps stay
                    // true and nothing stale is left for the next probe.
                    self.look(slot, t, settled, ctx, |_| {
                        format!(
                            "waiting for the reading at {} (probe {} of at most {})",
                            describe_setpoint(&setpoint, &step.phases),
                            searches_probes(&searches) + 1,
                            point.max_telegrams
                        )
                    });
                }
                self.transition_progress(ps, step, point, slots, &searches, started, ctx);
            }
            for ((slot, t), (slot_searches, kept)) in slots
                .iter()
                .zip(&mut taking)
                .zip(searches.iter_mut().zip(&mut probe_telegrams))
            {
                if slot.is_faulted() || t.taken.is_empty() {
                    continue;
                }
                let telegram = t.taken.remove(0);
                for s in slot_searches.iter_mut().filter(|s| !s.done) {
                    observe(s, &setpoint, &telegram, point);
                }
                kept.push(telegram);
            }
        }
        for (k, (slot, t)) in slots.iter_mut().zip(taking).enumerate() {
            if slot.is_faulted() {
                continue;
            }
            self.keep_intervals(slot, &t);
            let slot_searches = std::mem::take(&mut searches[k]);
            let telegrams = &probe_telegrams[k];
            slot.step.physical_floor_s =
                telegrams.len() as f64 * (step.settle_s + f.telegram_period_s);
            for (c_index, c) in f.channels.iter().enumerate() {
                if !step.phases.contains(&c.phase) {
                    slot.step.ports[c_index].result = Some(zero_check(f, c, telegrams));
                }
            }
            for s in slot_searches {
                let channel = s.channel;
                slot.step.ports[channel].result = Some(self.conclude(s, point, started));
            }
        }
        Ok(())
    }

    /// How far each channel's search is, on the event stream.
    #[allow(clippy::too_many_arguments)]
    fn transition_progress(
        &self,
        ps: &PlannedStep,
        step: &SensorStep,
        point: &TransitionPoint,
        slots: &[Slot],
        searches: &[Vec<ChannelSearch>],
        started: f64,
        ctx: &mut Ctx<'_, '_>,
    ) {
        let f = self.fixture;
        let ports: Vec<PortProgress> = slots
            .iter()
            .zip(searches)
            .flat_map(|(slot, s)| {
                let position = ctx.devices[slot.device].position;
                s.iter().map(move |s| PortProgress {
                    position,
                    port: f.channels[s.channel].name.clone(),
                    counted: s.probes.len() as u64,
                    needed: u64::from(point.max_telegrams),
                })
            })
            .collect();
        // At most: every unfinished search to its telegram budget.
        let left = searches
            .iter()
            .flatten()
            .filter(|s| !s.done)
            .map(|s| (point.max_telegrams as usize).saturating_sub(s.probes.len()))
            .max()
            .unwrap_or(0);
        let remaining = left as f64 * (step.settle_s + 2.0 * f.telegram_period_s);
        let elapsed = ctx.elapsed_s() - started;
        ctx.progress(ps.index, elapsed, remaining, ports);
    }

    /// A channel's result from its finished search: located, its error, budget and
    /// decision; beyond the bracket, a FAIL by the limit the bracket came from; else not
    /// located, and not accepted.
    fn conclude(&self, s: ChannelSearch, point: &TransitionPoint, started: f64) -> PortResult {
        let f = self.fixture;
        let e = s.search.estimate();
        let config = *s.search.config();
        let b = config.boundary_a;
        let searched_s = s.probes.last().map_or(0.0, |p| p.at_s - started);
        let open = |x: f64| (x.is_finite() && x > 0.0).then_some(x);
        let located = e.u_mu_a.is_finite()
            && matches!(
                e.stop_reason,
                Some(SearchStop::UncertaintyReached | SearchStop::ProbeLimit)
            );
        let mut error_percent = None;
        let mut error_beyond_percent = None;
        let mut budget = None;
        let mut decision = None;
        let mut problem = s.problem.clone();
        if located {
            let error = transition_error_percent(b, e.mu_a);
            let bud = transition_budget(b, e.mu_a, e.u_mu_a, self.reference_u, None);
            decision = Some(decide_at_ratio(
                self.decision_rule,
                error,
                bud.expanded_u_percent,
                f.limit_percent,
                self.min_ratio,
            ));
            error_percent = Some(error);
            budget = Some(bud);
        } else if let Some(SearchStop::OutsideBracket { edge }) = e.stop_reason {
            // μ itself is no result: the search bounds it on one side only, and its
            // one-sided 97.5 % bound of μ bounds the error. The bracket covers twice the
            // limit, so that bound is normally far beyond it: FAIL, by the bound.
            let (bound_a, side, edge_a) = match edge {
                BracketEdge::Low => (e.interval_95.1, "below", config.bracket_a.0),
                BracketEdge::High => (e.interval_95.0, "above", config.bracket_a.1),
            };
            let beyond = transition_error_percent(b, bound_a);
            // A σ′ estimate means something only once both answers were seen.
            let both = s.probes.iter().any(|p| p.above) && s.probes.iter().any(|p| !p.above);
            let noisy = match f.transitions.as_ref() {
                Some(p) if both && e.sigma_a > p.expected_noise_a => format!(
                    "; its noise (σ′ ≈ {:.3} A) exceeds the {} A the fixture expects",
                    e.sigma_a, p.expected_noise_a
                ),
                _ => String::new(),
            };
            if beyond.abs() > f.limit_percent {
                decision = Some(decide(self.decision_rule, beyond, 0.0, f.limit_percent));
                error_beyond_percent = Some(beyond);
                problem = Some(format!(
                    "transition outside ±{} %: the reading flips {side} {bound_a:.3} A (one-sided 97.5 %), an error beyond {beyond:+.2} %{noisy}",
                    f.limit_percent
                ));
            } else {
                problem = Some(format!(
                    "not located: the search stopped at its bracket's edge ({edge_a:.3} A) but bounds the error only beyond {beyond:+.2} %, not beyond ±{} %{noisy}",
                    f.limit_percent
                ));
            }
        } else if problem.is_none() {
            let (lower, upper) = point.between_a;
            let all = if s.probes.iter().all(|p| p.above) {
                format!("{upper} A or more")
            } else {
                format!("{lower} A or less")
            };
            problem = Some(format!(
                "not located: every one of {} readings was {all} within the {} telegrams allowed",
                s.probes.len(),
                point.max_telegrams
            ));
        }
        let passed = located && decision.is_some_and(|d| d.accepted);
        PortResult::Transition {
            phase: s.phase,
            between_a: point.between_a,
            search: config,
            probes: s.probes,
            searched_s,
            stop: e.stop_reason,
            mu_a: e.mu_a,
            u_mu_a: located.then_some(e.u_mu_a),
            sigma_a: e.sigma_a,
            interval_95_a: (open(e.interval_95.0), open(e.interval_95.1)),
            error_percent,
            error_beyond_percent,
            expanded_u_percent: budget.as_ref().map(|b| b.expanded_u_percent),
            budget,
            limit_percent: f.limit_percent,
            limit_source: f.limit_source.clone(),
            decision,
            problem,
            passed,
        }
    }

    /// The telegram stream of each slot's sensor over the run.
    fn telegrams(&mut self, slots: &mut [Slot]) {
        for slot in slots.iter_mut() {
            let link = &self.links[slot.device];
            let stats = link
                .sensor
                .as_deref()
                .map(|s| s.stats())
                .unwrap_or_default();
            let result =
                telegram_checks(self.fixture, &stats, &link.intervals, &link.firmware_seen);
            if let PortResult::Telegrams {
                problems, passed, ..
            } = &result
                && !passed
            {
                slot.step.message = Some(problems.join("; "));
            }
            for p in &mut slot.step.ports {
                p.result = Some(result.clone());
            }
        }
    }
}

impl Measuring for ReadingMeasuring<'_> {
    fn instruments(&self, _: usize) -> Vec<String> {
        // The source's current is the reference: the only instrument of the result.
        vec!["source".to_string()]
    }

    fn timebase_hz(&self, _: usize) -> f64 {
        0.0
    }

    fn prepare(
        &mut self,
        _: &mut Ctx<'_, '_>,
    ) -> Result<Vec<(String, InstrumentIdentity)>, InstrumentError> {
        // A sensor identifies itself in its telegrams (judged in the telegram step).
        Ok(Vec::new())
    }

    fn port_records(&self, _: usize) -> Vec<PortRecord> {
        self.fixture
            .channels
            .iter()
            .map(|c| PortRecord {
                port: c.name.clone(),
                counter: None,
                counter_channel: 0,
                pulses: Vec::new(),
                result: None,
            })
            .collect()
    }

    fn port_word(&self) -> &'static str {
        "channel"
    }

    fn measure(
        &mut self,
        ps: &PlannedStep,
        slots: &mut [Slot],
        ctx: &mut Ctx<'_, '_>,
    ) -> Result<(), StepStop> {
        match &ps.action {
            Action::Current(s) => match &s.point {
                SensorPoint::Current {
                    current_a,
                    telegrams,
                } => self.current(ps, s, (*current_a, *telegrams), slots, ctx),
                SensorPoint::Transition(t) => self.transition(ps, s, t, slots, ctx),
            },
            Action::Telegrams => {
                self.telegrams(slots);
                Ok(())
            }
            other => unreachable!("{:?} is not a current sensor measurement", other.kind()),
        }
    }

    fn polls(&self) -> u64 {
        0
    }

    fn release(&mut self) {}
}

/// The search of a transition point as the fixture and the procedure set it up: the
/// boundary from the fixture's rounding, the bracket from its limit and expected noise,
/// the target u(μ) from the point's % of the boundary, and a grid fine enough for it.
/// The probit width σ′ gets the search's own wide prior: the fixture's noise is an
/// expectation, not a floor the sensor is known to keep.
fn search_config(f: &SensorFixture, point: &TransitionPoint) -> TransitionSearchConfig {
    let boundary_a = f
        .transition_boundary_a(point)
        .expect("the plan checks the fixture's transitions profile");
    let bracket_a = f
        .transition_bracket_a(point)
        .expect("the plan checks the fixture's transitions profile");
    let target_u_a = point.target_u_percent / 100.0 * boundary_a;
    let grid_points = (GRID_CELLS_PER_TARGET * (bracket_a.1 - bracket_a.0) / target_u_a).ceil();
    TransitionSearchConfig {
        boundary_a,
        bracket_a,
        target_u_a,
        max_probes: point.max_telegrams as usize,
        grid_points: (grid_points as usize).max(16),
        sigma_range_a: None,
    }
}

/// A search learns from one telegram taken at `setpoint`: the current set on its phase,
/// and whether the reading was the upper value or more. A telegram without the
/// channel's current ends its search.
fn observe(
    s: &mut ChannelSearch,
    setpoint: &meterbench_instruments::SourceSetpoint,
    telegram: &Stamped,
    point: &TransitionPoint,
) {
    let i = s.phase.index();
    let (lower, upper) = point.between_a;
    let Some(value) = telegram.reading.currents_a[i] else {
        s.problem = Some(format!(
            "a telegram at {:.1} s carried no current for this channel",
            telegram.at_s
        ));
        s.done = true;
        return;
    };
    let current_a = setpoint.phases[i].current_a;
    // Readings are whole steps: halfway between the two tells them apart exactly.
    let above = value > (lower + upper) / 2.0;
    s.search.observe(current_a, above);
    s.probes.push(TransitionProbe {
        current_a,
        reading: telegram.reading.currents[i].clone().unwrap_or_default(),
        above,
        at_s: telegram.at_s,
    });
    s.done = s.search.stop_reason().is_some();
}

/// Probes taken so far at the point (the most of any channel).
fn searches_probes(searches: &[Vec<ChannelSearch>]) -> usize {
    searches
        .iter()
        .flatten()
        .map(|s| s.probes.len())
        .max()
        .unwrap_or(0)
}

/// `L1 4.412 A, L2 4.530 A`: the loaded phases' currents of a setpoint.
fn describe_setpoint(
    setpoint: &meterbench_instruments::SourceSetpoint,
    phases: &[Phase],
) -> String {
    phases
        .iter()
        .map(|p| format!("{p:?} {:.3} A", setpoint.phases[p.index()].current_a))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A channel whose phase carries no current must read 0 A in every telegram taken
/// (crosstalk, wiring).
fn zero_check(f: &SensorFixture, c: &SensorChannel, taken: &[Stamped]) -> PortResult {
    let i = c.phase.index();
    let values: Vec<Option<f64>> = taken.iter().map(|t| t.reading.currents_a[i]).collect();
    let passed = values.iter().all(|v| v.is_some_and(|x| x == 0.0));
    PortResult::CurrentSensor {
        phase: c.phase,
        reference_a: 0.0,
        readings: taken
            .iter()
            .map(|t| t.reading.currents[i].clone().unwrap_or_default())
            .collect(),
        reading_times_s: taken.iter().map(|t| t.at_s).collect(),
        errors_percent: Vec::new(),
        mean_error_percent: 0.0,
        budget: None,
        expanded_u_percent: 0.0,
        limit_percent: f.limit_percent,
        limit_source: f.limit_source.clone(),
        decision: None,
        passed,
    }
}

/// The telegram stream over the run: period, firmware id, CRC error rate.
pub(crate) fn telegram_checks(
    f: &SensorFixture,
    stats: &SensorLinkStats,
    intervals: &[f64],
    firmware_seen: &[String],
) -> PortResult {
    let period_min_s = intervals.iter().copied().fold(f64::INFINITY, f64::min);
    let period_max_s = intervals.iter().copied().fold(0.0, f64::max);
    let ended = stats.telegrams + stats.crc_failures;
    let crc_error_percent = if ended == 0 {
        0.0
    } else {
        stats.crc_failures as f64 / ended as f64 * 100.0
    };
    let mut problems = Vec::new();
    if !intervals.is_empty()
        && ((period_min_s - f.telegram_period_s).abs() > f.period_tolerance_s
            || (period_max_s - f.telegram_period_s).abs() > f.period_tolerance_s)
    {
        problems.push(format!(
            "telegrams {period_min_s:.2} … {period_max_s:.2} s apart, not {} ± {} s",
            f.telegram_period_s, f.period_tolerance_s
        ));
    }
    if let Some(bad) = firmware_seen.iter().find(|fw| !f.firmware.contains(fw)) {
        problems.push(format!(
            "firmware id {bad} is not one of {}",
            f.firmware.join(", ")
        ));
    }
    if firmware_seen.is_empty() {
        problems.push("no telegram carried a firmware id (0-0:96.13.1)".into());
    }
    if crc_error_percent > f.max_crc_error_percent {
        problems.push(format!(
            "{} of {ended} telegrams failed their CRC ({crc_error_percent:.1} %, at most {} % allowed)",
            stats.crc_failures, f.max_crc_error_percent
        ));
    }
    let passed = problems.is_empty();
    PortResult::Telegrams {
        telegrams: stats.telegrams,
        crc_failures: stats.crc_failures,
        other_errors: stats.other_errors,
        gaps: stats.gaps,
        crc_error_percent,
        max_crc_error_percent: f.max_crc_error_percent,
        period_min_s: if intervals.is_empty() {
            0.0
        } else {
            period_min_s
        },
        period_max_s,
        period_s: f.telegram_period_s,
        period_tolerance_s: f.period_tolerance_s,
        firmware_seen: firmware_seen.to_vec(),
        firmware_certified: f.firmware.clone(),
        problems,
        passed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn csp1() -> SensorFixture {
        SensorFixture::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/csp1.yaml"))
            .unwrap()
    }

    fn check(stats: SensorLinkStats, intervals: &[f64], firmware: &[&str]) -> (bool, Vec<String>) {
        let fw: Vec<String> = firmware.iter().map(|s| s.to_string()).collect();
        match telegram_checks(&csp1(), &stats, intervals, &fw) {
            PortResult::Telegrams {
                passed, problems, ..
            } => (passed, problems),
            other => panic!("{other:?}"),
        }
    }

    fn clean(telegrams: u64) -> SensorLinkStats {
        SensorLinkStats {
            telegrams,
            ..SensorLinkStats::default()
        }
    }

    #[test]
    fn a_clean_stream_passes() {
        let (ok, problems) = check(clean(60), &[1.0, 0.9, 1.1, 1.0], &["XMX_P1CS_V05"]);
        assert!(ok, "{problems:?}");
    }

    #[test]
    fn a_late_telegram_fails_the_period() {
        let (ok, problems) = check(clean(60), &[1.0, 2.0, 1.0], &["XMX_P1CS_V05"]);
        assert!(!ok);
        assert_eq!(problems, ["telegrams 1.00 … 2.00 s apart, not 1 ± 0.5 s"]);
    }

    #[test]
    fn another_firmware_fails() {
        let (ok, problems) = check(clean(60), &[1.0], &["XMX_P1CS_V05", "XMX_P1CS_V09"]);
        assert!(!ok);
        assert_eq!(
            problems,
            ["firmware id XMX_P1CS_V09 is not one of XMX_P1CS_V05"]
        );
    }

    #[test]
    fn crc_failures_beyond_the_fixtures_rate_fail() {
        let stats = SensorLinkStats {
            telegrams: 59,
            crc_failures: 1,
            ..SensorLinkStats::default()
        };
        let (ok, problems) = check(stats, &[1.0], &["XMX_P1CS_V05"]);
        assert!(!ok);
        assert_eq!(
            problems,
            ["1 of 60 telegrams failed their CRC (1.7 %, at most 0 % allowed)"]
        );
    }

    fn point(max_telegrams: u32) -> TransitionPoint {
        TransitionPoint {
            between_a: (4.0, 5.0),
            target_u_percent: 0.4,
            max_telegrams,
        }
    }

    /// A channel's search fed a simulated sensor's answers: noise-free, reading
    /// `gain_percent` high, the telegrams 3 s apart from bench time 10 s.
    fn searched(f: &SensorFixture, point: &TransitionPoint, gain_percent: f64) -> ChannelSearch {
        let mut s = ChannelSearch {
            channel: 0,
            phase: Phase::L1,
            search: TransitionSearch::new(search_config(f, point)).unwrap(),
            probes: Vec::new(),
            done: false,
            problem: None,
        };
        let mut setpoint = meterbench_instruments::SourceSetpoint::default();
        let mut at_s = 10.0;
        while let Some(x) = s.search.next_probe() {
            setpoint.phases[0].current_a = x;
            let value = (x * (1.0 + gain_percent / 100.0)).round();
            let telegram = Stamped {
                at_s,
                reading: SensorReading {
                    currents: [Some(format!("{value:03}")), None, None],
                    currents_a: [Some(value), None, None],
                    firmware: None,
                },
            };
            observe(&mut s, &setpoint, &telegram, point);
            at_s += 3.0;
        }
        assert!(s.done);
        s
    }

    fn measuring(f: &SensorFixture) -> ReadingMeasuring<'_> {
        ReadingMeasuring::new(f, DecisionRule::SimpleAcceptance, 3.0, 0.02, Vec::new())
    }

    #[test]
    fn the_search_is_set_up_from_the_fixture_and_the_point() {
        let f = csp1();
        let c = search_config(&f, &point(60));
        // Rounded to the nearest: 4.5 A. Bracket ±10 % (twice the limit) and 3 × 50 mA.
        assert_eq!(c.boundary_a, 4.5);
        assert!((c.bracket_a.0 - (4.5 / 1.1 - 0.15)).abs() < 1e-12);
        assert!((c.bracket_a.1 - (4.5 / 0.9 + 0.15)).abs() < 1e-12);
        // 0.4 % of 4.5 A = 18 mA; a grid cell a tenth of it: 1.209 A / 1.8 mA → 672 cells.
        assert!((c.target_u_a - 0.018).abs() < 1e-12);
        assert_eq!(c.grid_points, 672);
        assert_eq!((c.max_probes, c.sigma_range_a), (60, None));
    }

    #[test]
    fn a_located_transition_is_decided_by_its_error_and_budget() {
        let f = csp1();
        let m = measuring(&f);
        for (gain, accepted) in [(2.0, true), (-7.0, false)] {
            let s = searched(&f, &point(60), gain);
            let probes = s.probes.len();
            let PortResult::Transition {
                error_percent: Some(e),
                expanded_u_percent: Some(u),
                u_mu_a: Some(_),
                budget: Some(b),
                decision: Some(d),
                probes: recorded,
                searched_s,
                passed,
                problem,
                ..
            } = m.conclude(s, &point(60), 7.0)
            else {
                panic!("not located at {gain} %")
            };
            // A noise-free sensor reading g % high flips where e = g.
            assert!((e - gain).abs() <= u && u <= 1.0, "{e} ± {u} at {gain} %");
            assert_eq!(b.coverage_factor, 2.0);
            assert_eq!((d.accepted, passed), (accepted, accepted));
            assert_eq!(problem, None);
            assert_eq!(recorded.len(), probes);
            // From the point's start (7 s) to its last telegram.
            assert_eq!(searched_s, 10.0 + 3.0 * (probes - 1) as f64 - 7.0);
        }
    }

    /// 30 % high: the flip is far below the bracket. The search bounds it, the bound
    /// decides (FAIL), and μ is no result.
    #[test]
    fn a_transition_beyond_the_bracket_fails_by_its_bound() {
        let f = csp1();
        for (gain, sign) in [(30.0, 1.0), (-30.0, -1.0)] {
            let s = searched(&f, &point(60), gain);
            let PortResult::Transition {
                error_percent,
                error_beyond_percent: Some(beyond),
                u_mu_a,
                budget,
                decision: Some(d),
                stop: Some(SearchStop::OutsideBracket { .. }),
                passed,
                problem: Some(problem),
                ..
            } = measuring(&f).conclude(s, &point(60), 0.0)
            else {
                panic!("not beyond the bracket at {gain} %")
            };
            assert_eq!(
                (error_percent, u_mu_a, budget.is_none()),
                (None, None, true)
            );
            assert!(sign * beyond > 10.0, "{beyond}");
            assert!(!d.accepted && !passed);
            assert!(
                problem.starts_with("transition outside ±5 %: the reading flips"),
                "{problem}"
            );
        }
    }

    /// Two telegrams cannot locate a flip: not located, not accepted, no decision.
    #[test]
    fn a_search_out_of_telegrams_before_both_answers_is_not_located() {
        let f = csp1();
        let s = searched(&f, &point(2), 30.0);
        let PortResult::Transition {
            error_percent: None,
            error_beyond_percent: None,
            decision: None,
            passed: false,
            problem: Some(problem),
            ..
        } = measuring(&f).conclude(s, &point(2), 0.0)
        else {
            panic!("decided from two telegrams")
        };
        assert_eq!(
            problem,
            "not located: every one of 2 readings was 5 A or more within the 2 telegrams allowed"
        );
    }

    #[test]
    fn a_telegram_without_the_channels_current_ends_its_search() {
        let f = csp1();
        let p = point(60);
        let mut s = ChannelSearch {
            channel: 0,
            phase: Phase::L2,
            search: TransitionSearch::new(search_config(&f, &p)).unwrap(),
            probes: Vec::new(),
            done: false,
            problem: None,
        };
        let telegram = Stamped {
            at_s: 12.0,
            reading: SensorReading {
                currents: [Some("005".into()), None, Some("004".into())],
                currents_a: [Some(5.0), None, Some(4.0)],
                firmware: None,
            },
        };
        observe(
            &mut s,
            &meterbench_instruments::SourceSetpoint::default(),
            &telegram,
            &p,
        );
        assert!(s.done && s.probes.is_empty());
        let PortResult::Transition {
            passed: false,
            problem: Some(problem),
            ..
        } = measuring(&f).conclude(s, &p, 0.0)
        else {
            panic!()
        };
        assert_eq!(
            problem,
            "a telegram at 12.0 s carried no current for this channel"
        );
    }
}
