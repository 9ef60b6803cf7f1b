//! Many stations, one results store on a real PostgreSQL server (a fresh database per
//! test, see `meterbench-testpg`): stations file at once as separate processes, and a
//! store out of reach changes no verdict.

mod common;

use common::{repo, run_folders};
use meterbench_runner::record::RunRecord;
use meterbench_store::{RunFilter, Store, StoreLocation, point_rows};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// `meterbench run` of the end-of-line procedure on `station`, into `reports`, filed
/// into `store`.
fn eol_run(station: &Path, reports: &Path, key: &Path, store: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args([
            "run",
            "--quiet",
            "--procedure",
            "procedures/cpim1000-eol.yaml",
        ])
        .args(["--answers", "hw/answers/sim-cpim1000.yaml", "--station"])
        .arg(station)
        .arg("--reports")
        .arg(reports)
        .args(["--store", store])
        .env("METERBENCH_SIGNING_KEY", key)
        .env_remove("METERBENCH_STORE")
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The simulated station under another id, as a second bench of the lab would be.
fn station_file(dir: &Path, id: &str) -> PathBuf {
    let sim = std::fs::read_to_string(repo().join("hw/stations/sim.yaml")).unwrap();
    assert!(sim.contains("\nid: sim-1\n"));
    let path = dir.join(format!("{id}.yaml"));
    std::fs::write(
        &path,
        sim.replace("\nid: sim-1\n", &format!("\nid: {id}\n")),
    )
    .unwrap();
    path
}

/// Eight stations (eight processes at a time, two rounds) file their runs into one
/// PostgreSQL store: every run is there once, under its own id, whole (its instruments
/// and every accuracy point of its record), and nothing is left queued.
#[test]
fn eight_stations_file_into_one_postgres_store_at_once() {
    let url = meterbench_testpg::database();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    // One key for the lab's benches: made once, before the stations race to create it.
    let first = eol_run(
        &station_file(dir.path(), "line-0"),
        &dir.path().join("reports-0"),
        &key,
        &url,
    );
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let stations: Vec<(PathBuf, PathBuf)> = (1..=8)
        .map(|i| {
            (
                station_file(dir.path(), &format!("line-{i}")),
                dir.path().join(format!("reports-{i}")),
            )
        })
        .collect();
    for _round in 0..2 {
        let outputs: Vec<Output> = std::thread::scope(|s| {
            let handles: Vec<_> = stations
                .iter()
                .map(|(station, reports)| s.spawn(|| eol_run(station, reports, &key, &url)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for o in &outputs {
            let said = text(o);
            assert_eq!(o.status.code(), Some(0), "{said}");
            assert!(
                said.contains("filed in the results store postgres://"),
                "{said}"
            );
            assert!(!said.contains("not filed"), "{said}");
        }
    }

    let store = Store::open(&StoreLocation::parse(&url)).unwrap();
    let runs = store.list_runs(&RunFilter::default()).unwrap();
    let mut folders: BTreeMap<String, PathBuf> = BTreeMap::new();
    for i in 0..=8 {
        let reports = dir.path().join(format!("reports-{i}"));
        for f in run_folders(&reports) {
            let record: RunRecord =
                serde_json::from_str(&std::fs::read_to_string(f.join("record.json")).unwrap())
                    .unwrap();
            folders.insert(record.run_id, f);
        }
        assert!(
            !reports.join("postgres-store.unfiled").exists(),
            "a run of {} was queued",
            reports.display()
        );
    }
    assert_eq!(folders.len(), 17);
    let ids: BTreeSet<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids.len(), runs.len(), "duplicate run ids");
    assert_eq!(
        ids,
        folders.keys().map(String::as_str).collect::<BTreeSet<_>>()
    );
    let per_station = runs.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.station.as_str()).or_insert(0) += 1;
        m
    });
    assert_eq!(per_station.len(), 9);
    assert!(
        per_station
            .iter()
            .all(|(s, n)| *n == if *s == "line-0" { 1 } else { 2 })
    );
    for run in &runs {
        let folder = &folders[&run.run_id];
        let record = RunRecord::read(&folder.join("record.json")).unwrap();
        let detail = store.show_run(&run.run_id).unwrap().unwrap();
        assert_eq!(detail.instruments.len(), record.instruments.len());
        let date = run.date.format("%Y-%m-%d").to_string();
        let expected = point_rows(&record, &date, &run.started_utc);
        assert!(!expected.is_empty());
        assert_eq!(detail.points.len(), expected.len(), "{}", run.run_id);
        assert_eq!(run.bundle, folder.canonicalize().unwrap());
    }
}

/// A PostgreSQL store out of reach: the run keeps its verdict and its certificate, is
/// queued on this machine, and `runs ingest` files it once the store is back.
#[test]
fn an_unreachable_shared_store_changes_no_verdict_and_the_run_is_filed_later() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    let reports = dir.path().join("reports");
    let nowhere = tempfile::tempdir().unwrap();
    let down = format!(
        "postgres:///bench?host={}&user=lab&password=s3cret&connect_timeout=3",
        nowhere.path().display()
    );
    let station = repo().join("hw/stations/sim.yaml");
    let run = eol_run(&station, &reports, &key, &down);
    let said = text(&run);
    assert_eq!(run.status.code(), Some(0), "{said}");
    assert!(said.contains("PASS"), "{said}");
    assert!(
        said.contains("the run was not filed in the results store postgres:///bench"),
        "{said}"
    );
    assert!(said.contains("queued in"), "{said}");
    // The command it suggests pastes into a shell: the URL's `&` quoted.
    assert!(
        said.contains(&format!(
            "or now: meterbench runs --reports {} --store 'postgres:///bench?host=",
            reports.display()
        )) && said.contains("ingest (with the URL's password)"),
        "{said}"
    );
    assert!(!said.contains("s3cret"), "{said}");
    let queue = reports.join("postgres-store.unfiled");
    assert_eq!(std::fs::read_to_string(&queue).unwrap().lines().count(), 1);
    assert_eq!(run_folders(&reports).len(), 1);

    let url = meterbench_testpg::database();
    let ingest = Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args(["runs", "--reports"])
        .arg(&reports)
        .args(["--store", &url, "ingest"])
        .env("METERBENCH_SIGNING_KEY", &key)
        .current_dir(repo())
        .output()
        .unwrap();
    assert_eq!(ingest.status.code(), Some(0), "{}", text(&ingest));
    assert!(
        String::from_utf8_lossy(&ingest.stdout).contains("(queued)"),
        "{}",
        text(&ingest)
    );
    let store = Store::open(&StoreLocation::parse(&url)).unwrap();
    let runs = store.list_runs(&RunFilter::default()).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].bundle,
        run_folders(&reports)[0].canonicalize().unwrap()
    );
    assert!(std::fs::read_to_string(&queue).unwrap().trim().is_empty());
}
