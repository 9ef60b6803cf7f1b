//! `meterbench runs list/show/ingest`: the results store's index of runs.

use chrono::NaiveDate;
use clap::{Args, Subcommand, ValueEnum};
use meterbench_runner::record::Outcome;
use meterbench_session::paths::{BenchHome, default_store, public_key_path};
use meterbench_store::{RunFilter, RunRow, Store, StoreLocation};
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Results store: a folder, or a postgres:// URL of a store shared by many stations
    /// [default: $METERBENCH_STORE, else store/ in the reports folder].
    #[arg(long, global = true)]
    pub store: Option<StoreLocation>,
    /// The reports folder whose store is read, as given to `run --reports`
    /// [default: reports in the bench home].
    #[arg(long, global = true)]
    pub reports: Option<PathBuf>,
    #[command(subcommand)]
    pub command: RunsCommand,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Runs matching every filter given, oldest first.
    List(ListArgs),
    /// One run: DUT, station, instruments with their calibrations, points, bundle.
    Show(ShowArgs),
    /// File a finished run's bundle into the store (again): after a run whose filing
    /// failed, or to build a store from archived bundles. Safe to repeat.
    Ingest(IngestArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// DUT serial number.
    #[arg(long)]
    pub serial: Option<String>,
    /// Station id.
    #[arg(long)]
    pub station: Option<String>,
    /// Verdict (any case: `fail`, `FAIL`).
    #[arg(long, value_enum, ignore_case = true)]
    pub verdict: Option<Verdict>,
    /// First day (UTC start date, inclusive), YYYY-MM-DD.
    #[arg(long, value_parser = meterbench_session::iso_date, value_name = "YYYY-MM-DD")]
    pub from: Option<NaiveDate>,
    /// Last day (inclusive), YYYY-MM-DD.
    #[arg(long, value_parser = meterbench_session::iso_date, value_name = "YYYY-MM-DD")]
    pub to: Option<NaiveDate>,
    /// Print JSON (one array of runs) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Run id (the bundle folder's name).
    pub run_id: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Bundle folders (reports/<run>/), each holding its record.json. Without any, the
    /// runs queued because the store could not take them are filed.
    pub bundles: Vec<PathBuf>,
    /// A single trusted public key (PEM): only its intact bundles are filed, anything
    /// else is refused [default: the bench's keyring, else its own public key].
    #[arg(long, conflicts_with = "keyring")]
    pub key: Option<PathBuf>,
    /// The keyring (keyring.json) whose keys, each in its validity period, are trusted
    /// [default: keys/keyring.json beside the bench's signing key].
    #[arg(long)]
    pub keyring: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Verdict {
    Pass,
    Fail,
    /// Some point's U too large for a statement of conformity, none failed.
    NotDecidable,
    Error,
    Aborted,
}

impl From<Verdict> for Outcome {
    fn from(v: Verdict) -> Outcome {
        match v {
            Verdict::Pass => Outcome::Pass,
            Verdict::Fail => Outcome::Fail,
            Verdict::NotDecidable => Outcome::NotDecidable,
            Verdict::Error => Outcome::Error,
            Verdict::Aborted => Outcome::Aborted,
        }
    }
}

pub fn main(args: RunsArgs, home: &BenchHome) -> i32 {
    let reports = args.reports.clone().unwrap_or_else(|| home.reports());
    let store = args
        .store
        .clone()
        .unwrap_or_else(|| default_store(&reports));
    // A range that ends before it starts holds no run: a mistake, said as the audit says it.
    if let RunsCommand::List(ListArgs {
        from: Some(from),
        to: Some(to),
        ..
    }) = &args.command
        && to < from
    {
        eprintln!("error: --from {from} .. --to {to}: the range ends before it starts");
        return 2;
    }
    let result = match args.command {
        RunsCommand::List(a) => Store::open(&store)
            .map_err(anyhow::Error::from)
            .and_then(|s| list(&s, a)),
        RunsCommand::Show(a) => Store::open(&store)
            .map_err(anyhow::Error::from)
            .and_then(|s| show(&s, a)),
        RunsCommand::Ingest(a) => ingest(&store, &reports, a, home),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!(
                "error: {e:#}{}",
                where_stores_are(&e, args.store.is_some(), args.reports.is_some(), home)
            );
            2
        }
    }
}

/// For a store that is not there: how that store was chosen, and how to name another.
pub(crate) fn where_stores_are(
    e: &anyhow::Error,
    store_flag: bool,
    reports_flag: bool,
    home: &BenchHome,
) -> String {
    let Some(meterbench_store::StoreError::NoStore(_)) = e.downcast_ref() else {
        return String::new();
    };
    let how = if store_flag {
        "named by --store".to_string()
    } else if std::env::var_os("METERBENCH_STORE").is_some_and(|v| !v.is_empty()) {
        "named by METERBENCH_STORE".to_string()
    } else if reports_flag {
        "in the reports folder named by --reports".to_string()
    } else {
        format!("in the reports folder of {}", home.describe())
    };
    format!(
        "; it is the store {how} (--store, --reports or METERBENCH_STORE names another; {})",
        home.advice()
    )
}

fn list(store: &Store, a: ListArgs) -> anyhow::Result<i32> {
    let filter = RunFilter {
        serial: a.serial,
        station: a.station,
        outcome: a.verdict.map(Outcome::from),
        from: a.from,
        to: a.to,
    };
    let runs = store.list_runs(&filter)?;
    if a.json {
        crate::sayln!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(0);
    }
    crate::sayp!("{}", runs_table(&runs));
    Ok(0)
}

/// The runs as an aligned text table with a count line.
pub fn runs_table(runs: &[RunRow]) -> String {
    let header = [
        "RUN",
        "STARTED (UTC)",
        "STATION",
        "DUT",
        "SERIAL",
        "VERDICT",
        "REASON",
    ];
    let rows: Vec<[String; 7]> = runs
        .iter()
        .map(|r| {
            [
                r.run_id.clone(),
                r.started_utc.clone(),
                r.station.clone(),
                r.dut_type.clone(),
                r.serial.clone(),
                verdict(r.outcome).to_string(),
                r.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(&header.map(str::to_string));
    for row in &rows {
        out.push_str(&line(row));
    }
    out.push_str(&format!(
        "{} run{}\n",
        runs.len(),
        if runs.len() == 1 { "" } else { "s" }
    ));
    out
}

fn verdict(o: Outcome) -> &'static str {
    meterbench_store::outcome_str(o)
}

fn show(store: &Store, a: ShowArgs) -> anyhow::Result<i32> {
    let Some(d) = store.show_run(&a.run_id)? else {
        anyhow::bail!(
            "no run {:?} in the results store {}",
            a.run_id,
            store.location()
        );
    };
    if a.json {
        crate::sayln!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(0);
    }
    let r = &d.run;
    crate::sayln!("run        {}", r.run_id);
    crate::sayln!(
        "verdict    {}{}",
        verdict(r.outcome),
        r.reason
            .as_deref()
            .map(|x| format!(": {x}"))
            .unwrap_or_default()
    );
    crate::sayln!(
        "DUT        {} {} serial {} (class {})",
        r.dut_manufacturer,
        r.dut_type,
        r.serial,
        r.accuracy_class
    );
    crate::sayln!(
        "procedure  {} version {} (sha256 {})",
        r.procedure_id,
        r.procedure_version,
        r.procedure_sha256
    );
    crate::sayln!(
        "station    {} ({}), {}",
        r.station,
        r.station_name,
        r.laboratory
    );
    crate::sayln!(
        "time       {} .. {}",
        r.started_utc,
        r.finished_utc.as_deref().unwrap_or("(not finished)")
    );
    crate::sayln!("bench      meterbench {}", r.bench_version);
    crate::sayln!("bundle     {}", r.bundle.display());
    if !d.instruments.is_empty() {
        crate::sayln!("instruments");
        for i in &d.instruments {
            crate::sayln!(
                "  {:<10} {} serial {} ({}), calibration {} by {}, due {}",
                i.role,
                i.model,
                i.serial_number,
                i.driver,
                i.calibration_id,
                i.calibration_issued_by,
                i.calibration_due
            );
        }
    }
    // A run that amends another (a later session's retest) is filed with the points it
    // measured; those it carried over are the amended run's. A run filed before the
    // store kept amendments: its signed record says, when the bundle is at hand.
    let record = meterbench_runner::record::RunRecord::read(&r.bundle.join("record.json")).ok();
    let amends = d
        .amends
        .clone()
        .or_else(|| record.as_ref().and_then(|rec| rec.amends.clone()));
    // A record from before records said which steps were carried has all its points
    // filed (as far as the bundle at hand tells).
    let carried_known = record.as_ref().is_none_or(|rec| rec.carried_steps > 0);
    let mut heading = "accuracy points";
    match &amends {
        Some(amended) if carried_known => {
            crate::sayln!(
                "amends     run {amended}: its points carried over here are filed with it"
            );
            heading = "accuracy points measured in this run";
        }
        Some(amended) => crate::sayln!(
            "amends     run {amended} (its record does not say which steps it carried over: \
             all its points are filed here)"
        ),
        None => {}
    }
    for later in &d.amended_by {
        crate::sayln!("amended by run {later}");
    }
    if !d.points.is_empty() {
        crate::sayln!("{heading}");
        for p in &d.points {
            crate::sayln!(
                "  {:<22} {:<6} error {:+.4} %  U(k=2) {:.4} %  MPE ±{} %  {}",
                p.step_name,
                p.port,
                p.error_percent,
                p.u_percent,
                p.mpe_percent,
                if p.accepted { "accepted" } else { "REJECTED" }
            );
        }
    }
    Ok(0)
}

fn ingest(
    store: &StoreLocation,
    reports: &Path,
    a: IngestArgs,
    home: &BenchHome,
) -> anyhow::Result<i32> {
    let trusted = crate::cmd::keys::trusted_keys(a.key.as_deref(), a.keyring.as_deref(), home)
        .map_err(anyhow::Error::msg)?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no trusted key to check the bundles with: {} has no keyring ({}) and no public key ({}); name one with --keyring FILE or --key PUB.pem",
                home.describe(),
                meterbench_signing::keyring_path(&home.signing_key()).display(),
                public_key_path(&home.signing_key()).display()
            )
        })?;
    if a.bundles.is_empty() {
        let queue = meterbench_session::queue_path(store, reports);
        let drained = meterbench_session::drain_queue(&queue, store, &trusted);
        for f in &drained.filed {
            crate::sayln!("filed {} (queued)", f.display());
        }
        for (f, why) in &drained.left {
            eprintln!("error: {}: {why} (still queued)", f.display());
        }
        for (f, why) in &drained.dropped {
            eprintln!(
                "error: {}: {why} (taken off the queue: the store cannot take it as it is)",
                f.display()
            );
        }
        if drained.filed.is_empty() && drained.left.is_empty() && drained.dropped.is_empty() {
            crate::sayln!("no runs queued for {store} ({})", queue.display());
        }
        return Ok(if drained.left.is_empty() && drained.dropped.is_empty() {
            0
        } else {
            2
        });
    }
    let mut failed = 0;
    for bundle in &a.bundles {
        match meterbench_session::file_folder(
            store,
            bundle,
            &trusted,
            meterbench_session::outputs::Issued::Earlier,
        ) {
            Ok(run_id) => crate::sayln!("filed {run_id} from {}", bundle.display()),
            Err(e) => {
                eprintln!("error: {}: {e:#}", bundle.display());
                failed += 1;
            }
        }
    }
    Ok(if failed == 0 { 0 } else { 2 })
}
