//! What the page shows that is not the event stream: the station (instruments and their
//! calibrations, the trusted key, the rack, the procedures at hand), the history from
//! the store, and a bundle's verification.

use crate::Shared;
use chrono::NaiveDate;
use meterbench_runner::Outcome;
use meterbench_signing::{key_id, verify_bundle_trusted};
use meterbench_store::{RunFilter, Store, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::Path;

/// A calibration is shown as due this many days ahead (a lab books the recalibration).
const DUE_SOON_DAYS: i64 = 30;

/// How a calibration due on `due` is shown on `today`: `overdue` (red) after its day,
/// as the bench refuses to run with it (`check_calibration_due`); `due_soon` (amber)
/// within [`DUE_SOON_DAYS`], its day included; else `ok`.
fn due_state(due: NaiveDate, today: NaiveDate) -> &'static str {
    let days = (due - today).num_days();
    if days < 0 {
        "overdue"
    } else if days <= DUE_SOON_DAYS {
        "due_soon"
    } else {
        "ok"
    }
}

pub(crate) fn station(shared: &Shared, today: NaiveDate) -> Value {
    let st = &shared.station;
    let instruments: Vec<Value> = st
        .bindings()
        .iter()
        .map(|b| {
            json!({
                "role": b.label(),
                // The role's kind (source, reference, counter) and the station's own id
                // of the instrument, for the page to name the kind in its language.
                "kind": b.role,
                "id": b.id,
                "model": b.model,
                "serial_number": b.serial_number,
                "calibration": b.calibration.id,
                "due": b.calibration.due.to_string(),
                "state": due_state(b.calibration.due, today),
            })
        })
        .collect();
    let sim = st.simulation.as_ref();
    let positions: Vec<Value> = st
        .rack
        .positions
        .iter()
        .map(|p| {
            let simulated = sim.and_then(|s| {
                s.cpim1000(p.id)
                    .map(|d| ("CPIM1000", d.serial_number.clone()))
                    .or_else(|| s.csp1(p.id).map(|d| ("CSP1", d.serial_number.clone())))
            });
            json!({
                "id": p.id,
                "simulated_device": simulated.as_ref().map(|(t, _)| t),
                "simulated_serial": simulated.map(|(_, s)| s),
            })
        })
        .collect();
    let home = &shared.config.home;
    json!({
        "id": st.id,
        "name": st.name,
        "laboratory": st.laboratory_name,
        "simulated": sim.is_some(),
        "realtime": shared.config.realtime,
        // Whether a password guards the panel (the page then offers to log out).
        "login": shared.access.needs_login(),
        "key_id": key_id(&shared.key.verifying_key()),
        "instruments": instruments,
        "isolated_current_circuits": st.rack.isolated_current_circuits,
        "positions": positions,
        "procedures": yaml_files(&home.file("procedures")),
        "fixtures": yaml_files(&home.file("fixtures")),
        "store": shared.config.store.to_string(),
        "busy": shared.job.busy(),
    })
}

fn yaml_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct HistoryQuery {
    #[serde(default)]
    pub serial: Option<String>,
    /// PASS, FAIL, NOT_DECIDABLE, ERROR, ABORTED (any case).
    #[serde(default)]
    pub verdict: Option<String>,
}

/// The station's runs in the store, newest first, at most `limit`.
pub(crate) fn history(shared: &Shared, q: &HistoryQuery, limit: usize) -> Result<Value, String> {
    let outcome = match q
        .verdict
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        None => None,
        Some(v) => Some(
            serde_json::from_value::<Outcome>(json!(v.to_ascii_uppercase().replace(' ', "_")))
                .map_err(|_| {
                    format!("verdict `{v}`: one of PASS, FAIL, NOT_DECIDABLE, ERROR, ABORTED")
                })?,
        ),
    };
    let filter = RunFilter {
        serial: q
            .serial
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from),
        station: Some(shared.station.id.clone()),
        outcome,
        from: None,
        to: None,
    };
    let store = match Store::open(&shared.config.store) {
        Ok(s) => s,
        // A station that filed nothing yet has no store: an empty history.
        Err(StoreError::NoStore(_)) => return Ok(json!({"runs": [], "total": 0})),
        Err(e) => return Err(e.to_string()),
    };
    let mut runs = store.list_runs(&filter).map_err(|e| e.to_string())?;
    runs.sort_by(|a, b| b.started_utc.cmp(&a.started_utc));
    let total = runs.len();
    let rows: Vec<Value> = runs
        .into_iter()
        .take(limit)
        .map(|r| {
            let here = shared.config.reports.join(&r.run_id).join("certificate.pdf");
            json!({
                "run_id": r.run_id,
                "serial": r.serial,
                "procedure": format!("{} {}", r.procedure_id, r.procedure_version),
                "started_utc": r.started_utc,
                "outcome": r.outcome,
                "certificate": here.is_file().then(|| format!("/runs/{}/certificate.pdf", r.run_id)),
            })
        })
        .collect();
    Ok(json!({"runs": rows, "total": total}))
}

/// A run id as the bench makes them: nothing that could leave the reports folder.
pub(crate) fn is_run_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The bundle of `run_id` checked as `meterbench verify` checks it, against this
/// station's keyring (a bundle signed before a key rotation stays verified).
pub(crate) fn verify(shared: &Shared, run_id: &str) -> Value {
    let dir = shared.config.reports.join(run_id);
    match verify_bundle_trusted(&dir, &shared.trust) {
        Ok(r) => json!({
            "ok": r.trusted_key_checked,
            "files": r.manifest.entries.len(),
            "key_id": r.manifest.key_id,
            "signer": r.manifest.signer,
        }),
        // Each problem as the bench words it, and its subject and kind, from which the
        // page says it in the operator's language.
        Err(problems) => json!({
            "ok": false,
            "problems": problems.iter().map(|p| json!({
                "subject": p.subject,
                "kind": p.kind,
                "text": p.to_string(),
            })).collect::<Vec<_>>(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_calibration_is_overdue_after_its_day_and_due_soon_thirty_days_ahead() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let day = |d: i64| today + chrono::TimeDelta::days(d);
        assert_eq!(due_state(day(-1), today), "overdue");
        // Its own day still counts (the bench runs with it that day).
        assert_eq!(due_state(day(0), today), "due_soon");
        assert_eq!(due_state(day(30), today), "due_soon");
        assert_eq!(due_state(day(31), today), "ok");
    }

    #[test]
    fn run_ids_cannot_name_another_folder() {
        assert!(is_run_id("20261206T220906.538Z-sim-1-SIM-CPIM-000123"));
        for bad in ["", "..", "../keys", "a/b", ".hidden", "a\\b", "a b"] {
            assert!(!is_run_id(bad), "{bad}");
        }
    }
}
