//! The panel's one session at a time: started from a request, run on a thread of its
//! own through the session library (the same checks, records, bundles and filing as
//! `meterbench run`), its questions put to the page and answered from it, stopped by
//! the page's Stop with the source off.

use crate::Shared;
use crate::hub::HubObserver;
use meterbench_procedure::{DutFixture, SimFault};
use meterbench_runner::operator::{AnswerFormat, Operator, OperatorError, Question, validate};
use meterbench_runner::record::AnsweredBy;
use meterbench_runner::{Outcome, Session};
use meterbench_session::{
    Prepared, Retest, SessionError, SessionOptions, deliver, guard, station_outputs, stored_record,
};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A run asked for from the page.
#[derive(Debug, Deserialize)]
pub(crate) struct StartRequest {
    /// A procedure file in the bench home's `procedures/`.
    pub procedure: String,
    /// A fixture file in the bench home's `fixtures/`.
    pub fixture: String,
    /// Serial numbers by position, as scanned; empty: the simulated devices'.
    #[serde(default)]
    pub serials: BTreeMap<u32, String>,
    /// Simulated station only: put the procedure's questions to the page instead of the
    /// simulated technician.
    #[serde(default)]
    pub ask: bool,
    /// Simulated station only: faults of the simulated meters, as `run --sim-fault`.
    #[serde(default)]
    pub sim_faults: Vec<String>,
    /// The customer and the item's receipt, as typed (checked as `run --customer` is).
    #[serde(default)]
    pub order: Option<OrderRequest>,
}

/// The order as the page sends it: texts as typed, the date as an `<input type=date>`
/// gives it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrderRequest {
    pub customer: String,
    #[serde(default)]
    pub contact: Option<String>,
    #[serde(default)]
    pub received: Option<String>,
    #[serde(default)]
    pub condition: Option<String>,
}

/// A point of a stored run to measure again.
#[derive(Debug, Deserialize)]
pub(crate) struct RetestRequest {
    pub run_id: String,
    pub step: String,
}

/// Why a request was not started.
pub(crate) enum Refused {
    /// Another session is running.
    Busy,
    /// The request or its files are wrong; nothing was switched on.
    Invalid(String),
    /// The order typed at the start is wrong (said in the operator's language by its
    /// code); nothing was switched on.
    Order(meterbench_session::OrderProblem),
    /// A serial number as scanned is not one (said in the operator's language by its
    /// code, with the position); nothing was switched on.
    Serial {
        position: u32,
        serial: String,
        refusal: meterbench_runner::operator::Refusal,
    },
}

/// The question the session waits on, if any.
struct Pending {
    id: u64,
    format: AnswerFormat,
    answer: SyncSender<String>,
}

/// The running session (at most one) and its open question.
#[derive(Default)]
pub(crate) struct Jobs {
    running: Mutex<Option<Running>>,
    question: Mutex<Option<Pending>>,
    next_question: AtomicU64,
}

struct Running {
    abort: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// What is run: a procedure, or one point of a stored run again.
enum Work {
    Run(Box<Prepared>),
    Retest(Box<Retest>),
}

impl Work {
    fn prepared(&self) -> &Prepared {
        match self {
            Work::Run(p) => p,
            Work::Retest(r) => &r.prepared,
        }
    }
}

pub(crate) enum AnswerError {
    /// Not the question the session waits on (answered already, or the run ended).
    NotAsked,
    /// Not in the question's format: why.
    Refused(meterbench_runner::operator::Refusal),
}

impl Jobs {
    fn lock_running(&self) -> std::sync::MutexGuard<'_, Option<Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_question(&self) -> std::sync::MutexGuard<'_, Option<Pending>> {
        self.question.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn busy(&self) -> bool {
        self.lock_running()
            .as_ref()
            .is_some_and(|r| !r.thread.is_finished())
    }

    /// Ask the running session to stop (source off, records kept); whether one was
    /// running.
    pub fn stop(&self) -> bool {
        match self.lock_running().as_ref() {
            Some(r) if !r.thread.is_finished() => {
                r.abort.store(true, Ordering::SeqCst);
                true
            }
            _ => false,
        }
    }

    /// Stop the running session and wait until it has ended.
    pub fn stop_and_wait(&self) {
        self.stop();
        let running = self.lock_running().take();
        if let Some(r) = running {
            let _ = r.thread.join();
        }
    }

    /// Answer question `id`: validated in the question's format, the normalised answer
    /// handed to the session.
    pub fn answer(&self, id: u64, text: &str) -> Result<String, AnswerError> {
        let mut q = self.lock_question();
        let Some(p) = q.as_ref().filter(|p| p.id == id) else {
            return Err(AnswerError::NotAsked);
        };
        let answer = validate(p.format, text).map_err(AnswerError::Refused)?;
        p.answer
            .send(answer.clone())
            .map_err(|_| AnswerError::NotAsked)?;
        *q = None;
        Ok(answer)
    }
}

/// Load and check a run's files (a refusal switches nothing on) and start it.
pub(crate) fn start(shared: &Arc<Shared>, req: StartRequest) -> Result<(), Refused> {
    let asked = chrono::Utc::now();
    let mut running = shared.job.lock_running();
    if running.as_ref().is_some_and(|r| !r.thread.is_finished()) {
        return Err(Refused::Busy);
    }
    let work = Work::Run(Box::new(prepare(shared, &req)?));
    *running = Some(spawn(shared, work, asked));
    Ok(())
}

/// Plan a retest of a stored run's point and start it.
pub(crate) fn start_retest(shared: &Arc<Shared>, req: RetestRequest) -> Result<(), Refused> {
    let asked = chrono::Utc::now();
    let mut running = shared.job.lock_running();
    if running.as_ref().is_some_and(|r| !r.thread.is_finished()) {
        return Err(Refused::Busy);
    }
    let reports = &shared.config.reports;
    let (record, _) =
        stored_record(reports, &req.run_id).map_err(|e| Refused::Invalid(e.to_string()))?;
    let mut options = options(shared);
    options.ask = false;
    let retest =
        Retest::plan(record, &req.step, options).map_err(|e| Refused::Invalid(e.to_string()))?;
    if retest.prepared.station.id != shared.station.id {
        return Err(Refused::Invalid(format!(
            "run {} was made on station `{}`; this panel serves `{}`",
            req.run_id, retest.prepared.station.id, shared.station.id
        )));
    }
    *running = Some(spawn(shared, Work::Retest(Box::new(retest)), asked));
    Ok(())
}

fn options(shared: &Shared) -> SessionOptions {
    let c = &shared.config;
    let mut o = SessionOptions::new(chrono::Local::now().date_naive());
    o.station = c.station.clone();
    o.reports = c.reports.clone();
    o.realtime = c.realtime;
    o.home = c.home.clone();
    o.signer = c.signer.clone();
    o
}

fn prepare(shared: &Shared, req: &StartRequest) -> Result<Prepared, Refused> {
    prepare_options(shared, req).and_then(|o| {
        // The order's problems by kind, before the files are loaded: the page says them
        // in the operator's language.
        if let Some(p) = o
            .order
            .as_ref()
            .and_then(|order| meterbench_session::order_problem(order, o.today))
        {
            return Err(Refused::Order(p));
        }
        Prepared::load(o).map_err(|e| Refused::Invalid(e.to_string()))
    })
}

fn prepare_options(shared: &Shared, req: &StartRequest) -> Result<SessionOptions, Refused> {
    let invalid = Refused::Invalid;
    let home = &shared.config.home;
    // Only names of the home's files: the page cannot make the bench read another path.
    for name in [&req.procedure, &req.fixture] {
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(invalid(format!(
                "`{name}` is not a file name of the bench home"
            )));
        }
    }
    let mut o = options(shared);
    o.procedure = home
        .named_file("procedure", Path::new(&req.procedure), "procedures")
        .map_err(invalid)?;
    o.fixture = home
        .named_file("fixture", Path::new(&req.fixture), "fixtures")
        .map_err(invalid)?;
    let serials: Vec<(Option<u32>, String)> = req
        .serials
        .iter()
        .filter(|(_, s)| !s.trim().is_empty())
        .map(|(p, s)| (Some(*p), s.clone()))
        .collect();
    // Checked here as the session checks them, for the refusal's code: a wrong scan is
    // the operator's to fix, in the operator's language.
    for (p, s) in &req.serials {
        if s.trim().is_empty() {
            continue;
        }
        if let Err(refusal) = validate(AnswerFormat::SerialNumber, s) {
            return Err(Refused::Serial {
                position: *p,
                serial: s.clone(),
                refusal,
            });
        }
    }
    o.positions = serials.iter().filter_map(|(p, _)| *p).collect();
    o.serials = serials;
    o.ask = req.ask;
    o.order = match &req.order {
        Some(order) => Some(meterbench_runner::record::Order {
            customer: order.customer.clone(),
            contact: order.contact.clone(),
            received: match order.received.as_deref() {
                Some(d) => Some(
                    meterbench_session::iso_date(d)
                        .map_err(|e| invalid(format!("date of receipt: {e}")))?,
                ),
                None => None,
            },
            condition: order.condition.clone(),
        }),
        None => None,
    };
    o.sim_faults = req
        .sim_faults
        .iter()
        .filter(|f| !f.trim().is_empty())
        .map(|f| SimFault::parse(f).map_err(|e| invalid(format!("simulated fault {f}: {e}"))))
        .collect::<Result<_, _>>()?;
    Ok(o)
}

/// Run `work` on a thread of its own. The first message says the session was accepted
/// and when it was asked for (ms since the epoch): a page shows it at once, before the
/// station is bound, and the panel's share of a run's time is measured from it.
fn spawn(shared: &Arc<Shared>, work: Work, asked: chrono::DateTime<chrono::Utc>) -> Running {
    let abort = Arc::new(AtomicBool::new(false));
    shared.hub.begin();
    // The files' own translations go with the start, so a page opened mid-run gets them
    // in the replay: step names, ports, seals and labels in the operator's language.
    let prepared = work.prepared();
    let inspection = match &prepared.fixture {
        DutFixture::Meter(f) => f.inspection.as_ref(),
        DutFixture::CurrentSensor(_) => None,
    };
    shared.hub.publish(json!({
        "event": "panel_started",
        "asked_ms": asked.timestamp_micros() as f64 / 1000.0,
        "texts": prepared.procedure.translations().merged(prepared.fixture.translations()),
        "inspection": inspection,
    }));
    let (s, a) = (shared.clone(), abort.clone());
    let thread = std::thread::Builder::new()
        .name("panel-session".into())
        .spawn(move || {
            // A panic in the session unwinds through the source's guard (which switches
            // it off); the page is told, and the panel is free again.
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&s, work, a)));
            if let Err(panic) = ran {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|m| m.to_string()))
                    .unwrap_or_else(|| "no message".into());
                s.hub.publish(json!({
                    "event": "panel_error",
                    "message": format!("the session ended unexpectedly (a bug): {why}"),
                }));
            }
            s.hub.publish(json!({"event": "panel_idle"}));
        })
        .expect("a thread for the session");
    Running { abort, thread }
}

/// Bind, run, stand the guard down, issue and file: what `meterbench run` does after
/// loading, told to the page as it happens.
fn run(shared: &Arc<Shared>, work: Work, abort: Arc<AtomicBool>) {
    let prepared = work.prepared();
    let failed = |message: String| {
        shared
            .hub
            .publish(json!({"event": "panel_error", "message": message}));
    };
    let mut bound = match prepared.bind() {
        Ok(b) => b,
        Err(e) => return failed(e.to_string()),
    };
    let guard = match guard::start_for(&prepared.station, &shared.config.reports) {
        Ok(g) => g,
        Err(e) => return failed(format!("{e:#}")),
    };
    let operator: Box<dyn Operator> = Box::new(PanelOperator {
        shared: shared.clone(),
        abort: abort.clone(),
    });
    let mut observer = HubObserver(shared.clone());
    let result: Result<Session, SessionError> = match &work {
        Work::Run(p) => p.run(&mut bound, Some(operator), abort, &mut observer),
        Work::Retest(r) => r.run(&mut bound, Some(operator), abort, &mut observer),
    };
    drop(bound);
    let session = match result {
        Ok(s) => s,
        Err(e) => return failed(e.to_string()),
    };
    guard::stand_down(guard, &session);
    let station = &prepared.station;
    // A run's document names its signatory; this names the station for a run without one.
    let signer = format!("{}, station {}", station.laboratory_name, station.id);
    let outputs = station_outputs(
        shared.key.clone(),
        shared.trust.clone(),
        signer,
        &shared.config.reports,
        shared.config.store.clone(),
    );
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    for d in deliver(&session, &outputs, workers) {
        let outcome = session
            .runs
            .iter()
            .find(|r| r.record.run_id == d.run_id)
            .map_or(Outcome::Error, |r| r.record.outcome);
        let signed = d.results.iter().any(|(o, r)| o == "bundle" && r.is_ok());
        let results: Vec<_> = d
            .results
            .iter()
            .map(|(output, r)| match r {
                Ok(m) => json!({"output": output, "ok": true, "message": m}),
                Err(m) => json!({"output": output, "ok": false, "message": m}),
            })
            .collect();
        shared.hub.publish(json!({
            "event": "panel_delivered",
            "position": d.position,
            "run_id": d.run_id,
            "outcome": outcome,
            "signed": signed,
            "results": results,
        }));
    }
}

/// The person at the panel: each question becomes a dialog on the page, and the session
/// waits for a valid answer (or a Stop).
struct PanelOperator {
    shared: Arc<Shared>,
    abort: Arc<AtomicBool>,
}

/// The format's name for the page (which input to show).
fn format_name(f: AnswerFormat) -> &'static str {
    match f {
        AnswerFormat::HexHash { .. } => "hex_hash",
        AnswerFormat::Version => "version",
        AnswerFormat::Reading { .. } => "reading",
        AnswerFormat::SerialNumber => "serial_number",
        AnswerFormat::YesNo => "yes_no",
        AnswerFormat::Shown => "shown",
    }
}

impl Operator for PanelOperator {
    fn ask(&mut self, q: &Question) -> Result<String, OperatorError> {
        let jobs = &self.shared.job;
        let id = jobs.next_question.fetch_add(1, Ordering::SeqCst) + 1;
        let (tx, rx) = sync_channel(1);
        *jobs.lock_question() = Some(Pending {
            id,
            format: q.format,
            answer: tx,
        });
        self.shared.hub.publish(json!({
            "event": "panel_question",
            "id": id,
            "position": q.position,
            "key": q.key,
            "prompt": q.prompt,
            "format": format_name(q.format),
            // The format's numbers, for the page to give the hint in its language.
            "digits": match q.format {
                AnswerFormat::HexHash { digits } => Some(digits),
                _ => None,
            },
            "decimals": match q.format {
                AnswerFormat::Reading { decimals } => Some(decimals),
                _ => None,
            },
            "hint": q.format.hint(),
        }));
        let closed = |answer: Option<&str>| {
            self.shared
                .hub
                .publish(json!({"event": "panel_question_closed", "id": id, "answer": answer}));
        };
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(answer) => {
                    closed(Some(&answer));
                    return Ok(answer);
                }
                Err(RecvTimeoutError::Timeout) if !self.abort.load(Ordering::SeqCst) => {}
                Err(_) => {
                    *jobs.lock_question() = None;
                    closed(None);
                    return Err(OperatorError::Stopped { key: q.key.clone() });
                }
            }
        }
    }

    fn answered_by(&self, _: Option<u32>) -> AnsweredBy {
        AnsweredBy::Panel
    }
}
