//! `meterbench p1 read PORT` (live values from a P1 port) and `meterbench p1 decode FILE`
//! (captured bytes to JSON).

use clap::{Args, Subcommand, ValueEnum};
use meterbench_instruments::p1::{
    P1Event, P1Reader, P1Settings, RequestLine, StampedTelegram, p1_serial_settings,
};
use meterbench_instruments::transport::SerialTransport;
use meterbench_p1::{Telegram, Value, decode_all};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Debug, Args)]
pub struct P1Args {
    #[command(subcommand)]
    pub command: P1Command,
}

#[derive(Debug, Subcommand)]
pub enum P1Command {
    /// Read telegrams from a P1 port and show their values as they arrive (Ctrl-C ends;
    /// the request line is lowered and the counts printed).
    Read(ReadArgs),
    /// Decode captured P1 bytes and print every telegram and error as JSON.
    /// Exit 0: every telegram valid; 1: errors in the stream; 2: unreadable file.
    Decode(DecodeArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Request {
    Rts,
    Dtr,
    None,
}

#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Serial port of the P1 cable, e.g. /dev/ttyUSB0.
    pub port: String,
    /// The control line wired to the P1 "data request" pin.
    #[arg(long, value_enum, default_value = "rts")]
    pub request: Request,
    /// The cable inverts the request line.
    #[arg(long)]
    pub inverted: bool,
    /// DSMR 2.2/3 meter: 9600 7E1 and a 10 s period (default: 115200 8N1, 1 s).
    #[arg(long)]
    pub dsmr22: bool,
    /// Stop after this many telegrams.
    #[arg(long)]
    pub count: Option<u64>,
    /// One JSON object per telegram or error, one per line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// File of captured bytes.
    pub file: PathBuf,
}

pub fn main(args: P1Args) -> i32 {
    match args.command {
        P1Command::Read(a) => match read(&a) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e:#}");
                2
            }
        },
        P1Command::Decode(a) => decode(&a),
    }
}

fn decode(a: &DecodeArgs) -> i32 {
    let bytes = match std::fs::read(&a.file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {}: {e}", a.file.display());
            return 2;
        }
    };
    let results = decode_all(&bytes);
    let mut errors = 0;
    let items: Vec<serde_json::Value> = results
        .iter()
        .map(|r| match r {
            Ok(t) => json!({ "telegram": t }),
            Err(e) => {
                errors += 1;
                json!({ "error": { "offset": e.offset, "message": e.kind.to_string() } })
            }
        })
        .collect();
    match serde_json::to_string_pretty(&items) {
        Ok(s) => println!("{s}"),
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    }
    eprintln!(
        "{}: {} bytes, {} telegrams, {errors} errors",
        a.file.display(),
        bytes.len(),
        results.len() - errors
    );
    if errors == 0 { 0 } else { 1 }
}

fn read(a: &ReadArgs) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGQUIT,
    ] {
        signal_hook::flag::register(signal, stop.clone())?;
    }
    let settings = p1_serial_settings(a.port.clone(), a.dsmr22);
    let transport =
        SerialTransport::open(&settings).map_err(|e| anyhow::anyhow!("{}: {e}", a.port))?;
    let p1 = P1Settings {
        request_line: match a.request {
            Request::Rts => RequestLine::Rts,
            Request::Dtr => RequestLine::Dtr,
            Request::None => RequestLine::None,
        },
        inverted: a.inverted,
        period: Duration::from_secs(if a.dsmr22 { 10 } else { 1 }),
    };
    let mut reader = P1Reader::open(transport, p1.clone())
        .map_err(|e| anyhow::anyhow!("{}: raising the request line: {e}", a.port))?;
    if !a.json {
        eprintln!(
            "reading {} ({}), request line {:?}{}; Ctrl-C stops",
            a.port,
            if a.dsmr22 { "9600 7E1" } else { "115200 8N1" },
            p1.request_line,
            if a.inverted { " inverted" } else { "" }
        );
    }
    let mut silent_s = 0.0;
    let mut seen = 0;
    while !stop.load(Ordering::SeqCst) && a.count.is_none_or(|n| seen < n) {
        match reader.next_event(Duration::from_millis(250))? {
            Some(P1Event::Telegram(t)) => {
                seen += 1;
                silent_s = 0.0;
                if a.json {
                    println!("{}", serde_json::to_string(&t)?);
                } else {
                    print!("{}", show(&t));
                }
            }
            Some(P1Event::Error(e)) => {
                if a.json {
                    println!(
                        "{}",
                        json!({ "error": { "offset": e.offset, "message": e.kind.to_string() } })
                    );
                } else {
                    println!("! {e}");
                }
            }
            None => {
                silent_s += 0.25;
                if silent_s >= 3.0 * p1.period.as_secs_f64() && !a.json {
                    eprintln!(
                        "no telegram for {silent_s:.0} s: check the cable, the request line (--request, --inverted) and the speed (--dsmr22)"
                    );
                    silent_s = 0.0;
                }
            }
        }
    }
    let stats = reader.close()?;
    eprintln!(
        "{} telegrams, {} CRC failures ({:.1} %), {} other errors, {} gaps; request line lowered",
        stats.telegrams,
        stats.crc_failures,
        100.0 * stats.crc_error_rate(),
        stats.other_errors,
        stats.gaps
    );
    Ok(())
}

fn value(v: &Value) -> String {
    match v {
        Value::Empty => "()".into(),
        Value::Decimal { value, unit } => match unit {
            Some(u) => format!("{value} {u}"),
            None => value.to_string(),
        },
        Value::Integer(i) => i.to_string(),
        Value::String(s) => s.clone(),
        Value::Timestamp(t) => t.to_string(),
        Value::Octets(o) => format!("{:?}", o.text()),
        Value::Obis(o) => o.to_string(),
    }
}

/// A telegram as a technician reads it: header, then one line per object.
pub fn show(t: &StampedTelegram) -> String {
    let tg: &Telegram = &t.telegram;
    let mut out = format!(
        "{} /{}{}{}{}{}\n",
        t.received_utc,
        tg.header.manufacturer,
        tg.header.baud,
        tg.header.identification,
        t.interval_s
            .map(|i| format!("  (+{i:.3} s)"))
            .unwrap_or_default(),
        match tg.crc {
            Some(c) => format!("  CRC {c:04X} ok"),
            None => "  no CRC (DSMR 2.2/3)".into(),
        }
    );
    for l in &tg.lines {
        let vals: Vec<String> = l.values.iter().map(value).collect();
        out.push_str(&format!(
            "  {:<14} {}\n",
            l.obis.to_string(),
            vals.join("  ")
        ));
    }
    out
}
