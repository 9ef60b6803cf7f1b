//! AC reference sources and power standards over SCPI: one driver, per-model command
//! profiles selected by the `*IDN?` answer.

pub mod profile;

pub use profile::{
    CHROMA_61500, Capability, CommandProfile, CommandTemplate, CommsWatchdog,
    CurrentAngleReference, FLUKE_6100B_6105A, PROFILES, Provenance, known_models, profile_for,
};

use crate::scpi::ScpiSession;
use crate::transport::Transport;
use crate::{
    AcSource, InstrumentError, InstrumentIdentity, InstrumentResult, ReferenceStandard,
    SourceSetpoint,
};
use profile::render;
use std::time::Duration;

/// A source or power standard driven through its model's [`CommandProfile`].
///
/// Every command group (setup, frequency, each phase, output, pulse output) is followed by
/// `SYST:ERR?`; a queued error fails the call with [`InstrumentError::Device`] naming the
/// commands and the instrument's error text.
#[derive(Debug)]
pub struct ScpiAcSource<T: Transport> {
    session: ScpiSession<T>,
    profile: &'static CommandProfile,
    identity: InstrumentIdentity,
}

impl<T: Transport> ScpiAcSource<T> {
    /// Identify the instrument, pick its profile and run the profile's setup commands.
    /// `timeout` bounds every reply.
    pub fn connect(transport: T, timeout: Duration) -> InstrumentResult<Self> {
        let mut session = ScpiSession::new(transport, timeout);
        let identity = session.identify()?;
        let profile = profile_for(&identity).ok_or_else(|| InstrumentError::Refused {
            instrument: session.instrument_name().to_string(),
            request: "*IDN?".into(),
            reason: format!(
                "`{}` model `{}` has no command profile; known models: {}",
                identity.manufacturer,
                identity.model,
                known_models()
            ),
        })?;
        ScpiAcSource::with_profile(session, profile, identity)
    }

    /// Drive an already identified instrument with a given profile (runs its setup).
    pub fn with_profile(
        mut session: ScpiSession<T>,
        profile: &'static CommandProfile,
        identity: InstrumentIdentity,
    ) -> InstrumentResult<Self> {
        session.set_instrument_name(format!(
            "{} {} SN {} ({})",
            identity.manufacturer,
            identity.model,
            identity.serial_number,
            session.transport().describe()
        ));
        session.set_error_query(profile.error_query.template);
        let mut source = ScpiAcSource {
            session,
            profile,
            identity,
        };
        source.group(profile.setup, &[])?;
        Ok(source)
    }

    pub fn profile(&self) -> &'static CommandProfile {
        self.profile
    }

    /// The `*IDN?` answer read at connection.
    pub fn instrument_identity(&self) -> &InstrumentIdentity {
        &self.identity
    }

    pub fn session_mut(&mut self) -> &mut ScpiSession<T> {
        &mut self.session
    }

    pub fn transport(&self) -> &T {
        self.session.transport()
    }

    pub fn into_transport(self) -> T {
        self.session.into_transport()
    }

    fn group(
        &mut self,
        templates: &[CommandTemplate],
        values: &[(&str, f64)],
    ) -> InstrumentResult<()> {
        if templates.is_empty() {
            return Ok(());
        }
        let commands: Vec<String> = templates
            .iter()
            .map(|t| render(t.template, values))
            .collect();
        self.session.command_group(&commands)
    }

    fn refuse(&self, request: String, reason: String) -> InstrumentError {
        InstrumentError::Refused {
            instrument: self.session.instrument_name().to_string(),
            request,
            reason,
        }
    }

    fn validate(&self, s: &SourceSetpoint) -> InstrumentResult<()> {
        if !(s.frequency_hz.is_finite() && s.frequency_hz > 0.0) {
            return Err(self.refuse(
                format!("frequency {} Hz", s.frequency_hz),
                "the frequency must be a positive number".into(),
            ));
        }
        for (k, p) in s.phases.iter().enumerate() {
            let ok = |x: f64| x.is_finite() && x >= 0.0;
            if !ok(p.voltage_v) || !ok(p.current_a) || !p.current_lag_deg.is_finite() {
                return Err(self.refuse(
                    format!(
                        "L{} {} V / {} A / {}°",
                        k + 1,
                        p.voltage_v,
                        p.current_a,
                        p.current_lag_deg
                    ),
                    "amplitudes must be finite and not negative, the angle finite".into(),
                ));
            }
            if !self.profile.programs_current_angle()
                && profile::normalize_deg(p.current_lag_deg) != 0.0
            {
                return Err(self.refuse(
                    format!("L{} current lag {}°", k + 1, p.current_lag_deg),
                    format!(
                        "a {} cannot set the current's phase (its load does); use a power \
                         standard for tests at reduced power factor",
                        self.profile.name
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl<T: Transport> AcSource for ScpiAcSource<T> {
    fn identity(&mut self) -> InstrumentResult<InstrumentIdentity> {
        Ok(self.identity.clone())
    }

    /// One setpoint is one command group: frequency and every phase, then one error
    /// query. (Each error query is a round trip; on RS-232 at 9600 baud, or any link,
    /// a setpoint's worth of commands is checked as a whole and a failure names them all.)
    fn apply(&mut self, setpoint: &SourceSetpoint) -> InstrumentResult<()> {
        self.validate(setpoint)?;
        let profile = self.profile;
        let mut commands: Vec<String> = profile
            .frequency
            .iter()
            .map(|t| render(t.template, &[("frequency_hz", setpoint.frequency_hz)]))
            .collect();
        for (k, p) in setpoint.phases.iter().enumerate() {
            let values = [
                ("phase", (k + 1) as f64),
                ("voltage_v", p.voltage_v),
                ("voltage_angle_deg", profile.voltage_angles_deg[k]),
                ("current_a", p.current_a),
                (
                    "current_angle_deg",
                    profile.current_angle_deg(k, p.current_lag_deg),
                ),
            ];
            commands.extend(profile.phase.iter().map(|t| render(t.template, &values)));
        }
        self.session.command_group(&commands)
    }

    fn set_output(&mut self, on: bool) -> InstrumentResult<()> {
        let templates = if on {
            self.profile.output_on
        } else {
            self.profile.output_off
        };
        self.group(templates, &[])
    }

    fn output_is_on(&mut self) -> InstrumentResult<bool> {
        let query = self.profile.output_query.template;
        let reply = self.session.query_reply(query)?;
        reply
            .single()
            .and_then(|v| v.as_bool())
            .ok_or_else(|| InstrumentError::Device {
                instrument: self.session.instrument_name().to_string(),
                request: query.into(),
                reply: format!("{reply:?} is not ON/OFF or 1/0"),
            })
    }
}

impl<T: Transport> ReferenceStandard for ScpiAcSource<T> {
    fn identity(&mut self) -> InstrumentResult<InstrumentIdentity> {
        Ok(self.identity.clone())
    }

    fn configure_pulse_output(&mut self, imp_per_kwh: f64) -> InstrumentResult<()> {
        if !self.profile.has_pulse_output() {
            return Err(self.refuse(
                format!("pulse output {imp_per_kwh} imp/kWh"),
                format!("a {} has no energy pulse output", self.profile.name),
            ));
        }
        if !(imp_per_kwh.is_finite() && imp_per_kwh > 0.0) {
            return Err(self.refuse(
                format!("pulse output {imp_per_kwh} imp/kWh"),
                "the meter constant must be a positive number".into(),
            ));
        }
        self.group(self.profile.pulse_output, &[("imp_per_kwh", imp_per_kwh)])
    }
}

#[cfg(test)]
mod tests;
