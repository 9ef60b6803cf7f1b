//! The simulated bench: one physical world on a virtual clock. The source's output
//! drives the DUT meters' energy, their LED pulses reach the counter, and the counter
//! latches the reference standard's count at each edge. The simulated devices implement
//! the same traits as real drivers; the runner cannot tell them apart.

pub mod climate_device;
pub mod counter_device;
pub mod cpim_can;
pub mod csp1_device;
mod devices;
mod meter;
pub mod scpi;
mod world;

pub use climate_device::{AmbientModel, SimClimate, hmt330_line, spawn_hmt330_device};
pub use counter_device::{CounterLinkFault, spawn_counter_device};
pub use cpim_can::{CpimRegisters, CpimSoftware, spawn_cpim_can_node};
pub use csp1_device::{Csp1SimConfig, RequestWire, WiredPty, spawn_csp1_device};
pub use devices::{SimAcSource, SimClock, SimPulseCounter, SimReference};
pub use meter::MeterModel;
pub use scpi::{SimPtyDevice, SimScpiConfig, SimScpiHandle, SimScpiInstrument, SimTcpServer};
pub use world::{SharedWorld, World};

use meterbench_procedure::Fixture;
use meterbench_procedure::station::Station;
use std::sync::{Arc, Mutex};

/// Every simulated instrument of a station, sharing one world, in process (no wire).
pub struct SimBench {
    pub world: SharedWorld,
    pub source: SimAcSource,
    pub reference: SimReference,
    /// One per counter of the station.
    pub counters: Vec<SimPulseCounter>,
    pub clock: SimClock,
    /// The room's climate sensor, when the station has one.
    pub climate: Option<SimClimate>,
}

impl SimBench {
    /// Build the simulated world of a station with devices of the fixture's kind
    /// mounted. `realtime` paces the virtual clock to the wall clock; the instruments
    /// behave the same either way.
    pub fn new(station: &Station, fixture: &Fixture, realtime: bool) -> SimBench {
        let world: SharedWorld = Arc::new(Mutex::new(World::for_station(station, fixture)));
        SimBench {
            source: SimAcSource::new(world.clone(), &station.source),
            reference: SimReference::new(world.clone(), &station.reference.binding),
            counters: station
                .counters
                .iter()
                .enumerate()
                .map(|(k, c)| SimPulseCounter::new(world.clone(), k, &c.binding))
                .collect(),
            clock: SimClock::new(world.clone(), realtime),
            climate: station.climate.as_ref().and_then(|c| {
                let model = AmbientModel::for_simulation(station.simulation.as_ref()?)?;
                Some(SimClimate::new(
                    world.clone(),
                    model,
                    meterbench_instruments::InstrumentIdentity {
                        manufacturer: "meterbench simulated bench".into(),
                        model: c.binding.model.clone(),
                        serial_number: c.binding.serial_number.clone(),
                        firmware: format!("sim {}", env!("CARGO_PKG_VERSION")),
                    },
                ))
            }),
            world,
        }
    }
}
