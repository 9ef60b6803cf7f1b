//! One installed binary, any folder: a bench home made by `meterbench init`, found by
//! `--home`, `METERBENCH_HOME` or the current folder, and every command reading the same
//! reports and store.

use std::path::Path;
use std::process::{Command, Output};

/// A configuration folder with no older bench's key in it.
fn empty_config() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

/// `meterbench ARGS` in `cwd`, with nothing of the caller's environment choosing a home,
/// a store or a key (not even an older bench's key in the user's configuration).
fn meterbench(cwd: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_meterbench"));
    c.args(args)
        .current_dir(cwd)
        .env("XDG_CONFIG_HOME", empty_config())
        .env_remove("METERBENCH_HOME")
        .env_remove("METERBENCH_STORE")
        .env_remove("METERBENCH_SIGNING_KEY")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn run_folders(reports: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(reports)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("record.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_home_made_by_init_serves_every_command_from_any_folder() {
    let home = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let h = home.path().to_str().unwrap();

    let init = meterbench(elsewhere.path(), &["init", h], &[]);
    assert_eq!(init.status.code(), Some(0), "{}", text(&init));
    let said = String::from_utf8_lossy(&init.stdout);
    assert!(said.contains("files written"), "{said}");
    assert!(said.contains("key id"), "{said}");
    for f in [
        "procedures/en50470-3-class-b.yaml",
        "fixtures/cpim1000.yaml",
        "hw/stations/sim.yaml",
        "templates/certificate.html.j2",
        "keys/signing-key.pem",
        "keys/signing-key.pub.pem",
        "keys/keyring.json",
    ] {
        assert!(home.path().join(f).is_file(), "{f} missing after init");
    }
    // Nothing of the home was put into the folder init was called from.
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);

    // A run by --home from another folder: its run, log and store go to the home.
    let run = meterbench(elsewhere.path(), &["--home", h, "run", "--quiet"], &[]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let reports = home.path().join("reports");
    assert_eq!(run_folders(&reports).len(), 1, "{}", text(&run));
    assert!(reports.join("issuance-log.jsonl").is_file());
    assert!(!elsewhere.path().join("reports").exists());

    // A second run by METERBENCH_HOME, naming a procedure by its name in the home.
    let eol = meterbench(
        elsewhere.path(),
        &[
            "run",
            "--quiet",
            "--procedure",
            "cpim1000-eol.yaml",
            "--answers",
            "sim-cpim1000.yaml",
        ],
        &[("METERBENCH_HOME", home.path())],
    );
    assert_eq!(eol.status.code(), Some(0), "{}", text(&eol));
    let runs = run_folders(&reports);
    assert_eq!(runs.len(), 2);

    // `runs` reads the store the runs were filed into, found through the same home.
    let list = meterbench(
        elsewhere.path(),
        &["--home", h, "runs", "list", "--json"],
        &[],
    );
    assert_eq!(list.status.code(), Some(0), "{}", text(&list));
    let listed: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let mut ids: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, runs);

    // `verify` trusts the home's own key by default.
    let bundle = reports.join(&runs[0]);
    let verify = meterbench(
        elsewhere.path(),
        &["verify", bundle.to_str().unwrap()],
        &[("METERBENCH_HOME", home.path())],
    );
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
    assert!(
        String::from_utf8_lossy(&verify.stdout).contains("by the trusted key"),
        "{}",
        text(&verify)
    );

    // Files named as the README names them (`reports/RUN`, `procedures/…`) are found in
    // the home from any folder: by verify, and by validate.
    let by_name = format!("reports/{}", runs[0]);
    let verify = meterbench(
        elsewhere.path(),
        &["verify", &by_name, "--log", "reports/issuance-log.jsonl"],
        &[("METERBENCH_HOME", home.path())],
    );
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
    let validate = meterbench(
        elsewhere.path(),
        &[
            "validate",
            "procedures/en50470-3-class-b.yaml",
            "hw/stations/sim.yaml",
        ],
        &[("METERBENCH_HOME", home.path())],
    );
    assert_eq!(validate.status.code(), Some(0), "{}", text(&validate));

    // From a folder that is no home, no key is trusted, and the answer says how to name
    // the home that signed it.
    let untrusted = meterbench(elsewhere.path(), &["verify", bundle.to_str().unwrap()], &[]);
    assert_eq!(untrusted.status.code(), Some(1), "{}", text(&untrusted));
    let said = String::from_utf8_lossy(&untrusted.stdout);
    assert!(
        said.contains("NOT TRUSTED") && said.contains("--home DIR"),
        "{said}"
    );

    // A second init keeps a lab's edits and its key.
    let edited = home.path().join("procedures/cpim1000-eol.yaml");
    let mut text_of_eol = std::fs::read_to_string(&edited).unwrap();
    text_of_eol.push_str("# edited by the lab\n");
    std::fs::write(&edited, &text_of_eol).unwrap();
    let again = meterbench(elsewhere.path(), &["--home", h, "init"], &[]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let said = String::from_utf8_lossy(&again.stdout);
    assert!(said.contains("0 files written"), "{said}");
    assert!(said.contains("kept"), "{said}");
    assert!(said.contains("already there"), "{said}");
    assert_eq!(std::fs::read_to_string(&edited).unwrap(), text_of_eol);
}

#[test]
fn a_folder_that_is_no_home_says_which_folder_was_searched_and_creates_nothing() {
    let empty = tempfile::tempdir().unwrap();
    let run = meterbench(empty.path(), &["run", "--quiet"], &[]);
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
    let err = String::from_utf8_lossy(&run.stderr);
    let shown = empty.path().canonicalize().unwrap();
    assert!(
        err.contains(&shown.display().to_string())
            || err.contains(&empty.path().display().to_string()),
        "{err}"
    );
    assert!(err.contains("the current folder"), "{err}");
    assert!(
        err.contains("--home") && err.contains("METERBENCH_HOME"),
        "{err}"
    );
    assert!(err.contains("meterbench init"), "{err}");
    assert_eq!(
        std::fs::read_dir(empty.path()).unwrap().count(),
        0,
        "a refused run left files behind"
    );

    // A file named that is neither here nor in the home says where it was looked for.
    let named = meterbench(
        empty.path(),
        &["validate", "--procedure", "nowhere.yaml"],
        &[("METERBENCH_HOME", empty.path())],
    );
    assert_eq!(named.status.code(), Some(2), "{}", text(&named));
    let said = String::from_utf8_lossy(&named.stdout);
    assert!(
        said.contains("procedure nowhere.yaml: no such file"),
        "{said}"
    );
    assert!(said.contains("procedures/nowhere.yaml"), "{said}");
    assert!(said.contains("named by METERBENCH_HOME"), "{said}");

    // The same for a file to validate, a store, a keyring and a home that is not there:
    // each says where it looked and how to name another.
    let validate = meterbench(empty.path(), &["validate", "procedures/nowhere.yaml"], &[]);
    assert_eq!(validate.status.code(), Some(2), "{}", text(&validate));
    assert!(
        text(&validate).contains("nor in the bench home") && text(&validate).contains("--home"),
        "{}",
        text(&validate)
    );
    let store = empty.path().join("reports/store");
    for args in [
        &["runs", "list"][..],
        &["audit", "--from", "2026-11-01", "--to", "2026-11-30"],
    ] {
        let out = meterbench(empty.path(), args, &[]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("no store at {}", store.display()))
                || err.contains(&format!(
                    "no store at {}",
                    empty
                        .path()
                        .canonicalize()
                        .unwrap()
                        .join("reports/store")
                        .display()
                )),
            "{err}"
        );
        assert!(
            err.contains("it is the store in the reports folder of the bench home")
                && err.contains("the current folder")
                && err.contains("--reports"),
            "{err}"
        );
    }
    let keys = meterbench(empty.path(), &["keys", "list"], &[]);
    assert_eq!(keys.status.code(), Some(2), "{}", text(&keys));
    assert!(
        text(&keys).contains("no keyring") && text(&keys).contains("--keyring"),
        "{}",
        text(&keys)
    );
    // A store named by --reports: said so.
    let elsewhere = empty.path().join("elsewhere");
    let out = meterbench(
        empty.path(),
        &["runs", "--reports", elsewhere.to_str().unwrap(), "list"],
        &[],
    );
    assert!(
        text(&out).contains("the store in the reports folder named by --reports"),
        "{}",
        text(&out)
    );
    let gone = empty.path().join("no-such-home");
    let out = meterbench(
        empty.path(),
        &["--home", gone.to_str().unwrap(), "runs", "list"],
        &[],
    );
    assert!(text(&out).contains("which is no folder"), "{}", text(&out));
    assert_eq!(
        std::fs::read_dir(empty.path()).unwrap().count(),
        0,
        "a refused command left files behind"
    );
}

#[test]
fn runs_and_audit_read_the_store_of_the_reports_folder_a_run_was_given() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let key = tempfile::tempdir().unwrap();
    let reports = tempfile::tempdir().unwrap();
    let r = reports.path().to_str().unwrap();
    let env = [("METERBENCH_SIGNING_KEY", key.path().join("k.pem"))];
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let run = meterbench(&repo, &["run", "--quiet", "--reports", r], &env);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    assert!(reports.path().join("store").is_dir());

    let list = meterbench(&repo, &["runs", "--reports", r, "list", "--json"], &env);
    assert_eq!(list.status.code(), Some(0), "{}", text(&list));
    let listed: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{}", text(&list));

    let today = chrono::Utc::now().date_naive().to_string();
    let audit = meterbench(
        &repo,
        &[
            "audit",
            "--reports",
            r,
            "--from",
            &today,
            "--to",
            &today,
            "--no-pdf",
        ],
        &env,
    );
    assert_eq!(audit.status.code(), Some(0), "{}", text(&audit));
    assert!(
        String::from_utf8_lossy(&audit.stdout).contains("1 runs (1 PASS"),
        "{}",
        text(&audit)
    );
    let out = reports.path().join(format!("audit-{today}-{today}"));
    assert!(out.join("audit.json").is_file(), "{}", text(&audit));
}

#[test]
fn a_bench_from_before_the_home_keeps_signing_with_its_key() {
    let home = tempfile::tempdir().unwrap();
    let config = tempfile::tempdir().unwrap();
    let h = home.path().to_str().unwrap();
    let older = config.path().join("meterbench/signing-key.pem");
    let env = [("XDG_CONFIG_HOME", config.path())];
    let generated = meterbench(
        home.path(),
        &["keys", "generate", "--out", older.to_str().unwrap()],
        &env,
    );
    assert_eq!(generated.status.code(), Some(0), "{}", text(&generated));
    let said = String::from_utf8_lossy(&generated.stdout);
    let older_id = said
        .lines()
        .find_map(|l| l.strip_prefix("key id:"))
        .unwrap()
        .trim()
        .to_string();
    // The DCC's key id is published with it: what a DCC's ds:KeyName must be.
    let dcc_id = said
        .lines()
        .find_map(|l| l.strip_prefix("DCC key id:"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let init = meterbench(home.path(), &["init", h], &env);
    assert_eq!(init.status.code(), Some(0), "{}", text(&init));
    // A home without a key of its own: the older bench's key signs (its log needs it).
    std::fs::remove_dir_all(home.path().join("keys")).unwrap();
    let run = meterbench(home.path(), &["run", "--quiet"], &env);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(said.contains(&format!("with key {older_id}")), "{said}");
    assert!(
        said.contains(&format!("its DCC with P-256 key {dcc_id}")),
        "{said}"
    );
    assert!(!home.path().join("keys").exists());
}

/// A mistyped key path does not start a second key in a folder that is not there: nothing
/// is switched on, nothing is created, and the message names the path. (Another key on
/// a log is refused by the log's check: `issuing.rs`.)
#[test]
fn a_mistyped_signing_key_is_refused_not_made() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let work = tempfile::tempdir().unwrap();
    let reports = work.path().join("reports");
    let r = reports.to_str().unwrap();
    let typo = work.path().join("kyes/signing-key.pem");
    let run = |key: &Path| {
        meterbench(
            &repo,
            &[
                "run",
                "--quiet",
                "--reports",
                r,
                "--signing-key",
                key.to_str().unwrap(),
            ],
            &[],
        )
    };
    let refused = run(&typo);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains(&format!("no folder {}", typo.parent().unwrap().display())),
        "{}",
        text(&refused)
    );
    assert!(!typo.parent().unwrap().exists() && !reports.exists());

    // The home's own keys/ is made on first use however the key is named: here by its
    // absolute path, in a home whose keys/ is gone.
    let home = work.path().join("home");
    let init = meterbench(work.path(), &["init", home.to_str().unwrap()], &[]);
    assert_eq!(init.status.code(), Some(0), "{}", text(&init));
    std::fs::remove_dir_all(home.join("keys")).unwrap();
    let own = std::path::absolute(home.join("keys/signing-key.pem")).unwrap();
    let first = meterbench(
        work.path(),
        &[
            "--home",
            home.to_str().unwrap(),
            "run",
            "--quiet",
            "--signing-key",
            own.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert!(own.is_file());
}
