//! Wall time of the runner alone (no bundle) on a station, N runs:
//! `cargo run -p meterbench-session --example run_timing -- hw/stations/sim.yaml hw/stations/sim-inprocess.yaml 20`.
//! A rack station runs every position holding a simulated meter.
//! Prints the median and each run's wall time, counter polls and bench time, and how
//! much of the wall time the runner spent waiting on the source and the counter (their
//! round trips) and on the clock (the simulated world advancing).
use meterbench_instruments::{
    AcSource, ChannelConfig, Clock, CounterBatch, InstrumentIdentity, InstrumentResult,
    PulseCounter, ReferenceCount, SourceSetpoint,
};
use meterbench_runner::{Bench, Mounted, RunRequest, Silent, run};
use meterbench_session::{Prepared, SessionOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Time spent in calls, and how many.
#[derive(Default)]
struct Spent {
    calls: AtomicU64,
    nanos: AtomicU64,
}

impl Spent {
    fn time<T>(&self, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let r = f();
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.nanos
            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        r
    }
    fn show(&self, what: &str) -> String {
        format!(
            "{what} {} calls {:.1} ms",
            self.calls.load(Ordering::Relaxed),
            self.nanos.load(Ordering::Relaxed) as f64 / 1e6
        )
    }
}

struct TimedSource<'a>(&'a mut dyn AcSource, &'a Spent);
impl AcSource for TimedSource<'_> {
    fn identity(&mut self) -> InstrumentResult<InstrumentIdentity> {
        self.1.time(|| self.0.identity())
    }
    fn apply(&mut self, s: &SourceSetpoint) -> InstrumentResult<()> {
        self.1.time(|| self.0.apply(s))
    }
    fn set_output(&mut self, on: bool) -> InstrumentResult<()> {
        self.1.time(|| self.0.set_output(on))
    }
    fn output_is_on(&mut self) -> InstrumentResult<bool> {
        self.1.time(|| self.0.output_is_on())
    }
}

struct TimedCounter<'a>(&'a mut dyn PulseCounter, &'a Spent);
impl PulseCounter for TimedCounter<'_> {
    fn identity(&mut self) -> InstrumentResult<InstrumentIdentity> {
        self.1.time(|| self.0.identity())
    }
    fn timebase_hz(&self) -> f64 {
        self.0.timebase_hz()
    }
    fn arm(&mut self, c: &[ChannelConfig]) -> InstrumentResult<()> {
        self.1.time(|| self.0.arm(c))
    }
    fn disarm(&mut self) -> InstrumentResult<()> {
        self.1.time(|| self.0.disarm())
    }
    fn drain(&mut self) -> InstrumentResult<CounterBatch> {
        let t = Instant::now();
        let b = self.1.time(|| self.0.drain());
        if let Ok(b) = &b
            && std::env::var_os("RUN_TIMING_DRAINS").is_some()
        {
            eprintln!(
                "drain: {} events in {:.3} ms",
                b.events.len(),
                t.elapsed().as_secs_f64() * 1e3
            );
        }
        b
    }
    fn reference_count(&mut self) -> InstrumentResult<ReferenceCount> {
        self.1.time(|| self.0.reference_count())
    }
}

struct TimedClock<'a>(&'a mut dyn Clock, &'a Spent);
impl Clock for TimedClock<'_> {
    fn now(&self) -> Duration {
        self.0.now()
    }
    fn sleep(&mut self, d: Duration) {
        self.1.time(|| self.0.sleep(d))
    }
    fn rate(&self) -> Option<f64> {
        self.0.rate()
    }
    fn sleep_unless(&mut self, d: Duration, stop: &std::sync::atomic::AtomicBool) -> bool {
        self.1.time(|| self.0.sleep_unless(d, stop))
    }
}

/// One run of the procedure on a station: wall seconds and what it spent where.
fn one_run(station: &Path, reports: &Path) -> anyhow::Result<(f64, String)> {
    let mut o = SessionOptions::new(chrono::Local::now().date_naive());
    o.station = station.to_path_buf();
    o.reports = reports.to_path_buf();
    let p = Prepared::load(o)?;
    let mut b = p.bind()?;
    let req = RunRequest {
        procedure: &p.procedure,
        fixture: &p.fixture,
        station: &p.station,
        reports_dir: reports.to_path_buf(),
        abort: Arc::new(AtomicBool::new(false)),
        today: p.options.today,
        only_steps: None,
        retest_failed: false,
        startup_notes: Vec::new(),
        order: None,
        signatory: None,
    };
    let (in_source, in_counter, in_clock) = (Spent::default(), Spent::default(), Spent::default());
    let mut source = TimedSource(b.source.as_mut(), &in_source);
    let mut counters: Vec<TimedCounter<'_>> = b
        .counters
        .iter_mut()
        .map(|c| TimedCounter(c.as_mut(), &in_counter))
        .collect();
    let mut clock = TimedClock(b.clock.as_mut(), &in_clock);
    let mounted: Vec<Mounted<'_>> = p
        .positions
        .iter()
        .zip(b.positions.iter_mut())
        .map(|(plan, bound)| Mounted {
            position: plan.position,
            serial: plan.serial.clone(),
            software: bound.software.as_deref_mut().map(|s| s as _),
            sensor: None,
            prior: None,
        })
        .collect();
    let t = Instant::now();
    let mut silent = Silent;
    let session = run(
        &req,
        Bench {
            source: &mut source,
            reference: b.reference.as_mut(),
            counters: counters.iter_mut().map(|c| c as _).collect(),
            clock: &mut clock,
            climate: b.climate.as_deref_mut().map(|c| c as _),
            operator: None,
        },
        mounted,
        &mut silent,
    )?;
    let wall = t.elapsed().as_secs_f64();
    let first = &session.runs[0].record;
    let tm = &first.timing;
    anyhow::ensure!(
        session.outcome() == meterbench_runner::Outcome::Pass,
        "{:?}",
        first.outcome_reason
    );
    let floor = session
        .runs
        .iter()
        .map(|r| r.record.timing.physical_floor_s)
        .fold(0.0, f64::max);
    Ok((
        wall,
        format!(
            "{wall:.3} s wall, {} position(s), {} counter polls, bench {:.1} s (slowest floor {floor:.1} s, ×{:.4}); {}, {}, {}",
            session.runs.len(),
            tm.counter_polls,
            tm.bench_duration_s,
            tm.bench_duration_s / floor,
            in_source.show("source"),
            in_counter.show("counters"),
            in_clock.show("clock")
        ),
    ))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `run_timing STATION N` times N runs on one station; `run_timing A B N` alternates
/// A and B (so both see the same machine load) and prints the ratio of their medians.
fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (stations, runs): (Vec<PathBuf>, usize) = match args.as_slice() {
        [] => (vec!["hw/stations/sim.yaml".into()], 10),
        [a] => (vec![a.into()], 10),
        [a, n] if n.parse::<usize>().is_ok() => (vec![a.into()], n.parse()?),
        [a, b] => (vec![a.into(), b.into()], 10),
        [a, b, n, ..] => (vec![a.into(), b.into()], n.parse()?),
    };
    let reports = tempfile::tempdir()?;
    let mut walls: Vec<Vec<f64>> = vec![Vec::new(); stations.len()];
    for _ in 0..runs {
        for (k, station) in stations.iter().enumerate() {
            let (wall, line) = one_run(station, reports.path())?;
            println!("{}: {line}", stations[k].display());
            walls[k].push(wall);
        }
    }
    let medians: Vec<f64> = walls.iter_mut().map(|w| median(w)).collect();
    for (k, m) in medians.iter().enumerate() {
        println!(
            "{}: median {m:.3} s, min {:.3} s over {runs} runs",
            stations[k].display(),
            walls[k][0]
        );
    }
    if let [a, b] = medians.as_slice() {
        println!(
            "ratio of medians {}/{}: {:.2}",
            stations[0].display(),
            stations[1].display(),
            a / b
        );
    }
    Ok(())
}
