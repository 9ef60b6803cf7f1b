//! The data layer: procedures, fixture profiles and station files.
//!
//! Every file is parsed in two stages: `raw` serde types mirror the YAML and reject
//! unknown keys; `TryFrom`-style validation builds the model the runner sees and checks
//! the semantics. Every error carries file, line and column.

pub mod answers;
pub mod audit_settings;
mod bounds;
pub mod conditions;
pub mod fixture;
pub mod gs1;
mod kinds;
pub mod procedure;
pub mod ratio;
pub mod station;
pub mod translations;
pub use station::{CounterRole, ReferenceRole, SourceRole};
pub mod sensor;
mod yaml;

pub use answers::{ANSWERS_SCHEMA, Answers};
pub use audit_settings::{AUDIT_SETTINGS_FILE, AUDIT_SETTINGS_SCHEMA, AuditSettings, CpkRule};
pub use conditions::{OutsidePolicy, ReferenceConditions};
pub use fixture::{
    CanProfile, CertifiedIdentity, Fixture, InspectionProfile, Label, Port, RatedCurrent,
    RatedCurrents, RegisterProfile, Seal, Wiring,
};
pub use kinds::{DataFile, DeviceKind, DutFixture, DutProcedure, schema_of};
pub use procedure::{
    AccuracyStep, CurrentSpec, DocumentKind, IdentitySource, IdentityStep, InspectionStep,
    LimitSpec, LoadDifferenceStep, NoLoadStep, Phase, PointLength, Procedure, PulseCheckStep,
    RegisterStep, StartingStep, Step, StepKind, StoppingRule,
};
pub use ratio::UncertaintyRatio;
pub use sensor::{SensorChannel, SensorFixture, SensorProcedure, SensorStep};
pub use station::{
    CalibrationRecord, ClimateRole, CorrectionRange, CorrectionValue, Driver, DutP1Spec, HeadInput,
    P1Request, PortSpec, Rack, RackPosition, ReferenceCorrection, RegisterFault, RoleBinding,
    SimClimateSpec, SimCounterSpec, SimCsp1Spec, SimDutSpec, SimFault, SimMeterSpec,
    SimPositionSpec, SimulationSpec, Station, UncertaintyByPf,
};
pub use yaml::{DataError, LoadedFile, Pos};
