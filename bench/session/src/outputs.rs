//! What becomes of a finished run: its signed bundle, its place in the results store,
//! anything a station adds. Every output reads the same finished record; none of them
//! can change it or its verdict.

use meterbench_runner::record::RunRecord;
use meterbench_runner::{Finished, Session};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One output of a finished run. Outputs run in order for each run; one that fails
/// stops the later ones for that run (nothing is filed that was not signed) and is
/// reported; the verdict stands.
pub trait Output: Send + Sync {
    fn name(&self) -> &str;
    /// The run is over and its record is final in `folder`: do the output's work and
    /// say what was done.
    fn finished(&self, record: &RunRecord, folder: &Path) -> anyhow::Result<String>;
}

/// What the outputs did with one run.
#[derive(Debug)]
pub struct Delivered {
    pub run_id: String,
    pub position: Option<u32>,
    /// (output, what it did or why it failed), in order; `Err` stops the later outputs.
    pub results: Vec<(String, Result<String, String>)>,
}

impl Delivered {
    pub fn all_done(&self) -> bool {
        self.results.iter().all(|(_, r)| r.is_ok())
    }
}

/// Hand every run of a session to the outputs, `workers` runs at a time (a bundle's PDF
/// and plots take most of a second each: a rack's bundles are made in parallel).
pub fn deliver(session: &Session, outputs: &[Box<dyn Output>], workers: usize) -> Vec<Delivered> {
    let queue: Mutex<std::slice::Iter<'_, Finished>> = Mutex::new(session.runs.iter());
    let done: Mutex<Vec<Delivered>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, session.runs.len().max(1)) {
            s.spawn(|| {
                loop {
                    let Some(run) = queue.lock().unwrap_or_else(|p| p.into_inner()).next() else {
                        return;
                    };
                    let d = deliver_one(run, outputs);
                    done.lock().unwrap_or_else(|p| p.into_inner()).push(d);
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|p| p.into_inner());
    done.sort_by_key(|d| d.position);
    done
}

fn deliver_one(run: &Finished, outputs: &[Box<dyn Output>]) -> Delivered {
    let folder = run
        .record_path
        .parent()
        .expect("a record sits in its run folder");
    let mut results = Vec::new();
    for o in outputs {
        // An output's panic is its failure, not the session's.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            o.finished(&run.record, folder)
        }));
        let r = match r {
            Ok(Ok(m)) => Ok(m),
            Ok(Err(e)) => Err(format!("{e:#}")),
            Err(_) => Err(format!("the {} output failed (panic)", o.name())),
        };
        let failed = r.is_err();
        results.push((o.name().to_string(), r));
        if failed {
            break;
        }
    }
    Delivered {
        run_id: run.record.run_id.clone(),
        position: run.record.position.as_ref().map(|p| p.id),
        results,
    }
}

/// Filing into the results store. The signed bundle is the record of the run; the store
/// is an index over bundles. A store that cannot take the run does not change the
/// verdict: it is reported, and the bundle can be filed later.
pub struct StoreFiling {
    pub store: PathBuf,
}

impl Output for StoreFiling {
    fn name(&self) -> &str {
        "store"
    }

    fn finished(&self, record: &RunRecord, folder: &Path) -> anyhow::Result<String> {
        meterbench_store::ingest(&self.store, record, folder).map_err(|e| {
            anyhow::anyhow!(
                "the run was not filed in the results store {}: {e}\n  file it later with: meterbench runs ingest {}",
                self.store.display(),
                folder.display()
            )
        })?;
        Ok(format!(
            "filed in the results store {}",
            self.store.display()
        ))
    }
}
