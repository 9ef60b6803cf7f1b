//! A station session: load and check the files, decide which positions of the rack are
//! measured and what sits there, bind roles to drivers, run every position from one
//! load, and hand each finished record to its outputs (the signed bundle, the results
//! store, anything else). The command line and the station panel both drive it; the
//! runner's event stream is the only way progress leaves it.

pub mod bind;
pub mod bundle;
pub mod dut_can;
pub mod events_file;
pub mod guard;
pub mod outputs;
pub mod paths;
pub mod serve;
pub mod shipped;
pub mod store_lengths;
pub mod technician;

pub use bind::{BoundPosition, BoundStation, SimOptions, bind};
pub use bundle::Bundle;
pub use events_file::JsonLines;
pub use outputs::{
    Delivered, Drained, Output, StoreFiling, deliver, drain_queue, file_folder, queue_path,
    station_outputs,
};

use chrono::NaiveDate;
use meterbench_procedure::{
    Answers, DataError, DeviceKind, DutFixture, DutProcedure, SimFault, Station,
};
use meterbench_runner::operator::{FileOperator, Operator, PerPosition};
use meterbench_runner::record::PortResult;
use meterbench_runner::{Bench, Mounted, Observer, RunError, RunRecord, RunRequest, Session};
use meterbench_sim::CounterLinkFault;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use technician::SimulatedTechnician;

/// What a session is asked to do.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub procedure: PathBuf,
    pub fixture: PathBuf,
    pub station: PathBuf,
    /// The positions to measure; empty: those named in `serials`, else every position
    /// of a simulated station where a device of the fixture's kind sits, else the only
    /// position of a one-position rack.
    pub positions: Vec<u32>,
    /// Serial numbers, by position (`None`: the only position measured). On a simulated
    /// station a position without one takes its simulated device's.
    pub serials: Vec<(Option<u32>, String)>,
    /// Answers files (LCD readings, seals, scans) for unattended stations, by position
    /// (`None`: every position without one of its own).
    pub answers: Vec<(Option<u32>, PathBuf)>,
    /// On a simulated station, ask the questions of the interactive operator instead of
    /// letting the simulated technician answer them.
    pub ask: bool,
    /// Where run folders and session records go.
    pub reports: PathBuf,
    /// Simulated bench only: pace the virtual clock to the wall clock.
    pub realtime: bool,
    /// Simulated bench only: faults of the simulated meters (a fault without a position
    /// is the only measured position's).
    pub sim_faults: Vec<SimFault>,
    /// Simulated bench only: faults of a simulated counter's link (counter index, fault).
    pub counter_link_faults: Vec<(usize, CounterLinkFault)>,
    /// After the procedure, measure each failed point of a position once more.
    pub retest_failed: bool,
    /// Calibrations are judged against this day.
    pub today: NaiveDate,
    /// The customer and the item's receipt, recorded in every run.
    pub order: Option<meterbench_runner::record::Order>,
    /// The authorised signatory (one of the station's); `None`: the station's only one.
    pub signer: Option<String>,
    /// The bench home: where a retest finds the files its run named.
    pub home: paths::BenchHome,
}

impl SessionOptions {
    /// The repository's defaults: the class B procedure on the CPIM1000 at the
    /// simulated station.
    pub fn new(today: NaiveDate) -> SessionOptions {
        SessionOptions {
            procedure: "procedures/en50470-3-class-b.yaml".into(),
            fixture: "fixtures/cpim1000.yaml".into(),
            station: "hw/stations/sim.yaml".into(),
            positions: Vec::new(),
            serials: Vec::new(),
            answers: Vec::new(),
            ask: false,
            reports: "reports".into(),
            realtime: false,
            sim_faults: Vec::new(),
            counter_link_faults: Vec::new(),
            retest_failed: false,
            today,
            order: None,
            signer: None,
            home: paths::BenchHome::at(Path::new("."), paths::HomeOrigin::CurrentFolder),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// A data file (or the combination of them) is wrong: nothing was switched on.
    #[error("{0}")]
    Data(#[from] DataError),
    /// Something about the request itself.
    #[error("{0}")]
    Request(String),
    /// The station's instruments could not be bound (a port, a device that does not
    /// answer): nothing was switched on.
    #[error("{0:#}")]
    Bind(anyhow::Error),
    #[error(transparent)]
    Run(RunError),
}

impl From<RunError> for SessionError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::Data(d) => SessionError::Data(d),
            e => SessionError::Run(e),
        }
    }
}

/// One position to measure and the device there.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionPlan {
    pub position: u32,
    pub serial: String,
}

/// What a procedure on a fixture at a station is found to need when checked together.
#[derive(Debug, Clone)]
pub struct Combination {
    /// How long the plan keeps the source energised, s (within the station's limit).
    pub expected_energised_s: f64,
    /// The questions it puts to the operator (or an answers file).
    pub questions: Vec<meterbench_runner::operator::Question>,
}

/// Everything the runner checks before switching on, checked before binding (by `run`
/// and by `validate` alike, so both accept and refuse the same files): ratings first (a
/// setpoint beyond them is refused whatever else is wrong), then that the procedure fits
/// the fixture and the station's energised-time limit, then the calibrations due `today`.
pub fn check_combination(
    procedure: &DutProcedure,
    fixture: &DutFixture,
    station: &Station,
    today: NaiveDate,
) -> Result<Combination, SessionError> {
    let planned = meterbench_runner::plan(procedure, fixture, station)?;
    station.check_calibration_due(today)?;
    Ok(Combination {
        expected_energised_s: meterbench_runner::expected_energised_s(&planned),
        questions: meterbench_runner::questions(&planned, fixture),
    })
}

/// A session whose files are loaded and checked, ready to bind and run: everything that
/// can be refused is refused here, before any port is opened.
pub struct Prepared {
    pub options: SessionOptions,
    pub procedure: DutProcedure,
    pub fixture: DutFixture,
    pub station: Station,
    pub positions: Vec<PositionPlan>,
    /// Answers files: for a position, or (`None`) for every other.
    answers: BTreeMap<Option<u32>, Answers>,
    /// The simulated faults, each at its position.
    sim_faults: Vec<(u32, SimFault)>,
    expected_energised_s: f64,
    /// Who authorises the documents: one of the station's signatories.
    pub signatory: Option<meterbench_runner::record::Signatory>,
}

impl Prepared {
    /// Load the files, check that they fit together, decide the positions and their
    /// serial numbers, and plan the procedure: a data error here switches nothing on.
    pub fn load(options: SessionOptions) -> Result<Prepared, SessionError> {
        let procedure = DutProcedure::load(&options.procedure)?;
        let fixture = DutFixture::load(&options.fixture)?;
        let station = Station::load(&options.station)?;
        let Combination {
            expected_energised_s,
            questions: asked,
        } = check_combination(&procedure, &fixture, &station, options.today)?;
        store_lengths::check_procedure(&procedure)?;
        store_lengths::check_fixture(&fixture)?;
        store_lengths::check_station(&station)?;
        let positions = resolve_positions(&options, &station, &fixture)?;
        store_lengths::check_run_ids(&station, &positions)?;
        let signatory = station
            .signatory(options.signer.as_deref())
            .map(|s| meterbench_runner::record::Signatory {
                name: s.name,
                role: s.role,
            })
            .map(Some)
            .map_err(SessionError::Request)?;
        if let Some(order) = &options.order {
            check_order(order, options.today)?;
        }
        let mut answers = BTreeMap::new();
        for (p, path) in &options.answers {
            if let Some(p) = p
                && !positions.iter().any(|x| x.position == *p)
            {
                return Err(SessionError::Request(format!(
                    "answers for position {p}, which is not measured"
                )));
            }
            // Every answer the procedure will ask for, in its format, before switch-on.
            let a = Answers::load(path)?;
            meterbench_runner::check_answers(&a, &asked)?;
            for plan in positions
                .iter()
                .filter(|x| p.is_none_or(|p| p == x.position))
            {
                meterbench_runner::check_scanned_serial(&a, plan.position, &plan.serial)?;
            }
            answers.insert(*p, a);
        }
        if !options.sim_faults.is_empty() || !options.counter_link_faults.is_empty() {
            if station.simulation.is_none() {
                return Err(SessionError::Request(
                    "simulated faults are for simulated stations only".into(),
                ));
            }
            if fixture.kind() == DeviceKind::CurrentSensor && !options.sim_faults.is_empty() {
                return Err(SessionError::Request(
                    "--sim-fault gives faults to simulated meters; a simulated sensor's errors are in the station's simulation (csp1)".into(),
                ));
            }
        }
        let mut sim_faults = Vec::new();
        for f in &options.sim_faults {
            let position = match (f.position(), positions.as_slice()) {
                (Some(p), _) => p,
                (None, [only]) => only.position,
                (None, _) => {
                    return Err(SessionError::Request(format!(
                        "the fault on port `{}` names no position, and {} are measured: add `position: N`",
                        f.port(),
                        positions.len()
                    )));
                }
            };
            sim_faults.push((position, f.clone()));
        }
        Ok(Prepared {
            options,
            procedure,
            fixture,
            station,
            positions,
            answers,
            sim_faults,
            expected_energised_s,
            signatory,
        })
    }

    /// How long the procedure is expected to keep the source energised, s (checked
    /// against the station's `safety.max_energised_s` when loaded).
    pub fn expected_energised_s(&self) -> f64 {
        self.expected_energised_s
    }

    /// Bind the station's roles and the measured positions' interfaces.
    pub fn bind(&self) -> Result<BoundStation, SessionError> {
        let ids: Vec<u32> = self.positions.iter().map(|p| p.position).collect();
        bind(
            &self.station,
            &self.fixture,
            &ids,
            self.reads_over_can(),
            self.procedure.reference_conditions().is_some(),
            &SimOptions {
                realtime: self.options.realtime,
                dut_faults: self.sim_faults.clone(),
                counter_link_faults: self.options.counter_link_faults.clone(),
            },
        )
        .map_err(SessionError::Bind)
    }

    /// Whether a step reads the devices over their CAN bus (identity or register).
    pub fn reads_over_can(&self) -> bool {
        let DutProcedure::Meter(p) = &self.procedure else {
            return false;
        };
        p.steps.iter().any(|s| match &s.kind {
            meterbench_procedure::StepKind::Identity(i) => {
                i.read_from == meterbench_procedure::IdentitySource::Can
            }
            meterbench_procedure::StepKind::Register(r) => {
                r.read_from == meterbench_procedure::IdentitySource::Can
            }
            _ => false,
        })
    }

    /// Who answers the procedure's questions: the answers files, else on a simulated
    /// station its technician (unless asked not to), else `interactive` (a person at
    /// the terminal or the panel).
    fn operator(
        &self,
        bound: &BoundStation,
        interactive: Option<Box<dyn Operator>>,
    ) -> Option<Box<dyn Operator>> {
        let file =
            |a: &Answers| -> Box<dyn Operator> { Box::new(FileOperator { answers: a.clone() }) };
        let fallback: Option<Box<dyn Operator>> = match (
            self.answers.get(&None),
            &bound.world,
            &self.station.simulation,
        ) {
            (Some(a), _, _) => Some(file(a)),
            (None, Some(world), Some(sim)) if !self.options.ask => Some(Box::new(
                SimulatedTechnician::new(world.clone(), sim.clone(), self.positions[0].position),
            )),
            _ => interactive,
        };
        let by_position: BTreeMap<u32, Box<dyn Operator>> = self
            .answers
            .iter()
            .filter_map(|(p, a)| p.map(|p| (p, file(a))))
            .collect();
        if by_position.is_empty() {
            fallback
        } else {
            Some(Box::new(PerPosition {
                by_position,
                default: fallback,
            }))
        }
    }

    /// Run the session on a bound station. `abort` stops it (Ctrl-C, SIGTERM, the panel's
    /// Stop) with the source off; `observer` receives every event.
    pub fn run(
        &self,
        bound: &mut BoundStation,
        interactive: Option<Box<dyn Operator>>,
        abort: Arc<AtomicBool>,
        observer: &mut dyn Observer,
    ) -> Result<Session, SessionError> {
        self.run_steps(bound, interactive, abort, observer, None, Vec::new())
    }

    /// Run only some steps of the plan (by index), continuing the given stored records
    /// (one per position, in order; a retest in a later session).
    pub fn run_steps(
        &self,
        bound: &mut BoundStation,
        interactive: Option<Box<dyn Operator>>,
        abort: Arc<AtomicBool>,
        observer: &mut dyn Observer,
        only_steps: Option<Vec<usize>>,
        mut priors: Vec<RunRecord>,
    ) -> Result<Session, SessionError> {
        let mut operator = self.operator(bound, interactive);
        let req = RunRequest {
            procedure: &self.procedure,
            fixture: &self.fixture,
            station: &self.station,
            reports_dir: self.options.reports.clone(),
            abort,
            today: self.options.today,
            only_steps,
            retest_failed: self.options.retest_failed,
            // What the source's guard did after an earlier bench process died.
            startup_notes: guard::take_reports(&self.options.reports),
            order: self.options.order.clone(),
            signatory: self.signatory.clone(),
        };
        let BoundStation {
            source,
            reference,
            counters,
            clock,
            positions,
            climate,
            ..
        } = bound;
        let mut priors = priors.drain(..).map(Some).collect::<Vec<_>>();
        priors.resize_with(self.positions.len(), || None);
        let mounted: Vec<Mounted<'_>> = self
            .positions
            .iter()
            .zip(positions.iter_mut())
            .zip(priors)
            .map(|((plan, bound), prior)| Mounted {
                position: plan.position,
                serial: plan.serial.clone(),
                software: bound.software.as_deref_mut().map(|s| s as _),
                sensor: bound.sensor.as_deref_mut().map(|s| s as _),
                prior,
            })
            .collect();
        let bench = Bench {
            source: source.as_mut(),
            reference: reference.as_mut(),
            counters: counters.iter_mut().map(|c| c.as_mut() as _).collect(),
            clock: clock.as_mut(),
            climate: climate.as_deref_mut().map(|c| c as _),
            operator: operator.as_deref_mut().map(|o| o as _),
        };
        Ok(meterbench_runner::run(&req, bench, mounted, observer)?)
    }
}

/// Which positions are measured, and the serial number of the device at each.
fn resolve_positions(
    options: &SessionOptions,
    station: &Station,
    fixture: &DutFixture,
) -> Result<Vec<PositionPlan>, SessionError> {
    let sim = station.simulation.as_ref();
    let simulated_here = |p: u32| -> Option<String> {
        let s = sim?;
        match fixture.kind() {
            DeviceKind::Meter => s.cpim1000(p).map(|d| d.serial_number.clone()),
            DeviceKind::CurrentSensor => s.csp1(p).map(|d| d.serial_number.clone()),
        }
    };
    let mut ids: Vec<u32> = options.positions.clone();
    if ids.is_empty() {
        ids = options.serials.iter().filter_map(|(p, _)| *p).collect();
    }
    if ids.is_empty() {
        ids = if sim.is_some() {
            station
                .rack
                .positions
                .iter()
                .map(|p| p.id)
                .filter(|&p| simulated_here(p).is_some())
                .collect()
        } else if let [only] = station.rack.positions.as_slice() {
            vec![only.id]
        } else {
            Vec::new()
        };
    }
    if ids.is_empty() {
        return Err(SessionError::Request(format!(
            "station `{}` has {} positions and none is named: give each device its serial number with --serial POSITION=SERIAL",
            station.id,
            station.rack.positions.len()
        )));
    }
    let mut seen = Vec::new();
    for &p in &ids {
        if station.rack.position(p).is_none() {
            let all: Vec<String> = station
                .rack
                .positions
                .iter()
                .map(|p| p.id.to_string())
                .collect();
            return Err(SessionError::Request(format!(
                "station `{}` ({}) has no position {p}; its rack has {}",
                station.id,
                station.file.path.display(),
                all.join(", ")
            )));
        }
        if seen.contains(&p) {
            return Err(SessionError::Request(format!(
                "position {p} is named twice"
            )));
        }
        seen.push(p);
        // What the position is wired for, as the runner checks it once the bench is open:
        // `validate` says it too, and a run refuses before opening a port.
        let wired = station.rack.position(p).expect("checked above");
        let at = || format!("station `{}` ({})", station.id, station.file.path.display());
        match fixture {
            DutFixture::CurrentSensor(_) if wired.p1.is_none() => {
                return Err(SessionError::Request(format!(
                    "a current sensor is read over its own port, but position {p} of {} binds none (its `p1:`)",
                    at()
                )));
            }
            DutFixture::Meter(f) => {
                if let Some(port) = f
                    .ports
                    .iter()
                    .find(|q| usize::from(q.head) > wired.heads.len())
                {
                    return Err(SessionError::Request(format!(
                        "position {p} of {} has {} scanning head(s); fixture `{}` puts port {} under head {}",
                        at(),
                        wired.heads.len(),
                        f.id,
                        port.name,
                        port.head
                    )));
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for &p in &ids {
        let given: Vec<&String> = options
            .serials
            .iter()
            .filter(|(q, _)| *q == Some(p) || (q.is_none() && ids.len() == 1))
            .map(|(_, s)| s)
            .collect();
        let serial = match given.as_slice() {
            // As scanned: a GS1 code yields its serial (AI 21); control characters and
            // spaces are refused before they reach a record or an XML document.
            [s] => meterbench_runner::operator::validate(
                meterbench_runner::operator::AnswerFormat::SerialNumber,
                s,
            )
            .map_err(|why| {
                SessionError::Request(format!("serial number {s:?} of position {p}: {why}"))
            })?,
            [] => simulated_here(p).ok_or_else(|| {
                SessionError::Request(if sim.is_some() {
                    format!(
                        "no simulated {} sits at position {p} of station `{}` ({}): see its simulation.positions",
                        fixture.kind().words(),
                        station.id,
                        station.file.path.display()
                    )
                } else if ids.len() == 1 {
                    "--serial is required on a real station: scan the nameplate".to_string()
                } else {
                    format!("no serial number for position {p}: scan it with --serial {p}=SERIAL")
                })
            })?,
            _ => {
                return Err(SessionError::Request(format!(
                    "position {p} is given two serial numbers"
                )));
            }
        };
        out.push(PositionPlan {
            position: p,
            serial,
        });
    }
    // Meters in series share one current: several at once need isolated circuits.
    if ids.len() > 1 && !station.rack.isolated_current_circuits {
        return Err(SessionError::Request(format!(
            "station `{}` ({}) has no isolated current circuits (isolated_current_circuits: false): its positions are in one series circuit, so one is measured at a time; name it with --positions N",
            station.id,
            station.file.path.display()
        )));
    }
    if let Some((None, _)) = options.serials.iter().find(|(p, _)| p.is_none())
        && ids.len() > 1
    {
        return Err(SessionError::Request(format!(
            "{} positions are measured: give each serial with --serial POSITION=SERIAL",
            ids.len()
        )));
    }
    Ok(out)
}

/// The longest customer name an order takes, in characters.
pub const MAX_CUSTOMER_CHARS: usize = 200;
/// The longest contact or condition text an order takes, in characters.
pub const MAX_ORDER_TEXT_CHARS: usize = 500;

/// What is wrong with an order as typed, by kind: the panel says it in the operator's
/// language from its code and fields, the terminal in English.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum OrderProblem {
    CustomerEmpty,
    /// `field` is the flag's name (`--customer`), the panel's field the same.
    TooLong {
        field: String,
        chars: usize,
        max: usize,
    },
    ControlCharacter {
        field: String,
        code_point: String,
    },
    ReceivedInFuture {
        received: String,
        today: String,
    },
}

impl std::fmt::Display for OrderProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OrderProblem::CustomerEmpty => f.write_str("the customer's name is empty (--customer)"),
            OrderProblem::TooLong { field, chars, max } => write!(
                f,
                "{field} is {chars} characters long; a certificate takes at most {max}: shorten it"
            ),
            OrderProblem::ControlCharacter { field, code_point } => write!(
                f,
                "{field} holds the control or format character {code_point}: type it again"
            ),
            OrderProblem::ReceivedInFuture { received, today } => write!(
                f,
                "--received {received} is after today ({today}): the item must have arrived before it is calibrated"
            ),
        }
    }
}

/// A calendar day as the bench's files and options write it: `YYYY-MM-DD`, the year in
/// four digits. chrono alone reads `26-11-30` as the year 26, which a signed certificate
/// would then carry.
pub fn iso_date(text: &str) -> Result<NaiveDate, String> {
    let b = text.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    let wrong = || format!("`{text}` is not a date written YYYY-MM-DD (four-digit year)");
    if !shaped {
        return Err(wrong());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|e| format!("`{text}` is no day of the calendar ({e})"))
}

/// The order as typed or scanned: a customer named, texts without control characters
/// (they end up in XML and on paper), an item not received after the run's day.
pub fn check_order(
    order: &meterbench_runner::record::Order,
    today: NaiveDate,
) -> Result<(), SessionError> {
    order_problem(order, today).map_or(Ok(()), |p| Err(SessionError::Request(p.to_string())))
}

/// What is wrong with the order, if anything (see [`check_order`]).
pub fn order_problem(
    order: &meterbench_runner::record::Order,
    today: NaiveDate,
) -> Option<OrderProblem> {
    if order.customer.trim().is_empty() {
        return Some(OrderProblem::CustomerEmpty);
    }
    // What fits a certificate's line or two; more is a paste of something else (a file,
    // a whole e-mail), never a customer's name or address.
    for (what, text, max) in [
        ("--customer", Some(&order.customer), MAX_CUSTOMER_CHARS),
        (
            "--customer-contact",
            order.contact.as_ref(),
            MAX_ORDER_TEXT_CHARS,
        ),
        (
            "--condition",
            order.condition.as_ref(),
            MAX_ORDER_TEXT_CHARS,
        ),
    ] {
        if let Some(t) = text
            && t.chars().count() > max
        {
            return Some(OrderProblem::TooLong {
                field: what.into(),
                chars: t.chars().count(),
                max,
            });
        }
    }
    for (what, text) in [
        ("--customer", Some(&order.customer)),
        ("--customer-contact", order.contact.as_ref()),
        ("--condition", order.condition.as_ref()),
    ] {
        // Controls, and the format characters that reorder or hide text (a right-to-left
        // override prints the name backwards on the certificate).
        if let Some(t) = text
            && let Some(c) = t.chars().find(|&c| {
                (c.is_control() && c != '\n')
                    || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
            })
        {
            return Some(OrderProblem::ControlCharacter {
                field: what.into(),
                code_point: format!("U+{:04X}", c as u32),
            });
        }
    }
    if let Some(r) = order.received
        && r > today
    {
        return Some(OrderProblem::ReceivedInFuture {
            received: r.to_string(),
            today: today.to_string(),
        });
    }
    None
}

/// A retest of one point of a stored run, in a later session: the run's own procedure,
/// fixture and station (the files must be the ones it used: their hashes are checked),
/// its position and device. The new record carries the stored one's steps and appends
/// the new attempt; it is a new run that amends the stored one.
pub struct Retest {
    pub prepared: Prepared,
    pub step: usize,
    pub prior: RunRecord,
    /// The failed check that compares the point, when the point itself passed.
    pub for_check: Option<String>,
}

impl Retest {
    /// Plan the retest of point `step_name` of `record` (read from `record_path`).
    /// `options` gives the reports folder, the day and the simulation; its file paths
    /// are replaced by the run's own.
    pub fn plan(
        record: RunRecord,
        step_name: &str,
        mut options: SessionOptions,
    ) -> Result<Retest, SessionError> {
        // The run's files as it named them, else where the home has them (a run made in
        // the home's folder names them relative to it).
        let find = |what: &str, path: &str, folder: &str| {
            options
                .home
                .named_file(what, Path::new(path), folder)
                .unwrap_or_else(|_| PathBuf::from(path))
        };
        options.procedure = find("procedure", &record.procedure.path, "procedures");
        options.fixture = find("fixture", &record.fixture.path, "fixtures");
        options.station = find("station", &record.station.path, "hw/stations");
        let position = record.position.as_ref().map_or(1, |p| p.id);
        options.positions = vec![position];
        options.serials = vec![(Some(position), record.dut.serial_number.clone())];
        options.retest_failed = false;
        // The retest continues the same order: the item has not been received again.
        options.order = record.order.clone();
        let prepared = Prepared::load(options)?;
        for (what, file, hash) in [
            (
                "procedure",
                prepared.procedure.file(),
                &record.procedure.sha256,
            ),
            ("fixture", prepared.fixture.file(), &record.fixture.sha256),
            ("station", &prepared.station.file, &record.station.sha256),
        ] {
            if &file.sha256 != hash {
                return Err(SessionError::Request(format!(
                    "the {what} file {} has changed since run {} (sha256 {} then, {} now): a retest measures with the files the run used",
                    file.path.display(),
                    record.run_id,
                    hash,
                    file.sha256
                )));
            }
        }
        let planned =
            meterbench_runner::plan(&prepared.procedure, &prepared.fixture, &prepared.station)?;
        let points: Vec<&meterbench_runner::PlannedStep> =
            planned.iter().filter(|p| p.kind().is_point()).collect();
        let Some(step) = points.iter().find(|p| p.name == step_name) else {
            let names: Vec<&str> = points.iter().map(|p| p.name.as_str()).collect();
            return Err(SessionError::Request(format!(
                "run {} has no point `{step_name}` to measure again (its points: {})",
                record.run_id,
                names.join(", ")
            )));
        };
        // Only a point that was measured and failed is measured again: a run that
        // ended without a verdict (ERROR, ABORTED) has steps never measured, and a
        // retest must not stand in for them.
        if record.outcome != meterbench_runner::Outcome::Fail {
            return Err(SessionError::Request(format!(
                "run {} ended {}{}: only a run that failed can have a point measured again",
                record.run_id,
                record.outcome.word(),
                record
                    .outcome_reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            )));
        }
        // A point that passed its own limit may still be one a failed check compares
        // (single-phase against balanced load): measuring it again is how that is settled.
        let failed_check = record
            .latest_attempts()
            .into_iter()
            .find(|s| {
                s.outcome == meterbench_runner::Outcome::Fail
                    && s.ports.iter().any(|p| {
                        matches!(&p.result, Some(PortResult::LoadDifference { balanced_step, comparisons, .. })
                            if balanced_step == step_name || comparisons.iter().any(|c| c.step == step_name))
                    })
            })
            .map(|s| s.name.clone());
        let in_failed_check = failed_check.is_some();
        let mut for_check = None;
        match record.steps.iter().rev().find(|s| s.index == step.index) {
            Some(last) if last.outcome == meterbench_runner::Outcome::Fail => {}
            Some(_) if in_failed_check => for_check = failed_check,
            Some(last) => {
                return Err(SessionError::Request(format!(
                    "point `{step_name}` of run {} ended {} (attempt {}): only a failed point, or one a failed check compares, is measured again",
                    record.run_id,
                    last.outcome.word(),
                    last.attempt
                )));
            }
            None => {
                return Err(SessionError::Request(format!(
                    "run {} never measured `{step_name}`",
                    record.run_id
                )));
            }
        }
        if let Some(later) = amended_by(&prepared.options.reports, &record.run_id) {
            return Err(SessionError::Request(format!(
                "run {} was already amended by run {later}: measure its point again instead",
                record.run_id
            )));
        }
        let step = step.index;
        Ok(Retest {
            prepared,
            step,
            prior: record,
            for_check,
        })
    }

    /// Measure the point again on a bound station; the deviation names the attempt
    /// before it.
    pub fn run(
        &self,
        bound: &mut BoundStation,
        interactive: Option<Box<dyn Operator>>,
        abort: Arc<AtomicBool>,
        observer: &mut dyn Observer,
    ) -> Result<Session, SessionError> {
        let mut prior = self.prior.clone();
        if let Some(before) = prior.steps.iter().rev().find(|s| s.index == self.step) {
            let mut deviation =
                meterbench_runner::record::Deviation::retest_after(before, Some(&prior.run_id));
            if let (Some(check), meterbench_runner::record::Deviation::Retest { reason, .. }) =
                (&self.for_check, &mut deviation)
            {
                reason.push_str(&format!(
                    ", where the check `{check}` that compares it failed"
                ));
            }
            prior.deviations.push(deviation);
        }
        self.prepared.run_steps(
            bound,
            interactive,
            abort,
            observer,
            Some(vec![self.step]),
            vec![prior],
        )
    }
}

/// The run in `reports` that amends run `run_id`, if there is one: one that ended with a
/// verdict (an amending run stopped or in error, or still in progress after a crash,
/// amends nothing, and the point may be measured again).
pub fn amended_by(reports: &Path, run_id: &str) -> Option<String> {
    std::fs::read_dir(reports)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("record.json"))
        .filter(|p| p.is_file())
        .filter_map(|p| RunRecord::read(&p).ok())
        .find(|r| r.amends.as_deref() == Some(run_id) && amends_with_a_verdict(r.outcome))
        .map(|r| r.run_id)
}

/// Whether an amending run that ended so amends its run (see [`amended_by`]).
pub fn amends_with_a_verdict(outcome: meterbench_runner::Outcome) -> bool {
    use meterbench_runner::Outcome::*;
    matches!(outcome, Pass | Fail | NotDecidable)
}

/// A stored run's record, for a retest in a later session: by its folder, its
/// record.json, or its run id under `reports`.
pub fn stored_record(reports: &Path, what: &str) -> Result<(RunRecord, PathBuf), SessionError> {
    let candidates = [
        PathBuf::from(what),
        PathBuf::from(what).join("record.json"),
        reports.join(what).join("record.json"),
    ];
    for c in &candidates {
        if c.is_file() {
            let r = RunRecord::read(c).map_err(|e| {
                SessionError::Request(format!("{}: not a run record: {e}", c.display()))
            })?;
            return Ok((r, c.clone()));
        }
    }
    // No file and line to point at: the name is the user's, not a file's content.
    Err(SessionError::Request(format!(
        "`{what}` is no run: neither a run folder or record.json here, nor a run of that id \
         in {} (`meterbench runs --reports {} list` lists the stored runs)",
        std::path::absolute(reports)
            .unwrap_or_else(|_| reports.to_path_buf())
            .display(),
        shell_word(&reports.display().to_string())
    )))
}

/// `text` as one word of a shell command line, quoted when it needs to be (a
/// PostgreSQL URL's `&` would send the rest to the background, a space split it): for
/// the commands the messages suggest. Text with a NUL byte, which no shell word holds,
/// is shown as it is.
pub fn shell_word(text: &str) -> std::borrow::Cow<'_, str> {
    shlex::try_quote(text).unwrap_or(std::borrow::Cow::Borrowed(text))
}

#[cfg(test)]
mod tests {
    /// An amending run that ended without a verdict (stopped by the operator) amends
    /// nothing: the point may be measured again; one that ended with one (FAIL) does.
    #[test]
    fn a_stopped_amending_run_amends_nothing() {
        use meterbench_runner::Outcome;
        let dir = tempfile::tempdir().unwrap();
        let original = concat!(env!("CARGO_MANIFEST_DIR"), "/../store/tests/data/fail.json");
        let mut r =
            meterbench_runner::record::RunRecord::read(std::path::Path::new(original)).unwrap();
        let amended = r.run_id.clone();
        r.amends = Some(amended.clone());
        let write = |r: &meterbench_runner::record::RunRecord| {
            let folder = dir.path().join(&r.run_id);
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(folder.join("record.json"), serde_json::to_vec(r).unwrap()).unwrap();
        };
        r.run_id = "later-stopped".into();
        r.outcome = Outcome::Aborted;
        write(&r);
        assert_eq!(super::amended_by(dir.path(), &amended), None);
        r.run_id = "later-measured".into();
        r.outcome = Outcome::Fail;
        write(&r);
        assert_eq!(
            super::amended_by(dir.path(), &amended).as_deref(),
            Some("later-measured")
        );
    }

    #[test]
    fn a_suggested_commands_words_paste_into_a_shell() {
        use super::shell_word;
        assert_eq!(
            shell_word("reports/20261208T0102Z-sim-1-SN1"),
            "reports/20261208T0102Z-sim-1-SN1"
        );
        assert_eq!(
            shell_word("postgres:///lab?host=/run/postgresql&user=bench"),
            "'postgres:///lab?host=/run/postgresql&user=bench'"
        );
        assert_eq!(shell_word("/tmp/my reports/run"), "'/tmp/my reports/run'");
        assert_eq!(shell_word("it's"), r#""it's""#);
    }

    use super::*;

    #[test]
    fn a_day_is_read_only_with_its_four_digit_year() {
        assert_eq!(
            iso_date("2026-11-30"),
            Ok(NaiveDate::from_ymd_opt(2026, 11, 30).unwrap())
        );
        for wrong in [
            "26-11-30",
            "02026-11-30",
            "2026-1-30",
            "2026/11/30",
            "+2026-11-30",
            "",
        ] {
            let e = iso_date(wrong).unwrap_err();
            assert!(
                e.contains("is not a date written YYYY-MM-DD"),
                "{wrong}: {e}"
            );
        }
        let e = iso_date("2026-02-30").unwrap_err();
        assert!(e.contains("is no day of the calendar"), "{e}");
    }
}
