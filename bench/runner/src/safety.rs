//! The source is switched off on every way a run can end. A guard, not a convention:
//! dropping it (normal end, early return, panic unwinding) switches the output off.

use meterbench_instruments::{AcSource, InstrumentResult, SourceSetpoint};

pub struct SourceGuard<'a> {
    source: &'a mut dyn AcSource,
    switched_off: bool,
    /// This guard switched the output on (confirmed by the source's error queue) and
    /// has not switched it off since: a new setpoint need not ask again.
    known_on: bool,
    /// Switchings not yet taken into the record: (output on after it, confirmed, why).
    switches: Vec<(bool, bool, &'static str)>,
}

impl<'a> SourceGuard<'a> {
    pub fn new(source: &'a mut dyn AcSource) -> Self {
        SourceGuard {
            source,
            switched_off: false,
            known_on: false,
            switches: Vec::new(),
        }
    }

    /// Program a setpoint and make sure the output is on. The first time the output's
    /// state is asked; after the guard has switched it on itself, a setpoint is one
    /// command group (one round trip). An output that trips off on its own shows as a
    /// point without pulses, which ends the run as ERROR.
    pub fn energise(&mut self, setpoint: &SourceSetpoint) -> InstrumentResult<()> {
        self.source.apply(setpoint)?;
        self.switched_off = false;
        if !self.known_on {
            if !self.source.output_is_on()? {
                self.source.set_output(true)?;
                self.switches.push((true, true, "energise"));
            }
            self.known_on = true;
        }
        Ok(())
    }

    /// Put the source in a known safe state before anything else: its output off,
    /// confirmed by a query. True when it was found on (an earlier run left it
    /// energised, or someone switched it on by hand).
    pub fn make_safe(&mut self) -> InstrumentResult<bool> {
        let was_on = self.source.output_is_on()?;
        if was_on {
            self.off_because("safe start")?;
        }
        self.switched_off = true;
        self.known_on = false;
        Ok(was_on)
    }

    pub fn identity(&mut self) -> InstrumentResult<meterbench_instruments::InstrumentIdentity> {
        self.source.identity()
    }

    /// Switch off now and confirm; the error (if any) is reported to the caller.
    pub fn off(&mut self) -> InstrumentResult<()> {
        self.off_because("end of run")
    }

    /// Switch off for `why` and confirm by a read-back.
    pub fn off_because(&mut self, why: &'static str) -> InstrumentResult<()> {
        self.switched_off = true;
        self.known_on = false;
        let confirmed = self
            .source
            .set_output(false)
            .and_then(|()| self.source.output_is_on());
        self.switches
            .push((false, matches!(confirmed, Ok(false)), why));
        if confirmed? {
            self.switched_off = false;
            return Err(meterbench_instruments::InstrumentError::Device {
                instrument: "source".into(),
                request: "output off".into(),
                reply: "output still reports on".into(),
            });
        }
        Ok(())
    }

    /// The switchings since the last call: (output on after it, confirmed, why).
    pub fn take_switches(&mut self) -> Vec<(bool, bool, &'static str)> {
        std::mem::take(&mut self.switches)
    }
}

impl Drop for SourceGuard<'_> {
    fn drop(&mut self) {
        if !self.switched_off {
            // Nothing better to do with an error here than to try twice; the run
            // record already says how the run ended.
            if self.source.set_output(false).is_err() {
                let _ = self.source.set_output(false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meterbench_instruments::InstrumentIdentity;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct FakeSource(Arc<Mutex<bool>>);

    impl AcSource for FakeSource {
        fn identity(&mut self) -> InstrumentResult<InstrumentIdentity> {
            unreachable!()
        }
        fn apply(&mut self, _: &SourceSetpoint) -> InstrumentResult<()> {
            Ok(())
        }
        fn set_output(&mut self, on: bool) -> InstrumentResult<()> {
            *self.0.lock().unwrap() = on;
            Ok(())
        }
        fn output_is_on(&mut self) -> InstrumentResult<bool> {
            Ok(*self.0.lock().unwrap())
        }
    }

    #[test]
    fn panic_while_energised_leaves_the_source_off() {
        let state = FakeSource::default();
        let mut src = state.clone();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut g = SourceGuard::new(&mut src);
            g.energise(&SourceSetpoint::default()).unwrap();
            assert!(*state.0.lock().unwrap());
            panic!("a bug in a step");
        }));
        assert!(r.is_err());
        assert!(!*state.0.lock().unwrap());
    }

    #[test]
    fn a_source_found_on_is_switched_off_first_and_said_so() {
        let state = FakeSource::default();
        *state.0.lock().unwrap() = true;
        let mut src = state.clone();
        let mut g = SourceGuard::new(&mut src);
        assert!(g.make_safe().unwrap(), "found on");
        assert!(!*state.0.lock().unwrap());
        assert!(!g.make_safe().unwrap(), "off now");
    }

    #[test]
    fn early_return_leaves_the_source_off() {
        let state = FakeSource::default();
        let mut src = state.clone();
        fn step(g: &mut SourceGuard) -> Result<(), ()> {
            g.energise(&SourceSetpoint::default()).unwrap();
            Err(())
        }
        {
            let mut g = SourceGuard::new(&mut src);
            assert!(step(&mut g).is_err());
        }
        assert!(!*state.0.lock().unwrap());
    }
}
