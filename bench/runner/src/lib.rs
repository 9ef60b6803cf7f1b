//! Executes a validated procedure on a bench of instruments bound to roles, measuring
//! every port of the DUT at once, and builds one run record. Safety is structural: the
//! source is behind a guard that switches it off however the run ends.

pub mod events;
pub mod identity;
pub mod operator;
pub mod plan;
pub mod record;
pub mod safety;
pub mod sensor;
mod steps;

pub use events::{Event, Observer, Silent};
pub use plan::{PlannedStep, plan};
pub use record::{Outcome, RunRecord};

use chrono::{NaiveDate, Utc};
use meterbench_instruments::{
    AcSource, ChannelConfig, Clock, DutSoftware, InstrumentError, PulseCounter, ReferenceStandard,
};
use meterbench_procedure::{DataError, Fixture, Procedure, Station, StepKind};
use record::*;
use safety::SourceGuard;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// The instruments of a station, bound to their roles.
pub struct Instruments<'a> {
    pub source: &'a mut dyn AcSource,
    pub reference: &'a mut dyn ReferenceStandard,
    pub counter: &'a mut dyn PulseCounter,
    pub clock: &'a mut dyn Clock,
    /// The DUT's software identity interface, for identity steps (`None`: the station
    /// binds none; an identity step then ends as ERROR).
    pub dut_software: Option<&'a mut dyn DutSoftware>,
    /// Who answers the procedure's questions (LCD readings, seals, scans); `None`: no
    /// one, and a step that asks ends as ERROR.
    pub operator: Option<&'a mut dyn operator::Operator>,
}

/// What to run, on what, and where the record goes.
pub struct RunRequest<'a> {
    pub procedure: &'a Procedure,
    pub fixture: &'a Fixture,
    pub station: &'a Station,
    pub dut_serial: String,
    /// The run's folder is created under this directory.
    pub reports_dir: PathBuf,
    /// Set by Ctrl-C / SIGTERM handlers; the runner stops at the next poll.
    pub abort: Arc<AtomicBool>,
    /// Calibration due dates are checked against this day.
    pub today: NaiveDate,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad or inconsistent data: nothing was switched on.
    #[error("{0}")]
    Data(#[from] DataError),
    #[error("cannot write the run record {path}: {source}")]
    Record {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A finished run: its record and where it was written.
#[derive(Debug)]
pub struct Finished {
    pub record: RunRecord,
    pub record_path: PathBuf,
}

/// Why a step stopped early.
#[derive(Debug)]
pub(crate) enum StepStop {
    Instrument(InstrumentError),
    /// A fault of the bench or the DUT's test output that makes the measurement invalid.
    Bench(String),
    Aborted,
}

impl From<InstrumentError> for StepStop {
    fn from(e: InstrumentError) -> Self {
        StepStop::Instrument(e)
    }
}

pub(crate) fn run_id(station: &Station, serial: &str) -> String {
    let clean: String = serial
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "{}-{}-{}",
        Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        station.id,
        clean
    )
}

/// Run a procedure. Data errors (including setpoints beyond ratings and calibrations
/// past due) are returned before anything is switched on; everything else ends in a
/// record with an outcome.
pub fn run(
    req: &RunRequest<'_>,
    ins: Instruments<'_>,
    observer: &mut dyn Observer,
) -> Result<Finished, RunError> {
    let planned = plan(req.procedure, req.fixture, req.station)?;
    req.station.check_calibration_due(req.today)?;

    let wall = Instant::now();
    let id = run_id(req.station, &req.dut_serial);
    let record_path = req.reports_dir.join(&id).join("record.json");
    let mut rec = RunRecord::begin(
        &id,
        req.station,
        RunSubject {
            instruments: req
                .station
                .bindings()
                .iter()
                .map(|b| InstrumentRecord::declared(b))
                .collect(),
            fixture: FileRef::of(&req.fixture.id, &req.fixture.file),
            dut: DutRecord {
                manufacturer: req.fixture.manufacturer.clone(),
                device_type: req.fixture.device_type.clone(),
                serial_number: req.dut_serial.clone(),
                accuracy_class: req.fixture.accuracy_class.clone(),
                meter_constant_imp_per_kwh: req.fixture.meter_constant_imp_per_kwh,
                ports: req.fixture.ports.iter().map(|p| p.name.clone()).collect(),
                kind: "meter".into(),
            },
            procedure: ProcedureRef {
                id: req.procedure.id.clone(),
                version: req.procedure.version.clone(),
                title: req.procedure.title.clone(),
                path: req.procedure.file.path.display().to_string(),
                sha256: req.procedure.file.sha256.clone(),
                method: req.procedure.method,
                decision_rule: req.procedure.decision_rule,
            },
            counter_timebase_hz: ins.counter.timebase_hz(),
            reference_imp_per_kwh: req.station.reference.pulse_constant_imp_per_kwh,
        },
    );
    observer.event(&Event::RunStarted {
        run_id: &id,
        steps: planned.len(),
    });

    let Instruments {
        source,
        reference,
        counter,
        clock,
        dut_software,
        operator,
    } = ins;
    let t_start = clock.now();
    let mut guard = SourceGuard::new(source);
    let mut ctx = steps::StepContext {
        req,
        counter,
        clock,
        observer,
        dut_software: dut_software.map(|d| d as &mut dyn DutSoftware),
        operator: operator.map(|o| o as &mut dyn operator::Operator),
        last_sequence: 0,
        t_start,
        polls: 0,
        counter_time: (0, t_start),
    };

    // Identify every instrument by what it reports on the wire.
    let identify = (|| -> Result<(), InstrumentError> {
        let ids = [
            ("source", guard_identity(&mut guard)?),
            ("reference", reference.identity()?),
            ("counter", ctx.counter.identity()?),
        ];
        for (role, id) in ids {
            if let Some(i) = rec.instruments.iter_mut().find(|i| i.role == role) {
                i.reported = Some(id);
            }
        }
        reference.configure_pulse_output(req.station.reference.pulse_constant_imp_per_kwh)?;
        let channels: Vec<ChannelConfig> = req
            .fixture
            .ports
            .iter()
            .map(|p| ChannelConfig {
                channel: p.counter_channel,
                glitch_filter_s: req.station.counter.glitch_filter_s,
            })
            .collect();
        ctx.counter.arm(&channels)?;
        // The timebase restarts at 0 when armed.
        ctx.counter_time = (0, ctx.clock.now());
        Ok(())
    })();

    let mut stop: Option<(Outcome, String)> = None;
    if let Err(e) = identify {
        stop = Some((Outcome::Error, e.to_string()));
    }

    if stop.is_none() {
        for (index, ps) in planned.iter().enumerate() {
            let started = ctx.elapsed_s();
            ctx.observer.event(&Event::StepStarted {
                index,
                total: planned.len(),
                name: &ps.step.name,
                expected_s: steps::expected_duration_s(ps, req.fixture),
            });
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                ctx.run_step(index, ps, &mut guard)
            }));
            let step_record = match result {
                Ok(r) => r,
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    let _ = guard.off();
                    steps::failed_step(
                        index,
                        ps,
                        started,
                        ctx.elapsed_s(),
                        Outcome::Error,
                        format!("internal error (panic): {what}"),
                    )
                }
            };
            ctx.observer.event(&Event::StepFinished(&step_record));
            let outcome = step_record.outcome;
            let message = step_record.message.clone();
            rec.steps.push(step_record);
            match outcome {
                Outcome::Error | Outcome::Aborted => {
                    stop = Some((
                        outcome,
                        format!("step `{}`: {}", ps.step.name, message.unwrap_or_default()),
                    ));
                    break;
                }
                // Software that is not the certified one makes every measurement moot:
                // no energy test runs.
                Outcome::Fail if matches!(ps.step.kind, StepKind::Identity(_)) => {
                    stop = Some((
                        Outcome::Fail,
                        format!(
                            "software identity not certified ({}): {}; no energy test was run",
                            ps.step.name,
                            message.unwrap_or_default()
                        ),
                    ));
                    break;
                }
                // Broken seals or a wrong serial: the unit is not the one, or not intact.
                Outcome::Fail if matches!(ps.step.kind, StepKind::Inspection(_)) => {
                    stop = Some((
                        Outcome::Fail,
                        format!(
                            "inspection failed ({}): {}; no energy test was run",
                            ps.step.name,
                            message.unwrap_or_default()
                        ),
                    ));
                    break;
                }
                _ => {}
            }
            rec.timing.bench_duration_s = ctx.elapsed_s();
            // Keep what is measured so far on disk: a crash loses at most one step.
            rec.write_atomically(&record_path)
                .map_err(|source| RunError::Record {
                    path: record_path.clone(),
                    source,
                })?;
        }
    }

    // Every way out passes here with the guard still alive; switch off and confirm.
    if let Err(e) = guard.off() {
        stop = Some((
            Outcome::Error,
            format!("could not confirm the source is off: {e}"),
        ));
    }
    drop(guard);
    rec.log.push(LogEntry {
        t_s: ctx.elapsed_s(),
        message: "source output off".into(),
    });
    let _ = ctx.counter.disarm();

    rec.timing.bench_duration_s = ctx.elapsed_s();
    rec.timing.physical_floor_s = rec.steps.iter().map(|s| s.physical_floor_s).sum();
    rec.timing.wall_s = wall.elapsed().as_secs_f64();
    rec.timing.counter_polls = ctx.polls;
    rec.conclude(stop);
    rec.write_atomically(&record_path)
        .map_err(|source| RunError::Record {
            path: record_path.clone(),
            source,
        })?;
    ctx.observer.event(&Event::RunFinished(&rec));
    Ok(Finished {
        record: rec,
        record_path,
    })
}

fn guard_identity(
    guard: &mut SourceGuard<'_>,
) -> Result<meterbench_instruments::InstrumentIdentity, InstrumentError> {
    guard.identity()
}
