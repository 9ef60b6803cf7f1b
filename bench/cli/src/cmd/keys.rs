use clap::{Args, Subcommand};
use meterbench_session::paths::{BenchHome, public_key_path, start_keyring};
use meterbench_signing::{
    KEY_ROTATION_RUN_ID, Keyring, LastEntry, SigningKey, generate_key, key_id, keyring_path,
    load_signing_key, load_verifying_key, rotate_key, verify_issuance_log,
};
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create the bench's Ed25519 signing key (PKCS#8 PEM, mode 0600), its public key
    /// beside it (`NAME.pub.pem`) and its keyring (`keyring.json`, the key trusted from
    /// now on). Publish the keyring and the printed key id so customers can check them.
    Generate {
        /// Private key file [default: $METERBENCH_SIGNING_KEY, else keys/signing-key.pem
        /// in the bench home].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Hand the bench over to a new signing key: the issuance log gets an entry signed by
    /// the key in use that names the new key, the keyring ends the old key's validity
    /// there and starts the new key's, and the new key becomes the bench's. Bundles
    /// signed before stay verifiable; the old key can issue nothing more.
    Rotate {
        /// The key in use [default: --signing-key's default: $METERBENCH_SIGNING_KEY,
        /// else keys/signing-key.pem in the bench home].
        #[arg(long)]
        signing_key: Option<PathBuf>,
        /// The new private key: created when the file is not there. [default, for the
        /// bench home's own key: a new keys/signing-key.pem, the old one moved to
        /// keys/retired/signing-key-<key id>.pem]
        #[arg(long)]
        new: Option<PathBuf>,
        /// The reports folder whose issuance log records the rotation [default: reports
        /// in the bench home].
        #[arg(long)]
        reports: Option<PathBuf>,
    },
    /// Print the keyring: every key with its validity period.
    List {
        /// The keyring file [default: keyring.json beside the bench's signing key].
        #[arg(long)]
        keyring: Option<PathBuf>,
    },
    /// Trust a new key from now on without a rotation: for a key that replaces a lost or
    /// leaked one (which cannot sign its successor), or a second station's. Its runs
    /// begin a log of their own (a reports folder of their own).
    Add {
        /// The new key's public key (PEM), e.g. the NAME.pub.pem `keys generate` wrote.
        public_key: PathBuf,
        /// The keyring file [default: keyring.json beside the bench's signing key].
        #[arg(long)]
        keyring: Option<PathBuf>,
    },
    /// End a key's validity: what it signs after `--at` is no longer trusted. For a lost
    /// key, or a leaked one from the time it may have left your hands. A period is only
    /// ever shortened, never extended.
    Retire {
        /// The key id (16 hex digits, as `keys list` prints it).
        key_id: String,
        /// The end of its validity, RFC 3339 in UTC (2026-12-01T00:00:00Z) [default: now].
        #[arg(long)]
        at: Option<String>,
        /// The reports folder whose issuance log the key keeps: its last entry there is
        /// recorded, and nothing it signs after it is trusted [default: reports in the
        /// bench home].
        #[arg(long)]
        reports: Option<PathBuf>,
        /// The keyring file [default: keyring.json beside the bench's signing key].
        #[arg(long)]
        keyring: Option<PathBuf>,
    },
}

pub fn main(args: KeysArgs, home: &BenchHome) -> i32 {
    let done = match args.command {
        KeysCommand::Generate { out } => generate(out, home),
        KeysCommand::Rotate {
            signing_key,
            new,
            reports,
        } => rotate(signing_key, new, reports, home),
        KeysCommand::List { keyring } => list(keyring, home),
        KeysCommand::Add {
            public_key,
            keyring,
        } => add(&public_key, keyring, home),
        KeysCommand::Retire {
            key_id,
            at,
            reports,
            keyring,
        } => retire(&key_id, at.as_deref(), reports, keyring, home),
    };
    match done {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn generate(out: Option<PathBuf>, home: &BenchHome) -> Result<(), String> {
    let private = out.unwrap_or_else(|| home.own_signing_key());
    let public = public_key_path(&private);
    if let Some(dir) = private.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let key = generate_key(&private, &public).map_err(|e| e.to_string())?;
    crate::sayln!("private key: {}", private.display());
    crate::sayln!("public key:  {}", public.display());
    crate::sayln!("key id:      {}", key_id(&key.verifying_key()));
    // The DCC's XML signature key, derived from this one: a reader of a DCC alone
    // compares its ds:KeyName with the id published here.
    crate::sayln!(
        "DCC key id:  {} (P-256, derived; the DCC's ds:KeyName)",
        meterbench_signing::xmldsig::XmlSigningKey::derive(&key).key_id()
    );
    match start_keyring(&private, &key)? {
        Some(ring) => crate::sayln!("keyring:     {} (publish it)", ring.display()),
        None => crate::sayln!(
            "keyring:     {} exists and was left as it is: a key joins it by a rotation from the key in use (`meterbench keys rotate --new {}`) or, when that key is lost, by `meterbench keys add {}`",
            keyring_path(&private).display(),
            meterbench_session::shell_word(&private.display().to_string()),
            meterbench_session::shell_word(&public.display().to_string())
        ),
    }
    Ok(())
}

/// The keys `verify` and `runs ingest` trust: `--key` alone, else `--keyring`, else the
/// bench's keyring, else (a bench from before keyrings) its own public key; `None` when
/// the bench has neither.
pub(crate) fn trusted_keys(
    key: Option<&Path>,
    keyring: Option<&Path>,
    home: &BenchHome,
) -> Result<Option<Keyring>, String> {
    if let Some(path) = key {
        let k = load_verifying_key(path).map_err(|e| e.to_string())?;
        return Ok(Some(Keyring::single(
            k,
            format!("of the key {} alone (--key)", path.display()),
        )));
    }
    if let Some(path) = keyring {
        return Keyring::load(path).map(Some).map_err(|e| e.to_string());
    }
    let own = home.signing_key();
    let ring = keyring_of(&own, home);
    if ring.exists() {
        return Keyring::load(&ring).map(Some).map_err(|e| e.to_string());
    }
    let public = public_key_path(&own);
    if public.exists() {
        let k = load_verifying_key(&public).map_err(|e| e.to_string())?;
        return Ok(Some(Keyring::single(
            k,
            format!("of the bench's own key {} alone", public.display()),
        )));
    }
    Ok(None)
}

fn list(keyring: Option<PathBuf>, home: &BenchHome) -> Result<(), String> {
    let named = keyring.is_some();
    let path = keyring.unwrap_or_else(|| keyring_of(&home.signing_key(), home));
    if !named && !path.exists() {
        return Err(format!(
            "no keyring {}: it is made with the bench's first key (`meterbench run`, or `meterbench keys generate`) in {}; name one with --keyring FILE, or {}",
            path.display(),
            home.describe(),
            home.advice()
        ));
    }
    let ring = Keyring::load(&path).map_err(|e| e.to_string())?;
    crate::sayln!("keyring {}", path.display());
    for k in &ring.keys {
        crate::sayln!("  {}  {}", k.key_id, k.period());
    }
    Ok(())
}

fn add(public_key: &Path, keyring: Option<PathBuf>, home: &BenchHome) -> Result<(), String> {
    let path = keyring.unwrap_or_else(|| keyring_of(&home.signing_key(), home));
    let mut ring = Keyring::load(&path).map_err(|e| e.to_string())?;
    let key = load_verifying_key(public_key).map_err(|e| e.to_string())?;
    let id = key_id(&key);
    if let Some(k) = ring.get(&id) {
        return Err(format!(
            "key id {id} is in the keyring {} already ({}); a retired key is not trusted again",
            path.display(),
            k.period()
        ));
    }
    ring.keys
        .extend(Keyring::new_key(key, chrono::Utc::now(), "").keys);
    ring.save(&path).map_err(|e| e.to_string())?;
    crate::sayln!("keyring {} (publish it):", path.display());
    for k in &ring.keys {
        crate::sayln!("  {}  {}", k.key_id, k.period());
    }
    Ok(())
}

fn retire(
    id: &str,
    at: Option<&str>,
    reports: Option<PathBuf>,
    keyring: Option<PathBuf>,
    home: &BenchHome,
) -> Result<(), String> {
    let path = keyring.unwrap_or_else(|| keyring_of(&home.signing_key(), home));
    let mut ring = Keyring::load(&path).map_err(|e| e.to_string())?;
    let at = match at {
        None => chrono::Utc::now(),
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .map_err(|e| format!("--at {t:?}: not an RFC 3339 time ({e})"))?
            .to_utc(),
    };
    let known = ring.describe();
    let Some(k) = ring.keys.iter_mut().find(|k| k.key_id == id) else {
        return Err(format!(
            "key id {id} is not in the keyring {}, which holds {known}",
            path.display()
        ));
    };
    if k.valid_until.is_some_and(|u| u <= at) {
        return Err(format!(
            "key id {id} is {} already; a period is only shortened, never extended",
            k.period()
        ));
    }
    if k.valid_from.is_some_and(|f| at < f) {
        return Err(format!(
            "--at is before key id {id} became valid ({})",
            k.period()
        ));
    }
    k.valid_until = Some(chrono::SubsecRound::trunc_subsecs(at, 3));
    // Its last entry in the log it keeps: a leaked key can date an entry inside its
    // period, but not place it before this one.
    let log = reports
        .unwrap_or_else(|| home.reports())
        .join(meterbench_session::outputs::ISSUANCE_LOG);
    let before = Keyring {
        keys: ring.keys.clone(),
        origin: ring.origin.clone(),
    };
    if let Ok(summary) = verify_issuance_log(&log, &before)
        && let (Some(first), Some(last)) = (
            summary.entries.first(),
            summary.entries.iter().rev().find(|e| e.key_id == id),
        )
    {
        let entry = LastEntry {
            log: first.hash.clone(),
            seq: last.seq,
            hash: last.hash.clone(),
        };
        crate::sayln!(
            "its last entry in {}: seq {} (nothing it signs after it there is trusted)",
            log.display(),
            entry.seq
        );
        if let Some(k) = ring.keys.iter_mut().find(|k| k.key_id == id) {
            k.last_entry.get_or_insert(entry);
        }
    }
    ring.save(&path).map_err(|e| e.to_string())?;
    crate::sayln!("keyring {} (publish it):", path.display());
    for k in &ring.keys {
        crate::sayln!("  {}  {}", k.key_id, k.period());
    }
    Ok(())
}

fn rotate(
    signing_key: Option<PathBuf>,
    new: Option<PathBuf>,
    reports: Option<PathBuf>,
    home: &BenchHome,
) -> Result<(), String> {
    let own = home.file("keys/signing-key.pem");
    let next = own.with_file_name("signing-key.next.pem");
    if signing_key.is_none() && new.is_none() && !own.exists() && next.exists() {
        return finish_moves(&own, &next, reports, home);
    }
    let old_path = signing_key.unwrap_or_else(|| home.signing_key());
    let old = load_signing_key(&old_path).map_err(|e| {
        format!("the key in use: {e}; name it with --signing-key or $METERBENCH_SIGNING_KEY")
    })?;
    let old_id = key_id(&old.verifying_key());
    let ring_path = keyring_of(&old_path, home);
    let ring = meterbench_session::paths::keyring_for(&old_path, &old.verifying_key(), home)
        .map_err(|e| e.to_string())?;
    let log = reports
        .unwrap_or_else(|| home.reports())
        .join(meterbench_session::outputs::ISSUANCE_LOG);
    // The bench home's own key is replaced in its place, the old one kept aside; any
    // other key file stays where it is and the new one must be named.
    let in_place = new.is_none() && same_file(&old_path, &own);
    let new_path = match (&new, in_place) {
        (Some(p), _) => p.clone(),
        (None, true) => next.clone(),
        (None, false) => {
            return Err(format!(
                "the key in use {} is not the bench home's keys/signing-key.pem: name the new key with --new PATH",
                old_path.display()
            ));
        }
    };
    // The hand-over goes into the log the old key keeps; a folder without one (a mistyped
    // --reports) would get a log of the rotation alone, and the real log none.
    if !log.is_file() {
        return Err(format!(
            "there is no issuance log at {}: name the reports folder whose log the key keeps with --reports DIR; a key that has issued nothing needs no rotation (move it away and let the bench make a new one)",
            log.display()
        ));
    }
    let new_key = load_or_generate(&new_path)?;
    let new_id = key_id(&new_key.verifying_key());
    let resuming = verify_issuance_log(&log, &ring)
        .is_ok_and(|s| s.key_id.as_deref() == Some(new_id.as_str()));
    // A key the keyring knows already (a retired one above all) is no successor: the log
    // would be handed to a key that cannot sign. Only a rotation cut short meets it again.
    if let Some(k) = ring.get(&new_id).filter(|_| !resuming) {
        return Err(format!(
            "the new key {} (key id {new_id}) is in the keyring {} already ({}): rotate to a key of its own (a new file for --new, or none for one made here)",
            new_path.display(),
            ring_path.display(),
            k.period()
        ));
    }

    // The log first: the rotation is the old key's signed word. A rotation already
    // logged (a rotate cut short after it) is not logged twice.
    let resumed = match verify_issuance_log(&log, &ring) {
        Ok(summary) if summary.key_id.as_deref() == Some(new_id.as_str()) => summary
            .entries
            .iter()
            .rev()
            .find(|e| e.fields.run_id == KEY_ROTATION_RUN_ID)
            .cloned(),
        _ => None,
    };
    let entry = match resumed {
        Some(e) => e,
        None => {
            if let Some(dir) = log.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            rotate_key(&log, &old, &new_key.verifying_key(), &ring)
                .map_err(|e| format!("the rotation was not logged, nothing changed: {e}"))?
        }
    };
    let at = entry.issued;
    // The rotation is the old key's last entry in this log: the keyring records it.
    let first = verify_issuance_log(&log, &ring)
        .ok()
        .and_then(|s| s.entries.first().map(|e| e.hash.clone()));
    let last_entry = first.map(|log| LastEntry {
        log,
        seq: entry.seq,
        hash: entry.hash.clone(),
    });
    crate::sayln!(
        "logged: {} hands over from key id {old_id} to key id {new_id} at {}",
        log.display(),
        at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    let rotated = Keyring {
        origin: ring_path.display().to_string(),
        ..ring.rotated(&old_id, new_key.verifying_key(), at, last_entry)
    };
    rotated
        .save(&ring_path)
        .map_err(|e| format!("the rotation is logged, but the keyring was not updated ({e}); run the same command again to finish"))?;
    crate::sayln!("keyring {} (publish it):", ring_path.display());
    for k in &rotated.keys {
        crate::sayln!("  {}  {}", k.key_id, k.period());
    }
    if in_place {
        let retired = own.with_file_name(format!("retired/signing-key-{old_id}.pem"));
        move_key(&own, &retired)?;
        move_key(&new_path, &own)?;
        crate::sayln!(
            "the bench signs with key id {new_id} ({}); the old key was moved to {} (it can sign nothing more: destroy it when your procedures allow)",
            own.display(),
            retired.display()
        );
    } else {
        crate::sayln!(
            "sign with the new key from now on: --signing-key {} or METERBENCH_SIGNING_KEY={}",
            meterbench_session::shell_word(&new_path.display().to_string()),
            meterbench_session::shell_word(&new_path.display().to_string())
        );
    }
    Ok(())
}

/// A rotation cut short between its two key moves: the old key is in `keys/retired/`,
/// the new one still `keys/signing-key.next.pem`. Finished when the log and the keyring
/// hand over to it already.
fn finish_moves(
    own: &Path,
    next: &Path,
    reports: Option<PathBuf>,
    home: &BenchHome,
) -> Result<(), String> {
    let key = load_signing_key(next).map_err(|e| e.to_string())?;
    let id = key_id(&key.verifying_key());
    let ring = Keyring::load(&home.keyring()).map_err(|e| e.to_string())?;
    let log = reports
        .unwrap_or_else(|| home.reports())
        .join(meterbench_session::outputs::ISSUANCE_LOG);
    let handed =
        verify_issuance_log(&log, &ring).is_ok_and(|s| s.key_id.as_deref() == Some(id.as_str()));
    if !handed
        || ring
            .check(&key.verifying_key(), chrono::Utc::now())
            .is_err()
    {
        return Err(format!(
            "{} is missing and {} waits, but the issuance log {} and the keyring {} do not hand over to it (key id {id}): put the key in use back as {} and run `meterbench keys rotate` again",
            own.display(),
            next.display(),
            log.display(),
            home.keyring().display(),
            own.display()
        ));
    }
    move_key(next, own)?;
    crate::sayln!(
        "finished a rotation cut short: the bench signs with key id {id} ({})",
        own.display()
    );
    Ok(())
}

/// The keyring that judges the key at `private`: beside it when it has one, else the
/// bench home's.
fn keyring_of(private: &Path, home: &BenchHome) -> PathBuf {
    let beside = keyring_path(private);
    if beside.exists() {
        beside
    } else {
        home.keyring()
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn load_or_generate(path: &Path) -> Result<SigningKey, String> {
    if path.exists() {
        return load_signing_key(path).map_err(|e| e.to_string());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    generate_key(path, &public_key_path(path)).map_err(|e| e.to_string())
}

/// Move a private key and its public half (renames within one folder tree: never a copy
/// of a private key left behind).
fn move_key(from: &Path, to: &Path) -> Result<(), String> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    for (f, t) in [
        (from.to_path_buf(), to.to_path_buf()),
        (public_key_path(from), public_key_path(to)),
    ] {
        if f.exists() {
            std::fs::rename(&f, &t).map_err(|e| {
                format!("cannot move {} to {}: {e}; the rotation is logged and the keyring updated: move it by hand", f.display(), t.display())
            })?;
        }
    }
    Ok(())
}
