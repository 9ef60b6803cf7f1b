//! The air the points are measured in (ISO/IEC 17025 7.8.4.1 b): read from the station's
//! climate sensor before anything is switched on and as each point begins and ends,
//! compared with the procedure's reference conditions. A point measured outside them
//! keeps its numbers but loses its statement of conformity: its limit holds at the
//! reference conditions only.

use crate::measure::Ctx;
use crate::record::{AmbientReadingRecord, AmbientSetup, PointAmbient, StepKind, StepRecord};
use meterbench_instruments::InstrumentError;
use meterbench_procedure::ReferenceConditions;

/// Whether a step's air is read: every energised step that decides about the device
/// (its accuracy, current and register points and its starting and no-load tests).
pub(crate) fn measured_in_air(kind: StepKind) -> bool {
    matches!(
        kind,
        StepKind::Accuracy
            | StepKind::Current
            | StepKind::Register
            | StepKind::Starting
            | StepKind::NoLoad
    )
}

/// One reading now; `None` when the bench has no climate sensor bound.
pub(crate) fn read(ctx: &mut Ctx<'_, '_>) -> Result<Option<AmbientReadingRecord>, InstrumentError> {
    let t_s = ctx.elapsed_s();
    let Some(sensor) = ctx.climate.as_deref_mut() else {
        return Ok(None);
    };
    let r = sensor.read()?;
    Ok(Some(AmbientReadingRecord {
        t_s,
        temperature_c: r.temperature_c,
        humidity_percent_rh: r.humidity_percent_rh,
    }))
}

/// What the run records of its reference conditions and the sensor's uncertainty.
pub(crate) fn setup(ctx: &Ctx<'_, '_>, reference: &ReferenceConditions) -> AmbientSetup {
    let climate = ctx.req.station.climate.as_ref();
    AmbientSetup {
        reference: reference.clone(),
        temperature_u_k2_c: climate.map_or(0.0, |c| c.temperature_u_k2_c),
        humidity_u_k2_percent_rh: climate.map_or(0.0, |c| c.humidity_u_k2_percent_rh),
        uncertainty_source: climate.map_or_else(String::new, |c| c.uncertainty_source.clone()),
        at_start: None,
    }
}

/// Why a reading is outside, in words, or `None`.
pub(crate) fn outside(reference: &ReferenceConditions, r: &AmbientReadingRecord) -> Option<String> {
    reference.outside_because(r.temperature_c, r.humidity_percent_rh)
}

/// The air over a point from its readings; outside when any reading is.
pub(crate) fn over_point(
    reference: &ReferenceConditions,
    readings: Vec<AmbientReadingRecord>,
) -> PointAmbient {
    let outside = readings
        .iter()
        .filter_map(|r| outside(reference, r))
        .collect::<Vec<_>>();
    PointAmbient {
        readings,
        outside: (!outside.is_empty()).then(|| outside.join("; then ")),
    }
}

/// Mark a point measured outside the reference conditions: every port's statement of
/// conformity is withdrawn and the step says why.
pub(crate) fn mark_outside(step: &mut StepRecord, reference: &ReferenceConditions, why: &str) {
    for port in &mut step.ports {
        if let Some(r) = port.result.as_mut() {
            r.withdraw_statement();
        }
    }
    step.message = Some(format!(
        "measured outside the reference conditions ({why}; the procedure's are {}, {}): no statement of conformity",
        reference.describe(),
        reference.source
    ));
}
