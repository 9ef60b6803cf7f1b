//! Current sensors: per point, the source drives the current, the bench waits for it to
//! settle, then takes each sensor's next telegrams whose measuring second lies wholly
//! inside the settled interval and compares each channel's reading with the reference
//! current. Every position's sensor reads the same current; each is judged on its own.

use crate::measure::{Ctx, Measuring, Slot};
use crate::plan::{Action, PlannedStep};
use crate::record::*;
use crate::{PortProgress, StepStop};
use meterbench_instruments::{
    CurrentSensor, InstrumentError, InstrumentIdentity, SensorLinkStats, SensorReading,
};
use meterbench_metrology::{DecisionRule, current_budget, current_error_percent, decide};
use meterbench_procedure::{SensorFixture, SensorStep};
use std::time::Duration;

/// How often the bench looks for a telegram, s of bench time: the stamp of a telegram
/// is at most this late, well inside the fixture's latency allowance.
const LOOK_EVERY_S: f64 = 0.1;

/// Wall time without a telegram after which the line counts as drained: far below the
/// 1 s period, far above the time a telegram takes to arrive once sent.
const QUIET: Duration = Duration::from_millis(30);

/// Wall time the bench waits for a telegram that is due before it looks again.
const TELEGRAM_WAIT: Duration = Duration::from_millis(50);

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
}

pub(crate) struct ReadingMeasuring<'a> {
    fixture: &'a SensorFixture,
    decision_rule: DecisionRule,
    /// Expanded uncertainty (k=2) of the source's current, %.
    reference_u: f64,
    /// Per device of the session.
    links: Vec<SensorLink<'a>>,
}

impl<'a> ReadingMeasuring<'a> {
    pub fn new(
        fixture: &'a SensorFixture,
        decision_rule: DecisionRule,
        reference_u: f64,
        sensors: Vec<Option<&'a mut dyn CurrentSensor>>,
    ) -> Self {
        ReadingMeasuring {
            fixture,
            decision_rule,
            reference_u,
            links: sensors
                .into_iter()
                .map(|sensor| SensorLink {
                    sensor,
                    intervals: Vec::new(),
                    firmware_seen: Vec::new(),
                })
                .collect(),
        }
    }

    fn current(
        &mut self,
        ps: &PlannedStep,
        step: &SensorStep,
        slots: &mut [Slot],
        ctx: &mut Ctx<'_, '_>,
    ) -> Result<(), StepStop> {
        let f = self.fixture;
        for slot in slots.iter_mut() {
            slot.step.physical_floor_s =
                step.settle_s + (step.telegrams + 1) as f64 * f.telegram_period_s;
        }
        ctx.energise(&ps.setpoint)?;
        ctx.sleep(step.settle_s)?;
        // Telegrams from before and during settling: counted by the link, unused. Read
        // until the line is quiet, so none of them is taken for a new one.
        for slot in slots.iter_mut() {
            let Some(sensor) = self.links[slot.device].sensor.as_deref_mut() else {
                slot.fault(format!(
                    "no current sensor is bound at position {} (the position's `p1:`)",
                    ctx.devices[slot.device].position
                ));
                continue;
            };
            // A sensor's own link failing (its cable pulled) is that position's fault.
            loop {
                match sensor.next_reading(QUIET) {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        slot.fault(e.to_string());
                        break;
                    }
                }
            }
        }
        let settled = ctx.elapsed_s();
        struct Taking {
            taken: Vec<Stamped>,
            last_seen: Option<f64>,
            stamps: Vec<f64>,
        }
        let mut taking: Vec<Taking> = slots
            .iter()
            .map(|_| Taking {
                taken: Vec::new(),
                last_seen: None,
                stamps: Vec::new(),
            })
            .collect();
        let wanted = step.telegrams as usize;
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
                let link = &mut self.links[slot.device];
                let sensor = link.sensor.as_deref_mut().expect("checked above");
                // When a telegram is due, give the device a moment of wall time to send
                // it (the simulated one answers within milliseconds of its second
                // ending; on a real bench it is already waiting). Between telegrams,
                // only look.
                let now = ctx.elapsed_s();
                let due = t
                    .last_seen
                    .is_none_or(|last| now - last >= f.telegram_period_s - LOOK_EVERY_S / 2.0);
                let mut wait = if due { TELEGRAM_WAIT } else { Duration::ZERO };
                loop {
                    let reading = match sensor.next_reading(wait) {
                        Ok(Some(r)) => r,
                        Ok(None) => break,
                        Err(e) => {
                            slot.fault(e.to_string());
                            break;
                        }
                    };
                    wait = Duration::ZERO;
                    let at_s = ctx.elapsed_s();
                    t.stamps.push(at_s);
                    t.last_seen = Some(at_s);
                    if let Some(fw) = &reading.firmware
                        && !link.firmware_seen.contains(fw)
                    {
                        link.firmware_seen.push(fw.clone());
                    }
                    // Its measuring second ended at most max_latency before it arrived:
                    // take it only if that second began after settling.
                    if at_s - f.telegram_period_s - f.max_latency_s >= settled {
                        t.taken.push(Stamped { at_s, reading });
                    }
                }
                let silent = ctx.elapsed_s() - t.last_seen.unwrap_or(settled);
                if !slot.is_faulted() && silent > 3.0 * f.telegram_period_s + f.max_latency_s {
                    slot.fault(format!(
                        "no telegram from the sensor ({}) for {silent:.1} s; {} of {} taken at {} A",
                        sensor.describe(),
                        t.taken.len(),
                        step.telegrams,
                        step.current_a
                    ));
                }
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
            // Periods are judged within a point: between points the bench settles and
            // does not look.
            self.links[slot.device]
                .intervals
                .extend(t.stamps.windows(2).map(|w| w[1] - w[0]));
            self.judge(step, &t.taken, &mut slot.step);
        }
        Ok(())
    }

    /// Each channel's readings against the reference current of its phase.
    fn judge(&self, step: &SensorStep, taken: &[Stamped], record: &mut StepRecord) {
        let f = self.fixture;
        for (k, c) in f.channels.iter().enumerate() {
            let reference_a = if step.phases.contains(&c.phase) {
                step.current_a
            } else {
                0.0
            };
            let i = c.phase.index();
            let readings: Vec<String> = taken
                .iter()
                .map(|t| t.reading.currents[i].clone().unwrap_or_default())
                .collect();
            let values: Vec<Option<f64>> = taken.iter().map(|t| t.reading.currents_a[i]).collect();
            let reading_times_s: Vec<f64> = taken.iter().map(|t| t.at_s).collect();
            let missing = values.iter().any(Option::is_none);
            let result = if reference_a == 0.0 {
                // No current through this CT: it must read nothing (crosstalk, wiring).
                let passed = !missing && values.iter().all(|v| v.is_some_and(|x| x == 0.0));
                PortResult::CurrentSensor {
                    phase: c.phase,
                    reference_a,
                    readings,
                    reading_times_s,
                    errors_percent: Vec::new(),
                    mean_error_percent: 0.0,
                    budget: None,
                    expanded_u_percent: 0.0,
                    limit_percent: f.limit_percent,
                    limit_source: f.limit_source.clone(),
                    decision: None,
                    passed,
                }
            } else {
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
                let decision = decide(
                    self.decision_rule,
                    mean,
                    budget.expanded_u_percent,
                    f.limit_percent,
                );
                PortResult::CurrentSensor {
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
                }
            };
            record.ports[k].result = Some(result);
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
            Action::Current(s) => self.current(ps, s, slots, ctx),
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
}
