//! `meterbench hw flash` and `meterbench hw info`: the pulse counter's firmware onto the
//! RP2040 through a debug probe (probe-rs), and what a counter says about itself.

use clap::{Args, Subcommand};
use meterbench_instruments::PulseCounter;
use meterbench_instruments::counter::ProtocolCounter;
use meterbench_instruments::discovery::{COUNTER_USB_ID, serial_ports};
use meterbench_instruments::transport::{SerialSettings, SerialTransport};
use std::path::{Path, PathBuf};
use std::time::Duration;
#[cfg(feature = "flash")]
use std::time::Instant;

/// Where `hw/pulse-counter/build.sh` leaves the firmware.
pub const FIRMWARE_ELF: &str = "hw/pulse-counter/target/thumbv6m-none-eabi/release/pulse-counter";

#[derive(Debug, Args)]
pub struct HwArgs {
    #[command(subcommand)]
    pub command: HwCommand,
}

#[derive(Debug, Subcommand)]
pub enum HwCommand {
    /// Flash the pulse counter firmware into the RP2040 through a debug probe (CMSIS-DAP
    /// v2, e.g. the Raspberry Pi Debug Probe, on the board's SWD pins), verify it, and
    /// start it.
    Flash(FlashArgs),
    /// Read a pulse counter's hello: firmware version, serial number, timebase.
    Info(InfoArgs),
}

#[derive(Debug, Args)]
pub struct FlashArgs {
    /// Firmware ELF (build it with `bash hw/pulse-counter/build.sh`).
    #[arg(long, default_value = FIRMWARE_ELF)]
    pub elf: PathBuf,
    /// Debug probe to use, as VID:PID or VID:PID:SERIAL (hex ids), when several are attached.
    #[arg(long)]
    pub probe: Option<String>,
    /// probe-rs name of the chip.
    #[arg(long, default_value = "RP2040")]
    pub chip: String,
    /// Skip reading the flash back after writing it.
    #[arg(long)]
    pub no_verify: bool,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Serial port of the counter [default: the USB port with the counter's USB id].
    pub port: Option<String>,
    /// Reply timeout, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub timeout_ms: u64,
}

pub fn main(args: HwArgs) -> i32 {
    let result = match args.command {
        HwCommand::Flash(a) => flash(&a),
        HwCommand::Info(a) => info(&a),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    }
}

/// What an RP2040 firmware image must be before a probe is touched: an ELF for 32-bit ARM.
pub fn check_firmware_elf(path: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}; build the firmware first: bash hw/pulse-counter/build.sh",
            path.display()
        )
    })?;
    const EM_ARM: u16 = 40;
    if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" {
        anyhow::bail!("{}: not an ELF file", path.display());
    }
    let (class, data) = (bytes[4], bytes[5]);
    let machine = u16::from_le_bytes([bytes[18], bytes[19]]);
    if class != 1 || data != 1 || machine != EM_ARM {
        anyhow::bail!(
            "{}: an ELF for another machine (class {class}, byte order {data}, e_machine {machine}); the RP2040 needs 32-bit little-endian ARM (thumbv6m-none-eabi)",
            path.display()
        );
    }
    Ok(())
}

/// Built without the `flash` feature: the image is still checked, so a wrong file is
/// named first, then the user learns how to get a binary that flashes.
#[cfg(not(feature = "flash"))]
fn flash(a: &FlashArgs) -> anyhow::Result<()> {
    check_firmware_elf(&a.elf)?;
    anyhow::bail!(
        "this meterbench was built without flashing support (probe-rs, the cargo feature `flash`); install one that flashes: cargo install --locked --path bench/cli --features flash"
    )
}

#[cfg(feature = "flash")]
fn flash(a: &FlashArgs) -> anyhow::Result<()> {
    use probe_rs::Permissions;
    use probe_rs::flashing::{DownloadOptions, ElfLoader, ElfOptions, download_file_with_options};
    use probe_rs::probe::{DebugProbeSelector, list::Lister};

    check_firmware_elf(&a.elf)?;
    let lister = Lister::new();
    let probes = lister.list_all();
    let selector: Option<DebugProbeSelector> = match &a.probe {
        Some(s) => Some(s.parse().map_err(|e| {
            anyhow::anyhow!("--probe {s:?}: {e} (expected VID:PID or VID:PID:SERIAL)")
        })?),
        None => None,
    };
    let probe = match (&selector, probes.as_slice()) {
        (_, []) => anyhow::bail!(
            "no debug probe found: connect a CMSIS-DAP v2 probe (e.g. the Raspberry Pi Debug Probe) to the counter board's SWD pins (hw/wiring.md) and its USB to this computer"
        ),
        (Some(sel), _) => lister
            .open(sel.clone())
            .map_err(|e| anyhow::anyhow!("debug probe {sel}: {e}"))?,
        (None, [one]) => one
            .open()
            .map_err(|e| anyhow::anyhow!("debug probe {one}: {e}"))?,
        (None, many) => {
            let names: Vec<String> = many
                .iter()
                .map(|p| {
                    format!(
                        "{:04x}:{:04x}{} ({})",
                        p.vendor_id,
                        p.product_id,
                        p.serial_number
                            .as_deref()
                            .map(|s| format!(":{s}"))
                            .unwrap_or_default(),
                        p.identifier
                    )
                })
                .collect();
            anyhow::bail!(
                "{} debug probes attached; choose one with --probe: {}",
                many.len(),
                names.join(", ")
            )
        }
    };
    eprintln!("attaching to {} ...", a.chip);
    let mut session = probe
        .attach(a.chip.as_str(), Permissions::default())
        .map_err(|e| anyhow::anyhow!("attaching to the {} through the probe: {e}", a.chip))?;
    let started = Instant::now();
    let mut options = DownloadOptions::default();
    options.verify = !a.no_verify;
    eprintln!(
        "writing {}{} ...",
        a.elf.display(),
        if a.no_verify { "" } else { " and verifying it" }
    );
    download_file_with_options(
        &mut session,
        &a.elf,
        ElfLoader(ElfOptions::default()),
        options,
    )
    .map_err(|e| anyhow::anyhow!("flashing {}: {e}", a.elf.display()))?;
    let mut core = session
        .core(0)
        .map_err(|e| anyhow::anyhow!("core 0 of the {}: {e}", a.chip))?;
    core.reset()
        .map_err(|e| anyhow::anyhow!("starting the firmware (reset): {e}"))?;
    crate::sayln!(
        "flashed{} {} in {:.1} s; the counter restarts: check it with `meterbench hw info`",
        if a.no_verify { "" } else { " and verified" },
        a.elf.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn info(a: &InfoArgs) -> anyhow::Result<()> {
    let port = match &a.port {
        Some(p) => p.clone(),
        None => {
            let found: Vec<String> = serial_ports()
                .map_err(|e| anyhow::anyhow!("listing serial ports: {e}"))?
                .into_iter()
                .filter(|p| {
                    p.usb
                        .as_ref()
                        .is_some_and(|u| (u.vid, u.pid) == COUNTER_USB_ID)
                })
                .map(|p| p.path)
                .collect();
            match found.as_slice() {
                [] => anyhow::bail!(
                    "no pulse counter found (no USB serial port with id {:04x}:{:04x}); plug it in, or name its port: meterbench hw info PORT",
                    COUNTER_USB_ID.0,
                    COUNTER_USB_ID.1
                ),
                [one] => one.clone(),
                many => anyhow::bail!(
                    "{} pulse counters attached ({}); name one: meterbench hw info PORT",
                    many.len(),
                    many.join(", ")
                ),
            }
        }
    };
    let timeout = Duration::from_millis(a.timeout_ms);
    let transport = SerialTransport::open(&SerialSettings::new(port.clone(), 115_200))
        .map_err(|e| anyhow::anyhow!("{port}: {e}"))?;
    let mut counter = ProtocolCounter::open(transport, timeout).map_err(|e| {
        anyhow::anyhow!(
            "{port}: no pulse counter hello ({e}); is the firmware flashed? (meterbench hw flash)"
        )
    })?;
    let h = *counter.hello();
    let id = counter.identity()?;
    let (major, minor, patch) = h.firmware_version;
    crate::sayln!("port            {port}");
    crate::sayln!("serial number   {}", id.serial_number);
    crate::sayln!("firmware        {major}.{minor}.{patch}");
    crate::sayln!("protocol        v{}", h.protocol_version);
    crate::sayln!("channels        {}", h.channel_count);
    crate::sayln!(
        "timebase        {} Hz ({})",
        h.timebase_hz,
        if h.external_clock {
            "external reference clock"
        } else {
            "on-board crystal"
        }
    );
    crate::sayln!(
        "reference input {}",
        if h.reference_input { "yes" } else { "no" }
    );
    Ok(())
}
