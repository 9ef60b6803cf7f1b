use crate::cmd::run::{Outputs, plain, signing_key, stop_on_signals};
use crate::console::ConsoleObserver;
use chrono::Local;
use clap::Args;
use meterbench_runner::operator::{Operator, TerminalOperator};
use meterbench_session::{Retest, SessionOptions, stored_record};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct RetestArgs {
    /// The stored run: its folder, its record.json, or its run id under --reports.
    pub run: String,
    /// The point to measure again, by its step name (e.g. "Iref PF1").
    #[arg(long)]
    pub step: String,
    /// Directory of run folders (the stored run's, and the new one's).
    #[arg(long, default_value = "reports")]
    pub reports: PathBuf,
    /// Answers to the procedure's questions for an unattended station.
    #[arg(long)]
    pub answers: Option<PathBuf>,
    /// Do not draw progress bars.
    #[arg(long)]
    pub quiet: bool,
    /// The bench's Ed25519 signing key
    /// [default: $METERBENCH_SIGNING_KEY or ~/.config/meterbench/signing-key.pem].
    #[arg(long)]
    pub signing_key: Option<PathBuf>,
    /// Who signs the certificate [default: the station's laboratory and id].
    #[arg(long)]
    pub signer: Option<String>,
    /// Results store [default: $METERBENCH_STORE or REPORTS/store].
    #[arg(long)]
    pub store: Option<PathBuf>,
}

pub fn main(args: RetestArgs) -> i32 {
    match execute(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn execute(args: RetestArgs) -> anyhow::Result<i32> {
    let (record, path) = stored_record(&args.reports, &args.run).map_err(plain)?;
    let mut options = SessionOptions::new(Local::now().date_naive());
    options.reports = args.reports.clone();
    if let Some(a) = &args.answers {
        options.answers = vec![(None, a.clone())];
    }
    eprintln!(
        "measuring `{}` of run {} ({}) again: {} {} at position {}",
        args.step,
        record.run_id,
        path.display(),
        record.dut.device_type,
        record.dut.serial_number,
        record.position.as_ref().map_or(1, |p| p.id)
    );
    let retest = Retest::plan(record, &args.step, options).map_err(plain)?;
    let key = signing_key(args.signing_key.clone())?;
    let abort = stop_on_signals()?;
    let mut bound = retest.prepared.bind().map_err(plain)?;
    let terminal: Box<dyn Operator> = Box::new(
        TerminalOperator::new(std::io::BufReader::new(std::io::stdin()), std::io::stderr())
            .stop_on(abort.clone()),
    );
    let mut console = ConsoleObserver::new(!args.quiet, false);
    let session = retest
        .run(&mut bound, Some(terminal), abort, &mut console)
        .map_err(plain)?;
    drop(bound);
    let outputs = Outputs {
        key,
        signer: args.signer.clone(),
        reports: args.reports.clone(),
        store: args.store.clone(),
    };
    Ok(outputs.finish(&retest.prepared.station, &session))
}
