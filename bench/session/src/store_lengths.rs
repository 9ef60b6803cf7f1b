//! The files' texts every run record carries into the results store, within the store's
//! columns (`schema.sql`): a longer one would be measured and certified, then refused by
//! the store. `run` refuses it before anything is switched on, and `validate` says so of
//! the file alone, naming the file and the text.

use crate::{PositionPlan, SessionError};
use meterbench_procedure::{DataError, DutFixture, DutProcedure, Pos, Station};
use std::path::Path;

/// The procedure's id and version, and its steps' names (each point's row names its
/// step; the error names the step's line).
pub fn check_procedure(procedure: &DutProcedure) -> Result<(), SessionError> {
    let file = &procedure.file().path;
    fits(
        file,
        "runs",
        "procedure_id",
        "the procedure's id",
        procedure.id(),
    )?;
    fits(
        file,
        "runs",
        "procedure_version",
        "the procedure's version",
        procedure.version(),
    )?;
    let steps: Vec<(&str, Pos)> = match procedure {
        DutProcedure::Meter(p) => p.steps.iter().map(|s| (s.name.as_str(), s.pos)).collect(),
        DutProcedure::CurrentSensor(p) => {
            p.steps.iter().map(|s| (s.name.as_str(), s.pos)).collect()
        }
    };
    for (name, pos) in steps {
        if let Err(why) = limit("points", "step_name", "the step's name", name) {
            return Err(DataError::at(file, pos, why).into());
        }
    }
    Ok(())
}

/// The fixture's manufacturer and device type, and its ports' (or channels') names.
pub fn check_fixture(fixture: &DutFixture) -> Result<(), SessionError> {
    let file = &fixture.file().path;
    fits(
        file,
        "runs",
        "dut_manufacturer",
        "the fixture's manufacturer",
        fixture.manufacturer(),
    )?;
    fits(
        file,
        "runs",
        "dut_type",
        "the fixture's device type",
        fixture.device_type(),
    )?;
    for port in fixture.port_names() {
        fits(
            file,
            "points",
            "port",
            &format!("port {port:?}'s name"),
            &port,
        )?;
    }
    Ok(())
}

/// The station's id, name and laboratory, and each instrument's role, declared model
/// and serial number, and calibration. (What an instrument reports of itself on the wire
/// is known only once it is bound; a reply longer than the store keeps is refused when
/// the run is filed, and the run is not queued.)
pub fn check_station(station: &Station) -> Result<(), SessionError> {
    let file = &station.file.path;
    fits(file, "runs", "station_id", "the station's id", &station.id)?;
    fits(
        file,
        "runs",
        "station_name",
        "the station's name",
        &station.name,
    )?;
    fits(
        file,
        "runs",
        "laboratory",
        "the laboratory's name",
        &station.laboratory_name,
    )?;
    for b in station.bindings() {
        let label = b.label();
        let texts = [
            ("role", "name", label.as_str()),
            ("model", "model", &b.model),
            ("serial_number", "serial number", &b.serial_number),
            ("calibration_id", "calibration id", &b.calibration.id),
            (
                "calibration_issued_by",
                "calibration's issuer",
                &b.calibration.issued_by,
            ),
        ];
        for (column, what, value) in texts {
            fits(
                file,
                "run_instruments",
                column,
                &format!("the {label}'s {what}"),
                value,
            )?;
        }
    }
    Ok(())
}

/// Each run's id (its start time, the station's id, the position on a rack, the device's
/// serial number: each allowed alone, together they can be longer than the store keeps).
/// Checked for the positions whose serial number is known before the run.
pub fn check_run_ids(station: &Station, positions: &[PositionPlan]) -> Result<(), SessionError> {
    let rack = station.rack.positions.len() > 1;
    for p in positions.iter().filter(|p| !p.serial.is_empty()) {
        // A start time as the runner writes it: 20 characters.
        let id = meterbench_runner::run_id_base(
            "20260101T000000.000Z",
            &station.id,
            rack.then_some(p.position),
            &p.serial,
        );
        fits(
            &station.file.path,
            "runs",
            "run_id",
            &format!(
                "the run id of position {} (start time, this station's id, serial number {})",
                p.position, p.serial
            ),
            &id,
        )?;
    }
    Ok(())
}

fn fits(
    file: &Path,
    table: &str,
    column: &str,
    what: &str,
    value: &str,
) -> Result<(), SessionError> {
    limit(table, column, what, value)
        .map_err(|why| SessionError::Request(format!("{}: {why}", file.display())))
}

/// Why `value` does not fit `table.column`, if it does not.
fn limit(table: &str, column: &str, what: &str, value: &str) -> Result<(), String> {
    let chars = value.chars().count();
    match meterbench_store::column_limit(table, column) {
        Some(max) if chars > max => Err(format!(
            "{what} is {chars} characters; the results store keeps at most {max} \
             (schema.sql): shorten it"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn station_with(find: &str, replace: &str) -> Result<(), String> {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hw/stations/sim.yaml");
        let text = std::fs::read_to_string(&shipped).unwrap();
        assert!(text.contains(find), "the shipped station has {find:?}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("station.yaml");
        std::fs::write(&path, text.replacen(find, replace, 1)).unwrap();
        let station = Station::load(&path).map_err(|e| format!("load: {e}"))?;
        check_station(&station).map_err(|e| e.to_string())
    }

    #[test]
    fn the_shipped_files_fit_the_store() {
        let home = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut checked = 0;
        for dir in ["hw/stations", "procedures", "fixtures"] {
            for entry in std::fs::read_dir(home.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_none_or(|x| x != "yaml") {
                    continue;
                }
                let fits = match dir {
                    "hw/stations" => check_station(&Station::load(&path).unwrap()),
                    "procedures" => check_procedure(&DutProcedure::load(&path).unwrap()),
                    _ => check_fixture(&DutFixture::load(&path).unwrap()),
                };
                fits.unwrap_or_else(|e| panic!("{e}"));
                checked += 1;
            }
        }
        assert!(checked >= 9, "{checked} shipped files");
    }

    #[test]
    fn a_step_name_longer_than_the_store_keeps_is_named_at_its_line() {
        let shipped =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../procedures/en50470-3-class-b.yaml");
        let text = std::fs::read_to_string(&shipped).unwrap();
        let find = "name: Starting current\n";
        assert!(text.contains(find), "the shipped step");
        // The step's line: where its item begins.
        let line = text[..text.find("  - starting:\n").unwrap()]
            .lines()
            .count()
            + 1;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long-step.yaml");
        let long = format!("name: Starting current {}\n", "z".repeat(200));
        // Everywhere it is written (its German text is keyed by it).
        std::fs::write(
            &path,
            text.replace(
                "Starting current",
                long.trim_start_matches("name: ").trim_end(),
            ),
        )
        .unwrap();
        let e = check_procedure(&DutProcedure::load(&path).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("{}:{line}:", path.display())),
            "{e} (line {line})"
        );
        assert!(
            e.contains("the step's name is 217 characters; the results store keeps at most 200"),
            "{e}"
        );
    }

    #[test]
    fn an_instruments_texts_longer_than_the_store_keeps_are_named() {
        // The source's calibration id: 19 characters, then 90 more.
        let long_id = format!("id: SIM-CAL-SRC-2026-01{}", "x".repeat(90));
        let e = station_with("id: SIM-CAL-SRC-2026-01", &long_id).unwrap_err();
        assert!(
            e.ends_with(
                "station.yaml: the source's calibration id is 109 characters; the results \
                 store keeps at most 100 (schema.sql): shorten it"
            ),
            "{e}"
        );
        // The reference's issuer (the source's comes first: left as it is).
        let text = "id: SIM-CAL-REF-2026-01, due: 2028-06-30, issued_by: simulated calibration lab";
        let long = format!(
            "id: SIM-CAL-REF-2026-01, due: 2028-06-30, issued_by: {}",
            "y".repeat(201)
        );
        let e = station_with(text, &long).unwrap_err();
        assert!(
            e.contains("the reference's calibration's issuer is 201 characters; the results store keeps at most 200"),
            "{e}"
        );
        // As long as the store keeps: no refusal.
        let just = format!("id: SIM-CAL-SRC-2026-01{}", "x".repeat(81));
        station_with("id: SIM-CAL-SRC-2026-01", &just).unwrap();
    }
}
