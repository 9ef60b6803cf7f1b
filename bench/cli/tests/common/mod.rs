//! Helpers shared by the command-line tests: the repository, the binary, a simulated
//! world to put behind pseudo-terminals.
#![allow(dead_code)] // each test file uses its part

use meterbench_procedure::{Fixture, Station};
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Run `meterbench ARGS` in the repository: (exit code, stdout, stderr).
pub fn meterbench(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The simulated station's world with the CPIM1000 fixture mounted.
pub fn sim_world() -> meterbench_sim::SharedWorld {
    let station = Station::load(&repo().join("hw/stations/sim.yaml")).unwrap();
    std::sync::Arc::new(std::sync::Mutex::new(meterbench_sim::World::for_station(
        &station,
        &cpim1000(),
    )))
}

pub fn cpim1000() -> Fixture {
    Fixture::load(&repo().join("fixtures/cpim1000.yaml")).unwrap()
}

/// The run folders of a reports folder (each holds a record.json), in name order.
pub fn run_folders(reports: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(reports)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("record.json").is_file())
        .collect();
    v.sort();
    v
}
