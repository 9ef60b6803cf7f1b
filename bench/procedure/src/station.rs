//! Station files: which instrument fills each role, on which port, with which
//! calibration. A procedure names roles; the station binds them.

use crate::yaml::{DataError, LoadedFile, Pos};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::path::Path;

pub const STATION_SCHEMA: &str = "meterbench.station/1";

mod raw {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Station {
        pub schema: Spanned<String>,
        pub id: String,
        pub name: String,
        pub laboratory: Laboratory,
        pub roles: Roles,
        #[serde(default)]
        pub dut_can: Option<Spanned<DutCan>>,
        #[serde(default)]
        pub dut_p1: Option<Spanned<DutP1>>,
        pub simulation: Option<Spanned<Simulation>>,
    }

    /// Where a P1 device (the CSP1) reaches the bench: a USB-P1 cable's serial port.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct DutP1 {
        pub port: Spanned<String>,
        #[serde(default)]
        pub request: Option<super::P1Request>,
        #[serde(default)]
        pub inverted: bool,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SimCsp1 {
        pub serial_number: String,
        pub firmware: String,
        #[serde(default)]
        pub gain_percent: [f64; 3],
        #[serde(default)]
        pub offset_a: [f64; 3],
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CurrentUncertainty {
        pub value: Spanned<f64>,
        pub source: String,
    }

    /// Where the DUT's CAN bus reaches the bench: an SLCAN USB-CAN adapter's port.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct DutCan {
        pub port: Spanned<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SimSoftware {
        pub software_version: String,
        pub software_hash: String,
        pub lrs_hash: BTreeMap<String, String>,
        #[serde(default)]
        pub can_silent: bool,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Laboratory {
        pub name: String,
        pub address: String,
    }

    /// Every role a procedure can name; an unknown role is a misspelling.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Roles {
        pub source: Spanned<Source>,
        pub reference: Spanned<Reference>,
        pub counter: Spanned<Counter>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Calibration {
        pub id: String,
        pub due: Spanned<NaiveDate>,
        pub issued_by: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Source {
        pub driver: Spanned<String>,
        pub port: Option<Spanned<String>>,
        pub baud: Option<u32>,
        pub model: String,
        pub serial_number: String,
        pub calibration: Calibration,
        pub max_voltage_v: Spanned<f64>,
        pub max_current_a: Spanned<f64>,
        /// Expanded uncertainty (k=2) of the delivered power, %, for the timed method.
        pub power_uncertainty_k2_percent: UncertaintyPair,
        /// Expanded uncertainty (k=2) of the delivered current, %, for current sensors.
        #[serde(default)]
        pub current_uncertainty_k2_percent: Option<CurrentUncertainty>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Reference {
        pub driver: Spanned<String>,
        pub port: Option<Spanned<String>>,
        pub baud: Option<u32>,
        pub model: String,
        pub serial_number: String,
        pub calibration: Calibration,
        pub pulse_constant_imp_per_kwh: Spanned<f64>,
        pub energy_uncertainty_k2_percent: UncertaintyPair,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct UncertaintyPair {
        pub unity_pf: Spanned<f64>,
        pub reduced_pf: Spanned<f64>,
        pub source: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Counter {
        pub driver: Spanned<String>,
        pub port: Option<Spanned<String>>,
        pub baud: Option<u32>,
        pub model: String,
        pub serial_number: String,
        pub calibration: Calibration,
        pub timebase_accuracy_ppm: Spanned<f64>,
        pub glitch_filter_s: Spanned<f64>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Simulation {
        pub seed: u64,
        pub source: SimSource,
        pub reference: SimReference,
        pub counter: SimCounter,
        pub dut: SimDut,
        #[serde(default)]
        pub csp1: Option<SimCsp1>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SimSource {
        pub settling_time_constant_s: f64,
        pub amplitude_error_percent: f64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SimReference {
        pub actual_error_percent: f64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SimCounter {
        pub timebase_hz: f64,
        pub timebase_offset_ppm: f64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SimDut {
        pub model: Spanned<String>,
        pub serial_number: String,
        pub led_imp_per_kwh: f64,
        pub start_threshold_a: f64,
        pub energy_update_hz: f64,
        pub pulse_timer_hz: f64,
        pub led_pulse_width_s: f64,
        pub meters: Vec<Spanned<SimMeter>>,
        #[serde(default)]
        pub faults: Vec<Spanned<super::SimFault>>,
        #[serde(default)]
        pub software: Option<SimSoftware>,
        #[serde(default)]
        pub broken_seals: Vec<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SimMeter {
        pub port: String,
        #[serde(default)]
        pub register_start_kwh: f64,
        pub error_curve_percent: Vec<(f64, f64)>,
        pub pf_inductive_0_5_percent: f64,
        pub pf_capacitive_0_8_percent: f64,
        pub phase_offsets_percent: [f64; 3],
        pub noise_percent: f64,
    }
}

/// A fault the simulated DUT can be given, to prove the bench catches it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimFault {
    /// The meter does not register below `threshold_a` per phase (set it above Ist).
    NoStart(ThresholdFault),
    /// The meter registers this power, W, when no current flows.
    Creep(CreepFault),
    /// The LED emits pulses at this constant instead of the nameplate's.
    WrongConstant(ConstantFault),
    /// The LED stays dark; the meter still registers.
    DeadLed(PortFault),
    /// Extra error, %, for per-phase currents within [from_a, to_a] at this PF.
    ErrorBump(BumpFault),
    /// The energy register adds this error, %, to what the meter measures; the LED
    /// does not (a register that disagrees with the meter constant).
    RegisterError(RegisterFault),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterFault {
    pub port: String,
    pub error_percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortFault {
    pub port: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdFault {
    pub port: String,
    pub threshold_a: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreepFault {
    pub port: String,
    pub power_w: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConstantFault {
    pub port: String,
    pub imp_per_kwh: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BumpFault {
    pub port: String,
    pub from_a: f64,
    pub to_a: f64,
    /// cos φ of the load the bump applies to (character ignored), e.g. 1 or 0.5.
    pub cos_phi: f64,
    pub error_percent: f64,
}

impl SimFault {
    pub fn port(&self) -> &str {
        match self {
            SimFault::NoStart(f) => &f.port,
            SimFault::DeadLed(f) => &f.port,
            SimFault::Creep(f) => &f.port,
            SimFault::WrongConstant(f) => &f.port,
            SimFault::ErrorBump(f) => &f.port,
            SimFault::RegisterError(f) => &f.port,
        }
    }

    /// Parse one fault written as YAML, e.g. `{dead_led: {port: right}}`.
    pub fn parse(text: &str) -> Result<SimFault, DataError> {
        LoadedFile::from_text(Path::new("<--sim-fault>"), text.to_string()).parse()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationRecord {
    pub id: String,
    pub due: NaiveDate,
    pub issued_by: String,
}

/// Which driver fills a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Driver {
    /// The simulated bench's device for the role, in process (no wire).
    Sim,
    /// An SCPI source / power standard (profile chosen by its `*IDN?`).
    Scpi,
    /// The meterbench pulse counter (hw/pulse-counter) over its framed protocol.
    MeterbenchCounter,
}

impl Driver {
    pub fn name(self) -> &'static str {
        match self {
            Driver::Sim => "sim",
            Driver::Scpi => "scpi",
            Driver::MeterbenchCounter => "meterbench-counter",
        }
    }
}

/// Where a driver's instrument is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortSpec {
    /// A serial device, e.g. `/dev/ttyACM0` (USB CDC) or `/dev/ttyUSB0`.
    Serial(String),
    /// A raw TCP socket, e.g. `tcp://192.168.0.5:5025`.
    Tcp(String),
    /// The simulated world's device on a fresh pseudo-terminal (`sim+pty`).
    SimPty,
    /// The simulated world's device on a loopback TCP port (`sim+tcp`).
    SimTcp,
}

impl std::fmt::Display for PortSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortSpec::Serial(p) => f.write_str(p),
            PortSpec::Tcp(a) => write!(f, "tcp://{a}"),
            PortSpec::SimPty => f.write_str("sim+pty"),
            PortSpec::SimTcp => f.write_str("sim+tcp"),
        }
    }
}

impl PortSpec {
    pub fn parse(text: &str) -> Option<PortSpec> {
        match text {
            "sim+pty" => Some(PortSpec::SimPty),
            "sim+tcp" => Some(PortSpec::SimTcp),
            t if t.starts_with("tcp://") && t.len() > 6 => Some(PortSpec::Tcp(t[6..].to_string())),
            t if t.starts_with('/') => Some(PortSpec::Serial(t.to_string())),
            _ => None,
        }
    }

    pub fn is_simulated(&self) -> bool {
        matches!(self, PortSpec::SimPty | PortSpec::SimTcp)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleBinding {
    pub role: String,
    pub driver: Driver,
    pub port: Option<PortSpec>,
    /// Baud rate for serial ports.
    pub baud: u32,
    pub model: String,
    pub serial_number: String,
    pub calibration: CalibrationRecord,
    #[serde(skip)]
    pub due_pos: Pos,
}

/// Expanded uncertainty (k=2) at unity and at reduced power factor, %.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UncertaintyByPf {
    pub unity_pf: f64,
    pub reduced_pf: f64,
}

impl UncertaintyByPf {
    pub fn at(&self, unity: bool) -> f64 {
        if unity {
            self.unity_pf
        } else {
            self.reduced_pf
        }
    }
}

#[derive(Debug, Clone)]
pub struct SourceRole {
    pub binding: RoleBinding,
    pub max_voltage_v: f64,
    pub max_current_a: f64,
    pub power_uncertainty_k2_percent: UncertaintyByPf,
    pub uncertainty_source: String,
    /// Expanded uncertainty (k=2) of the delivered current, % (current sensors), and
    /// where it comes from.
    pub current_uncertainty_k2_percent: Option<(f64, String)>,
    /// Where the role is in the station file.
    pub pos: Pos,
}

/// The line that asks a P1 device to send, as the cable wires it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum P1Request {
    Rts,
    Dtr,
    None,
}

/// The P1 port of a current sensor under test.
#[derive(Debug, Clone, PartialEq)]
pub struct DutP1Spec {
    pub port: PortSpec,
    pub request: P1Request,
    pub inverted: bool,
}

/// The simulated CSP1: its identity and its errors per CT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimCsp1Spec {
    pub serial_number: String,
    pub firmware: String,
    pub gain_percent: [f64; 3],
    pub offset_a: [f64; 3],
}

#[derive(Debug, Clone)]
pub struct ReferenceRole {
    pub binding: RoleBinding,
    pub pulse_constant_imp_per_kwh: f64,
    pub energy_uncertainty_k2_percent: UncertaintyByPf,
    pub uncertainty_source: String,
}

#[derive(Debug, Clone)]
pub struct CounterRole {
    pub binding: RoleBinding,
    pub timebase_accuracy_ppm: f64,
    pub glitch_filter_s: f64,
}

/// The simulated world's parameters (only for stations whose roles are `sim`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulationSpec {
    pub seed: u64,
    pub source_settling_time_constant_s: f64,
    pub source_amplitude_error_percent: f64,
    pub reference_actual_error_percent: f64,
    pub counter_timebase_hz: f64,
    pub counter_timebase_offset_ppm: f64,
    pub dut: SimDutSpec,
    /// The simulated current sensor on the P1 port, if any.
    pub csp1: Option<SimCsp1Spec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimDutSpec {
    pub model: String,
    pub serial_number: String,
    /// The simulated device's LED constant (its nameplate value unless a fault changes it).
    pub led_imp_per_kwh: f64,
    pub start_threshold_a: f64,
    pub energy_update_hz: f64,
    pub pulse_timer_hz: f64,
    pub led_pulse_width_s: f64,
    pub meters: Vec<SimMeterSpec>,
    pub faults: Vec<SimFault>,
    /// What the simulated meter's software reports (over its CAN node).
    pub software: Option<SimSoftwareSpec>,
    /// Keys of the fixture's seals that are broken on this unit (what an inspection finds).
    pub broken_seals: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimSoftwareSpec {
    pub software_version: String,
    pub software_hash: String,
    /// Per port.
    pub lrs_hash: BTreeMap<String, String>,
    /// The CAN node never answers (a meter that does not start, or a broken bus).
    pub can_silent: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimMeterSpec {
    pub port: String,
    /// What the register holds when the world starts, kWh.
    pub register_start_kwh: f64,
    /// (current A, error %) points, interpolated in log(current).
    pub error_curve_percent: Vec<(f64, f64)>,
    pub pf_inductive_0_5_percent: f64,
    pub pf_capacitive_0_8_percent: f64,
    pub phase_offsets_percent: [f64; 3],
    pub noise_percent: f64,
}

#[derive(Debug, Clone)]
pub struct Station {
    pub file: LoadedFile,
    pub id: String,
    pub name: String,
    pub laboratory_name: String,
    pub laboratory_address: String,
    pub source: SourceRole,
    pub reference: ReferenceRole,
    pub counter: CounterRole,
    /// The SLCAN adapter on the DUT's CAN bus, if the station has one.
    pub dut_can: Option<PortSpec>,
    /// The P1 cable to a current sensor under test, if the station has one.
    pub dut_p1: Option<DutP1Spec>,
    pub simulation: Option<SimulationSpec>,
}

impl Station {
    pub fn load(path: &Path) -> Result<Station, DataError> {
        Station::from_file(LoadedFile::read(path)?)
    }

    pub fn from_file(file: LoadedFile) -> Result<Station, DataError> {
        let raw: raw::Station = file.parse()?;
        let path = file.path.clone();
        let err = |pos: Pos, m: String| DataError::at(&path, pos, m);
        if raw.schema.value != STATION_SCHEMA {
            return Err(err(
                Pos::of(&raw.schema),
                format!("schema `{}` is not `{STATION_SCHEMA}`", raw.schema.value),
            ));
        }
        let driver = |role: &str, d: &Spanned<String>| -> Result<Driver, DataError> {
            let allowed: &[Driver] = match role {
                "source" | "reference" => &[Driver::Sim, Driver::Scpi],
                _ => &[Driver::Sim, Driver::MeterbenchCounter],
            };
            allowed
                .iter()
                .copied()
                .find(|a| a.name() == d.value)
                .ok_or_else(|| {
                    let names: Vec<&str> = allowed.iter().map(|a| a.name()).collect();
                    err(
                        Pos::of(d),
                        format!(
                            "driver `{}` cannot fill the {role} role (known: {})",
                            d.value,
                            names.join(", ")
                        ),
                    )
                })
        };
        let positive = |name: &str, v: &Spanned<f64>| -> Result<f64, DataError> {
            if v.value.is_finite() && v.value > 0.0 {
                Ok(v.value)
            } else {
                Err(err(
                    Pos::of(v),
                    format!("{name} must be a positive number, not {}", v.value),
                ))
            }
        };
        let pair = |u: &raw::UncertaintyPair| -> Result<UncertaintyByPf, DataError> {
            Ok(UncertaintyByPf {
                unity_pf: positive("unity_pf", &u.unity_pf)?,
                reduced_pf: positive("reduced_pf", &u.reduced_pf)?,
            })
        };
        let binding = |role: &str,
                       d: &Spanned<String>,
                       port: &Option<Spanned<String>>,
                       baud: Option<u32>,
                       model: &str,
                       serial: &str,
                       cal: &raw::Calibration|
         -> Result<RoleBinding, DataError> {
            let driver = driver(role, d)?;
            let port = match (driver, port) {
                (Driver::Sim, None) => None,
                (Driver::Sim, Some(p)) => {
                    return Err(err(Pos::of(p), "the in-process `sim` driver takes no port".into()));
                }
                (_, None) => {
                    return Err(err(
                        Pos::of(d),
                        format!("the {} driver needs a `port:` (a serial device like /dev/ttyACM0, tcp://HOST:PORT, sim+pty or sim+tcp)", driver.name()),
                    ));
                }
                (_, Some(p)) => Some(PortSpec::parse(&p.value).ok_or_else(|| {
                    err(
                        Pos::of(p),
                        format!("port `{}` is not a serial device path (/dev/...), tcp://HOST:PORT, sim+pty or sim+tcp", p.value),
                    )
                })?),
            };
            Ok(RoleBinding {
                role: role.to_string(),
                driver,
                port,
                baud: baud.unwrap_or(115_200),
                model: model.to_string(),
                serial_number: serial.to_string(),
                calibration: CalibrationRecord {
                    id: cal.id.clone(),
                    due: cal.due.value,
                    issued_by: cal.issued_by.clone(),
                },
                due_pos: Pos::of(&cal.due),
            })
        };

        let s = &raw.roles.source.value;
        let source = SourceRole {
            binding: binding(
                "source",
                &s.driver,
                &s.port,
                s.baud,
                &s.model,
                &s.serial_number,
                &s.calibration,
            )?,
            max_voltage_v: positive("max_voltage_v", &s.max_voltage_v)?,
            max_current_a: positive("max_current_a", &s.max_current_a)?,
            power_uncertainty_k2_percent: pair(&s.power_uncertainty_k2_percent)?,
            uncertainty_source: s.power_uncertainty_k2_percent.source.clone(),
            pos: Pos::of(&raw.roles.source),
            current_uncertainty_k2_percent: match &s.current_uncertainty_k2_percent {
                None => None,
                Some(c) => Some((
                    positive("current_uncertainty_k2_percent", &c.value)?,
                    c.source.clone(),
                )),
            },
        };
        let r = &raw.roles.reference.value;
        let reference = ReferenceRole {
            binding: binding(
                "reference",
                &r.driver,
                &r.port,
                r.baud,
                &r.model,
                &r.serial_number,
                &r.calibration,
            )?,
            pulse_constant_imp_per_kwh: positive(
                "pulse_constant_imp_per_kwh",
                &r.pulse_constant_imp_per_kwh,
            )?,
            energy_uncertainty_k2_percent: pair(&r.energy_uncertainty_k2_percent)?,
            uncertainty_source: r.energy_uncertainty_k2_percent.source.clone(),
        };
        let c = &raw.roles.counter.value;
        let counter = CounterRole {
            binding: binding(
                "counter",
                &c.driver,
                &c.port,
                c.baud,
                &c.model,
                &c.serial_number,
                &c.calibration,
            )?,
            timebase_accuracy_ppm: positive("timebase_accuracy_ppm", &c.timebase_accuracy_ppm)?,
            glitch_filter_s: {
                let g = &c.glitch_filter_s;
                if !(g.value.is_finite() && g.value >= 0.0) {
                    return Err(err(
                        Pos::of(g),
                        format!("glitch_filter_s must be ≥ 0, not {}", g.value),
                    ));
                }
                g.value
            },
        };

        let dut_can = match &raw.dut_can {
            None => None,
            Some(d) => match PortSpec::parse(&d.value.port.value) {
                Some(p @ (PortSpec::Serial(_) | PortSpec::SimPty)) => Some(p),
                _ => {
                    return Err(err(
                        Pos::of(&d.value.port),
                        format!(
                            "`{}` is not a port for an SLCAN adapter (a serial port such as /dev/ttyACM0, or sim+pty)",
                            d.value.port.value
                        ),
                    ));
                }
            },
        };
        let dut_p1 = match &raw.dut_p1 {
            None => None,
            Some(d) => match PortSpec::parse(&d.value.port.value) {
                Some(p @ (PortSpec::Serial(_) | PortSpec::SimPty)) => Some(DutP1Spec {
                    port: p,
                    request: d.value.request.unwrap_or(P1Request::Rts),
                    inverted: d.value.inverted,
                }),
                _ => {
                    return Err(err(
                        Pos::of(&d.value.port),
                        format!(
                            "`{}` is not a port for a P1 cable (a serial port such as /dev/ttyUSB0, or sim+pty)",
                            d.value.port.value
                        ),
                    ));
                }
            },
        };
        let uses_sim = [&source.binding, &reference.binding, &counter.binding]
            .iter()
            .any(|b| b.driver == Driver::Sim || b.port.as_ref().is_some_and(|p| p.is_simulated()))
            || dut_can.as_ref().is_some_and(|p| p.is_simulated())
            || dut_p1.as_ref().is_some_and(|p| p.port.is_simulated());
        let simulation = match (&raw.simulation, uses_sim) {
            (Some(sim), true) => Some(simulation_spec(&path, sim)?),
            (None, true) => {
                return Err(err(
                    Pos::of(&raw.roles.source),
                    "roles use the simulated bench (`sim` driver or a sim+ port) but the station has no `simulation:` section"
                        .into(),
                ));
            }
            (Some(sim), false) => {
                return Err(err(
                    Pos::of(sim),
                    "`simulation:` is only for stations with simulated roles".into(),
                ));
            }
            (None, false) => None,
        };

        Ok(Station {
            id: raw.id,
            name: raw.name,
            laboratory_name: raw.laboratory.name,
            laboratory_address: raw.laboratory.address,
            source,
            reference,
            counter,
            dut_can,
            dut_p1,
            simulation,
            file,
        })
    }

    pub fn bindings(&self) -> [&RoleBinding; 3] {
        [
            &self.source.binding,
            &self.reference.binding,
            &self.counter.binding,
        ]
    }

    /// Refuse to measure with an instrument whose calibration is past due.
    pub fn check_calibration_due(&self, today: NaiveDate) -> Result<(), DataError> {
        for b in self.bindings() {
            if b.calibration.due < today {
                return Err(DataError::at(
                    &self.file.path,
                    b.due_pos,
                    format!(
                        "the {} ({} {}) calibration {} was due on {}; recalibrate it or bind another instrument",
                        b.role, b.model, b.serial_number, b.calibration.id, b.calibration.due
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn simulation_spec(
    path: &Path,
    sim: &Spanned<raw::Simulation>,
) -> Result<SimulationSpec, DataError> {
    let s = &sim.value;
    let err = |pos: Pos, m: String| DataError::at(path, pos, m);
    if s.dut.model.value != "cpim1000" {
        return Err(err(
            Pos::of(&s.dut.model),
            format!(
                "simulated DUT model `{}` is unknown (known: cpim1000)",
                s.dut.model.value
            ),
        ));
    }
    let mut meters = Vec::new();
    for m in &s.dut.meters {
        let curve = &m.value.error_curve_percent;
        if curve.is_empty()
            || curve.windows(2).any(|w| w[0].0 >= w[1].0)
            || curve.iter().any(|p| p.0 <= 0.0)
        {
            return Err(err(
                Pos::of(m),
                "error_curve_percent needs (current, error) points with positive, increasing currents".into(),
            ));
        }
        if !(m.value.register_start_kwh.is_finite() && m.value.register_start_kwh >= 0.0) {
            return Err(err(
                Pos::of(m),
                "register_start_kwh must be a reading of zero or more".into(),
            ));
        }
        meters.push(SimMeterSpec {
            register_start_kwh: m.value.register_start_kwh,
            port: m.value.port.clone(),
            error_curve_percent: curve.clone(),
            pf_inductive_0_5_percent: m.value.pf_inductive_0_5_percent,
            pf_capacitive_0_8_percent: m.value.pf_capacitive_0_8_percent,
            phase_offsets_percent: m.value.phase_offsets_percent,
            noise_percent: m.value.noise_percent,
        });
    }
    for f in &s.dut.faults {
        if !meters.iter().any(|m| m.port == f.value.port()) {
            return Err(err(
                Pos::of(f),
                format!("fault names port `{}`, which has no meter", f.value.port()),
            ));
        }
    }
    Ok(SimulationSpec {
        csp1: s.csp1.as_ref().map(|c| SimCsp1Spec {
            serial_number: c.serial_number.clone(),
            firmware: c.firmware.clone(),
            gain_percent: c.gain_percent,
            offset_a: c.offset_a,
        }),
        seed: s.seed,
        source_settling_time_constant_s: s.source.settling_time_constant_s,
        source_amplitude_error_percent: s.source.amplitude_error_percent,
        reference_actual_error_percent: s.reference.actual_error_percent,
        counter_timebase_hz: s.counter.timebase_hz,
        counter_timebase_offset_ppm: s.counter.timebase_offset_ppm,
        dut: SimDutSpec {
            model: s.dut.model.value.clone(),
            serial_number: s.dut.serial_number.clone(),
            led_imp_per_kwh: s.dut.led_imp_per_kwh,
            start_threshold_a: s.dut.start_threshold_a,
            energy_update_hz: s.dut.energy_update_hz,
            pulse_timer_hz: s.dut.pulse_timer_hz,
            led_pulse_width_s: s.dut.led_pulse_width_s,
            meters,
            faults: s.dut.faults.iter().map(|f| f.value.clone()).collect(),
            broken_seals: s.dut.broken_seals.clone(),
            software: s.dut.software.as_ref().map(|w| SimSoftwareSpec {
                software_version: w.software_version.clone(),
                software_hash: w.software_hash.clone(),
                lrs_hash: w.lrs_hash.clone(),
                can_silent: w.can_silent,
            }),
        },
    })
}
