//! Where the bench keeps its things unless told otherwise: the signing key, the results
//! store.

use meterbench_signing::{SigningKey, generate_key, load_signing_key};
use std::path::{Path, PathBuf};

/// The results store a run is filed into unless told otherwise: `$METERBENCH_STORE`,
/// else `store/` inside the reports folder.
pub fn default_store_path(reports: &Path) -> PathBuf {
    std::env::var_os("METERBENCH_STORE")
        .map(PathBuf::from)
        .unwrap_or_else(|| reports.join("store"))
}

/// Where the bench's signing key lives unless told otherwise.
pub fn default_key_path() -> PathBuf {
    if let Some(p) = std::env::var_os("METERBENCH_SIGNING_KEY") {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("meterbench").join("signing-key.pem")
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
            "the signing key {} (chosen by --signing-key, else METERBENCH_SIGNING_KEY, else $XDG_CONFIG_HOME or ~/.config/meterbench/signing-key.pem)",
            path.display()
        )
    };
    if path.exists() {
        let key = load_signing_key(path).map_err(|e| anyhow::anyhow!("{}: {e}", whence()))?;
        return Ok((key, false));
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
    let key = generate_key(path, &public_key_path(path))
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", whence()))?;
    Ok((key, true))
}
