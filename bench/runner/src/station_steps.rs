//! Steps about the device itself rather than its measurements: its software identity
//! (over its own interface or from its LCD) and the visual inspection. Each position is
//! asked on its own; a device that cannot answer is that position's ERROR.

use crate::StepStop;
use crate::identity::check_identity;
use crate::measure::{Ctx, Slot};
use crate::plan::PlannedStep;
use crate::record::*;
use meterbench_instruments::SoftwareReading;
use meterbench_procedure::{Fixture, IdentitySource, IdentityStep, InspectionStep};

/// Power the meters (nominal voltage, no current), read each one's software identity
/// and compare it with the certified ones: per port, the version and software hash (the
/// meter's) and the port's LRS hash.
pub(crate) fn identity(
    ps: &PlannedStep,
    i: &IdentityStep,
    fixture: &Fixture,
    slots: &mut [Slot],
    ctx: &mut Ctx<'_, '_>,
) -> Result<(), StepStop> {
    ctx.energise(&ps.setpoint)?;
    ctx.wait(i.settle_s)?;
    for slot in slots.iter_mut() {
        slot.step.physical_floor_s = i.settle_s;
        let read = match i.read_from {
            IdentitySource::Can => match ctx.devices[slot.device].software.as_deref_mut() {
                None => Err(StepStop::Position(format!(
                    "step `{}` reads the software identity over CAN, but the station binds no DUT interface for it (the position's `can:`)",
                    ps.name
                ))),
                Some(dut) => {
                    let hint = fixture.startup_fault_hint();
                    dut.read_identity()
                        .map(|r| (r, Vec::new()))
                        .map_err(|e| StepStop::Position(format!("{e}. {hint}")))
                }
            },
            IdentitySource::Lcd => identity_from_lcd(ps, fixture, slot.device, ctx),
        };
        let (reading, flags) = match read {
            Ok(r) => r,
            Err(StepStop::Position(m)) => {
                slot.fault(m);
                continue;
            }
            Err(e) => return Err(e),
        };
        let (certified, mismatches) = check_identity(&reading, &fixture.certified_software);
        for port in &mut slot.step.ports {
            let lrs = reading
                .lrs_hash
                .iter()
                .find(|(p, _)| *p == port.port)
                .map(|(_, h)| h.clone())
                .unwrap_or_default();
            let mine: Vec<String> = mismatches
                .iter()
                .filter(|m| m.port.as_deref().is_none_or(|p| p == port.port))
                .map(ToString::to_string)
                .collect();
            port.result = Some(PortResult::Identity {
                read_from: i.read_from,
                software_version: reading.software_version.clone(),
                software_hash: reading.software_hash.clone(),
                lrs_hash: lrs,
                certified: certified.cloned(),
                passed: mine.is_empty(),
                mismatches: mine,
                lcd_flags: flags
                    .iter()
                    .find(|(p, _)| *p == port.port)
                    .map(|(_, f): &(String, String)| f.clone()),
            });
        }
        if !mismatches.is_empty() {
            let all: Vec<String> = mismatches.iter().map(ToString::to_string).collect();
            slot.step.message = Some(all.join("; "));
        }
    }
    Ok(())
}

/// The identity as the LCD shows it, asked of the operator (or the answers file), and
/// each port's flags as shown. The LCD shows one LRS hash for the meter; it stands for
/// every port.
fn identity_from_lcd(
    ps: &PlannedStep,
    fixture: &Fixture,
    device: usize,
    ctx: &mut Ctx<'_, '_>,
) -> Result<(SoftwareReading, Vec<(String, String)>), StepStop> {
    let q = crate::questions::lcd_identity(fixture);
    if ctx.ask(device, ps, &q.startup_fault)? == "yes" {
        return Err(StepStop::Position(fixture.startup_fault_hint()));
    }
    let version = ctx.ask(device, ps, &q.software_version)?;
    let software_hash = ctx.ask(device, ps, &q.software_hash)?;
    let lrs = ctx.ask(device, ps, &q.lrs_hash)?;
    let mut flags = Vec::new();
    for (port, question) in &q.flags {
        flags.push((port.clone(), ctx.ask(device, ps, question)?));
    }
    Ok((
        SoftwareReading {
            software_version: version,
            software_hash,
            lrs_hash: fixture
                .ports
                .iter()
                .map(|p| (p.name.clone(), lrs.clone()))
                .collect(),
        },
        flags,
    ))
}

/// Scan each device's serial number, confirm the fixture's seals and the procedure's
/// labels. The devices are not powered: nothing is switched on.
pub(crate) fn inspection(
    ps: &PlannedStep,
    i: &InspectionStep,
    fixture: &Fixture,
    slots: &mut [Slot],
    ctx: &mut Ctx<'_, '_>,
) -> Result<(), StepStop> {
    for slot in slots.iter_mut() {
        match inspect(ps, i, fixture, slot, ctx) {
            Ok(()) => {}
            Err(StepStop::Position(m)) => slot.fault(m),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn inspect(
    ps: &PlannedStep,
    i: &InspectionStep,
    fixture: &Fixture,
    slot: &mut Slot,
    ctx: &mut Ctx<'_, '_>,
) -> Result<(), StepStop> {
    let device = slot.device;
    let mut problems = Vec::new();
    let mut checks = Vec::new();
    let mut scanned_serial = None;
    let mut rescanned: Option<String> = None;
    if i.scan_serial {
        let expected = ctx.devices[device].serial.clone();
        let mut s = ctx.ask(device, ps, &crate::questions::serial_scan())?;
        // Another serial number: scanned again once (a misread label, a slip of the
        // hand); another one again is another device than the run's. The record keeps
        // the first scan either way.
        if s != expected {
            let first = std::mem::take(&mut s);
            s = ctx.ask(
                device,
                ps,
                &crate::questions::serial_rescan(&first, &expected),
            )?;
            rescanned = Some(first);
        }
        if s != expected {
            let first = rescanned
                .as_deref()
                .map(|f| format!("; the first scan read {f}"))
                .unwrap_or_default();
            problems.push(format!(
                "the scanned serial number {s} is not the one this run is for ({expected}){first}; its seals and labels were not asked about"
            ));
        }
        scanned_serial = Some(s);
    }
    // Another device than the run's: nothing it shows can count for this run, so the
    // operator is not asked about its seals and labels.
    let confirmations = if problems.is_empty() {
        crate::questions::confirmations(i, fixture)
    } else {
        Vec::new()
    };
    for c in confirmations {
        let confirmed = ctx.ask(device, ps, &c.question)? == "yes";
        if !confirmed {
            problems.push(c.problem);
        }
        checks.push(InspectionCheck {
            key: c.question.key,
            what: c.what,
            confirmed,
        });
    }
    for port in &mut slot.step.ports {
        port.result = Some(PortResult::Inspection {
            scanned_serial: scanned_serial.clone(),
            checks: checks.clone(),
            problems: problems.clone(),
            passed: problems.is_empty(),
        });
    }
    if !problems.is_empty() {
        slot.step.message = Some(problems.join("; "));
    } else if let Some(first) = rescanned {
        slot.step.message = Some(format!(
            "the serial number was scanned again: the first scan read {first}"
        ));
    }
    Ok(())
}
