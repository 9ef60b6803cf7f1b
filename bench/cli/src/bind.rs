//! Binding a station's roles to drivers. Today every role of the simulated station is
//! bound to the simulated bench; real drivers join here, behind the same traits.

use meterbench_procedure::{Driver, Fixture, SimFault, Station};
use meterbench_sim::SimBench;

/// The instruments of a bound station, owned.
pub enum BoundStation {
    Simulated(Box<SimBench>),
}

/// Bind every role. `faults` are given to the simulated DUT (sim stations only).
pub fn bind(
    station: &Station,
    fixture: &Fixture,
    realtime: bool,
    faults: &[SimFault],
) -> Result<BoundStation, String> {
    let all_sim = station.bindings().iter().all(|b| b.driver == Driver::Sim);
    let Some(spec) = &station.simulation else {
        return Err(format!(
            "station `{}` binds no drivers this build knows",
            station.id
        ));
    };
    if !all_sim {
        return Err(format!(
            "station `{}` mixes simulated and real roles; a simulated world needs every role",
            station.id
        ));
    }
    let mut spec = spec.clone();
    for f in faults {
        if !spec.dut.meters.iter().any(|m| m.port == f.port()) {
            return Err(format!(
                "--sim-fault names port `{}`, which the simulated DUT does not have",
                f.port()
            ));
        }
        spec.dut.faults.push(f.clone());
    }
    Ok(BoundStation::Simulated(Box::new(SimBench::new(
        station, &spec, fixture, realtime,
    ))))
}
