//! What the panel's test files share.

use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The simulated station with a panel password, written into `dir` as `line-1.yaml`.
pub fn password_station(dir: &Path, password: &str) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("hw/stations/sim.yaml")).unwrap();
    let station = dir.join("line-1.yaml");
    std::fs::write(
        &station,
        format!(
            "{text}\npanel:\n  password_sha256: {}\n",
            meterbench_panel::hash_password(password)
        ),
    )
    .unwrap();
    station
}
