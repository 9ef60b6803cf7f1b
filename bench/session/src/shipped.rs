//! The files a new bench home starts with (`meterbench init`): the shipped procedures,
//! fixtures, the simulated stations and their answers, and the templates, compiled into
//! the binary so that an installed `meterbench` needs no source tree.

use crate::paths::{BenchHome, load_or_create_key};
use std::path::{Path, PathBuf};

macro_rules! shipped {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../../", $path)))),*]
    };
}

/// Every shipped file, by its path inside a home. A test checks that this list is every
/// file the repository has in these folders.
pub const SHIPPED: &[(&str, &str)] = shipped![
    "procedures/en50470-3-class-b.yaml",
    "procedures/cpim1000-eichrecht.yaml",
    "procedures/cpim1000-eol.yaml",
    "procedures/csp1-accuracy.yaml",
    "fixtures/cpim1000.yaml",
    "fixtures/csp1.yaml",
    "hw/stations/sim.yaml",
    "hw/stations/sim-inprocess.yaml",
    "hw/stations/sim-rack-10.yaml",
    "hw/stations/sim-rack-mixed.yaml",
    "hw/answers/sim-cpim1000.yaml",
    "templates/README.md",
    "templates/audit.html.j2",
    "templates/audit.typ.j2",
    "templates/certificate.html.j2",
    "templates/certificate.typ.j2",
    "audit/settings.yaml",
    "reports/README.md",
];

/// The folders of a home the shipped files come from.
pub const SHIPPED_FOLDERS: &[&str] = &[
    "procedures",
    "fixtures",
    "hw/stations",
    "hw/answers",
    "templates",
    "audit",
];

/// What `init` did to each file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    Written,
    /// Already there with the same content.
    Unchanged,
    /// Already there with other content: left as it is (a lab's edits are never lost).
    Kept,
}

#[derive(Debug)]
pub struct InitReport {
    pub files: Vec<(PathBuf, Placed)>,
    pub key: PathBuf,
    pub key_id: String,
    pub key_created: bool,
}

/// Create (or complete) a bench home at `home`: the shipped files that are missing, and
/// the signing key `key` when there is none. A file that is already there is never
/// overwritten.
pub fn init_home(home: &BenchHome, key: &Path) -> anyhow::Result<InitReport> {
    let root = home.root();
    std::fs::create_dir_all(root)
        .map_err(|e| anyhow::anyhow!("cannot create the bench home {}: {e}", root.display()))?;
    let mut files = Vec::new();
    for (rel, text) in SHIPPED {
        let path = home.file(rel);
        let placed = place(&path, text)?;
        files.push((path, placed));
    }
    let (signing, key_created) = load_or_create_key(key)?;
    Ok(InitReport {
        files,
        key_id: meterbench_signing::key_id(&signing.verifying_key()),
        key: key.to_path_buf(),
        key_created,
    })
}

fn place(path: &Path, text: &str) -> anyhow::Result<Placed> {
    match std::fs::read(path) {
        Ok(existing) if existing == text.as_bytes() => return Ok(Placed::Unchanged),
        Ok(_) => return Ok(Placed::Kept),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, text)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(Placed::Written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::HomeOrigin;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    #[test]
    fn every_file_of_the_shipped_folders_is_shipped() {
        let mut in_repo = Vec::new();
        for folder in SHIPPED_FOLDERS {
            for entry in std::fs::read_dir(repo().join(folder)).unwrap() {
                let entry = entry.unwrap();
                if entry.file_type().unwrap().is_file() {
                    in_repo.push(format!("{folder}/{}", entry.file_name().to_string_lossy()));
                }
            }
        }
        in_repo.sort();
        let mut shipped: Vec<String> = SHIPPED
            .iter()
            .map(|(p, _)| p.to_string())
            .filter(|p| {
                SHIPPED_FOLDERS
                    .iter()
                    .any(|f| p.starts_with(&format!("{f}/")))
            })
            .collect();
        shipped.sort();
        assert_eq!(shipped, in_repo);
    }

    #[test]
    fn init_writes_what_is_missing_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let home = BenchHome::at(dir.path(), HomeOrigin::Flag);
        std::fs::create_dir_all(dir.path().join("procedures")).unwrap();
        std::fs::write(dir.path().join("procedures/cpim1000-eol.yaml"), "edited").unwrap();
        let key = dir.path().join("keys/k.pem");
        let first = init_home(&home, &key).unwrap();
        let placed = |rel: &str| {
            first
                .files
                .iter()
                .find(|(p, _)| p.ends_with(rel))
                .unwrap()
                .1
                .clone()
        };
        assert_eq!(placed("procedures/cpim1000-eol.yaml"), Placed::Kept);
        assert_eq!(placed("procedures/en50470-3-class-b.yaml"), Placed::Written);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("procedures/cpim1000-eol.yaml")).unwrap(),
            "edited"
        );
        assert!(first.key_created);
        let again = init_home(&home, &key).unwrap();
        assert!(!again.key_created);
        assert_eq!(again.key_id, first.key_id);
        assert!(again.files.iter().all(|(_, s)| *s != Placed::Written));
        assert_eq!(again.files.len(), SHIPPED.len());
    }
}
