//! The store against records of the simulated bench (tests/data, made with `meterbench
//! run` and pulses cut to 3 per port and step): a PASS; a FAIL with the simulator's
//! `error_bump` of +1.6 % on the right port at 4–6 A, PF 1; an ERROR with a dead left
//! LED, its station relabelled `sim-2` so that there are two stations.

use chrono::NaiveDate;
use meterbench_runner::record::{Outcome, RunRecord};
use meterbench_store::{
    AuditOptions, DRIFTING_STATION, RunFilter, audit, audit_with, compact, ingest, list_runs,
    read_parquet, show_run, synthesize, write_samples_parquet,
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

fn ingest_three(root: &Path) -> (PathBuf, [RunRecord; 3]) {
    let store = root.join("store");
    let recs = [
        record("pass.json"),
        record("fail.json"),
        record("error.json"),
    ];
    for r in &recs {
        let bundle = bundle_for(root, r);
        // As the CLI does it: samples into the bundle before signing, ingest after.
        write_samples_parquet(r, &bundle.join("samples.parquet")).unwrap();
        ingest(&store, r, &bundle).unwrap();
    }
    (store, recs)
}

#[test]
fn ingest_list_filter_show() {
    let dir = tempfile::tempdir().unwrap();
    let (store, [pass, fail, error]) = ingest_three(dir.path());

    let all = list_runs(&store, &RunFilter::default()).unwrap();
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
        list_runs(&store, &f)
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

    let detail = show_run(&store, &fail.run_id).unwrap().unwrap();
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
    let samples = detail.samples_file.unwrap();
    assert!(samples.ends_with(format!(
        "samples/station=sim-1/date=2026-11-21/{}.parquet",
        fail.run_id
    )));
    // The store's copy is the bundle's file, byte for byte.
    let bundle_copy = dir
        .path()
        .join("reports")
        .join(&fail.run_id)
        .join("samples.parquet");
    assert_eq!(
        std::fs::read(samples).unwrap(),
        std::fs::read(bundle_copy).unwrap()
    );
    assert_eq!(
        detail.run.bundle,
        dir.path()
            .join("reports")
            .join(&fail.run_id)
            .canonicalize()
            .unwrap()
    );

    // The ERROR run has no accuracy point and so no points file, but its samples.
    let e = show_run(&store, &error.run_id).unwrap().unwrap();
    assert!(e.points.is_empty() && e.points_file.is_none());
    assert!(e.samples_file.is_some());
    assert_eq!(e.run.station, "sim-2");

    assert!(show_run(&store, "no-such-run").unwrap().is_none());
}

#[test]
fn ingest_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let (store, [pass, ..]) = ingest_three(dir.path());
    let before = show_run(&store, &pass.run_id).unwrap().unwrap();
    let bundle = dir.path().join("reports").join(&pass.run_id);
    ingest(&store, &pass, &bundle).unwrap();
    ingest(&store, &pass, &bundle).unwrap();
    assert_eq!(list_runs(&store, &RunFilter::default()).unwrap().len(), 3);
    let after = show_run(&store, &pass.run_id).unwrap().unwrap();
    assert_eq!(before, after);
}

#[test]
fn compaction_keeps_every_run_and_its_figures() {
    let dir = tempfile::tempdir().unwrap();
    let (store, [pass, fail, error]) = ingest_three(dir.path());
    let d = |day| NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
    let out = dir.path().join("audit");
    let before = audit(&store, d(1), d(30), &out).unwrap();
    let detail_before = show_run(&store, &fail.run_id).unwrap().unwrap();

    // The day of the runs is not over before the 22nd: nothing to do on the 21st.
    assert_eq!(compact(&store, d(21)).unwrap().files_merged, 0);
    let c = compact(&store, d(22)).unwrap();
    // samples: sim-1 (2 runs) and sim-2 (1); points: sim-1 (2 runs; the ERROR run has none)
    assert_eq!((c.partitions, c.files_merged), (3, 5));
    let part = store.join("points/station=sim-1/date=2026-11-21");
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

    let after = audit(&store, d(1), d(30), &out).unwrap();
    assert_eq!(figures(&before), figures(&after));
    let detail = show_run(&store, &fail.run_id).unwrap().unwrap();
    assert_eq!(detail.points, detail_before.points);
    assert_eq!(detail.points_file.unwrap(), part.join("compacted.parquet"));
    assert!(
        detail
            .samples_file
            .unwrap()
            .ends_with("samples/station=sim-1/date=2026-11-21/compacted.parquet")
    );
    assert!(
        show_run(&store, &error.run_id)
            .unwrap()
            .unwrap()
            .samples_file
            .is_some()
    );

    // Ingesting a run again after compaction: its rows leave the compacted file and
    // its own file holds them, once.
    let bundle = dir.path().join("reports").join(&pass.run_id);
    ingest(&store, &pass, &bundle).unwrap();
    assert_eq!(
        read_parquet(&part.join("compacted.parquet"))
            .unwrap()
            .height(),
        22
    );
    assert!(part.join(format!("{}.parquet", pass.run_id)).is_file());
    assert_eq!(
        figures(&audit(&store, d(1), d(30), &out).unwrap()),
        figures(&before)
    );
    assert_eq!(list_runs(&store, &RunFilter::default()).unwrap().len(), 3);
    // and a second compaction puts it back
    compact(&store, d(22)).unwrap();
    assert_eq!(
        read_parquet(&part.join("compacted.parquet"))
            .unwrap()
            .height(),
        44
    );
    assert_eq!(
        figures(&audit(&store, d(1), d(30), &out).unwrap()),
        figures(&before)
    );
}

/// The summary with every number to 7 significant digits: files merged in another
/// order sum in another order, and JSON text need not give back the last bit.
fn figures(s: &meterbench_store::AuditSummary) -> serde_json::Value {
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
    let err = list_runs(&dir.path().join("none"), &RunFilter::default()).unwrap_err();
    assert!(err.to_string().contains("no store at"), "{err}");
}

#[test]
fn audit_names_every_fail_and_error_run_with_its_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let (store, [pass, fail, error]) = ingest_three(dir.path());
    let out = dir.path().join("audits").join("2026-11");
    let d = |day| NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
    let s = audit(&store, d(1), d(30), &out).unwrap();

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
    let json: meterbench_store::AuditSummary =
        serde_json::from_slice(&std::fs::read(out.join("audit.json")).unwrap()).unwrap();
    assert_eq!(figures(&json), figures(&s));

    // The same store and range give the same files.
    let again = dir.path().join("again");
    audit(&store, d(1), d(30), &again).unwrap();
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
    let m = audit_with(&store, &opts, &marked).unwrap();
    assert_eq!(m.yield_target, Some(0.95));
    assert!(m.totals.below_yield_target);
    assert!(m.daily.iter().all(|d| d.counts.below_yield_target));
    let html = std::fs::read_to_string(marked.join("audit.html")).unwrap();
    assert!(html.contains("target of\n95.0 %"), "{html}");
    assert!(html.contains("<th class=\"bad\">33.3 %</th>"), "{html}");
    // Without one, nothing is marked.
    assert!(!s.totals.below_yield_target && s.yield_target.is_none());
}

#[test]
fn drifting_station_shows_in_its_control_charts() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let syn = synthesize(&store, 3000, 7).unwrap();
    assert_eq!(syn.runs, 3000);
    let fails = syn.fail as f64 / syn.runs as f64;
    assert!((0.005..0.03).contains(&fails), "FAIL share {fails}");
    assert!(syn.error > 0);

    let out = dir.path().join("audit");
    let mut opts = AuditOptions::new(syn.from, syn.to);
    opts.plots = false;
    let s = audit_with(&store, &opts, &out).unwrap();
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
