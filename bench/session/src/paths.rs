//! Where the bench keeps its things: the bench home (procedures, fixtures, stations,
//! templates, reports, the results store and the signing key), found by `--home`, else
//! `$METERBENCH_HOME`, else the current folder, so that one installed binary serves any
//! folder and every command reads the same reports and store.

use meterbench_signing::{Keyring, SigningKey, generate_key, keyring_path, load_signing_key};
use meterbench_store::StoreLocation;
use std::path::{Path, PathBuf};

/// The environment variable naming the bench home.
pub const HOME_VARIABLE: &str = "METERBENCH_HOME";

/// How the bench home was found: said in every message about a file it lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HomeOrigin {
    /// `--home DIR`.
    Flag,
    /// `$METERBENCH_HOME`.
    Environment,
    /// Neither was given: the current folder.
    CurrentFolder,
}

/// A bench home: a folder holding `procedures/`, `fixtures/`, `hw/stations/`,
/// `hw/answers/`, `templates/`, `reports/` (runs, the issuance log, `store/`) and
/// `keys/` (the signing key). `meterbench init` creates one; the repository is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchHome {
    root: PathBuf,
    origin: HomeOrigin,
}

impl BenchHome {
    /// The home named by `flag`, else by `$METERBENCH_HOME`, else the current folder.
    pub fn locate(flag: Option<&Path>) -> BenchHome {
        if let Some(dir) = flag {
            return BenchHome::at(dir, HomeOrigin::Flag);
        }
        match std::env::var_os(HOME_VARIABLE) {
            Some(dir) if !dir.is_empty() => BenchHome::at(Path::new(&dir), HomeOrigin::Environment),
            _ => BenchHome::at(Path::new("."), HomeOrigin::CurrentFolder),
        }
    }

    /// The home at `root`, found the way `origin` says.
    pub fn at(root: &Path, origin: HomeOrigin) -> BenchHome {
        BenchHome {
            root: root.to_path_buf(),
            origin,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn origin(&self) -> HomeOrigin {
        self.origin
    }

    /// `rel` inside the home. Kept relative when the home is the current folder, so that
    /// records made there name their files as before (`procedures/…`).
    pub fn file(&self, rel: impl AsRef<Path>) -> PathBuf {
        if self.root == Path::new(".") {
            rel.as_ref().to_path_buf()
        } else {
            self.root.join(rel)
        }
    }

    /// Where run folders, the issuance log and the store go.
    pub fn reports(&self) -> PathBuf {
        self.file("reports")
    }

    /// Templates a lab edits to restyle its certificates and audits.
    pub fn templates(&self) -> PathBuf {
        self.file("templates")
    }

    /// The signing key: `$METERBENCH_SIGNING_KEY`, else `keys/signing-key.pem` in the
    /// home when it is there, else the key of benches from before the home
    /// (`~/.config/meterbench/signing-key.pem`) when that is there (its issuance log
    /// verifies only with it), else the home's, to be created.
    pub fn signing_key(&self) -> PathBuf {
        choose_key(
            env_key(),
            self.file("keys/signing-key.pem"),
            legacy_key_path(),
        )
    }

    /// The laboratory's keyring in the home (`keys/keyring.json`), whichever signing key
    /// is used.
    pub fn keyring(&self) -> PathBuf {
        self.file(Path::new("keys").join(meterbench_signing::KEYRING_FILE))
    }

    /// The key a new home gets: `$METERBENCH_SIGNING_KEY`, else `keys/signing-key.pem` in
    /// it (a new home starts a new issuance log, so it needs no older key).
    pub fn own_signing_key(&self) -> PathBuf {
        env_key().unwrap_or_else(|| self.file("keys/signing-key.pem"))
    }

    /// The home, how it was found and how to choose another, for messages.
    pub fn describe(&self) -> String {
        let shown = std::path::absolute(&self.root).unwrap_or_else(|_| self.root.clone());
        let how = match self.origin {
            HomeOrigin::Flag => "named by --home",
            HomeOrigin::Environment => "named by METERBENCH_HOME",
            HomeOrigin::CurrentFolder => {
                "the current folder, as neither --home nor METERBENCH_HOME is set"
            }
        };
        let missing = if self.root.is_dir() {
            ""
        } else {
            ", which is no folder"
        };
        format!("the bench home {} ({how}{missing})", shown.display())
    }

    /// Advice for a home that lacks what was asked of it.
    pub fn advice(&self) -> &'static str {
        "name a bench home with --home DIR or METERBENCH_HOME, or create one with `meterbench init DIR`"
    }

    /// The file the home has for `default` (a path inside it), or an error naming the home.
    pub fn default_file(&self, what: &str, default: &str) -> Result<PathBuf, String> {
        let path = self.file(default);
        if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "no {what} named, and its default {default} is not in {}: {}",
                self.describe(),
                self.advice()
            ))
        }
    }

    /// A file the user named (`--procedure X`): as given when it is there (relative to the
    /// current folder), else the home's `X` or `FOLDER/X` (so `--procedure
    /// cpim1000-eol.yaml` finds `procedures/cpim1000-eol.yaml` from anywhere).
    pub fn named_file(&self, what: &str, given: &Path, folder: &str) -> Result<PathBuf, String> {
        if given.is_file() || given.is_absolute() {
            return Ok(given.to_path_buf());
        }
        let candidates = [self.file(given), self.file(Path::new(folder).join(given))];
        if let Some(found) = candidates.iter().find(|p| p.is_file()) {
            return Ok(found.clone());
        }
        let cwd = std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|_| ".".into());
        Err(format!(
            "{what} {}: no such file in the current folder ({cwd}), nor as {} or {} in {}: {}",
            given.display(),
            candidates[0].display(),
            candidates[1].display(),
            self.describe(),
            self.advice()
        ))
    }

    /// `named` when given (found as [`BenchHome::named_file`] finds it), else the home's
    /// default.
    pub fn choose(
        &self,
        what: &str,
        named: Option<&Path>,
        folder: &str,
        default: &str,
    ) -> Result<PathBuf, String> {
        match named {
            Some(p) => self.named_file(what, p, folder),
            None => self.default_file(what, default),
        }
    }
}

fn env_key() -> Option<PathBuf> {
    std::env::var_os("METERBENCH_SIGNING_KEY")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

/// Where benches kept their key before the bench home: `$XDG_CONFIG_HOME` or
/// `~/.config`, then `meterbench/signing-key.pem`.
fn legacy_key_path() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|base| base.join("meterbench").join("signing-key.pem"))
}

/// The environment's key, else the home's when it exists, else an older bench's when
/// that exists, else the home's (created on first use).
fn choose_key(env: Option<PathBuf>, own: PathBuf, legacy: Option<PathBuf>) -> PathBuf {
    if let Some(p) = env {
        return p;
    }
    if own.exists() {
        return own;
    }
    match legacy {
        Some(l) if l.exists() => l,
        _ => own,
    }
}

/// The results store a run is filed into unless told otherwise: `$METERBENCH_STORE` (a
/// folder or a `postgres://` URL), else `store/` inside the reports folder.
pub fn default_store(reports: &Path) -> StoreLocation {
    match std::env::var("METERBENCH_STORE") {
        Ok(s) if !s.is_empty() => StoreLocation::parse(&s),
        _ => match std::env::var_os("METERBENCH_STORE") {
            // Not UTF-8: only a folder can be named so.
            Some(p) if !p.is_empty() => StoreLocation::Embedded(PathBuf::from(p)),
            _ => StoreLocation::Embedded(reports.join("store")),
        },
    }
}

/// The public key file that sits beside a private key file.
pub fn public_key_path(private: &Path) -> PathBuf {
    let stem = private
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("signing-key");
    private.with_file_name(format!("{stem}.pub.pem"))
}

/// Load the signing key, creating one on first use (its id is printed so it can be published).
/// Every failure names the path (and where the path came from: --key, the environment
/// or the default).
pub fn load_or_create_key(path: &Path) -> anyhow::Result<(SigningKey, bool)> {
    let whence = || {
        format!(
            "the signing key {} (chosen by --signing-key, else METERBENCH_SIGNING_KEY, else keys/signing-key.pem in the bench home, else an older bench's ~/.config/meterbench/signing-key.pem)",
            path.display()
        )
    };
    let load = || load_signing_key(path).map_err(|e| anyhow::anyhow!("{}: {e}", whence()));
    if path.exists() {
        return Ok((load()?, false));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create the folder {} for {}: {e}",
                dir.display(),
                whence()
            )
        })?;
    }
    // The key and its keyring are made under one lock (a file beside them, kept): a run
    // starting at the same moment (twenty at once on a new bench) waits, then finds both,
    // never the key without the keyring that trusts it.
    let name = path.file_name().map_or_else(
        || "signing-key".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let lock_path = path.with_file_name(format!(".{name}.lock"));
    let _lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .and_then(|f| f.lock().map(|()| f))
        .map_err(|e| {
            anyhow::anyhow!("cannot lock {} for {}: {e}", lock_path.display(), whence())
        })?;
    if path.exists() {
        return Ok((load()?, false));
    }
    let key = generate_key(path, &public_key_path(path))
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", whence()))?;
    start_keyring(path, &key).map_err(|e| anyhow::anyhow!("{}: {e}", whence()))?;
    Ok((key, true))
}

/// A new key's keyring, beside it: the key trusted from now on. An existing keyring is
/// left as it is (a new key joins a keyring only by a rotation, `meterbench keys
/// rotate`); whether it lists the key is then said when the key is used.
pub fn start_keyring(private: &Path, key: &SigningKey) -> Result<Option<PathBuf>, String> {
    let path = keyring_path(private);
    if path.exists() {
        return Ok(None);
    }
    Keyring::new_key(
        key.verifying_key(),
        chrono::Utc::now(),
        path.display().to_string(),
    )
    .save(&path)
    .map_err(|e| e.to_string())?;
    Ok(Some(path))
}

/// The keys a station with the signing key at `private` trusts: the keyring beside it
/// (`keyring.json`), else the bench home's (`keys/keyring.json`: a key moved to
/// `keys/retired/` or kept elsewhere is still judged by the lab's keyring), else, for a
/// bench from before keyrings, the key itself at any time.
pub fn keyring_for(
    private: &Path,
    key: &meterbench_signing::VerifyingKey,
    home: &BenchHome,
) -> anyhow::Result<Keyring> {
    for path in [keyring_path(private), home.keyring()] {
        if path.exists() {
            return Keyring::load(&path).map_err(|e| anyhow::anyhow!("{e}"));
        }
    }
    Ok(Keyring::single(
        *key,
        format!(
            "of the signing key {} alone (no {} beside it)",
            private.display(),
            meterbench_signing::KEYRING_FILE
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_that_create_the_key_at_once_get_one_key() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("keys/signing-key.pem");
            let ids: Vec<String> = std::thread::scope(|s| {
                let workers: Vec<_> = (0..4)
                    .map(|_| s.spawn(|| load_or_create_key(&path).unwrap()))
                    .collect();
                workers
                    .into_iter()
                    .map(|w| meterbench_signing::key_id(&w.join().unwrap().0.verifying_key()))
                    .collect()
            });
            assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
            // Nothing left behind but the key, its public half, its keyring and the lock
            // they were made under.
            let mut files: Vec<String> = std::fs::read_dir(dir.path().join("keys"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            assert_eq!(
                files,
                [
                    ".signing-key.pem.lock",
                    "keyring.json",
                    "signing-key.pem",
                    "signing-key.pub.pem"
                ]
            );
        }
    }

    #[test]
    fn a_home_in_the_current_folder_keeps_paths_relative() {
        let home = BenchHome::at(Path::new("."), HomeOrigin::CurrentFolder);
        assert_eq!(
            home.file("procedures/a.yaml"),
            Path::new("procedures/a.yaml")
        );
        let elsewhere = BenchHome::at(Path::new("/srv/bench"), HomeOrigin::Flag);
        assert_eq!(
            elsewhere.file("procedures/a.yaml"),
            Path::new("/srv/bench/procedures/a.yaml")
        );
        assert_eq!(elsewhere.reports(), Path::new("/srv/bench/reports"));
    }

    #[test]
    fn a_named_file_is_found_as_given_then_in_the_home_then_in_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("procedures")).unwrap();
        std::fs::write(dir.path().join("procedures/p.yaml"), "x").unwrap();
        let home = BenchHome::at(dir.path(), HomeOrigin::Environment);
        let by_name = home
            .named_file("procedure", Path::new("p.yaml"), "procedures")
            .unwrap();
        assert_eq!(by_name, dir.path().join("procedures/p.yaml"));
        let by_path = home
            .named_file("procedure", Path::new("procedures/p.yaml"), "procedures")
            .unwrap();
        assert_eq!(by_path, dir.path().join("procedures/p.yaml"));
        let missing = home
            .named_file("procedure", Path::new("q.yaml"), "procedures")
            .unwrap_err();
        assert!(
            missing.contains("procedure q.yaml: no such file"),
            "{missing}"
        );
        assert!(missing.contains("named by METERBENCH_HOME"), "{missing}");
        assert!(missing.contains("meterbench init"), "{missing}");
    }

    #[test]
    fn the_key_is_the_environments_then_the_homes_then_an_older_benchs() {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("home/keys/signing-key.pem");
        let legacy = dir.path().join("config/meterbench/signing-key.pem");
        let env = dir.path().join("env.pem");
        // Neither exists: the home's, to be created.
        assert_eq!(choose_key(None, own.clone(), Some(legacy.clone())), own);
        // An older bench's key is kept: its issuance log verifies only with it.
        std::fs::create_dir_all(legacy.parent().unwrap()).unwrap();
        std::fs::write(&legacy, "k").unwrap();
        assert_eq!(choose_key(None, own.clone(), Some(legacy.clone())), legacy);
        // The home's own key, once there, wins; the environment always does.
        std::fs::create_dir_all(own.parent().unwrap()).unwrap();
        std::fs::write(&own, "k").unwrap();
        assert_eq!(choose_key(None, own.clone(), Some(legacy.clone())), own);
        assert_eq!(choose_key(Some(env.clone()), own, Some(legacy)), env);
    }

    #[test]
    fn a_missing_default_names_the_home_and_how_it_was_found() {
        let dir = tempfile::tempdir().unwrap();
        let home = BenchHome::at(dir.path(), HomeOrigin::Flag);
        let e = home
            .default_file("procedure", "procedures/en50470-3-class-b.yaml")
            .unwrap_err();
        assert!(e.contains(&dir.path().display().to_string()), "{e}");
        assert!(e.contains("named by --home"), "{e}");
    }
}
