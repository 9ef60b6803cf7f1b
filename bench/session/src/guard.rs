//! The source's guard: a small separate process that outlives the bench and switches the
//! source's output off when the bench stops without doing so itself.
//!
//! Neither source the bench drives documents a communication watchdog (see each
//! profile's `comms_watchdog`), so nothing in the instrument switches the output off
//! when the bench process is killed (SIGKILL, the OOM killer) or hangs. The guard stands
//! in: the bench starts it with a pipe on its standard input and writes a heartbeat
//! byte to it every [`HEARTBEAT`]. When the pipe closes without the bench having said it
//! finished (the kernel closes it whatever killed the bench), or no heartbeat arrives
//! within the station's `safety.guard_timeout_s` (a hang; the guard then kills the
//! bench so that the port is free), the guard opens the source's port itself, switches
//! the output off, reads it back, and leaves a report in `REPORTS/guard/` that the next
//! run puts in its record.
//!
//! Only a source on a real port (a serial device or TCP) gets a guard: the in-process
//! simulated source ends with the bench.

use crate::bind::open_source;
use chrono::Utc;
use meterbench_procedure::{Driver, PortSpec, Station};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the bench tells its guard it is alive.
pub const HEARTBEAT: Duration = Duration::from_millis(250);
/// The byte of a heartbeat.
const ALIVE: u8 = b'.';
/// The byte the bench sends when it has switched the source off itself and ends.
const FINISHED: u8 = b'F';

/// What a guard found and did, left for the next run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardReport {
    pub station: String,
    /// The bench process it guarded.
    pub bench_pid: u32,
    /// Why it acted: the bench ended without finishing, or stopped answering.
    pub reason: String,
    /// When it noticed (UTC).
    pub noticed_utc: String,
    /// When the source confirmed its output off, if it did (UTC).
    pub off_confirmed_utc: Option<String>,
    /// What went wrong when it could not confirm.
    pub error: Option<String>,
}

/// Whether `station`'s source needs a guard: on a real port, with no watchdog of its own.
pub fn needs_guard(station: &Station) -> bool {
    let b = &station.source.binding;
    b.driver == Driver::Scpi && matches!(b.port, Some(PortSpec::Serial(_) | PortSpec::Tcp(_)))
}

/// A guard for `station`'s source when it needs one ([`needs_guard`]), run from this
/// process's own executable (its hidden `guard` command).
pub fn start_for(station: &Station, reports: &Path) -> anyhow::Result<Option<Guard>> {
    if !needs_guard(station) {
        return Ok(None);
    }
    let exe = std::env::current_exe()?;
    Guard::start(&exe, station, reports)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("cannot start the source's guard process: {e}"))
}

/// The source is off and the bench confirmed it for every run: the guard stands down.
/// Otherwise it is dropped, and switches the source off itself.
pub fn stand_down(guard: Option<Guard>, session: &meterbench_runner::Session) {
    if let Some(g) = guard
        && session
            .runs
            .iter()
            .all(|r| r.record.source.off_confirmed == Some(true))
    {
        g.finished();
    }
}

/// The guard of a running bench: heartbeats on a thread until [`Guard::finished`].
pub struct Guard {
    child: Child,
    stdin: Arc<Mutex<Option<ChildStdin>>>,
    stop: Arc<AtomicBool>,
}

impl Guard {
    /// Start `exe guard` for `station` (its file) with its reports in `reports`.
    pub fn start(exe: &Path, station: &Station, reports: &Path) -> std::io::Result<Guard> {
        use std::os::unix::process::CommandExt as _;
        let mut child = Command::new(exe)
            .arg("guard")
            .arg("--station")
            .arg(&station.file.path)
            .arg("--reports")
            .arg(reports)
            .arg("--bench-pid")
            .arg(std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C at the terminal or a hang-up meant for the
            // bench's group does not reach it.
            .process_group(0)
            .spawn()?;
        let stdin = Arc::new(Mutex::new(child.stdin.take()));
        let stop = Arc::new(AtomicBool::new(false));
        let (pipe, flag) = (stdin.clone(), stop.clone());
        std::thread::Builder::new()
            .name("guard-heartbeat".into())
            .spawn(move || {
                while !flag.load(Ordering::SeqCst) {
                    if let Some(p) = pipe.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                        let _ = p.write_all(&[ALIVE]);
                    }
                    std::thread::sleep(HEARTBEAT);
                }
            })?;
        Ok(Guard { child, stdin, stop })
    }

    /// The bench switched the source off itself (confirmed): the guard stands down and
    /// exits. Dropping the guard without this lets it act.
    pub fn finished(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(mut p) = self.stdin.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = p.write_all(&[FINISHED]);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Guard {
    /// The pipe closes without `finished`: the guard switches the source off.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.stdin.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// The guard process itself (`meterbench guard`): wait on standard input, act when the
/// bench is gone or silent for `timeout`.
pub fn watch(station_path: &Path, reports: &Path, bench_pid: u32) -> i32 {
    let station = meterbench_procedure::Station::load(station_path);
    let timeout = Duration::from_secs_f64(
        station
            .as_ref()
            .ok()
            .and_then(|s| s.guard_timeout_s)
            .unwrap_or(2.0),
    );
    // A terminal's Ctrl-C or hang-up is the bench's business, not the guard's.
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGHUP] {
        let _ = signal_hook::flag::register(signal, Arc::new(AtomicBool::new(false)));
    }
    let (tx, rx) = std::sync::mpsc::channel::<Option<u8>>();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut byte = [0u8; 1];
        loop {
            match stdin.read(&mut byte) {
                Ok(1) => {
                    if tx.send(Some(byte[0])).is_err() {
                        return;
                    }
                }
                _ => {
                    let _ = tx.send(None);
                    return;
                }
            }
        }
    });
    let reason = loop {
        match rx.recv_timeout(timeout) {
            Ok(Some(FINISHED)) => return 0,
            Ok(Some(_)) => continue,
            Ok(None) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                break format!(
                    "the bench process {bench_pid} ended without confirming that the source was off"
                );
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                // A hung bench holds the port: stop it first.
                if let Some(pid) = i32::try_from(bench_pid)
                    .ok()
                    .and_then(rustix::process::Pid::from_raw)
                {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
                break format!(
                    "no heartbeat from the bench process {bench_pid} for {:.1} s: it was stopped",
                    timeout.as_secs_f64()
                );
            }
        }
    };
    let noticed_utc = Utc::now().to_rfc3339();
    let (station_id, outcome) = match station {
        Ok(s) => (s.id.clone(), switch_off(&s)),
        Err(e) => (String::new(), Err(format!("cannot read the station: {e}"))),
    };
    let report = GuardReport {
        station: station_id,
        bench_pid,
        reason,
        noticed_utc,
        off_confirmed_utc: outcome.as_ref().ok().cloned(),
        error: outcome.err(),
    };
    let _ = write_report(reports, &report);
    if report.error.is_some() { 2 } else { 0 }
}

/// Open the source as the bench does and switch its output off, confirmed by a
/// read-back; the port may take a moment to be released by the dead bench.
fn switch_off(station: &Station) -> Result<String, String> {
    let mut last = String::new();
    for _ in 0..20 {
        match open_source(station) {
            Ok(mut source) => {
                let off = source
                    .set_output(false)
                    .and_then(|()| source.output_is_on());
                match off {
                    Ok(false) => return Ok(Utc::now().to_rfc3339()),
                    Ok(true) => last = "the output still reports on".into(),
                    Err(e) => last = e.to_string(),
                }
            }
            Err(e) => last = format!("{e:#}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(last)
}

fn guard_dir(reports: &Path) -> PathBuf {
    reports.join("guard")
}

fn write_report(reports: &Path, report: &GuardReport) -> std::io::Result<()> {
    let dir = guard_dir(reports);
    std::fs::create_dir_all(&dir)?;
    let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let path = dir.join(format!("{stamp}-{}.json", report.bench_pid));
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(report)?)?;
    std::fs::rename(&tmp, &path)
}

/// The guards' reports not yet taken into a run, as sentences for its record; each is
/// then marked taken (renamed `.seen.json`).
pub fn take_reports(reports: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(guard_dir(reports)) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && !p.to_string_lossy().ends_with(".seen.json")
        })
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        let Ok(r) = serde_json::from_str::<GuardReport>(&text) else {
            continue;
        };
        out.push(match (&r.off_confirmed_utc, &r.error) {
            (Some(off), _) => format!(
                "the source's guard found that {} (noticed {}); it switched the source off, confirmed at {off}",
                r.reason, r.noticed_utc
            ),
            (None, e) => format!(
                "the source's guard found that {} (noticed {}) and could NOT confirm the source off: {}",
                r.reason,
                r.noticed_utc,
                e.as_deref().unwrap_or("unknown")
            ),
        });
        let _ = std::fs::rename(&p, p.with_extension("seen.json"));
    }
    out
}
