//! What becomes of a finished run: its signed bundle, its place in the results store,
//! anything a station adds. Every output reads the same finished record; none of them
//! can change it or its verdict.

use meterbench_runner::record::RunRecord;
use meterbench_runner::{Finished, Session};
use meterbench_signing::Keyring;
use meterbench_store::{Store, StoreLocation};
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

/// The issuance log of a reports folder.
pub const ISSUANCE_LOG: &str = "issuance-log.jsonl";

/// Whether runs signed with `key` can be issued into `reports`, decided before anything
/// is switched on: the keyring `trust` must trust the key now, and the folder's issuance
/// log must verify against it and be kept with this key (a log kept by another key would
/// refuse the entry only after the measurement, leaving a run that was measured and
/// never issued). A missing log is created, a torn last line repaired, as issuing would:
/// the repairs are returned, in words, for the operator. A refusal says which command
/// fixes it.
pub fn check_ready_to_issue(
    key: &meterbench_signing::SigningKey,
    key_path: &Path,
    trust: &Keyring,
    reports: &Path,
) -> Result<Vec<String>, String> {
    let log = reports.join(ISSUANCE_LOG);
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create the reports folder {}: {e}", parent.display()))?;
    }
    match meterbench_signing::prepare_issuance_log(&log, key, trust) {
        Ok(repairs) => Ok(repairs
            .iter()
            .map(|r| {
                format!(
                    "the issuance log's torn last line was repaired: its bytes moved to {}, the repair logged as entry {} ({})",
                    r.fields.bundle,
                    r.seq,
                    meterbench_signing::LOG_REPAIR_RUN_ID
                )
            })
            .collect()),
        Err(meterbench_signing::SigningError::NotTheLogsKey {
            key_id: ours,
            current,
            retired_by,
            detail,
            ..
        }) => Err(match (current, retired_by) {
            (Some(current), Some(seq)) => format!(
                "the signing key {} (key id {ours}) was retired by the key rotation at entry {seq} of the issuance log {}, which is kept with key id {current} since: nothing was switched on. Sign with the key rotated to (keys/signing-key.pem in the bench home after `meterbench keys rotate`, or name it with --signing-key or $METERBENCH_SIGNING_KEY)",
                key_path.display(),
                log.display()
            ),
            (Some(current), None) if current != ours => format!(
                "the issuance log {} is kept with key id {current}, but this run would sign with {} (key id {ours}): nothing was switched on. Sign with the key that keeps the log (--signing-key, $METERBENCH_SIGNING_KEY or keys/signing-key.pem in the bench home); to hand the log over to this key, run `meterbench keys rotate --new {}` with the key that keeps it; or issue into a reports folder of its own (--reports DIR)",
                log.display(),
                key_path.display(),
                crate::shell_word(&key_path.display().to_string())
            ),
            // A key whose period the keyring ended (retired, or lost): it never signs again.
            _ if trust.get(&ours).is_some() => format!(
                "the signing key {} cannot issue: {detail}: nothing was switched on. Sign with a key the keyring trusts now (`meterbench keys list`); if the key in use was lost, make a new one (`meterbench keys generate --out NEW.pem`), trust it (`meterbench keys add NEW.pub.pem`) and issue with it into a new reports folder (--reports DIR)",
                key_path.display()
            ),
            // A log handed over by a rotation the keyring does not know of yet: a
            // `keys rotate` cut short.
            (Some(_), None) => format!(
                "the signing key {} cannot issue: {detail}: nothing was switched on. If a key rotation was cut short, run `meterbench keys rotate` again to finish it",
                key_path.display()
            ),
            _ => format!(
                "the signing key {} cannot issue: {detail}: nothing was switched on. To trust a new key, rotate to it with the key in use: `meterbench keys rotate --new {}`; or sign with a key the keyring trusts now (`meterbench keys list`)",
                key_path.display(),
                crate::shell_word(&key_path.display().to_string())
            ),
        }),
        Err(e) => Err(format!(
            "the issuance log {} cannot take an entry, so no run would be issued: nothing was switched on: {e}",
            log.display()
        )),
    }
}

/// A station's outputs for every finished run, in order: the signed bundle (its issuance
/// logged in `reports`), then the filing into `store` of what this key signed (a store
/// out of reach queues the run beside it). The terminal and the panel issue the same.
pub fn station_outputs(
    key: meterbench_signing::SigningKey,
    trust: Keyring,
    signer: String,
    reports: &Path,
    store: StoreLocation,
) -> Vec<Box<dyn Output>> {
    let queue = queue_path(&store, reports);
    vec![
        Box::new(crate::Bundle::new(
            key,
            trust.clone(),
            signer,
            reports.join(ISSUANCE_LOG),
        )),
        // The store files only what the station's keyring trusts (a run queued before a
        // key rotation is filed after it).
        Box::new(StoreFiling {
            store,
            queue,
            trusted: trust,
        }),
    ]
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
/// verdict: the run is queued ([`queue_path`]) and filed by the next run's filing or by
/// `meterbench runs ingest` without arguments.
pub struct StoreFiling {
    pub store: StoreLocation,
    /// The queue of runs not yet filed ([`queue_path`]).
    pub queue: PathBuf,
    /// Only intact bundles signed by a key of this keyring, in its period, are filed.
    pub trusted: Keyring,
}

impl Output for StoreFiling {
    fn name(&self) -> &str {
        "store"
    }

    /// The signed `record.json` is filed, not the record in memory: the store holds
    /// what a customer can verify.
    fn finished(&self, _record: &RunRecord, folder: &Path) -> anyhow::Result<String> {
        // Runs left by an earlier filing first, so the store catches up in order.
        let earlier = drain_queue(&self.queue, &self.store, &self.trusted);
        let dropped: String = earlier
            .dropped
            .iter()
            .map(|(f, why)| {
                format!(
                    "; taken off the queue, never to be filed: {} ({why})",
                    f.display()
                )
            })
            .collect();
        let earlier = match (earlier.filed.len(), earlier.left.len()) {
            (0, 0) => String::new(),
            (f, 0) => format!("; {f} run(s) queued by earlier filings filed too"),
            (f, l) => format!(
                "; {f} run(s) queued by earlier filings filed, {l} still queued in {}",
                self.queue.display()
            ),
        } + &dropped;
        if let Err(e) = file_folder(&self.store, folder, &self.trusted, Issued::JustNow) {
            // A record the store can never take (a field longer than its column) is not
            // queued: filing it again would fail again at every later run.
            if refused_for_good(&e) {
                anyhow::bail!(
                    "the run was not filed in the results store {}: {e:#}; it is not queued \
                     (it would be refused again); its signed bundle is the record{earlier}",
                    self.store
                );
            }
            let queued = match enqueue(&self.queue, folder) {
                Ok(()) => {
                    // A PostgreSQL store's queue is in the reports folder (queue_path):
                    // named, so that the command finds it from any folder. The URL is
                    // shown without its password, which the command needs as given.
                    let reports = match (&self.store, self.queue.parent()) {
                        (StoreLocation::Postgres(_), Some(r)) => {
                            format!(" --reports {}", crate::shell_word(&r.display().to_string()))
                        }
                        _ => String::new(),
                    };
                    let shown = self.store.to_string();
                    let password = if shown.contains(":***@") || shown.contains("password=***") {
                        " (with the URL's password)"
                    } else {
                        ""
                    };
                    format!(
                        "queued in {}: the next run files it, or now: meterbench runs{reports} --store {} ingest{password}",
                        self.queue.display(),
                        crate::shell_word(&shown)
                    )
                }
                Err(q) => format!(
                    "nor could it be queued in {} ({q}): file it later with: meterbench runs ingest {}",
                    self.queue.display(),
                    crate::shell_word(&folder.display().to_string())
                ),
            };
            anyhow::bail!(
                "the run was not filed in the results store {}: {e}; {queued}",
                self.store
            );
        }
        Ok(format!(
            "filed in the results store {}{earlier}",
            self.store
        ))
    }
}

/// The queue of runs not yet filed in `store`, a text file of run folders, one per line:
/// beside an embedded store's folder; for a PostgreSQL store (which may be out of
/// reach), in the reports folder on this machine.
pub fn queue_path(store: &StoreLocation, reports: &Path) -> PathBuf {
    match store {
        StoreLocation::Embedded(dir) => {
            let mut name = dir
                .file_name()
                .map_or_else(|| "store".into(), |n| n.to_os_string());
            name.push(".unfiled");
            dir.with_file_name(name)
        }
        StoreLocation::Postgres(_) => reports.join("postgres-store.unfiled"),
    }
}

fn open_queue(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    // Runs of several stations share a store; one queue writer at a time.
    file.lock()?;
    Ok(file)
}

/// Put a run folder on a store's queue.
pub fn enqueue(queue: &Path, folder: &Path) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = open_queue(queue)?;
    let folder = std::path::absolute(folder)?;
    writeln!(file, "{}", folder.display())?;
    file.sync_all()
}

/// What draining the queue did.
#[derive(Debug, Default)]
pub struct Drained {
    /// Run folders filed now.
    pub filed: Vec<PathBuf>,
    /// Run folders that still could not be filed, and why.
    pub left: Vec<(PathBuf, String)>,
    /// Run folders the store can never take as they are (a field longer than its
    /// column), and why: taken off the queue, which would retry them at every run.
    pub dropped: Vec<(PathBuf, String)>,
}

/// Whether filing failed for good: the store refuses the record itself, not a moment's
/// trouble reaching it.
fn refused_for_good(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref(),
        Some(meterbench_store::StoreError::Record { .. })
    )
}

/// File every run of `queue` into `store`; those that still fail stay queued. No queue,
/// nothing to do.
pub fn drain_queue(queue: &Path, store: &StoreLocation, trusted: &Keyring) -> Drained {
    use std::io::{Read as _, Seek as _, Write as _};
    let mut drained = Drained::default();
    if !queue.exists() {
        return drained;
    }
    let Ok(mut file) = open_queue(queue) else {
        return drained;
    };
    let mut text = String::new();
    if file.read_to_string(&mut text).is_err() {
        return drained;
    }
    let mut seen = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let folder = PathBuf::from(line);
        if seen.contains(&folder) {
            continue;
        }
        seen.push(folder.clone());
        match file_folder(store, &folder, trusted, Issued::Earlier) {
            Ok(_) => drained.filed.push(folder),
            Err(e) if refused_for_good(&e) => drained.dropped.push((folder, format!("{e:#}"))),
            Err(e) => drained.left.push((folder, format!("{e:#}"))),
        }
    }
    let rest: String = drained
        .left
        .iter()
        .map(|(f, _)| format!("{}\n", f.display()))
        .collect();
    // Rewritten in place under the lock (never removed: another filing may be waiting
    // for the lock on this very file). When the rewrite fails the queue keeps every
    // line; filing again is harmless.
    let _ = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(rest.as_bytes()))
        .and_then(|()| file.sync_all());
    drained
}

/// Whether the bundle being filed was issued into its log by this very process a moment
/// ago (the bundle output, which verified the log before appending, ran before the
/// store's and succeeded), or comes from elsewhere: a queue, a folder given to `runs
/// ingest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issued {
    JustNow,
    Earlier,
}

/// File the finished run in `folder` (its record.json) into `store`: its run id. Only
/// what `meterbench verify` accepts is filed: an intact bundle signed by a key of
/// `trusted` in its period and, with the issuance log beside it (its reports folder's),
/// issued in that log. A copy with an edited record, a bundle re-signed with another key,
/// one never issued or cut from its log is refused, naming what is wrong, so the store
/// and the audit count only what the bench issued.
pub fn file_folder(
    store: &StoreLocation,
    folder: &Path,
    trusted: &Keyring,
    issued: Issued,
) -> anyhow::Result<String> {
    if let Err(problems) = meterbench_signing::verify_bundle_trusted(folder, trusted) {
        let problems: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        anyhow::bail!(
            "not filed: {} is not an intact bundle signed by a key of the keyring {}: {}",
            folder.display(),
            trusted.origin,
            problems.join("; ")
        );
    }
    // As verify: the log beside the bundle must hold it. (A run issued just now was
    // appended to a log verified whole for it; it is not read a second time.)
    // (Of the absolute path: `.`, the bundle named from inside it, has no parent.)
    let log = std::path::absolute(folder)
        .ok()
        .and_then(|f| f.parent().map(|r| r.join(ISSUANCE_LOG)));
    if let (Issued::Earlier, Some(log)) = (issued, log.filter(|l| l.exists()))
        && let Err(problems) = meterbench_signing::find_bundle_in_log(&log, folder, trusted)
    {
        let problems: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        anyhow::bail!(
            "not filed: {} is not issued in the issuance log {} beside it: {}",
            folder.display(),
            log.display(),
            problems.join("; ")
        );
    }
    let path = folder.join("record.json");
    let text =
        std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let record: RunRecord = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: not a run record: {e}", path.display()))?;
    Store::create(store)?.ingest(&record, folder)?;
    Ok(record.run_id)
}
