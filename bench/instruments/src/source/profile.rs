//! Per-model SCPI command profiles of AC sources and power standards: data, not code.
//!
//! A profile is a table of command templates per capability. Placeholders:
//! `{phase}` (1–3), `{voltage_v}`, `{voltage_angle_deg}`, `{current_a}`,
//! `{current_angle_deg}`, `{frequency_hz}`, `{imp_per_kwh}`. The driver renders them; the
//! simulated instrument matches incoming lines against the same templates, so both ends
//! speak exactly one dialect per model.
//!
//! Every template records where it comes from: [`Provenance::Confirmed`] cites the
//! manufacturer's manual page it was checked against, [`Provenance::Unconfirmed`] says what
//! it rests on instead. Check the unconfirmed ones on the real instrument before relying
//! on them.

use crate::InstrumentIdentity;

/// Where a command template comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    /// Checked against the manufacturer's documentation; the text cites it.
    Confirmed(&'static str),
    /// Not found in the material available; the text says what it rests on.
    Unconfirmed(&'static str),
}

/// One command (or query) template and its provenance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandTemplate {
    pub template: &'static str,
    pub provenance: Provenance,
}

const fn confirmed(template: &'static str, source: &'static str) -> CommandTemplate {
    CommandTemplate {
        template,
        provenance: Provenance::Confirmed(source),
    }
}

const fn unconfirmed(template: &'static str, basis: &'static str) -> CommandTemplate {
    CommandTemplate {
        template,
        provenance: Provenance::Unconfirmed(basis),
    }
}

/// What a phase's current angle is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurrentAngleReference {
    /// The angle of the current relative to its own phase voltage (−lag).
    OwnVoltage,
    /// The angle relative to phase 1's voltage (voltage angle − lag).
    PhaseOneVoltage,
}

/// The capability a template serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Sent once after identification.
    Setup,
    Frequency,
    /// Sent for each phase with that phase's values.
    Phase,
    OutputOn,
    OutputOff,
    OutputQuery,
    PulseOutput,
    ErrorQuery,
}

/// The SCPI dialect of one family of instruments.
#[derive(Debug, PartialEq)]
pub struct CommandProfile {
    /// Human name, e.g. "Fluke 6100B/6105A electrical power standard".
    pub name: &'static str,
    /// Matched case-insensitively as a substring of the `*IDN?` manufacturer field.
    pub manufacturer: &'static str,
    /// `*IDN?` model fields this profile drives (matched case-insensitively as a prefix).
    pub models: &'static [&'static str],
    pub setup: &'static [CommandTemplate],
    pub frequency: &'static [CommandTemplate],
    pub phase: &'static [CommandTemplate],
    pub output_on: &'static [CommandTemplate],
    pub output_off: &'static [CommandTemplate],
    /// Answers 1/0 or ON/OFF.
    pub output_query: CommandTemplate,
    /// Empty when the model has no energy pulse output.
    pub pulse_output: &'static [CommandTemplate],
    pub error_query: CommandTemplate,
    /// Voltage angle of phases 1–3, degrees, as the instrument expects them.
    pub voltage_angles_deg: [f64; 3],
    pub current_angle_reference: CurrentAngleReference,
    /// Whether the instrument switches its own output off when the bench stops talking
    /// to it, and where that was looked for. Without one, the bench runs a separate guard
    /// process that switches the output off when the bench's heartbeat stops.
    pub comms_watchdog: CommsWatchdog,
}

/// A communication watchdog (or timed output) of a source, as its manual documents it.
#[derive(Debug, PartialEq)]
pub enum CommsWatchdog {
    /// None is documented; `source` says where it was looked for.
    None { source: &'static str },
}

impl CommandProfile {
    /// Every template with the capability it serves.
    pub fn templates(
        &'static self,
    ) -> impl Iterator<Item = (Capability, &'static CommandTemplate)> {
        let lists: [(Capability, &'static [CommandTemplate]); 6] = [
            (Capability::Setup, self.setup),
            (Capability::Frequency, self.frequency),
            (Capability::Phase, self.phase),
            (Capability::OutputOn, self.output_on),
            (Capability::OutputOff, self.output_off),
            (Capability::PulseOutput, self.pulse_output),
        ];
        lists
            .into_iter()
            .flat_map(|(cap, list)| list.iter().map(move |t| (cap, t)))
            .chain([
                (Capability::OutputQuery, &self.output_query),
                (Capability::ErrorQuery, &self.error_query),
            ])
    }

    /// Whether the profile sets the current's phase angle (an AC voltage source does not:
    /// its load decides).
    pub fn programs_current_angle(&self) -> bool {
        self.phase
            .iter()
            .any(|t| t.template.contains("{current_angle_deg}"))
    }

    pub fn has_pulse_output(&self) -> bool {
        !self.pulse_output.is_empty()
    }

    /// Whether an `*IDN?` answer belongs to this profile.
    pub fn matches(&self, id: &InstrumentIdentity) -> bool {
        let manufacturer = id.manufacturer.to_ascii_uppercase();
        let model = id.model.trim().to_ascii_uppercase();
        manufacturer.contains(&self.manufacturer.to_ascii_uppercase())
            && self
                .models
                .iter()
                .any(|m| model.starts_with(&m.to_ascii_uppercase()))
    }

    /// The angle to program for a phase's current, degrees in (−180, 180].
    pub fn current_angle_deg(&self, phase_index: usize, lag_deg: f64) -> f64 {
        let reference = match self.current_angle_reference {
            CurrentAngleReference::OwnVoltage => 0.0,
            CurrentAngleReference::PhaseOneVoltage => self.voltage_angles_deg[phase_index],
        };
        normalize_deg(reference - lag_deg)
    }

    /// The lag a programmed current angle stands for (inverse of [`Self::current_angle_deg`]).
    pub fn lag_deg(&self, phase_index: usize, current_angle_deg: f64) -> f64 {
        let reference = match self.current_angle_reference {
            CurrentAngleReference::OwnVoltage => 0.0,
            CurrentAngleReference::PhaseOneVoltage => self.voltage_angles_deg[phase_index],
        };
        normalize_deg(reference - current_angle_deg)
    }
}

/// Angle in (−180, 180].
pub fn normalize_deg(a: f64) -> f64 {
    let mut a = a % 360.0;
    if a <= -180.0 {
        a += 360.0;
    }
    if a > 180.0 {
        a -= 360.0;
    }
    if a == 0.0 { 0.0 } else { a }
}

/// A value as the SCPI number the templates carry: plain decimal, at most 9 decimals.
pub fn format_number(x: f64) -> String {
    let s = format!("{x:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" || s.is_empty() {
        "0".into()
    } else {
        s.to_string()
    }
}

/// Fill a template's placeholders.
pub fn render(template: &str, values: &[(&str, f64)]) -> String {
    let mut out = template.to_string();
    for (name, v) in values {
        let text = if *name == "phase" {
            format!("{}", *v as u8)
        } else {
            format_number(*v)
        };
        out = out.replace(&format!("{{{name}}}"), &text);
    }
    out
}

/// Match a received line against a template, case-insensitively; returns the
/// placeholders' texts in order, or `None` if the line is not this command.
pub fn match_template(template: &str, line: &str) -> Option<Vec<(String, String)>> {
    let line = line.trim();
    let line = line.strip_prefix(':').unwrap_or(line);
    let mut captures = Vec::new();
    let mut rest = line;
    let mut t = template;
    while !t.is_empty() {
        if let Some(after) = t.strip_prefix('{') {
            let close = after.find('}')?;
            let name = &after[..close];
            t = &after[close + 1..];
            // A placeholder runs up to the next literal character (or the end).
            let end = match t.chars().next() {
                Some(stop) => rest.find(stop)?,
                None => rest.len(),
            };
            let value = rest[..end].trim();
            if value.is_empty() {
                return None;
            }
            captures.push((name.to_string(), value.to_string()));
            rest = &rest[end..];
        } else {
            let lit_end = t.find('{').unwrap_or(t.len());
            let literal = &t[..lit_end];
            let head = rest.get(..literal.len())?;
            if !head.eq_ignore_ascii_case(literal) {
                return None;
            }
            rest = &rest[literal.len()..];
            t = &t[lit_end..];
        }
    }
    rest.trim().is_empty().then_some(captures)
}

// ---------------------------------------------------------------------------------------
// Fluke 6100B / 6105A electrical power standards.
//
// Source: "6100B/6105A Users Manual", chapter 5 "Remote Operation" (pages cited as
// 5-xx). The fundamental of each channel is harmonic 1 of its harmonic tree, set with
// amplitude and phase in one command (`...:MHARmonics:HARMonic<y> <amp>,<phase>`);
// the `...:HARMonic<y>:AMPLitude` and `:PANGle` nodes are queries only (5-36, 5-45).

pub static FLUKE_6100B_6105A: CommandProfile = CommandProfile {
    name: "Fluke 6100B/6105A electrical power standard",
    manufacturer: "FLUKE",
    models: &["6100B", "6105A"],
    setup: &[confirmed(
        "*CLS",
        "6100B/6105A Users Manual 5-61 (5-110 Clear Status: clears the event registers and queues)",
    )],
    frequency: &[unconfirmed(
        "SOUR:FREQ {frequency_hz}",
        "not in the stored manual pages; SCPI-99 [SOURce:]FREQuency form",
    )],
    phase: &[
        unconfirmed(
            "SOUR:PHAS{phase}:VOLT:RANG {voltage_v},{voltage_v}",
            "by analogy with SOUR:PHAS<x>:CURR:RANG <low>,<high> (5-43); the voltage range \
             command itself was not in the stored pages",
        ),
        confirmed(
            "SOUR:PHAS{phase}:VOLT:MHAR:HARM1 {voltage_v},{voltage_angle_deg}",
            "6100B/6105A Users Manual 5-36 (SOURce:PHASe<x>:VOLTage:MHARmonics:HARMonic<y> \
             <amplitude>,<phase angle>)",
        ),
        confirmed(
            "SOUR:PHAS{phase}:CURR:RANG {current_a},{current_a}",
            "6100B/6105A Users Manual 5-43 (SOURce:PHASe<x>:CURRent:RANGe: lower and upper \
             limit the range must cover; the instrument picks the narrowest)",
        ),
        confirmed(
            "SOUR:PHAS{phase}:CURR:MHAR:HARM1 {current_a},{current_angle_deg}",
            "6100B/6105A Users Manual 5-45 (current harmonic tree, same form as the voltage \
             tree on 5-36); angle reference (own phase voltage) unconfirmed",
        ),
    ],
    output_on: &[confirmed(
        "OUTP ON",
        "6100B/6105A Users Manual 5-58 (ENERgy:ABORt compares itself with ':OUTPut OFF')",
    )],
    output_off: &[confirmed(
        "OUTP OFF",
        "6100B/6105A Users Manual 5-58 (':OUTPut OFF' turns all channels off)",
    )],
    output_query: unconfirmed(
        "OUTP?",
        "query form of OUTPut; not in the stored manual pages",
    ),
    pulse_output: &[
        confirmed(
            "ENER:OUTP:CONS:UNIT IPKWH",
            "6100B/6105A Users Manual 5-61 (5-107 ENERgy:OUTPut:CONStant:UNIT, IPKWH = \
             impulses per kWh)",
        ),
        confirmed(
            "ENER:OUTP:CONS {imp_per_kwh}",
            "6100B/6105A Users Manual 5-60 (5-106 ENERgy:OUTPut:CONStant: meter constant of \
             the pulse output, proportional to the active power outputs)",
        ),
    ],
    error_query: unconfirmed(
        "SYST:ERR?",
        "SCPI-99 mandatory error queue query; not in the stored manual pages",
    ),
    // Unconfirmed: phase 2 and 3 voltage angles relative to phase 1, lagging negative.
    voltage_angles_deg: [0.0, -120.0, 120.0],
    current_angle_reference: CurrentAngleReference::OwnVoltage,
    comms_watchdog: CommsWatchdog::None {
        source: "6100B/6105A Users Manual ch. 5 (remote commands): no communication watchdog or \
                 timed output among the SYSTem, OUTPut or STATus commands [U]; the bench's \
                 guard process stands in",
    },
};

// ---------------------------------------------------------------------------------------
// Chroma 61500-series programmable AC sources.
//
// Source: "Programmable AC Source 61501/61502/61503/61504 User's Manual" v1.6, chapter 8
// (pages cited as 8-xx), and the 61600 manual for the `*IDN?` format. An AC source sets
// voltages; the current is what the load draws, so the current setpoint becomes the
// source's current limit and the current's angle cannot be programmed.

pub static CHROMA_61500: CommandProfile = CommandProfile {
    name: "Chroma 61500-series programmable AC source",
    manufacturer: "CHROMA",
    models: &["61503", "61504", "61511", "61512"],
    setup: &[
        unconfirmed("*CLS", "IEEE 488.2 mandatory common command"),
        confirmed(
            "OUTP:MODE FIXED",
            "61501-61504 User's Manual 8-26 (OUTPut:MODE FIXED|LIST|PULSE|STEP|SYNTH|INTERHAR)",
        ),
        unconfirmed(
            "INST:PHAS THREE",
            "three-phase output mode of the 61503/61504/6151x; command not in the stored pages",
        ),
    ],
    frequency: &[confirmed(
        "FREQ {frequency_hz}",
        "61501-61504 User's Manual 8-12 ([SOURce:]FREQuency[:{CW|IMMediate}])",
    )],
    phase: &[
        unconfirmed(
            "INST:NSEL {phase}",
            "phase selection in three-phase mode; not in the stored pages",
        ),
        confirmed(
            "VOLT:AC {voltage_v}",
            "61501-61504 User's Manual 8-12 ([SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]:AC)",
        ),
        confirmed(
            "CURR:LIM {current_a}",
            "61501-61504 User's Manual 8-12 ([SOURce:]CURRent:LIMit: rms current limit)",
        ),
        unconfirmed(
            "PHAS {voltage_angle_deg}",
            "per-phase voltage angle in three-phase mode; not in the stored pages",
        ),
    ],
    output_on: &[unconfirmed(
        "OUTP ON",
        "OUTPut[:STATe]; the OUTPut subsystem is on 8-26 but the state command was not seen",
    )],
    output_off: &[unconfirmed(
        "OUTP OFF",
        "OUTPut[:STATe]; the OUTPut subsystem is on 8-26 but the state command was not seen",
    )],
    output_query: unconfirmed("OUTP?", "query form of OUTPut[:STATe]"),
    pulse_output: &[],
    error_query: unconfirmed(
        "SYST:ERR?",
        "SCPI-99 mandatory error queue query; not in the stored pages",
    ),
    // Unconfirmed: angles of phases 2 and 3 as the instrument's positive-sequence defaults.
    voltage_angles_deg: [0.0, 240.0, 120.0],
    current_angle_reference: CurrentAngleReference::OwnVoltage,
    comms_watchdog: CommsWatchdog::None {
        source: "61501-61504 User's Manual ch. 8 (remote commands): no communication watchdog or \
                 timed output in the SYSTem, OUTPut or PROTection subsystems seen [U]; the \
                 bench's guard process stands in",
    },
};

/// Every profile the driver knows, in match order.
pub static PROFILES: &[&CommandProfile] = &[&FLUKE_6100B_6105A, &CHROMA_61500];

/// The profile an `*IDN?` answer selects.
pub fn profile_for(id: &InstrumentIdentity) -> Option<&'static CommandProfile> {
    PROFILES.iter().copied().find(|p| p.matches(id))
}

/// "Fluke 6100B, Fluke 6105A, Chroma 61503, …" for error messages.
pub fn known_models() -> String {
    let mut names = Vec::new();
    for p in PROFILES {
        let maker = p.name.split_whitespace().next().unwrap_or(p.manufacturer);
        for m in p.models {
            names.push(format!("{maker} {m}"));
        }
    }
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(manufacturer: &str, model: &str) -> InstrumentIdentity {
        InstrumentIdentity {
            manufacturer: manufacturer.into(),
            model: model.into(),
            serial_number: "1".into(),
            firmware: "1".into(),
        }
    }

    #[test]
    fn idn_selects_the_profile() {
        assert_eq!(profile_for(&id("FLUKE", "6105A")), Some(&FLUKE_6100B_6105A));
        assert_eq!(profile_for(&id("Fluke", "6100B")), Some(&FLUKE_6100B_6105A));
        assert_eq!(profile_for(&id("Chroma ATE", "61504")), Some(&CHROMA_61500));
        assert_eq!(profile_for(&id("FLUKE", "5522A")), None);
        assert_eq!(profile_for(&id("Keysight", "6105A")), None);
        let known = known_models();
        assert!(
            known.contains("Fluke 6105A") && known.contains("Chroma 61504"),
            "{known}"
        );
    }

    #[test]
    fn templates_render_and_match_back() {
        let values = [
            ("phase", 2.0),
            ("voltage_v", 230.0),
            ("voltage_angle_deg", -120.0),
            ("current_a", 5.0),
            ("current_angle_deg", -60.0),
            ("frequency_hz", 50.0),
            ("imp_per_kwh", 1.6e8),
        ];
        for p in PROFILES {
            for (_, t) in p.templates() {
                let line = render(t.template, &values);
                assert!(!line.contains('{'), "{line}");
                let caps = match_template(t.template, &line.to_ascii_lowercase())
                    .unwrap_or_else(|| panic!("{line} does not match {}", t.template));
                for (name, text) in caps {
                    let v = values.iter().find(|(n, _)| *n == name).unwrap().1;
                    assert_eq!(text.parse::<f64>().unwrap(), v, "{name} in {line}");
                }
            }
        }
        assert_eq!(
            render(FLUKE_6100B_6105A.phase[1].template, &values),
            "SOUR:PHAS2:VOLT:MHAR:HARM1 230,-120"
        );
        assert!(match_template("OUTP ON", "OUTP OFF").is_none());
        assert!(match_template("VOLT:AC {voltage_v}", "VOLT:AC").is_none());
        assert!(match_template("VOLT:AC {voltage_v}", "VOLT:DC 5").is_none());
        assert_eq!(match_template("OUTP ON", ":outp on"), Some(vec![]));
    }

    #[test]
    fn numbers_and_angles() {
        assert_eq!(format_number(230.0), "230");
        assert_eq!(format_number(230.00000000000003), "230");
        assert_eq!(format_number(0.05), "0.05");
        assert_eq!(format_number(-0.0), "0");
        assert_eq!(format_number(1.6e8), "160000000");
        assert_eq!(normalize_deg(240.0), -120.0);
        assert_eq!(normalize_deg(-180.0), 180.0);
        assert_eq!(normalize_deg(-360.0), 0.0);
        let f = &FLUKE_6100B_6105A;
        assert_eq!(f.current_angle_deg(1, 60.0), -60.0);
        assert_eq!(f.lag_deg(1, -60.0), 60.0);
        assert!(f.programs_current_angle() && f.has_pulse_output());
        assert!(!CHROMA_61500.programs_current_angle() && !CHROMA_61500.has_pulse_output());
    }

    #[test]
    fn every_template_says_where_it_comes_from() {
        for p in PROFILES {
            for (_, t) in p.templates() {
                let text = match t.provenance {
                    Provenance::Confirmed(s) | Provenance::Unconfirmed(s) => s,
                };
                assert!(text.len() > 10, "{}: {}", p.name, t.template);
            }
        }
    }
}
