//! Wall time of a whole session on a station, as `meterbench run` makes it: the runner,
//! then every position's bundle and store filing with W workers; and the process's peak
//! memory. `cargo run -p meterbench-session --example session_timing -- STATION [W]`.
//! Prints figures; asserts nothing (but that the session passes).
use meterbench_runner::Silent;
use meterbench_session::{Bundle, Output, Prepared, SessionOptions, StoreFiling, deliver};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// The process's peak resident memory, MiB (Linux).
fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let station = args.first().map_or("hw/stations/sim.yaml", |s| s.as_str());
    let workers: usize = args.get(1).map_or(Ok(2), |s| s.parse())?;
    let dir = tempfile::tempdir()?;
    let t0 = Instant::now();
    let mut o = SessionOptions::new(chrono::Local::now().date_naive());
    o.station = station.into();
    o.reports = dir.path().join("reports");
    let p = Prepared::load(o)?;
    let mut b = p.bind()?;
    let t_bound = t0.elapsed().as_secs_f64();
    let session = p.run(&mut b, None, Arc::new(AtomicBool::new(false)), &mut Silent)?;
    drop(b);
    let t_run = t0.elapsed().as_secs_f64();
    anyhow::ensure!(session.outcome() == meterbench_runner::Outcome::Pass);
    let key = meterbench_signing::generate_key(
        &dir.path().join("key.pem"),
        &dir.path().join("key.pub.pem"),
    )?;
    let trusted = meterbench_signing::Keyring::single(key.verifying_key(), "the timing key");
    let outputs: Vec<Box<dyn Output>> = vec![
        Box::new(Bundle::new(
            key,
            trusted.clone(),
            "timing".into(),
            dir.path().join("reports/issuance-log.jsonl"),
        )),
        Box::new(StoreFiling {
            store: dir.path().join("reports/store").into(),
            queue: dir.path().join("reports/store.unfiled"),
            trusted,
        }),
    ];
    let delivered = deliver(&session, &outputs, workers);
    anyhow::ensure!(delivered.iter().all(|d| d.all_done()), "{delivered:?}");
    let t_all = t0.elapsed().as_secs_f64();
    let bench = session.runs[0].record.timing.bench_duration_s;
    // Every LED edge the counters timestamped and the links carried, against what the
    // rack needs at its busiest point (Imax, PF 1: every port at its highest rate).
    let edges: usize = session
        .runs
        .iter()
        .flat_map(|r| &r.record.steps)
        .flat_map(|s| &s.ports)
        .map(|p| p.pulses.len())
        .sum();
    let ports: usize = session.runs.iter().map(|r| r.record.dut.ports.len()).sum();
    let busiest_hz = session
        .runs
        .iter()
        .flat_map(|r| &r.record.steps)
        .map(|s| s.setpoint.active_power_w())
        .fold(0.0, f64::max)
        * 20000.0
        / 3.6e6;
    let floor = session
        .runs
        .iter()
        .map(|r| r.record.timing.physical_floor_s)
        .fold(0.0, f64::max);
    println!(
        "{station}: {edges} edges through the counter links in {:.2} s of runner: {:.0} edges/s; need at the busiest point {:.0} edges/s ({ports} ports × {busiest_hz:.0} Hz)",
        t_run - t_bound,
        edges as f64 / (t_run - t_bound),
        ports as f64 * busiest_hz
    );
    println!(
        "{station}: {} position(s); bind {t_bound:.2} s, runner {:.2} s, outputs ({workers} workers) {:.2} s, total {t_all:.2} s wall; peak {:.0} MiB; bench {bench:.1} s = {:.4} × the slowest position's floor {floor:.1} s",
        session.runs.len(),
        t_run - t_bound,
        t_all - t_run,
        peak_mib(),
        bench / floor
    );
    Ok(())
}
