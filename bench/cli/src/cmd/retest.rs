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
    let theirs = std::path::absolute(&path).ok().and_then(|p| {
        p.parent()
            .and_then(std::path::Path::parent)
            .map(PathBuf::from)
    });
    if let Some(theirs) = theirs.filter(|t| std::path::absolute(&reports).ok().as_ref() != Some(t))
        && let Some(later) = meterbench_session::amended_by(&theirs, &record.run_id)
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
    // A store shared by stations knows of amendments made at any of them. One out of
    // reach (given 5 s: a server across a network may not answer at all) does not stop
    // a retest: the reports folders were checked.
    let store_location = args
        .issue
        .store
        .clone()
        .unwrap_or_else(|| meterbench_session::paths::default_store(&reports));
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let (location, run_id) = (store_location.clone(), record.run_id.clone());
        std::thread::spawn(move || {
            // An amending run that ended without a verdict (stopped, an error) amends
            // nothing: the point may be measured again.
            let later = meterbench_store::Store::open(&location)
                .ok()
                .and_then(|store| {
                    let amending = store.show_run(&run_id).ok().flatten()?.amended_by;
                    amending.into_iter().find(|id| {
                        store.show_run(id).ok().flatten().is_some_and(|d| {
                            meterbench_session::amends_with_a_verdict(d.run.outcome)
                        })
                    })
                });
            let _ = tx.send(later);
        });
    }
    if let Ok(Some(later)) = rx.recv_timeout(std::time::Duration::from_secs(5)) {
        anyhow::bail!(
            "run {} was already amended by run {later} (in the results store {}): measure \
             its point again instead",
            record.run_id,
            store_location
        );
    }
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
