//! A key change as a laboratory makes it: `meterbench keys rotate` on a bench home that
//! has issued, then issuing on. Old bundles stay verifiable, the log follows the
//! rotation, the retired key is refused at start with what to do, and a bundle signed by
//! the retired key is not trusted.

use std::path::Path;
use std::process::{Command, Output};

/// `meterbench ARGS` in `cwd`, with nothing of the caller's environment choosing a home,
/// a store or a key.
fn meterbench(cwd: &Path, args: &[&str]) -> Output {
    let config = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args(args)
        .current_dir(cwd)
        .env("XDG_CONFIG_HOME", config.path())
        .env_remove("METERBENCH_HOME")
        .env_remove("METERBENCH_STORE")
        .env_remove("METERBENCH_SIGNING_KEY")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
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

fn key_id_of(public: &Path) -> String {
    meterbench_signing::key_id(&meterbench_signing::load_verifying_key(public).unwrap())
}

#[test]
fn a_rotated_key_keeps_old_bundles_verifiable_and_the_retired_key_issues_nothing() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let init = meterbench(h, &["init", "."]);
    assert_eq!(init.status.code(), Some(0), "{}", text(&init));
    let keys = h.join("keys");
    assert!(
        keys.join("keyring.json").is_file(),
        "init starts the keyring"
    );
    let old_id = key_id_of(&keys.join("signing-key.pub.pem"));

    let first = meterbench(h, &["run", "--quiet"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let reports = h.join("reports");
    let before = run_folders(&reports);
    assert_eq!(before.len(), 1);

    // The rotation: logged by the old key, the keyring updated, the new key in place.
    let rotate = meterbench(h, &["keys", "rotate"]);
    let said = text(&rotate);
    assert_eq!(rotate.status.code(), Some(0), "{said}");
    let new_id = key_id_of(&keys.join("signing-key.pub.pem"));
    assert_ne!(new_id, old_id);
    assert!(
        said.contains(&format!(
            "hands over from key id {old_id} to key id {new_id}"
        )),
        "{said}"
    );
    let retired = keys.join(format!("retired/signing-key-{old_id}.pem"));
    assert!(retired.is_file(), "{said}");
    assert!(!keys.join("signing-key.next.pem").exists());
    let ring = meterbench_signing::Keyring::load(&keys.join("keyring.json")).unwrap();
    let ids: Vec<&str> = ring.keys.iter().map(|k| k.key_id.as_str()).collect();
    assert_eq!(ids, [old_id.as_str(), new_id.as_str()]);
    assert!(ring.keys[0].valid_until.is_some() && ring.keys[1].valid_until.is_none());
    assert_eq!(ring.keys[0].valid_until, ring.keys[1].valid_from);
    // The rotation is the old key's last entry: nothing it signs after it is trusted.
    assert_eq!(ring.keys[0].last_entry.as_ref().map(|l| l.seq), Some(2));
    let list = meterbench(h, &["keys", "list"]);
    assert_eq!(list.status.code(), Some(0), "{}", text(&list));
    assert!(text(&list).contains(", in use"), "{}", text(&list));

    // Issuing goes on with the new key, into the same log.
    let second = meterbench(h, &["run", "--quiet"]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let runs = run_folders(&reports);
    assert_eq!(runs.len(), 2);
    let old_bundle = reports.join(&before[0]);
    let new_bundle = reports.join(runs.iter().find(|r| !before.contains(r)).unwrap());

    // Both bundles verify against the bench's keyring, each with its own key, and each is
    // in the log, which names the hand-over.
    for (bundle, id) in [(&old_bundle, &old_id), (&new_bundle, &new_id)] {
        let v = meterbench(h, &["verify", bundle.to_str().unwrap()]);
        let said = text(&v);
        assert_eq!(v.status.code(), Some(0), "{said}");
        assert!(said.contains(&format!("by the trusted key {id}")), "{said}");
        assert!(said.contains("issued as entry"), "{said}");
    }
    // Away from its log, a retired key's bundle verifies with a note that its date is the
    // signer's own statement.
    let away = h.join("away");
    std::fs::create_dir_all(&away).unwrap();
    let copy = away.join(old_bundle.file_name().unwrap());
    std::fs::create_dir_all(&copy).unwrap();
    for f in std::fs::read_dir(&old_bundle).unwrap() {
        let f = f.unwrap().path();
        if f.is_dir() {
            let sub = copy.join(f.file_name().unwrap());
            std::fs::create_dir_all(&sub).unwrap();
            for g in std::fs::read_dir(&f).unwrap() {
                let g = g.unwrap().path();
                std::fs::copy(&g, sub.join(g.file_name().unwrap())).unwrap();
            }
        } else {
            std::fs::copy(&f, copy.join(f.file_name().unwrap())).unwrap();
        }
    }
    let v = meterbench(h, &["verify", copy.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    assert!(
        text(&v).contains(&format!("NOTE {}: key {old_id} is retired", copy.display())),
        "{}",
        text(&v)
    );
    let log = reports.join("issuance-log.jsonl");
    let v = meterbench(h, &["verify", "--log", log.to_str().unwrap()]);
    let said = text(&v);
    assert_eq!(v.status.code(), Some(0), "{said}");
    assert!(
        said.contains(&format!("key id {old_id} kept it from entry 1 to entry 2")),
        "{said}"
    );
    assert!(
        said.contains(&format!("key id {new_id} keeps it since entry 3")),
        "{said}"
    );

    // The retired key is refused before anything is switched on, saying what happened
    // and which key to sign with.
    let stale = meterbench(
        h,
        &["run", "--quiet", "--signing-key", retired.to_str().unwrap()],
    );
    let said = text(&stale);
    assert_eq!(stale.status.code(), Some(2), "{said}");
    assert!(
        said.contains("was retired by the key rotation at entry 2")
            && said.contains("nothing was switched on")
            && said.contains(&new_id),
        "{said}"
    );
    assert!(!said.contains("VERDICT"), "{said}");
    assert_eq!(run_folders(&reports).len(), 2, "no run was made");
    // Nor into a reports folder of its own, whose empty log would not stop it: the lab's
    // keyring ended its validity at the rotation.
    let elsewhere = h.join("reports-elsewhere");
    let stale = meterbench(
        h,
        &[
            "run",
            "--quiet",
            "--signing-key",
            retired.to_str().unwrap(),
            "--reports",
            elsewhere.to_str().unwrap(),
        ],
    );
    let said = text(&stale);
    assert_eq!(stale.status.code(), Some(2), "{said}");
    assert!(
        said.contains("cannot sign at") && said.contains("keyring.json"),
        "{said}"
    );
    assert!(!said.contains("VERDICT"), "{said}");

    // Trusting the old key alone, the new bundle is not trusted; the old one is.
    let old_pub = retired.with_file_name(format!("signing-key-{old_id}.pub.pem"));
    let v = meterbench(
        h,
        &[
            "verify",
            "--key",
            old_pub.to_str().unwrap(),
            new_bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(v.status.code(), Some(1), "{}", text(&v));
    assert!(text(&v).contains("does not trust"), "{}", text(&v));

    // A store filled from the bundles takes both: the keyring trusts each in its period.
    let store = h.join("other-store");
    let ingest = meterbench(
        h,
        &[
            "runs",
            "--store",
            store.to_str().unwrap(),
            "ingest",
            old_bundle.to_str().unwrap(),
            new_bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(ingest.status.code(), Some(0), "{}", text(&ingest));
    assert_eq!(
        text(&ingest).matches("filed ").count(),
        2,
        "{}",
        text(&ingest)
    );
}

/// A rotation cut short after it was logged (the keyring not yet updated, the keys not
/// yet moved) is finished by running the same command again, without a second entry.
#[test]
fn a_rotation_cut_short_is_finished_by_running_it_again() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let init = meterbench(h, &["init", "."]);
    assert_eq!(init.status.code(), Some(0), "{}", text(&init));
    let keys = h.join("keys");
    // A key that has issued nothing, or a reports folder without a log, has nothing to
    // hand over: refused, nothing made.
    let nothing = meterbench(h, &["keys", "rotate"]);
    assert_eq!(nothing.status.code(), Some(2), "{}", text(&nothing));
    assert!(
        text(&nothing).contains("there is no issuance log at"),
        "{}",
        text(&nothing)
    );
    assert!(!keys.join("signing-key.next.pem").exists());
    let first = meterbench(h, &["run", "--quiet"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let ring_before = std::fs::read_to_string(keys.join("keyring.json")).unwrap();
    let rotate = meterbench(h, &["keys", "rotate"]);
    assert_eq!(rotate.status.code(), Some(0), "{}", text(&rotate));
    let new_id = key_id_of(&keys.join("signing-key.pub.pem"));
    // Undo what came after the log entry: the keyring and the key moves.
    let retired = std::fs::read_dir(keys.join("retired"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| !p.to_string_lossy().ends_with(".pub.pem"))
        .unwrap();
    for (from, to) in [
        ("signing-key.pem", "signing-key.next.pem"),
        ("signing-key.pub.pem", "signing-key.next.pub.pem"),
    ] {
        std::fs::rename(keys.join(from), keys.join(to)).unwrap();
    }
    std::fs::rename(&retired, keys.join("signing-key.pem")).unwrap();
    std::fs::rename(
        retired.with_file_name(format!(
            "{}.pub.pem",
            retired.file_stem().unwrap().to_string_lossy()
        )),
        keys.join("signing-key.pub.pem"),
    )
    .unwrap();
    std::fs::write(keys.join("keyring.json"), ring_before).unwrap();

    // The bench will not issue in this state: the log is kept with a key the keyring
    // does not list yet.
    let run = meterbench(h, &["run", "--quiet"]);
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));

    let again = meterbench(h, &["keys", "rotate"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(key_id_of(&keys.join("signing-key.pub.pem")), new_id);
    let log = std::fs::read_to_string(h.join("reports/issuance-log.jsonl")).unwrap();
    assert_eq!(log.matches("key-rotation").count(), 1, "{log}");
    let run = meterbench(h, &["run", "--quiet"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));

    // Cut short between the two key moves: the old key aside, the new one not yet in
    // place. The same command finishes it.
    for (from, to) in [
        ("signing-key.pem", "signing-key.next.pem"),
        ("signing-key.pub.pem", "signing-key.next.pub.pem"),
    ] {
        std::fs::rename(keys.join(from), keys.join(to)).unwrap();
    }
    let again = meterbench(h, &["keys", "rotate"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        text(&again).contains("finished a rotation cut short"),
        "{}",
        text(&again)
    );
    assert_eq!(key_id_of(&keys.join("signing-key.pub.pem")), new_id);
    let run = meterbench(h, &["run", "--quiet"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));

    // A retired key is no successor: the log would go to a key that cannot sign.
    let back = meterbench(h, &["keys", "rotate", "--new", retired.to_str().unwrap()]);
    assert_eq!(back.status.code(), Some(2), "{}", text(&back));
    assert!(text(&back).contains("is in the keyring"), "{}", text(&back));
}

/// A lost key cannot sign its successor: the lab ends its validity, trusts a new key and
/// issues into a new reports folder. What the lost key signed before stays trusted;
/// nothing it could sign later is.
#[test]
fn a_lost_key_is_retired_and_a_new_one_added_by_hand() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let init = meterbench(h, &["init", "."]);
    assert_eq!(init.status.code(), Some(0), "{}", text(&init));
    let keys = h.join("keys");
    let lost_id = key_id_of(&keys.join("signing-key.pub.pem"));
    let first = meterbench(h, &["run", "--quiet"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let old_bundle = h.join("reports").join(&run_folders(&h.join("reports"))[0]);

    let retire = meterbench(h, &["keys", "retire", &lost_id]);
    assert_eq!(retire.status.code(), Some(0), "{}", text(&retire));
    assert!(
        text(&retire).contains("its last entry in"),
        "{}",
        text(&retire)
    );
    let ring = meterbench_signing::Keyring::load(&keys.join("keyring.json")).unwrap();
    assert_eq!(ring.keys[0].last_entry.as_ref().map(|l| l.seq), Some(1));
    // Never extended again.
    let extend = meterbench(
        h,
        &["keys", "retire", &lost_id, "--at", "2100-01-01T00:00:00Z"],
    );
    assert_eq!(extend.status.code(), Some(2), "{}", text(&extend));
    assert!(
        text(&extend).contains("never extended"),
        "{}",
        text(&extend)
    );

    // The retired key issues nothing more, refused before anything is switched on.
    let stale = meterbench(h, &["run", "--quiet"]);
    let said = text(&stale);
    assert_eq!(stale.status.code(), Some(2), "{said}");
    assert!(
        said.contains("cannot sign at") && said.contains("nothing was switched on"),
        "{said}"
    );

    let new_key = keys.join("replacement.pem");
    let generate = meterbench(h, &["keys", "generate", "--out", new_key.to_str().unwrap()]);
    assert_eq!(generate.status.code(), Some(0), "{}", text(&generate));
    assert!(text(&generate).contains("keys add"), "{}", text(&generate));
    let new_pub = keys.join("replacement.pub.pem");
    let add = meterbench(h, &["keys", "add", new_pub.to_str().unwrap()]);
    assert_eq!(add.status.code(), Some(0), "{}", text(&add));
    let again = meterbench(h, &["keys", "add", new_pub.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));

    // Into the old log, the new key is refused (the lost key keeps it, and cannot hand
    // it over); into a new reports folder, it issues.
    let key = new_key.to_str().unwrap();
    let old_log = meterbench(h, &["run", "--quiet", "--signing-key", key]);
    assert_eq!(old_log.status.code(), Some(2), "{}", text(&old_log));
    assert!(
        text(&old_log).contains("is kept with key id"),
        "{}",
        text(&old_log)
    );
    let reports2 = h.join("reports-2026b");
    let fresh = meterbench(
        h,
        &[
            "run",
            "--quiet",
            "--signing-key",
            key,
            "--reports",
            reports2.to_str().unwrap(),
        ],
    );
    assert_eq!(fresh.status.code(), Some(0), "{}", text(&fresh));
    let new_bundle = reports2.join(&run_folders(&reports2)[0]);
    for bundle in [&old_bundle, &new_bundle] {
        let v = meterbench(h, &["verify", bundle.to_str().unwrap()]);
        assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    }
}
