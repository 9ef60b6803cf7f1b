use crate::cmd::run::{IssueArgs, Outputs, plain, signing_key, stop_on_signals};
use crate::console::ConsoleObserver;
use chrono::Local;
use clap::Args;
use meterbench_runner::operator::{Operator, TerminalOperator};
use meterbench_session::paths::BenchHome;
use meterbench_session::{Retest, SessionOptions, stored_record};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct RetestArgs {
    /// The stored run: its folder, its record.json, or its run id under --reports.
    pub run: String,
    /// The point to measure again, by its step name (e.g. "Iref PF1").
    #[arg(long)]
    pub step: String,
    /// Answers to the procedure's questions for an unattended station.
    #[arg(long)]
    pub answers: Option<PathBuf>,
    /// Where the stored run is (its run id is looked up in --reports), where the new run
    /// goes, and who signs it.
    #[command(flatten)]
    pub issue: IssueArgs,
}

pub fn main(args: RetestArgs, home: &BenchHome) -> i32 {
    match execute(args, home) {
        Ok(code) => code,
        Err(e) => {
            crate::out::warn(format!("error: {e}"));
            2
        }
    }
}

fn execute(args: RetestArgs, home: &BenchHome) -> anyhow::Result<i32> {
    let reports = args.issue.reports(home);
    let (record, path) = stored_record(&reports, &args.run).map_err(plain)?;
    // The run may be named by its folder in another reports folder than the one the new
    // run goes to: a run amending it there amends it as much (the plan looks in
    // --reports).
    if let Some(theirs) = path.parent().and_then(std::path::Path::parent)
        && let Some(later) = meterbench_session::amended_by(theirs, &record.run_id)
    {
        anyhow::bail!(
            "run {} was already amended by run {later} (in {}): measure its point again instead",
            record.run_id,
            theirs.display()
        );
    }
    let mut options = SessionOptions::new(Local::now().date_naive());
    options.reports = reports.clone();
    options.home = home.clone();
    options.signer = args.issue.signer.clone();
    if let Some(a) = &args.answers {
        options.answers = vec![(None, a.clone())];
    }
    let what = format!(
        "measuring `{}` of run {} ({}) again: {} {} at position {}",
        args.step,
        record.run_id,
        path.display(),
        record.dut.device_type,
        record.dut.serial_number,
        record.position.as_ref().map_or(1, |p| p.id)
    );
    let retest = Retest::plan(record, &args.step, options).map_err(plain)?;
    crate::out::warn(what);
    let key_path = args.issue.key_path(home);
    let (key, trust) = signing_key(key_path.clone(), home)?;
    for repaired in
        meterbench_session::outputs::check_ready_to_issue(&key, &key_path, &trust, &reports)
            .map_err(anyhow::Error::msg)?
    {
        crate::out::warn(repaired);
    }
    let abort = stop_on_signals()?;
    let mut bound = retest.prepared.bind().map_err(plain)?;
    let guard = crate::cmd::run::start_guard(&retest.prepared.station, &reports)?;
    let terminal: Box<dyn Operator> = Box::new(
        TerminalOperator::new(std::io::BufReader::new(std::io::stdin()), std::io::stderr())
            .stop_on(abort.clone()),
    );
    let mut console = ConsoleObserver::new(!args.issue.quiet, false);
    let session = retest
        .run(&mut bound, Some(terminal), abort, &mut console)
        .map_err(plain)?;
    drop(bound);
    crate::cmd::run::stand_down(guard, &session);
    let outputs = Outputs {
        key,
        trust,
        reports,
        store: args.issue.store.clone(),
    };
    Ok(outputs.finish(&retest.prepared.station, &session))
}
