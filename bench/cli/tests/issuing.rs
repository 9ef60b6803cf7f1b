//! No run lost, none half-issued: many runs at once on one reports folder, a disk that
//! refuses the issuance log's write after signing, a log that cannot be written at all,
//! a torn last log line, a results store that cannot take a run. Each through the
//! command line as a station runs it.

mod common;
use common::{repo, run_folders};
use meterbench_runner::Outcome;
use meterbench_runner::record::RunRecord;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `meterbench run` of the unattended end-of-line procedure into `reports`, through
/// `bash -c` so a test can set a limit first (`prefix`, e.g. `ulimit -f 1024;`, in KiB).
fn eol(reports: &Path, key: &Path, prefix: &str) -> Command {
    let mut c = Command::new("bash");
    c.arg("-c")
        .arg(format!(
            "{prefix} exec \"$0\" run --quiet --procedure procedures/cpim1000-eol.yaml --answers hw/answers/sim-cpim1000.yaml --reports \"$1\""
        ))
        .arg(env!("CARGO_BIN_EXE_meterbench"))
        .arg(reports)
        .env("METERBENCH_SIGNING_KEY", key)
        .env_remove("METERBENCH_STORE")
        .current_dir(repo())
        .stdin(std::process::Stdio::null());
    c
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A temporary folder with one issued run in its reports: (folder, reports, key).
fn one_issued_run() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let key = dir.path().join("key.pem");
    let first = eol(&reports, &key, "").output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    (dir, reports, key)
}

fn record(folder: &Path) -> RunRecord {
    serde_json::from_str(&std::fs::read_to_string(folder.join("record.json")).unwrap()).unwrap()
}

fn meterbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap()
}

/// `meterbench ARGS` from the repository, signing with `key`, no one at the keyboard.
fn signed_by(key: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args(args)
        .env("METERBENCH_SIGNING_KEY", key)
        .current_dir(repo())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// The serial of every run in the store, as `runs list --json` lists them.
fn stored_serials(store: &Path) -> Vec<String> {
    let list = meterbench(&["runs", "--store", store.to_str().unwrap(), "list", "--json"]);
    assert_eq!(list.status.code(), Some(0), "{}", text(&list));
    let runs: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    runs.as_array()
        .unwrap()
        .iter()
        .map(|r| r["serial"].as_str().unwrap().to_string())
        .collect()
}

fn log_entries(reports: &Path, key: &Path) -> Vec<String> {
    let public = key.with_extension("pub.pem");
    let public = if public.exists() {
        public
    } else {
        key.to_path_buf()
    };
    let out = meterbench(&[
        "verify",
        "--log",
        reports.join("issuance-log.jsonl").to_str().unwrap(),
        "--key",
        public.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    std::fs::read_to_string(reports.join("issuance-log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["run_id"].as_str().unwrap().to_string()
        })
        .collect()
}

/// Twenty stations' runs at once on one reports folder, one issuance log, one store:
/// twenty folders, twenty complete records, twenty signed bundles, twenty log entries
/// in one chain, twenty runs in the store. Nothing lost.
#[test]
fn twenty_runs_at_once_on_one_reports_folder_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let key = dir.path().join("key.pem");
    // The key and its keyring exist before the twenty start (the first run creates them
    // otherwise).
    let made = Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args(["keys", "generate", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(made.status.code(), Some(0), "{}", text(&made));
    // All twenty started before any is waited for.
    let spawned: Vec<_> = (0..20)
        .map(|_| {
            eol(&reports, &key, "")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in spawned {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let folders = run_folders(&reports);
    assert_eq!(folders.len(), 20, "{folders:?}");
    let mut ids = Vec::new();
    for f in &folders {
        let r = record(f);
        assert_eq!(r.outcome, Outcome::Pass, "{}", f.display());
        assert!(f.join("MANIFEST.sig").is_file(), "{}", f.display());
        ids.push(r.run_id);
    }
    let mut logged = log_entries(&reports, &key);
    logged.sort();
    ids.sort();
    assert_eq!(logged, ids, "every run once in the log, none twice");
    assert_eq!(stored_serials(&reports.join("store")).len(), 20);
}

/// A disk that refuses the log's write after the bundle was signed (the file-size limit
/// of the process, as a full disk would): the signature is withdrawn, the folder says
/// NOT ISSUED, the bundle does not verify, the log is left whole, nothing is filed, the
/// run exits 2 with the record kept. The next run issues normally onto the same log.
#[test]
fn a_log_write_refused_after_signing_withdraws_the_signature() {
    let (_dir, reports, key) = one_issued_run();
    // Grow the log past 1 MiB with genuine entries, then limit the run's files to 1 MiB:
    // every bundle file fits, the log's next line does not.
    let log = reports.join("issuance-log.jsonl");
    let signing = meterbench_signing::load_signing_key(&key).unwrap();
    let mut lines = std::fs::read_to_string(&log).unwrap();
    let mut last: serde_json::Value = serde_json::from_str(lines.lines().last().unwrap()).unwrap();
    while lines.len() < (1 << 20) + 4096 {
        let entry = meterbench_signing::IssuanceEntry::new_signed(
            last["seq"].as_u64().unwrap() + 1,
            chrono::Utc::now(),
            meterbench_signing::IssuanceFields {
                run_id: format!("filler-{}", last["seq"]),
                bundle: "elsewhere".into(),
                manifest_sha256: "0".repeat(64),
            },
            last["hash"].as_str().unwrap(),
            &signing,
        );
        let line = entry.to_json_line();
        lines += &line;
        lines.push('\n');
        last = serde_json::from_str(&line).unwrap();
    }
    std::fs::write(&log, &lines).unwrap();

    let out = eol(&reports, &key, "trap '' XFSZ; ulimit -f 1024;")
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("error: bundle: not issued: the issuance log")
            && said.contains("signature was withdrawn"),
        "{said}"
    );
    assert!(!said.contains("filed in the results store"), "{said}");
    let folders = run_folders(&reports);
    let unissued = folders
        .iter()
        .find(|f| f.join("NOT-ISSUED.txt").is_file())
        .expect("the folder says so");
    assert!(!unissued.join("MANIFEST.sig").exists());
    assert_eq!(
        record(unissued).outcome,
        Outcome::Pass,
        "the record is kept"
    );
    let verify = meterbench(&["verify", unissued.to_str().unwrap()]);
    assert_ne!(verify.status.code(), Some(0), "{}", text(&verify));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        lines,
        "the log is whole"
    );

    let next = eol(&reports, &key, "").output().unwrap();
    assert_eq!(next.status.code(), Some(0), "{}", text(&next));
    let entries = log_entries(&reports, &key);
    assert!(!entries.contains(&record(unissued).run_id));
}

/// A log that cannot be written at all (here a folder where the file should be) stops
/// the run before anything is switched on: no run would be issued.
#[test]
fn a_log_that_cannot_be_written_stops_the_run_before_switch_on() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    std::fs::create_dir_all(reports.join("issuance-log.jsonl")).unwrap();
    let out = eol(&reports, &dir.path().join("key.pem"), "")
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("cannot take an entry, so no run would be issued: nothing was switched on"),
        "{said}"
    );
    assert!(run_folders(&reports).is_empty(), "a run was made");
}

/// A torn last line (a crash mid-write) is repaired by the next run: the bytes are kept
/// beside the log, a signed `log-repair` entry says so, the run is issued, and the whole
/// log verifies.
#[test]
fn a_torn_log_line_is_repaired_by_the_next_run() {
    let (_dir, reports, key) = one_issued_run();
    let log = reports.join("issuance-log.jsonl");
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut f, b"{\"seq\":2,\"issued\":\"2026-").unwrap();
    drop(f);
    let next = eol(&reports, &key, "").output().unwrap();
    let said = text(&next);
    assert_eq!(next.status.code(), Some(0), "{said}");
    assert!(
        said.contains("the issuance log's torn last line was repaired"),
        "{said}"
    );
    let entries = log_entries(&reports, &key);
    assert_eq!(entries.len(), 3, "{entries:?}");
    assert_eq!(entries[1], "log-repair");
    let kept: Vec<_> = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("issuance-log.jsonl.torn-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
}

/// A store that cannot take a run (here a file where its folder should be) queues it;
/// the next run, once the store is back, files the queued run and its own.
#[test]
fn a_run_the_store_cannot_take_is_queued_and_filed_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let key = dir.path().join("key.pem");
    std::fs::create_dir_all(&reports).unwrap();
    std::fs::write(reports.join("store"), "not a store").unwrap();
    let first = eol(&reports, &key, "").output().unwrap();
    let said = text(&first);
    assert!(
        said.contains("warning: store: the run was not filed in the results store")
            && said.contains("queued in"),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(reports.join("store.unfiled"))
            .unwrap()
            .lines()
            .count(),
        1
    );
    std::fs::remove_file(reports.join("store")).unwrap();
    let next = eol(&reports, &key, "").output().unwrap();
    let said = text(&next);
    assert_eq!(next.status.code(), Some(0), "{said}");
    assert!(
        said.contains("1 run(s) queued by earlier filings filed too"),
        "{said}"
    );
    assert_eq!(stored_serials(&reports.join("store")).len(), 2);
    // Nothing left queued; `runs ingest` says so.
    let ingest = meterbench(&[
        "runs",
        "--store",
        reports.join("store").to_str().unwrap(),
        "ingest",
    ]);
    assert_eq!(ingest.status.code(), Some(0), "{}", text(&ingest));
    assert!(
        String::from_utf8_lossy(&ingest.stdout).contains("no runs queued"),
        "{}",
        text(&ingest)
    );
}

/// A run the store can never take as it is (the device's serial number, read at the run,
/// is longer than the store's column; the texts of the station, procedure and fixture
/// files are refused before switch-on, below) is issued, said not filed with the field
/// named, and not queued: it would be refused again at every later run.
#[test]
fn a_run_the_store_refuses_for_good_is_not_queued() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let station = dir.path().join("long-name.yaml");
    let sim = std::fs::read_to_string(repo().join("hw/stations/sim.yaml")).unwrap();
    assert!(sim.contains("serial_number: SIM-CPIM-000123\n"));
    std::fs::write(
        &station,
        sim.replace(
            "serial_number: SIM-CPIM-000123\n",
            &format!("serial_number: SIM-CPIM-000123{}\n", "S".repeat(120)),
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args([
            "run",
            "--quiet",
            "--procedure",
            "procedures/cpim1000-eol.yaml",
            "--reports",
        ])
        .arg(&reports)
        .arg("--station")
        .arg(&station)
        .env("METERBENCH_SIGNING_KEY", dir.path().join("key.pem"))
        .env_remove("METERBENCH_STORE")
        .current_dir(repo())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let said = text(&out);
    assert!(
        said.contains("runs.dut_serial") && said.contains("it is not queued"),
        "{said}"
    );
    assert_eq!(run_folders(&reports).len(), 1, "the run is issued: {said}");
    let queue = reports.join("store.unfiled");
    assert!(
        !queue.exists() || std::fs::read_to_string(&queue).unwrap().trim().is_empty(),
        "{said}"
    );

    // A station name, or an instrument's calibration id, longer than the store keeps:
    // refused before anything is switched on, naming the file, by run and validate
    // alike (validate of the file alone too).
    let long_name = dir.path().join("long-name-2.yaml");
    std::fs::write(
        &long_name,
        sim.replace(
            "\nname: Simulated bench 1\n",
            &format!("\nname: {}\n", "S".repeat(255)),
        ),
    )
    .unwrap();
    let long_calibration = dir.path().join("long-calibration.yaml");
    std::fs::write(
        &long_calibration,
        sim.replace(
            "id: SIM-CAL-SRC-2026-01,",
            &format!("id: SIM-CAL-{},", "S".repeat(120)),
        ),
    )
    .unwrap();
    let other_reports = dir.path().join("refused");
    for (file, says) in [
        (
            &long_name,
            "the station's name is 255 characters; the results store keeps at most 200",
        ),
        (
            &long_calibration,
            "the source's calibration id is 128 characters; the results store keeps at most 100",
        ),
    ] {
        for args in [
            vec![
                "run",
                "--quiet",
                "--reports",
                other_reports.to_str().unwrap(),
                "--station",
            ],
            vec!["validate", "--station"],
            vec!["validate"],
        ] {
            let file = file.to_str().unwrap();
            let out = signed_by(
                &dir.path().join("key.pem"),
                &[args.as_slice(), &[file]].concat(),
            );
            let said = text(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {said}");
            assert!(
                said.contains(&format!("{file}: {says}")),
                "{args:?}: {said}"
            );
        }
    }
    // A station id and a serial number each as long as the store keeps make a run id
    // longer than it keeps (the run's folder name too): refused before switch-on.
    let long_id = dir.path().join("long-id.yaml");
    std::fs::write(
        &long_id,
        sim.replacen("\nid: sim-1\n", &format!("\nid: {}\n", "S".repeat(100)), 1),
    )
    .unwrap();
    let serial = "A".repeat(95);
    for args in [
        vec![
            "run",
            "--quiet",
            "--reports",
            other_reports.to_str().unwrap(),
        ],
        vec!["validate"],
    ] {
        let station = long_id.to_str().unwrap();
        let out = signed_by(
            &dir.path().join("key.pem"),
            &[
                args.as_slice(),
                &["--serial", &serial, "--station", station],
            ]
            .concat(),
        );
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {said}");
        // 20 (the start time) + 1 + 100 + 1 + 95.
        assert!(
            said.contains(&format!(
                "{}: the run id of position 1 (start time, this station's id, serial number {serial}) is 217 characters; the results store keeps at most 200",
                long_id.display()
            )),
            "{args:?}: {said}"
        );
    }
    assert!(!other_reports.exists(), "nothing was started");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// The store files only what the bench issued: a copy with an edited record, the same
/// run tampered with (it would re-point the run to the copy), a bundle re-signed with
/// another key and its own public key, and one cut from the issuance log beside it are
/// each refused by `runs ingest`, naming what is wrong; the store keeps the one true run.
#[test]
fn runs_ingest_refuses_forged_tampered_and_resigned_bundles() {
    let (dir, reports, key) = one_issued_run();
    let real = run_folders(&reports).remove(0);
    let run_id = record(&real).run_id;
    let store = reports.join("store");
    let ingest = |folder: &Path| {
        meterbench(&[
            "runs",
            "--store",
            store.to_str().unwrap(),
            "ingest",
            "--key",
            key.with_extension("pub.pem").to_str().unwrap(),
            folder.to_str().unwrap(),
        ])
    };
    let edit_record = |folder: &Path, from: &str, to: &str| {
        let path = folder.join("record.json");
        let t = std::fs::read_to_string(&path).unwrap();
        assert!(t.contains(from));
        std::fs::write(&path, t.replace(from, to)).unwrap();
    };

    // A forged copy: another serial in the record.
    let forged = dir.path().join("forged");
    copy_dir(&real, &forged);
    edit_record(&forged, "SIM-CPIM-000123", "FORGED-1");
    let out = ingest(&forged);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("not filed") && said.contains("record.json"),
        "{said}"
    );

    // The real run tampered with in a copy: refused, the run still points at its bundle.
    let tampered = dir.path().join("tampered");
    copy_dir(&real, &tampered);
    edit_record(&tampered, "\"outcome\":\"PASS\"", "\"outcome\":\"FAIL\"");
    assert_eq!(ingest(&tampered).status.code(), Some(2));

    // Re-signed with another key, which the bundle carries: intact as signed, but not
    // by the trusted key.
    let resigned = dir.path().join("resigned");
    copy_dir(&real, &resigned);
    for f in ["MANIFEST.sha256", "MANIFEST.sig", "signer.pub.pem"] {
        std::fs::remove_file(resigned.join(f)).unwrap();
    }
    edit_record(&resigned, "SIM-CPIM-000123", "FORGED-2");
    let other = meterbench_signing::SigningKey::from_bytes(&[7; 32]);
    meterbench_signing::sign_bundle(&resigned, &other, "a forger").unwrap();
    let out = ingest(&resigned);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("not filed"), "{said}");

    // Cut from its issuance log (the log beside it without its entry, as `verify` finds
    // it): refused as `verify` refuses it.
    let cut_reports = dir.path().join("cut");
    let cut = cut_reports.join(real.file_name().unwrap());
    copy_dir(&real, &cut);
    std::fs::write(cut_reports.join("issuance-log.jsonl"), "").unwrap();
    let out = ingest(&cut);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("not filed") && said.contains("issuance log"),
        "{said}"
    );
    // Named from inside it (`.`): the log beside it is found all the same.
    let from_inside = Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args([
            "runs",
            "--store",
            store.to_str().unwrap(),
            "ingest",
            "--key",
        ])
        .arg(key.with_extension("pub.pem"))
        .arg(".")
        .current_dir(&cut)
        .output()
        .unwrap();
    assert_eq!(from_inside.status.code(), Some(2), "{}", text(&from_inside));

    assert_eq!(stored_serials(&store), ["SIM-CPIM-000123"]);
    let show = meterbench(&[
        "runs",
        "--store",
        store.to_str().unwrap(),
        "show",
        "--json",
        &run_id,
    ]);
    let shown: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(
        shown["run"]["bundle"].as_str().unwrap(),
        real.to_str().unwrap()
    );
    // The real bundle itself is filed again without complaint.
    assert_eq!(ingest(&real).status.code(), Some(0));

    // `verify` without --key, on the bench (whose own key is the trusted one): the real
    // bundle is OK and found in its issuance log; the re-signed one is not trusted.
    // A bench home of its own (an empty folder): the repository's, where other tests
    // leave a keyring, would be trusted too.
    let no_home = dir.path().join("no-home");
    std::fs::create_dir_all(&no_home).unwrap();
    let verify = |bundle: &Path, own_key: &Path| {
        Command::new(env!("CARGO_BIN_EXE_meterbench"))
            .arg("verify")
            .arg(bundle)
            .env("METERBENCH_SIGNING_KEY", own_key)
            .env("METERBENCH_HOME", &no_home)
            .current_dir(repo())
            .output()
            .unwrap()
    };
    let out = verify(&real, &key);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("by the trusted key") && said.contains("issued as entry 1 of"),
        "{said}"
    );
    let out = verify(&resigned, &key);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    // Where no trusted key is at hand (no key, no keyring beside it), the answer is that
    // it could not be checked.
    let out = verify(&resigned, &dir.path().join("no-keys/no-such-key.pem"));
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("NOT TRUSTED") && said.contains("--key"),
        "{said}"
    );
    // A bundle its log does not hold (the log's entry taken away) is not issued.
    let log = reports.join("issuance-log.jsonl");
    std::fs::write(&log, "").unwrap();
    let out = verify(&real, &key);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("issuance-log.jsonl"), "{said}");
}

/// Entries cut off the end of the issuance log leave a chain that verifies on its own;
/// the signed bundles beside it contradict it, and `verify --log` names them.
#[test]
fn a_log_cut_at_its_end_is_contradicted_by_its_bundles() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let key = dir.path().join("key.pem");
    for _ in 0..3 {
        let out = eol(&reports, &key, "").output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let log = reports.join("issuance-log.jsonl");
    let verify_log = || {
        meterbench(&[
            "verify",
            "--log",
            log.to_str().unwrap(),
            "--key",
            key.with_extension("pub.pem").to_str().unwrap(),
        ])
    };
    assert_eq!(verify_log().status.code(), Some(0));
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    std::fs::write(&log, format!("{}\n", lines[0])).unwrap();
    let out = verify_log();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert_eq!(
        said.matches("is not in it (entries cut off its end")
            .count(),
        2,
        "{said}"
    );
    // A customer holding only the last bundle and the published log sees the cut too: the
    // bundle carries, signed, the head it was appended after.
    let last = run_folders(&reports).pop().unwrap();
    assert!(
        std::fs::read_to_string(last.join("MANIFEST.sha256"))
            .unwrap()
            .contains("issuance-head.json")
    );
    let out = meterbench(&[
        "verify",
        last.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
        "--key",
        key.with_extension("pub.pem").to_str().unwrap(),
    ]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(
            "appended after entry 2 of the issuance log, which now ends at entry 1: entries were cut off the log's end"
        ),
        "{said}"
    );
}

/// A run with another signing key on a reports folder whose log the bench's key keeps is
/// refused before anything is switched on, naming both key ids and what to do; it used
/// to measure, print a verdict, and then fail to issue.
#[test]
fn another_key_on_an_existing_log_is_refused_before_switch_on() {
    let (dir, reports, _key) = one_issued_run();
    let other = dir.path().join("other.pem");
    let out = eol(&reports, &other, "").output().unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("is kept with key id")
            && said.contains("nothing was switched on")
            && said.contains("--reports DIR"),
        "{said}"
    );
    assert!(!said.contains("VERDICT"), "{said}");
    assert_eq!(run_folders(&reports).len(), 1, "no second run was made");
}

/// The command a run says to check its bundle with pastes into a shell and passes, for a
/// key and a reports folder with spaces in their names: quoted, and naming the keyring the
/// station trusted (`verify` alone looks beside the bench home's default key).
#[test]
fn the_verify_command_a_run_suggests_pastes_and_passes() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("my reports");
    let key = dir.path().join("my keys").join("k.pem");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    let run = eol(&reports, &key, "").output().unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let said = String::from_utf8_lossy(&run.stdout);
    let suggested = said
        .lines()
        .find_map(|l| l.split_once("check it with: ").map(|(_, c)| c.to_string()))
        .unwrap_or_else(|| panic!("{said}"));
    assert!(
        suggested.starts_with("meterbench verify '") && suggested.contains(" --keyring '"),
        "{suggested}"
    );
    let pasted = suggested.replacen(
        "meterbench",
        &format!("'{}'", env!("CARGO_BIN_EXE_meterbench")),
        1,
    );
    let check = Command::new("bash")
        .arg("-c")
        .arg(&pasted)
        .env_remove("METERBENCH_SIGNING_KEY")
        .current_dir(repo())
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(0), "{pasted}\n{}", text(&check));
}
