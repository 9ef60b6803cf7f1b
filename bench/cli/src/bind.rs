//! Binding a station's roles to drivers. A role is either the in-process simulated
//! device (`driver: sim`) or a real driver on a port; a `sim+pty` / `sim+tcp` port puts
//! the simulated world's device on the far end of a pseudo-terminal or a loopback socket,
//! so the real driver's bytes and serial settings are exercised. Drivers never know.

use crate::dut_can::CanDutSoftware;
use meterbench_instruments::counter::ProtocolCounter;
use meterbench_instruments::p1::{P1CurrentSensor, P1Settings, RequestLine, p1_serial_settings};
use meterbench_instruments::source::ScpiAcSource;
use meterbench_instruments::transport::serial::{SerialPort as _, TTYPort};
use meterbench_instruments::transport::{SerialSettings, SerialTransport, TcpTransport, Transport};
use meterbench_instruments::{
    AcSource, Clock, CurrentSensor, DutSoftware, PulseCounter, ReferenceStandard, SystemClock,
};
use meterbench_p1::Csp1Params;
use meterbench_procedure::{Driver, Fixture, P1Request, PortSpec, RoleBinding, SimFault, Station};
use meterbench_sim::scpi::{SimScpiConfig, SimScpiInstrument};
use meterbench_sim::{
    CounterLinkFault, CpimRegisters, CpimSoftware, Csp1SimConfig, RequestWire, SharedWorld,
    SimAcSource, SimClock, SimPulseCounter, SimReference, WiredPty, World, spawn_counter_device,
    spawn_cpim_can_node, spawn_csp1_device,
};
use std::any::Any;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Reply timeout of SCPI instruments and the counter.
const TIMEOUT: Duration = Duration::from_secs(2);

/// What the simulated world gets besides the station file.
#[derive(Debug, Default, Clone)]
pub struct SimOptions {
    /// Pace the virtual clock to the wall clock.
    pub realtime: bool,
    /// Faults of the simulated DUT.
    pub dut_faults: Vec<SimFault>,
    /// Faults of the simulated counter's link.
    pub counter_link_faults: Vec<CounterLinkFault>,
}

/// The instruments of a bound station.
pub struct BoundStation {
    pub source: Box<dyn AcSource>,
    pub reference: Box<dyn ReferenceStandard>,
    pub counter: Box<dyn PulseCounter>,
    pub clock: Box<dyn Clock>,
    /// The DUT's software identity interface (the station's `dut_can`), if any.
    pub dut_software: Option<Box<dyn DutSoftware>>,
    /// The simulated world, when the station has one (tests look at it afterwards).
    pub world: Option<SharedWorld>,
    /// Simulated far ends; dropping them closes their links.
    pub far_ends: Vec<Box<dyn Any + Send>>,
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

/// Bind every role of the station for a DUT of `fixture` (`None`: a current sensor, not
/// a meter: no scanning heads, no CAN).
pub fn bind(
    station: &Station,
    fixture: Option<&Fixture>,
    sim: &SimOptions,
) -> anyhow::Result<BoundStation> {
    let world: Option<SharedWorld> = match &station.simulation {
        Some(spec) => {
            let mut spec = spec.clone();
            for f in &sim.dut_faults {
                if !spec.dut.meters.iter().any(|m| m.port == f.port()) {
                    anyhow::bail!(
                        "--sim-fault names port `{}`, which the simulated DUT does not have",
                        f.port()
                    );
                }
                spec.dut.faults.push(f.clone());
            }
            Some(Arc::new(Mutex::new(World::with_heads(&spec, |port| {
                fixture
                    .and_then(|f| f.port(port))
                    .map(|p| p.counter_channel)
            }))))
        }
        None => {
            if !sim.dut_faults.is_empty() || !sim.counter_link_faults.is_empty() {
                anyhow::bail!("simulated faults need a station with a simulated world");
            }
            None
        }
    };
    let sim_world = || {
        world
            .clone()
            .ok_or_else(|| anyhow::anyhow!("station `{}` has no simulated world", station.id))
    };
    let mut far_ends: Vec<Box<dyn Any + Send>> = Vec::new();

    // A transport to a role's instrument: a real port, or the simulated device put on a
    // pseudo-terminal / loopback socket by `serve`.
    let mut scpi_transport = |b: &RoleBinding,
                              mut config: SimScpiConfig|
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

    let source: Box<dyn AcSource> = match station.source.binding.driver {
        Driver::Sim => Box::new(SimAcSource::new(sim_world()?, &station.source)),
        _ => {
            let config = SimScpiConfig::fluke_6105a()
                .with_ratings(station.source.max_voltage_v, station.source.max_current_a);
            let t = scpi_transport(&station.source.binding, config)?;
            Box::new(ScpiAcSource::connect(t, TIMEOUT)?)
        }
    };
    let reference: Box<dyn ReferenceStandard> = match station.reference.binding.driver {
        Driver::Sim => Box::new(SimReference::new(sim_world()?, &station.reference.binding)),
        _ => {
            let t = scpi_transport(&station.reference.binding, SimScpiConfig::fluke_6105a())?;
            Box::new(ScpiAcSource::connect(t, TIMEOUT)?)
        }
    };
    let counter_binding = &station.counter.binding;
    let counter: Box<dyn PulseCounter> = match counter_binding.driver {
        Driver::Sim => {
            let w = sim_world()?;
            let tb = station
                .simulation
                .as_ref()
                .map_or(125e6, |s| s.counter_timebase_hz);
            Box::new(SimPulseCounter::new(w, counter_binding, tb))
        }
        _ => {
            let port = counter_binding
                .port
                .as_ref()
                .expect("validated: the counter has a port");
            let transport: Box<dyn Transport> = match port {
                PortSpec::SimPty => {
                    let (master, slave) = TTYPort::pair()?;
                    let path = slave
                        .name()
                        .ok_or_else(|| anyhow::anyhow!("pseudo-terminal without a name"))?;
                    let mut master = master;
                    master.set_timeout(Duration::from_millis(50))?;
                    let thread = spawn_counter_device(
                        sim_world()?,
                        master,
                        &counter_binding.serial_number,
                        8,
                        sim.counter_link_faults.clone(),
                    );
                    let t =
                        SerialTransport::open(&SerialSettings::new(path, counter_binding.baud))?;
                    far_ends.push(Box::new((slave, thread)));
                    Box::new(t)
                }
                PortSpec::SimTcp => {
                    anyhow::bail!("the counter is a USB device: use sim+pty, not sim+tcp")
                }
                real => open_transport(counter_binding, real)?,
            };
            Box::new(ProtocolCounter::open(transport, TIMEOUT)?)
        }
    };
    let dut_software: Option<Box<dyn DutSoftware>> = match (&station.dut_can, fixture) {
        (None, _) | (_, None) => None,
        (Some(port), Some(fixture)) => match port {
            PortSpec::SimPty => {
                let sw = station
                .simulation
                .as_ref()
                .and_then(|s| s.dut.software.clone())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "station `{}`: dut_can is sim+pty but the simulated DUT has no `software:`",
                        station.id
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
                        world: world.clone().expect("a simulated DUT has a world"),
                        decimals: r.decimals,
                    }),
                    stop.0.clone(),
                );
                let host = serialport::new(&path, 115_200)
                    .timeout(Duration::from_millis(10))
                    .open_native()?;
                let d = CanDutSoftware::open(host, &path, fixture, TIMEOUT)?;
                far_ends.push(Box::new((stop, slave, node)));
                Some(Box::new(d))
            }
            PortSpec::Serial(path) => {
                let host = serialport::new(path, 115_200)
                    .timeout(Duration::from_millis(10))
                    .open_native()
                    .map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
                Some(Box::new(CanDutSoftware::open(
                    host, path, fixture, TIMEOUT,
                )?))
            }
            other => anyhow::bail!("dut_can port {other} is not an SLCAN adapter's"),
        },
    };
    let clock: Box<dyn Clock> = match &world {
        Some(w) => Box::new(SimClock::new(w.clone(), sim.realtime)),
        None => Box::new(SystemClock::new()),
    };
    Ok(BoundStation {
        source,
        reference,
        counter,
        clock,
        dut_software,
        world,
        far_ends,
    })
}

/// Sets its flag when dropped: stops a simulated far end with the station.
#[derive(Default)]
struct StopOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Open the station's P1 port to the current sensor under test (`dut_p1`) and raise its
/// request line. A `sim+pty` port puts the simulated CSP1 of the station's simulation on
/// the far end of a pseudo-terminal, its request pin wired to the cable's RTS/DTR.
pub fn bind_current_sensor(
    station: &Station,
    bound: &mut BoundStation,
) -> anyhow::Result<Box<dyn CurrentSensor>> {
    let spec = station.dut_p1.as_ref().ok_or_else(|| {
        anyhow::anyhow!(
            "station `{}` has no `dut_p1:` port for a current sensor",
            station.id
        )
    })?;
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
            let world = bound.world.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "station `{}`: dut_p1 is sim+pty but there is no simulated world",
                    station.id
                )
            })?;
            let sim = station
                .simulation
                .as_ref()
                .and_then(|s| s.csp1.clone())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "station `{}`: dut_p1 is sim+pty but the simulation has no `csp1:`",
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
                Csp1SimConfig {
                    identity: Csp1Params {
                        equipment_id: sim.serial_number.clone(),
                        firmware: sim.firmware.clone(),
                        ..Csp1Params::default()
                    },
                    gain_percent: sim.gain_percent,
                    offset_a: sim.offset_a,
                },
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
            bound.far_ends.push(Box::new((stop, slave, device)));
            Ok(Box::new(sensor))
        }
        PortSpec::Serial(path) => {
            let serial = SerialTransport::open(&p1_serial_settings(path.clone(), false))?;
            Ok(Box::new(P1CurrentSensor::open(serial, settings)?))
        }
        other => anyhow::bail!("dut_p1 port {other} is not a P1 cable's"),
    }
}
