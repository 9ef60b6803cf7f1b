//! The source when the bench process is gone: the simulated instruments served in a
//! process of their own (`meterbench sim serve`), the bench run against them as against
//! hardware, killed with SIGKILL mid-point with the source on. Its guard process
//! switches the source off within the station's declared `guard_timeout_s`, and the next
//! run reports what the guard found.

mod common;
use common::repo;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// The guard's timeout the served station declares, s.
const GUARD_TIMEOUT_S: f64 = 2.0;

fn signal(child: &Child, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_child(child);
    rustix::process::kill_process(pid, sig).unwrap();
}

/// Lines of a child's stdout, as they come, with when they came.
fn lines_of(child: &mut Child) -> Receiver<(Instant, String)> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if tx.send((Instant::now(), line)).is_err() {
                return;
            }
        }
    });
    rx
}

/// Wait for a line containing `what`; the time it came.
fn wait_for(rx: &Receiver<(Instant, String)>, what: &str, within: Duration) -> Instant {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((t, line)) if line.contains(what) => return t,
            Ok(_) => continue,
            Err(e) => panic!("no line with `{what}` within {within:?}: {e}"),
        }
    }
}

fn bench(station: &Path, reports: &Path, key: &Path, events: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args(["run", "--quiet", "--serial", "SIM-CPIM-000123", "--station"])
        .arg(station)
        .arg("--reports")
        .arg(reports)
        .arg("--events")
        .arg(events)
        .env("METERBENCH_SIGNING_KEY", key)
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Wait until `path` holds a line containing `what`.
fn wait_in_file(path: &Path, what: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if std::fs::read_to_string(path).is_ok_and(|t| t.contains(what)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{} never said `{what}`", path.display());
}

/// The first finished report the guard wrote under `guard_dir` (it writes a `.tmp` file and
/// renames it, after reading the source's output back, so it may come a little after the
/// source went off).
fn guard_report(guard_dir: &Path, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let finished = std::fs::read_dir(guard_dir).ok().and_then(|d| {
            d.map(|e| e.unwrap().path())
                .find(|p| p.extension().is_some_and(|x| x == "json"))
        });
        if let Some(path) = finished {
            return std::fs::read_to_string(path).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no guard report in {}",
            guard_dir.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `meterbench sim serve` writing `station`; its output lines.
fn serve(station: &Path) -> (Child, Receiver<(Instant, String)>) {
    let mut serve = Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args([
            "sim",
            "serve",
            "--guard-timeout-s",
            &GUARD_TIMEOUT_S.to_string(),
        ])
        .arg("--write-station")
        .arg(station)
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let served = lines_of(&mut serve);
    wait_for(&served, "serving station", Duration::from_secs(30));
    (serve, served)
}

#[test]
fn a_bench_killed_with_the_source_on_has_it_switched_off_by_its_guard() {
    let dir = tempfile::tempdir().unwrap();
    let station = dir.path().join("served-station.yaml");
    let reports = dir.path().join("reports");
    let key = dir.path().join("key.pem");
    let (mut serve, served) = serve(&station);
    let text = std::fs::read_to_string(&station).unwrap();
    assert!(
        text.contains("port: tcp://127.0.0.1:") && !text.contains("simulation:"),
        "{text}"
    );

    // The bench, through the real drivers on those ports; killed once the source is on
    // and a point is under way.
    let events = dir.path().join("events-1.jsonl");
    let mut first = bench(&station, &reports, &key, &events);
    wait_for(&served, "source output on", Duration::from_secs(60));
    wait_in_file(
        &events,
        "\"event\":\"step_started\",\"index\":1",
        Duration::from_secs(30),
    );
    std::thread::sleep(Duration::from_millis(500));
    first.kill().unwrap(); // SIGKILL: no handler, no unwinding, no goodbye
    let killed = Instant::now();
    first.wait().unwrap();
    let off = wait_for(&served, "source output off", Duration::from_secs(10));
    let took = off.saturating_duration_since(killed).as_secs_f64();
    eprintln!("the source went off {took:.3} s after SIGKILL");
    assert!(
        took <= GUARD_TIMEOUT_S,
        "the source went off {took:.3} s after the kill; the station declares {GUARD_TIMEOUT_S} s"
    );
    // The killed run's record was on disk from its start.
    let folders: Vec<_> = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("record.json").is_file())
        .collect();
    assert_eq!(folders.len(), 1);
    // The guard's report, for the next run.
    let guard_dir = reports.join("guard");
    guard_report(&guard_dir, Duration::from_secs(10));

    // The next run says what the guard found, in its events and its record; stopped
    // with Ctrl-C it ends ABORTED with the source off, and its guard stands down.
    let events = dir.path().join("events-2.jsonl");
    let mut next = bench(&station, &reports, &key, &events);
    wait_in_file(
        &events,
        "the source's guard found that the bench process",
        Duration::from_secs(30),
    );
    wait_for(&served, "source output on", Duration::from_secs(30));
    signal(&next, rustix::process::Signal::INT);
    let status = next.wait().unwrap();
    assert_eq!(status.code(), Some(2), "an aborted run");
    wait_for(&served, "source output off", Duration::from_secs(5));
    let record = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("record.json").is_file() && !folders.contains(p))
        .map(|p| std::fs::read_to_string(p.join("record.json")).unwrap())
        .next()
        .unwrap();
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(record["outcome"], "ABORTED");
    let said = record["log"].to_string();
    assert!(
        said.contains("ended without confirming that the source was off")
            && said.contains("it switched the source off, confirmed at"),
        "{said}"
    );
    let reports_left: Vec<_> = std::fs::read_dir(&guard_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        reports_left.iter().all(|n| n.ends_with(".seen.json")),
        "{reports_left:?}"
    );
    drop(serve.stdin.take());
    serve.wait().unwrap();
}

/// A bench that hangs with the source on (here stopped with SIGSTOP) stops beating: after
/// the declared timeout its guard kills it, so that the port is free, and switches the
/// source off.
#[test]
fn a_hung_bench_is_stopped_by_its_guard_and_the_source_switched_off() {
    let dir = tempfile::tempdir().unwrap();
    let station = dir.path().join("served-station.yaml");
    let reports = dir.path().join("reports");
    let (mut serve, served) = serve(&station);
    let events = dir.path().join("events.jsonl");
    let mut hung = bench(&station, &reports, &dir.path().join("key.pem"), &events);
    wait_for(&served, "source output on", Duration::from_secs(60));
    signal(&hung, rustix::process::Signal::STOP);
    let stopped = Instant::now();
    let off = wait_for(&served, "source output off", Duration::from_secs(10));
    let took = off.saturating_duration_since(stopped).as_secs_f64();
    eprintln!("the source went off {took:.3} s after the bench hung");
    assert!(
        (GUARD_TIMEOUT_S - 0.3..=GUARD_TIMEOUT_S + 1.0).contains(&took),
        "the source went off {took:.3} s after the bench hung; the guard waits {GUARD_TIMEOUT_S} s"
    );
    // The guard killed the hung bench.
    let status = hung.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "{status:?}"
    );
    let report = guard_report(&reports.join("guard"), Duration::from_secs(10));
    assert!(
        report.contains("no heartbeat from the bench process"),
        "{report}"
    );
    drop(serve.stdin.take());
    serve.wait().unwrap();
}
