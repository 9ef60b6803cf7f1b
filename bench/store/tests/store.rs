//! The store against records of the simulated bench (tests/data, made with `meterbench
//! run` and pulses cut to 3 per port and step): a PASS; a FAIL with the simulator's
//! `error_bump` of +1.6 % on the right port at 4–6 A, PF 1; an ERROR with a dead left
//! LED, its station relabelled `sim-2` so that there are two stations.
//!
//! The store suite runs against both backends: the embedded store (SQLite and Parquet in
//! a temporary folder) and a real PostgreSQL server (a fresh database per test, see
//! `meterbench-testpg`).

use chrono::NaiveDate;
use meterbench_runner::record::{Outcome, RunRecord};
use meterbench_store::{
    AuditOptions, AuditSummary, DRIFTING_STATION, RunFilter, Store, StoreLocation, read_parquet,
    write_samples_parquet,
};
use std::path::{Path, PathBuf};

fn record(name: &str) -> RunRecord {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    RunRecord::read(&p).unwrap()
}

fn pulses(r: &RunRecord) -> usize {
    r.steps
        .iter()
        .flat_map(|s| &s.ports)
        .map(|p| p.pulses.len())
        .sum()
}

#[test]
fn samples_parquet_reads_back_equal() {
    let dir = tempfile::tempdir().unwrap();
    let rec = record("pass.json");
    let path = dir.path().join("samples.parquet");
    write_samples_parquet(&rec, &path).unwrap();
    let df = read_parquet(&path).unwrap();
    assert_eq!(df.height(), pulses(&rec));
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        names,
        [
            "run_id",
            "station",
            "step_index",
            "step_name",
            "port",
            "counter_channel",
            "timestamp_ticks",
            "width_ticks",
            "ref_count",
            "sequence",
            "counter_timebase_hz"
        ]
    );
    // The first pulse of the first step and the last pulse of the last step.
    let first_step = &rec.steps[0];
    let first = first_step.ports[0].pulses[0];
    let last_step = rec.steps.last().unwrap();
    let last_port = last_step.ports.last().unwrap();
    let last = *last_port.pulses.last().unwrap();
    let n = df.height() - 1;
    let ts = df.column("timestamp_ticks").unwrap().u64().unwrap();
    let refc = df.column("ref_count").unwrap().u64().unwrap();
    let width = df.column("width_ticks").unwrap().u32().unwrap();
    let seq = df.column("sequence").unwrap().u64().unwrap();
    let port = df.column("port").unwrap().str().unwrap();
    let step = df.column("step_name").unwrap().str().unwrap();
    let ch = df.column("counter_channel").unwrap().u32().unwrap();
    assert_eq!(ts.get(0), Some(first.timestamp_ticks));
    assert_eq!(refc.get(0), Some(first.ref_count));
    assert_eq!(width.get(0), Some(first.width_ticks));
    assert_eq!(seq.get(0), Some(first.sequence));
    assert_eq!(step.get(0), Some(first_step.name.as_str()));
    assert_eq!(ts.get(n), Some(last.timestamp_ticks));
    assert_eq!(refc.get(n), Some(last.ref_count));
    assert_eq!(port.get(n), Some(last_port.port.as_str()));
    assert_eq!(ch.get(n), Some(u32::from(last_port.counter_channel)));
    let tb = df.column("counter_timebase_hz").unwrap().f64().unwrap();
    assert_eq!(tb.get(n), Some(rec.counter_timebase_hz));
    let run_id = df.column("run_id").unwrap().str().unwrap();
    assert_eq!(run_id.get(n), Some(rec.run_id.as_str()));
}

#[test]
fn samples_parquet_bytes_are_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let rec = record("pass.json");
    let a = dir.path().join("a.parquet");
    let b = dir.path().join("b.parquet");
    write_samples_parquet(&rec, &a).unwrap();
    // A second later and from a fresh copy of the record: nothing may depend on either.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    write_samples_parquet(&rec.clone(), &b).unwrap();
    let (a, b) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    assert!(a.starts_with(b"PAR1") && a.ends_with(b"PAR1"));
    assert_eq!(a, b);
}

fn bundle_for(root: &Path, rec: &RunRecord) -> PathBuf {
    let b = root.join("reports").join(&rec.run_id);
    std::fs::create_dir_all(&b).unwrap();
    b
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Embedded,
    Postgres,
}

/// An empty store of the kind (nothing is made before the first filing).
fn location(kind: Kind, root: &Path) -> StoreLocation {
    match kind {
        Kind::Embedded => StoreLocation::Embedded(root.join("store")),
        Kind::Postgres => StoreLocation::Postgres(meterbench_testpg::database()),
    }
}

/// Each test below, once per backend.
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod embedded {
            $(#[test]
            fn $test() {
                super::$test(super::Kind::Embedded)
            })*
        }
        mod postgres {
            $(#[test]
            fn $test() {
                super::$test(super::Kind::Postgres)
            })*
        }
    };
}

on_both_backends!(
    a_run_amending_another_files_only_what_it_measured,
    a_field_longer_than_its_column_is_refused_alike,
    chart_dates_stay_within_the_range,
    problem_runs_are_listed_in_a_csv_beside_the_report,
    a_retest_after_a_first_attempt_before_the_range_is_no_first_attempt,
    ingest_list_filter_show,
    ingest_is_idempotent,
    not_decidable_runs_are_filed,
    audit_names_every_fail_and_error_run_with_its_bundle,
    drifting_station_shows_in_its_control_charts,
);

fn audit(store: &Store, from: NaiveDate, to: NaiveDate, out: &Path) -> AuditSummary {
    store.audit(&AuditOptions::new(from, to), out).unwrap()
}

fn ingest_three(kind: Kind, root: &Path) -> (Store, [RunRecord; 3]) {
    let store = Store::create(&location(kind, root)).unwrap();
    let recs = [
        record("pass.json"),
        record("fail.json"),
        record("error.json"),
    ];
    for r in &recs {
        let bundle = bundle_for(root, r);
        // As the CLI does it: samples into the bundle before signing, ingest after.
        write_samples_parquet(r, &bundle.join("samples.parquet")).unwrap();
        store.ingest(r, &bundle).unwrap();
    }
    (store, recs)
}

fn ingest_list_filter_show(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let (store, [pass, fail, error]) = ingest_three(kind, dir.path());

    let all = store.list_runs(&RunFilter::default()).unwrap();
    let ids: Vec<&str> = all.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            pass.run_id.as_str(),
            fail.run_id.as_str(),
            error.run_id.as_str()
        ]
    );
    assert_eq!(all[0].outcome, Outcome::Pass);
    assert_eq!(all[0].started_utc, "2026-11-21T21:48:17.864847Z");
    assert_eq!(all[1].reason.as_deref(), Some("out of limits: Iref PF1"));
    assert_eq!(all[0].procedure_sha256, pass.procedure.sha256);
    assert_eq!(all[0].dut_type, "CPIM1000");

    let by = |f: RunFilter| -> Vec<String> {
        store
            .list_runs(&f)
            .unwrap()
            .into_iter()
            .map(|r| r.run_id)
            .collect()
    };
    assert_eq!(
        by(RunFilter {
            serial: Some("SIM-CPIM-000124".into()),
            ..Default::default()
        }),
        [fail.run_id.as_str()]
    );
    assert_eq!(
        by(RunFilter {
            station: Some("sim-2".into()),
            ..Default::default()
        }),
        [error.run_id.as_str()]
    );
    assert_eq!(
        by(RunFilter {
            outcome: Some(Outcome::Fail),
            ..Default::default()
        }),
        [fail.run_id.as_str()]
    );
    let d = |day| NaiveDate::from_ymd_opt(2026, 11, day);
    assert_eq!(
        by(RunFilter {
            from: d(21),
            to: d(21),
            ..Default::default()
        })
        .len(),
        3
    );
    assert!(
        by(RunFilter {
            from: d(22),
            ..Default::default()
        })
        .is_empty()
    );
    assert!(
        by(RunFilter {
            to: d(20),
            ..Default::default()
        })
        .is_empty()
    );
    assert_eq!(
        by(RunFilter {
            station: Some("sim-1".into()),
            to: d(21),
            outcome: Some(Outcome::Pass),
            ..Default::default()
        }),
        [pass.run_id.as_str()]
    );
    assert!(
        by(RunFilter {
            serial: Some("nope".into()),
            ..Default::default()
        })
        .is_empty()
    );

    let detail = store.show_run(&fail.run_id).unwrap().unwrap();
    assert_eq!(detail.run.serial, "SIM-CPIM-000124");
    assert_eq!(detail.instruments.len(), 3);
    let reference = detail
        .instruments
        .iter()
        .find(|i| i.role == "reference")
        .unwrap();
    assert_eq!(reference.calibration_id, "SIM-CAL-REF-2026-01");
    assert_eq!(
        reference.calibration_due,
        NaiveDate::from_ymd_opt(2028, 6, 30).unwrap()
    );
    // 11 accuracy points × 2 ports, one of them out of limits
    assert_eq!(detail.points.len(), 22);
    let bad: Vec<_> = detail.points.iter().filter(|p| !p.accepted).collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(
        (bad[0].step_name.as_str(), bad[0].port.as_str()),
        ("Iref PF1", "right")
    );
    assert_eq!(bad[0].conformity, "fail");
    assert_eq!(bad[0].mpe_percent, 1.0);
    assert_eq!(bad[0].outcome, "FAIL");
    assert_eq!(bad[0].phases, "L1 L2 L3");
    assert_eq!(bad[0].started_utc, detail.run.started_utc);
    assert_eq!(
        (bad[0].date.as_str(), bad[0].station.as_str()),
        ("2026-11-21", "sim-1")
    );
    let samples = detail.samples_file.unwrap();
    let bundle_copy = dir
        .path()
        .join("reports")
        .join(&fail.run_id)
        .join("samples.parquet");
    match kind {
        // The embedded store keeps a copy: the bundle's file, byte for byte.
        Kind::Embedded => {
            assert!(samples.ends_with(format!(
                "samples/station=sim-1/date=2026-11-21/{}.parquet",
                fail.run_id
            )));
            assert_eq!(
                std::fs::read(samples).unwrap(),
                std::fs::read(bundle_copy).unwrap()
            );
        }
        // A shared store points at the bundle.
        Kind::Postgres => assert_eq!(samples, bundle_copy.canonicalize().unwrap()),
    }
    assert_eq!(
        detail.run.bundle,
        dir.path()
            .join("reports")
            .join(&fail.run_id)
            .canonicalize()
            .unwrap()
    );

    // The ERROR run has no accuracy point and so no points file, but its samples.
    let e = store.show_run(&error.run_id).unwrap().unwrap();
    assert!(e.points.is_empty() && e.points_file.is_none());
    assert!(e.samples_file.is_some());
    assert_eq!(e.run.station, "sim-2");

    assert!(store.show_run("no-such-run").unwrap().is_none());

    // The same rows, whichever backend: the points, in step and port order.
    let mut steps: Vec<(u32, String)> = detail
        .points
        .iter()
        .map(|p| (p.step_index, p.port.clone()))
        .collect();
    let sorted = {
        let mut s = steps.clone();
        s.sort();
        s
    };
    assert_eq!(steps, sorted);
    steps.dedup();
    assert_eq!(steps.len(), 22);
}

fn ingest_is_idempotent(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let (store, [pass, ..]) = ingest_three(kind, dir.path());
    let before = store.show_run(&pass.run_id).unwrap().unwrap();
    let bundle = dir.path().join("reports").join(&pass.run_id);
    store.ingest(&pass, &bundle).unwrap();
    // Another connection, as another process would open it.
    Store::create(store.location())
        .unwrap()
        .ingest(&pass, &bundle)
        .unwrap();
    assert_eq!(store.list_runs(&RunFilter::default()).unwrap().len(), 3);
    let after = store.show_run(&pass.run_id).unwrap().unwrap();
    assert_eq!(before, after);
}

/// A run whose points are too uncertain for a statement of conformity is a run like
/// any other for the store (the schema's outcome CHECK once refused it).
fn not_decidable_runs_are_filed(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&location(kind, dir.path())).unwrap();
    let mut rec = record("pass.json");
    rec.outcome = Outcome::NotDecidable;
    let bundle = bundle_for(dir.path(), &rec);
    store.ingest(&rec, &bundle).unwrap();
    let runs = store
        .list_runs(&RunFilter {
            outcome: Some(Outcome::NotDecidable),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].run_id, rec.run_id);
}

#[test]
fn compaction_keeps_every_run_and_its_figures() {
    let dir = tempfile::tempdir().unwrap();
    let (store, [pass, fail, error]) = ingest_three(Kind::Embedded, dir.path());
    let root = store.location().folder().unwrap().to_path_buf();
    let d = |day| NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
    let out = dir.path().join("audit");
    let before = audit(&store, d(1), d(30), &out);
    let detail_before = store.show_run(&fail.run_id).unwrap().unwrap();

    // The day of the runs is not over before the 22nd: nothing to do on the 21st.
    assert_eq!(store.compact(d(21)).unwrap().files_merged, 0);
    let c = store.compact(d(22)).unwrap();
    // samples: sim-1 (2 runs) and sim-2 (1); points: sim-1 (2 runs; the ERROR run has none)
    assert_eq!((c.partitions, c.files_merged), (3, 5));
    let part = root.join("points/station=sim-1/date=2026-11-21");
    let names: Vec<String> = std::fs::read_dir(&part)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["compacted.parquet"]);
    assert_eq!(
        read_parquet(&part.join("compacted.parquet"))
            .unwrap()
            .height(),
        44
    );

    let after = audit(&store, d(1), d(30), &out);
    assert_eq!(figures(&before), figures(&after));
    let detail = store.show_run(&fail.run_id).unwrap().unwrap();
    assert_eq!(detail.points, detail_before.points);
    assert_eq!(detail.points_file.unwrap(), part.join("compacted.parquet"));
    assert!(
        detail
            .samples_file
            .unwrap()
            .ends_with("samples/station=sim-1/date=2026-11-21/compacted.parquet")
    );
    assert!(
        store
            .show_run(&error.run_id)
            .unwrap()
            .unwrap()
            .samples_file
            .is_some()
    );

    // Ingesting a run again after compaction: its rows leave the compacted file and
    // its own file holds them, once.
    let bundle = dir.path().join("reports").join(&pass.run_id);
    store.ingest(&pass, &bundle).unwrap();
    assert_eq!(
        read_parquet(&part.join("compacted.parquet"))
            .unwrap()
            .height(),
        22
    );
    assert!(part.join(format!("{}.parquet", pass.run_id)).is_file());
    assert_eq!(figures(&audit(&store, d(1), d(30), &out)), figures(&before));
    assert_eq!(store.list_runs(&RunFilter::default()).unwrap().len(), 3);
    // and a second compaction puts it back
    store.compact(d(22)).unwrap();
    assert_eq!(
        read_parquet(&part.join("compacted.parquet"))
            .unwrap()
            .height(),
        44
    );
    assert_eq!(figures(&audit(&store, d(1), d(30), &out)), figures(&before));
}

#[test]
fn a_shared_store_has_nothing_to_compact() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&location(Kind::Postgres, dir.path())).unwrap();
    let d = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
    let err = store.compact(d).unwrap_err().to_string();
    assert!(err.contains("keeps its points in tables"), "{err}");
}

/// The summary with every number to 7 significant digits: files merged in another
/// order sum in another order, and JSON text need not give back the last bit.
fn figures(s: &AuditSummary) -> serde_json::Value {
    use serde_json::Value;
    fn round(v: Value) -> Value {
        match v {
            Value::Number(n) if n.is_f64() => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                // the s of equal values is 0 or 1e-17, by summation order
                let x = if x.abs() < 1e-12 { 0.0 } else { x };
                Value::String(format!("{x:.6e}"))
            }
            Value::Array(a) => Value::Array(a.into_iter().map(round).collect()),
            Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, round(v))).collect()),
            other => other,
        }
    }
    round(serde_json::to_value(s).unwrap())
}

#[test]
fn listing_a_missing_store_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open(&StoreLocation::Embedded(dir.path().join("none")))
        .err()
        .unwrap();
    assert!(err.to_string().contains("no store at"), "{err}");
}

#[test]
fn an_unreachable_shared_store_says_where_and_hides_the_password() {
    let dir = tempfile::tempdir().unwrap();
    // A socket folder where no server listens.
    let url = format!(
        "postgres://lab:s3cret@localhost/bench?host={}&connect_timeout=5",
        dir.path().display()
    );
    let err = Store::open(&StoreLocation::parse(&url))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("PostgreSQL store postgres://lab:***@localhost/bench"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
    assert!(err.contains("is the server running"), "{err}");
}

/// A summary without its bundle folders: the synthetic bundle folders differ between the
/// backends (the embedded store names them inside its folder), everything else is the
/// same.
fn strip(s: &AuditSummary) -> serde_json::Value {
    let mut s = s.clone();
    for p in &mut s.problem_runs {
        p.bundle.clear();
        p.bundle_link.clear();
    }
    serde_json::to_value(s).unwrap()
}

/// Both backends give the same figures for the same runs, to the last digit: the audit
/// is one computation over the points either store reads back, settled into one order
/// before any sum is taken.
#[test]
fn both_backends_give_the_same_audit() {
    let dir = tempfile::tempdir().unwrap();
    let embedded = Store::create(&location(Kind::Embedded, dir.path())).unwrap();
    let shared = Store::create(&location(Kind::Postgres, dir.path())).unwrap();
    let a = embedded.synthesize(1500, 11).unwrap();
    let b = shared.synthesize(1500, 11).unwrap();
    assert_eq!(
        (a.runs, a.fail, a.points_rows),
        (b.runs, b.fail, b.points_rows)
    );
    let mut opts = AuditOptions::new(a.from, a.to);
    opts.plots = false;
    let x = embedded.audit(&opts, &dir.path().join("x")).unwrap();
    let y = shared.audit(&opts, &dir.path().join("y")).unwrap();
    assert_eq!(x.totals.runs, 1500);
    assert_eq!(strip(&x), strip(&y));
    // and again, the same to the last digit
    let z = shared.audit(&opts, &dir.path().join("z")).unwrap();
    assert_eq!(strip(&y), strip(&z));
    // A week of the three months: PostgreSQL reads a few runs' points by another path
    // (joined on the server, not the whole table in slices).
    let mut week = AuditOptions::new(
        a.from + chrono::Days::new(30),
        a.from + chrono::Days::new(36),
    );
    week.plots = false;
    let x = embedded.audit(&week, &dir.path().join("xw")).unwrap();
    let y = shared.audit(&week, &dir.path().join("yw")).unwrap();
    assert!(
        x.totals.runs > 0 && x.totals.runs * 3 < 1500,
        "{} runs in the week",
        x.totals.runs
    );
    assert!(!x.load_points.is_empty());
    assert_eq!(strip(&x), strip(&y));
    // A month after the runs: nothing to read on either.
    let mut after = AuditOptions::new(a.to + chrono::Days::new(30), a.to + chrono::Days::new(60));
    after.plots = false;
    let x = embedded.audit(&after, &dir.path().join("xa")).unwrap();
    let y = shared.audit(&after, &dir.path().join("ya")).unwrap();
    assert_eq!((x.totals.runs, x.load_points.len()), (0, 0));
    assert_eq!(strip(&x), strip(&y));
    let r = |s: &Store| s.list_runs(&RunFilter::default()).unwrap();
    let (ra, rb) = (r(&embedded), r(&shared));
    assert_eq!(ra.len(), rb.len());
    for (p, q) in ra.iter().zip(&rb) {
        assert_eq!(
            (
                &p.run_id,
                &p.started_utc,
                &p.finished_utc,
                p.date,
                p.outcome,
                &p.reason
            ),
            (
                &q.run_id,
                &q.started_utc,
                &q.finished_utc,
                q.date,
                q.outcome,
                &q.reason
            )
        );
    }
}

/// A station name longer than the schema's column: PostgreSQL would refuse the row,
/// SQLite keep it; both refuse the run, naming the field and its length, and file
/// nothing of it.
fn a_field_longer_than_its_column_is_refused_alike(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&location(kind, dir.path())).unwrap();
    let mut v = serde_json::to_value(record("pass.json")).unwrap();
    v["station"]["name"] = "S".repeat(255).into();
    let long: RunRecord = serde_json::from_value(v).unwrap();
    let e = store
        .ingest(&long, &bundle_for(dir.path(), &long))
        .unwrap_err();
    assert!(
        matches!(e, meterbench_store::StoreError::Record { .. }),
        "{e}"
    );
    let said = e.to_string();
    assert!(
        said.contains("runs.station_name")
            && said.contains("is 255 characters")
            && said.contains("at most 200"),
        "{said}"
    );
    assert!(!said.contains("is the server running"), "{said}");
    assert!(store.list_runs(&RunFilter::default()).unwrap().is_empty());
    if kind == Kind::Embedded {
        assert!(!dir.path().join("store/points").exists(), "no points file");
    }
    // At the limit it is filed.
    let mut v = serde_json::to_value(record("pass.json")).unwrap();
    v["station"]["name"] = "é".repeat(200).into();
    let at: RunRecord = serde_json::from_value(v).unwrap();
    store.ingest(&at, &bundle_for(dir.path(), &at)).unwrap();
    assert_eq!(store.list_runs(&RunFilter::default()).unwrap().len(), 1);
}

/// `rec` as run again at `started` (RFC 3339, UTC) with `outcome`: a run of the same
/// serial under the same procedure.
fn rerun(rec: &RunRecord, started: &str, outcome: &str) -> RunRecord {
    let mut v = serde_json::to_value(rec).unwrap();
    let stamp = chrono::DateTime::parse_from_rfc3339(started)
        .unwrap()
        .format("%Y%m%dT%H%M%S%.3fZ")
        .to_string();
    let serial = rec.dut.serial_number.clone();
    v["run_id"] = format!("{stamp}-sim-1-{serial}").into();
    v["started_utc"] = started.into();
    v["finished_utc"] = started.into();
    v["outcome"] = outcome.into();
    serde_json::from_value(v).unwrap()
}

/// Hand-counted: a device failed on the 10th and passed its retest on the 12th. Audited
/// from the 1st, it has one first attempt, failed; from the 11th, none (its retest is no
/// first attempt, however the range is cut), though the retest is one of the range's runs.
fn a_retest_after_a_first_attempt_before_the_range_is_no_first_attempt(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&location(kind, dir.path())).unwrap();
    let fail = rerun(&record("fail.json"), "2026-11-10T09:00:00+00:00", "FAIL");
    let retest = rerun(&fail, "2026-11-12T09:00:00+00:00", "PASS");
    // Another device, first tried in the range: its attempt counts either way.
    let other = record("pass.json");
    assert_ne!(other.dut.serial_number, fail.dut.serial_number);
    for r in [&fail, &retest, &other] {
        store.ingest(r, &bundle_for(dir.path(), r)).unwrap();
    }
    let d = |day| NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
    let counts = |from| {
        let mut o = AuditOptions::new(d(from), d(30));
        o.plots = false;
        let s = store
            .audit(&o, &dir.path().join(format!("audit-{from}")))
            .unwrap();
        (
            s.totals.runs,
            s.totals.pass,
            s.totals.first_runs,
            s.totals.first_pass,
        )
    };
    assert_eq!(counts(1), (3, 2, 2, 1));
    assert_eq!(counts(11), (2, 2, 1, 1));
}

/// A filing cut short after its points file was written, before the index took the run
/// (a crash, or a filing under way while the audit reads): the audit counts the runs the
/// index holds, in its yield and in its points alike.
#[test]
fn points_of_a_run_the_index_does_not_hold_are_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (store, [pass, _fail, _error]) = ingest_three(Kind::Embedded, dir.path());
    let d = |day| NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
    let before = audit(&store, d(1), d(30), &dir.path().join("before"));
    // The PASS run's points file again, under a run id the index does not know.
    let file = |dir: &Path| -> Option<PathBuf> {
        walk(dir)
            .into_iter()
            .find(|p| p.to_string_lossy().contains(&pass.run_id) && p.starts_with(dir))
    };
    let points = file(&dir.path().join("store/points")).expect("the PASS run's points file");
    let orphan = points.with_file_name("20261121T000000.000Z-sim-1-CUT-SHORT.parquet");
    std::fs::copy(&points, &orphan).unwrap();
    let after = audit(&store, d(1), d(30), &dir.path().join("after"));
    assert_eq!(after.totals.runs, before.totals.runs);
    let n = |s: &AuditSummary| s.load_points.iter().map(|l| l.n).collect::<Vec<_>>();
    assert_eq!(n(&after), n(&before));
    // Compaction merges the indexed runs' files only: the stray file stays apart.
    let merged = store.compact(d(30)).unwrap();
    assert!(merged.files_merged > 0);
    assert!(orphan.is_file());
    let compacted = audit(&store, d(1), d(30), &dir.path().join("compacted"));
    assert_eq!(n(&compacted), n(&before));
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// An error beyond the histogram's range (±3 MPE) is not dropped from the report: the
/// load point's row says how many lie below and above it.
#[test]
fn errors_beyond_the_histogram_are_counted_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&location(Kind::Embedded, dir.path())).unwrap();
    let mut v = serde_json::to_value(record("fail.json")).unwrap();
    for step in v["steps"].as_array_mut().unwrap() {
        if step["name"] == "Iref PF1" {
            for port in step["ports"].as_array_mut().unwrap() {
                if port["port"] == "right" {
                    // MPE 1 %: 5 % lies beyond +3 MPE.
                    port["result"]["error_percent"] = 5.0.into();
                }
            }
        }
    }
    let far: RunRecord = serde_json::from_value(v).unwrap();
    store.ingest(&far, &bundle_for(dir.path(), &far)).unwrap();
    let pass = record("pass.json");
    store.ingest(&pass, &bundle_for(dir.path(), &pass)).unwrap();
    let d = |day| NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
    let out = dir.path().join("audit");
    let s = audit(&store, d(1), d(30), &out);
    let point = s
        .load_points
        .iter()
        .find(|l| l.step_name == "Iref PF1" && l.port == "right")
        .unwrap();
    assert_eq!(
        (point.histogram.underflow, point.histogram.overflow),
        (0, 1)
    );
    let html = std::fs::read_to_string(out.join("audit.html")).unwrap();
    assert!(html.contains("0 below, 1 above"), "the row says it");
}

fn audit_names_every_fail_and_error_run_with_its_bundle(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let (store, [pass, fail, error]) = ingest_three(kind, dir.path());
    let out = dir.path().join("audits").join("2026-11");
    let d = |day| NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
    let s = audit(&store, d(1), d(30), &out);

    assert_eq!(
        (s.totals.runs, s.totals.pass, s.totals.fail, s.totals.error),
        (3, 1, 1, 1)
    );
    assert_eq!((s.totals.first_runs, s.totals.first_pass), (3, 1));
    let problems: Vec<(&str, &str)> = s
        .problem_runs
        .iter()
        .map(|p| (p.run_id.as_str(), p.outcome.as_str()))
        .collect();
    assert_eq!(
        problems,
        [
            (fail.run_id.as_str(), "FAIL"),
            (error.run_id.as_str(), "ERROR")
        ]
    );
    // Only the PASS and FAIL runs' points: 2 runs per load point and port.
    assert_eq!(s.load_points.len(), 22);
    assert!(s.load_points.iter().all(|l| l.n == 2));
    let iref_right = s
        .load_points
        .iter()
        .find(|l| l.step_name == "Iref PF1" && l.port == "right")
        .unwrap();
    assert_eq!(iref_right.rejected, 1);
    // sim calibrations are due in 2028: nothing due within 30 days
    assert!(s.calibrations_due.is_empty());

    let html = std::fs::read_to_string(out.join("audit.html")).unwrap();
    for r in [&fail, &error] {
        assert!(html.contains(&r.run_id), "{} missing", r.run_id);
        let href = format!("href=\"../../reports/{}/\"", r.run_id);
        assert!(html.contains(&href), "{href} missing");
        // the link resolves from the report's folder
        assert!(out.join(format!("../../reports/{}", r.run_id)).is_dir());
    }
    assert!(!html.contains(&format!("href=\"../../reports/{}/\"", pass.run_id)));
    assert!(html.contains("Calibrations due within 30 days"));
    for l in &s.load_points {
        let plot = l.histogram_plot.as_ref().unwrap();
        assert!(html.contains(plot.as_str()));
        let svg = std::fs::read_to_string(out.join(plot)).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("</svg>"));
    }
    let json: AuditSummary =
        serde_json::from_slice(&std::fs::read(out.join("audit.json")).unwrap()).unwrap();
    assert_eq!(figures(&json), figures(&s));

    // The same store and range give the same files.
    let again = dir.path().join("again");
    audit(&store, d(1), d(30), &again);
    let j1 = std::fs::read(out.join("audit.json")).unwrap();
    let j2 = std::fs::read(again.join("audit.json")).unwrap();
    // bundle links differ by folder depth only
    assert_eq!(j1.len() - j2.len(), 2 * "../".len());
    assert_eq!(
        std::fs::read(out.join("plots/yield.svg")).unwrap(),
        std::fs::read(again.join("plots/yield.svg")).unwrap()
    );

    // With a yield target, the groups below it are marked in the figures and the HTML
    // (one of three first attempts passed: 33 % against 95 %).
    let marked = dir.path().join("marked");
    let mut opts = AuditOptions::new(d(1), d(30));
    opts.yield_target = Some(0.95);
    let m = store.audit(&opts, &marked).unwrap();
    assert_eq!(m.yield_target, Some(0.95));
    assert!(m.totals.below_yield_target);
    assert!(m.daily.iter().all(|d| d.counts.below_yield_target));
    let html = std::fs::read_to_string(marked.join("audit.html")).unwrap();
    assert!(html.contains("target of\n95.0 %"), "{html}");
    assert!(html.contains("<th class=\"bad\">33.3 %</th>"), "{html}");
    // Without one, nothing is marked.
    assert!(!s.totals.below_yield_target && s.yield_target.is_none());
}

fn drifting_station_shows_in_its_control_charts(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&location(kind, dir.path())).unwrap();
    let syn = store.synthesize(3000, 7).unwrap();
    assert_eq!(syn.runs, 3000);
    let fails = syn.fail as f64 / syn.runs as f64;
    assert!((0.005..0.03).contains(&fails), "FAIL share {fails}");
    assert!(syn.error > 0);

    let out = dir.path().join("audit");
    let mut opts = AuditOptions::new(syn.from, syn.to);
    opts.plots = false;
    let s = store.audit(&opts, &out).unwrap();
    assert_eq!(s.totals.runs, 3000);
    assert!(s.totals.first_pass_yield.unwrap() > 0.95);

    let drifting: Vec<_> = s
        .control_charts
        .iter()
        .filter(|c| c.station == DRIFTING_STATION)
        .collect();
    assert_eq!(drifting.len(), 11);
    for c in &drifting {
        assert!(c.drift_suspected, "{} not flagged", c.step_name);
        let slope = c.slope_percent_per_day.unwrap();
        assert!(
            (slope - 0.002).abs() < 0.0006,
            "{}: slope {slope}",
            c.step_name
        );
    }
    // Daily means increase: the last fortnight sits above the first.
    let c = drifting.iter().find(|c| c.step_name == "Iref PF1").unwrap();
    let mean = |days: &[meterbench_store::ChartDay]| {
        days.iter().map(|d| d.mean).sum::<f64>() / days.len() as f64
    };
    let k = c.days.len();
    let rise = mean(&c.days[k - 14..]) - mean(&c.days[..14]);
    assert!((0.12..0.24).contains(&rise), "rise {rise}");
    // The stable stations are not flagged.
    let flagged: Vec<_> = s
        .control_charts
        .iter()
        .filter(|c| c.drift_suspected && c.station != DRIFTING_STATION)
        .map(|c| format!("{} {}", c.station, c.step_name))
        .collect();
    assert!(flagged.is_empty(), "{flagged:?}");

    // Calibrations: lab-b-1's reference (due 2026-04-20) and lab-c-1's source
    // (2026-04-30); lab-a-2's old counter calibration was replaced mid-range.
    let due: Vec<(&str, &str, i64)> = s
        .calibrations_due
        .iter()
        .map(|c| (c.station.as_str(), c.role.as_str(), c.days_left))
        .collect();
    assert_eq!(
        due,
        [("lab-b-1", "reference", 16), ("lab-c-1", "source", 26)]
    );
}

/// The dates under the charts' ticks (texts of the form MM-DD), in file order.
fn tick_dates(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = t.split_once('>')?.1.split_once("</text>")?.0.trim();
            let b = body.as_bytes();
            (b.len() == 5
                && b[2] == b'-'
                && b.iter()
                    .enumerate()
                    .all(|(k, c)| k == 2 || c.is_ascii_digit()))
            .then(|| body.to_string())
        })
        .collect()
}

/// The charts' date ticks stay within the audited range, whether it is a month or a
/// single day (once the axis of one day ran to the next day's date), and every chart of
/// a day with runs shows its point.
fn chart_dates_stay_within_the_range(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = ingest_three(kind, dir.path());
    let d = |day| NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
    for (from, to) in [(d(1), d(30)), (d(21), d(21)), (d(20), d(22))] {
        let out = dir.path().join(format!("audit-{from}-{to}"));
        let s = audit(&store, from, to, &out);
        let mut charts = vec![s.yield_plot.clone().unwrap()];
        charts.extend(s.control_charts.iter().map(|c| c.plot.clone().unwrap()));
        for chart in charts {
            let svg = std::fs::read_to_string(out.join(&chart)).unwrap();
            let dates = tick_dates(&svg);
            assert!(!dates.is_empty(), "{chart}: no date under the axis");
            for date in &dates {
                let day = NaiveDate::parse_from_str(&format!("2026-{date}"), "%Y-%m-%d").unwrap();
                assert!(
                    from <= day && day <= to,
                    "{chart} ({from}..{to}): tick {date}"
                );
            }
            // The day of the runs is marked (a filled circle per point).
            assert!(svg.contains("<circle"), "{chart}: no point drawn");
        }
        if from == to {
            assert_eq!(
                tick_dates(&std::fs::read_to_string(out.join("plots/yield.svg")).unwrap()),
                ["11-21"]
            );
        }
    }
}

/// Every FAIL and ERROR run is in the CSV appendix with its bundle folder, as a
/// spreadsheet reads it back.
fn problem_runs_are_listed_in_a_csv_beside_the_report(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let (store, [_, fail, error]) = ingest_three(kind, dir.path());
    let d = |day| NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
    let out = dir.path().join("audit");
    let s = audit(&store, d(1), d(30), &out);
    let text = std::fs::read_to_string(out.join(meterbench_store::PROBLEM_RUNS_FILE)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "run_id,started_utc,station,serial,outcome,reason,bundle"
    );
    assert_eq!(lines.len(), 1 + s.problem_runs.len());
    for (line, run) in lines[1..].iter().zip([&fail, &error]) {
        assert!(line.starts_with(&format!("{},", run.run_id)), "{line}");
        let bundle = dir
            .path()
            .join("reports")
            .join(&run.run_id)
            .canonicalize()
            .unwrap();
        assert!(line.ends_with(&format!(",{}", bundle.display())), "{line}");
    }
    // A reason with a comma or a quote stays one field.
    assert!(
        lines[1].contains(",FAIL,out of limits: Iref PF1,"),
        "{}",
        lines[1]
    );
}

/// A run whose start time the server holds as `infinity` (the column takes it; no bench
/// writes it) is named by the audit, not taken for a broken server.
#[test]
fn a_run_started_at_infinity_is_named_by_the_audit() {
    let dir = tempfile::tempdir().unwrap();
    let url = meterbench_testpg::database();
    let (store, recs) = {
        let store = Store::create(&StoreLocation::Postgres(url.clone())).unwrap();
        let r = record("pass.json");
        store.ingest(&r, &bundle_for(dir.path(), &r)).unwrap();
        (store, [r])
    };
    let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    client
        .execute(
            "UPDATE runs SET started_utc = 'infinity' WHERE run_id = $1",
            &[&recs[0].run_id],
        )
        .unwrap();
    // The run's date stays as filed (the UTC date it started).
    let day: NaiveDate = recs[0].started_utc[..10].parse().unwrap();
    let err = store
        .audit(&AuditOptions::new(day, day), &dir.path().join("audit"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("run {}: its start time in", recs[0].run_id))
            && err.contains("out of the calendar's range"),
        "{err}"
    );
}

/// Every run's pack (what the PostgreSQL audit reads), decoded, against its point rows.
fn packs_and_rows(client: &mut ::postgres::Client) -> Vec<(String, Vec<String>, Vec<String>)> {
    let show = |i: i32, name: &str, port: &str, mpe: f64, error: f64, accepted: bool| {
        format!(
            "{i} {name} {port} {:x} {:x} {accepted}",
            mpe.to_bits(),
            error.to_bits()
        )
    };
    let runs = client
        .query(
            "SELECT r.run_id, k.pack FROM runs r LEFT JOIN point_packs k USING (run_id) \
             ORDER BY r.run_id",
            &[],
        )
        .unwrap();
    runs.iter()
        .map(|r| {
            let run_id: String = r.get(0);
            let pack: Option<Vec<u8>> = r.get(1);
            let packed = meterbench_pgcopy::pack::points(pack.as_deref().unwrap_or_default())
                .map(|p| {
                    let p = p.unwrap();
                    show(
                        p.step_index,
                        std::str::from_utf8(p.step_name).unwrap(),
                        std::str::from_utf8(p.port).unwrap(),
                        p.mpe_percent,
                        p.error_percent,
                        p.accepted,
                    )
                })
                .collect();
            let rows = client
                .query(
                    "SELECT step_index, step_name, port, mpe_percent, error_percent, accepted \
                     FROM points WHERE run_id = $1 ORDER BY step_index, port",
                    &[&run_id],
                )
                .unwrap()
                .iter()
                .map(|p| show(p.get(0), p.get(1), p.get(2), p.get(3), p.get(4), p.get(5)))
                .collect();
            (run_id, packed, rows)
        })
        .collect()
}

/// The PostgreSQL audit reads each run's points packed by the server (pg_packs.sql):
/// whatever changes the rows, by a filing or by hand, changes the pack with them, in the
/// same statement, and the audit says what the rows say.
#[test]
fn a_shared_stores_packs_follow_its_point_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (store, recs) = ingest_three(Kind::Postgres, dir.path());
    let StoreLocation::Postgres(url) = store.location().clone() else {
        unreachable!("a PostgreSQL store")
    };
    // Filed again (a retest files its run anew): packed once more, not twice.
    store
        .ingest(&recs[1], &bundle_for(dir.path(), &recs[1]))
        .unwrap();
    let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    let same = |client: &mut ::postgres::Client| {
        let all = packs_and_rows(client);
        for (run, packed, rows) in &all {
            assert_eq!(packed, rows, "{run}");
        }
        all
    };
    let filed = same(&mut client);
    assert_eq!(filed.len(), 3);
    // The PASS and the FAIL have points (the ERROR stopped before its first).
    for r in &recs[..2] {
        assert!(
            filed
                .iter()
                .any(|(run, packed, _)| *run == r.run_id && packed.len() > 10),
            "{}",
            r.run_id
        );
    }
    let days: Vec<NaiveDate> = recs
        .iter()
        .map(|r| r.started_utc[..10].parse().unwrap())
        .collect();
    let (from, to) = (*days.iter().min().unwrap(), *days.iter().max().unwrap());
    let before = audit(&store, from, to, &dir.path().join("before"));
    // A correction by SQL: the right port's points of the FAIL run made 1 % worse.
    let changed = client
        .execute(
            "UPDATE points SET error_percent = error_percent + 1 \
             WHERE run_id = $1 AND port = 'right'",
            &[&recs[1].run_id],
        )
        .unwrap();
    assert!(changed > 0);
    let corrected = same(&mut client);
    assert_ne!(corrected, filed);
    let after = audit(&store, from, to, &dir.path().join("after"));
    let means = |s: &AuditSummary| serde_json::to_value(&s.load_points).unwrap().to_string();
    assert_ne!(means(&before), means(&after));
    // A run's points deleted: its pack goes; all points emptied: every pack goes.
    client
        .execute("DELETE FROM points WHERE run_id = $1", &[&recs[0].run_id])
        .unwrap();
    let emptied = same(&mut client);
    assert!(
        emptied
            .iter()
            .any(|(run, packed, _)| *run == recs[0].run_id && packed.is_empty())
    );
    let packs = |client: &mut ::postgres::Client| -> i64 {
        client
            .query_one("SELECT count(*) FROM point_packs", &[])
            .unwrap()
            .get(0)
    };
    assert_eq!(packs(&mut client), 1);
    client.batch_execute("TRUNCATE points").unwrap();
    assert_eq!(packs(&mut client), 0);
    // Filed again, then deleted: its pack goes with it.
    store
        .ingest(&recs[1], &bundle_for(dir.path(), &recs[1]))
        .unwrap();
    assert_eq!(packs(&mut client), 1);
    client
        .execute("DELETE FROM runs WHERE run_id = $1", &[&recs[1].run_id])
        .unwrap();
    assert_eq!(packs(&mut client), 0);
}

/// A PostgreSQL store filed by a bench from before the packs: the first connection packs
/// its points, and the audit's figures are those it had from the rows.
#[test]
fn a_shared_store_made_before_the_packs_gains_them() {
    let dir = tempfile::tempdir().unwrap();
    let url = meterbench_testpg::database();
    let embedded = Store::create(&location(Kind::Embedded, dir.path())).unwrap();
    let made = embedded.synthesize(400, 5).unwrap();
    let mut opts = AuditOptions::new(made.from, made.to);
    opts.plots = false;
    let want = embedded.audit(&opts, &dir.path().join("embedded")).unwrap();
    {
        let shared = Store::create(&StoreLocation::Postgres(url.clone())).unwrap();
        shared.synthesize(400, 5).unwrap();
    }
    // What the store was before pg_packs.sql.
    let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    client
        .batch_execute(
            "DROP TABLE point_packs; \
             DROP TRIGGER points_added ON points; DROP TRIGGER points_removed ON points; \
             DROP TRIGGER points_changed ON points; DROP TRIGGER points_emptied ON points; \
             DROP FUNCTION meterbench_points_changed(); DROP FUNCTION meterbench_repack; \
             DELETE FROM store_meta WHERE meta_key = 'point_packs'",
        )
        .unwrap();
    let shared = Store::open(&StoreLocation::Postgres(url.clone())).unwrap();
    for (run, packed, rows) in packs_and_rows(&mut client) {
        assert_eq!(packed, rows, "{run}");
    }
    let got = shared.audit(&opts, &dir.path().join("shared")).unwrap();
    assert_eq!(strip(&want), strip(&got));
    assert_eq!(got.totals.runs, 400);
}

/// The packs stay right whoever writes the points: a station's role with no rights on
/// the packs and a search path of its own; two transactions changing one run's points at
/// once (the later one waits, and packs both changes); a trigger disabled meanwhile (the
/// next connection enables it again and repacks what it missed).
#[test]
fn a_shared_stores_packs_stay_right_whoever_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (store, recs) = ingest_three(Kind::Postgres, dir.path());
    let StoreLocation::Postgres(url) = store.location().clone() else {
        unreachable!("a PostgreSQL store")
    };
    let mut owner = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    let check = |client: &mut ::postgres::Client| {
        for (run, packed, rows) in packs_and_rows(client) {
            assert_eq!(packed, rows, "{run}");
        }
    };
    // A station's role: rights on the tables it files into, none on the packs, none to
    // create anything (schema.sql's `CREATE … IF NOT EXISTS` would need them even for
    // tables that exist: it is not applied to a store that has them all).
    let role = format!("station_{}", std::process::id());
    owner
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN; \
             GRANT USAGE ON SCHEMA public TO {role}; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON runs, run_instruments, points, store_meta \
             TO {role}"
        ))
        .unwrap();
    // The URL's last `user` is the one connecting.
    let station_url = format!(
        "{url}{}user={role}",
        if url.contains('?') { '&' } else { '?' }
    );
    let mut station = ::postgres::Client::connect(&station_url, ::postgres::NoTls).unwrap();
    station
        .batch_execute(&format!(
            "SET search_path = pg_catalog; \
             UPDATE public.points SET error_percent = error_percent + 0.5 \
             WHERE run_id = '{}' AND port = 'left'",
            recs[0].run_id
        ))
        .unwrap();
    check(&mut owner);
    let filed_by_station = Store::open(&StoreLocation::Postgres(station_url.clone())).unwrap();
    filed_by_station
        .ingest(&recs[1], &bundle_for(dir.path(), &recs[1]))
        .unwrap();
    check(&mut owner);
    // Two edits of one run at once: the second waits for the first to commit.
    let mut first = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    let mut tx = first.transaction().unwrap();
    tx.execute(
        "UPDATE points SET error_percent = error_percent + 1 WHERE run_id = $1 AND port = 'left'",
        &[&recs[1].run_id],
    )
    .unwrap();
    let run_id = recs[1].run_id.clone();
    let second_url = url.clone();
    let second = std::thread::spawn(move || {
        let mut c = ::postgres::Client::connect(&second_url, ::postgres::NoTls).unwrap();
        c.execute(
            "UPDATE points SET error_percent = error_percent + 2 \
             WHERE run_id = $1 AND port = 'right'",
            &[&run_id],
        )
        .unwrap();
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!second.is_finished(), "the second edit did not wait");
    tx.commit().unwrap();
    second.join().unwrap();
    check(&mut owner);
    // A trigger disabled: a point changed meanwhile is not packed, until the next
    // connection of the bench.
    owner
        .batch_execute("ALTER TABLE points DISABLE TRIGGER points_changed")
        .unwrap();
    owner
        .execute(
            "UPDATE points SET error_percent = error_percent + 3 WHERE run_id = $1",
            &[&recs[0].run_id],
        )
        .unwrap();
    assert!(
        packs_and_rows(&mut owner)
            .iter()
            .any(|(_, packed, rows)| packed != rows)
    );
    drop(Store::open(&StoreLocation::Postgres(url.clone())).unwrap());
    check(&mut owner);
    let enabled: i64 = owner
        .query_one(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'points'::regclass \
             AND tgenabled = 'O' AND NOT tgisinternal",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(enabled, 4);
    drop((station, filed_by_station));
    owner
        .batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
        .unwrap();
}

/// A point set by hand to a value no measurement gives: NaN or an infinity is refused,
/// naming its run and point; finite errors however large are audited, plots and all
/// (a histogram's mean line beyond its bins overflowed plotters; errors all beyond
/// +3 MPE were put in bins of MPE/10, 10¹² of them for 10¹¹ %; squares that overflow
/// gave infinite control limits, which plotters lays out for ever).
#[test]
fn a_shared_stores_point_set_to_no_measured_value_is_named_by_the_audit() {
    let dir = tempfile::tempdir().unwrap();
    let (store, recs) = ingest_three(Kind::Postgres, dir.path());
    let StoreLocation::Postgres(url) = store.location().clone() else {
        unreachable!("a PostgreSQL store")
    };
    let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    let days: Vec<NaiveDate> = recs
        .iter()
        .map(|r| r.started_utc[..10].parse().unwrap())
        .collect();
    let (from, to) = (*days.iter().min().unwrap(), *days.iter().max().unwrap());
    // The first point of the PASS run's left port, and the same point of the FAIL run.
    let step: i32 = client
        .query_one(
            "SELECT min(step_index) FROM points WHERE run_id = $1",
            &[&recs[0].run_id],
        )
        .unwrap()
        .get(0);
    let set = |client: &mut ::postgres::Client, run: &RunRecord, value: &str| {
        client
            .execute(
                &format!(
                    "UPDATE points SET error_percent = '{value}' \
                     WHERE run_id = $1 AND port = 'left' AND step_index = $2"
                ),
                &[&run.run_id, &step],
            )
            .unwrap()
    };
    let audited = |name: &str| store.audit(&AuditOptions::new(from, to), &dir.path().join(name));
    assert_eq!(set(&mut client, &recs[0], "1e12"), 1);
    let summary = audited("huge").unwrap();
    assert!(summary.load_points.iter().any(|lp| lp.mean > 1e9));
    assert_eq!(set(&mut client, &recs[1], "2e11"), 1);
    let summary = audited("beyond").unwrap();
    let lp = summary
        .load_points
        .iter()
        .find(|lp| lp.mean > 1e11 && lp.port == "left")
        .unwrap();
    assert!(
        lp.histogram.bins.len() < 100,
        "{} bins",
        lp.histogram.bins.len()
    );
    assert_eq!(set(&mut client, &recs[0], "1e200"), 1);
    audited("squares").unwrap();
    for value in ["NaN", "-Infinity"] {
        set(&mut client, &recs[0], value);
        let err = audited(value).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("run {}: step ", recs[0].run_id))
                && err.contains("port left: an error of")
                && err.contains("is not a measured point"),
            "{err}"
        );
    }
}

/// A later session's retest of one point amends the FAIL run: its record carries every
/// step over and adds the new attempt. Filed, it adds that one measurement to the store
/// (each port of the point): the carried ones are the amended run's, and counted twice
/// they weighed twice in the audit's n, means and Cpk.
fn a_run_amending_another_files_only_what_it_measured(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&location(kind, dir.path())).unwrap();
    let fail = rerun(&record("fail.json"), "2026-11-10T09:00:00+00:00", "FAIL");
    let mut amending = rerun(&fail, "2026-11-12T09:00:00+00:00", "PASS");
    amending.amends = Some(fail.run_id.clone());
    amending.carried_steps = amending.steps.len();
    let failed = fail
        .latest_attempts()
        .into_iter()
        .find(|s| s.outcome == Outcome::Fail && s.kind.is_point())
        .expect("a failed point")
        .clone();
    let mut again = failed.clone();
    again.attempt += 1;
    again.outcome = Outcome::Pass;
    amending.steps.push(again);
    for r in [&fail, &amending] {
        store.ingest(r, &bundle_for(dir.path(), r)).unwrap();
    }
    let ports = failed.ports.len() as i64;
    let shown = store.show_run(&amending.run_id).unwrap().unwrap();
    assert_eq!(shown.points.len() as i64, ports);
    // The store knows which run amends which, as any station sees it (filed again: once).
    store
        .ingest(&amending, &bundle_for(dir.path(), &amending))
        .unwrap();
    let shown = store.show_run(&amending.run_id).unwrap().unwrap();
    assert_eq!(shown.amends.as_deref(), Some(fail.run_id.as_str()));
    assert!(shown.amended_by.is_empty());
    let original = store.show_run(&fail.run_id).unwrap().unwrap();
    assert_eq!(
        (original.amends, original.amended_by),
        (None, vec![amending.run_id.clone()])
    );
    assert!(shown.points.iter().all(|p| p.step_name == failed.name));
    let d = |day| NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
    let mut o = AuditOptions::new(d(1), d(30));
    o.plots = false;
    let s = store.audit(&o, &dir.path().join("audit")).unwrap();
    let n: i64 = s.load_points.iter().map(|lp| lp.n).sum();
    let filed_by_fail = store.show_run(&fail.run_id).unwrap().unwrap().points.len() as i64;
    assert_eq!(n, filed_by_fail + ports);
    // The retested point: its first attempt and its retest, once each.
    let retested: i64 = s
        .load_points
        .iter()
        .filter(|lp| lp.step_name == failed.name)
        .map(|lp| lp.n)
        .sum();
    assert_eq!(retested, 2 * ports);
}
