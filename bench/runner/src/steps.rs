//! One function per step kind. Steps produce values; the decision comes from the
//! declared limits through the metrology crate.

use crate::events::{Event, Observer};
use crate::identity::check_identity;
use crate::operator::{AnswerFormat, Operator, Question};
use crate::plan::PlannedStep;
use crate::record::*;
use crate::safety::SourceGuard;
use crate::{RunRequest, StepStop};
use meterbench_instruments::{
    Clock, DutSoftware, EdgeEvent, PulseCounter, SoftwareReading, SourceSetpoint,
};
use meterbench_metrology::tests_timing::starting_pulses_in_window;
use meterbench_metrology::uncertainty::ReferenceMethod;
use meterbench_metrology::{
    BudgetInputs, RegisterSteps, compare_register, decide, gated_error_percent, interval_scatter,
    min_register_energy_wh, no_load_duration_s, parse_register, register_resolution_u_percent,
    repeat_statistics, starting_pulse_period_s, timed_error_percent, uncertainty_budget,
};
use meterbench_procedure::{
    AccuracyStep, CertifiedIdentity, Fixture, IdentitySource, IdentityStep, InspectionStep,
    NoLoadStep, PulseCheckStep, RegisterStep, StartingStep, StepKind,
};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Longest wall-clock time between two counter polls while a point's end is far: how
/// often the progress display moves on a real bench. (A stop does not wait for it:
/// sleeps are interrupted.)
const DISPLAY_REFRESH_WALL_S: f64 = 2.0;

pub(crate) struct StepContext<'r, 'a> {
    pub req: &'r RunRequest<'r>,
    pub counter: &'a mut dyn PulseCounter,
    pub clock: &'a mut dyn Clock,
    pub observer: &'a mut dyn Observer,
    pub dut_software: Option<&'a mut dyn DutSoftware>,
    pub operator: Option<&'a mut dyn Operator>,
    pub last_sequence: u64,
    pub t_start: Duration,
    /// Counter round trips so far (each poll drains the counter once).
    pub polls: u64,
    /// The counter's time at the last drain and the bench clock then: from them the
    /// counter's time at any later moment, to within the link's latency.
    pub counter_time: (u64, Duration),
}

/// What the counter delivered for the ports during a step.
struct Collected {
    start_ticks: u64,
    now_ticks: u64,
    by_channel: BTreeMap<u8, Vec<EdgeEvent>>,
}

impl Collected {
    fn pulses(&self, channel: u8) -> &[EdgeEvent] {
        self.by_channel.get(&channel).map_or(&[], |v| v.as_slice())
    }
}

/// Estimated time until every port has `needed` pulses at the nominal `period`, s: the
/// slowest port's last pulse plus a period per missing pulse (from now when it has none
/// yet, since the phase of its first pulse is unknown).
fn time_to_pulses(
    c: &Collected,
    ports: &[(String, u8)],
    needed: u64,
    period: f64,
    elapsed: f64,
    timebase_hz: f64,
) -> f64 {
    ports
        .iter()
        .map(|(_, ch)| {
            let p = c.pulses(*ch);
            let missing = needed.saturating_sub(p.len() as u64) as f64;
            if missing == 0.0 {
                return 0.0;
            }
            let from = p.last().map_or(elapsed, |e| {
                (e.timestamp_ticks - c.start_ticks) as f64 / timebase_hz
            });
            (from + missing * period - elapsed).max(0.0)
        })
        .fold(0.0, f64::max)
}

/// Expected duration of a step for the progress display, s.
pub(crate) fn expected_duration_s(ps: &PlannedStep, fixture: &Fixture) -> f64 {
    match &ps.step.kind {
        StepKind::Identity(i) => i.settle_s + 1.0,
        StepKind::Inspection(_) => 0.0,
        StepKind::Register(r) => 2.0 * r.settle_s + register_dose_s(r, ps, fixture),
        StepKind::PulseCheck(p) => p.settle_s + p.pulses as f64 * ps.nominal_period_s,
        StepKind::Starting(s) => s.settle_s + s.pulses as f64 * ps.nominal_period_s,
        StepKind::NoLoad(n) => n.settle_s + no_load_s(n, ps, fixture),
        StepKind::Accuracy(a) => {
            a.settle_s + (a.pulses * a.repeats as u64 + 1) as f64 * ps.nominal_period_s
        }
    }
}

/// How long the register step applies its load: until one register step is at most a
/// tenth of the point's limit and at least `min_register_steps` steps have passed.
fn register_dose_s(r: &RegisterStep, ps: &PlannedStep, fixture: &Fixture) -> f64 {
    let (Some(profile), Some(limit)) = (&fixture.register, &ps.limit) else {
        return 0.0;
    };
    let energy_wh = min_register_energy_wh(
        profile.resolution_wh,
        limit.mpe_percent,
        r.min_register_steps,
    );
    energy_wh / ps.setpoint.active_power_w() * 3600.0
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

fn no_load_s(n: &NoLoadStep, ps: &PlannedStep, fixture: &Fixture) -> f64 {
    let elements = ps
        .setpoint
        .phases
        .iter()
        .filter(|p| p.voltage_v > 0.0)
        .count() as u32;
    no_load_duration_s(
        n.k_constant,
        fixture.meter_constant_imp_per_kwh,
        elements,
        ps.load.voltage_v,
        fixture.rated.ist,
    )
}

pub(crate) fn failed_step(
    index: usize,
    ps: &PlannedStep,
    started: f64,
    now: f64,
    outcome: Outcome,
    message: String,
) -> StepRecord {
    StepRecord {
        index,
        name: ps.step.name.clone(),
        kind: kind_name(&ps.step.kind).into(),
        load: ps.load.clone(),
        setpoint: ps.setpoint,
        started_s: started,
        duration_s: now - started,
        physical_floor_s: 0.0,
        outcome,
        message: Some(message),
        ports: Vec::new(),
    }
}

fn kind_name(k: &StepKind) -> &'static str {
    match k {
        StepKind::Identity(_) => "identity",
        StepKind::Inspection(_) => "inspection",
        StepKind::Register(_) => "register",
        StepKind::PulseCheck(_) => "pulse_check",
        StepKind::Starting(_) => "starting",
        StepKind::NoLoad(_) => "no_load",
        StepKind::Accuracy(_) => "accuracy",
    }
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

impl StepContext<'_, '_> {
    pub fn elapsed_s(&self) -> f64 {
        (self.clock.now() - self.t_start).as_secs_f64()
    }

    fn tb(&self) -> f64 {
        self.counter.timebase_hz()
    }

    pub fn run_step(
        &mut self,
        index: usize,
        ps: &PlannedStep,
        guard: &mut SourceGuard<'_>,
    ) -> StepRecord {
        let started = self.elapsed_s();
        let mut record = StepRecord {
            index,
            name: ps.step.name.clone(),
            kind: kind_name(&ps.step.kind).into(),
            load: ps.load.clone(),
            setpoint: ps.setpoint,
            started_s: started,
            duration_s: 0.0,
            physical_floor_s: 0.0,
            outcome: Outcome::InProgress,
            message: None,
            ports: self
                .req
                .fixture
                .ports
                .iter()
                .map(|p| PortRecord {
                    port: p.name.clone(),
                    counter_channel: p.counter_channel,
                    pulses: Vec::new(),
                    result: None,
                })
                .collect(),
        };
        let result = match &ps.step.kind {
            StepKind::Identity(i) => self.identity(ps, i, guard, &mut record),
            StepKind::Inspection(i) => self.inspection(ps, i, &mut record),
            StepKind::Register(r) => self.register(index, ps, r, guard, &mut record),
            StepKind::PulseCheck(p) => self.pulse_check(index, ps, p, guard, &mut record),
            StepKind::Starting(s) => self.starting(index, ps, s, guard, &mut record),
            StepKind::NoLoad(n) => self.no_load(index, ps, n, guard, &mut record),
            StepKind::Accuracy(a) => self.accuracy(index, ps, a, guard, &mut record),
        };
        record.duration_s = self.elapsed_s() - started;
        match result {
            Ok(()) => record.conclude_from_ports("port"),
            Err(StepStop::Aborted) => {
                record.outcome = Outcome::Aborted;
                record.message = Some("stopped by the operator (signal)".into());
            }
            Err(StepStop::Instrument(e)) => {
                record.outcome = Outcome::Error;
                record.message = Some(e.to_string());
            }
            Err(StepStop::Bench(m)) => {
                record.outcome = Outcome::Error;
                record.message = Some(m);
            }
        }
        record
    }

    /// Sleep on the bench clock in slices, so a stop request is seen promptly.
    fn wait(&mut self, seconds: f64) -> Result<(), StepStop> {
        let mut left = seconds;
        while left > 0.0 {
            if self.req.abort.load(Ordering::SeqCst) {
                return Err(StepStop::Aborted);
            }
            let slice = left.min(0.25);
            self.clock.sleep(Duration::from_secs_f64(slice));
            left -= slice;
        }
        Ok(())
    }

    /// Energise the setpoint, let it settle, and start collecting from the end of the
    /// settling time. The counter is not asked when that is: its time is carried forward
    /// from the last drain on the bench clock (to within a link latency, a few ms in a
    /// settling time of seconds). The next drain checks the settling time's events for
    /// gaps and drops them.
    fn settle(
        &mut self,
        ps: &PlannedStep,
        settle_s: f64,
        guard: &mut SourceGuard<'_>,
    ) -> Result<Collected, StepStop> {
        guard.energise(&ps.setpoint)?;
        self.wait(settle_s)?;
        let (ticks, at) = self.counter_time;
        let since = self.clock.now().saturating_sub(at).as_secs_f64();
        let start_ticks = ticks + (since * self.tb()).round() as u64;
        Ok(Collected {
            start_ticks,
            now_ticks: start_ticks,
            by_channel: BTreeMap::new(),
        })
    }

    fn drain_into(&mut self, c: &mut Collected, keep: bool) -> Result<(), StepStop> {
        let batch = self.counter.drain()?;
        self.counter_time = (batch.now_ticks, self.clock.now());
        for e in &batch.events {
            if e.sequence != self.last_sequence + 1 {
                return Err(StepStop::Bench(format!(
                    "the counter lost events (sequence jumped from {} to {}); the measurement is invalid",
                    self.last_sequence, e.sequence
                )));
            }
            self.last_sequence = e.sequence;
            // Edges from before the collection began (the settling time) are dropped.
            if keep && e.timestamp_ticks >= c.start_ticks {
                c.by_channel.entry(e.channel).or_default().push(*e);
            }
        }
        c.now_ticks = c.now_ticks.max(batch.now_ticks);
        Ok(())
    }

    /// Poll the counter until `done` says so. `period` is the expected time between two
    /// pulses (the unit of `progress`'s remaining-time estimate); `poll_s`, a fraction
    /// of it, is how late after the estimated end the point is looked at.
    /// The counter timestamps every edge itself: polling less often loses nothing, it
    /// only delays when the host learns of the edges.
    fn collect(
        &mut self,
        c: &mut Collected,
        period: f64,
        poll_s: f64,
        mut done: impl FnMut(&Collected, f64) -> Result<bool, StepStop>,
        mut progress: impl FnMut(&Collected, f64) -> (u64, u64, f64),
        index: usize,
    ) -> Result<(), StepStop> {
        let fine = poll_s.clamp(0.001, 0.25);
        let display_refresh = self
            .clock
            .rate()
            .map_or(f64::INFINITY, |r| DISPLAY_REFRESH_WALL_S * r);
        loop {
            let elapsed = (c.now_ticks - c.start_ticks) as f64 / self.tb();
            if done(c, elapsed)? {
                return Ok(());
            }
            if self.req.abort.load(Ordering::SeqCst) {
                return Err(StepStop::Aborted);
            }
            let (counted, needed, remaining_s) = progress(c, elapsed);
            self.observer.event(&Event::Progress {
                index,
                counted,
                needed,
                elapsed_s: elapsed,
                remaining_s,
            });
            // Every poll is a round trip to the counter; the counter timestamps every edge
            // itself, so polling less loses nothing. While the end is far, sleep most of
            // the way (the estimate assumes the nominal pulse rate; 0.9 leaves room for a
            // slow meter), at most a display refresh on a paced clock. Near the end, sleep
            // until the estimated end plus a fraction of a period: one poll usually ends
            // the point, just after its pulse.
            let sleep = if remaining_s > 2.0 * period {
                (0.9 * remaining_s).min(display_refresh)
            } else {
                remaining_s + fine
            };
            if !self
                .clock
                .sleep_unless(Duration::from_secs_f64(sleep), &self.req.abort)
            {
                return Err(StepStop::Aborted);
            }
            self.polls += 1;
            self.drain_into(c, true)?;
        }
    }

    fn ports(&self) -> Vec<(String, u8)> {
        self.req
            .fixture
            .ports
            .iter()
            .map(|p| (p.name.clone(), p.counter_channel))
            .collect()
    }

    /// Power the meter (nominal voltage, no current), read its software identity and
    /// compare it with the certified ones: per port, the version and software hash (the
    /// meter's) and the port's LRS hash.
    fn identity(
        &mut self,
        ps: &PlannedStep,
        i: &IdentityStep,
        guard: &mut SourceGuard<'_>,
        rec: &mut StepRecord,
    ) -> Result<(), StepStop> {
        self.settle(ps, i.settle_s, guard)?;
        let mut flags: Vec<(String, String)> = Vec::new();
        let reading = match i.read_from {
            IdentitySource::Can => {
                let Some(dut) = self.dut_software.as_deref_mut() else {
                    return Err(StepStop::Bench(format!(
                        "step `{}` reads the software identity over CAN, but the station binds no DUT interface for it (`dut_can`)",
                        ps.step.name
                    )));
                };
                let hint = self.req.fixture.startup_fault_hint();
                dut.read_identity()
                    .map_err(|e| StepStop::Bench(format!("{e}. {hint}")))?
            }
            IdentitySource::Lcd => {
                let (reading, shown) = self.identity_from_lcd(ps)?;
                flags = shown;
                reading
            }
        };
        let (certified, mismatches) =
            check_identity(&reading, &self.req.fixture.certified_software);
        let read_from = format!("{:?}", i.read_from).to_lowercase();
        for port in &mut rec.ports {
            let lrs = reading
                .lrs_hash
                .iter()
                .find(|(p, _)| *p == port.port)
                .map(|(_, h)| h.clone())
                .unwrap_or_default();
            let mine: Vec<String> = mismatches
                .iter()
                .filter(|m| m.port.as_deref().is_none_or(|p| p == port.port))
                .map(ToString::to_string)
                .collect();
            port.result = Some(PortResult::Identity {
                read_from: read_from.clone(),
                software_version: reading.software_version.clone(),
                software_hash: reading.software_hash.clone(),
                lrs_hash: lrs,
                certified: certified.cloned(),
                passed: mine.is_empty(),
                mismatches: mine,
                lcd_flags: flags
                    .iter()
                    .find(|(p, _)| *p == port.port)
                    .map(|(_, f)| f.clone()),
            });
        }
        if !mismatches.is_empty() {
            let all: Vec<String> = mismatches.iter().map(ToString::to_string).collect();
            rec.message = Some(all.join("; "));
        }
        rec.physical_floor_s = i.settle_s;
        Ok(())
    }

    /// Ask the operator (or the answers file) one question of step `ps`.
    fn ask(
        &mut self,
        ps: &PlannedStep,
        key: &str,
        prompt: &str,
        format: AnswerFormat,
    ) -> Result<String, StepStop> {
        let Some(op) = self.operator.as_deref_mut() else {
            return Err(StepStop::Bench(format!(
                "step `{}` asks the operator ({key}), but no operator or answers file is there to answer",
                ps.step.name
            )));
        };
        op.ask(&Question {
            key: key.into(),
            prompt: prompt.into(),
            format,
        })
        .map_err(|e| match e {
            // Ctrl-C or SIGTERM while the question was open.
            crate::operator::OperatorError::Stopped { .. } => StepStop::Aborted,
            e => StepStop::Bench(e.to_string()),
        })
    }

    /// The identity as the LCD shows it, asked of the operator (or the answers file),
    /// and each port's flags as shown. The LCD shows one LRS hash for the meter; it
    /// stands for every port.
    fn identity_from_lcd(
        &mut self,
        ps: &PlannedStep,
    ) -> Result<(SoftwareReading, Vec<(String, String)>), StepStop> {
        let fixture = self.req.fixture;
        let fault = self.ask(
            ps,
            "lcd.startup_fault",
            "Does the LCD show \"-CHARGEPOIN+\" (the meter did not leave its boot loader)?",
            AnswerFormat::YesNo,
        )?;
        if fault == "yes" {
            return Err(StepStop::Bench(fixture.startup_fault_hint()));
        }
        // Hash lengths as the certificate lists them.
        let digits = |f: fn(&CertifiedIdentity) -> &str| {
            fixture.certified_software.first().map_or(8, |c| f(c).len())
        };
        let version = self.ask(
            ps,
            "lcd.software_version",
            "Overall software version on the LCD",
            AnswerFormat::Version,
        )?;
        let software_hash = self.ask(
            ps,
            "lcd.software_hash",
            "Overall software hash on the LCD",
            AnswerFormat::HexHash {
                digits: digits(|c| &c.software_hash),
            },
        )?;
        let lrs = self.ask(
            ps,
            "lcd.lrs_hash",
            "Legally relevant software (LRS) hash on the LCD",
            AnswerFormat::HexHash {
                digits: digits(|c| &c.lrs_hash),
            },
        )?;
        let mut flags = Vec::new();
        for p in &fixture.ports {
            let shown = self.ask(
                ps,
                &format!("lcd.flags.{}", p.name),
                &format!("Flags of the {} port on the LCD, as shown", p.name),
                AnswerFormat::Shown,
            )?;
            flags.push((p.name.clone(), shown));
        }
        Ok((
            SoftwareReading {
                software_version: version,
                software_hash,
                lrs_hash: fixture
                    .ports
                    .iter()
                    .map(|p| (p.name.clone(), lrs.clone()))
                    .collect(),
            },
            flags,
        ))
    }

    /// Scan the serial number, confirm the fixture's seals and the procedure's labels.
    /// The DUT is not powered: nothing is switched on.
    fn inspection(
        &mut self,
        ps: &PlannedStep,
        i: &InspectionStep,
        rec: &mut StepRecord,
    ) -> Result<(), StepStop> {
        let fixture = self.req.fixture;
        let mut problems = Vec::new();
        let mut checks = Vec::new();
        let mut scanned_serial = None;
        if i.scan_serial {
            let s = self.ask(
                ps,
                "serial.scan",
                "Scan the serial number (QR code on the label)",
                AnswerFormat::SerialNumber,
            )?;
            if s != self.req.dut_serial {
                problems.push(format!(
                    "the scanned serial number {s} is not the one this run is for ({})",
                    self.req.dut_serial
                ));
            }
            scanned_serial = Some(s);
        }
        let profile = fixture.inspection.as_ref();
        let seals = if i.seals {
            profile.map_or(&[][..], |p| p.seals.as_slice())
        } else {
            &[]
        };
        // What to confirm: (answer key, what it is, the question, the problem if not).
        let mut to_confirm: Vec<(String, String, String, String)> = seals
            .iter()
            .map(|seal| {
                (
                    format!("seal.{}", seal.key),
                    seal.check.clone(),
                    format!("{}: present and intact?", seal.check),
                    format!("seal not intact: {}", seal.check),
                )
            })
            .collect();
        for label_key in &i.labels {
            let label = profile
                .and_then(|p| p.labels.iter().find(|l| &l.key == label_key))
                .expect("checked against the fixture");
            to_confirm.push((
                format!("label.{}", label.key),
                label.title.clone(),
                format!(
                    "{}: present, legible and showing every field: {}?",
                    label.title,
                    label.fields.join("; ")
                ),
                format!("{} is missing a field or illegible", label.title),
            ));
        }
        for (key, what, question, problem) in to_confirm {
            let confirmed = self.ask(ps, &key, &question, AnswerFormat::YesNo)? == "yes";
            if !confirmed {
                problems.push(problem);
            }
            checks.push(InspectionCheck {
                key,
                what,
                confirmed,
            });
        }
        for port in &mut rec.ports {
            port.result = Some(PortResult::Inspection {
                scanned_serial: scanned_serial.clone(),
                checks: checks.clone(),
                problems: problems.clone(),
                passed: problems.is_empty(),
            });
        }
        if !problems.is_empty() {
            rec.message = Some(problems.join("; "));
        }
        Ok(())
    }

    /// Every port's register, as the LCD (operator) or the CAN interface shows it.
    fn read_registers(
        &mut self,
        ps: &PlannedStep,
        r: &RegisterStep,
        when: &str,
        decimals: u32,
    ) -> Result<Vec<(String, RegisterSteps)>, StepStop> {
        let mut out = Vec::new();
        for (port, _) in self.ports() {
            let text = match r.read_from {
                IdentitySource::Lcd => self.ask(
                    ps,
                    &format!("lcd.register_{when}.{port}"),
                    &format!(
                        "Energy register of the {port} port on the LCD, kWh ({when} the dose)"
                    ),
                    AnswerFormat::Reading {
                        decimals: decimals as usize,
                    },
                )?,
                IdentitySource::Can => {
                    let Some(dut) = self.dut_software.as_deref_mut() else {
                        return Err(StepStop::Bench(format!(
                            "step `{}` reads the register over CAN, but the station binds no DUT interface for it (`dut_can`)",
                            ps.step.name
                        )));
                    };
                    dut.read_register_kwh(&port)?
                }
            };
            let steps = parse_register(&text, decimals).map_err(|e| {
                StepStop::Bench(format!("register of port {port} {when} the dose: {e}"))
            })?;
            out.push((text, steps));
        }
        Ok(out)
    }

    /// The reference count once the counter's status is newer than `after_ticks` (a
    /// status report sent before then may still be in flight).
    fn reference_count_after(&mut self, after_ticks: u64) -> Result<u64, StepStop> {
        for _ in 0..5 {
            let r = self.counter.reference_count()?;
            if r.now_ticks >= after_ticks {
                return Ok(r.ref_count);
            }
        }
        Err(StepStop::Bench(
            "the counter's status reports lag behind its edges; cannot read the reference count"
                .into(),
        ))
    }

    /// Read the registers at rest, apply the load for the dose, rest again, read again;
    /// compare each register's advance with its LED pulses and the reference energy.
    fn register(
        &mut self,
        index: usize,
        ps: &PlannedStep,
        r: &RegisterStep,
        guard: &mut SourceGuard<'_>,
        rec: &mut StepRecord,
    ) -> Result<(), StepStop> {
        let f = self.req.fixture;
        let station = self.req.station;
        let profile = f.register.as_ref().expect("checked against the fixture");
        let limit = ps
            .limit
            .clone()
            .expect("register steps are planned with a limit");
        let dose_s = register_dose_s(r, ps, f);
        let ports = self.ports();

        // At rest: voltage on, no current; the LED's last pulses and the register's last
        // update are over after settle_s.
        let rest = idle(&ps.setpoint);
        guard.energise(&rest)?;
        self.wait(r.settle_s)?;
        let mut c = Collected {
            start_ticks: 0,
            now_ticks: 0,
            by_channel: BTreeMap::new(),
        };
        self.drain_into(&mut c, false)?;
        let ref_before = self.reference_count_after(c.now_ticks)?;
        let before = self.read_registers(ps, r, "before", profile.decimals)?;

        // The dose. Every pulse from here until the rest after it counts.
        guard.energise(&ps.setpoint)?;
        self.drain_into(&mut c, true)?;
        c.start_ticks = c.now_ticks;
        let period = ps.nominal_period_s;
        let needed = (dose_s / period).ceil() as u64;
        self.collect(
            &mut c,
            period,
            0.25,
            |_, elapsed| Ok(elapsed >= dose_s),
            |c, elapsed| {
                let n = ports
                    .iter()
                    .map(|(_, ch)| c.pulses(*ch).len() as u64)
                    .min()
                    .unwrap_or(0);
                (n, needed, (dose_s - elapsed).max(0.0))
            },
            index,
        )?;
        let dosed_s = (c.now_ticks - c.start_ticks) as f64 / self.tb();
        guard.energise(&rest)?;
        self.wait(r.settle_s)?;
        self.drain_into(&mut c, true)?;
        let ref_after = self.reference_count_after(c.now_ticks)?;
        let after = self.read_registers(ps, r, "after", profile.decimals)?;

        let reference_wh =
            (ref_after - ref_before) as f64 / station.reference.pulse_constant_imp_per_kwh * 1000.0;
        let unity = ps.setpoint.phases.iter().all(|p| p.current_lag_deg == 0.0);
        let read_from = format!("{:?}", r.read_from).to_lowercase();
        for (k, (name, ch)) in ports.iter().enumerate() {
            let pulses = c.pulses(*ch).len() as u64;
            let comparison = compare_register(
                before[k].1,
                after[k].1,
                profile.resolution_wh,
                pulses,
                f.meter_constant_imp_per_kwh,
                reference_wh,
            )
            .map_err(|e| StepStop::Bench(format!("port {name}: {e}")))?;
            // Reference (k = 2 on its certificate) and the register's resolution.
            let u_ref = station.reference.energy_uncertainty_k2_percent.at(unity) / 2.0;
            let u_res = register_resolution_u_percent(
                profile.resolution_wh,
                comparison.register_wh.max(profile.resolution_wh),
            );
            let expanded_u_percent = 2.0 * (u_ref * u_ref + u_res * u_res).sqrt();
            let decision = decide(
                self.req.procedure.decision_rule,
                comparison.error_vs_reference_percent,
                expanded_u_percent,
                limit.mpe_percent,
            );
            let consistent = comparison.consistent_with_pulses();
            rec.ports[k].pulses = samples(c.pulses(*ch));
            rec.ports[k].result = Some(PortResult::Register {
                read_from: read_from.clone(),
                before_kwh: before[k].0.clone(),
                after_kwh: after[k].0.clone(),
                pulses,
                dose_s: dosed_s,
                consistent_with_pulses: consistent,
                comparison,
                expanded_u_percent,
                limit: limit.clone(),
                decision,
            });
        }
        let disagreeing: Vec<String> = rec
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
            rec.message = Some(disagreeing.join("; "));
        }
        rec.physical_floor_s = 2.0 * r.settle_s + dose_s;
        Ok(())
    }

    fn pulse_check(
        &mut self,
        index: usize,
        ps: &PlannedStep,
        p: &PulseCheckStep,
        guard: &mut SourceGuard<'_>,
        rec: &mut StepRecord,
    ) -> Result<(), StepStop> {
        let mut c = self.settle(ps, p.settle_s, guard)?;
        let ports = self.ports();
        let period = ps.nominal_period_s;
        let tb = self.tb();
        self.collect(
            &mut c,
            period,
            period / 8.0,
            |c, elapsed| {
                Ok(ports
                    .iter()
                    .all(|(_, ch)| c.pulses(*ch).len() as u64 >= p.pulses)
                    || elapsed >= p.timeout_s)
            },
            |c, elapsed| {
                let n = ports
                    .iter()
                    .map(|(_, ch)| c.pulses(*ch).len() as u64)
                    .min()
                    .unwrap_or(0);
                (
                    n,
                    p.pulses,
                    time_to_pulses(c, &ports, p.pulses, period, elapsed, tb),
                )
            },
            index,
        )?;
        let mut dark = Vec::new();
        for (k, (name, ch)) in ports.iter().enumerate() {
            let seen = c.pulses(*ch).len() as u64;
            rec.ports[k].pulses = samples(c.pulses(*ch));
            rec.ports[k].result = Some(PortResult::PulseCheck {
                required: p.pulses,
                seen,
                passed: seen >= p.pulses,
            });
            if seen < p.pulses {
                dark.push(format!(
                    "port {name} (counter channel {ch}) gave {seen} of {} pulses",
                    p.pulses
                ));
            }
        }
        rec.physical_floor_s =
            p.settle_s + p.pulses as f64 * self.slowest_interval(&c, &ports, period);
        if !dark.is_empty() {
            return Err(StepStop::Bench(format!(
                "{} within {} s at {} PF {}, where one pulse was expected every {:.3} s: check that the scanning head sits over the port's LED and that the LED blinks",
                dark.join("; "),
                p.timeout_s,
                ps.load.current_name,
                ps.load.power_factor,
                period
            )));
        }
        Ok(())
    }

    /// Mean pulse interval of the slowest port, or the nominal period without pulses.
    fn slowest_interval(&self, c: &Collected, ports: &[(String, u8)], nominal: f64) -> f64 {
        ports
            .iter()
            .filter_map(|(_, ch)| {
                let p = c.pulses(*ch);
                (p.len() >= 2).then(|| {
                    (p[p.len() - 1].timestamp_ticks - p[0].timestamp_ticks) as f64
                        / self.tb()
                        / (p.len() - 1) as f64
                })
            })
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
            .unwrap_or(nominal)
    }

    fn starting(
        &mut self,
        index: usize,
        ps: &PlannedStep,
        s: &StartingStep,
        guard: &mut SourceGuard<'_>,
        rec: &mut StepRecord,
    ) -> Result<(), StepStop> {
        let f = self.req.fixture;
        let tau = starting_pulse_period_s(
            f.meter_constant_imp_per_kwh,
            ps.elements,
            f.nominal_voltage_v,
            ps.load.current_a,
        );
        let window = s.window_periods * tau;
        let mut c = self.settle(ps, s.settle_s, guard)?;
        let ports = self.ports();
        let tb = self.tb();
        let times = move |c: &Collected, ch: u8| -> Vec<f64> {
            c.pulses(ch)
                .iter()
                .map(|e| (e.timestamp_ticks - c.start_ticks) as f64 / tb)
                .collect()
        };
        // A port is decided once it has its pulses or the window for the next one passed.
        let decided = |c: &Collected, elapsed: f64, ch: u8| {
            let t = times(c, ch);
            t.len() as u64 >= s.pulses || elapsed - t.last().copied().unwrap_or(0.0) > window
        };
        self.collect(
            &mut c,
            tau,
            tau / 16.0,
            |c, elapsed| Ok(ports.iter().all(|(_, ch)| decided(c, elapsed, *ch))),
            |c, elapsed| {
                let n = ports
                    .iter()
                    .map(|(_, ch)| c.pulses(*ch).len() as u64)
                    .min()
                    .unwrap_or(0);
                (
                    n,
                    s.pulses,
                    time_to_pulses(c, &ports, s.pulses, tau, elapsed, tb),
                )
            },
            index,
        )?;
        for (k, (_, ch)) in ports.iter().enumerate() {
            let t = times(&c, *ch);
            let passed = starting_pulses_in_window(&t, s.pulses as usize, window).is_ok();
            rec.ports[k].pulses = samples(c.pulses(*ch));
            rec.ports[k].result = Some(PortResult::Starting {
                tau_s: tau,
                window_s: window,
                required: s.pulses,
                pulse_times_s: t,
                passed,
            });
        }
        rec.physical_floor_s =
            s.settle_s + s.pulses as f64 * self.slowest_interval(&c, &ports, tau);
        Ok(())
    }

    fn no_load(
        &mut self,
        index: usize,
        ps: &PlannedStep,
        n: &NoLoadStep,
        guard: &mut SourceGuard<'_>,
        rec: &mut StepRecord,
    ) -> Result<(), StepStop> {
        let duration = no_load_s(n, ps, self.req.fixture);
        let mut c = self.settle(ps, n.settle_s, guard)?;
        let ports = self.ports();
        // No pulse is expected: the remaining time is exact; look 0.25 s after the end.
        self.collect(
            &mut c,
            1.0,
            0.25,
            |_, elapsed| Ok(elapsed >= duration),
            |c, elapsed| {
                let n = ports
                    .iter()
                    .map(|(_, ch)| c.pulses(*ch).len() as u64)
                    .max()
                    .unwrap_or(0);
                (n, 0, (duration - elapsed).max(0.0))
            },
            index,
        )?;
        let tb = self.tb();
        for (k, (_, ch)) in ports.iter().enumerate() {
            let within: Vec<&EdgeEvent> = c
                .pulses(*ch)
                .iter()
                .filter(|e| (e.timestamp_ticks - c.start_ticks) as f64 / tb <= duration)
                .collect();
            rec.ports[k].pulses = samples(c.pulses(*ch));
            rec.ports[k].result = Some(PortResult::NoLoad {
                voltage_v: ps.load.voltage_v,
                duration_s: duration,
                pulses: within.len() as u64,
                max_pulses: n.max_pulses,
                passed: within.len() as u64 <= n.max_pulses,
            });
        }
        rec.physical_floor_s = n.settle_s + duration;
        Ok(())
    }

    fn accuracy(
        &mut self,
        index: usize,
        ps: &PlannedStep,
        a: &AccuracyStep,
        guard: &mut SourceGuard<'_>,
        rec: &mut StepRecord,
    ) -> Result<(), StepStop> {
        let needed = a.pulses * a.repeats as u64 + 1;
        let period = ps.nominal_period_s;
        // The first pulse may take a period plus the meter's update latency; after that a
        // pulse is due every period. Four periods and a second of silence is a dark LED.
        let stall_s = 4.0 * period + 1.0;
        let mut c = self.settle(ps, a.settle_s, guard)?;
        let ports = self.ports();
        let tb = self.tb();
        self.collect(
            &mut c,
            period,
            period / 8.0,
            |c, elapsed| {
                let mut all = true;
                for (name, ch) in &ports {
                    let p = c.pulses(*ch);
                    if (p.len() as u64) < needed {
                        all = false;
                        let last = p.last().map_or(0.0, |e| (e.timestamp_ticks - c.start_ticks) as f64 / tb);
                        if elapsed - last > stall_s {
                            return Err(StepStop::Bench(format!(
                                "no pulse from port {name} (counter channel {ch}) for {:.2} s at {} PF {}, where one was expected every {:.4} s ({} of {needed} pulses counted): check the scanning head over the port's LED and the LED itself",
                                elapsed - last,
                                ps.load.current_name,
                                ps.load.power_factor,
                                period,
                                p.len()
                            )));
                        }
                    }
                }
                Ok(all)
            },
            |c, elapsed| {
                let n = ports.iter().map(|(_, ch)| c.pulses(*ch).len() as u64).min().unwrap_or(0);
                (n, needed, time_to_pulses(c, &ports, needed, period, elapsed, tb))
            },
            index,
        )?;

        let station = self.req.station;
        let f = self.req.fixture;
        let limit = ps
            .limit
            .clone()
            .expect("accuracy steps are planned with a limit");
        let unity = ps.setpoint.phases.iter().all(|p| p.current_lag_deg == 0.0);
        for (k, (_, ch)) in ports.iter().enumerate() {
            let p = &c.pulses(*ch)[..needed as usize];
            let mut repeats = Vec::new();
            for j in 0..a.repeats as usize {
                let (open, close) = (&p[j * a.pulses as usize], &p[(j + 1) * a.pulses as usize]);
                let ref_counts = close.ref_count - open.ref_count;
                let gate_s = (close.timestamp_ticks - open.timestamp_ticks) as f64 / tb;
                let error_percent = match self.req.procedure.method {
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
                    error_percent,
                });
            }
            let errors: Vec<f64> = repeats.iter().map(|r| r.error_percent).collect();
            let statistics = repeat_statistics(&errors).expect("at least one repeat");
            let times: Vec<f64> = p.iter().map(|e| e.timestamp_ticks as f64 / tb).collect();
            let gate_mean = repeats.iter().map(|r| r.gate_s).sum::<f64>() / repeats.len() as f64;
            let budget = uncertainty_budget(&BudgetInputs {
                method: self.req.procedure.method,
                reference_u_k2_percent: match self.req.procedure.method {
                    ReferenceMethod::GatedReferenceCount => {
                        station.reference.energy_uncertainty_k2_percent.at(unity)
                    }
                    ReferenceMethod::Timed => station.source.power_uncertainty_k2_percent.at(unity),
                    ReferenceMethod::ReferenceCurrent => {
                        unreachable!("meter procedures refuse reference_current")
                    }
                },
                timebase_accuracy_ppm: station.counter.timebase_accuracy_ppm,
                timebase_resolution_s: 1.0 / tb,
                gate_s: gate_mean,
                ref_counts_per_gate: repeats.iter().map(|r| r.ref_counts as f64).sum::<f64>()
                    / repeats.len() as f64,
                pulse_interval_std_s: interval_scatter(&times),
                repeats: repeats.len(),
                repeat_std_percent: statistics.std_dev,
            });
            let decision = decide(
                self.req.procedure.decision_rule,
                statistics.mean,
                budget.expanded_u_percent,
                limit.mpe_percent,
            );
            rec.ports[k].pulses = samples(c.pulses(*ch));
            rec.ports[k].result = Some(PortResult::Accuracy {
                mean_interval_s: (times[times.len() - 1] - times[0]) / (times.len() - 1) as f64,
                error_percent: statistics.mean,
                expanded_u_percent: budget.expanded_u_percent,
                repeats,
                statistics,
                budget,
                limit: limit.clone(),
                decision,
            });
        }
        rec.physical_floor_s =
            a.settle_s + needed as f64 * self.slowest_interval(&c, &ports, period);
        Ok(())
    }
}
