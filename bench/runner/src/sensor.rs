//! Running a current sensor procedure: per point, the source drives the current, the
//! bench waits for it to settle, then takes the sensor's next telegrams whose measuring
//! second lies wholly inside the settled interval and compares each channel's reading
//! with the reference current. The same record, verdict rules and safety guard as a
//! meter run; only the device kind differs.

use crate::events::{Event, Observer};
use crate::record::*;
use crate::safety::SourceGuard;
use crate::{Finished, RunError, run_id};
use chrono::NaiveDate;
use meterbench_instruments::{
    AcSource, Clock, CurrentSensor, InstrumentError, Phase, PhaseSetpoint, SensorReading,
    SourceSetpoint,
};
use meterbench_metrology::{ReferenceMethod, current_budget, current_error_percent, decide};
use meterbench_procedure::{DataError, SensorFixture, SensorProcedure, SensorStep, Station};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often the bench looks for a telegram, s of bench time: the stamp of a telegram
/// is at most this late, well inside the fixture's latency allowance.
const LOOK_EVERY_S: f64 = 0.1;

/// Wall time without a telegram after which the line counts as drained: far below the
/// 1 s period, far above the time a telegram takes to arrive once sent.
const QUIET: Duration = Duration::from_millis(30);

/// Wall time the bench waits for a telegram that is due before it looks again.
const TELEGRAM_WAIT: Duration = Duration::from_millis(50);

pub struct SensorRunRequest<'a> {
    pub procedure: &'a SensorProcedure,
    pub fixture: &'a SensorFixture,
    pub station: &'a Station,
    pub dut_serial: String,
    pub reports_dir: PathBuf,
    pub abort: Arc<AtomicBool>,
    pub today: NaiveDate,
}

pub struct SensorInstruments<'a> {
    pub source: &'a mut dyn AcSource,
    pub clock: &'a mut dyn Clock,
    pub sensor: &'a mut dyn CurrentSensor,
}

/// A telegram with the bench time it was taken in.
struct Stamped {
    at_s: f64,
    reading: SensorReading,
}

enum Stop {
    Instrument(InstrumentError),
    Bench(String),
    Aborted,
}

impl From<InstrumentError> for Stop {
    fn from(e: InstrumentError) -> Self {
        Stop::Instrument(e)
    }
}

fn setpoint(fixture: &SensorFixture, step: &SensorStep) -> SourceSetpoint {
    let mut s = SourceSetpoint {
        frequency_hz: fixture.frequency_hz,
        phases: [PhaseSetpoint::default(); 3],
    };
    for ph in Phase::ALL {
        s.phases[ph.index()] = PhaseSetpoint {
            voltage_v: fixture.nominal_voltage_v,
            current_a: if step.phases.contains(&ph) {
                step.current_a
            } else {
                0.0
            },
            current_lag_deg: 0.0,
        };
    }
    s
}

/// Everything checked before anything is switched on.
fn check(req: &SensorRunRequest<'_>) -> Result<f64, DataError> {
    req.procedure.check_against(req.fixture)?;
    req.station.check_calibration_due(req.today)?;
    for s in &req.procedure.steps {
        if s.current_a > req.station.source.max_current_a {
            return Err(DataError::at(
                &req.procedure.file.path,
                s.pos,
                format!(
                    "step `{}` asks {} A, beyond the source's rating of {} A; refused before anything is switched on",
                    s.name, s.current_a, req.station.source.max_current_a
                ),
            ));
        }
    }
    req.station
        .source
        .current_uncertainty_k2_percent
        .as_ref()
        .map(|(u, _)| *u)
        .ok_or_else(|| {
            DataError::at(
                &req.station.file.path,
                req.station.source.pos,
                "the source declares no current_uncertainty_k2_percent: a current sensor is compared with the source's current, so its uncertainty is needed",
            )
        })
}

/// Run a current sensor procedure. Data errors come back before anything is switched
/// on; everything else ends in a record with an outcome.
pub fn run_sensor(
    req: &SensorRunRequest<'_>,
    ins: SensorInstruments<'_>,
    observer: &mut dyn Observer,
) -> Result<Finished, RunError> {
    let reference_u = check(req)?;
    let wall = Instant::now();
    let f = req.fixture;
    let id = run_id(req.station, &req.dut_serial);
    let record_path = req.reports_dir.join(&id).join("record.json");
    let mut rec = RunRecord::begin(
        &id,
        req.station,
        RunSubject {
            // The source's current is the reference: the only instrument of the result.
            instruments: vec![InstrumentRecord::declared(&req.station.source.binding)],
            fixture: FileRef::of(&f.id, &f.file),
            dut: DutRecord {
                manufacturer: f.manufacturer.clone(),
                device_type: f.device_type.clone(),
                serial_number: req.dut_serial.clone(),
                accuracy_class: format!("±{} %", f.limit_percent),
                meter_constant_imp_per_kwh: 0.0,
                ports: f.channels.iter().map(|c| c.name.clone()).collect(),
                kind: "current_sensor".into(),
            },
            procedure: ProcedureRef {
                id: req.procedure.id.clone(),
                version: req.procedure.version.clone(),
                title: req.procedure.title.clone(),
                path: req.procedure.file.path.display().to_string(),
                sha256: req.procedure.file.sha256.clone(),
                method: ReferenceMethod::ReferenceCurrent,
                decision_rule: req.procedure.decision_rule,
            },
            counter_timebase_hz: 0.0,
            reference_imp_per_kwh: 0.0,
        },
    );
    observer.event(&Event::RunStarted {
        run_id: &id,
        steps: req.procedure.steps.len() + 1,
    });
    let SensorInstruments {
        source,
        clock,
        sensor,
    } = ins;
    let t0 = clock.now();
    let now_s = |clock: &dyn Clock| (clock.now() - t0).as_secs_f64();
    let mut guard = SourceGuard::new(source);
    let mut stop: Option<(Outcome, String)> = None;
    match guard.identity() {
        Ok(i) => rec.instruments[0].reported = Some(i),
        Err(e) => stop = Some((Outcome::Error, e.to_string())),
    }
    let mut intervals: Vec<f64> = Vec::new();
    let mut firmware_seen: Vec<String> = Vec::new();

    if stop.is_none() {
        for (index, step) in req.procedure.steps.iter().enumerate() {
            let sp = setpoint(f, step);
            let started = now_s(clock);
            observer.event(&Event::StepStarted {
                index,
                total: req.procedure.steps.len() + 1,
                name: &step.name,
                expected_s: step.settle_s + (step.telegrams + 1) as f64 * f.telegram_period_s,
            });
            let mut record = StepRecord {
                index,
                name: step.name.clone(),
                kind: "current".into(),
                load: LoadPoint {
                    current_a: step.current_a,
                    current_name: format!("{} A", step.current_a),
                    power_factor: "1".into(),
                    phases: step.phases.clone(),
                    voltage_v: f.nominal_voltage_v,
                },
                setpoint: sp,
                started_s: started,
                duration_s: 0.0,
                physical_floor_s: step.settle_s + (step.telegrams + 1) as f64 * f.telegram_period_s,
                outcome: Outcome::InProgress,
                message: None,
                ports: f
                    .channels
                    .iter()
                    .map(|c| PortRecord {
                        port: c.name.clone(),
                        counter_channel: 0,
                        pulses: Vec::new(),
                        result: None,
                    })
                    .collect(),
            };
            let taken = (|| -> Result<Vec<Stamped>, Stop> {
                guard.energise(&sp)?;
                sleep(clock, step.settle_s, &req.abort)?;
                // Telegrams from before and during settling: counted by the link, unused.
                // Read until the line is quiet, so none of them is taken for a new one.
                while sensor.next_reading(QUIET)?.is_some() {}
                let settled = now_s(clock);
                let mut taken = Vec::new();
                let mut last_seen: Option<f64> = None;
                let mut stamps: Vec<f64> = Vec::new();
                while taken.len() < step.telegrams as usize {
                    sleep(clock, LOOK_EVERY_S, &req.abort)?;
                    // When a telegram is due, give the device a moment of wall time to
                    // send it (the simulated one answers within milliseconds of its
                    // second ending; on a real bench it is already waiting). Between
                    // telegrams, only look.
                    let due = last_seen.is_none_or(|t| {
                        now_s(clock) - t >= f.telegram_period_s - LOOK_EVERY_S / 2.0
                    });
                    let mut wait = if due { TELEGRAM_WAIT } else { Duration::ZERO };
                    while let Some(reading) = sensor.next_reading(wait)? {
                        wait = Duration::ZERO;
                        let at_s = now_s(clock);
                        stamps.push(at_s);
                        last_seen = Some(at_s);
                        if let Some(fw) = &reading.firmware
                            && !firmware_seen.contains(fw)
                        {
                            firmware_seen.push(fw.clone());
                        }
                        // Its measuring second ended at most max_latency before it
                        // arrived: take it only if that second began after settling.
                        if at_s - f.telegram_period_s - f.max_latency_s >= settled {
                            taken.push(Stamped { at_s, reading });
                        }
                    }
                    let silent = now_s(clock) - last_seen.unwrap_or(settled);
                    if silent > 3.0 * f.telegram_period_s + f.max_latency_s {
                        return Err(Stop::Bench(format!(
                            "no telegram from the sensor ({}) for {silent:.1} s; {} of {} taken at {} A",
                            sensor.describe(),
                            taken.len(),
                            step.telegrams,
                            step.current_a
                        )));
                    }
                }
                // Periods are judged within a point: between points the bench settles
                // and does not look.
                intervals.extend(stamps.windows(2).map(|w| w[1] - w[0]));
                Ok(taken)
            })();
            match taken {
                Ok(taken) => {
                    judge(req, step, &taken, reference_u, &mut record);
                    record.conclude_from_ports("channel");
                }
                Err(s) => {
                    let (outcome, message) = match s {
                        Stop::Aborted => (
                            Outcome::Aborted,
                            "stopped by the operator (signal)".to_string(),
                        ),
                        Stop::Instrument(e) => (Outcome::Error, e.to_string()),
                        Stop::Bench(m) => (Outcome::Error, m),
                    };
                    record.outcome = outcome;
                    record.message = Some(message.clone());
                    stop = Some((outcome, format!("step `{}`: {message}", step.name)));
                }
            }
            record.duration_s = now_s(clock) - started;
            observer.event(&Event::StepFinished(&record));
            rec.steps.push(record);
            rec.timing.bench_duration_s = now_s(clock);
            rec.write_atomically(&record_path)
                .map_err(|source| RunError::Record {
                    path: record_path.clone(),
                    source,
                })?;
            if stop.is_some() {
                break;
            }
        }
    }

    // Every way out passes here: switch off and confirm.
    if let Err(e) = guard.off() {
        stop = Some((
            Outcome::Error,
            format!("could not confirm the source is off: {e}"),
        ));
    }
    drop(guard);
    rec.log.push(LogEntry {
        t_s: now_s(clock),
        message: "source output off".into(),
    });

    if stop.is_none() {
        let step = telegram_checks(
            f,
            &sensor.stats(),
            &intervals,
            &firmware_seen,
            rec.steps.len(),
            now_s(clock),
        );
        observer.event(&Event::StepFinished(&step));
        rec.steps.push(step);
    }

    rec.timing.bench_duration_s = now_s(clock);
    rec.timing.physical_floor_s = rec.steps.iter().map(|s| s.physical_floor_s).sum();
    rec.timing.wall_s = wall.elapsed().as_secs_f64();
    rec.conclude(stop);
    rec.write_atomically(&record_path)
        .map_err(|source| RunError::Record {
            path: record_path.clone(),
            source,
        })?;
    observer.event(&Event::RunFinished(&rec));
    Ok(Finished {
        record: rec,
        record_path,
    })
}

/// Sleep on the bench clock; a stop request ends it.
fn sleep(clock: &mut dyn Clock, seconds: f64, abort: &AtomicBool) -> Result<(), Stop> {
    if abort.load(Ordering::SeqCst) || !clock.sleep_unless(Duration::from_secs_f64(seconds), abort)
    {
        return Err(Stop::Aborted);
    }
    Ok(())
}

/// Each channel's readings against the reference current of its phase.
fn judge(
    req: &SensorRunRequest<'_>,
    step: &SensorStep,
    taken: &[Stamped],
    reference_u: f64,
    record: &mut StepRecord,
) {
    let f = req.fixture;
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
                reference_u,
                f.resolution_a,
                stats.as_ref().and_then(|s| s.std_dev),
                errors.len(),
            );
            let decision = decide(
                req.procedure.decision_rule,
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

/// The telegram stream over the run: period, firmware id, CRC error rate.
fn telegram_checks(
    f: &SensorFixture,
    stats: &meterbench_instruments::SensorLinkStats,
    intervals: &[f64],
    firmware_seen: &[String],
    index: usize,
    now_s: f64,
) -> StepRecord {
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
    let result = PortResult::Telegrams {
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
        problems: problems.clone(),
        passed,
    };
    StepRecord {
        index,
        name: "Telegrams (period, firmware, CRC)".into(),
        kind: "telegrams".into(),
        load: LoadPoint {
            current_a: 0.0,
            current_name: "–".into(),
            power_factor: "1".into(),
            phases: Vec::new(),
            voltage_v: 0.0,
        },
        setpoint: SourceSetpoint {
            frequency_hz: f.frequency_hz,
            phases: [PhaseSetpoint::default(); 3],
        },
        started_s: now_s,
        duration_s: 0.0,
        physical_floor_s: 0.0,
        outcome: if passed { Outcome::Pass } else { Outcome::Fail },
        message: (!passed).then(|| problems.join("; ")),
        ports: f
            .channels
            .iter()
            .map(|c| PortRecord {
                port: c.name.clone(),
                counter_channel: 0,
                pulses: Vec::new(),
                result: Some(result.clone()),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meterbench_instruments::SensorLinkStats;
    use std::path::Path;

    fn csp1() -> SensorFixture {
        SensorFixture::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/csp1.yaml"))
            .unwrap()
    }

    fn check(stats: SensorLinkStats, intervals: &[f64], firmware: &[&str]) -> (bool, Vec<String>) {
        let fw: Vec<String> = firmware.iter().map(|s| s.to_string()).collect();
        let step = telegram_checks(&csp1(), &stats, intervals, &fw, 9, 70.0);
        match &step.ports[0].result {
            Some(PortResult::Telegrams {
                passed, problems, ..
            }) => {
                assert_eq!(*passed, step.outcome == Outcome::Pass);
                (*passed, problems.clone())
            }
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
