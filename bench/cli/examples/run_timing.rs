//! Wall time of the runner alone (no bundle) on a station, N runs:
//! `cargo run -p meterbench --example run_timing -- hw/stations/sim.yaml hw/stations/sim-inprocess.yaml 20`.
//! Prints the median and each run's wall time, counter polls and bench time, and how
//! much of the wall time the runner spent waiting on the source and the counter (their
//! round trips) and on the clock (the simulated world advancing).
use meterbench::bind::{SimOptions, bind};
use meterbench_instruments::{
    AcSource, ChannelConfig, Clock, CounterBatch, InstrumentIdentity, InstrumentResult,
    PulseCounter, ReferenceCount, SourceSetpoint,
};
use meterbench_procedure::{Fixture, Procedure, Station};
use meterbench_runner::{Instruments, RunRequest, Silent, run};
use std::path::PathBuf;
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
fn one_run(
    station: &Station,
    procedure: &Procedure,
    fixture: &Fixture,
    reports: &std::path::Path,
) -> anyhow::Result<(f64, String)> {
    let mut b = bind(station, Some(fixture), &SimOptions::default())?;
    let req = RunRequest {
        procedure,
        fixture,
        station,
        dut_serial: "TIMING-0001".into(),
        reports_dir: reports.to_path_buf(),
        abort: Arc::new(AtomicBool::new(false)),
        today: chrono::Local::now().date_naive(),
    };
    let (in_source, in_counter, in_clock) = (Spent::default(), Spent::default(), Spent::default());
    let mut source = TimedSource(b.source.as_mut(), &in_source);
    let mut counter = TimedCounter(b.counter.as_mut(), &in_counter);
    let mut clock = TimedClock(b.clock.as_mut(), &in_clock);
    let t = Instant::now();
    let finished = run(
        &req,
        Instruments {
            source: &mut source,
            reference: b.reference.as_mut(),
            counter: &mut counter,
            clock: &mut clock,
            dut_software: b.dut_software.as_deref_mut().map(|d| d as _),
            operator: None,
        },
        &mut Silent,
    )?;
    let wall = t.elapsed().as_secs_f64();
    let tm = &finished.record.timing;
    anyhow::ensure!(
        finished.record.outcome == meterbench_runner::Outcome::Pass,
        "{:?}",
        finished.record.outcome_reason
    );
    Ok((
        wall,
        format!(
            "{wall:.3} s wall, {} counter polls, bench {:.1} s; {}, {}, {}",
            tm.counter_polls,
            tm.bench_duration_s,
            in_source.show("source"),
            in_counter.show("counter"),
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
    let procedure = Procedure::load(&PathBuf::from("procedures/en50470-3-class-b.yaml"))?;
    let fixture = Fixture::load(&PathBuf::from("fixtures/cpim1000.yaml"))?;
    let loaded: Vec<Station> = stations
        .iter()
        .map(|p| Station::load(p))
        .collect::<Result<_, _>>()?;
    let reports = tempfile::tempdir()?;
    let mut walls: Vec<Vec<f64>> = vec![Vec::new(); loaded.len()];
    for _ in 0..runs {
        for (k, station) in loaded.iter().enumerate() {
            let (wall, line) = one_run(station, &procedure, &fixture, reports.path())?;
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
