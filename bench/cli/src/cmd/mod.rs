//! The subcommands, one file each.

pub mod audit;
pub mod can;
pub mod devices;
pub mod guard;
pub mod hw;
pub mod init;
pub mod keys;
pub mod p1;
pub mod panel;
pub mod retest;
pub mod run;
pub mod runs;
pub mod sim;
pub mod validate;
pub mod verify;

use clap::{Parser, Subcommand};

/// Calibration and compliance test bench for the energy meters inside EV chargers.
///
/// A run drives the reference source, counts the meter's LED pulses on every port at
/// once, computes each load point's error with its uncertainty, and decides against the
/// procedure's limits; every run ends in a signed bundle (record, certificate, manifest).
/// Exit codes: 0 PASS, 1 FAIL, 3 NOT DECIDABLE (a point's U too large for a statement of
/// conformity), 2 ERROR, aborted run or bad input (verify: 0 intact, 1 not).
#[derive(Debug, Parser)]
#[command(name = "meterbench", version, propagate_version = true)]
pub struct Cli {
    /// The bench home: the folder of procedures, fixtures, hw/stations, templates,
    /// reports (runs, issuance log, store) and keys [default: $METERBENCH_HOME, else the
    /// current folder]. `meterbench init DIR` creates one.
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a bench home (or add what it lacks): the shipped procedures, fixtures, the
    /// simulated stations, the templates, a reports folder and a signing key. Nothing
    /// already there is overwritten.
    Init(init::InitArgs),
    /// Run a procedure on a DUT clamped into a station (default: the full EN 50470-3
    /// class B verification of a CPIM1000 on the simulated bench).
    Run(run::RunArgs),
    /// Measure one point of a stored run again (a retest in a later session): a new run
    /// that amends the stored one, every attempt in its record.
    Retest(retest::RetestArgs),
    /// Check procedures, fixtures and stations for errors without running anything.
    Validate(validate::ValidateArgs),
    /// Check that a certificate bundle (or the issuance log) is untouched and signed.
    Verify(verify::VerifyArgs),
    /// List serial ports (USB VID/PID, serial numbers) and CAN interfaces, and ask
    /// what answers on them (`*IDN?`, the pulse counter's hello): for writing a station file.
    Devices(devices::DevicesArgs),
    /// CAN: read a meter's software identity and compare it with the certified ones.
    Can(can::CanArgs),
    /// The pulse counter: flash its firmware through a debug probe, read its identity.
    Hw(hw::HwArgs),
    /// DSMR P1 telegrams: read a port live, or decode captured bytes.
    P1(p1::P1Args),
    /// The station panel: a browser operator screen (start, live results, prompts, stop,
    /// retest, history), served by this process.
    Panel(panel::PanelArgs),
    /// Manage the bench's signing key.
    Keys(keys::KeysArgs),
    /// Runs in the results store: list, show, file bundles into it.
    Runs(runs::RunsArgs),
    /// Audit report over a date range: yield, error distributions, Cpk, reference
    /// drift, calibrations due, every FAIL and ERROR (HTML, PDF, JSON).
    Audit(audit::AuditArgs),
    /// The simulated bench: serve its instruments on real ports.
    Sim(sim::SimArgs),
    /// The source's guard process (started by `run` for a source on a real port).
    #[command(hide = true)]
    Guard(guard::GuardArgs),
}
