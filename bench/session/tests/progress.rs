//! Progress that moves: on a clock paced to the wall (`--realtime`), every step shows
//! its progress at least once a second, the long waits of the starting and no-load
//! tests included, and the time left falls while the first pulse is awaited. The test
//! runs on virtual time that claims to be paced, so it takes no wall time.

use meterbench_instruments::Clock;
use meterbench_runner::{Collect, EventKind};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

mod common;
use common::options;

/// The simulated world's clock, reporting itself paced to the wall clock.
struct ClaimsToBePaced(Box<dyn Clock>);

impl Clock for ClaimsToBePaced {
    fn now(&self) -> Duration {
        self.0.now()
    }
    fn sleep(&mut self, duration: Duration) {
        self.0.sleep(duration)
    }
    fn rate(&self) -> Option<f64> {
        Some(1.0)
    }
    fn sleep_unless(&mut self, duration: Duration, stop: &AtomicBool) -> bool {
        self.0.sleep_unless(duration, stop)
    }
}

#[test]
fn every_step_shows_progress_at_least_once_a_second_and_the_time_left_falls() {
    let reports = tempfile::tempdir().unwrap();
    let mut o = options(
        "procedures/en50470-3-class-b.yaml",
        "fixtures/cpim1000.yaml",
        "hw/stations/sim-inprocess.yaml",
        reports.path(),
    );
    o.serials = vec![(None, "PACE-0001".into())];
    let prepared = meterbench_session::Prepared::load(o).unwrap();
    let mut bound = prepared.bind().unwrap();
    let inner = std::mem::replace(&mut bound.clock, Box::new(ClaimsToBePaced(Box::new(Idle))));
    bound.clock = Box::new(ClaimsToBePaced(inner));
    let mut events = Collect::default();
    let session = prepared
        .run(
            &mut bound,
            None,
            Arc::new(AtomicBool::new(false)),
            &mut events,
        )
        .unwrap();
    assert_eq!(
        session.runs[0].record.outcome,
        meterbench_runner::Outcome::Pass
    );

    // (step, bench time, elapsed, remaining, fewest pulses counted) of every progress.
    let progress: Vec<(usize, f64, f64, f64, u64)> = events
        .0
        .iter()
        .filter_map(|e| match &e.what {
            EventKind::Progress {
                index,
                elapsed_s,
                remaining_s,
                ports,
            } => Some((
                *index,
                e.bench_s,
                *elapsed_s,
                *remaining_s,
                ports.iter().map(|p| p.counted).min().unwrap_or(0),
            )),
            _ => None,
        })
        .collect();
    for (name, index) in [
        ("Starting current", 1),
        ("No-load (creep)", 2),
        ("Iref PF1", 6),
    ] {
        let step: Vec<&(usize, f64, f64, f64, u64)> =
            progress.iter().filter(|p| p.0 == index).collect();
        assert!(step.len() >= 3, "{name}: {} progress events", step.len());
        let longest = step.windows(2).map(|w| w[1].1 - w[0].1).fold(0.0, f64::max);
        // One second of display refresh, plus what one poll of the counter takes.
        assert!(longest <= 1.1, "{name}: {longest:.2} s without progress");
    }
    // Across the whole run, whatever is under way (a source settling after a new
    // setpoint included), no second of bench time passes without an event: a display
    // is told something at least once a second.
    let times: Vec<f64> = events.0.iter().map(|e| e.bench_s).collect();
    let (longest, at) = times
        .windows(2)
        .map(|w| (w[1] - w[0], w[0]))
        .fold((0.0, 0.0), |a, b| if b.0 > a.0 { b } else { a });
    assert!(
        longest <= 1.0,
        "{longest:.2} s without an event from bench time {at:.1} s"
    );
    // The starting test waits about 26 s for its pulses: before the first, the time
    // left falls with the time waited.
    let before_first: Vec<&(usize, f64, f64, f64, u64)> =
        progress.iter().filter(|p| p.0 == 1 && p.4 == 0).collect();
    assert!(before_first.len() >= 5, "{}", before_first.len());
    for w in before_first.windows(2) {
        assert!(w[1].3 < w[0].3, "time left {} then {}", w[0].3, w[1].3);
    }
}

/// A placeholder while the bound clock is being wrapped.
struct Idle;

impl Clock for Idle {
    fn now(&self) -> Duration {
        unreachable!()
    }
    fn sleep(&mut self, _: Duration) {
        unreachable!()
    }
}
