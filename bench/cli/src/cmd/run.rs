use crate::console::ConsoleObserver;
use chrono::Local;
use clap::Args;
use meterbench_procedure::{SimFault, Station};
use meterbench_runner::operator::{Operator, TerminalOperator};
use meterbench_runner::{FanOut, Observer, Outcome};
use meterbench_session::paths::{BenchHome, default_store, load_or_create_key};
use meterbench_session::{
    JsonLines, Prepared, SessionError, SessionOptions, deliver, station_outputs,
};
use meterbench_signing::key_id;
use meterbench_store::StoreLocation;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What `run` (and `validate` of a combination) uses when a file is not named.
pub(crate) const DEFAULT_PROCEDURE: &str = "procedures/en50470-3-class-b.yaml";
pub(crate) const DEFAULT_FIXTURE: &str = "fixtures/cpim1000.yaml";
pub(crate) const DEFAULT_STATION: &str = "hw/stations/sim.yaml";

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Procedure to run: a path, or a name in the bench home's procedures/
    /// [default: procedures/en50470-3-class-b.yaml in the bench home].
    #[arg(long)]
    pub procedure: Option<PathBuf>,
    /// Fixture profile of the devices under test: a path, or a name in the bench home's
    /// fixtures/ [default: fixtures/cpim1000.yaml in the bench home].
    #[arg(long)]
    pub fixture: Option<PathBuf>,
    /// Station file binding roles to instruments and declaring the rack's positions: a
    /// path, or a name in the bench home's hw/stations/ [default: hw/stations/sim.yaml in
    /// the bench home].
    #[arg(long)]
    pub station: Option<PathBuf>,
    /// Serial number of a device under test (scan it from the nameplate): `SERIAL` for
    /// the only position, `POSITION=SERIAL` for one of a rack; repeat for each position.
    /// On the simulated bench each position defaults to its simulated device's.
    #[arg(long = "serial", value_name = "[POSITION=]SERIAL")]
    pub serials: Vec<String>,
    /// Positions of the rack to measure, e.g. `1,2,5` [default: the positions given a
    /// serial; on a simulated station every position holding a device of the fixture's
    /// kind].
    #[arg(long, value_delimiter = ',', value_name = "POSITION,...")]
    pub positions: Vec<u32>,
    /// Simulated bench only: pace the virtual clock to the wall clock.
    #[arg(long)]
    pub realtime: bool,
    /// Simulated bench only: give a simulated meter a fault, as YAML, e.g.
    /// `{dead_led: {port: right}}`, `{creep: {port: left, power_w: 6}}`,
    /// `{no_start: {port: left, threshold_a: 0.05}}`,
    /// `{wrong_constant: {port: left, imp_per_kwh: 20400}}`,
    /// `{error_bump: {port: right, from_a: 4, to_a: 6, cos_phi: 1, error_percent: 1.6}}`;
    /// on a rack, name the position: `{dead_led: {position: 7, port: right}}`.
    /// May be repeated.
    #[arg(long = "sim-fault", value_name = "YAML")]
    pub sim_faults: Vec<String>,
    /// Answers to the procedure's questions (LCD readings, seals, scans) for an
    /// unattended station: a `meterbench.answers/1` file, `FILE` for every position or
    /// `POSITION=FILE` for one. Without it the questions are asked at this terminal; on a
    /// simulated station the simulated technician answers them from the simulated
    /// devices (unless --ask).
    #[arg(long = "answers", value_name = "[POSITION=]FILE")]
    pub answers: Vec<String>,
    /// Simulated bench only: ask the procedure's questions at this terminal instead of
    /// letting the simulated technician answer them.
    #[arg(long, conflicts_with = "answers")]
    pub ask: bool,
    /// After the procedure, measure each point a device failed once more; both attempts
    /// stay in its record and the certificate names the retest.
    #[arg(long)]
    pub retest_failed: bool,
    /// Also write the session's event stream (per position and port, timestamped) to
    /// this file as JSON lines, as the events happen.
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    #[command(flatten)]
    pub order: OrderArgs,
    #[command(flatten)]
    pub issue: IssueArgs,
}

/// The order behind the calibration (ISO/IEC 17025 7.8.2.1 e, g, h), printed on the
/// certificate and written into the DCC.
#[derive(Debug, Args)]
pub struct OrderArgs {
    /// The customer's name [default: not recorded, and the certificate says so].
    #[arg(long)]
    pub customer: Option<String>,
    /// How to reach the customer (address, e-mail).
    #[arg(long, requires = "customer")]
    pub customer_contact: Option<String>,
    /// The day the item was received, YYYY-MM-DD.
    #[arg(
        long,
        requires = "customer",
        value_name = "YYYY-MM-DD",
        value_parser = meterbench_session::iso_date
    )]
    pub received: Option<chrono::NaiveDate>,
    /// The item's condition on receipt, e.g. "housing undamaged, seals intact".
    #[arg(long, requires = "customer")]
    pub condition: Option<String>,
}

impl OrderArgs {
    pub fn order(&self) -> anyhow::Result<Option<meterbench_runner::record::Order>> {
        Ok(self
            .customer
            .as_ref()
            .map(|c| meterbench_runner::record::Order {
                customer: c.clone(),
                contact: self.customer_contact.clone(),
                received: self.received,
                condition: self.condition.clone(),
            }))
    }
}

/// Where a session's runs go and who signs them (`run` and `retest`).
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// Folder for run folders, the issuance log and (unless --store) the results store
    /// [default: reports in the bench home].
    #[arg(long)]
    pub reports: Option<PathBuf>,
    /// Do not draw progress bars (logs and CI).
    #[arg(long)]
    pub quiet: bool,
    /// The bench's Ed25519 signing key (created on first use, in a folder that exists)
    /// [default: $METERBENCH_SIGNING_KEY, else keys/signing-key.pem in the bench home].
    #[arg(long)]
    pub signing_key: Option<PathBuf>,
    /// The authorised signatory of the run's documents, by name: one of the station's
    /// `laboratory.signatories` [default: the only one listed].
    #[arg(long)]
    pub signer: Option<String>,
    /// Results store the finished runs are filed into (for `runs` and `audit`): a folder,
    /// or a postgres:// URL for a store shared by many stations
    /// [default: $METERBENCH_STORE or REPORTS/store].
    #[arg(long)]
    pub store: Option<StoreLocation>,
}

impl IssueArgs {
    /// The reports folder: as named, else the home's.
    pub fn reports(&self, home: &BenchHome) -> PathBuf {
        self.reports.clone().unwrap_or_else(|| home.reports())
    }

    /// The signing key's file: as named, else the environment's, else the home's.
    pub fn key_path(&self, home: &BenchHome) -> PathBuf {
        self.signing_key
            .clone()
            .unwrap_or_else(|| home.signing_key())
    }
}

pub fn main(args: RunArgs, home: &BenchHome) -> i32 {
    match execute(args, home) {
        Ok(code) => code,
        Err(e) => {
            crate::out::warn(format!("error: {e}"));
            2
        }
    }
}

/// `3=VALUE` → (Some(3), VALUE); `VALUE` → (None, VALUE).
pub(crate) fn by_position(text: &str) -> (Option<u32>, String) {
    match text.split_once('=') {
        Some((p, v)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            (p.parse().ok(), v.to_string())
        }
        _ => (None, text.to_string()),
    }
}

/// The files and devices of a session as the command line names them.
pub(crate) struct SessionFiles<'a> {
    pub procedure: Option<&'a Path>,
    pub fixture: Option<&'a Path>,
    pub station: Option<&'a Path>,
    pub serials: &'a [String],
    pub positions: &'a [u32],
    pub answers: &'a [String],
}

/// Session options from the command line, dated today: `run` and `validate` build them
/// the same way so that they load (and refuse) the same session. Files not named are
/// the bench home's defaults; a name that is not a path from the current folder is looked
/// up in the home.
pub(crate) fn session_options(
    files: SessionFiles<'_>,
    home: &BenchHome,
) -> anyhow::Result<SessionOptions> {
    let mut options = SessionOptions::new(Local::now().date_naive());
    options.procedure = home
        .choose(
            "procedure",
            files.procedure,
            "procedures",
            DEFAULT_PROCEDURE,
        )
        .map_err(anyhow::Error::msg)?;
    options.fixture = home
        .choose("fixture", files.fixture, "fixtures", DEFAULT_FIXTURE)
        .map_err(anyhow::Error::msg)?;
    options.station = home
        .choose("station", files.station, "hw/stations", DEFAULT_STATION)
        .map_err(anyhow::Error::msg)?;
    options.positions = files.positions.to_vec();
    options.serials = files.serials.iter().map(|s| by_position(s)).collect();
    options.answers = files
        .answers
        .iter()
        .map(|a| {
            let (p, f) = by_position(a);
            home.named_file("answers file", Path::new(&f), "hw/answers")
                .map(|f| (p, f))
                .map_err(anyhow::Error::msg)
        })
        .collect::<anyhow::Result<_>>()?;
    options.home = home.clone();
    options.reports = home.reports();
    Ok(options)
}

fn execute(args: RunArgs, home: &BenchHome) -> anyhow::Result<i32> {
    let sim_faults = args
        .sim_faults
        .iter()
        .map(|f| SimFault::parse(f))
        .collect::<Result<Vec<_>, _>>()?;
    let mut options = session_options(
        SessionFiles {
            procedure: args.procedure.as_deref(),
            fixture: args.fixture.as_deref(),
            station: args.station.as_deref(),
            serials: &args.serials,
            positions: &args.positions,
            answers: &args.answers,
        },
        home,
    )?;
    let reports = args.issue.reports(home);
    options.ask = args.ask;
    options.reports = reports.clone();
    options.realtime = args.realtime;
    options.sim_faults = sim_faults;
    options.retest_failed = args.retest_failed;
    options.signer = args.issue.signer.clone();
    options.order = args.order.order()?;
    let prepared = Prepared::load(options).map_err(plain)?;

    // The signing key before anything is switched on: a run must be able to end in a
    // signed bundle.
    let key_path = args.issue.key_path(home);
    let (key, trust) = signing_key(key_path.clone(), home)?;
    for repaired in
        meterbench_session::outputs::check_ready_to_issue(&key, &key_path, &trust, &reports)
            .map_err(anyhow::Error::msg)?
    {
        crate::out::warn(repaired);
    }
    let abort = stop_on_signals()?;

    let mut bound = prepared.bind().map_err(plain)?;
    let guard = start_guard(&prepared.station, &reports)?;
    let terminal: Box<dyn Operator> = Box::new(
        TerminalOperator::new(std::io::BufReader::new(std::io::stdin()), std::io::stderr())
            .stop_on(abort.clone()),
    );
    let mut console = ConsoleObserver::new(!args.issue.quiet, prepared.positions.len() > 1);
    let mut events = match &args.events {
        Some(path) => Some(JsonLines::create(path).map_err(|e| {
            anyhow::anyhow!("cannot write the event stream to {}: {e}", path.display())
        })?),
        None => None,
    };
    let mut observers: Vec<&mut dyn Observer> = vec![&mut console];
    if let Some(e) = events.as_mut() {
        observers.push(e);
    }
    let session = prepared
        .run(&mut bound, Some(terminal), abort, &mut FanOut(observers))
        .map_err(plain)?;
    if let Some(e) = events.as_ref().and_then(|e| e.error.as_ref()) {
        crate::out::warn(format!("warning: the event stream stopped: {e}"));
    }
    drop(bound);
    stand_down(guard, &session);
    let outputs = Outputs {
        key,
        trust,
        reports,
        store: args.issue.store.clone(),
    };
    Ok(outputs.finish(&prepared.station, &session))
}

/// A source on a real port has no watchdog of its own: a guard process outlives this one
/// and switches it off if this process dies or hangs with it on.
pub(crate) fn start_guard(
    station: &Station,
    reports: &std::path::Path,
) -> anyhow::Result<Option<meterbench_session::guard::Guard>> {
    meterbench_session::guard::start_for(station, reports)
}

pub(crate) use meterbench_session::guard::stand_down;

/// Stop on SIGINT (Ctrl-C), SIGTERM, SIGHUP (a lost terminal) and SIGQUIT alike: the
/// first asks the runner to stop (source off, records kept); the session ends as ABORTED.
pub(crate) fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    let abort = Arc::new(AtomicBool::new(false));
    let flag = abort.clone();
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for _ in signals.forever() {
                let again = flag.swap(true, Ordering::SeqCst);
                // The terminal may be gone (that may be the very signal): a message that
                // cannot be written is dropped, never a panic.
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "\n{}",
                    if again {
                        "stop already requested; switching the source off"
                    } else {
                        "stop requested: switching the source off and saving the records"
                    }
                );
            }
        })?;
    Ok(abort)
}

/// The signing key, created on first use (its id printed so it can be published), and
/// the keyring the station trusts (beside the key). A key is not created where a mistyped
/// path would put it: in a folder that is not there (other than the home's own `keys/`).
/// (A new key for reports whose log another key keeps is refused before switch-on by
/// the log's check, naming both key ids.)
pub(crate) fn signing_key(
    key_path: PathBuf,
    home: &BenchHome,
) -> anyhow::Result<(meterbench_signing::SigningKey, meterbench_signing::Keyring)> {
    if !key_path.exists() {
        refuse_a_key_in_a_missing_folder(&key_path, home)?;
    }
    let (key, created) = load_or_create_key(&key_path)?;
    if created {
        crate::out::warn(format!(
            "created a new signing key {} (key id {}) and its keyring {}; publish the keyring so customers can check certificates",
            key_path.display(),
            key_id(&key.verifying_key()),
            meterbench_signing::keyring_path(&key_path).display()
        ));
    }
    let trust = meterbench_session::paths::keyring_for(&key_path, &key.verifying_key(), home)?;
    Ok((key, trust))
}

fn refuse_a_key_in_a_missing_folder(
    key_path: &std::path::Path,
    home: &BenchHome,
) -> anyhow::Result<()> {
    let named = "named by --signing-key, else METERBENCH_SIGNING_KEY";
    let folder = key_path.parent().filter(|d| !d.as_os_str().is_empty());
    // The home's own keys/ however it is written (absolute, `./keys/…`): made on first use.
    let own_keys = std::path::absolute(home.file("keys")).ok();
    if let Some(dir) = folder
        && !dir.is_dir()
        && std::path::absolute(dir).ok() != own_keys
    {
        anyhow::bail!(
            "no signing key {} ({named}), and no folder {}: check the path; a new key is \
             made on purpose with `meterbench keys generate --out {}`",
            key_path.display(),
            dir.display(),
            meterbench_session::shell_word(&key_path.display().to_string())
        );
    }
    Ok(())
}

/// What becomes of a session's runs: printed, bundled and signed, filed.
pub(crate) struct Outputs {
    pub key: meterbench_signing::SigningKey,
    pub trust: meterbench_signing::Keyring,
    pub reports: PathBuf,
    pub store: Option<StoreLocation>,
}

impl Outputs {
    /// Print each run's results, issue and file its bundle; the exit code.
    pub fn finish(self, station: &Station, session: &meterbench_runner::Session) -> i32 {
        for run in &session.runs {
            crate::out::say(meterbench_report::console::results_table_styled(
                &run.record,
                crate::out::colour(),
            ));
        }
        // A run's document names its signatory; this names the station for a run without.
        let signer = format!("{}, station {}", station.laboratory_name, station.id);
        let store = self.store.unwrap_or_else(|| default_store(&self.reports));
        let outputs = station_outputs(self.key, self.trust, signer, &self.reports, store);
        // A bundle's PDF and plots keep a core busy: one worker per core.
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let delivered = deliver(session, &outputs, workers);
        let mut unsigned = false;
        for d in &delivered {
            let at = d.position.filter(|_| session.runs.len() > 1);
            for (output, result) in &d.results {
                match (result, at) {
                    (Ok(m), None) => crate::out::say(m),
                    (Ok(m), Some(p)) => crate::out::say(format!("position {p}: {m}")),
                    (Err(m), _) => {
                        // A bundle not issued is a run without a certificate: an error.
                        let level = if output == "bundle" {
                            "error"
                        } else {
                            "warning"
                        };
                        crate::out::warn(format!(
                            "{level}: {}{output}: {m}",
                            at.map(|p| format!("position {p}: ")).unwrap_or_default()
                        ));
                        // A bundle that could not be signed is a run without a certificate.
                        unsigned |= output == "bundle";
                    }
                }
            }
        }
        if session.runs.len() > 1 {
            crate::out::say(crate::console::session_summary(session));
        }
        let outcome = session.outcome();
        if unsigned && outcome != Outcome::Error {
            2
        } else {
            outcome.exit_code()
        }
    }
}

/// Data errors already say where they are; print them as they are.
pub(crate) fn plain(e: SessionError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}
