//! The station panel: a web page served by the bench itself (its assets are in the
//! binary: no build step, no CDN, stations are offline) from which a technician or a
//! line operator starts runs, answers the procedure's questions, watches every position
//! live, stops a run, retests a point and looks up the station's history.
//!
//! It drives the same session library as the terminal: a run started here is the run
//! `meterbench run` makes (same checks before switch-on, same records, same signed
//! bundle, same filing); the runner's event stream reaches the page as server-sent
//! events. Only one session runs at a time. The page never receives the signing key;
//! every answer is validated here, not in the browser.

mod access;
mod assets;
mod hub;
mod job;
mod routes;
mod view;

pub use access::hash_password;

use anyhow::Context as _;
use meterbench_procedure::Station;
use meterbench_session::paths::BenchHome;
use meterbench_signing::SigningKey;
use meterbench_store::StoreLocation;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// What a panel serves and where its runs go.
#[derive(Debug, Clone)]
pub struct PanelConfig {
    pub home: BenchHome,
    /// The station file (the panel serves one station).
    pub station: PathBuf,
    /// Where to listen; a loopback address unless the station sets a panel password.
    pub listen: SocketAddr,
    /// Run folders, the issuance log, session records.
    pub reports: PathBuf,
    /// Where finished runs are filed, and the history is read from.
    pub store: StoreLocation,
    /// The authorised signatory of the panel's runs, one of the station's
    /// `laboratory.signatories` [default: the only one listed].
    pub signer: Option<String>,
    /// Simulated bench only: pace the virtual clock to the wall clock.
    pub realtime: bool,
}

/// What every request handler and the session's thread share.
pub(crate) struct Shared {
    pub config: PanelConfig,
    /// The address actually bound (the port chosen for port 0).
    pub address: SocketAddr,
    pub station: Station,
    pub key: SigningKey,
    /// The keys the station trusts: the issuance log is verified with them, and the
    /// history's bundles.
    pub trust: meterbench_signing::Keyring,
    pub hub: hub::Hub,
    pub access: access::Access,
    pub job: job::Jobs,
}

/// A panel that is serving.
pub struct Panel {
    shared: Arc<Shared>,
    address: SocketAddr,
    runtime: tokio::runtime::Runtime,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Panel {
    /// Load the station, refuse an address other machines can reach unless the station
    /// sets a password, and start serving.
    pub fn start(
        config: PanelConfig,
        key: SigningKey,
        trust: meterbench_signing::Keyring,
    ) -> anyhow::Result<Panel> {
        let station = Station::load(&config.station).map_err(|e| anyhow::anyhow!("{e}"))?;
        // Who authorises the panel's runs is settled before it serves: a wrong name would
        // otherwise refuse every start.
        station
            .signatory(config.signer.as_deref())
            .map_err(anyhow::Error::msg)?;
        let access = access::Access::for_station(&station, config.listen)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("panel-http")
            .enable_all()
            .build()
            .context("cannot start the panel's server threads")?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(config.listen))
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            address,
            station,
            key,
            trust,
            hub: hub::Hub::new(),
            access,
            job: job::Jobs::default(),
        });
        let app = routes::router(shared.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = runtime.spawn(async move {
            // The peer's address: wrong passwords are counted by the address they come from.
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
        });
        Ok(Panel {
            shared,
            address,
            runtime,
            shutdown: Some(tx),
            server: Some(server),
        })
    }

    /// The address it serves (the port chosen when asked for port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Whether a session is running now.
    pub fn busy(&self) -> bool {
        self.shared.job.busy()
    }

    /// Stop: a running session is stopped and waited for (its source switched off, its
    /// records and bundles kept), then the server ends.
    pub fn stop(mut self) {
        self.shared.job.stop_and_wait();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            // Open event streams end with the runtime.
            let _ = self.runtime.block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(2), server).await
            });
        }
    }
}
