//! Pure metrology: no I/O, no clocks. Every number that is a rule of a standard
//! (limits, pulse minimums, durations) comes in as an argument from the
//! procedure or fixture; this crate only computes.

pub mod current;
pub mod decision;
pub mod error;
pub mod limits;
pub mod load;
pub mod load_difference;
pub mod pulses;
pub mod reference;
pub mod register;
pub mod stats;
pub mod tests_timing;
pub mod transition;
pub mod uncertainty;

pub use current::{current_budget, current_error_percent};
pub use decision::{Conformity, Decision, DecisionRule, decide, decide_at_ratio};
pub use error::{gated_error_percent, timed_error_percent};
pub use limits::{CurrentRange, LimitLookupError, LimitRule, LoadKind, PfRange, lookup_limit};
pub use load::{PfCharacter, PowerFactor, PowerFactorParseError};
pub use load_difference::{LoadDifference, PointError, load_difference};
pub use pulses::{physical_floor_s, pulse_frequency_hz, pulse_period_s};
pub use reference::{corrected_for_reference, drift_since_calibration_percent};
pub use register::{
    RegisterComparison, RegisterSteps, compare_register, min_register_energy_wh, parse_register,
    register_resolution_u_percent,
};
pub use stats::{PulseTrainScatter, RepeatStatistics, repeat_statistics};
pub use tests_timing::{no_load_duration_s, starting_pulse_period_s, starting_pulses_in_window};
pub use transition::{
    BracketEdge, StopReason, TransitionConfigError, TransitionEstimate, TransitionSearch,
    TransitionSearchConfig, transition_budget, transition_error_percent,
};
pub use uncertainty::{
    BudgetInputs, COVERAGE_PROBABILITY, Contribution, ReferenceMethod, UncertaintyBudget,
    coverage_factor, uncertainty_budget, welch_satterthwaite,
};

/// Joules in one kilowatt-hour.
pub const JOULES_PER_KWH: f64 = 3.6e6;
