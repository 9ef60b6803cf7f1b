//! `meterbench devices`: serial ports, CAN interfaces and the instruments that answer on
//! them, with the station-file lines that bind them.

use clap::Args;
use meterbench_instruments::discovery::{
    Answer, CanInterface, SerialPortEntry, can_interfaces, identify, serial_ports,
};
use meterbench_instruments::transport::{SerialSettings, SerialTransport, TcpTransport};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// Also ask what is on this serial port (a port not listed, e.g. a pseudo-terminal or
    /// an RS-232 port). May be repeated.
    #[arg(long = "probe", value_name = "PORT")]
    pub probe: Vec<String>,
    /// Ask an SCPI instrument on the LAN, e.g. 192.168.0.5:5025. May be repeated.
    #[arg(long = "tcp", value_name = "HOST:PORT")]
    pub tcp: Vec<String>,
    /// Ask every listed serial port, not only USB ones (on-board RS-232 ports too).
    #[arg(long)]
    pub all: bool,
    /// List only: send nothing to any port.
    #[arg(long)]
    pub no_identify: bool,
    /// Serial speed for the questions (USB CDC devices ignore it).
    #[arg(long, default_value_t = 115_200)]
    pub baud: u32,
    /// How long to wait for each answer, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub timeout_ms: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Probed {
    port: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    listed: Option<SerialPortEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    answer: Option<Answer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    serial_ports: Vec<Probed>,
    tcp: Vec<Probed>,
    can_interfaces: Vec<CanInterface>,
}

pub fn main(args: DevicesArgs) -> i32 {
    let timeout = Duration::from_millis(args.timeout_ms);
    let listed = match serial_ports() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot list serial ports: {e}");
            return 2;
        }
    };
    let mut serial: Vec<Probed> = listed
        .into_iter()
        .map(|entry| Probed {
            port: entry.path.clone(),
            listed: Some(entry),
            answer: None,
            error: None,
        })
        .collect();
    for p in &args.probe {
        if !serial.iter().any(|s| &s.port == p) {
            serial.push(Probed {
                port: p.clone(),
                listed: None,
                answer: None,
                error: None,
            });
        }
    }
    if !args.no_identify {
        for s in &mut serial {
            let asked = args.probe.contains(&s.port)
                || args.all
                || s.listed.as_ref().is_some_and(|l| l.kind == "usb");
            if !asked {
                continue;
            }
            let settings = SerialSettings::new(s.port.clone(), args.baud);
            match identify(|| SerialTransport::open(&settings), timeout) {
                Ok(a) => s.answer = Some(a),
                Err(e) => s.error = Some(e.to_string()),
            }
        }
    }
    let tcp: Vec<Probed> = args
        .tcp
        .iter()
        .map(|addr| {
            let mut p = Probed {
                port: format!("tcp://{addr}"),
                listed: None,
                answer: None,
                error: None,
            };
            match identify(|| TcpTransport::connect(addr, timeout), timeout) {
                Ok(a) => p.answer = Some(a),
                Err(e) => p.error = Some(e.to_string()),
            }
            p
        })
        .collect();
    let report = Report {
        serial_ports: serial,
        tcp,
        can_interfaces: can_interfaces(Path::new("/sys/class/net")),
    };
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => crate::sayln!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        }
    } else {
        crate::sayp!("{}", text(&report, !args.no_identify));
    }
    0
}

fn text(r: &Report, identified: bool) -> String {
    let mut out = String::from("Serial ports\n");
    if r.serial_ports.is_empty() {
        out.push_str("  (none found; name a port with --probe PORT to ask it anyway)\n");
    }
    for p in r.serial_ports.iter().chain(&r.tcp) {
        out.push_str(&format!("  {}", p.port));
        if let Some(l) = &p.listed {
            out.push_str(&format!("  [{}", l.kind));
            if let Some(u) = &l.usb {
                out.push_str(&format!(" {:04x}:{:04x}", u.vid, u.pid));
                for (what, v) in [
                    ("serial", &u.serial_number),
                    ("manufacturer", &u.manufacturer),
                    ("product", &u.product),
                ] {
                    if let Some(v) = v {
                        out.push_str(&format!(" {what} {v:?}"));
                    }
                }
            }
            out.push(']');
            if let Some(h) = l.hint() {
                out.push_str(&format!("  {h}"));
            }
        }
        out.push('\n');
        match (&p.answer, &p.error) {
            (Some(Answer::Scpi { identity: i }), _) => {
                out.push_str(&format!(
                    "      answers *IDN?: {} {}, serial {}, firmware {}\n",
                    i.manufacturer, i.model, i.serial_number, i.firmware
                ));
                out.push_str(&format!(
                    "      station: {{ driver: scpi, port: {}, serial_number: {} }}\n",
                    p.port, i.serial_number
                ));
            }
            (
                Some(Answer::Counter {
                    identity: i,
                    timebase_hz,
                    channels,
                    external_clock,
                }),
                _,
            ) => {
                out.push_str(&format!(
                    "      answers hello: {} {}, serial {}, firmware {}, {channels} channels, timebase {} MHz{}\n",
                    i.manufacturer,
                    i.model,
                    i.serial_number,
                    i.firmware,
                    f64::from(*timebase_hz) / 1e6,
                    if *external_clock { " (external reference)" } else { "" }
                ));
                out.push_str(&format!(
                    "      station (roles.counters): - {{ id: c1, driver: meterbench-counter, port: {}, serial_number: {} }}\n",
                    p.port, i.serial_number
                ));
            }
            (
                Some(Answer::Slcan {
                    version,
                    serial_number,
                }),
                _,
            ) => {
                out.push_str(&format!(
                    "      answers SLCAN: USB-CAN adapter, version {version}, serial {serial_number}\n"
                ));
                out.push_str(&format!(
                    "      CAN through it: meterbench can identity {}; a rack position's `can: {}`\n",
                    p.port, p.port
                ));
            }
            (Some(Answer::Nothing { tried }), _) => {
                out.push_str("      no known instrument answered:\n");
                for t in tried {
                    out.push_str(&format!("        {t}\n"));
                }
            }
            (None, Some(e)) => out.push_str(&format!("      cannot open: {e}\n")),
            (None, None) if identified => {
                out.push_str("      not asked (not USB; --all asks every port, --probe PORT one)\n")
            }
            (None, None) => {}
        }
    }
    out.push_str("CAN interfaces (SocketCAN)\n");
    if r.can_interfaces.is_empty() {
        out.push_str(
            "  (none; a USB-CAN adapter speaking SLCAN shows up as a serial port above)\n",
        );
    }
    for c in &r.can_interfaces {
        out.push_str(&format!("  {} ({})\n", c.name, c.state));
    }
    out
}
