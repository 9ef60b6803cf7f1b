//! The simulated instruments: each implements a capability trait over the shared world.

use crate::world::SharedWorld;
use meterbench_instruments::{
    AcSource, ChannelConfig, Clock, CounterBatch, InstrumentError, InstrumentIdentity,
    InstrumentResult, PulseCounter, ReferenceCount, ReferenceStandard, SourceSetpoint,
};
use meterbench_procedure::station::{RoleBinding, SourceRole};
use std::time::{Duration, Instant};

fn identity(b: &RoleBinding) -> InstrumentIdentity {
    InstrumentIdentity {
        manufacturer: "meterbench simulated bench".into(),
        model: b.model.clone(),
        serial_number: b.serial_number.clone(),
        firmware: format!("sim {}", env!("CARGO_PKG_VERSION")),
    }
}

/// Simulated three-phase source; refuses setpoints beyond its ratings like a real one.
pub struct SimAcSource {
    world: SharedWorld,
    identity: InstrumentIdentity,
    max_voltage_v: f64,
    max_current_a: f64,
}

impl SimAcSource {
    pub fn new(world: SharedWorld, role: &SourceRole) -> Self {
        SimAcSource {
            world,
            identity: identity(&role.binding),
            max_voltage_v: role.max_voltage_v,
            max_current_a: role.max_current_a,
        }
    }
}

impl AcSource for SimAcSource {
    fn identity(&mut self) -> InstrumentResult<InstrumentIdentity> {
        Ok(self.identity.clone())
    }

    fn apply(&mut self, setpoint: &SourceSetpoint) -> InstrumentResult<()> {
        for p in &setpoint.phases {
            if p.voltage_v > self.max_voltage_v || p.current_a > self.max_current_a {
                return Err(InstrumentError::Refused {
                    instrument: format!("source {}", self.identity.serial_number),
                    request: format!("{} V / {} A", p.voltage_v, p.current_a),
                    reason: format!("beyond {} V / {} A", self.max_voltage_v, self.max_current_a),
                });
            }
        }
        self.world.lock().unwrap().source_apply(*setpoint);
        Ok(())
    }

    fn set_output(&mut self, on: bool) -> InstrumentResult<()> {
        self.world.lock().unwrap().source_set_output(on);
        Ok(())
    }

    fn output_is_on(&mut self) -> InstrumentResult<bool> {
        Ok(self.world.lock().unwrap().source_output_is_on())
    }
}

/// Simulated reference energy standard with a pulse output into the counter.
pub struct SimReference {
    world: SharedWorld,
    identity: InstrumentIdentity,
}

impl SimReference {
    pub fn new(world: SharedWorld, binding: &RoleBinding) -> Self {
        SimReference {
            world,
            identity: identity(binding),
        }
    }
}

impl ReferenceStandard for SimReference {
    fn identity(&mut self) -> InstrumentResult<InstrumentIdentity> {
        Ok(self.identity.clone())
    }

    fn configure_pulse_output(&mut self, imp_per_kwh: f64) -> InstrumentResult<()> {
        self.world.lock().unwrap().reference_configure(imp_per_kwh);
        Ok(())
    }
}

/// Simulated pulse counter: timestamps LED edges on its timebase and latches the
/// reference count at each.
pub struct SimPulseCounter {
    world: SharedWorld,
    /// Which of the world's counters it is.
    counter: usize,
    identity: InstrumentIdentity,
    timebase_hz: f64,
}

impl SimPulseCounter {
    /// The world's counter number `counter` (the station's order).
    pub fn new(world: SharedWorld, counter: usize, binding: &RoleBinding) -> Self {
        let timebase_hz = world.lock().unwrap().counter_timebase_hz(counter);
        SimPulseCounter {
            world,
            counter,
            identity: identity(binding),
            timebase_hz,
        }
    }
}

impl PulseCounter for SimPulseCounter {
    fn identity(&mut self) -> InstrumentResult<InstrumentIdentity> {
        Ok(self.identity.clone())
    }

    fn timebase_hz(&self) -> f64 {
        self.timebase_hz
    }

    fn arm(&mut self, channels: &[ChannelConfig]) -> InstrumentResult<()> {
        let c: Vec<(u8, f64)> = channels
            .iter()
            .map(|c| (c.channel, c.glitch_filter_s))
            .collect();
        self.world.lock().unwrap().counter_arm(self.counter, &c);
        Ok(())
    }

    fn disarm(&mut self) -> InstrumentResult<()> {
        self.world.lock().unwrap().counter_disarm(self.counter);
        Ok(())
    }

    fn drain(&mut self) -> InstrumentResult<CounterBatch> {
        let (events, now_ticks) = self.world.lock().unwrap().counter_drain(self.counter);
        Ok(CounterBatch { events, now_ticks })
    }

    fn reference_count(&mut self) -> InstrumentResult<ReferenceCount> {
        let w = self.world.lock().unwrap();
        Ok(ReferenceCount {
            now_ticks: w.counter_now_ticks(self.counter),
            ref_count: w.counter_ref_count_now(self.counter),
        })
    }
}

/// The simulated world's clock: sleeping advances the world. In real-time mode it also
/// waits on the wall clock, so the run takes as long as on a real bench.
pub struct SimClock {
    world: SharedWorld,
    realtime: Option<Instant>,
}

impl SimClock {
    pub fn new(world: SharedWorld, realtime: bool) -> Self {
        SimClock {
            world,
            realtime: realtime.then(Instant::now),
        }
    }
}

impl Clock for SimClock {
    fn now(&self) -> Duration {
        Duration::from_secs_f64(self.world.lock().unwrap().now_s())
    }

    fn rate(&self) -> Option<f64> {
        self.realtime.map(|_| 1.0)
    }

    /// Without real-time pacing a virtual sleep takes no wall time: nothing to interrupt.
    fn sleep_unless(&mut self, duration: Duration, stop: &std::sync::atomic::AtomicBool) -> bool {
        use std::sync::atomic::Ordering;
        if self.realtime.is_some() {
            let mut left = duration;
            while !left.is_zero() {
                if stop.load(Ordering::SeqCst) {
                    return false;
                }
                let step = left.min(Duration::from_millis(50));
                self.sleep(step);
                left -= step;
            }
        } else {
            self.sleep(duration);
        }
        !stop.load(Ordering::SeqCst)
    }

    fn sleep(&mut self, duration: Duration) {
        let t = {
            let mut w = self.world.lock().unwrap();
            w.advance(duration.as_secs_f64());
            w.now_s()
        };
        if let Some(start) = self.realtime {
            let target = start + Duration::from_secs_f64(t);
            let now = Instant::now();
            if target > now {
                std::thread::sleep(target - now);
            }
        }
    }
}
