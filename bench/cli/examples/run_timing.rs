//! Wall time of the runner alone (no bundle) on a station, N runs:
//! `cargo run -p meterbench --example run_timing -- hw/stations/sim.yaml 10`.
//! Prints the median and each run's wall time, counter polls and bench time.
use meterbench::bind::{SimOptions, bind};
use meterbench_procedure::{Fixture, Procedure, Station};
use meterbench_runner::{Instruments, RunRequest, Silent, run};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let station_path = PathBuf::from(args.first().map_or("hw/stations/sim.yaml", |s| s));
    let runs: usize = args.get(1).map_or(Ok(10), |s| s.parse())?;
    let procedure = Procedure::load(&PathBuf::from("procedures/en50470-3-class-b.yaml"))?;
    let fixture = Fixture::load(&PathBuf::from("fixtures/cpim1000.yaml"))?;
    let station = Station::load(&station_path)?;
    let reports = tempfile::tempdir()?;
    let mut walls = Vec::new();
    for _ in 0..runs {
        let t_bind = Instant::now();
        let mut b = bind(&station, Some(&fixture), &SimOptions::default())?;
        let bind_s = t_bind.elapsed().as_secs_f64();
        let req = RunRequest {
            procedure: &procedure,
            fixture: &fixture,
            station: &station,
            dut_serial: "TIMING-0001".into(),
            reports_dir: reports.path().to_path_buf(),
            abort: Arc::new(AtomicBool::new(false)),
            today: chrono::Local::now().date_naive(),
        };
        let t = Instant::now();
        let finished = run(
            &req,
            Instruments {
                source: b.source.as_mut(),
                reference: b.reference.as_mut(),
                counter: b.counter.as_mut(),
                clock: b.clock.as_mut(),
                dut_software: b.dut_software.as_deref_mut().map(|d| d as _),
                operator: None,
            },
            &mut Silent,
        )?;
        let wall = t.elapsed().as_secs_f64();
        walls.push(wall);
        let tm = &finished.record.timing;
        println!(
            "{:?}: run {wall:.3} s wall (bind {bind_s:.3} s), {} counter polls, bench {:.1} s",
            finished.record.outcome, tm.counter_polls, tm.bench_duration_s
        );
    }
    walls.sort_by(f64::total_cmp);
    println!(
        "{}: median {:.3} s, min {:.3} s over {runs} runs",
        station_path.display(),
        walls[walls.len() / 2],
        walls[0]
    );
    Ok(())
}
