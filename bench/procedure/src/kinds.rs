//! The kinds of device under test and their files. A meter (pulses against the
//! reference) and a current sensor (readings against the reference current) have a
//! fixture and procedure schema each; a file says which by its `schema:`, and a
//! procedure runs only with a fixture of its kind.

use crate::Procedure;
use crate::answers::Answers;
use crate::fixture::Fixture;
use crate::sensor::{SensorFixture, SensorProcedure};
use crate::station::Station;
use crate::yaml::{DataError, LoadedFile, Pos};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What kind of device a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// An energy meter: its LED (or S0) pulses counted against the reference energy.
    Meter,
    /// A current sensor: its own readings against the reference current.
    CurrentSensor,
}

impl DeviceKind {
    /// `meter`, `current sensor`: for messages.
    pub fn words(self) -> &'static str {
        match self {
            DeviceKind::Meter => "meter",
            DeviceKind::CurrentSensor => "current sensor",
        }
    }
}

/// The schemas of the data files, for messages.
const KNOWN_SCHEMAS: &str = "meterbench.procedure/1, meterbench.fixture/2, meterbench.sensor-procedure/1, meterbench.sensor-fixture/1, meterbench.station/2 or meterbench.answers/1";

#[derive(Deserialize)]
struct SchemaOnly {
    schema: String,
}

/// The `schema:` of a data file: what kind of file it is. A file that is not YAML at
/// all (a tab, a duplicate key, a NaN, nesting too deep, an alias bomb) is reported for
/// what is wrong with it, at its position, not as a file without a schema.
pub fn schema_of(file: &LoadedFile) -> Result<String, DataError> {
    match file.parse::<SchemaOnly>() {
        Ok(head) => Ok(head.schema),
        Err(e) if e.message.starts_with("missing field `schema`") => Err(DataError::at(
            &file.path,
            Pos { line: 1, column: 1 },
            format!("no `schema:` naming what this file is ({KNOWN_SCHEMAS})"),
        )),
        // Something else in the file is wrong; when its `schema:` line is plain, the
        // loader of that kind reports the problem, in the words `run` uses.
        Err(e) => file
            .text
            .lines()
            .find_map(|l| l.strip_prefix("schema:"))
            .map(|v| {
                v.split('#')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .trim_matches(['"', '\''])
            })
            .filter(|v| !v.is_empty() && !v.contains([' ', '[', '{']))
            .map(str::to_string)
            .ok_or(e),
    }
}

/// The fixture of a device under test, of either kind.
#[derive(Debug, Clone)]
pub enum DutFixture {
    Meter(Box<Fixture>),
    CurrentSensor(Box<SensorFixture>),
}

/// A procedure, of either kind.
#[derive(Debug, Clone)]
pub enum DutProcedure {
    Meter(Box<Procedure>),
    CurrentSensor(Box<SensorProcedure>),
}

/// Any data file the bench reads.
#[derive(Debug, Clone)]
pub enum DataFile {
    Procedure(DutProcedure),
    Fixture(DutFixture),
    Station(Box<Station>),
    Answers(Box<Answers>),
}

impl DataFile {
    /// Read a data file of whatever kind its `schema:` names.
    pub fn load(path: &Path) -> Result<DataFile, DataError> {
        let file = LoadedFile::read(path)?;
        let schema = schema_of(&file)?;
        let family = schema.split('/').next().unwrap_or_default();
        Ok(match family {
            "meterbench.procedure" => {
                DataFile::Procedure(DutProcedure::Meter(Box::new(Procedure::from_file(file)?)))
            }
            "meterbench.sensor-procedure" => DataFile::Procedure(DutProcedure::CurrentSensor(
                Box::new(SensorProcedure::from_file(file)?),
            )),
            "meterbench.fixture" => {
                DataFile::Fixture(DutFixture::Meter(Box::new(Fixture::from_file(file)?)))
            }
            "meterbench.sensor-fixture" => DataFile::Fixture(DutFixture::CurrentSensor(Box::new(
                SensorFixture::from_file(file)?,
            ))),
            "meterbench.station" => DataFile::Station(Box::new(Station::from_file(file)?)),
            "meterbench.answers" => DataFile::Answers(Box::new(Answers::from_file(file)?)),
            _ => {
                return Err(DataError::at(
                    path,
                    Pos { line: 1, column: 1 },
                    format!("unknown schema `{schema}` (known: {KNOWN_SCHEMAS})"),
                ));
            }
        })
    }

    /// What kind of file it is, in words.
    pub fn what(&self) -> String {
        match self {
            DataFile::Procedure(p) => format!("{} procedure", p.kind().words()),
            DataFile::Fixture(f) => format!("{} fixture", f.kind().words()),
            DataFile::Station(_) => "station".into(),
            DataFile::Answers(_) => "answers file".into(),
        }
    }
}

/// A file whose `schema:` names another kind of data file than `wanted` (a schema family,
/// such as `meterbench.station`): refused as such, instead of with the fields the wanted
/// kind does not know. A schema that is no known kind is left to the loader to refuse.
pub(crate) fn refuse_another_kind(
    file: &LoadedFile,
    wanted: &str,
    wanted_words: &str,
) -> Result<(), DataError> {
    let Ok(schema) = schema_of(file) else {
        return Ok(());
    };
    let family = schema.split('/').next().unwrap_or_default();
    let words = match family {
        "meterbench.procedure" => "meter procedure",
        "meterbench.sensor-procedure" => "current sensor procedure",
        "meterbench.fixture" => "meter fixture",
        "meterbench.sensor-fixture" => "current sensor fixture",
        "meterbench.station" => "station",
        "meterbench.answers" => "answers file",
        _ => return Ok(()),
    };
    if family == wanted {
        return Ok(());
    }
    Err(DataError::at(
        &file.path,
        Pos { line: 1, column: 1 },
        format!(
            "this is {} (`schema: {schema}`), not {wanted_words}",
            with_article(words)
        ),
    ))
}

/// `words` with its indefinite article ("an answers file", "a station").
fn with_article(words: &str) -> String {
    let article = if words.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {words}")
}

fn not_a(path: &Path, wanted: &str, got: &DataFile) -> DataError {
    DataError::at(
        path,
        Pos { line: 1, column: 1 },
        format!(
            "this is {}, not {}",
            with_article(&got.what()),
            with_article(wanted)
        ),
    )
}

impl DutFixture {
    /// Its operator-facing texts in other languages.
    pub fn translations(&self) -> &crate::translations::Translations {
        match self {
            DutFixture::Meter(f) => &f.translations,
            DutFixture::CurrentSensor(f) => &f.translations,
        }
    }

    pub fn load(path: &Path) -> Result<DutFixture, DataError> {
        match DataFile::load(path)? {
            DataFile::Fixture(f) => Ok(f),
            other => Err(not_a(path, "fixture", &other)),
        }
    }

    pub fn kind(&self) -> DeviceKind {
        match self {
            DutFixture::Meter(_) => DeviceKind::Meter,
            DutFixture::CurrentSensor(_) => DeviceKind::CurrentSensor,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            DutFixture::Meter(f) => &f.id,
            DutFixture::CurrentSensor(f) => &f.id,
        }
    }

    pub fn file(&self) -> &LoadedFile {
        match self {
            DutFixture::Meter(f) => &f.file,
            DutFixture::CurrentSensor(f) => &f.file,
        }
    }

    pub fn manufacturer(&self) -> &str {
        match self {
            DutFixture::Meter(f) => &f.manufacturer,
            DutFixture::CurrentSensor(f) => &f.manufacturer,
        }
    }

    pub fn device_type(&self) -> &str {
        match self {
            DutFixture::Meter(f) => &f.device_type,
            DutFixture::CurrentSensor(f) => &f.device_type,
        }
    }

    /// The device's measuring ports (a meter's) or channels (a sensor's), in order.
    pub fn port_names(&self) -> Vec<String> {
        match self {
            DutFixture::Meter(f) => f.ports.iter().map(|p| p.name.clone()).collect(),
            DutFixture::CurrentSensor(f) => f.channels.iter().map(|c| c.name.clone()).collect(),
        }
    }

    pub fn as_meter(&self) -> Option<&Fixture> {
        match self {
            DutFixture::Meter(f) => Some(f),
            DutFixture::CurrentSensor(_) => None,
        }
    }

    pub fn as_sensor(&self) -> Option<&SensorFixture> {
        match self {
            DutFixture::CurrentSensor(f) => Some(f),
            DutFixture::Meter(_) => None,
        }
    }
}

impl DutProcedure {
    /// Its operator-facing texts in other languages.
    pub fn translations(&self) -> &crate::translations::Translations {
        match self {
            DutProcedure::Meter(p) => &p.translations,
            DutProcedure::CurrentSensor(p) => &p.translations,
        }
    }

    pub fn load(path: &Path) -> Result<DutProcedure, DataError> {
        match DataFile::load(path)? {
            DataFile::Procedure(p) => Ok(p),
            other => Err(not_a(path, "procedure", &other)),
        }
    }

    pub fn kind(&self) -> DeviceKind {
        match self {
            DutProcedure::Meter(_) => DeviceKind::Meter,
            DutProcedure::CurrentSensor(_) => DeviceKind::CurrentSensor,
        }
    }

    pub fn file(&self) -> &LoadedFile {
        match self {
            DutProcedure::Meter(p) => &p.file,
            DutProcedure::CurrentSensor(p) => &p.file,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            DutProcedure::Meter(p) => &p.id,
            DutProcedure::CurrentSensor(p) => &p.id,
        }
    }

    pub fn version(&self) -> &str {
        match self {
            DutProcedure::Meter(p) => &p.version,
            DutProcedure::CurrentSensor(p) => &p.version,
        }
    }

    /// What a run with a verdict issues (a sensor's calibration: a certificate).
    pub fn document(&self) -> crate::DocumentKind {
        match self {
            DutProcedure::Meter(p) => p.document,
            DutProcedure::CurrentSensor(_) => crate::DocumentKind::CalibrationCertificate,
        }
    }

    /// The smallest MPE/U at which a point gets a statement of conformity.
    /// Its steps' names, in order.
    pub fn step_names(&self) -> Vec<String> {
        match self {
            DutProcedure::Meter(p) => p.steps.iter().map(|s| s.name.clone()).collect(),
            DutProcedure::CurrentSensor(p) => p.steps.iter().map(|s| s.name.clone()).collect(),
        }
    }

    pub fn test_uncertainty_ratio(&self) -> &crate::UncertaintyRatio {
        match self {
            DutProcedure::Meter(p) => &p.test_uncertainty_ratio,
            DutProcedure::CurrentSensor(p) => &p.test_uncertainty_ratio,
        }
    }

    /// The ambient conditions its points must be measured in, when it declares them.
    pub fn reference_conditions(&self) -> Option<&crate::ReferenceConditions> {
        match self {
            DutProcedure::Meter(p) => p.reference_conditions.as_ref(),
            DutProcedure::CurrentSensor(p) => p.reference_conditions.as_ref(),
        }
    }

    pub fn title(&self) -> &str {
        match self {
            DutProcedure::Meter(p) => &p.title,
            DutProcedure::CurrentSensor(p) => &p.title,
        }
    }

    /// The procedure and the fixture fit: the same kind of device, and everything the
    /// procedure asks is there (ports, ranges, identifiers); before anything is
    /// switched on.
    pub fn check_against(&self, fixture: &DutFixture) -> Result<(), DataError> {
        match (self, fixture) {
            (DutProcedure::Meter(p), DutFixture::Meter(f)) => p.check_against(f),
            (DutProcedure::CurrentSensor(p), DutFixture::CurrentSensor(f)) => p.check_against(f),
            (p, f) => Err(DataError::at(
                &f.file().path,
                Pos { line: 1, column: 1 },
                format!(
                    "this is a {} fixture; procedure {} ({}) measures a {}: name a {} fixture",
                    f.kind().words(),
                    p.id(),
                    p.file().path.display(),
                    p.kind().words(),
                    p.kind().words()
                ),
            )),
        }
    }
}
