use crate::bind::bind_current_sensor;
use crate::bind::{SimOptions, bind};
use crate::cmd::validate::schema_of;
use crate::console::ConsoleObserver;
use crate::issue::{default_key_path, default_store_path, issue, load_or_create_key};
use crate::sim_technician::SimulatedTechnician;
use chrono::Local;
use clap::Args;
use meterbench_procedure::{
    Answers, Fixture, LoadedFile, Procedure, SensorFixture, SensorProcedure, SimFault, Station,
};
use meterbench_runner::operator::{FileOperator, Operator, TerminalOperator};
use meterbench_runner::sensor::{SensorInstruments, SensorRunRequest, run_sensor};
use meterbench_runner::{Finished, Instruments, RunError, RunRequest, run};
use meterbench_signing::key_id;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Procedure to run.
    #[arg(long, default_value = "procedures/en50470-3-class-b.yaml")]
    pub procedure: PathBuf,
    /// Fixture profile of the device under test.
    #[arg(long, default_value = "fixtures/cpim1000.yaml")]
    pub fixture: PathBuf,
    /// Station file binding roles to instruments.
    #[arg(long, default_value = "hw/stations/sim.yaml")]
    pub station: PathBuf,
    /// Serial number of the device under test (scan it from the nameplate). On the
    /// simulated bench it defaults to the simulated device's.
    #[arg(long)]
    pub serial: Option<String>,
    /// Directory for run folders.
    #[arg(long, default_value = "reports")]
    pub reports: PathBuf,
    /// Simulated bench only: pace the virtual clock to the wall clock.
    #[arg(long)]
    pub realtime: bool,
    /// Simulated bench only: give the DUT a fault, as YAML, e.g.
    /// `{dead_led: {port: right}}`, `{creep: {port: left, power_w: 6}}`,
    /// `{no_start: {port: left, threshold_a: 0.05}}`,
    /// `{wrong_constant: {port: left, imp_per_kwh: 20400}}`,
    /// `{error_bump: {port: right, from_a: 4, to_a: 6, cos_phi: 1, error_percent: 1.6}}`.
    /// May be repeated.
    #[arg(long = "sim-fault", value_name = "YAML")]
    pub sim_faults: Vec<String>,
    /// Do not draw progress bars (logs and CI).
    #[arg(long)]
    pub quiet: bool,
    /// The bench's Ed25519 signing key (created on first use)
    /// [default: $METERBENCH_SIGNING_KEY or ~/.config/meterbench/signing-key.pem].
    #[arg(long)]
    pub signing_key: Option<PathBuf>,
    /// Who signs the certificate [default: the station's laboratory and id].
    #[arg(long)]
    pub signer: Option<String>,
    /// Answers to the procedure's questions (LCD readings, seals, scans) for an
    /// unattended station: a `meterbench.answers/1` file. Without it the questions are
    /// asked at this terminal; on a simulated station the simulated technician answers
    /// them from the simulated DUT (unless --ask).
    #[arg(long)]
    pub answers: Option<PathBuf>,
    /// Simulated bench only: ask the procedure's questions at this terminal instead of
    /// letting the simulated technician answer them.
    #[arg(long, conflicts_with = "answers")]
    pub ask: bool,
    /// Results store the finished run is filed into (for `runs` and `audit`)
    /// [default: $METERBENCH_STORE or REPORTS/store].
    #[arg(long)]
    pub store: Option<PathBuf>,
}

pub fn main(args: RunArgs) -> i32 {
    match execute(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn execute(args: RunArgs) -> anyhow::Result<i32> {
    let procedure_file = LoadedFile::read(&args.procedure)?;
    let sensor = schema_of(&procedure_file)?.starts_with("meterbench.sensor-procedure/");
    let station = Station::load(&args.station)?;
    let faults = args
        .sim_faults
        .iter()
        .map(|f| SimFault::parse(f))
        .collect::<Result<Vec<_>, _>>()?;
    if !faults.is_empty() && station.simulation.is_none() {
        anyhow::bail!("--sim-fault is for simulated stations only");
    }

    let abort = Arc::new(AtomicBool::new(false));
    {
        let abort = abort.clone();
        ctrlc::set_handler(move || {
            if abort.swap(true, Ordering::SeqCst) {
                eprintln!("\nstop already requested; switching the source off");
            } else {
                eprintln!("\nstop requested: switching the source off and saving the record");
            }
        })?;
    }

    let sim_options = SimOptions {
        realtime: args.realtime,
        dut_faults: faults,
        counter_link_faults: Vec::new(),
    };
    let finished = if sensor {
        run_current_sensor(&args, procedure_file, &station, &sim_options, abort)?
    } else {
        run_meter(&args, procedure_file, &station, &sim_options, abort)?
    };
    let finished = match finished {
        Ok(f) => f,
        Err(RunError::Data(e)) => anyhow::bail!("{e}"),
        Err(e) => return Err(e.into()),
    };
    issue_and_file(&args, &station, finished)
}

/// A current sensor (the CSP1) on the station's P1 port, against the source's current.
fn run_current_sensor(
    args: &RunArgs,
    procedure_file: LoadedFile,
    station: &Station,
    sim: &SimOptions,
    abort: Arc<AtomicBool>,
) -> anyhow::Result<Result<Finished, RunError>> {
    let procedure = SensorProcedure::from_file(procedure_file)?;
    let fixture_file = LoadedFile::read(&args.fixture)?;
    if !schema_of(&fixture_file)?.starts_with("meterbench.sensor-fixture/") {
        anyhow::bail!(
            "{} is a current sensor procedure: name a sensor fixture with --fixture (e.g. fixtures/csp1.yaml), not {}",
            args.procedure.display(),
            args.fixture.display()
        );
    }
    let fixture = SensorFixture::from_file(fixture_file)?;
    if !sim.dut_faults.is_empty() {
        anyhow::bail!(
            "--sim-fault gives faults to the simulated meter; a sensor's errors are in the station's simulation.csp1"
        );
    }
    // Everything about the data first: nothing is bound (or switched on) for bad input.
    procedure.check_against(&fixture)?;
    let mut bound = bind(station, None, sim)?;
    let mut sensor = bind_current_sensor(station, &mut bound)?;
    let serial = match (
        &args.serial,
        station.simulation.as_ref().and_then(|s| s.csp1.as_ref()),
    ) {
        (Some(s), _) => s.clone(),
        (None, Some(csp1)) => csp1.serial_number.clone(),
        (None, None) => {
            anyhow::bail!("--serial is required on a real station: scan the sensor's label")
        }
    };
    let request = SensorRunRequest {
        procedure: &procedure,
        fixture: &fixture,
        station,
        dut_serial: serial,
        reports_dir: args.reports.clone(),
        abort,
        today: Local::now().date_naive(),
    };
    let mut observer = ConsoleObserver::new(!args.quiet);
    Ok(run_sensor(
        &request,
        SensorInstruments {
            source: bound.source.as_mut(),
            clock: bound.clock.as_mut(),
            sensor: sensor.as_mut(),
        },
        &mut observer,
    ))
}

/// A meter (the CPIM1000) through its LED pulses, registers and identity.
fn run_meter(
    args: &RunArgs,
    procedure_file: LoadedFile,
    station: &Station,
    sim: &SimOptions,
    abort: Arc<AtomicBool>,
) -> anyhow::Result<Result<Finished, RunError>> {
    let procedure = Procedure::from_file(procedure_file)?;
    let fixture = Fixture::load(&args.fixture)?;
    let mut bound = bind(station, Some(&fixture), sim)?;
    let serial = match (&args.serial, &station.simulation) {
        (Some(s), _) => s.clone(),
        (None, Some(sim)) => sim.dut.serial_number.clone(),
        (None, None) => anyhow::bail!("--serial is required on a real station: scan the nameplate"),
    };
    let request = RunRequest {
        procedure: &procedure,
        fixture: &fixture,
        station,
        dut_serial: serial,
        reports_dir: args.reports.clone(),
        abort: abort.clone(),
        today: Local::now().date_naive(),
    };
    let mut observer = ConsoleObserver::new(!args.quiet);
    let mut operator: Box<dyn Operator> = match (&args.answers, &bound.world, &station.simulation) {
        (Some(path), _, _) => Box::new(FileOperator {
            answers: Answers::load(path)?,
        }),
        (None, Some(world), Some(sim)) if !args.ask => {
            Box::new(SimulatedTechnician::new(world.clone(), sim.dut.clone()))
        }
        _ => Box::new(
            TerminalOperator::new(std::io::BufReader::new(std::io::stdin()), std::io::stderr())
                .stop_on(abort.clone()),
        ),
    };
    Ok(run(
        &request,
        Instruments {
            source: bound.source.as_mut(),
            reference: bound.reference.as_mut(),
            counter: bound.counter.as_mut(),
            clock: bound.clock.as_mut(),
            dut_software: bound.dut_software.as_deref_mut().map(|d| d as _),
            operator: Some(operator.as_mut()),
        },
        &mut observer,
    ))
}

/// Print the results, sign the bundle, log the issuance and file the run.
fn issue_and_file(args: &RunArgs, station: &Station, finished: Finished) -> anyhow::Result<i32> {
    println!(
        "{}",
        meterbench_report::console::results_table(&finished.record)
    );

    let key_path = args.signing_key.clone().unwrap_or_else(default_key_path);
    let (key, created) = load_or_create_key(&key_path)?;
    if created {
        eprintln!(
            "created a new signing key {} (key id {}); publish the key id so customers can check certificates",
            key_path.display(),
            key_id(&key.verifying_key())
        );
    }
    let signer = args
        .signer
        .clone()
        .unwrap_or_else(|| format!("{}, station {}", station.laboratory_name, station.id));
    let bundle = finished
        .record_path
        .parent()
        .expect("the record sits in its run folder");
    let issued = issue(
        &finished.record,
        bundle,
        &key,
        &signer,
        &args.reports.join("issuance-log.jsonl"),
    )?;
    println!("certificate bundle: {}", issued.bundle.display());
    println!(
        "signed by {signer} with key {}; issuance log {}; check it with: meterbench verify {}",
        issued.key_id,
        issued.log.display(),
        issued.bundle.display()
    );
    // The signed bundle is the record of the run; the store is an index over bundles.
    // A store that cannot take the run does not change the verdict: it is reported,
    // and the bundle can be filed again later.
    let store = args
        .store
        .clone()
        .unwrap_or_else(|| default_store_path(&args.reports));
    match meterbench_store::ingest(&store, &finished.record, bundle) {
        Ok(()) => println!("filed in the results store {}", store.display()),
        Err(e) => eprintln!(
            "warning: the run was not filed in the results store {}: {e}\n  file it later with: meterbench runs ingest {}",
            store.display(),
            bundle.display()
        ),
    }
    Ok(finished.record.outcome.exit_code())
}
