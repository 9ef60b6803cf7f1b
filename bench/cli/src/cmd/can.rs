//! `meterbench can identity PORT`: read a meter's software identity over CAN (an SLCAN
//! adapter on PORT, ISO-TP, UDS ReadDataByIdentifier at the fixture's identifiers) and
//! compare it with the certified identities the fixture lists.

use clap::{Args, Subcommand};
use meterbench_instruments::DutSoftware;
use meterbench_procedure::Fixture;
use meterbench_runner::identity::check_identity;
use meterbench_session::dut_can::CanDutSoftware;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct CanArgs {
    #[command(subcommand)]
    pub command: CanCommand,
}

#[derive(Debug, Subcommand)]
pub enum CanCommand {
    /// Read software version, software hash and each port's LRS hash over CAN and
    /// compare them with the fixture's certified identities.
    /// Exit 0: certified; 1: not certified (named); 2: no answer or bad input.
    Identity(IdentityArgs),
}

#[derive(Debug, Args)]
pub struct IdentityArgs {
    /// Serial port of the SLCAN (Lawicel) USB-CAN adapter, e.g. /dev/ttyACM0.
    pub port: String,
    /// Fixture profile with the CAN ids, data identifiers and certified identities
    /// [default: fixtures/cpim1000.yaml in the bench home].
    #[arg(long)]
    pub fixture: Option<PathBuf>,
    /// Reply timeout per request, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub timeout_ms: u64,
}

pub fn main(args: CanArgs, home: &meterbench_session::paths::BenchHome) -> i32 {
    match args.command {
        CanCommand::Identity(a) => match identity(&a, home) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                2
            }
        },
    }
}

fn identity(a: &IdentityArgs, home: &meterbench_session::paths::BenchHome) -> anyhow::Result<i32> {
    let fixture_path = home
        .choose(
            "fixture",
            a.fixture.as_deref(),
            "fixtures",
            crate::cmd::run::DEFAULT_FIXTURE,
        )
        .map_err(anyhow::Error::msg)?;
    let fixture = Fixture::load(&fixture_path)?;
    let Some(profile) = &fixture.can else {
        anyhow::bail!(
            "{}: the fixture declares no `can:` profile (ids and data identifiers)",
            fixture_path.display()
        );
    };
    if fixture.certified_software.is_empty() {
        anyhow::bail!(
            "{}: the fixture lists no certified software identities (`software.certified`)",
            fixture_path.display()
        );
    }
    if profile.assumed {
        eprintln!(
            "note: the CAN ids and data identifiers of {} are assumed, not published by the maker ({})",
            fixture.device_type, profile.source
        );
    }
    let serial = serialport::new(&a.port, 115_200)
        .timeout(Duration::from_millis(10))
        .open_native()
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.port))?;
    // The same driver and comparison as the procedures' identity step.
    let mut dut = CanDutSoftware::open(
        serial,
        &a.port,
        &fixture,
        Duration::from_millis(a.timeout_ms),
    )?;
    let reported = dut.read_identity()?;
    let (_, mismatches) = check_identity(&reported, &fixture.certified_software);
    let unknown_version = mismatches.iter().any(|m| m.what == "software version");
    let verdict = |what: &str| match mismatches.iter().find(|m| m.what == what) {
        Some(m) => format!("NOT CERTIFIED (certified: {})", m.certified),
        None if unknown_version => "not compared (no certified identity of this version)".into(),
        None => "certified".into(),
    };
    crate::sayln!(
        "software version   {:<20} {}",
        reported.software_version,
        verdict("software version")
    );
    crate::sayln!(
        "software hash      {:<20} {}",
        reported.software_hash,
        verdict("software hash")
    );
    for (port, h) in &reported.lrs_hash {
        crate::sayln!(
            "LRS hash {port:<9} {h:<20} {}",
            verdict(&format!("LRS hash of port {port}"))
        );
    }
    if mismatches.is_empty() {
        crate::sayln!(
            "IDENTITY: certified ({})",
            fixture
                .certified_software_source
                .clone()
                .unwrap_or_default()
        );
        Ok(0)
    } else {
        for m in &mismatches {
            crate::sayln!("IDENTITY: FAIL: {m}");
        }
        Ok(1)
    }
}
