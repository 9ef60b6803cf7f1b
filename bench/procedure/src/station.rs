//! Station files: which instrument fills each role, on which port, with which
//! calibration. A procedure names roles; the station binds them.

use crate::bounds;
use crate::yaml::{DataError, LoadedFile, Pos};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::path::Path;

pub const STATION_SCHEMA: &str = "meterbench.station/2";

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
        pub rack: Spanned<Rack>,
        pub safety: Safety,
        pub simulation: Option<Spanned<Simulation>>,
        #[serde(default)]
        pub panel: Option<Panel>,
    }

    /// Who may use the station panel from another machine.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Panel {
        /// SHA-256 (hex) of the panel's password; `meterbench panel --hash-password`
        /// prints it. The password itself is never written down.
        pub password_sha256: Spanned<String>,
    }

    /// What the station allows a procedure to do to the devices it holds.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Safety {
        /// The longest a procedure may keep the source energised, s.
        pub max_energised_s: Spanned<f64>,
        /// A source on a real port without a watchdog of its own gets a guard process
        /// that switches it off when the bench's heartbeat stops for this long, s.
        #[serde(default)]
        pub guard_timeout_s: Option<Spanned<f64>>,
        pub source: String,
    }

    /// The positions of the bench: where each device under test sits and how it is
    /// reached.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Rack {
        /// Every position's current circuit is isolated from the others' (meters with
        /// isolated current paths, or ICTs): series circuits need it.
        pub isolated_current_circuits: Spanned<bool>,
        pub positions: Spanned<Vec<Spanned<Position>>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Position {
        pub id: Spanned<u32>,
        /// Scanning heads, in order (head 1 first): the counter and channel each is
        /// wired to.
        #[serde(default)]
        pub heads: Vec<Spanned<Head>>,
        /// The device's CAN bus through an SLCAN adapter.
        #[serde(default)]
        pub can: Option<Spanned<String>>,
        /// A P1 device's port through a USB-P1 cable.
        #[serde(default)]
        pub p1: Option<Spanned<DutP1>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Head {
        pub counter: Spanned<String>,
        pub channel: Spanned<u8>,
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
        #[serde(default)]
        pub noise_a: [f64; 3],
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CurrentUncertainty {
        pub value: Spanned<f64>,
        pub source: String,
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
        /// ISO 3166-1 alpha-2 code of the laboratory's country (the DCC's `countryCode`).
        pub country: Spanned<String>,
        /// Where this station stands, when not at the laboratory's address (a line, a
        /// customer's site): the certificate's place of calibration.
        #[serde(default)]
        pub location: Option<String>,
        /// The people who may authorise this station's certificates (ISO/IEC 17025
        /// 7.8.2.1 o): a run names one with `--signer`, or takes the only one.
        pub signatories: Spanned<Vec<Spanned<Signatory>>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Signatory {
        pub name: String,
        pub role: String,
    }

    /// Every role a procedure can name; an unknown role is a misspelling.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Roles {
        pub source: Spanned<Source>,
        pub reference: Spanned<Reference>,
        /// One or more pulse counters; each latches the same reference pulse train.
        pub counters: Spanned<Vec<Spanned<Counter>>>,
        /// The air temperature and humidity at the bench (ISO/IEC 17025 7.8.4.1 b).
        #[serde(default)]
        pub climate: Option<Spanned<Climate>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Climate {
        pub driver: Spanned<String>,
        pub port: Option<Spanned<String>>,
        pub baud: Option<Spanned<u32>>,
        pub model: String,
        pub serial_number: String,
        pub calibration: Calibration,
        /// Expanded uncertainty (k=2) of its temperature, °C, and of its humidity, % RH.
        pub temperature_uncertainty_k2_c: Spanned<f64>,
        pub humidity_uncertainty_k2_percent_rh: Spanned<f64>,
        pub source: String,
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
        pub baud: Option<Spanned<u32>>,
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
        pub baud: Option<Spanned<u32>>,
        pub model: String,
        pub serial_number: String,
        pub calibration: Calibration,
        pub pulse_constant_imp_per_kwh: Spanned<f64>,
        pub energy_uncertainty_k2_percent: UncertaintyPair,
        /// The standard's own error from its calibration certificate, to correct for.
        #[serde(default)]
        pub correction: Option<Spanned<ReferenceCorrection>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ReferenceCorrection {
        pub certificate: String,
        pub calibrated: Spanned<NaiveDate>,
        /// In order of current; each holds up to its `up_to_a`.
        pub ranges: Spanned<Vec<Spanned<CorrectionRange>>>,
        pub drift_percent_per_year: Spanned<f64>,
        pub source: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CorrectionRange {
        pub up_to_a: Spanned<f64>,
        pub unity_pf: CorrectionValue,
        pub reduced_pf: CorrectionValue,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CorrectionValue {
        pub error_percent: Spanned<f64>,
        pub u_k2_percent: Spanned<f64>,
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
        pub id: Spanned<String>,
        pub driver: Spanned<String>,
        pub port: Option<Spanned<String>>,
        pub baud: Option<Spanned<u32>>,
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
        /// Per counter id.
        pub counters: Spanned<BTreeMap<String, SimCounter>>,
        /// What sits at each position of the rack.
        pub positions: Vec<Spanned<SimPosition>>,
        /// The room's air, for a simulated climate sensor.
        #[serde(default)]
        pub climate: Option<Spanned<SimClimate>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SimClimate {
        pub temperature_c: Spanned<f64>,
        pub humidity_percent_rh: Spanned<f64>,
        pub drift_c_per_h: Spanned<f64>,
        pub drift_percent_rh_per_h: Spanned<f64>,
        pub noise_c: Spanned<f64>,
        pub noise_percent_rh: Spanned<f64>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SimPosition {
        pub position: Spanned<u32>,
        #[serde(default)]
        pub cpim1000: Option<Spanned<SimDut>>,
        #[serde(default)]
        pub csp1: Option<SimCsp1>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SimSource {
        pub settling_time_constant_s: Spanned<f64>,
        pub amplitude_error_percent: Spanned<f64>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SimReference {
        pub actual_error_percent: Spanned<f64>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SimCounter {
        pub timebase_hz: Spanned<f64>,
        pub timebase_offset_ppm: Spanned<f64>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SimDut {
        pub serial_number: String,
        pub led_imp_per_kwh: Spanned<f64>,
        pub start_threshold_a: Spanned<f64>,
        pub energy_update_hz: Spanned<f64>,
        pub pulse_timer_hz: Spanned<f64>,
        pub led_pulse_width_s: Spanned<f64>,
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
        pub register_start_kwh: Option<Spanned<f64>>,
        pub error_curve_percent: Spanned<Vec<(f64, f64)>>,
        pub pf_inductive_0_5_percent: Spanned<f64>,
        pub pf_capacitive_0_8_percent: Spanned<f64>,
        pub phase_offsets_percent: Spanned<[f64; 3]>,
        pub noise_percent: Spanned<f64>,
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
    /// One measuring element reads this much more, % (its share of a balanced load, all
    /// of a load on its phase alone).
    ElementError(ElementFault),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElementFault {
    /// The rack position of the simulated device (its only one when left out).
    #[serde(default)]
    pub position: Option<u32>,
    pub port: String,
    pub phase: meterbench_instruments::Phase,
    pub error_percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterFault {
    /// The rack position of the simulated device (its only one when left out).
    #[serde(default)]
    pub position: Option<u32>,
    pub port: String,
    pub error_percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortFault {
    /// The rack position of the simulated device (its only one when left out).
    #[serde(default)]
    pub position: Option<u32>,
    pub port: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdFault {
    /// The rack position of the simulated device (its only one when left out).
    #[serde(default)]
    pub position: Option<u32>,
    pub port: String,
    pub threshold_a: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreepFault {
    /// The rack position of the simulated device (its only one when left out).
    #[serde(default)]
    pub position: Option<u32>,
    pub port: String,
    pub power_w: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConstantFault {
    /// The rack position of the simulated device (its only one when left out).
    #[serde(default)]
    pub position: Option<u32>,
    pub port: String,
    pub imp_per_kwh: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BumpFault {
    /// The rack position of the simulated device (its only one when left out).
    #[serde(default)]
    pub position: Option<u32>,
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
            SimFault::ElementError(f) => &f.port,
        }
    }

    /// The rack position the fault names, if it names one.
    pub fn position(&self) -> Option<u32> {
        match self {
            SimFault::NoStart(f) => f.position,
            SimFault::DeadLed(f) => f.position,
            SimFault::Creep(f) => f.position,
            SimFault::WrongConstant(f) => f.position,
            SimFault::ErrorBump(f) => f.position,
            SimFault::RegisterError(f) => f.position,
            SimFault::ElementError(f) => f.position,
        }
    }

    /// Every number of the fault within its sanity range (a NaN creep would pass
    /// silently, a NaN constant exhaust memory).
    pub fn check_numbers(&self, path: &Path, pos: Pos) -> Result<(), DataError> {
        let n = |name: &str, v: f64, range| bounds::number(path, pos, name, v, range).map(|_| ());
        match self {
            SimFault::NoStart(t) => n("threshold_a", t.threshold_a, bounds::SIM_CURRENT_A),
            SimFault::Creep(c) => n("power_w", c.power_w, bounds::SIM_POWER_W),
            SimFault::WrongConstant(c) => n("imp_per_kwh", c.imp_per_kwh, bounds::METER_CONSTANT),
            SimFault::DeadLed(_) => Ok(()),
            SimFault::ErrorBump(b) => {
                n("from_a", b.from_a, bounds::SIM_CURRENT_A)?;
                n("to_a", b.to_a, bounds::SIM_CURRENT_A)?;
                n("cos_phi", b.cos_phi, bounds::COS_PHI)?;
                n("error_percent", b.error_percent, bounds::SIM_ERROR_PERCENT)
            }
            SimFault::RegisterError(r) => {
                n("error_percent", r.error_percent, bounds::SIM_ERROR_PERCENT)
            }
            SimFault::ElementError(e) => {
                n("error_percent", e.error_percent, bounds::SIM_ERROR_PERCENT)
            }
        }
    }

    /// Parse one fault written as YAML, e.g. `{dead_led: {port: right}}` or
    /// `{dead_led: {position: 7, port: right}}`.
    pub fn parse(text: &str) -> Result<SimFault, DataError> {
        let path = Path::new("<--sim-fault>");
        let fault: SimFault = LoadedFile::from_text(path, text.to_string()).parse()?;
        fault.check_numbers(path, Pos { line: 1, column: 1 })?;
        Ok(fault)
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
    /// A Vaisala HUMICAP HMT330-series transmitter (or a compatible HMT310, HMP155,
    /// PTU300) over its serial line: `SEND` in the default output form.
    VaisalaHmt330,
}

impl Driver {
    pub fn name(self) -> &'static str {
        match self {
            Driver::Sim => "sim",
            Driver::Scpi => "scpi",
            Driver::MeterbenchCounter => "meterbench-counter",
            Driver::VaisalaHmt330 => "vaisala-hmt330",
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
    /// Which instrument of its role: the role's name for the source and the reference,
    /// the counter's id for a counter (a rack may have several).
    pub id: String,
    pub driver: Driver,
    pub port: Option<PortSpec>,
    /// Baud rate for serial ports.
    pub baud: u32,
    pub model: String,
    pub serial_number: String,
    pub calibration: CalibrationRecord,
    #[serde(skip)]
    pub due_pos: Pos,
    /// Where `port:` is written, for an error opening it.
    #[serde(skip)]
    pub port_pos: Pos,
}

impl RoleBinding {
    /// `source`, `reference`, `counter c1`: the instrument in words.
    pub fn label(&self) -> String {
        if self.id == self.role {
            self.role.clone()
        } else {
            format!("{} {}", self.role, self.id)
        }
    }

    /// Its far end is the simulated world (the `sim` driver or a `sim+` port).
    pub fn is_simulated(&self) -> bool {
        self.driver == Driver::Sim || self.port.as_ref().is_some_and(PortSpec::is_simulated)
    }
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

/// The climate sensor at the bench and what its certificate says of it.
#[derive(Debug, Clone)]
pub struct ClimateRole {
    pub binding: RoleBinding,
    /// Expanded uncertainty (k=2) of its temperature, °C, and humidity, % RH.
    pub temperature_u_k2_c: f64,
    pub humidity_u_k2_percent_rh: f64,
    pub uncertainty_source: String,
    /// Where the role is in the station file.
    pub pos: Pos,
}

/// The simulated room: the air at the start, its drift per hour and a reading's noise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SimClimateSpec {
    pub temperature_c: f64,
    pub humidity_percent_rh: f64,
    pub drift_c_per_h: f64,
    pub drift_percent_rh_per_h: f64,
    pub noise_c: f64,
    pub noise_percent_rh: f64,
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
    /// Where `port:` is written, for an error opening it.
    pub port_pos: Pos,
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
    /// RMS noise of each CT's 1 s reading before its rounding, A (0 when not given).
    pub noise_a: [f64; 3],
}

#[derive(Debug, Clone)]
pub struct ReferenceRole {
    pub binding: RoleBinding,
    pub pulse_constant_imp_per_kwh: f64,
    pub energy_uncertainty_k2_percent: UncertaintyByPf,
    pub uncertainty_source: String,
    /// The standard's own error as its certificate states it: when given, the bench
    /// corrects every point for it and the budget takes the certificate's U of that
    /// error and the drift since, instead of the standard's accuracy.
    pub correction: Option<ReferenceCorrection>,
}

/// A reference standard's error per current range and power factor, from its
/// calibration certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceCorrection {
    pub certificate: String,
    pub calibrated: NaiveDate,
    pub ranges: Vec<CorrectionRange>,
    pub drift_percent_per_year: f64,
    pub source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CorrectionRange {
    pub up_to_a: f64,
    pub unity_pf: CorrectionValue,
    pub reduced_pf: CorrectionValue,
}

/// The standard's error (its reading − the true value, % of the true value) and the
/// certificate's expanded uncertainty (k = 2) of it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CorrectionValue {
    pub error_percent: f64,
    pub u_k2_percent: f64,
}

impl ReferenceCorrection {
    /// The range that holds `current_a` (the first whose `up_to_a` reaches it) and its
    /// value at unity or reduced power factor; none beyond the last range.
    pub fn at(&self, current_a: f64, unity: bool) -> Option<(&CorrectionRange, CorrectionValue)> {
        self.ranges
            .iter()
            .find(|r| current_a <= r.up_to_a)
            .map(|r| (r, if unity { r.unity_pf } else { r.reduced_pf }))
    }
}

#[derive(Debug, Clone)]
pub struct CounterRole {
    pub binding: RoleBinding,
    pub timebase_accuracy_ppm: f64,
    pub glitch_filter_s: f64,
}

/// One scanning head of a position: the counter (an index into the station's
/// counters) and the channel its photodiode is wired to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadInput {
    pub counter: usize,
    pub channel: u8,
}

/// A place in the rack for one device under test.
#[derive(Debug, Clone, PartialEq)]
pub struct RackPosition {
    /// The number the rack shows (1, 2, …).
    pub id: u32,
    /// Scanning heads in order: head 1 is `heads[0]`.
    pub heads: Vec<HeadInput>,
    /// The device's CAN bus (an SLCAN adapter's port), if wired.
    pub can: Option<PortSpec>,
    /// Where `can:` is written, for an error opening it.
    pub can_pos: Pos,
    /// A P1 device's cable, if wired.
    pub p1: Option<DutP1Spec>,
    pub pos: Pos,
}

/// The bench's positions.
#[derive(Debug, Clone, PartialEq)]
pub struct Rack {
    pub isolated_current_circuits: bool,
    pub positions: Vec<RackPosition>,
}

impl Rack {
    pub fn position(&self, id: u32) -> Option<&RackPosition> {
        self.positions.iter().find(|p| p.id == id)
    }
}

/// The simulated world's parameters (only for stations with simulated roles).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulationSpec {
    pub seed: u64,
    pub source_settling_time_constant_s: f64,
    pub source_amplitude_error_percent: f64,
    pub reference_actual_error_percent: f64,
    /// One per counter of the station, in the station's order.
    pub counters: Vec<SimCounterSpec>,
    /// What sits at each position (positions with nothing are left out).
    pub positions: Vec<SimPositionSpec>,
    /// The room's air, when the climate sensor is simulated.
    pub climate: Option<SimClimateSpec>,
}

impl SimulationSpec {
    pub fn position(&self, id: u32) -> Option<&SimPositionSpec> {
        self.positions.iter().find(|p| p.position == id)
    }

    /// The simulated CPIM1000 at a position, if one sits there.
    pub fn cpim1000(&self, id: u32) -> Option<&SimDutSpec> {
        self.position(id).and_then(|p| p.cpim1000.as_ref())
    }

    /// The simulated CSP1 at a position, if one sits there.
    pub fn csp1(&self, id: u32) -> Option<&SimCsp1Spec> {
        self.position(id).and_then(|p| p.csp1.as_ref())
    }
}

/// A simulated counter's timebase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SimCounterSpec {
    pub timebase_hz: f64,
    pub timebase_offset_ppm: f64,
}

/// The simulated devices at one position: a CPIM1000 in the current circuit under the
/// scanning heads, a CSP1 with its CTs around the source's conductors, or both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimPositionSpec {
    pub position: u32,
    pub cpim1000: Option<SimDutSpec>,
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
    /// ISO 3166-1 alpha-2, e.g. `DE`.
    pub laboratory_country: String,
    /// Where the station stands, when not at the laboratory's address.
    pub location: Option<String>,
    /// Who may authorise this station's certificates.
    pub signatories: Vec<Signatory>,
    pub source: SourceRole,
    pub reference: ReferenceRole,
    /// One or more; each position's heads name one of them.
    pub counters: Vec<CounterRole>,
    /// The air temperature and humidity sensor, when the station has one.
    pub climate: Option<ClimateRole>,
    pub rack: Rack,
    /// The longest a procedure may keep the source energised on this station, s.
    pub max_energised_s: f64,
    pub max_energised_pos: Pos,
    /// How long the source's guard waits for the bench's heartbeat, s (a source on a
    /// real port only).
    pub guard_timeout_s: Option<f64>,
    pub safety_source: String,
    pub simulation: Option<SimulationSpec>,
    /// SHA-256 (lower-case hex) of the station panel's password: required to use the
    /// panel from another machine.
    pub panel_password_sha256: Option<String>,
}

/// A person who may authorise the station's certificates, and their function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signatory {
    pub name: String,
    pub role: String,
}

struct LaboratoryParts {
    country: String,
    location: Option<String>,
    signatories: Vec<Signatory>,
}

/// The laboratory's country code, place and signatories, each checked at its line: they
/// are printed on certificates and written into the DCC.
fn laboratory(path: &Path, raw: &raw::Laboratory) -> Result<LaboratoryParts, DataError> {
    let err = |pos, msg: String| DataError::at(path, pos, msg);
    let country = {
        let c = &raw.country;
        let v = c.value.as_str();
        if !(v.len() == 2 && v.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err(err(
                Pos::of(c),
                format!(
                    "laboratory.country `{v}` is not an ISO 3166-1 alpha-2 code (two capital letters, e.g. DE)"
                ),
            ));
        }
        v.to_string()
    };
    let text = |what: &str, v: &str| -> Result<String, String> {
        let t = v.split_whitespace().collect::<Vec<_>>().join(" ");
        if t.is_empty() {
            return Err(format!("{what} is empty"));
        }
        if v.chars()
            .any(|c| c.is_control() && !matches!(c, ' ' | '\t' | '\n'))
        {
            return Err(format!("{what} holds a control character"));
        }
        Ok(t)
    };
    if raw.signatories.value.is_empty() {
        return Err(err(
            Pos::of(&raw.signatories),
            "laboratory.signatories lists nobody: a certificate is authorised by a named person (ISO/IEC 17025 7.8.2.1 o); list each who may, e.g. `- { name: A. Person, role: Head of laboratory }`".into(),
        ));
    }
    let mut signatories: Vec<Signatory> = Vec::new();
    for s in &raw.signatories.value {
        let name = text("a signatory's name", &s.value.name).map_err(|m| err(Pos::of(s), m))?;
        let role = text("a signatory's role", &s.value.role).map_err(|m| err(Pos::of(s), m))?;
        if signatories.iter().any(|o| o.name == name) {
            return Err(err(
                Pos::of(s),
                format!("signatory `{name}` is listed twice"),
            ));
        }
        signatories.push(Signatory { name, role });
    }
    Ok(LaboratoryParts {
        country,
        location: raw
            .location
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string),
        signatories,
    })
}

impl Station {
    /// The signatory a run is authorised by: the one named (who must be listed), else
    /// the only one listed.
    pub fn signatory(&self, named: Option<&str>) -> Result<Signatory, String> {
        let file = self.file.path.display();
        let listed = || {
            self.signatories
                .iter()
                .map(|s| format!("`{}` ({})", s.name, s.role))
                .collect::<Vec<_>>()
                .join(", ")
        };
        // A station lists at least one signatory (its loader refuses an empty list).
        match (named.map(str::trim), self.signatories.as_slice()) {
            (Some(n), list) => list.iter().find(|s| s.name == n).cloned().ok_or_else(|| {
                format!(
                    "`{n}` is not an authorised signatory of station {} (authorised in {file}: {})",
                    self.id,
                    listed()
                )
            }),
            (None, [only]) => Ok(only.clone()),
            (None, _) => Err(format!(
                "station {} has several signatories: name the one who authorises this run with --signer (authorised in {file}: {})",
                self.id,
                listed()
            )),
        }
    }
}

/// A reference standard's correction, its numbers in bounds and its ranges in order.
/// A date of the file as written: YAML's `2026-01-12` with its four-digit year. chrono
/// reads `26-01-12` as the year 26, which would make a calibration two thousand years
/// old (its drift added to every point's uncertainty) or long past due.
fn four_digit_year(path: &Path, date: &Spanned<NaiveDate>) -> Result<NaiveDate, DataError> {
    use chrono::Datelike;
    if (1000..=9999).contains(&date.value.year()) {
        Ok(date.value)
    } else {
        Err(DataError::at(
            path,
            Pos::of(date),
            format!(
                "the date is read as {}, outside the years 1000 to 9999: write it YYYY-MM-DD \
                 with the year in full (26-01-12 is the year 26)",
                date.value
            ),
        ))
    }
}

fn reference_correction(
    path: &Path,
    c: &Spanned<raw::ReferenceCorrection>,
) -> Result<ReferenceCorrection, DataError> {
    let within = |name: &str, v: &Spanned<f64>, range| bounds::spanned(path, name, v, range);
    let value = |v: &raw::CorrectionValue| -> Result<CorrectionValue, DataError> {
        Ok(CorrectionValue {
            error_percent: within(
                "error_percent",
                &v.error_percent,
                bounds::REFERENCE_ERROR_PERCENT,
            )?,
            u_k2_percent: within("u_k2_percent", &v.u_k2_percent, bounds::UNCERTAINTY_PERCENT)?,
        })
    };
    let raw = &c.value;
    if raw.ranges.value.is_empty() {
        return Err(DataError::at(
            path,
            Pos::of(&raw.ranges),
            "a correction needs at least one range",
        ));
    }
    let mut ranges: Vec<CorrectionRange> = Vec::new();
    for r in &raw.ranges.value {
        let up_to_a = within("up_to_a", &r.value.up_to_a, bounds::CURRENT_A)?;
        if let Some(last) = ranges.last()
            && up_to_a <= last.up_to_a
        {
            return Err(DataError::at(
                path,
                Pos::of(&r.value.up_to_a),
                format!(
                    "ranges go up in current: up_to_a {up_to_a} A follows {} A",
                    last.up_to_a
                ),
            ));
        }
        ranges.push(CorrectionRange {
            up_to_a,
            unity_pf: value(&r.value.unity_pf)?,
            reduced_pf: value(&r.value.reduced_pf)?,
        });
    }
    Ok(ReferenceCorrection {
        certificate: raw.certificate.clone(),
        calibrated: four_digit_year(path, &raw.calibrated)?,
        ranges,
        drift_percent_per_year: within(
            "drift_percent_per_year",
            &raw.drift_percent_per_year,
            bounds::DRIFT_PERCENT_PER_YEAR,
        )?,
        source: raw.source.clone(),
    })
}

/// An earlier station format: say what changed instead of a list of unknown keys.
const STATION_V1_MOVED: &str = "this is a meterbench.station/1 file; version 2 lists the counters under `roles.counters:` (each with an `id:`) and declares the bench's positions under `rack:` (each with its scanning heads as counter and channel, its `can:` and `p1:` ports, formerly `dut_can:`/`dut_p1:`); the simulated devices sit under `simulation.positions:`. See hw/stations/sim.yaml";

impl Station {
    pub fn load(path: &Path) -> Result<Station, DataError> {
        Station::from_file(LoadedFile::read(path)?)
    }

    pub fn from_file(file: LoadedFile) -> Result<Station, DataError> {
        crate::kinds::refuse_another_kind(&file, "meterbench.station", "a station")?;
        if let Ok(head) = serde_saphyr::from_str::<SchemaHead>(&file.text)
            && head.schema == "meterbench.station/1"
        {
            return Err(DataError::at(
                &file.path,
                Pos { line: 1, column: 1 },
                STATION_V1_MOVED,
            ));
        }
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
                "climate" => &[Driver::Sim, Driver::VaisalaHmt330],
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
        let within = |name: &str, v: &Spanned<f64>, range| bounds::spanned(&path, name, v, range);
        let pair = |u: &raw::UncertaintyPair| -> Result<UncertaintyByPf, DataError> {
            Ok(UncertaintyByPf {
                unity_pf: within("unity_pf", &u.unity_pf, bounds::UNCERTAINTY_PERCENT)?,
                reduced_pf: within("reduced_pf", &u.reduced_pf, bounds::UNCERTAINTY_PERCENT)?,
            })
        };
        struct Declared<'d> {
            role: &'d str,
            id: &'d str,
            driver: &'d Spanned<String>,
            port: &'d Option<Spanned<String>>,
            baud: &'d Option<Spanned<u32>>,
            model: &'d str,
            serial: &'d str,
            calibration: &'d raw::Calibration,
        }
        let binding = |d: Declared<'_>| -> Result<RoleBinding, DataError> {
            let driver = driver(d.role, d.driver)?;
            let port = match (driver, d.port) {
                (Driver::Sim, None) => None,
                (Driver::Sim, Some(p)) => {
                    return Err(err(Pos::of(p), "the in-process `sim` driver takes no port".into()));
                }
                (_, None) => {
                    return Err(err(
                        Pos::of(d.driver),
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
                role: d.role.to_string(),
                id: d.id.to_string(),
                driver,
                port,
                baud: match d.baud {
                    None => 115_200,
                    Some(b) => {
                        bounds::count(&path, Pos::of(b), "baud", u64::from(b.value), bounds::BAUD)?
                            as u32
                    }
                },
                model: d.model.to_string(),
                serial_number: d.serial.to_string(),
                calibration: CalibrationRecord {
                    id: d.calibration.id.clone(),
                    due: four_digit_year(&path, &d.calibration.due)?,
                    issued_by: d.calibration.issued_by.clone(),
                },
                due_pos: Pos::of(&d.calibration.due),
                port_pos: d.port.as_ref().map_or(Pos::of(d.driver), Pos::of),
            })
        };

        let s = &raw.roles.source.value;
        let source = SourceRole {
            binding: binding(Declared {
                role: "source",
                id: "source",
                driver: &s.driver,
                port: &s.port,
                baud: &s.baud,
                model: &s.model,
                serial: &s.serial_number,
                calibration: &s.calibration,
            })?,
            max_voltage_v: within("max_voltage_v", &s.max_voltage_v, bounds::VOLTAGE_V)?,
            max_current_a: within("max_current_a", &s.max_current_a, bounds::CURRENT_A)?,
            power_uncertainty_k2_percent: pair(&s.power_uncertainty_k2_percent)?,
            uncertainty_source: s.power_uncertainty_k2_percent.source.clone(),
            pos: Pos::of(&raw.roles.source),
            current_uncertainty_k2_percent: match &s.current_uncertainty_k2_percent {
                None => None,
                Some(c) => Some((
                    within(
                        "current_uncertainty_k2_percent",
                        &c.value,
                        bounds::UNCERTAINTY_PERCENT,
                    )?,
                    c.source.clone(),
                )),
            },
        };
        let r = &raw.roles.reference.value;
        let reference = ReferenceRole {
            binding: binding(Declared {
                role: "reference",
                id: "reference",
                driver: &r.driver,
                port: &r.port,
                baud: &r.baud,
                model: &r.model,
                serial: &r.serial_number,
                calibration: &r.calibration,
            })?,
            pulse_constant_imp_per_kwh: within(
                "pulse_constant_imp_per_kwh",
                &r.pulse_constant_imp_per_kwh,
                bounds::REFERENCE_CONSTANT,
            )?,
            energy_uncertainty_k2_percent: pair(&r.energy_uncertainty_k2_percent)?,
            uncertainty_source: r.energy_uncertainty_k2_percent.source.clone(),
            correction: match &r.correction {
                None => None,
                Some(c) => Some(reference_correction(&path, c)?),
            },
        };
        if raw.roles.counters.value.is_empty() {
            return Err(err(
                Pos::of(&raw.roles.counters),
                "at least one counter is needed".into(),
            ));
        }
        let mut counters: Vec<CounterRole> = Vec::new();
        for c in &raw.roles.counters.value {
            let c = &c.value;
            if !is_key(&c.id.value) {
                return Err(err(
                    Pos::of(&c.id),
                    format!(
                        "counter id `{}` must be letters, digits, - and _",
                        c.id.value
                    ),
                ));
            }
            if counters.iter().any(|k| k.binding.id == c.id.value) {
                return Err(err(
                    Pos::of(&c.id),
                    format!("counter id `{}` is used twice", c.id.value),
                ));
            }
            counters.push(CounterRole {
                binding: binding(Declared {
                    role: "counter",
                    id: &c.id.value,
                    driver: &c.driver,
                    port: &c.port,
                    baud: &c.baud,
                    model: &c.model,
                    serial: &c.serial_number,
                    calibration: &c.calibration,
                })?,
                timebase_accuracy_ppm: within(
                    "timebase_accuracy_ppm",
                    &c.timebase_accuracy_ppm,
                    bounds::TIMEBASE_PPM,
                )?,
                glitch_filter_s: within("glitch_filter_s", &c.glitch_filter_s, bounds::GLITCH_S)?,
            });
        }

        let climate = match &raw.roles.climate {
            None => None,
            Some(c) => {
                let pos = Pos::of(c);
                let c = &c.value;
                let mut binding = binding(Declared {
                    role: "climate",
                    id: "climate",
                    driver: &c.driver,
                    port: &c.port,
                    baud: &c.baud,
                    model: &c.model,
                    serial: &c.serial_number,
                    calibration: &c.calibration,
                })?;
                // The HMT330's factory setting (4800 7E1), not the bench's usual 115200.
                if c.baud.is_none() {
                    binding.baud = 4800;
                }
                if c.source.trim().is_empty() {
                    return Err(err(
                        pos,
                        "the climate sensor's uncertainties need a `source:` (its calibration certificate)".into(),
                    ));
                }
                Some(ClimateRole {
                    binding,
                    temperature_u_k2_c: within(
                        "temperature_uncertainty_k2_c",
                        &c.temperature_uncertainty_k2_c,
                        bounds::CLIMATE_U_C,
                    )?,
                    humidity_u_k2_percent_rh: within(
                        "humidity_uncertainty_k2_percent_rh",
                        &c.humidity_uncertainty_k2_percent_rh,
                        bounds::CLIMATE_U_RH,
                    )?,
                    uncertainty_source: c.source.clone(),
                    pos,
                })
            }
        };

        let rack = rack(&path, &raw.rack, &counters)?;
        let uses_sim = source.binding.is_simulated()
            || climate.as_ref().is_some_and(|c| c.binding.is_simulated())
            || reference.binding.is_simulated()
            || counters.iter().any(|c| c.binding.is_simulated())
            || rack.positions.iter().any(|p| {
                p.can.as_ref().is_some_and(PortSpec::is_simulated)
                    || p.p1.as_ref().is_some_and(|x| x.port.is_simulated())
            });
        let simulation = match (&raw.simulation, uses_sim) {
            (Some(sim), true) => Some(simulation_spec(
                &path,
                sim,
                &counters,
                &rack,
                climate.as_ref(),
            )?),
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

        let max_energised_s = within(
            "safety.max_energised_s",
            &raw.safety.max_energised_s,
            bounds::ENERGISED_S,
        )?;
        let guard_timeout_s = match &raw.safety.guard_timeout_s {
            Some(t) => Some(within(
                "safety.guard_timeout_s",
                t,
                bounds::GUARD_TIMEOUT_S,
            )?),
            None => None,
        };
        let real_source_port = matches!(
            source.binding.port,
            Some(PortSpec::Serial(_) | PortSpec::Tcp(_))
        );
        if real_source_port && guard_timeout_s.is_none() {
            return Err(err(
                source.binding.port_pos,
                "a source on a real port needs `safety.guard_timeout_s`: how long its guard process waits for the bench's heartbeat before it switches the source off (e.g. 2)".into(),
            ));
        }
        let panel_password_sha256 = match &raw.panel {
            Some(p) => {
                let h = p.password_sha256.value.trim().to_ascii_lowercase();
                if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(err(
                        Pos::of(&p.password_sha256),
                        "panel.password_sha256 is the SHA-256 of the password as 64 hex digits (`meterbench panel --hash-password` prints it), never the password".into(),
                    ));
                }
                Some(h)
            }
            None => None,
        };
        let laboratory = laboratory(&path, &raw.laboratory)?;
        Ok(Station {
            laboratory_country: laboratory.country,
            location: laboratory.location,
            signatories: laboratory.signatories,
            panel_password_sha256,
            guard_timeout_s,
            max_energised_s,
            max_energised_pos: Pos::of(&raw.safety.max_energised_s),
            safety_source: raw.safety.source.clone(),
            id: raw.id,
            name: raw.name,
            laboratory_name: raw.laboratory.name,
            laboratory_address: raw.laboratory.address,
            source,
            reference,
            counters,
            climate,
            rack,
            simulation,
            file,
        })
    }

    /// Every instrument of the station: the source, the reference, each counter.
    pub fn bindings(&self) -> Vec<&RoleBinding> {
        let mut v = vec![&self.source.binding, &self.reference.binding];
        v.extend(self.counters.iter().map(|c| &c.binding));
        v.extend(self.climate.iter().map(|c| &c.binding));
        v
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
                        b.label(),
                        b.model,
                        b.serial_number,
                        b.calibration.id,
                        b.calibration.due
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct SchemaHead {
    schema: String,
}

/// An identifier in a data file: letters, digits, `-` and `_`.
fn is_key(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn rack(
    path: &Path,
    raw: &Spanned<raw::Rack>,
    counters: &[CounterRole],
) -> Result<Rack, DataError> {
    let err = |pos: Pos, m: String| DataError::at(path, pos, m);
    let positions_raw = &raw.value.positions;
    if positions_raw.value.is_empty() {
        return Err(err(
            Pos::of(positions_raw),
            "the rack needs at least one position".into(),
        ));
    }
    let mut positions: Vec<RackPosition> = Vec::new();
    let mut wired: Vec<(usize, u8, u32)> = Vec::new();
    for p in &positions_raw.value {
        let v = &p.value;
        if v.id.value == 0 {
            return Err(err(Pos::of(&v.id), "positions are numbered from 1".into()));
        }
        if positions.iter().any(|q| q.id == v.id.value) {
            return Err(err(
                Pos::of(&v.id),
                format!("position {} is declared twice", v.id.value),
            ));
        }
        let mut heads: Vec<HeadInput> = Vec::new();
        for h in &v.heads {
            let Some(counter) = counters
                .iter()
                .position(|c| c.binding.id == h.value.counter.value)
            else {
                let ids: Vec<&str> = counters.iter().map(|c| c.binding.id.as_str()).collect();
                return Err(err(
                    Pos::of(&h.value.counter),
                    format!(
                        "no counter `{}` in roles.counters (declared: {})",
                        h.value.counter.value,
                        ids.join(", ")
                    ),
                ));
            };
            let channel = h.value.channel.value;
            // The counter protocol arms channels by a 32-bit mask.
            if channel > 31 {
                return Err(err(
                    Pos::of(&h.value.channel),
                    format!("channel {channel} is beyond a counter's 32 channels (0 … 31)"),
                ));
            }
            if let Some((_, _, other)) = wired
                .iter()
                .find(|(c, ch, _)| *c == counter && *ch == channel)
            {
                return Err(err(
                    Pos::of(h),
                    format!(
                        "counter `{}` channel {channel} is already wired to a head of position {other}",
                        h.value.counter.value
                    ),
                ));
            }
            // One timebase per device: its record's pulse times are on one counter's.
            if let Some(first) = heads.first()
                && first.counter != counter
            {
                return Err(err(
                    Pos::of(&h.value.counter),
                    format!(
                        "position {}'s heads are on counters `{}` and `{}`: wire a position's heads to one counter (its pulse times are on one timebase)",
                        v.id.value, counters[first.counter].binding.id, h.value.counter.value
                    ),
                ));
            }
            wired.push((counter, channel, v.id.value));
            heads.push(HeadInput { counter, channel });
        }
        let can = match &v.can {
            None => None,
            Some(c) => match PortSpec::parse(&c.value) {
                Some(port @ (PortSpec::Serial(_) | PortSpec::SimPty)) => Some(port),
                _ => {
                    return Err(err(
                        Pos::of(c),
                        format!(
                            "`{}` is not a port for an SLCAN adapter (a serial port such as /dev/ttyACM0, or sim+pty)",
                            c.value
                        ),
                    ));
                }
            },
        };
        let p1 = match &v.p1 {
            None => None,
            Some(d) => match PortSpec::parse(&d.value.port.value) {
                Some(port @ (PortSpec::Serial(_) | PortSpec::SimPty)) => Some(DutP1Spec {
                    port,
                    port_pos: Pos::of(&d.value.port),
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
        positions.push(RackPosition {
            id: v.id.value,
            heads,
            can,
            can_pos: v.can.as_ref().map_or(Pos::of(p), Pos::of),
            p1,
            pos: Pos::of(p),
        });
    }
    Ok(Rack {
        isolated_current_circuits: raw.value.isolated_current_circuits.value,
        positions,
    })
}

fn simulation_spec(
    path: &Path,
    sim: &Spanned<raw::Simulation>,
    counters: &[CounterRole],
    rack: &Rack,
    climate: Option<&ClimateRole>,
) -> Result<SimulationSpec, DataError> {
    let s = &sim.value;
    let err = |pos: Pos, m: String| DataError::at(path, pos, m);
    let mut sim_counters = Vec::new();
    for c in counters {
        let Some(spec) = s.counters.value.get(&c.binding.id) else {
            return Err(err(
                Pos::of(&s.counters),
                format!("counter `{}` has no simulated timebase here", c.binding.id),
            ));
        };
        let name = |field: &str| format!("counter `{}`: {field}", c.binding.id);
        bounds::number(
            path,
            Pos::of(&spec.timebase_hz),
            &name("timebase_hz"),
            spec.timebase_hz.value,
            bounds::SIM_TIMEBASE_HZ,
        )?;
        bounds::number(
            path,
            Pos::of(&spec.timebase_offset_ppm),
            &name("timebase_offset_ppm"),
            spec.timebase_offset_ppm.value,
            bounds::SIM_PPM,
        )?;
        sim_counters.push(SimCounterSpec {
            timebase_hz: spec.timebase_hz.value,
            timebase_offset_ppm: spec.timebase_offset_ppm.value,
        });
    }
    if let Some(id) = s
        .counters
        .value
        .keys()
        .find(|id| !counters.iter().any(|c| &c.binding.id == *id))
    {
        return Err(err(
            Pos::of(&s.counters),
            format!("`{id}` is not a counter of roles.counters"),
        ));
    }
    let mut positions: Vec<SimPositionSpec> = Vec::new();
    for p in &s.positions {
        let id = p.value.position.value;
        if rack.position(id).is_none() {
            return Err(err(
                Pos::of(&p.value.position),
                format!("position {id} is not in the rack"),
            ));
        }
        if positions.iter().any(|q| q.position == id) {
            return Err(err(
                Pos::of(&p.value.position),
                format!("position {id} is simulated twice"),
            ));
        }
        positions.push(SimPositionSpec {
            position: id,
            cpim1000: p
                .value
                .cpim1000
                .as_ref()
                .map(|d| sim_dut(path, d))
                .transpose()?,
            csp1: p
                .value
                .csp1
                .as_ref()
                .map(|c| -> Result<SimCsp1Spec, DataError> {
                    let at = Pos::of(&p.value.position);
                    for g in c.gain_percent {
                        bounds::number(
                            path,
                            at,
                            "csp1.gain_percent",
                            g,
                            bounds::SIM_ERROR_PERCENT,
                        )?;
                    }
                    for o in c.offset_a {
                        bounds::number(path, at, "csp1.offset_a", o, bounds::SIM_OFFSET_A)?;
                    }
                    for n in c.noise_a {
                        bounds::number(path, at, "csp1.noise_a", n, bounds::SIM_CURRENT_A)?;
                    }
                    Ok(SimCsp1Spec {
                        serial_number: c.serial_number.clone(),
                        firmware: c.firmware.clone(),
                        gain_percent: c.gain_percent,
                        offset_a: c.offset_a,
                        noise_a: c.noise_a,
                    })
                })
                .transpose()?,
        });
    }
    for (name, v, range) in [
        (
            "source.settling_time_constant_s",
            &s.source.settling_time_constant_s,
            bounds::SIM_SETTLING_S,
        ),
        (
            "source.amplitude_error_percent",
            &s.source.amplitude_error_percent,
            bounds::SIM_SMALL_PERCENT,
        ),
        (
            "reference.actual_error_percent",
            &s.reference.actual_error_percent,
            bounds::SIM_SMALL_PERCENT,
        ),
    ] {
        bounds::number(path, Pos::of(v), name, v.value, range)?;
    }
    let sim_climate = match (&s.climate, climate.filter(|c| c.binding.is_simulated())) {
        (Some(c), Some(_)) => {
            let v = &c.value;
            let n = |name: &str, x: &Spanned<f64>, range| {
                bounds::number(path, Pos::of(x), name, x.value, range)
            };
            n("climate.temperature_c", &v.temperature_c, bounds::SIM_AIR_C)?;
            n(
                "climate.humidity_percent_rh",
                &v.humidity_percent_rh,
                bounds::SIM_AIR_RH,
            )?;
            n(
                "climate.drift_c_per_h",
                &v.drift_c_per_h,
                bounds::SIM_DRIFT_PER_H,
            )?;
            n(
                "climate.drift_percent_rh_per_h",
                &v.drift_percent_rh_per_h,
                bounds::SIM_DRIFT_PER_H,
            )?;
            n("climate.noise_c", &v.noise_c, bounds::SIM_AIR_NOISE)?;
            n(
                "climate.noise_percent_rh",
                &v.noise_percent_rh,
                bounds::SIM_AIR_NOISE,
            )?;
            Some(SimClimateSpec {
                temperature_c: v.temperature_c.value,
                humidity_percent_rh: v.humidity_percent_rh.value,
                drift_c_per_h: v.drift_c_per_h.value,
                drift_percent_rh_per_h: v.drift_percent_rh_per_h.value,
                noise_c: v.noise_c.value,
                noise_percent_rh: v.noise_percent_rh.value,
            })
        }
        (None, Some(role)) => {
            return Err(err(
                role.pos,
                "the climate role is simulated but `simulation:` has no `climate:` (the room's air: temperature_c, humidity_percent_rh, drift_c_per_h, drift_percent_rh_per_h, noise_c, noise_percent_rh)".into(),
            ));
        }
        (Some(c), None) => {
            return Err(err(
                Pos::of(c),
                "`simulation.climate` is only for a station whose climate role is simulated".into(),
            ));
        }
        (None, None) => None,
    };
    Ok(SimulationSpec {
        climate: sim_climate,
        seed: s.seed,
        source_settling_time_constant_s: s.source.settling_time_constant_s.value,
        source_amplitude_error_percent: s.source.amplitude_error_percent.value,
        reference_actual_error_percent: s.reference.actual_error_percent.value,
        counters: sim_counters,
        positions,
    })
}

fn sim_dut(path: &Path, d: &Spanned<raw::SimDut>) -> Result<SimDutSpec, DataError> {
    let err = |pos: Pos, m: String| DataError::at(path, pos, m);
    let dut = &d.value;
    for (name, v, range) in [
        (
            "led_imp_per_kwh",
            &dut.led_imp_per_kwh,
            bounds::METER_CONSTANT,
        ),
        (
            "start_threshold_a",
            &dut.start_threshold_a,
            bounds::SIM_CURRENT_A,
        ),
        (
            "energy_update_hz",
            &dut.energy_update_hz,
            bounds::SIM_UPDATE_HZ,
        ),
        ("pulse_timer_hz", &dut.pulse_timer_hz, bounds::SIM_TIMER_HZ),
        (
            "led_pulse_width_s",
            &dut.led_pulse_width_s,
            bounds::SIM_PULSE_S,
        ),
    ] {
        bounds::number(path, Pos::of(v), name, v.value, range)?;
    }
    let mut meters = Vec::new();
    for m in &dut.meters {
        let v = &m.value;
        // Each number where it is written.
        if let Some(r) = &v.register_start_kwh {
            bounds::number(
                path,
                Pos::of(r),
                "register_start_kwh",
                r.value,
                bounds::SIM_REGISTER_KWH,
            )?;
        }
        for (name, x, range) in [
            (
                "pf_inductive_0_5_percent",
                &v.pf_inductive_0_5_percent,
                bounds::SIM_ERROR_PERCENT,
            ),
            (
                "pf_capacitive_0_8_percent",
                &v.pf_capacitive_0_8_percent,
                bounds::SIM_ERROR_PERCENT,
            ),
            ("noise_percent", &v.noise_percent, bounds::SIM_NOISE_PERCENT),
        ] {
            bounds::number(path, Pos::of(x), name, x.value, range)?;
        }
        for o in v.phase_offsets_percent.value {
            bounds::number(
                path,
                Pos::of(&v.phase_offsets_percent),
                "phase_offsets_percent",
                o,
                bounds::SIM_ERROR_PERCENT,
            )?;
        }
        let curve = &v.error_curve_percent;
        for (i, e) in &curve.value {
            bounds::number(
                path,
                Pos::of(curve),
                "error_curve_percent (current)",
                *i,
                bounds::SIM_CURRENT_A,
            )?;
            bounds::number(
                path,
                Pos::of(curve),
                "error_curve_percent (error)",
                *e,
                bounds::SIM_ERROR_PERCENT,
            )?;
        }
        if curve.value.is_empty()
            || curve.value.windows(2).any(|w| w[0].0 >= w[1].0)
            || curve.value.iter().any(|p| p.0 <= 0.0)
        {
            return Err(err(
                Pos::of(curve),
                "error_curve_percent needs (current, error) points with positive, increasing currents".into(),
            ));
        }
        meters.push(SimMeterSpec {
            register_start_kwh: v.register_start_kwh.as_ref().map_or(0.0, |r| r.value),
            port: v.port.clone(),
            error_curve_percent: curve.value.clone(),
            pf_inductive_0_5_percent: v.pf_inductive_0_5_percent.value,
            pf_capacitive_0_8_percent: v.pf_capacitive_0_8_percent.value,
            phase_offsets_percent: v.phase_offsets_percent.value,
            noise_percent: v.noise_percent.value,
        });
    }
    for f in &dut.faults {
        f.value.check_numbers(path, Pos::of(f))?;
        if !meters.iter().any(|m| m.port == f.value.port()) {
            return Err(err(
                Pos::of(f),
                format!("fault names port `{}`, which has no meter", f.value.port()),
            ));
        }
        if f.value.position().is_some() {
            return Err(err(
                Pos::of(f),
                "a fault listed with its device needs no `position:`".into(),
            ));
        }
    }
    Ok(SimDutSpec {
        model: "cpim1000".into(),
        serial_number: dut.serial_number.clone(),
        led_imp_per_kwh: dut.led_imp_per_kwh.value,
        start_threshold_a: dut.start_threshold_a.value,
        energy_update_hz: dut.energy_update_hz.value,
        pulse_timer_hz: dut.pulse_timer_hz.value,
        led_pulse_width_s: dut.led_pulse_width_s.value,
        meters,
        faults: dut.faults.iter().map(|f| f.value.clone()).collect(),
        broken_seals: dut.broken_seals.clone(),
        software: dut.software.as_ref().map(|w| SimSoftwareSpec {
            software_version: w.software_version.clone(),
            software_hash: w.software_hash.clone(),
            lrs_hash: w.lrs_hash.clone(),
            can_silent: w.can_silent,
        }),
    })
}
