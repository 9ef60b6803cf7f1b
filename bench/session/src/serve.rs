//! The simulated bench as instruments of their own (`meterbench sim serve`): the
//! station's simulated world in a separate process, its source and reference on TCP
//! ports, its pulse counters on pseudo-terminals, in real time. The bench then runs a
//! station file that names those ports exactly as a real station names its instruments
//! (and has no `simulation:` section), so it cannot tell them from hardware; and the
//! instruments outlive the bench, as real ones do: a bench killed with its source on
//! leaves the source on, for its guard to switch off.
//!
//! Served: the source, the reference, the counters and the climate transmitter (on a
//! pseudo-terminal, as its serial line). Not served: a meter's CAN bus and
//! a sensor's P1 cable (their request line cannot cross a pseudo-terminal); a served
//! station drops them.

use crate::bind::{SimOptions, simulated_world};
use meterbench_instruments::transport::serial::{SerialPort as _, TTYPort};
use meterbench_procedure::{DutFixture, Pos, Station};
use meterbench_sim::scpi::{SimScpiConfig, SimScpiInstrument};
use meterbench_sim::{AmbientModel, SharedWorld, spawn_counter_device, spawn_hmt330_device};
use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A simulated station being served; dropping it stops every instrument.
pub struct Served {
    /// The station file that names the served ports (write it where the bench reads it).
    pub station_text: String,
    /// Where each instrument is served, for messages: (role, port).
    pub ports: Vec<(String, String)>,
    pub world: SharedWorld,
    stop: Arc<AtomicBool>,
    _keep: Vec<Box<dyn Any + Send>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Serve `station`'s simulated world for devices of `fixture`'s kind; the served
/// station's guard waits `guard_timeout_s` for the bench's heartbeat.
pub fn serve(
    station: &Station,
    fixture: &DutFixture,
    guard_timeout_s: f64,
) -> anyhow::Result<Served> {
    let world = simulated_world(station, fixture, &SimOptions::default())?.ok_or_else(|| {
        anyhow::anyhow!(
            "station `{}` has no `simulation:` section to serve",
            station.id
        )
    })?;
    let mut keep: Vec<Box<dyn Any + Send>> = Vec::new();
    let mut ports = Vec::new();
    // (position in the file, new port text)
    let mut edits: Vec<(Pos, String)> = Vec::new();

    let scpi = |config: SimScpiConfig, serial: &str| -> anyhow::Result<_> {
        let mut config = config;
        config.identity.serial_number = serial.to_string();
        Ok(SimScpiInstrument::new(world.clone(), config).spawn_on_tcp()?)
    };
    let s = &station.source;
    let source = scpi(
        SimScpiConfig::fluke_6105a().with_ratings(s.max_voltage_v, s.max_current_a),
        &s.binding.serial_number,
    )?;
    let source_port = format!("tcp://{}", source.addr());
    edits.push((s.binding.port_pos, source_port.clone()));
    ports.push(("source".to_string(), source_port));
    keep.push(Box::new(source));
    let r = &station.reference.binding;
    let reference = scpi(SimScpiConfig::fluke_6105a(), &r.serial_number)?;
    let reference_port = format!("tcp://{}", reference.addr());
    edits.push((r.port_pos, reference_port.clone()));
    ports.push(("reference".to_string(), reference_port));
    keep.push(Box::new(reference));
    for (k, c) in station.counters.iter().enumerate() {
        let (mut master, slave) = TTYPort::pair()?;
        master.set_timeout(Duration::from_millis(50))?;
        let path = slave
            .name()
            .ok_or_else(|| anyhow::anyhow!("pseudo-terminal without a name"))?;
        let thread = spawn_counter_device(
            world.clone(),
            k,
            master,
            &c.binding.serial_number,
            8,
            Vec::new(),
        );
        edits.push((c.binding.port_pos, path.clone()));
        ports.push((format!("counter {}", c.binding.id), path));
        keep.push(Box::new((slave, thread)));
    }

    let stop = Arc::new(AtomicBool::new(false));
    if let Some(c) = station
        .climate
        .as_ref()
        .filter(|c| c.binding.port.is_some())
    {
        let model = station
            .simulation
            .as_ref()
            .and_then(AmbientModel::for_simulation)
            .ok_or_else(|| anyhow::anyhow!("the simulation has no `climate:` to serve"))?;
        let (master, slave) = TTYPort::pair()?;
        let path = slave
            .name()
            .ok_or_else(|| anyhow::anyhow!("pseudo-terminal without a name"))?;
        let thread = spawn_hmt330_device(
            world.clone(),
            master,
            model,
            meterbench_instruments::climate::Hmt330Identity {
                model: "HMT330".into(),
                serial_number: c.binding.serial_number.clone(),
                firmware: "5.16".into(),
            },
            stop.clone(),
        );
        edits.push((c.binding.port_pos, path.clone()));
        ports.push(("climate".to_string(), path));
        keep.push(Box::new((slave, thread)));
    }

    let station_text = served_station_text(station, &edits, guard_timeout_s);

    // The world in real time, as the instruments' own clocks are.
    let (w, flag) = (world.clone(), stop.clone());
    std::thread::Builder::new()
        .name("sim-realtime".into())
        .spawn(move || {
            let start = Instant::now();
            while !flag.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
                let mut world = w.lock().unwrap_or_else(|e| e.into_inner());
                let behind = start.elapsed().as_secs_f64() - world.now_s();
                if behind > 0.0 {
                    world.advance(behind);
                }
            }
        })?;
    Ok(Served {
        station_text,
        ports,
        world,
        stop,
        _keep: keep,
    })
}

/// The station file with each served port written in, the simulation section, the
/// positions' CAN and P1 lines dropped, and the guard's timeout declared.
fn served_station_text(station: &Station, edits: &[(Pos, String)], guard_timeout_s: f64) -> String {
    let mut lines: Vec<String> = station.file.text.lines().map(String::from).collect();
    for (pos, port) in edits {
        let line = &mut lines[pos.line as usize - 1];
        let start = pos.column as usize - 1;
        let end = line[start..]
            .find([',', ' ', '}', '#'])
            .map_or(line.len(), |e| start + e);
        line.replace_range(start..end, port);
    }
    let mut out = String::from(
        "# Written by `meterbench sim serve`: the simulated instruments on real ports.\n",
    );
    let mut skipping = false;
    for line in &lines {
        let top_level = line.starts_with(|c: char| c.is_ascii_alphabetic());
        if top_level {
            skipping = line.starts_with("simulation:");
        }
        let t = line.trim_start();
        if skipping || t.starts_with("can:") || t.starts_with("p1:") {
            continue;
        }
        out += line;
        out.push('\n');
        if line.starts_with("safety:") {
            out += &format!("  guard_timeout_s: {guard_timeout_s}\n");
        }
    }
    out
}
