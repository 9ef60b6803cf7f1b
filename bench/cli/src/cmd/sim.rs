//! `meterbench sim serve`: the simulated bench's instruments in a process of their own.

use clap::{Args, Subcommand};
use meterbench_procedure::{DutFixture, Station};
use meterbench_session::paths::BenchHome;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct SimArgs {
    #[command(subcommand)]
    pub command: SimCommand,
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Serve a station's simulated instruments on real ports (source and reference on
    /// TCP, counters on pseudo-terminals, in real time) and write a station file naming
    /// them, to run the bench against as against hardware. Prints each switching of the source's
    /// output. Runs until its standard input closes or it is stopped.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The station whose `simulation:` section is served [default: hw/stations/sim.yaml
    /// in the bench home].
    #[arg(long)]
    pub station: Option<PathBuf>,
    /// The fixture of the simulated devices [default: fixtures/cpim1000.yaml in the bench
    /// home].
    #[arg(long)]
    pub fixture: Option<PathBuf>,
    /// Where to write the station file that names the served ports.
    #[arg(long, value_name = "FILE")]
    pub write_station: PathBuf,
    /// The served station's `safety.guard_timeout_s`.
    #[arg(long, default_value_t = 2.0)]
    pub guard_timeout_s: f64,
}

pub fn main(args: SimArgs, home: &BenchHome) -> i32 {
    match args.command {
        SimCommand::Serve(a) => match serve(a, home) {
            Ok(()) => 0,
            Err(e) => {
                crate::out::warn(format!("error: {e:#}"));
                2
            }
        },
    }
}

fn serve(a: ServeArgs, home: &BenchHome) -> anyhow::Result<()> {
    use crate::cmd::run::{DEFAULT_FIXTURE, DEFAULT_STATION};
    let station = home
        .choose(
            "station",
            a.station.as_deref(),
            "hw/stations",
            DEFAULT_STATION,
        )
        .map_err(anyhow::Error::msg)?;
    let fixture = home
        .choose("fixture", a.fixture.as_deref(), "fixtures", DEFAULT_FIXTURE)
        .map_err(anyhow::Error::msg)?;
    let station = Station::load(&station)?;
    let fixture = DutFixture::load(&fixture)?;
    let served = meterbench_session::serve::serve(&station, &fixture, a.guard_timeout_s)?;
    std::fs::write(&a.write_station, &served.station_text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.write_station.display()))?;
    for (role, port) in &served.ports {
        crate::out::say(format!("{role}: {port}"));
    }
    crate::out::say(format!(
        "serving station `{}` as {}; stop with Ctrl-C or by closing standard input",
        station.id,
        a.write_station.display()
    ));
    // Stopped by a signal like any server (no run to save here).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(signal, stop.clone())?;
    }
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        let _ = tx.send(());
    });
    // Say each switching of the simulated source's output as it happens: what the
    // instrument did, whoever commanded it (the bench, its guard).
    let mut on = false;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let now_on = served
            .world
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .source_output_is_on();
        if now_on != on {
            on = now_on;
            crate::out::say(format!(
                "{} source output {}",
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                if on { "on" } else { "off" }
            ));
        }
        if rx
            .recv_timeout(std::time::Duration::from_millis(10))
            .is_ok()
        {
            break;
        }
    }
    drop(served);
    Ok(())
}
