//! The far end of the SCPI wire: a simulated source / power standard that speaks a real
//! model's command profile (Fluke 6105A by default, Chroma 61500 selectable) over a
//! pseudo-terminal or a loopback TCP socket, and drives the shared world. The real
//! `ScpiAcSource` driver talks to it exactly as to the instrument.
//!
//! It matches received lines against the same templates the driver renders, so it
//! accepts only the forms the profile uses (no long forms, no `;`-joined commands); every
//! placeholder in a matched line is taken as a setting. Values beyond the configured
//! ratings queue `-222,"Data out of range"` and change nothing; unknown commands queue
//! `-113,"Undefined header"` (and unknown queries are not answered).

use crate::world::SharedWorld;
use meterbench_instruments::scpi::ScpiError;
use meterbench_instruments::source::profile::{
    CHROMA_61500, Capability, CommandProfile, FLUKE_6100B_6105A, match_template,
};
use meterbench_instruments::transport::serial::{SerialPort as _, SerialTransport, TTYPort};
use meterbench_instruments::{InstrumentIdentity, SourceSetpoint};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// IEEE 488.2 asks for room for at least this many queued errors.
const ERROR_QUEUE_LEN: usize = 16;
/// How often a blocked serving thread looks at its stop flag.
const POLL: Duration = Duration::from_millis(20);

/// What the simulated instrument is: its dialect, its `*IDN?` and its ratings.
#[derive(Debug, Clone)]
pub struct SimScpiConfig {
    pub profile: &'static CommandProfile,
    pub identity: InstrumentIdentity,
    pub max_voltage_v: f64,
    pub max_current_a: f64,
    pub frequency_range_hz: (f64, f64),
}

impl SimScpiConfig {
    /// A Fluke 6105A: 1008 V, 21 A, 16–850 Hz.
    pub fn fluke_6105a() -> Self {
        SimScpiConfig {
            profile: &FLUKE_6100B_6105A,
            identity: InstrumentIdentity {
                manufacturer: "FLUKE".into(),
                model: "6105A".into(),
                serial_number: "SIM-6105A-0001".into(),
                firmware: format!("sim {}", env!("CARGO_PKG_VERSION")),
            },
            max_voltage_v: 1008.0,
            max_current_a: 21.0,
            frequency_range_hz: (16.0, 850.0),
        }
    }

    /// A Chroma 61504 in three-phase mode: 300 V, 16 A limit, 15–1000 Hz.
    pub fn chroma_61504() -> Self {
        SimScpiConfig {
            profile: &CHROMA_61500,
            identity: InstrumentIdentity {
                manufacturer: "Chroma ATE".into(),
                model: "61504".into(),
                serial_number: "SIM-61504-0001".into(),
                firmware: "1.00,1.01,1.02".into(),
            },
            max_voltage_v: 300.0,
            max_current_a: 16.0,
            frequency_range_hz: (15.0, 1000.0),
        }
    }

    /// The same instrument with other ratings (a station's `max_voltage_v` / `max_current_a`).
    pub fn with_ratings(mut self, max_voltage_v: f64, max_current_a: f64) -> Self {
        self.max_voltage_v = max_voltage_v;
        self.max_current_a = max_current_a;
        self
    }
}

impl Default for SimScpiConfig {
    fn default() -> Self {
        SimScpiConfig::fluke_6105a()
    }
}

/// The simulated instrument's state; serve it on a stream, a PTY or TCP.
#[derive(Debug)]
pub struct SimScpiInstrument {
    world: SharedWorld,
    config: SimScpiConfig,
    setpoint: SourceSetpoint,
    selected_phase: usize,
    errors: VecDeque<ScpiError>,
}

fn scpi_error(code: i32, message: &str) -> ScpiError {
    ScpiError {
        code,
        message: message.into(),
    }
}

impl SimScpiInstrument {
    pub fn new(world: SharedWorld, config: SimScpiConfig) -> Self {
        SimScpiInstrument {
            world,
            config,
            setpoint: SourceSetpoint::default(),
            selected_phase: 0,
            errors: VecDeque::new(),
        }
    }

    fn push_error(&mut self, e: ScpiError) {
        if self.errors.len() + 1 >= ERROR_QUEUE_LEN {
            // The last slot reports the overflow (SCPI-99 §21.8.2).
            if self.errors.len() < ERROR_QUEUE_LEN {
                self.errors.push_back(scpi_error(-350, "Queue overflow"));
            }
            return;
        }
        self.errors.push_back(e);
    }

    fn matches(&self, capability: Capability, line: &str) -> bool {
        self.config
            .profile
            .templates()
            .any(|(c, t)| c == capability && match_template(t.template, line).is_some())
    }

    /// Handle one received line; returns the reply to send, if any.
    pub fn handle_line(&mut self, line: &str) -> Option<String> {
        let line = line.trim();
        if line.is_empty() {
            return None;
        }
        if line.eq_ignore_ascii_case("*IDN?") {
            let id = &self.config.identity;
            return Some(format!(
                "{},{},{},{}",
                id.manufacturer, id.model, id.serial_number, id.firmware
            ));
        }
        if line.eq_ignore_ascii_case("*OPC?") {
            return Some("1".into());
        }
        if self.matches(Capability::ErrorQuery, line) {
            let e = self
                .errors
                .pop_front()
                .unwrap_or_else(|| scpi_error(0, "No error"));
            return Some(e.to_string());
        }
        if self.matches(Capability::OutputQuery, line) {
            let on = self.world.lock().unwrap().source_output_is_on();
            return Some(if on { "1" } else { "0" }.into());
        }
        if line.ends_with('?') {
            self.push_error(scpi_error(-113, "Undefined header"));
            return None;
        }
        if line.eq_ignore_ascii_case("*CLS") {
            self.errors.clear();
            return None;
        }
        if line.eq_ignore_ascii_case("*RST") {
            self.setpoint = SourceSetpoint::default();
            self.selected_phase = 0;
            let mut w = self.world.lock().unwrap();
            w.source_set_output(false);
            w.source_apply(self.setpoint);
            return None;
        }
        let profile = self.config.profile;
        let found = profile
            .templates()
            .find_map(|(cap, t)| match_template(t.template, line).map(|captures| (cap, captures)));
        match found {
            Some((cap, captures)) => self.execute(cap, &captures),
            None => self.push_error(scpi_error(-113, "Undefined header")),
        }
        None
    }

    fn execute(&mut self, capability: Capability, captures: &[(String, String)]) {
        let mut values = Vec::with_capacity(captures.len());
        for (name, text) in captures {
            match text.parse::<f64>() {
                Ok(v) if v.is_finite() => values.push((name.as_str(), v)),
                _ => return self.push_error(scpi_error(-104, "Data type error")),
            }
        }
        match capability {
            Capability::Setup | Capability::OutputQuery | Capability::ErrorQuery => {}
            Capability::Frequency => {
                let (lo, hi) = self.config.frequency_range_hz;
                let mut next = self.setpoint;
                for (name, v) in &values {
                    if *name == "frequency_hz" {
                        if !(lo..=hi).contains(v) {
                            return self.push_error(scpi_error(-222, "Data out of range"));
                        }
                        next.frequency_hz = *v;
                    }
                }
                self.setpoint = next;
                self.world.lock().unwrap().source_apply(next);
            }
            Capability::Phase => self.program_phase(&values),
            Capability::OutputOn => self.world.lock().unwrap().source_set_output(true),
            Capability::OutputOff => self.world.lock().unwrap().source_set_output(false),
            Capability::PulseOutput => {
                for (name, v) in &values {
                    if *name == "imp_per_kwh" {
                        if *v <= 0.0 {
                            return self.push_error(scpi_error(-222, "Data out of range"));
                        }
                        self.world.lock().unwrap().reference_configure(*v);
                    }
                }
            }
        }
    }

    fn program_phase(&mut self, values: &[(&str, f64)]) {
        let out_of_range = scpi_error(-222, "Data out of range");
        let mut phase = self.selected_phase;
        for (name, v) in values {
            if *name == "phase" {
                if !(1.0..=3.0).contains(v) || v.fract() != 0.0 {
                    return self.push_error(out_of_range);
                }
                phase = *v as usize - 1;
            }
        }
        self.selected_phase = phase;
        let profile = self.config.profile;
        let mut p = self.setpoint.phases[phase];
        for (name, v) in values {
            match *name {
                "voltage_v" => {
                    if !(0.0..=self.config.max_voltage_v).contains(v) {
                        return self.push_error(out_of_range);
                    }
                    p.voltage_v = *v;
                }
                "current_a" => {
                    if !(0.0..=self.config.max_current_a).contains(v) {
                        return self.push_error(out_of_range);
                    }
                    p.current_a = *v;
                }
                "current_angle_deg" => p.current_lag_deg = profile.lag_deg(phase, *v),
                // The world has no voltage angles: a balanced positive sequence is assumed.
                _ => {}
            }
        }
        self.setpoint.phases[phase] = p;
        self.world.lock().unwrap().source_apply(self.setpoint);
    }

    /// Serve `stream` until it closes, fails, or `stop` is set. Reads should time out now
    /// and then (a PTY port's or a socket's read timeout) so `stop` is seen.
    pub fn serve<S: Read + Write>(&mut self, stream: &mut S, stop: &AtomicBool) -> io::Result<()> {
        let mut pending: Vec<u8> = Vec::new();
        let mut chunk = [0u8; 1024];
        while !stop.load(Ordering::Relaxed) {
            let n = match stream.read(&mut chunk) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) => match e.kind() {
                    io::ErrorKind::TimedOut
                    | io::ErrorKind::WouldBlock
                    | io::ErrorKind::Interrupted => continue,
                    // The driver's end went away: that ends the session, it is no fault.
                    io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::UnexpectedEof => return Ok(()),
                    _ => return Err(e),
                },
            };
            pending.extend_from_slice(&chunk[..n]);
            while let Some(i) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=i).collect();
                let text = String::from_utf8_lossy(&line[..i]).into_owned();
                if let Some(mut reply) = self.handle_line(&text) {
                    // One write: the driver wakes once, for the whole line.
                    reply.push('\n');
                    stream.write_all(reply.as_bytes())?;
                    stream.flush()?;
                }
            }
            if pending.len() > 1 << 16 {
                // No terminator in 64 KiB: drop the garbage like an input buffer overrun.
                pending.clear();
                self.push_error(scpi_error(-363, "Input buffer overrun"));
            }
        }
        Ok(())
    }

    /// Serve `stream` on a new thread until it closes or the handle stops it.
    pub fn spawn<S: Read + Write + Send + 'static>(
        self,
        mut stream: S,
    ) -> io::Result<SimScpiHandle> {
        SimScpiHandle::spawn(self, move |instrument, stop| {
            instrument.serve(&mut stream, stop)
        })
    }

    /// Serve on a new pseudo-terminal pair; returns the driver's end as a transport.
    pub fn spawn_on_pty(self) -> io::Result<(SerialTransport, SimScpiHandle)> {
        let (master, slave) = TTYPort::pair().map_err(io::Error::from)?;
        let handle = self.spawn(pty_master(master)?)?;
        Ok((SerialTransport::from_tty(slave), handle))
    }

    /// Serve on a new pseudo-terminal pair; returns the path of the device end (e.g.
    /// `/dev/pts/7`) for a driver to open like a serial port.
    pub fn spawn_on_pty_device(self) -> io::Result<SimPtyDevice> {
        let (master, slave) = TTYPort::pair().map_err(io::Error::from)?;
        let path = slave
            .name()
            .ok_or_else(|| io::Error::other("pseudo-terminal without a name"))?;
        let handle = self.spawn(pty_master(master)?)?;
        Ok(SimPtyDevice {
            path,
            _keep_open: slave,
            handle,
        })
    }

    /// Serve on a TCP listener on 127.0.0.1 with an ephemeral port, one connection after
    /// another (the state carries over, like an instrument's).
    pub fn spawn_on_tcp(self) -> io::Result<SimTcpServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let handle = SimScpiHandle::spawn(self, move |instrument, stop| {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        stream.set_nonblocking(false)?;
                        stream.set_read_timeout(Some(POLL))?;
                        stream.set_nodelay(true)?;
                        instrument.serve(&mut stream, stop)?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })?;
        Ok(SimTcpServer { addr, handle })
    }
}

/// The PTY master wakes up every `POLL` to look at the stop flag.
fn pty_master(mut master: TTYPort) -> io::Result<TTYPort> {
    master.set_timeout(POLL).map_err(io::Error::from)?;
    Ok(master)
}

/// A running simulated instrument. Dropping it (or [`SimScpiHandle::shutdown`]) closes
/// the far end: the driver's next exchange fails as a closed link.
#[derive(Debug)]
pub struct SimScpiHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl SimScpiHandle {
    fn spawn<F>(mut instrument: SimScpiInstrument, serve: F) -> io::Result<SimScpiHandle>
    where
        F: FnOnce(&mut SimScpiInstrument, &AtomicBool) -> io::Result<()> + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sim-scpi".into())
            .spawn(move || serve(&mut instrument, &flag))?;
        Ok(SimScpiHandle {
            stop,
            thread: Some(thread),
        })
    }

    /// Whether the serving thread still runs (it ends when the link closes).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Close the far end and wait for the serving thread; returns how serving ended.
    pub fn shutdown(mut self) -> io::Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> io::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the simulated instrument panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for SimScpiHandle {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

/// A simulated instrument on a pseudo-terminal, reachable by path.
#[derive(Debug)]
pub struct SimPtyDevice {
    path: String,
    /// Holding the device end open keeps the PTY alive until the driver opens it.
    _keep_open: TTYPort,
    handle: SimScpiHandle,
}

impl SimPtyDevice {
    /// The device to open, e.g. `/dev/pts/7`.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn shutdown(self) -> io::Result<()> {
        self.handle.shutdown()
    }
}

/// A simulated instrument listening on loopback TCP.
#[derive(Debug)]
pub struct SimTcpServer {
    addr: SocketAddr,
    handle: SimScpiHandle,
}

impl SimTcpServer {
    /// `127.0.0.1:<ephemeral port>`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn shutdown(self) -> io::Result<()> {
        self.handle.shutdown()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::World;
    use meterbench_procedure::Fixture;
    use meterbench_procedure::station::Station;
    use std::path::Path;
    use std::sync::Mutex;

    fn world() -> SharedWorld {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let station = Station::load(&repo.join("hw/stations/sim.yaml")).unwrap();
        let fixture = Fixture::load(&repo.join("fixtures/cpim1000.yaml")).unwrap();
        Arc::new(Mutex::new(World::for_station(&station, &fixture)))
    }

    #[test]
    fn answers_identity_and_keeps_an_error_queue() {
        let w = world();
        let mut sim = SimScpiInstrument::new(w.clone(), SimScpiConfig::fluke_6105a());
        assert_eq!(
            sim.handle_line("*IDN?").unwrap(),
            format!(
                "FLUKE,6105A,SIM-6105A-0001,sim {}",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert_eq!(sim.handle_line("SYST:ERR?").unwrap(), "0,\"No error\"");
        assert_eq!(sim.handle_line("BOGUS 1"), None);
        assert_eq!(sim.handle_line("SOUR:PHAS1:VOLT:MHAR:HARM1 2000,0"), None);
        assert_eq!(sim.handle_line("WHAT?"), None);
        assert_eq!(
            sim.handle_line("syst:err?").unwrap(),
            "-113,\"Undefined header\""
        );
        assert_eq!(
            sim.handle_line("SYST:ERR?").unwrap(),
            "-222,\"Data out of range\""
        );
        assert_eq!(
            sim.handle_line("SYST:ERR?").unwrap(),
            "-113,\"Undefined header\""
        );
        assert_eq!(sim.handle_line("SYST:ERR?").unwrap(), "0,\"No error\"");
        for _ in 0..40 {
            sim.handle_line("BOGUS");
        }
        assert_eq!(sim.errors.len(), ERROR_QUEUE_LEN);
        assert_eq!(sim.errors.back().unwrap().code, -350);
        sim.handle_line("*CLS");
        assert_eq!(sim.handle_line("SYST:ERR?").unwrap(), "0,\"No error\"");
    }

    #[test]
    fn programs_the_world_through_the_profile() {
        let w = world();
        let mut sim = SimScpiInstrument::new(w.clone(), SimScpiConfig::fluke_6105a());
        for line in [
            "SOUR:FREQ 50",
            "SOUR:PHAS2:VOLT:MHAR:HARM1 230,-120",
            "SOUR:PHAS2:CURR:MHAR:HARM1 5,-60",
            "OUTP ON",
        ] {
            assert_eq!(sim.handle_line(line), None, "{line}");
        }
        assert_eq!(sim.handle_line("SYST:ERR?").unwrap(), "0,\"No error\"");
        assert_eq!(sim.setpoint.phases[1].voltage_v, 230.0);
        assert_eq!(sim.setpoint.phases[1].current_lag_deg, 60.0);
        assert_eq!(sim.handle_line("OUTP?").unwrap(), "1");
        assert!(w.lock().unwrap().source_output_is_on());
        sim.handle_line("OUTP OFF");
        assert!(!w.lock().unwrap().source_output_is_on());
        sim.handle_line("SOUR:FREQ 5000");
        assert_eq!(
            sim.handle_line("SYST:ERR?").unwrap(),
            "-222,\"Data out of range\""
        );
        assert_eq!(sim.setpoint.frequency_hz, 50.0);
    }

    #[test]
    fn chroma_selects_a_phase_then_programs_it() {
        let w = world();
        let mut sim = SimScpiInstrument::new(w, SimScpiConfig::chroma_61504());
        for line in ["INST:NSEL 3", "VOLT:AC 120", "CURR:LIM 2.5", "PHAS 120"] {
            sim.handle_line(line);
        }
        assert_eq!(sim.handle_line("SYST:ERR?").unwrap(), "0,\"No error\"");
        assert_eq!(sim.setpoint.phases[2].voltage_v, 120.0);
        assert_eq!(sim.setpoint.phases[2].current_a, 2.5);
        assert_eq!(sim.setpoint.phases[0].voltage_v, 0.0);
        sim.handle_line("INST:NSEL 4");
        assert_eq!(
            sim.handle_line("SYST:ERR?").unwrap(),
            "-222,\"Data out of range\""
        );
    }
}
