//! Binding a station's roles to drivers. A role is either the in-process simulated
//! device (`driver: sim`) or a real driver on a port; a `sim+pty` / `sim+tcp` port puts
//! the simulated world's device on the far end of a pseudo-terminal or a loopback socket,
//! so the real driver's bytes and serial settings are exercised. Drivers never know.
//! Each position of the rack brings its own interfaces: the device's CAN bus, a current
//! sensor's P1 cable.

use crate::dut_can::CanDutSoftware;
use anyhow::Context as _;
use meterbench_instruments::climate::{Hmt330Identity, VaisalaHmt, hmt330_serial_settings};
use meterbench_instruments::counter::ProtocolCounter;
use meterbench_instruments::p1::{P1CurrentSensor, P1Settings, RequestLine, p1_serial_settings};
use meterbench_instruments::source::ScpiAcSource;
use meterbench_instruments::transport::serial::{SerialPort as _, TTYPort};
use meterbench_instruments::transport::{SerialSettings, SerialTransport, TcpTransport, Transport};
use meterbench_instruments::{
    AcSource, ClimateSensor, Clock, CurrentSensor, DutSoftware, InstrumentIdentity, PulseCounter,
    ReferenceStandard, SystemClock,
};
use meterbench_procedure::{
    ClimateRole, Driver, DutFixture, DutP1Spec, P1Request, PortSpec, RackPosition, RoleBinding,
    SimFault, Station,
};
use meterbench_sim::scpi::{SimScpiConfig, SimScpiInstrument};
use meterbench_sim::{
    AmbientModel, CounterLinkFault, CpimRegisters, CpimSoftware, Csp1SimConfig, RequestWire,
    SharedWorld, SimAcSource, SimClimate, SimClock, SimPulseCounter, SimReference, WiredPty, World,
    spawn_counter_device, spawn_cpim_can_node, spawn_csp1_device, spawn_hmt330_device,
};
use std::any::Any;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Reply timeout of SCPI instruments and the counters.
const TIMEOUT: Duration = Duration::from_secs(2);

/// What the simulated world gets besides the station file.
#[derive(Debug, Default, Clone)]
pub struct SimOptions {
    /// Pace the virtual clock to the wall clock.
    pub realtime: bool,
    /// Faults of the simulated devices, each at its position.
    pub dut_faults: Vec<(u32, SimFault)>,
    /// Faults of a simulated counter's link: (counter index, fault).
    pub counter_link_faults: Vec<(usize, CounterLinkFault)>,
}

/// A position's own interfaces.
pub struct BoundPosition {
    pub position: u32,
    /// The device's software identity interface (the position's `can:`), if any.
    pub software: Option<Box<dyn DutSoftware>>,
    /// A current sensor's readings (the position's `p1:`), if any.
    pub sensor: Option<Box<dyn CurrentSensor>>,
}

/// The instruments of a bound station.
pub struct BoundStation {
    pub source: Box<dyn AcSource>,
    pub reference: Box<dyn ReferenceStandard>,
    /// One per counter of the station, in its order.
    pub counters: Vec<Box<dyn PulseCounter>>,
    pub clock: Box<dyn Clock>,
    /// The positions measured, in the order asked.
    pub positions: Vec<BoundPosition>,
    /// The air temperature and humidity sensor, when the procedure measures the air.
    pub climate: Option<Box<dyn ClimateSensor>>,
    /// The simulated world, when the station has one (tests look at it afterwards).
    pub world: Option<SharedWorld>,
    /// Simulated far ends; dropping them closes their links.
    pub far_ends: Vec<Box<dyn Any + Send>>,
}

impl BoundStation {
    /// Whether the simulated source's output is on (`None` on a real station).
    pub fn simulated_output_is_on(&self) -> Option<bool> {
        self.world
            .as_ref()
            .map(|w| w.lock().unwrap().source_output_is_on())
    }
}

/// `binding`'s port, for messages: where the station file declares it, so that a wrong
/// port is fixed where it is written: `the source of station `sim-1` (port /dev/ttyX at
/// hw/stations/sim.yaml:31:11)`.
fn where_bound(station: &Station, b: &RoleBinding) -> String {
    let port = b
        .port
        .as_ref()
        .map_or("none".to_string(), |p| p.to_string());
    format!(
        "the {} of station `{}` (port {port} at {})",
        b.label(),
        station.id,
        at(station, b.port_pos)
    )
}

/// `file:line:column` in the station file.
fn at(station: &Station, pos: meterbench_procedure::Pos) -> String {
    format!(
        "{}:{}:{}",
        station.file.path.display(),
        pos.line,
        pos.column
    )
}

fn open_transport(b: &RoleBinding, port: &PortSpec) -> anyhow::Result<Box<dyn Transport>> {
    Ok(match port {
        PortSpec::Serial(path) => Box::new(SerialTransport::open(&SerialSettings::new(
            path.clone(),
            b.baud,
        ))?),
        PortSpec::Tcp(addr) => Box::new(TcpTransport::connect(addr, TIMEOUT)?),
        PortSpec::SimPty | PortSpec::SimTcp => {
            unreachable!("simulated ports are opened by the binder")
        }
    })
}

/// The station's source on its real port, opened as the bench opens it: the guard's
/// way to switch it off when the bench is gone.
pub fn open_source(station: &Station) -> anyhow::Result<Box<dyn AcSource>> {
    let b = &station.source.binding;
    let port = match &b.port {
        Some(p @ (PortSpec::Serial(_) | PortSpec::Tcp(_))) => p,
        _ => anyhow::bail!("{} is not on a real port", where_bound(station, b)),
    };
    let t =
        open_transport(b, port).with_context(|| format!("opening {}", where_bound(station, b)))?;
    Ok(Box::new(ScpiAcSource::connect(t, TIMEOUT).with_context(
        || format!("identifying {}", where_bound(station, b)),
    )?))
}

/// Bind every role of the station and the interfaces of the `positions` to be measured
/// with devices of `fixture`'s kind; each position's CAN bus only when `can` (the
/// procedure reads something over it), the climate sensor only when `air` (the procedure
/// declares reference conditions).
pub fn bind(
    station: &Station,
    fixture: &DutFixture,
    positions: &[u32],
    can: bool,
    air: bool,
    sim: &SimOptions,
) -> anyhow::Result<BoundStation> {
    let world = simulated_world(station, fixture, sim)?;
    let sim_world = || {
        world
            .clone()
            .ok_or_else(|| anyhow::anyhow!("station `{}` has no simulated world", station.id))
    };
    let mut far_ends: Vec<Box<dyn Any + Send>> = Vec::new();

    // A transport to a role's instrument: a real port, or the simulated device put on a
    // pseudo-terminal / loopback socket.
    let scpi_transport = |b: &RoleBinding,
                          mut config: SimScpiConfig,
                          far_ends: &mut Vec<Box<dyn Any + Send>>|
     -> anyhow::Result<Box<dyn Transport>> {
        // The simulated instrument answers *IDN? with the serial number the station declares.
        config.identity.serial_number = b.serial_number.clone();
        let port = b.port.as_ref().expect("validated: scpi has a port");
        match port {
            PortSpec::SimPty => {
                let device = SimScpiInstrument::new(sim_world()?, config).spawn_on_pty_device()?;
                let settings = SerialSettings::new(device.path().to_string(), b.baud);
                let t = SerialTransport::open(&settings)?;
                far_ends.push(Box::new(device));
                Ok(Box::new(t))
            }
            PortSpec::SimTcp => {
                let server = SimScpiInstrument::new(sim_world()?, config).spawn_on_tcp()?;
                let t = TcpTransport::connect(&server.addr().to_string(), TIMEOUT)?;
                far_ends.push(Box::new(server));
                Ok(Box::new(t))
            }
            real => open_transport(b, real),
        }
    };

    let reference: Box<dyn ReferenceStandard> = match station.reference.binding.driver {
        Driver::Sim => Box::new(SimReference::new(sim_world()?, &station.reference.binding)),
        _ => {
            let b = &station.reference.binding;
            let t = scpi_transport(b, SimScpiConfig::fluke_6105a(), &mut far_ends)
                .with_context(|| format!("opening {}", where_bound(station, b)))?;
            Box::new(
                ScpiAcSource::connect(t, TIMEOUT)
                    .with_context(|| format!("identifying {}", where_bound(station, b)))?,
            )
        }
    };
    let mut counters: Vec<Box<dyn PulseCounter>> = Vec::new();
    for (k, c) in station.counters.iter().enumerate() {
        let b = &c.binding;
        let counter: Box<dyn PulseCounter> = match b.driver {
            Driver::Sim => Box::new(SimPulseCounter::new(sim_world()?, k, b)),
            _ => {
                let port = b.port.as_ref().expect("validated: the counter has a port");
                let transport: Box<dyn Transport> = match port {
                    PortSpec::SimPty => {
                        let (master, slave) = TTYPort::pair()?;
                        let path = slave
                            .name()
                            .ok_or_else(|| anyhow::anyhow!("pseudo-terminal without a name"))?;
                        let mut master = master;
                        master.set_timeout(Duration::from_millis(50))?;
                        let faults = sim
                            .counter_link_faults
                            .iter()
                            .filter(|(c, _)| *c == k)
                            .map(|(_, f)| *f)
                            .collect();
                        let thread = spawn_counter_device(
                            sim_world()?,
                            k,
                            master,
                            &b.serial_number,
                            8,
                            faults,
                        );
                        let t = SerialTransport::open(&SerialSettings::new(path, b.baud))?;
                        far_ends.push(Box::new((slave, thread)));
                        Box::new(t)
                    }
                    PortSpec::SimTcp => {
                        anyhow::bail!(
                            "{}: a counter is a USB device: use sim+pty, not sim+tcp",
                            where_bound(station, b)
                        )
                    }
                    real => open_transport(b, real)
                        .with_context(|| format!("opening {}", where_bound(station, b)))?,
                };
                Box::new(
                    ProtocolCounter::open(transport, TIMEOUT)
                        .with_context(|| format!("identifying {}", where_bound(station, b)))?,
                )
            }
        };
        counters.push(counter);
    }
    let mut bound_positions = Vec::new();
    for &id in positions {
        let p = station
            .rack
            .position(id)
            .ok_or_else(|| anyhow::anyhow!("station `{}` has no position {id}", station.id))?;
        bound_positions.push(bind_position(
            station,
            fixture,
            p,
            can,
            world.as_ref(),
            &mut far_ends,
        )?);
    }
    let climate = match (&station.climate, air) {
        (Some(role), true) => Some(
            bind_climate(station, role, world.as_ref(), &mut far_ends)
                .with_context(|| format!("opening {}", where_bound(station, &role.binding)))?,
        ),
        _ => None,
    };
    // The source last: when anything else cannot be bound, it was never touched (an
    // earlier run may have left it energised; the run that follows makes it safe first).
    let source: Box<dyn AcSource> = match station.source.binding.driver {
        Driver::Sim => Box::new(SimAcSource::new(sim_world()?, &station.source)),
        _ => {
            let config = SimScpiConfig::fluke_6105a()
                .with_ratings(station.source.max_voltage_v, station.source.max_current_a);
            let b = &station.source.binding;
            let t = scpi_transport(b, config, &mut far_ends)
                .with_context(|| format!("opening {}", where_bound(station, b)))?;
            Box::new(
                ScpiAcSource::connect(t, TIMEOUT)
                    .with_context(|| format!("identifying {}", where_bound(station, b)))?,
            )
        }
    };
    let clock: Box<dyn Clock> = match &world {
        Some(w) => Box::new(SimClock::new(w.clone(), sim.realtime)),
        None => Box::new(SystemClock::new()),
    };
    Ok(BoundStation {
        source,
        reference,
        counters,
        clock,
        positions: bound_positions,
        climate,
        world,
        far_ends,
    })
}

/// The climate sensor: the simulated room's (in process, or an HMT330 on the far end of a
/// pseudo-terminal) or a real transmitter on its serial line.
fn bind_climate(
    station: &Station,
    role: &ClimateRole,
    world: Option<&SharedWorld>,
    far_ends: &mut Vec<Box<dyn Any + Send>>,
) -> anyhow::Result<Box<dyn ClimateSensor>> {
    let b = &role.binding;
    // The simulated room, when the sensor's far end is the simulated world.
    let room = || -> anyhow::Result<(SharedWorld, AmbientModel)> {
        let model = station
            .simulation
            .as_ref()
            .and_then(AmbientModel::for_simulation)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the station's simulation has no `climate:` for its simulated sensor"
                )
            })?;
        let world = world
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("station `{}` has no simulated world", station.id))?;
        Ok((world, model))
    };
    match (b.driver, &b.port) {
        (Driver::Sim, _) => {
            let (world, model) = room()?;
            Ok(Box::new(SimClimate::new(
                world,
                model,
                InstrumentIdentity {
                    manufacturer: "meterbench simulated bench".into(),
                    model: b.model.clone(),
                    serial_number: b.serial_number.clone(),
                    firmware: format!("sim {}", env!("CARGO_PKG_VERSION")),
                },
            )))
        }
        (_, Some(PortSpec::SimPty)) => {
            let (world, model) = room()?;
            let (master, slave) = TTYPort::pair()?;
            let path = slave
                .name()
                .ok_or_else(|| anyhow::anyhow!("pseudo-terminal without a name"))?;
            let stop = StopOnDrop::default();
            let device = spawn_hmt330_device(
                world,
                master,
                model,
                Hmt330Identity {
                    model: "HMT330".into(),
                    serial_number: b.serial_number.clone(),
                    firmware: "5.16".into(),
                },
                stop.0.clone(),
            );
            let t = SerialTransport::open(&hmt330_serial_settings(path, b.baud))?;
            far_ends.push(Box::new((stop, slave, device)));
            Ok(Box::new(VaisalaHmt::open(t, TIMEOUT)))
        }
        (_, Some(PortSpec::SimTcp)) => {
            anyhow::bail!("a transmitter on a serial line: use sim+pty, not sim+tcp")
        }
        (_, Some(PortSpec::Serial(path))) => {
            let t = SerialTransport::open(&hmt330_serial_settings(path.clone(), b.baud))?;
            Ok(Box::new(VaisalaHmt::open(t, TIMEOUT)))
        }
        // A serial device server (a Moxa NPort or the like) that passes the line through.
        (_, Some(port @ PortSpec::Tcp(_))) => Ok(Box::new(VaisalaHmt::open(
            open_transport(b, port)?,
            TIMEOUT,
        ))),
        (_, None) => anyhow::bail!("the climate sensor has no port"),
    }
}

/// The station's simulated world with the devices of `fixture`'s kind mounted (and the
/// given faults), or none for a real station.
pub(crate) fn simulated_world(
    station: &Station,
    fixture: &DutFixture,
    sim: &SimOptions,
) -> anyhow::Result<Option<SharedWorld>> {
    let Some(spec) = &station.simulation else {
        if !sim.dut_faults.is_empty() || !sim.counter_link_faults.is_empty() {
            anyhow::bail!("simulated faults need a station with a simulated world");
        }
        return Ok(None);
    };
    let mut spec = spec.clone();
    for (position, f) in &sim.dut_faults {
        let Some(dut) = spec
            .positions
            .iter_mut()
            .find(|p| p.position == *position)
            .and_then(|p| p.cpim1000.as_mut())
        else {
            anyhow::bail!("the fault names position {position}, where no simulated meter sits");
        };
        if !dut.meters.iter().any(|m| m.port == f.port()) {
            anyhow::bail!(
                "the fault names port `{}`, which the simulated meter at position {position} does not have",
                f.port()
            );
        }
        dut.faults.push(f.clone());
    }
    let world = match fixture {
        DutFixture::Meter(f) => World::for_station(
            &Station {
                simulation: Some(spec),
                ..station.clone()
            },
            f,
        ),
        // A current sensor's bench has no scanning head over any LED.
        DutFixture::CurrentSensor(_) => World::with_heads(&spec, |_, _| None),
    };
    Ok(Some(Arc::new(Mutex::new(world))))
}

/// Sets its flag when dropped: stops a simulated far end with the station.
#[derive(Default)]
struct StopOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A position's interfaces for a device of `fixture`'s kind: a meter's CAN bus, a
/// sensor's P1 port.
fn bind_position(
    station: &Station,
    fixture: &DutFixture,
    p: &RackPosition,
    can: bool,
    world: Option<&SharedWorld>,
    far_ends: &mut Vec<Box<dyn Any + Send>>,
) -> anyhow::Result<BoundPosition> {
    let mut bound = BoundPosition {
        position: p.id,
        software: None,
        sensor: None,
    };
    match fixture {
        DutFixture::Meter(fixture) => {
            bound.software = match &p.can {
                None => None,
                Some(_) if !can => None,
                Some(PortSpec::SimPty) => {
                    let sw = station
                        .simulation
                        .as_ref()
                        .and_then(|s| s.cpim1000(p.id))
                        .and_then(|d| d.software.clone())
                        .ok_or_else(|| {
                            anyhow::anyhow!(
                                "station `{}`: position {}'s can is sim+pty but no simulated meter with `software:` sits there",
                                station.id,
                                p.id
                            )
                        })?;
                    let profile = fixture.can.as_ref().ok_or_else(|| {
                        anyhow::anyhow!("fixture `{}` declares no `can:` profile", fixture.id)
                    })?;
                    let (mut master, slave) = TTYPort::pair()?;
                    master.set_timeout(Duration::from_millis(10))?;
                    let path = slave
                        .name()
                        .ok_or_else(|| anyhow::anyhow!("pseudo-terminal without a name"))?;
                    let stop = StopOnDrop::default();
                    let node = spawn_cpim_can_node(
                        master,
                        profile,
                        CpimSoftware {
                            software_version: sw.software_version,
                            software_hash: sw.software_hash,
                            lrs_hash: sw.lrs_hash,
                            silent: sw.can_silent,
                        },
                        fixture.register.as_ref().map(|r| CpimRegisters {
                            world: world.cloned().expect("a simulated meter has a world"),
                            position: p.id,
                            decimals: r.decimals,
                        }),
                        stop.0.clone(),
                    );
                    let host = serialport::new(&path, 115_200)
                        .timeout(Duration::from_millis(10))
                        .open_native()?;
                    let d = CanDutSoftware::open(host, &path, fixture, TIMEOUT)?;
                    far_ends.push(Box::new((stop, slave, node)));
                    Some(Box::new(d) as Box<dyn DutSoftware>)
                }
                Some(PortSpec::Serial(path)) => {
                    let host = serialport::new(path, 115_200)
                        .timeout(Duration::from_millis(10))
                        .open_native()
                        .map_err(|e| {
                            anyhow::anyhow!(
                                "opening position {}'s can (port {path} at {}): {e}",
                                p.id,
                                at(station, p.can_pos)
                            )
                        })?;
                    Some(Box::new(CanDutSoftware::open(
                        host, path, fixture, TIMEOUT,
                    )?))
                }
                Some(other) => anyhow::bail!("can port {other} is not an SLCAN adapter's"),
            };
        }
        DutFixture::CurrentSensor(_) => {
            bound.sensor = match &p.p1 {
                None => None,
                Some(spec) => Some(open_p1(station, p.id, spec, world, far_ends)?),
            };
        }
    }
    Ok(bound)
}

/// Open a position's P1 port to the current sensor under test and raise its request
/// line. A `sim+pty` port puts the simulated CSP1 of that position on the far end of a
/// pseudo-terminal, its request pin wired to the cable's RTS/DTR.
fn open_p1(
    station: &Station,
    position: u32,
    spec: &DutP1Spec,
    world: Option<&SharedWorld>,
    far_ends: &mut Vec<Box<dyn Any + Send>>,
) -> anyhow::Result<Box<dyn CurrentSensor>> {
    let settings = P1Settings {
        request_line: match spec.request {
            P1Request::Rts => RequestLine::Rts,
            P1Request::Dtr => RequestLine::Dtr,
            P1Request::None => RequestLine::None,
        },
        inverted: spec.inverted,
        ..P1Settings::default()
    };
    match &spec.port {
        PortSpec::SimPty => {
            let world = world.cloned().ok_or_else(|| {
                anyhow::anyhow!(
                    "station `{}`: position {position}'s p1 is sim+pty but there is no simulated world",
                    station.id
                )
            })?;
            let simulation = station.simulation.as_ref();
            let sim = simulation
                .and_then(|s| s.csp1(position))
                .cloned()
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "station `{}`: position {position}'s p1 is sim+pty but no simulated csp1 sits there",
                        station.id
                    )
                })?;
            let (master, slave) = TTYPort::pair()?;
            let path = slave
                .name()
                .ok_or_else(|| anyhow::anyhow!("pseudo-terminal without a name"))?;
            let wire = RequestWire::default();
            let stop = StopOnDrop::default();
            let device = spawn_csp1_device(
                world,
                master,
                Csp1SimConfig::for_position(&sim, simulation.map_or(0, |s| s.seed), position),
                wire.clone(),
                stop.0.clone(),
            );
            let serial = SerialTransport::open(&p1_serial_settings(path, false))?;
            let sensor = P1CurrentSensor::open(
                WiredPty {
                    serial,
                    request: wire,
                },
                settings,
            )?;
            // Dropped after the sensor (far ends go last): the device stops, then the PTY.
            far_ends.push(Box::new((stop, slave, device)));
            Ok(Box::new(sensor))
        }
        PortSpec::Serial(path) => {
            let serial = SerialTransport::open(&p1_serial_settings(path.clone(), false))
                .with_context(|| {
                    format!(
                        "opening position {position}'s p1 (port {path} at {})",
                        at(station, spec.port_pos)
                    )
                })?;
            Ok(Box::new(P1CurrentSensor::open(serial, settings)?))
        }
        other => anyhow::bail!("p1 port {other} is not a P1 cable's"),
    }
}
