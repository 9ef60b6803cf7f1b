//! The lengths the schema's text columns hold (`VARCHAR(n)` in `schema.sql`), checked
//! before either backend writes a run: PostgreSQL refuses a longer value, SQLite keeps
//! it, and a run must be filed alike in both (or refused alike, saying which field).

use crate::StoreError;
use crate::frames::PointRow;
use crate::index::{IndexRun, SCHEMA_SQL};
use std::collections::HashMap;
use std::sync::OnceLock;

/// `(table, column)` → the most characters it holds, as `schema.sql` declares them.
fn limits() -> &'static HashMap<(String, String), usize> {
    static LIMITS: OnceLock<HashMap<(String, String), usize>> = OnceLock::new();
    LIMITS.get_or_init(|| varchar_limits(SCHEMA_SQL))
}

/// The `VARCHAR(n)` columns of the `CREATE TABLE` statements of `sql`, one column a
/// line as `schema.sql` writes them.
pub(crate) fn varchar_limits(sql: &str) -> HashMap<(String, String), usize> {
    let mut out = HashMap::new();
    let mut table: Option<String> = None;
    for line in sql.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("CREATE TABLE IF NOT EXISTS ") {
            table = rest.split_whitespace().next().map(str::to_string);
            continue;
        }
        if line.starts_with(')') {
            table = None;
            continue;
        }
        let (Some(t), mut words) = (&table, line.split_whitespace()) else {
            continue;
        };
        if let (Some(column), Some(kind)) = (words.next(), words.next())
            && let Some(n) = kind
                .strip_prefix("VARCHAR(")
                .and_then(|k| k.strip_suffix(')'))
                .and_then(|n| n.parse().ok())
        {
            out.insert((t.clone(), column.to_string()), n);
        }
    }
    out
}

/// The most characters `table.column` holds, when the schema bounds it.
pub fn column_limit(table: &str, column: &str) -> Option<usize> {
    limits()
        .get(&(table.to_string(), column.to_string()))
        .copied()
}

/// Every text the run's rows hold within its column's length, else which is not.
pub(crate) fn check_lengths(run: &IndexRun, points: &[PointRow]) -> Result<(), StoreError> {
    let r = &run.row;
    let mut fields: Vec<(&str, &str, &str)> = vec![
        ("runs", "run_id", &r.run_id),
        ("runs", "station_id", &r.station),
        ("runs", "station_name", &r.station_name),
        ("runs", "laboratory", &r.laboratory),
        ("runs", "dut_manufacturer", &r.dut_manufacturer),
        ("runs", "dut_type", &r.dut_type),
        ("runs", "dut_serial", &r.serial),
        ("runs", "accuracy_class", &r.accuracy_class),
        ("runs", "procedure_id", &r.procedure_id),
        ("runs", "procedure_version", &r.procedure_version),
        ("runs", "bench_version", &r.bench_version),
    ];
    for i in &run.instruments {
        fields.extend([
            ("run_instruments", "role", i.role.as_str()),
            ("run_instruments", "driver", &i.driver),
            ("run_instruments", "model", &i.model),
            ("run_instruments", "serial_number", &i.serial_number),
            ("run_instruments", "calibration_id", &i.calibration_id),
            (
                "run_instruments",
                "calibration_issued_by",
                &i.calibration_issued_by,
            ),
        ]);
    }
    for p in points {
        fields.extend([
            ("points", "port", p.port.as_str()),
            ("points", "step_name", &p.step_name),
            ("points", "current_name", &p.current_name),
            ("points", "power_factor", &p.power_factor),
            ("points", "phases", &p.phases),
            ("points", "conformity", &p.conformity),
        ]);
    }
    for (table, column, value) in fields {
        let key = (table.to_string(), column.to_string());
        let Some(&max) = limits().get(&key) else {
            continue;
        };
        let chars = value.chars().count();
        if chars > max {
            let start: String = value.chars().take(40).collect();
            return Err(StoreError::Record {
                run_id: r.run_id.clone(),
                message: format!(
                    "{table}.{column} \"{start}…\" is {chars} characters; the results store \
                     keeps at most {max} (schema.sql): the run cannot be filed as it is \
                     (shorten it where it comes from: the station, procedure or fixture \
                     file, or the instrument's reply)"
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schemas_text_columns_are_read_with_their_lengths() {
        let l = varchar_limits(SCHEMA_SQL);
        let get = |t: &str, c: &str| l.get(&(t.to_string(), c.to_string())).copied();
        assert_eq!(get("runs", "station_name"), Some(200));
        assert_eq!(get("runs", "dut_serial"), Some(100));
        assert_eq!(get("run_instruments", "role"), Some(50));
        assert_eq!(get("points", "power_factor"), Some(20));
        // Not text of a bounded length.
        assert_eq!(get("runs", "procedure_sha256"), None);
        assert_eq!(get("runs", "outcome_reason"), None);
        // Every VARCHAR column of the schema, none missed (a line per column).
        let declared = SCHEMA_SQL.matches("VARCHAR(").count();
        assert_eq!(l.len(), declared);
    }
}
