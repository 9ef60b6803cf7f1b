//! `meterbench p1 read PORT` (live values from a P1 port) and `meterbench p1 decode FILE`
//! (captured bytes to JSON).

use clap::{Args, Subcommand, ValueEnum};
use meterbench_instruments::p1::{
    P1Event, P1Reader, P1Settings, RequestLine, StampedTelegram, p1_serial_settings,
};
use meterbench_instruments::transport::SerialTransport;
use meterbench_p1::{DecodeError, Decoder, Telegram, Value};
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
    /// Exit 0: every telegram valid; 1: errors in the stream, or no telegram at all; 2:
    /// unreadable file.
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
    let file = match std::fs::File::open(&a.file) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {}: {e}", a.file.display());
            return 2;
        }
    };
    let stdout = std::io::stdout().lock();
    let mut json = JsonArray::new(std::io::BufWriter::with_capacity(1 << 16, stdout));
    match stream_decode(file, &mut json) {
        Ok(counts) => {
            eprintln!(
                "{}: {} bytes, {} telegrams, {} warnings, {} errors",
                a.file.display(),
                counts.bytes,
                counts.telegrams,
                counts.warnings,
                counts.errors
            );
            // A capture with no telegram at all (the wrong file, the wrong baud rate)
            // is no capture whose telegrams are all valid.
            if counts.telegrams == 0 && counts.errors == 0 {
                eprintln!(
                    "error: {}: no P1 telegram in it (a telegram starts with `/`, ends with `!` and its CRC)",
                    a.file.display()
                );
                1
            } else if counts.errors == 0 {
                0
            } else {
                1
            }
        }
        // A reader that went away (`| head`) wanted no more.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("error: {}: {e}", a.file.display());
            2
        }
    }
}

#[derive(Debug, Default)]
struct DecodeCounts {
    bytes: u64,
    telegrams: u64,
    warnings: u64,
    errors: u64,
}

/// Decodes `input` chunk by chunk and writes each telegram, warning (a deviation of a
/// real meter, bytes between telegrams) and error as it completes: memory stays that
/// of one chunk and one telegram, whatever the capture's size.
fn stream_decode(
    mut input: impl std::io::Read,
    json: &mut JsonArray<impl std::io::Write>,
) -> std::io::Result<DecodeCounts> {
    let mut counts = DecodeCounts::default();
    let mut decoder = Decoder::default();
    let mut chunk = vec![0u8; 1 << 16];
    let mut on =
        |r: Result<Telegram, DecodeError>, counts: &mut DecodeCounts| -> std::io::Result<()> {
            match r {
                Ok(t) => {
                    counts.telegrams += 1;
                    counts.warnings += t.deviations.len() as u64;
                    for d in &t.deviations {
                        json.item("warning", &notice(d.offset, &d.kind))?;
                    }
                    json.item("telegram", &t)
                }
                Err(e) if e.is_warning() => {
                    counts.warnings += 1;
                    json.item("warning", &notice(e.offset, &e.kind))
                }
                Err(e) => {
                    counts.errors += 1;
                    json.item("error", &notice(e.offset, &e.kind))
                }
            }
        };
    loop {
        let n = match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        counts.bytes += n as u64;
        let mut failed = None;
        decoder.feed(&chunk[..n], |r| {
            if failed.is_none() {
                failed = on(r, &mut counts).err();
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
    }
    if let Some(e) = decoder.finish() {
        on(Err(e), &mut counts)?;
    }
    json.close()?;
    Ok(counts)
}

fn notice(offset: u64, what: &impl std::fmt::Display) -> serde_json::Value {
    json!({ "offset": offset, "message": what.to_string() })
}

/// A JSON array written item by item, one `{"KIND": VALUE}` object per line.
struct JsonArray<W: std::io::Write> {
    out: W,
    items: u64,
}

impl<W: std::io::Write> JsonArray<W> {
    fn new(out: W) -> Self {
        JsonArray { out, items: 0 }
    }

    fn item(&mut self, kind: &str, value: &impl serde::Serialize) -> std::io::Result<()> {
        self.out.write_all(if self.items == 0 {
            b"[\n{\""
        } else {
            b",\n{\""
        })?;
        self.out.write_all(kind.as_bytes())?;
        self.out.write_all(b"\":")?;
        serde_json::to_writer(&mut self.out, value)?;
        self.out.write_all(b"}")?;
        self.items += 1;
        Ok(())
    }

    fn close(&mut self) -> std::io::Result<()> {
        self.out
            .write_all(if self.items == 0 { b"[]\n" } else { b"\n]\n" })?;
        self.out.flush()
    }
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
    let mut out = std::io::stdout();
    use std::io::Write as _;
    while !stop.load(Ordering::SeqCst) && a.count.is_none_or(|n| seen < n) {
        let text = match reader.next_event(Duration::from_millis(250))? {
            Some(P1Event::Telegram(t)) => {
                seen += 1;
                silent_s = 0.0;
                if a.json {
                    format!("{}\n", serde_json::to_string(&t)?)
                } else {
                    show(&t)
                }
            }
            Some(P1Event::Error(e)) => {
                if a.json {
                    format!(
                        "{}\n",
                        json!({ "error": { "offset": e.offset, "message": e.kind.to_string() } })
                    )
                } else {
                    format!("! {e}\n")
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
                continue;
            }
        };
        // A reader that went away (`| head -3`) wants no more: the port is closed as
        // after Ctrl-C, its request line lowered.
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
            Err(e) => return Err(e.into()),
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
        Value::String(s) => s.to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(input: &[u8]) -> (serde_json::Value, DecodeCounts) {
        let mut out = Vec::new();
        let counts = stream_decode(input, &mut JsonArray::new(&mut out)).unwrap();
        (serde_json::from_slice(&out).unwrap(), counts)
    }

    #[test]
    fn an_empty_capture_is_an_empty_array() {
        let (v, c) = decoded(b"");
        assert_eq!(v, json!([]));
        assert_eq!((c.telegrams, c.warnings, c.errors), (0, 0, 0));
    }

    #[test]
    fn telegrams_warnings_and_errors_are_written_in_stream_order() {
        let t = meterbench_p1::encode_csp1_telegram(&Default::default());
        let mut input = b"noise".to_vec();
        input.extend_from_slice(&t);
        input.extend_from_slice(&t[..20]);
        let (v, c) = decoded(&input);
        assert_eq!(v[0]["warning"]["offset"], 0);
        assert_eq!(v[1]["telegram"]["offset"], 5);
        assert!(
            v[2]["error"]["message"]
                .as_str()
                .unwrap()
                .contains("cut short"),
            "{v}"
        );
        assert_eq!((c.telegrams, c.warnings, c.errors), (1, 1, 1));
        assert_eq!(c.bytes, input.len() as u64);
    }
}
