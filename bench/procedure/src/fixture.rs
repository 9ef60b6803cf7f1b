//! DUT fixture profiles: what the device is and how it sits in the bench.

use crate::bounds;
use crate::yaml::{DataError, LoadedFile, Pos};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// The rated currents of EN 50470-1 a procedure refers to by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RatedCurrent {
    Ist,
    Imin,
    Itr,
    Iref,
    Imax,
}

impl RatedCurrent {
    pub const ALL: [RatedCurrent; 5] = [
        RatedCurrent::Ist,
        RatedCurrent::Imin,
        RatedCurrent::Itr,
        RatedCurrent::Iref,
        RatedCurrent::Imax,
    ];

    pub fn parse(name: &str) -> Option<RatedCurrent> {
        RatedCurrent::ALL
            .into_iter()
            .find(|c| c.to_string() == name)
    }
}

impl fmt::Display for RatedCurrent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// How the meter is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Wiring {
    /// Three phases and neutral, three measuring elements.
    #[serde(rename = "3p4w")]
    ThreePhaseFourWire,
    /// One phase and neutral (L1).
    #[serde(rename = "1p2w")]
    SinglePhase,
}

impl Wiring {
    pub fn elements(self) -> u32 {
        match self {
            Wiring::ThreePhaseFourWire => 3,
            Wiring::SinglePhase => 1,
        }
    }
}

mod raw {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Fixture {
        pub schema: Spanned<String>,
        pub id: String,
        pub device: Device,
        pub accuracy_class: Spanned<String>,
        pub meter_constant_imp_per_kwh: Spanned<f64>,
        pub rated_currents_a: Spanned<RatedCurrents>,
        pub nominal_voltage_v: Spanned<f64>,
        pub frequency_hz: Spanned<f64>,
        pub wirings: Spanned<Vec<Wiring>>,
        pub ratings: Ratings,
        pub ports: Spanned<Vec<Spanned<Port>>>,
        pub repeatability_min_pulses: MinPulses,
        #[serde(default)]
        pub can: Option<Spanned<CanProfile>>,
        #[serde(default)]
        pub software: Option<Software>,
        #[serde(default)]
        pub startup_fault: Option<String>,
        #[serde(default)]
        pub register: Option<Spanned<Register>>,
        #[serde(default)]
        pub inspection: Option<Spanned<Inspection>>,
        pub source: String,
        #[serde(default)]
        pub translations: Option<Spanned<crate::translations::RawTranslations>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Register {
        pub unit: Spanned<String>,
        pub decimals: Spanned<u32>,
        pub source: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Inspection {
        pub seals: Vec<Spanned<super::Seal>>,
        pub labels: Vec<Spanned<super::Label>>,
        pub source: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CanProfile {
        pub assumed: bool,
        pub bitrate_kbps: Spanned<u32>,
        pub request_id: Spanned<String>,
        pub response_id: Spanned<String>,
        pub dids: Dids,
        pub source: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Dids {
        pub software_version: Spanned<String>,
        pub software_hash: Spanned<String>,
        pub lrs_hash: Spanned<BTreeMap<String, Spanned<String>>>,
        /// Per port; the register as display text (`001234.5678`).
        #[serde(default)]
        pub energy_register: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Software {
        pub certified: Spanned<Vec<Spanned<CertifiedIdentity>>>,
        pub source: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Device {
        pub manufacturer: String,
        #[serde(rename = "type")]
        pub type_name: String,
        pub description: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RatedCurrents {
        #[serde(rename = "Ist")]
        pub ist: f64,
        #[serde(rename = "Imin")]
        pub imin: f64,
        #[serde(rename = "Itr")]
        pub itr: f64,
        #[serde(rename = "Iref")]
        pub iref: f64,
        #[serde(rename = "Imax")]
        pub imax: f64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Ratings {
        pub max_voltage_v: Spanned<f64>,
        pub max_current_a: Spanned<f64>,
        pub source: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Port {
        pub name: String,
        /// The scanning head of the position that sits over this port's LED (1, 2, …).
        pub head: Spanned<u8>,
        pub description: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct MinPulses {
        pub pulses: Spanned<BTreeMap<String, Spanned<u64>>>,
        pub source: String,
    }
}

/// A software identity as a type-examination certificate lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertifiedIdentity {
    pub software_version: String,
    pub software_hash: String,
    pub lrs_hash: String,
}

/// Where the DUT answers on CAN (ISO-TP, UDS ReadDataByIdentifier), and which data
/// identifiers hold its software identity. `assumed`: the identifiers are not published
/// by the maker (the CPIM1000's CAN protocol is not public) but chosen for the bench.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanProfile {
    pub assumed: bool,
    pub bitrate_kbps: u32,
    pub request_id: u32,
    pub response_id: u32,
    /// 29-bit identifiers (either id above 0x7FF).
    pub extended: bool,
    pub did_software_version: u16,
    pub did_software_hash: u16,
    /// Per port.
    pub did_lrs_hash: BTreeMap<String, u16>,
    /// Per port: the energy register as the display shows it, ASCII (`001234.5678`).
    /// Empty: the register is not readable over CAN.
    pub did_energy_register: BTreeMap<String, u16>,
    pub source: String,
}

/// The DUT's energy register as its display shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterProfile {
    /// Decimals of the kWh reading; one step of the last digit is the resolution.
    pub decimals: u32,
    /// One step of the last digit, Wh.
    pub resolution_wh: f64,
    pub source: String,
}

/// A seal the inspection asks about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seal {
    /// Answer key: `seal.<key>`.
    pub key: String,
    /// What to look at, in the guide's words.
    pub check: String,
}

/// A label (nameplate) and the fields the guide says it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    /// Answer key: `label.<key>`.
    pub key: String,
    pub title: String,
    pub fields: Vec<String>,
}

/// What a visual inspection of the DUT checks: seals and labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectionProfile {
    pub seals: Vec<Seal>,
    pub labels: Vec<Label>,
    pub source: String,
}

/// `0x7E0` or `2016`.
fn parse_int(s: &str) -> Option<u64> {
    let t = s.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => t.parse().ok(),
    }
}

/// Hash text as the LCD and the certificate show it: hex digits.
fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A measuring port of the DUT (one meter of a multi-meter housing) and the scanning
/// head of a position that sits over its LED; which counter channel that head is wired
/// to is the station's business.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Port {
    pub name: String,
    /// 1 for the position's first head.
    pub head: u8,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatedCurrents {
    pub ist: f64,
    pub imin: f64,
    pub itr: f64,
    pub iref: f64,
    pub imax: f64,
}

impl RatedCurrents {
    pub fn get(&self, c: RatedCurrent) -> f64 {
        match c {
            RatedCurrent::Ist => self.ist,
            RatedCurrent::Imin => self.imin,
            RatedCurrent::Itr => self.itr,
            RatedCurrent::Iref => self.iref,
            RatedCurrent::Imax => self.imax,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Fixture {
    pub file: LoadedFile,
    pub id: String,
    pub manufacturer: String,
    pub device_type: String,
    pub description: String,
    pub accuracy_class: String,
    pub meter_constant_imp_per_kwh: f64,
    pub rated: RatedCurrents,
    pub nominal_voltage_v: f64,
    pub frequency_hz: f64,
    pub wirings: Vec<Wiring>,
    pub max_voltage_v: f64,
    pub max_current_a: f64,
    pub ratings_source: String,
    pub ports: Vec<Port>,
    pub min_pulses: BTreeMap<RatedCurrent, u64>,
    pub min_pulses_source: String,
    pub can: Option<CanProfile>,
    /// The software identities the type-examination certificate allows (empty: none declared).
    pub certified_software: Vec<CertifiedIdentity>,
    pub certified_software_source: Option<String>,
    /// The guide's instruction when the meter does not start (shown with the ERROR).
    pub startup_fault: Option<String>,
    pub register: Option<RegisterProfile>,
    pub inspection: Option<InspectionProfile>,
    pub source: String,
    /// Its operator-facing texts in other languages (the station panel's): port names
    /// and descriptions, the start-up fault's instruction, seals and labels.
    pub translations: crate::translations::Translations,
}

pub const FIXTURE_SCHEMA: &str = "meterbench.fixture/2";

impl Fixture {
    pub fn load(path: &Path) -> Result<Fixture, DataError> {
        Fixture::from_file(LoadedFile::read(path)?)
    }

    pub fn from_file(file: LoadedFile) -> Result<Fixture, DataError> {
        if file
            .text
            .lines()
            .any(|l| l.trim() == "schema: meterbench.fixture/1")
        {
            return Err(DataError::at(
                &file.path,
                Pos { line: 1, column: 1 },
                "this is a meterbench.fixture/1 file; in version 2 a port names the scanning head over its LED (`head: 1`) instead of a counter channel, which the station's rack now declares per position. See fixtures/cpim1000.yaml",
            ));
        }
        let raw: raw::Fixture = file.parse()?;
        let path = file.path.clone();
        let err = |pos: Pos, m: String| DataError::at(&path, pos, m);

        if raw.schema.value != FIXTURE_SCHEMA {
            return Err(err(
                Pos::of(&raw.schema),
                format!("schema `{}` is not `{FIXTURE_SCHEMA}`", raw.schema.value),
            ));
        }
        if !["A", "B", "C"].contains(&raw.accuracy_class.value.as_str()) {
            return Err(err(
                Pos::of(&raw.accuracy_class),
                format!(
                    "accuracy class `{}` is not A, B or C",
                    raw.accuracy_class.value
                ),
            ));
        }
        for (name, v, range) in [
            (
                "meter_constant_imp_per_kwh",
                &raw.meter_constant_imp_per_kwh,
                bounds::METER_CONSTANT,
            ),
            (
                "nominal_voltage_v",
                &raw.nominal_voltage_v,
                bounds::VOLTAGE_V,
            ),
            ("frequency_hz", &raw.frequency_hz, bounds::FREQUENCY_HZ),
            (
                "ratings.max_voltage_v",
                &raw.ratings.max_voltage_v,
                bounds::VOLTAGE_V,
            ),
            (
                "ratings.max_current_a",
                &raw.ratings.max_current_a,
                bounds::CURRENT_A,
            ),
        ] {
            bounds::spanned(&path, name, v, range)?;
        }
        let rc = &raw.rated_currents_a.value;
        let ordered = [rc.ist, rc.imin, rc.itr, rc.iref, rc.imax];
        if ordered
            .iter()
            .any(|&c| !(c.is_finite() && c > 0.0 && c <= bounds::CURRENT_A.hi))
            || ordered.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(err(
                Pos::of(&raw.rated_currents_a),
                "rated currents must be positive and ordered Ist < Imin < Itr < Iref < Imax".into(),
            ));
        }
        if raw.ratings.max_current_a.value < rc.imax {
            return Err(err(
                Pos::of(&raw.ratings.max_current_a),
                format!(
                    "max_current_a {} is below Imax {}",
                    raw.ratings.max_current_a.value, rc.imax
                ),
            ));
        }
        if raw.wirings.value.is_empty() {
            return Err(err(
                Pos::of(&raw.wirings),
                "at least one wiring is needed".into(),
            ));
        }
        if raw.ports.value.is_empty() {
            return Err(err(
                Pos::of(&raw.ports),
                "at least one port is needed".into(),
            ));
        }
        let mut ports: Vec<Port> = Vec::new();
        for p in &raw.ports.value {
            if ports.iter().any(|q| q.name == p.value.name) {
                return Err(err(
                    Pos::of(p),
                    format!("port `{}` is declared twice", p.value.name),
                ));
            }
            let head = p.value.head.value;
            if head == 0 {
                return Err(err(
                    Pos::of(&p.value.head),
                    "scanning heads are numbered from 1".into(),
                ));
            }
            if ports.iter().any(|q| q.head == head) {
                return Err(err(
                    Pos::of(&p.value.head),
                    format!("scanning head {head} sits over two ports"),
                ));
            }
            ports.push(Port {
                name: p.value.name.clone(),
                head,
                description: p.value.description.clone(),
            });
        }
        let mut min_pulses = BTreeMap::new();
        for (name, n) in &raw.repeatability_min_pulses.pulses.value {
            bounds::count(
                &path,
                Pos::of(n),
                "a minimum pulse count",
                n.value,
                bounds::PULSES,
            )?;
            let Some(current) = RatedCurrent::parse(name) else {
                return Err(err(
                    Pos::of(&raw.repeatability_min_pulses.pulses),
                    format!("`{name}` is not a rated current (Ist, Imin, Itr, Iref, Imax)"),
                ));
            };
            if n.value == 0 {
                return Err(err(
                    Pos::of(n),
                    "a minimum pulse count must be at least 1".into(),
                ));
            }
            min_pulses.insert(current, n.value);
        }

        let can = match &raw.can {
            None => None,
            Some(c) => {
                let v = &c.value;
                const SLCAN_KBPS: [u32; 9] = [10, 20, 50, 100, 125, 250, 500, 800, 1000];
                if !SLCAN_KBPS.contains(&v.bitrate_kbps.value) {
                    return Err(err(
                        Pos::of(&v.bitrate_kbps),
                        format!(
                            "bitrate {} kbit/s is not one of {SLCAN_KBPS:?}",
                            v.bitrate_kbps.value
                        ),
                    ));
                }
                let id = |s: &Spanned<String>| -> Result<u32, DataError> {
                    parse_int(&s.value)
                        .filter(|&x| x <= 0x1FFF_FFFF)
                        .map(|x| x as u32)
                        .ok_or_else(|| {
                            err(
                                Pos::of(s),
                                format!(
                                    "`{}` is not a CAN identifier (0x0 .. 0x1FFFFFFF)",
                                    s.value
                                ),
                            )
                        })
                };
                let did = |s: &Spanned<String>| -> Result<u16, DataError> {
                    parse_int(&s.value)
                        .filter(|&x| x <= 0xFFFF)
                        .map(|x| x as u16)
                        .ok_or_else(|| {
                            err(
                                Pos::of(s),
                                format!(
                                    "`{}` is not a data identifier (0x0000 .. 0xFFFF)",
                                    s.value
                                ),
                            )
                        })
                };
                let (request_id, response_id) = (id(&v.request_id)?, id(&v.response_id)?);
                if request_id == response_id {
                    return Err(err(
                        Pos::of(&v.response_id),
                        "the response id must differ from the request id".into(),
                    ));
                }
                let mut did_lrs_hash = BTreeMap::new();
                for (port, d) in &v.dids.lrs_hash.value {
                    if !ports.iter().any(|p| &p.name == port) {
                        return Err(err(
                            Pos::of(d),
                            format!("`{port}` is not a port of this fixture"),
                        ));
                    }
                    did_lrs_hash.insert(port.clone(), did(d)?);
                }
                if let Some(p) = ports.iter().find(|p| !did_lrs_hash.contains_key(&p.name)) {
                    return Err(err(
                        Pos::of(&v.dids.lrs_hash),
                        format!("port `{}` has no LRS hash identifier", p.name),
                    ));
                }
                let mut did_energy_register = BTreeMap::new();
                if let Some(regs) = &v.dids.energy_register {
                    for (port, d) in &regs.value {
                        if !ports.iter().any(|p| &p.name == port) {
                            return Err(err(
                                Pos::of(d),
                                format!("`{port}` is not a port of this fixture"),
                            ));
                        }
                        did_energy_register.insert(port.clone(), did(d)?);
                    }
                    if let Some(p) = ports
                        .iter()
                        .find(|p| !did_energy_register.contains_key(&p.name))
                    {
                        return Err(err(
                            Pos::of(regs),
                            format!("port `{}` has no energy register identifier", p.name),
                        ));
                    }
                }
                Some(CanProfile {
                    did_energy_register,
                    assumed: v.assumed,
                    bitrate_kbps: v.bitrate_kbps.value,
                    request_id,
                    response_id,
                    extended: request_id > 0x7FF || response_id > 0x7FF,
                    did_software_version: did(&v.dids.software_version)?,
                    did_software_hash: did(&v.dids.software_hash)?,
                    did_lrs_hash,
                    source: v.source.clone(),
                })
            }
        };
        let mut certified_software = Vec::new();
        if let Some(sw) = &raw.software {
            if sw.certified.value.is_empty() {
                return Err(err(
                    Pos::of(&sw.certified),
                    "list at least one certified identity (or leave `software` out)".into(),
                ));
            }
            for c in &sw.certified.value {
                let i = &c.value;
                for (name, h) in [
                    ("software_hash", &i.software_hash),
                    ("lrs_hash", &i.lrs_hash),
                ] {
                    if !is_hex(h) {
                        return Err(err(Pos::of(c), format!("{name} `{h}` is not hexadecimal")));
                    }
                }
                certified_software.push(i.clone());
            }
        }

        let register = match &raw.register {
            None => None,
            Some(r) => {
                if r.value.unit.value != "kWh" {
                    return Err(err(
                        Pos::of(&r.value.unit),
                        format!("register unit `{}` is not kWh", r.value.unit.value),
                    ));
                }
                let decimals = r.value.decimals.value;
                if decimals > 6 {
                    return Err(err(
                        Pos::of(&r.value.decimals),
                        format!("{decimals} decimals of a kWh register is beyond a milliwatt-hour"),
                    ));
                }
                Some(RegisterProfile {
                    decimals,
                    resolution_wh: 1000.0 / 10f64.powi(decimals as i32),
                    source: r.value.source.clone(),
                })
            }
        };
        let inspection = match &raw.inspection {
            None => None,
            Some(i) => {
                let mut keys: Vec<&str> = Vec::new();
                for (key, pos) in i
                    .value
                    .seals
                    .iter()
                    .map(|s| (s.value.key.as_str(), Pos::of(s)))
                    .chain(
                        i.value
                            .labels
                            .iter()
                            .map(|l| (l.value.key.as_str(), Pos::of(l))),
                    )
                {
                    if key.is_empty()
                        || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    {
                        return Err(err(
                            pos,
                            format!("key `{key}` must be letters, digits and _"),
                        ));
                    }
                    if keys.contains(&key) {
                        return Err(err(pos, format!("key `{key}` is used twice")));
                    }
                    keys.push(key);
                }
                if let Some(l) = i.value.labels.iter().find(|l| l.value.fields.is_empty()) {
                    return Err(err(
                        Pos::of(l),
                        format!("label `{}` lists no fields", l.value.key),
                    ));
                }
                Some(InspectionProfile {
                    seals: i.value.seals.iter().map(|s| s.value.clone()).collect(),
                    labels: i.value.labels.iter().map(|l| l.value.clone()).collect(),
                    source: i.value.source.clone(),
                })
            }
        };

        let mut texts: std::collections::BTreeSet<&str> = ports
            .iter()
            .flat_map(|p| [p.name.as_str(), p.description.as_str()])
            .chain(raw.startup_fault.as_deref())
            .collect();
        if let Some(i) = &inspection {
            texts.extend(i.seals.iter().map(|s| s.check.as_str()));
            for l in &i.labels {
                texts.insert(&l.title);
                texts.extend(l.fields.iter().map(String::as_str));
            }
        }
        let translations = crate::translations::Translations::check(
            &file.path,
            raw.translations.as_ref(),
            &texts,
            "port names and descriptions, the start-up fault, seal checks, label titles and fields",
        )?;
        Ok(Fixture {
            translations,
            register,
            inspection,
            can,
            certified_software,
            certified_software_source: raw.software.as_ref().map(|s| s.source.clone()),
            startup_fault: raw.startup_fault.clone(),
            id: raw.id,
            manufacturer: raw.device.manufacturer,
            device_type: raw.device.type_name,
            description: raw.device.description,
            accuracy_class: raw.accuracy_class.value,
            meter_constant_imp_per_kwh: raw.meter_constant_imp_per_kwh.value,
            rated: RatedCurrents {
                ist: rc.ist,
                imin: rc.imin,
                itr: rc.itr,
                iref: rc.iref,
                imax: rc.imax,
            },
            nominal_voltage_v: raw.nominal_voltage_v.value,
            frequency_hz: raw.frequency_hz.value,
            wirings: raw.wirings.value,
            max_voltage_v: raw.ratings.max_voltage_v.value,
            max_current_a: raw.ratings.max_current_a.value,
            ratings_source: raw.ratings.source,
            ports,
            min_pulses,
            min_pulses_source: raw.repeatability_min_pulses.source,
            source: raw.source,
            file,
        })
    }

    /// What the maker's guide says to do when the meter does not come up (a silent
    /// meter, or the boot-loader fault on its LCD).
    pub fn startup_fault_hint(&self) -> String {
        match &self.startup_fault {
            Some(h) => h.clone(),
            None => format!("the {} did not answer", self.device_type),
        }
    }

    pub fn port(&self, name: &str) -> Option<&Port> {
        self.ports.iter().find(|p| p.name == name)
    }
}
