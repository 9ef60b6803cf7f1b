//! `meterbench can identity PORT`: read a meter's software identity over CAN (an SLCAN
//! adapter on PORT, ISO-TP, UDS ReadDataByIdentifier at the fixture's identifiers) and
//! compare it with the certified identities the fixture lists.

use clap::{Args, Subcommand};
use meterbench_can::{
    Bitrate, IdentityDids, IsoTpClient, IsoTpConfig, SlcanBus, SoftwareIdentity,
    read_software_identity,
};
use meterbench_procedure::{CertifiedIdentity, Fixture};
use meterbench_sim::cpim_can::can_id;
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
    /// Fixture profile with the CAN ids, data identifiers and certified identities.
    #[arg(long, default_value = "fixtures/cpim1000.yaml")]
    pub fixture: PathBuf,
    /// Reply timeout per request, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub timeout_ms: u64,
}

pub fn main(args: CanArgs) -> i32 {
    match args.command {
        CanCommand::Identity(a) => match identity(&a) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                2
            }
        },
    }
}

/// One difference between what the meter reports and what is certified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityMismatch {
    /// `software version`, `software hash`, or `LRS hash of port right`.
    pub what: String,
    pub reported: String,
    pub certified: String,
}

/// Compare a reported identity with the certified ones: the certified identity with the
/// reported version (hex case ignored in hashes); every field that differs from it.
/// An unknown version is itself the mismatch.
pub fn check_identity(
    reported: &SoftwareIdentity,
    certified: &[CertifiedIdentity],
) -> Vec<IdentityMismatch> {
    let Some(c) = certified
        .iter()
        .find(|c| c.software_version == reported.software_version)
    else {
        let versions: Vec<&str> = certified
            .iter()
            .map(|c| c.software_version.as_str())
            .collect();
        return vec![IdentityMismatch {
            what: "software version".into(),
            reported: reported.software_version.clone(),
            certified: versions.join(" or "),
        }];
    };
    let mut out = Vec::new();
    if !c
        .software_hash
        .eq_ignore_ascii_case(&reported.software_hash)
    {
        out.push(IdentityMismatch {
            what: "software hash".into(),
            reported: reported.software_hash.clone(),
            certified: c.software_hash.to_ascii_uppercase(),
        });
    }
    for (port, h) in &reported.lrs_hash {
        if !c.lrs_hash.eq_ignore_ascii_case(h) {
            out.push(IdentityMismatch {
                what: format!("LRS hash of port {port}"),
                reported: h.clone(),
                certified: c.lrs_hash.to_ascii_uppercase(),
            });
        }
    }
    out
}

fn identity(a: &IdentityArgs) -> anyhow::Result<i32> {
    let fixture = Fixture::load(&a.fixture)?;
    let Some(profile) = &fixture.can else {
        anyhow::bail!(
            "{}: the fixture declares no `can:` profile (ids and data identifiers)",
            a.fixture.display()
        );
    };
    if fixture.certified_software.is_empty() {
        anyhow::bail!(
            "{}: the fixture lists no certified software identities (`software.certified`)",
            a.fixture.display()
        );
    }
    if profile.assumed {
        eprintln!(
            "note: the CAN ids and data identifiers of {} are assumed, not published by the maker ({})",
            fixture.device_type, profile.source
        );
    }
    let bitrate = Bitrate::from_bits_per_second(profile.bitrate_kbps * 1000)
        .ok_or_else(|| anyhow::anyhow!("bitrate {} kbit/s", profile.bitrate_kbps))?;
    let serial = serialport::new(&a.port, 115_200)
        .timeout(Duration::from_millis(10))
        .open_native()
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.port))?;
    let bus = SlcanBus::open(serial, bitrate, a.port.clone())
        .map_err(|e| anyhow::anyhow!("SLCAN adapter on {}: {e}", a.port))?;
    let mut isotp = IsoTpClient::new(bus, IsoTpConfig::default());
    let dids = IdentityDids {
        request_id: can_id(profile.request_id, profile.extended),
        response_id: can_id(profile.response_id, profile.extended),
        software_version: profile.did_software_version,
        software_hash: profile.did_software_hash,
        lrs_hash: fixture
            .ports
            .iter()
            .map(|p| (p.name.clone(), profile.did_lrs_hash[&p.name]))
            .collect(),
    };
    let reported = read_software_identity(&mut isotp, &dids, Duration::from_millis(a.timeout_ms))?;
    let mismatches = check_identity(&reported, &fixture.certified_software);
    let unknown_version = mismatches.iter().any(|m| m.what == "software version");
    let verdict = |what: &str| match mismatches.iter().find(|m| m.what == what) {
        Some(m) => format!("NOT CERTIFIED (certified: {})", m.certified),
        None if unknown_version => "not compared (no certified identity of this version)".into(),
        None => "certified".into(),
    };
    println!(
        "software version   {:<20} {}",
        reported.software_version,
        verdict("software version")
    );
    println!(
        "software hash      {:<20} {}",
        reported.software_hash,
        verdict("software hash")
    );
    for (port, h) in &reported.lrs_hash {
        println!(
            "LRS hash {port:<9} {h:<20} {}",
            verdict(&format!("LRS hash of port {port}"))
        );
    }
    if mismatches.is_empty() {
        println!(
            "IDENTITY: certified ({})",
            fixture
                .certified_software_source
                .clone()
                .unwrap_or_default()
        );
        Ok(0)
    } else {
        for m in &mismatches {
            println!(
                "IDENTITY: FAIL: {} is {}, the certified one is {}",
                m.what, m.reported, m.certified
            );
        }
        Ok(1)
    }
}
