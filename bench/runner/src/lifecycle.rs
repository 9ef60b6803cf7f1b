//! The one run lifecycle: plan and check everything before anything is switched on,
//! begin one record per position, identify the instruments, run each step on every
//! position still measuring, apply the stop rules, retest, switch off and conclude. It
//! does not know what kind of device it measures: that is the [`Measuring`] seam.

use crate::ambient;
use crate::events::{EventKind, Observer, PositionStart, StepOutline};
use crate::measure::{Ctx, Device, Measuring, Slot};
use crate::plan::{Action, PlannedStep, plan};
use crate::pulses::PulseMeasuring;
use crate::readings::ReadingMeasuring;
use crate::record::*;
use crate::safety::SourceGuard;
use crate::{
    Bench, Finished, Mounted, RunError, RunRequest, Session, StepStop, load_difference,
    station_steps,
};
use chrono::Utc;
use meterbench_metrology::ReferenceMethod;
use meterbench_procedure::{DataError, DutFixture, DutProcedure, OutsidePolicy, Pos};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Schema of the session record: which runs one load measured.
pub const SESSION_SCHEMA: &str = "meterbench.session/1";

/// A position of the session and its run.
struct Run {
    record: RunRecord,
    path: PathBuf,
    /// How the position's run ended, once it has: it takes part in no further step.
    ended: Option<(Outcome, String)>,
    /// When it ended, s of the session's bench time.
    ended_at_s: Option<f64>,
    /// Steps carried over from a stored record this run continues.
    carried_steps: usize,
    /// A write of its record failed: the run is measured, its record is not on disk.
    unwritten: Option<std::io::Error>,
}

/// Run a procedure on every mounted position at once. Data errors (including setpoints
/// beyond ratings, calibrations past due and positions the rack does not have) are
/// returned before anything is switched on; everything else ends in one record per
/// position with its outcome.
pub fn run<'a>(
    req: &'a RunRequest<'a>,
    bench: Bench<'a>,
    mounted: Vec<Mounted<'a>>,
    observer: &'a mut dyn Observer,
) -> Result<Session, RunError> {
    let planned = plan(req.procedure, req.fixture, req.station)?;
    req.station.check_calibration_due(req.today)?;
    check_positions(req, &mounted)?;
    let steps: Vec<&PlannedStep> = match &req.only_steps {
        None => planned.iter().collect(),
        Some(only) => {
            for &k in only {
                if k >= planned.len() {
                    return Err(DataError::at(
                        &req.procedure.file().path,
                        Pos::default(),
                        format!("the procedure has no step {k}"),
                    )
                    .into());
                }
            }
            // A check computed from a point that is measured again is computed again.
            let remeasured: Vec<&str> = only.iter().map(|&k| planned[k].name.as_str()).collect();
            planned
                .iter()
                .filter(|p| {
                    only.contains(&p.index)
                        || matches!(&p.action, Action::LoadDifference(d)
                            if remeasured.contains(&d.balanced.as_str())
                                || d.single_phase.iter().any(|s| remeasured.contains(&s.as_str())))
                })
                .collect()
        }
    };

    let wall = Instant::now();
    let started = Utc::now();
    let stamp = started.format("%Y%m%dT%H%M%S%.3fZ").to_string();
    let (session_id, session_path) = claim(
        &req.reports_dir.join("sessions"),
        &format!("{stamp}-{}", clean(&req.station.id)),
        ".json",
    )
    .map_err(|source| RunError::Record {
        path: req.reports_dir.join("sessions"),
        source,
    })?;
    // On a rack of several positions, run ids and prompts name the position.
    let rack = req.station.rack.positions.len() > 1;

    let Bench {
        source,
        reference,
        counters,
        clock,
        climate,
        operator,
    } = bench;
    let mut devices = Vec::new();
    let mut sensors = Vec::new();
    let mut priors = Vec::new();
    for m in mounted {
        devices.push(Device {
            position: m.position,
            serial: m.serial,
            software: m.software,
        });
        sensors.push(m.sensor);
        priors.push(m.prior);
    }
    let mut measuring: Box<dyn Measuring + '_> = match (req.procedure, req.fixture) {
        (DutProcedure::Meter(_), DutFixture::Meter(f)) => {
            let heads: Vec<_> = devices
                .iter()
                .map(|d| {
                    req.station
                        .rack
                        .position(d.position)
                        .expect("checked")
                        .heads
                        .clone()
                })
                .collect();
            Box::new(PulseMeasuring::new(req, f, reference, counters, &heads))
        }
        (DutProcedure::CurrentSensor(p), DutFixture::CurrentSensor(f)) => {
            let u = req
                .station
                .source
                .current_uncertainty_k2_percent
                .as_ref()
                .map(|(u, _)| *u)
                .expect("checked by the plan");
            Box::new(ReadingMeasuring::new(
                f,
                p.decision_rule,
                p.test_uncertainty_ratio.min,
                u,
                sensors,
            ))
        }
        _ => unreachable!("the plan refuses a procedure of another kind"),
    };

    // Every record exists on disk before the first instrument command.
    let mut runs: Vec<Run> = Vec::new();
    for (d, device) in devices.iter().enumerate() {
        let mut used = measuring.instruments(d);
        // The climate sensor measures the air of every point when there are reference
        // conditions to keep.
        if req.procedure.reference_conditions().is_some() {
            used.push("climate".to_string());
        }
        let instruments: Vec<InstrumentRecord> = req
            .station
            .bindings()
            .into_iter()
            .filter(|b| used.contains(&b.id))
            .map(|b| InstrumentRecord::declared(b, req.today))
            .collect();
        let base = run_id_base(
            &stamp,
            &req.station.id,
            rack.then_some(device.position),
            &device.serial,
        );
        let (run_id, folder) =
            claim(&req.reports_dir, &base, "").map_err(|source| RunError::Record {
                path: req.reports_dir.clone(),
                source,
            })?;
        let mut record = RunRecord::begin(
            &run_id,
            req.station,
            subject(req, &device.serial, instruments),
        );
        record.counter_timebase_hz = measuring.timebase_hz(d);
        record.session_id = Some(session_id.clone());
        record.position = Some(PositionRecord {
            id: device.position,
            of: devices.len(),
            rack: req.station.rack.positions.len(),
        });
        let mut carried_steps = 0;
        if let Some(prior) = priors[d].take() {
            // A new run (its own start, its own timing) that carries the stored one's steps.
            record.amends = Some(prior.run_id.clone());
            carried_steps = prior.steps.len();
            record.carried_steps = carried_steps;
            record.steps = prior.steps;
            record.deviations = prior.deviations;
            record.log = prior.log;
            record.log.push(LogEntry {
                t_s: 0.0,
                message: format!(
                    "continued in session {session_id} (run {run_id}), amending run {}",
                    prior.run_id
                ),
            });
        }
        if let Some(op) = operator.as_deref() {
            record.answered_by = Some(op.answered_by(Some(device.position)));
        }
        record.order = req.order.clone();
        record.signatory = req.signatory.clone();
        let path = folder.join("record.json");
        write(&record, &path)?;
        runs.push(Run {
            record,
            path,
            ended: None,
            ended_at_s: None,
            carried_steps,
            unwritten: None,
        });
    }
    let in_progress: Vec<(&RunRecord, &Path)> =
        runs.iter().map(|r| (&r.record, r.path.as_path())).collect();
    write_session(
        req,
        &session_id,
        &session_path,
        &started.to_rfc3339(),
        &in_progress,
        false,
    )
    .map_err(|source| RunError::Record {
        path: session_path.clone(),
        source,
    })?;

    let t_start = clock.now();
    let mut ctx = Ctx {
        req,
        clock,
        climate,
        observer,
        operator,
        guard: SourceGuard::new(source),
        t_start,
        devices,
        rack,
        switches: Vec::new(),
        step_under_way: None,
    };
    ctx.emit(EventKind::SessionStarted {
        session_id: session_id.clone(),
        station: req.station.id.clone(),
        procedure: format!("{} {}", req.procedure.id(), req.procedure.version()),
        positions: ctx
            .devices
            .iter()
            .zip(&runs)
            .map(|(d, r)| PositionStart {
                position: d.position,
                serial: d.serial.clone(),
                run_id: r.record.run_id.clone(),
            })
            .collect(),
        steps: steps
            .iter()
            .map(|ps| StepOutline {
                index: ps.index,
                name: ps.name.clone(),
                kind: ps.kind(),
                expected_s: ps.expected_s,
            })
            .collect(),
    });

    for note in &req.startup_notes {
        ctx.emit(EventKind::Log {
            position: None,
            message: note.clone(),
        });
        for run in &mut runs {
            run.record.log.push(LogEntry {
                t_s: 0.0,
                message: note.clone(),
            });
        }
    }
    // Before anything else, the source in a known safe state: output off, confirmed.
    let safe = ctx.guard.make_safe();
    let switched = ctx.take_switches();
    for run in &mut runs {
        run.record.source.switches.extend(switched.iter().cloned());
    }
    match safe {
        Ok(found_on) => {
            if found_on {
                let message =
                    "the source was left energised by an earlier run; switched off".to_string();
                ctx.emit(EventKind::Log {
                    position: None,
                    message: message.clone(),
                });
                for run in &mut runs {
                    run.record.source.found_on = true;
                    run.record.log.push(LogEntry {
                        t_s: 0.0,
                        message: message.clone(),
                    });
                }
            }
        }
        Err(e) => {
            for run in &mut runs {
                run.ended = Some((
                    Outcome::Error,
                    format!("cannot put the source in a safe state (output off): {e}"),
                ));
            }
        }
    }

    // Identify every instrument by what it reports on the wire.
    let identified = (|| {
        let mut ids = vec![("source".to_string(), ctx.guard.identity()?)];
        ids.extend(measuring.prepare(&mut ctx)?);
        if let Some(c) = ctx.climate.as_deref_mut() {
            ids.push(("climate".to_string(), c.identity()?));
        }
        Ok::<_, meterbench_instruments::InstrumentError>(ids)
    })();
    match identified {
        Ok(ids) => {
            for run in &mut runs {
                for (id, identity) in &ids {
                    if let Some(i) = run.record.instruments.iter_mut().find(|i| &i.id == id) {
                        i.reported(identity.clone());
                    }
                }
            }
        }
        Err(e) => {
            for run in runs.iter_mut().filter(|r| r.ended.is_none()) {
                run.ended = Some((Outcome::Error, e.to_string()));
            }
        }
    }

    // The air before anything is switched on: outside the reference conditions, a
    // procedure that says so refuses to start.
    if let Some(reference) = req.procedure.reference_conditions() {
        let mut setup = ambient::setup(&ctx, reference);
        let read = if ctx.climate.is_some() {
            ambient::read(&mut ctx).map_err(|e| e.to_string())
        } else {
            Err("no climate sensor is bound".to_string())
        };
        let refusal = match read {
            Ok(Some(r)) => {
                setup.at_start = Some(r);
                match ambient::outside(reference, &r) {
                    Some(why) if reference.outside == OutsidePolicy::Refuse => Some(format!(
                        "the air is outside the procedure's reference conditions ({why}; they are {}, {}): nothing was switched on; bring the room into them and start again",
                        reference.describe(),
                        reference.source
                    )),
                    Some(why) => {
                        let message = format!(
                            "the air is outside the reference conditions at the start ({why}); every point measured so gets no statement of conformity"
                        );
                        ctx.emit(EventKind::Log {
                            position: None,
                            message: message.clone(),
                        });
                        for run in &mut runs {
                            run.record.log.push(LogEntry {
                                t_s: r.t_s,
                                message: message.clone(),
                            });
                        }
                        None
                    }
                    None => None,
                }
            }
            Ok(None) => Some("no climate sensor is bound".to_string()),
            Err(e) => Some(format!(
                "cannot read the air's temperature and humidity, which the procedure's reference conditions need: {e}; nothing was switched on"
            )),
        };
        for run in &mut runs {
            run.record.ambient = Some(setup.clone());
            if let Some(why) = &refusal
                && run.ended.is_none()
            {
                run.ended = Some((Outcome::Error, why.clone()));
            }
        }
    }

    let (energised, closing): (Vec<&PlannedStep>, Vec<&PlannedStep>) = steps
        .iter()
        .copied()
        .partition(|ps| !ps.action.after_switch_off());
    let mut session_stop = false;
    for ps in &energised {
        let active: Vec<usize> = (0..runs.len())
            .filter(|&d| runs[d].ended.is_none())
            .collect();
        if active.is_empty() || session_stop {
            break;
        }
        let attempt = next_attempt(&runs, &active, ps);
        session_stop = step(
            &mut ctx,
            measuring.as_mut(),
            &mut runs,
            ps,
            &active,
            attempt,
        );
    }

    // A second measurement of the points a position failed or could not decide.
    if req.retest_failed && !session_stop {
        for ps in energised.iter().filter(|ps| ps.kind().is_point()) {
            let again: Vec<usize> = (0..runs.len())
                .filter(|&d| runs[d].ended.is_none())
                .filter(|&d| {
                    last_attempt(&runs[d].record, ps.index)
                        .is_some_and(|s| s.outcome == Outcome::Fail)
                })
                .collect();
            if again.is_empty() {
                continue;
            }
            for &d in &again {
                let before = last_attempt(&runs[d].record, ps.index).expect("filtered");
                let deviation = Deviation::retest_after(before, None);
                runs[d].record.deviations.push(deviation);
            }
            let attempt = next_attempt(&runs, &again, ps);
            session_stop = step(&mut ctx, measuring.as_mut(), &mut runs, ps, &again, attempt);
            if session_stop {
                break;
            }
        }
    }

    // Every way out passes here with the guard still alive; switch off and confirm.
    switch_off(&mut ctx, &mut runs);
    for ps in &closing {
        let active: Vec<usize> = (0..runs.len())
            .filter(|&d| runs[d].ended.is_none())
            .collect();
        if active.is_empty() {
            break;
        }
        let attempt = next_attempt(&runs, &active, ps);
        step(
            &mut ctx,
            measuring.as_mut(),
            &mut runs,
            ps,
            &active,
            attempt,
        );
    }
    measuring.release();

    let bench_s = ctx.elapsed_s();
    let mut finished = Vec::new();
    let mut unwritten = None;
    for (d, mut run) in runs.into_iter().enumerate() {
        let rec = &mut run.record;
        // Each position's own time: until it ended (a position taken out early is not
        // charged the others' time); a continued record counts this session's steps.
        rec.timing = Timing {
            bench_duration_s: run.ended_at_s.unwrap_or(bench_s),
            physical_floor_s: rec.steps[run.carried_steps..]
                .iter()
                .map(|s| s.physical_floor_s)
                .sum(),
            wall_s: wall.elapsed().as_secs_f64(),
            counter_polls: measuring.polls(),
        };
        rec.conclude(run.ended.take());
        // Every record is finished on disk; one that cannot be written does not stop
        // the others', and is reported when all are done.
        if let Err(source) = rec.write_final(&run.path) {
            ctx.emit(EventKind::Log {
                position: Some(ctx.devices[d].position),
                message: format!("cannot write the record {}: {source}", run.path.display()),
            });
            unwritten.get_or_insert((run.path.clone(), source));
        } else if let Some(source) = run.unwritten.take() {
            unwritten.get_or_insert((RunRecord::journal_path(&run.path), source));
        }
        ctx.emit(EventKind::PositionFinished {
            position: ctx.devices[d].position,
            run_id: rec.run_id.clone(),
            outcome: rec.outcome,
            reason: rec.outcome_reason.clone(),
        });
        finished.push(Finished {
            record: run.record,
            record_path: run.path,
        });
    }
    let session = Session {
        session_id: session_id.clone(),
        session_path: session_path.clone(),
        runs: finished,
    };
    let done: Vec<(&RunRecord, &Path)> = session
        .runs
        .iter()
        .map(|r| (&r.record, r.record_path.as_path()))
        .collect();
    write_session(
        req,
        &session_id,
        &session_path,
        &started.to_rfc3339(),
        &done,
        true,
    )
    .map_err(|source| RunError::Record {
        path: session_path,
        source,
    })?;
    ctx.emit(EventKind::SessionFinished {
        outcome: session.outcome(),
        bench_duration_s: bench_s,
    });
    if let Some((path, source)) = unwritten {
        return Err(RunError::Record { path, source });
    }
    Ok(session)
}

/// One step on the `active` positions: run it, record each position's result, apply
/// the stop rules. True when the step stopped the whole session (a bench fault, a stop).
fn step(
    ctx: &mut Ctx<'_, '_>,
    measuring: &mut dyn Measuring,
    runs: &mut [Run],
    ps: &PlannedStep,
    active: &[usize],
    attempt: u32,
) -> bool {
    let started = ctx.elapsed_s();
    ctx.step_under_way = Some(crate::measure::StepUnderWay {
        index: ps.index,
        started_s: started,
        expected_s: ps.expected_s,
    });
    ctx.emit(EventKind::StepStarted {
        index: ps.index,
        name: ps.name.clone(),
        kind: ps.kind(),
        attempt,
        positions: active.iter().map(|&d| ctx.devices[d].position).collect(),
        expected_s: ps.expected_s,
    });
    let mut slots: Vec<Slot> = active
        .iter()
        .map(|&d| Slot {
            device: d,
            step: StepRecord {
                index: ps.index,
                name: ps.name.clone(),
                kind: ps.kind(),
                attempt,
                load: ps.load.clone(),
                setpoint: ps.setpoint,
                started_s: started,
                duration_s: 0.0,
                physical_floor_s: 0.0,
                outcome: Outcome::InProgress,
                message: None,
                ports: measuring.port_records(d),
                source_switches: Vec::new(),
                ambient: None,
            },
        })
        .collect();
    // A point's air, read as it begins and as it ends.
    let reference = ctx
        .req
        .procedure
        .reference_conditions()
        .filter(|_| ambient::measured_in_air(ps.kind()));
    let mut air = Vec::new();
    let mut air_unread = false;
    let before = match reference {
        Some(_) => ambient::read(ctx).map(|r| air.extend(r)),
        None => Ok(()),
    };
    let mut result = match before {
        Err(e) => Ok(Err(StepStop::Instrument(e))),
        Ok(()) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let fixture = ctx.req.fixture.as_meter();
            match &ps.action {
                Action::Identity(i) => station_steps::identity(
                    ps,
                    i,
                    fixture.expect("identity steps are meter steps"),
                    &mut slots,
                    ctx,
                ),
                Action::Inspection(i) => station_steps::inspection(
                    ps,
                    i,
                    fixture.expect("inspection steps are meter steps"),
                    &mut slots,
                    ctx,
                ),
                Action::LoadDifference(check) => {
                    let records: Vec<&RunRecord> = runs.iter().map(|r| &r.record).collect();
                    let rule = match ctx.req.procedure {
                        DutProcedure::Meter(p) => p.decision_rule,
                        DutProcedure::CurrentSensor(p) => p.decision_rule,
                    };
                    load_difference::compare(check, rule, &mut slots, &records);
                    Ok(())
                }
                _ => measuring.measure(ps, &mut slots, ctx),
            }
        })),
    };
    let point_air = match (reference, &result) {
        (Some(reference), Ok(Ok(()))) => match ambient::read(ctx) {
            Ok(r) => {
                air.extend(r);
                Some((reference, ambient::over_point(reference, air)))
            }
            Err(e) => {
                result = Ok(Err(StepStop::Instrument(e)));
                air_unread = true;
                None
            }
        },
        _ => None,
    };
    // A single-phase check compares points already measured: outside air there leaves
    // the difference without a statement too.
    let compared_outside: Vec<Option<String>> = match &ps.action {
        Action::LoadDifference(d) => slots
            .iter()
            .map(|slot| {
                let latest = runs[slot.device].record.latest_attempts();
                std::iter::once(&d.balanced)
                    .chain(&d.single_phase)
                    .filter_map(|name| latest.iter().find(|s| &s.name == name))
                    .find_map(|s| s.ambient.as_ref().and_then(|a| a.outside.clone()))
            })
            .collect(),
        _ => vec![None; slots.len()],
    };
    let stop = match result {
        Ok(Ok(())) => None,
        Ok(Err(StepStop::Aborted)) => Some((
            Outcome::Aborted,
            // The abort flag is set by the panel's Stop and by a signal to the bench (Ctrl-C
            // at the terminal, a service manager's SIGTERM): the record cannot tell which.
            "stopped by the operator or a signal".to_string(),
        )),
        Ok(Err(StepStop::Instrument(e))) => Some((Outcome::Error, e.to_string())),
        Ok(Err(StepStop::Bench(m) | StepStop::Position(m))) => Some((Outcome::Error, m)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            let _ = ctx.guard.off_because("internal error");
            Some((Outcome::Error, format!("internal error (panic): {what}")))
        }
    };
    let now = ctx.elapsed_s();
    let word = measuring.port_word();
    let switched = ctx.take_switches();
    for (k, slot) in slots.iter_mut().enumerate() {
        slot.step.source_switches = switched.clone();
        runs[slot.device]
            .record
            .source
            .switches
            .extend(switched.iter().cloned());
        slot.step.duration_s = now - started;
        if let Some((reference, air)) = &point_air {
            if let Some(why) = &air.outside
                && stop.is_none()
            {
                ambient::mark_outside(&mut slot.step, reference, why);
            }
            slot.step.ambient = Some(air.clone());
        }
        // The air could not be read as the point ended: nothing is stated of it.
        if air_unread {
            for port in &mut slot.step.ports {
                if let Some(r) = port.result.as_mut() {
                    r.withdraw_statement();
                }
            }
        }
        let compared = compared_outside.get(k).cloned().flatten();
        if let (Some(why), Some(reference), None) =
            (&compared, ctx.req.procedure.reference_conditions(), &stop)
        {
            ambient::mark_outside(&mut slot.step, reference, why);
        }
        match &stop {
            Some((outcome, message)) => {
                slot.step.outcome = *outcome;
                slot.step.message = Some(message.clone());
            }
            None if slot.is_faulted() => {}
            None => slot.step.conclude_from_ports(word),
        }
        // A functional test (starting, no load) states pass or fail without a limit to
        // withdraw: in air outside the reference conditions it states nothing.
        if slot.step.outcome == Outcome::Pass
            && slot
                .step
                .ambient
                .as_ref()
                .is_some_and(|a| a.outside.is_some())
        {
            slot.step.outcome = Outcome::NotDecidable;
        }
    }
    for slot in slots {
        let run = &mut runs[slot.device];
        let mut shown = slot.step.clone();
        for p in &mut shown.ports {
            p.pulses.clear();
        }
        ctx.emit(EventKind::StepFinished {
            position: ctx.devices[slot.device].position,
            step: Box::new(shown),
        });
        let outcome = slot.step.outcome;
        let message = slot.step.message.clone().unwrap_or_default();
        run.ended = match outcome {
            Outcome::Error | Outcome::Aborted => {
                Some((outcome, format!("step `{}`: {message}", ps.name)))
            }
            // Software that is not the certified one makes every measurement moot: no
            // energy test runs on that device.
            Outcome::Fail if ps.kind() == StepKind::Identity => Some((
                Outcome::Fail,
                format!(
                    "software identity not certified ({}): {message}; no energy test was run",
                    ps.name
                ),
            )),
            // Broken seals or a wrong serial: the unit is not the one, or not intact.
            Outcome::Fail if ps.kind() == StepKind::Inspection => Some((
                Outcome::Fail,
                format!(
                    "inspection failed ({}): {message}; no energy test was run",
                    ps.name
                ),
            )),
            _ => None,
        };
        // Keep what is measured so far on disk: a crash loses at most the step under way.
        // A journal that cannot be written (a full disk) stops no run: the record is
        // written whole at the end, and the failure is reported.
        if let Err(e) = RunRecord::journal_step(&run.path, &slot.step)
            && run.unwritten.is_none()
        {
            ctx.emit(EventKind::Log {
                position: Some(ctx.devices[slot.device].position),
                message: format!(
                    "cannot write the record's journal {}: {e}",
                    RunRecord::journal_path(&run.path).display()
                ),
            });
            run.unwritten = Some(e);
        }
        if run.ended.is_some() {
            run.ended_at_s = Some(now);
        }
        run.record.steps.push(slot.step);
    }
    stop.is_some()
}

/// Switch the source off and confirm it by a read-back; every record says whether it was
/// confirmed, and an output that does not confirm off ends every position as ERROR.
fn switch_off(ctx: &mut Ctx<'_, '_>, runs: &mut [Run]) {
    let confirmed = ctx.guard.off();
    let switched = ctx.take_switches();
    for run in runs.iter_mut() {
        run.record.source.switches.extend(switched.iter().cloned());
    }
    ctx.emit(EventKind::Load {
        on: false,
        setpoint: Default::default(),
    });
    let t_s = ctx.elapsed_s();
    for run in runs.iter_mut() {
        run.record.source.off_confirmed = Some(confirmed.is_ok());
        match &confirmed {
            Ok(()) => run.record.log.push(LogEntry {
                t_s,
                message: "source output off".into(),
            }),
            Err(e) => {
                let message = format!("could not confirm the source is off: {e}");
                run.record.log.push(LogEntry {
                    t_s,
                    message: message.clone(),
                });
                run.ended = Some((Outcome::Error, message));
            }
        }
    }
}

/// The attempt a step is on for these positions: one more than any earlier.
fn next_attempt(runs: &[Run], active: &[usize], ps: &PlannedStep) -> u32 {
    active
        .iter()
        .filter_map(|&d| last_attempt(&runs[d].record, ps.index).map(|s| s.attempt))
        .max()
        .map_or(1, |a| a + 1)
}

/// The latest attempt of step `index` in a record.
fn last_attempt(record: &RunRecord, index: usize) -> Option<&StepRecord> {
    record.steps.iter().rev().find(|s| s.index == index)
}

/// Everything about the mounted positions that must hold before switching on.
fn check_positions(req: &RunRequest<'_>, mounted: &[Mounted<'_>]) -> Result<(), DataError> {
    let station = req.station;
    let path = &station.file.path;
    if mounted.is_empty() {
        return Err(DataError::at(
            path,
            Pos::default(),
            "no position to measure: mount a device on at least one position",
        ));
    }
    for (k, m) in mounted.iter().enumerate() {
        let Some(p) = station.rack.position(m.position) else {
            let ids: Vec<String> = station
                .rack
                .positions
                .iter()
                .map(|p| p.id.to_string())
                .collect();
            return Err(DataError::at(
                path,
                Pos::default(),
                format!(
                    "station `{}` has no position {} (its rack: {})",
                    station.id,
                    m.position,
                    ids.join(", ")
                ),
            ));
        };
        if mounted[..k].iter().any(|o| o.position == m.position) {
            return Err(DataError::at(
                path,
                p.pos,
                format!("position {} is named twice", m.position),
            ));
        }
        if m.serial.trim().is_empty() {
            return Err(DataError::at(
                path,
                p.pos,
                format!("the device at position {} has no serial number", m.position),
            ));
        }
        if matches!(req.fixture, DutFixture::CurrentSensor(_)) && m.sensor.is_none() {
            return Err(DataError::at(
                path,
                p.pos,
                format!(
                    "a current sensor is read over its own port, but position {} binds none (its `p1:`)",
                    m.position
                ),
            ));
        }
        if let DutFixture::Meter(f) = req.fixture
            && let Some(port) = f.ports.iter().find(|q| usize::from(q.head) > p.heads.len())
        {
            return Err(DataError::at(
                path,
                p.pos,
                format!(
                    "position {} has {} scanning head(s); fixture `{}` puts port {} under head {}",
                    m.position,
                    p.heads.len(),
                    f.id,
                    port.name,
                    port.head
                ),
            ));
        }
    }
    Ok(())
}

/// The parts of a position's record known before anything is switched on.
fn subject(req: &RunRequest<'_>, serial: &str, instruments: Vec<InstrumentRecord>) -> RunSubject {
    let fx = req.fixture;
    let (accuracy_class, meter_constant, method, decision_rule) = match (fx, req.procedure) {
        (DutFixture::Meter(f), DutProcedure::Meter(p)) => (
            f.accuracy_class.clone(),
            f.meter_constant_imp_per_kwh,
            p.method,
            p.decision_rule,
        ),
        (DutFixture::CurrentSensor(f), DutProcedure::CurrentSensor(p)) => (
            format!("±{} %", f.limit_percent),
            0.0,
            ReferenceMethod::ReferenceCurrent,
            p.decision_rule,
        ),
        _ => unreachable!("the plan refuses a procedure of another kind"),
    };
    let procedure = req.procedure;
    RunSubject {
        instruments,
        fixture: FileRef::of(fx.id(), fx.file()),
        dut: DutRecord {
            manufacturer: fx.manufacturer().to_string(),
            device_type: fx.device_type().to_string(),
            serial_number: serial.to_string(),
            accuracy_class,
            meter_constant_imp_per_kwh: meter_constant,
            ports: fx.port_names(),
            kind: fx.kind(),
        },
        procedure: ProcedureRef {
            id: procedure.id().to_string(),
            version: procedure.version().to_string(),
            title: procedure.title().to_string(),
            path: procedure.file().path.display().to_string(),
            sha256: procedure.file().sha256.clone(),
            method,
            decision_rule,
            document: procedure.document(),
            test_uncertainty_ratio: Some(procedure.test_uncertainty_ratio().clone()),
            planned_steps: procedure.step_names(),
        },
        counter_timebase_hz: 0.0,
        reference_imp_per_kwh: match fx {
            DutFixture::Meter(_) => req.station.reference.pulse_constant_imp_per_kwh,
            DutFixture::CurrentSensor(_) => 0.0,
        },
    }
}

/// A serial number or station id as a file name: letters, digits, - and _.
/// A run's id, also its folder's name: its start time (`stamp`), the station, its position
/// when the station is a rack, and the device's serial number (a `-2`, `-3` … follows when
/// the name is taken).
pub fn run_id_base(
    stamp: &str,
    station_id: &str,
    rack_position: Option<u32>,
    serial: &str,
) -> String {
    match rack_position {
        Some(p) => format!("{stamp}-{}-p{p}-{}", clean(station_id), clean(serial)),
        None => format!("{stamp}-{}-{}", clean(station_id), clean(serial)),
    }
}

fn clean(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Claim a fresh name under `dir`: `base` (plus `suffix`), or `base-2`, `base-3`, … when
/// another run took it first. A folder (empty `suffix`) or a file is created atomically,
/// so two runs never share one. The name without the suffix, and its path.
fn claim(dir: &Path, base: &str, suffix: &str) -> std::io::Result<(String, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    for n in 1u32.. {
        let name = if n == 1 {
            base.to_string()
        } else {
            format!("{base}-{n}")
        };
        let path = dir.join(format!("{name}{suffix}"));
        let made = if suffix.is_empty() {
            std::fs::create_dir(&path)
        } else {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map(|_| ())
        };
        match made {
            Ok(()) => return Ok((name, path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    unreachable!("u32 names run out")
}

fn write(record: &RunRecord, path: &Path) -> Result<(), RunError> {
    record
        .write_atomically(path)
        .map_err(|source| RunError::Record {
            path: path.to_path_buf(),
            source,
        })
}

#[derive(Serialize)]
struct SessionRecord<'s> {
    schema: &'static str,
    session_id: &'s str,
    station: &'s str,
    procedure: String,
    started_utc: String,
    finished_utc: Option<String>,
    outcome: Outcome,
    runs: Vec<SessionRun<'s>>,
}

#[derive(Serialize)]
struct SessionRun<'s> {
    position: Option<u32>,
    serial_number: &'s str,
    run_id: &'s str,
    outcome: Outcome,
    reason: Option<&'s str>,
    /// The run's record, relative to the reports folder.
    record: String,
}

/// The session record: which runs one load measured, and how each ended (written when
/// the runs begin, and again when they are over).
fn write_session(
    req: &RunRequest<'_>,
    session_id: &str,
    path: &Path,
    started_utc: &str,
    runs: &[(&RunRecord, &Path)],
    finished: bool,
) -> std::io::Result<()> {
    let rec = SessionRecord {
        schema: SESSION_SCHEMA,
        session_id,
        station: &req.station.id,
        procedure: format!("{} {}", req.procedure.id(), req.procedure.version()),
        started_utc: started_utc.to_string(),
        finished_utc: finished.then(|| Utc::now().to_rfc3339()),
        outcome: if finished {
            crate::worst(runs.iter().map(|(r, _)| r.outcome))
        } else {
            Outcome::InProgress
        },
        runs: runs
            .iter()
            .map(|(r, p)| SessionRun {
                position: r.position.as_ref().map(|p| p.id),
                serial_number: &r.dut.serial_number,
                run_id: &r.run_id,
                outcome: r.outcome,
                reason: r.outcome_reason.as_deref(),
                record: p
                    .strip_prefix(&req.reports_dir)
                    .unwrap_or(p)
                    .display()
                    .to_string(),
            })
            .collect(),
    };
    let tmp = path.with_extension("json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(&rec).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(&tmp, path)
}
