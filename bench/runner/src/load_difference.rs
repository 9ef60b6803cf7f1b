//! The single-phase load check, judged from the record once the source is off: each
//! port's single-phase points against its balanced point, by their latest attempts (so
//! a retested point is compared as retested).

use crate::measure::Slot;
use crate::record::{LoadComparison, PortResult, RunRecord, StepRecord};
use meterbench_metrology::{DecisionRule, PointError, load_difference};
use meterbench_procedure::LoadDifferenceStep;

/// Fill each slot's ports from its position's record. A port without a result at one of
/// the named points (not measured in this run) is a fault of that position: nothing is
/// compared that was not measured.
pub(crate) fn compare(
    check: &LoadDifferenceStep,
    rule: DecisionRule,
    slots: &mut [Slot],
    records: &[&RunRecord],
) {
    for slot in slots.iter_mut() {
        let latest = records[slot.device].latest_attempts();
        let step_named = |name: &str| latest.iter().copied().find(|s| s.name == name);
        let mut fault = None;
        for port in &mut slot.step.ports {
            let point = |name: &str| -> Result<(PointError, &StepRecord), String> {
                let step = step_named(name)
                    .ok_or_else(|| format!("step `{name}` was not measured in this run"))?;
                match step.ports.iter().find(|p| p.port == port.port) {
                    Some(crate::record::PortRecord {
                        result:
                            Some(PortResult::Accuracy {
                                error_percent,
                                budget,
                                ..
                            }),
                        ..
                    }) => Ok((PointError::of(*error_percent, budget), step)),
                    _ => Err(format!(
                        "step `{name}` has no result for port {}",
                        port.port
                    )),
                }
            };
            let compared = (|| {
                let (balanced, _) = point(&check.balanced)?;
                let mut comparisons = Vec::new();
                for name in &check.single_phase {
                    let (single, step) = point(name)?;
                    comparisons.push(LoadComparison {
                        step: name.clone(),
                        phases: step.load.phases.clone(),
                        error_percent: single.error_percent,
                        difference: load_difference(
                            rule,
                            balanced,
                            single,
                            check.max_difference_percent,
                        ),
                    });
                }
                Ok::<_, String>((balanced, comparisons))
            })();
            match compared {
                Ok((balanced, comparisons)) => {
                    port.result = Some(PortResult::LoadDifference {
                        balanced_step: check.balanced.clone(),
                        balanced_error_percent: balanced.error_percent,
                        passed: comparisons.iter().all(|c| c.difference.decision.accepted),
                        comparisons,
                        limit_percent: check.max_difference_percent,
                        limit_source: check.source.clone(),
                    })
                }
                Err(why) => {
                    fault.get_or_insert(format!("{why}: no difference to take"));
                }
            }
        }
        if let Some(message) = fault {
            slot.fault(message);
        }
    }
}
