use crate::cmd::run::{DEFAULT_STATION, signing_key};
use clap::Args;
use meterbench_panel::{Panel, PanelConfig, hash_password};
use meterbench_session::paths::{BenchHome, default_store};
use meterbench_store::StoreLocation;
use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc;

#[derive(Debug, Args)]
pub struct PanelArgs {
    /// Station file: a path, or a name in the bench home's hw/stations/
    /// [default: hw/stations/sim.yaml in the bench home].
    #[arg(long)]
    pub station: Option<PathBuf>,
    /// Address to serve the panel on. Another address than loopback needs a panel
    /// password in the station file (`panel: {password_sha256: …}`).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Simulated bench only: pace the virtual clock to the wall clock.
    #[arg(long)]
    pub realtime: bool,
    /// Read a password from standard input, print the SHA-256 a station's
    /// `panel.password_sha256` takes, and exit.
    #[arg(long)]
    pub hash_password: bool,
    /// Folder for run folders and the issuance log [default: reports in the bench home].
    #[arg(long)]
    pub reports: Option<PathBuf>,
    /// The bench's Ed25519 signing key [default: $METERBENCH_SIGNING_KEY, else
    /// keys/signing-key.pem in the bench home].
    #[arg(long)]
    pub signing_key: Option<PathBuf>,
    /// The authorised signatory of the panel's runs, one of the station's
    /// `laboratory.signatories` [default: the only one listed].
    #[arg(long)]
    pub signer: Option<String>,
    /// Results store runs are filed into and the history is read from: a folder or a
    /// postgres:// URL [default: $METERBENCH_STORE or REPORTS/store].
    #[arg(long)]
    pub store: Option<StoreLocation>,
}

pub fn main(args: PanelArgs, home: &BenchHome) -> i32 {
    match execute(args, home) {
        Ok(code) => code,
        Err(e) => {
            crate::out::warn(format!("error: {e:#}"));
            2
        }
    }
}

fn execute(args: PanelArgs, home: &BenchHome) -> anyhow::Result<i32> {
    if args.hash_password {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let password = line.trim_end_matches(['\n', '\r']);
        anyhow::ensure!(!password.is_empty(), "no password on standard input");
        crate::sayln!("{}", hash_password(password));
        return Ok(0);
    }
    let station = home
        .choose(
            "station",
            args.station.as_deref(),
            "hw/stations",
            DEFAULT_STATION,
        )
        .map_err(anyhow::Error::msg)?;
    let reports = args.reports.clone().unwrap_or_else(|| home.reports());
    let store = args
        .store
        .clone()
        .unwrap_or_else(|| default_store(&reports));
    let key_path = args
        .signing_key
        .clone()
        .unwrap_or_else(|| home.signing_key());
    let (key, trust) = signing_key(key_path.clone(), home)?;
    // Before the panel serves: a key the reports' log is not kept with would refuse
    // every run's issue only after its measurement.
    for repaired in
        meterbench_session::outputs::check_ready_to_issue(&key, &key_path, &trust, &reports)
            .map_err(anyhow::Error::msg)?
    {
        crate::out::warn(repaired);
    }
    let panel = Panel::start(
        PanelConfig {
            home: home.clone(),
            station,
            listen: args.listen,
            reports,
            store,
            signer: args.signer,
            realtime: args.realtime,
        },
        key,
        trust,
    )?;
    crate::out::say(format!(
        "station panel on http://{} (Ctrl-C ends it; a running session is stopped with the source off)",
        panel.address()
    ));
    let (tx, rx) = mpsc::channel();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])?;
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            let _ = tx.send(());
        }
    });
    let _ = rx.recv();
    if panel.busy() {
        crate::out::warn("stopping the running session: switching the source off");
    }
    panel.stop();
    Ok(0)
}
