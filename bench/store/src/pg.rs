//! The PostgreSQL backend of the store: the schema of `schema.sql`, runs, instruments
//! and accuracy points of every station in one database, and for the audit the points
//! packed per run by the server (`pg_packs.sql`). Raw samples stay in the signed
//! bundles.
//!
//! Many stations file at once. Each filing is one transaction, so a reader never sees
//! half a run; filings of the same run id are serialised by an advisory lock on the id,
//! and the schema is applied under a lock of its own (two `CREATE TABLE IF NOT EXISTS`
//! at once can both try to create the table's type, and one then fails).

use crate::StoreError;
use crate::audit::{
    AuditOptions, AuditReads, AuditRun, InstrumentUse, METER_OUTCOMES, RunTally, is_problem,
};
use crate::figures::{GroupKey, Names, PointGroups};
use crate::frames::{PointRow, outcome_str, parse_outcome, point_rows};
use crate::index::{
    BUNDLE_SAMPLES_FILE, IndexRun, InstrumentRow, RunDetail, RunFilter, RunRow, SCHEMA_SQL,
    index_run,
};
use crate::layout::canonical_utc;
use crate::store::redact_password;
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::TryStreamExt;
use meterbench_pgcopy::{CopyError, CopyReader, Tuple, pack};
use meterbench_runner::record::RunRecord;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::{Client, GenericClient, IsolationLevel, NoTls, Row};
use rustc_hash::FxHashMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// The advisory lock key under which the schema is applied ("meterbench schema").
const SCHEMA_LOCK: i64 = 0x6d62_7363_6865_6d61;

pub(crate) struct PgStore {
    client: Mutex<Client>,
    /// The URL as given, for the audit's connections of its own.
    url: String,
    /// The URL without its password, for messages.
    shown: String,
}

type Params<'a> = Vec<&'a (dyn ToSql + Sync)>;

/// What the server keeps for its audit besides `schema.sql`: the points packed per run.
const PACKS_SQL: &str = include_str!("../pg_packs.sql");

/// The runs an audit wants, by id: each one's station (an index into `stations`) and
/// date, what its points are grouped by besides their own columns. The stations are
/// kept once each rather than with every run (a hundred thousand strings fewer to make
/// and to free).
#[derive(Default)]
struct WantedRuns {
    by_id: FxHashMap<Box<str>, (u32, NaiveDate)>,
    stations: Names,
}

/// Free `value` on a thread of its own: the wanted runs' hundred thousand ids took the
/// audit's one busy thread tens of milliseconds to free, with the other cores idle.
fn drop_aside<T: Send + 'static>(value: T) {
    // If no thread can be had, the closure and `value` with it are dropped here.
    let _ = std::thread::Builder::new()
        .name("audit-free".into())
        .spawn(move || drop(value));
}

/// The step names and ports a point reader has met, with their names' ids, by the
/// points' step index: every run of a procedure repeats its steps, so a point's two texts
/// are compared with the few met at its index before (some bytes each) instead of being
/// checked as UTF-8 and hashed (a tenth of the reader's time).
#[derive(Default)]
struct SeenTexts {
    at: Vec<Vec<SeenPair>>,
}

/// A step name and a port as received, and their ids.
struct SeenPair {
    step_name: Box<[u8]>,
    port: Box<[u8]>,
    ids: (u32, u32),
}

impl SeenTexts {
    /// Step indexes beyond this (no procedure has so many steps) are looked up by name.
    const STEPS: usize = 1024;
    /// Pairs kept per step index (retests and procedure versions may name a step anew).
    const PAIRS: usize = 16;

    /// The ids in `names` of a point's step name and port (as received), its step index
    /// being `step_index`; None if either is not UTF-8.
    fn names(
        &mut self,
        names: &mut Names,
        step_index: i32,
        step_name: &[u8],
        port: &[u8],
    ) -> Option<(u32, u32)> {
        let slot = usize::try_from(step_index)
            .ok()
            .filter(|&i| i < Self::STEPS);
        if let Some(met) = slot.and_then(|i| self.at.get(i))
            && let Some(pair) = met
                .iter()
                .find(|p| *p.step_name == *step_name && *p.port == *port)
        {
            return Some(pair.ids);
        }
        let (step_name_text, port_text) = (
            std::str::from_utf8(step_name).ok()?,
            std::str::from_utf8(port).ok()?,
        );
        let ids = (names.id(step_name_text), names.id(port_text));
        if let Some(i) = slot {
            if self.at.len() <= i {
                self.at.resize_with(i + 1, Vec::new);
            }
            if self.at[i].len() < Self::PAIRS {
                self.at[i].push(SeenPair {
                    step_name: step_name.into(),
                    port: port.into(),
                    ids,
                });
            }
        }
        Some(ids)
    }
}

/// How the audit's rows of packs place their run (each row starts with the run's id).
#[derive(Clone, Copy)]
enum PointRuns<'a> {
    /// Its id looked up among the runs wanted (station, date); others are skipped.
    Looked(&'a WantedRuns),
    /// By the station and date the server joined in after the id.
    Joined,
}

const RUN_COLUMNS: &str = "run_id, station_id, station_name, laboratory, dut_manufacturer, \
     dut_type, dut_serial, accuracy_class, procedure_id, procedure_version, procedure_sha256, \
     bench_version, started_utc, finished_utc, run_date, outcome, outcome_reason, bundle_path";

impl PgStore {
    pub(crate) fn connect(url: &str) -> Result<PgStore, StoreError> {
        let shown = redact_password(url);
        let mut client = Client::connect(url, NoTls).map_err(|error| StoreError::Postgres {
            store: shown.clone(),
            error,
        })?;
        // The schema's DDL only when something of it is missing: `CREATE … IF NOT EXISTS`
        // is checked against the schema's CREATE right and the table's owner even when
        // the table is there, and a station's role is neither.
        let missing: i64 = client
            .query_one(
                "SELECT count(*) FROM unnest($1::text[]) AS n WHERE to_regclass(n) IS NULL",
                &[&schema_relations(SCHEMA_SQL)],
            )
            .map_err(|error| StoreError::Postgres {
                store: shown.clone(),
                error,
            })?
            .get(0);
        let tables = if missing > 0 { SCHEMA_SQL } else { "" };
        let schema = format!(
            "BEGIN; SELECT pg_advisory_xact_lock({SCHEMA_LOCK}); {tables}\n; {PACKS_SQL}\n; \
             COMMIT;"
        );
        client
            .batch_execute(&schema)
            .map_err(|error| StoreError::Postgres {
                store: shown.clone(),
                error,
            })?;
        Ok(PgStore {
            client: Mutex::new(client),
            url: url.to_string(),
            shown,
        })
    }

    fn err(&self) -> impl FnOnce(postgres::Error) -> StoreError + '_ {
        move |error| StoreError::Postgres {
            store: self.shown.clone(),
            error,
        }
    }

    fn client(&self) -> std::sync::MutexGuard<'_, Client> {
        // A panic while holding the connection leaves nothing half-done in the database
        // (transactions roll back on drop): the connection is still usable.
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn ingest(
        &self,
        record: &RunRecord,
        bundle: &std::path::Path,
    ) -> Result<(), StoreError> {
        let run = index_run(record, bundle)?;
        let values = RunValues::of(&run.row)?;
        let date = run.row.date.format("%Y-%m-%d").to_string();
        let points = point_rows(record, &date, &run.row.started_utc);
        // Said in the store's words, as the embedded store says it, before the server
        // would refuse the row.
        crate::limits::check_lengths(&run, &points)?;
        let mut client = self.client();
        let mut tx = client.transaction().map_err(self.err())?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&run.row.run_id],
        )
        .map_err(self.err())?;
        // Instruments and points go with the run (ON DELETE CASCADE).
        tx.execute("DELETE FROM runs WHERE run_id = $1", &[&run.row.run_id])
            .map_err(self.err())?;
        insert_run(&mut tx, &run, &values).map_err(self.err())?;
        if let Some(amends) = &run.amends {
            tx.execute(
                "INSERT INTO run_amendments (run_id, amends) VALUES ($1, $2)",
                &[&run.row.run_id, amends],
            )
            .map_err(self.err())?;
        }
        // In one statement: the server packs the run's points once (pg_packs.sql).
        copy_points(&mut tx, &points).map_err(self.err())?;
        tx.commit().map_err(self.err())
    }

    pub(crate) fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRow>, StoreError> {
        let outcome = filter.outcome.map(outcome_str);
        let mut sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE TRUE");
        let mut params: Params<'_> = Vec::new();
        let conditions: [(&str, Option<&(dyn ToSql + Sync)>); 5] = [
            ("dut_serial =", filter.serial.as_ref().map(|v| v as _)),
            ("station_id =", filter.station.as_ref().map(|v| v as _)),
            ("outcome =", outcome.as_ref().map(|v| v as _)),
            ("run_date >=", filter.from.as_ref().map(|v| v as _)),
            ("run_date <=", filter.to.as_ref().map(|v| v as _)),
        ];
        for (condition, value) in conditions {
            if let Some(v) = value {
                params.push(v);
                sql.push_str(&format!(" AND {condition} ${}", params.len()));
            }
        }
        sql.push_str(" ORDER BY started_utc, run_id");
        let rows = self.client().query(&sql, &params).map_err(self.err())?;
        rows.iter().map(|r| self.run_row(r)).collect()
    }

    fn run_row(&self, r: &Row) -> Result<RunRow, StoreError> {
        let get = |error: postgres::Error| StoreError::Postgres {
            store: self.shown.clone(),
            error,
        };
        let started: DateTime<Utc> = r.try_get(12).map_err(get)?;
        let finished: Option<DateTime<Utc>> = r.try_get(13).map_err(get)?;
        let outcome: String = r.try_get(15).map_err(get)?;
        let run_id: String = r.try_get(0).map_err(get)?;
        Ok(RunRow {
            station: r.try_get(1).map_err(get)?,
            station_name: r.try_get(2).map_err(get)?,
            laboratory: r.try_get(3).map_err(get)?,
            dut_manufacturer: r.try_get(4).map_err(get)?,
            dut_type: r.try_get(5).map_err(get)?,
            serial: r.try_get(6).map_err(get)?,
            accuracy_class: r.try_get(7).map_err(get)?,
            procedure_id: r.try_get(8).map_err(get)?,
            procedure_version: r.try_get(9).map_err(get)?,
            procedure_sha256: r.try_get(10).map_err(get)?,
            bench_version: r.try_get(11).map_err(get)?,
            started_utc: canonical_utc(started),
            finished_utc: finished.map(canonical_utc),
            date: r.try_get(14).map_err(get)?,
            outcome: parse_outcome(&outcome).ok_or_else(|| StoreError::Record {
                run_id: run_id.clone(),
                message: format!("outcome {outcome:?} in {}", self.shown),
            })?,
            reason: r.try_get(16).map_err(get)?,
            bundle: PathBuf::from(r.try_get::<_, String>(17).map_err(get)?),
            run_id,
        })
    }

    pub(crate) fn show_run(&self, run_id: &str) -> Result<Option<RunDetail>, StoreError> {
        let mut client = self.client();
        let row = client
            .query_opt(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = $1"),
                &[&run_id],
            )
            .map_err(self.err())?;
        let Some(row) = row else {
            return Ok(None);
        };
        let run = self.run_row(&row)?;
        let instruments = client
            .query(
                "SELECT role, driver, model, serial_number, calibration_id, calibration_due, \
                 calibration_issued_by FROM run_instruments WHERE run_id = $1 ORDER BY role",
                &[&run_id],
            )
            .map_err(self.err())?
            .iter()
            .map(|r| {
                Ok(InstrumentRow {
                    role: r.try_get(0)?,
                    driver: r.try_get(1)?,
                    model: r.try_get(2)?,
                    serial_number: r.try_get(3)?,
                    calibration_id: r.try_get(4)?,
                    calibration_due: r.try_get(5)?,
                    calibration_issued_by: r.try_get(6)?,
                })
            })
            .collect::<Result<Vec<_>, postgres::Error>>()
            .map_err(self.err())?;
        let date = run.date.format("%Y-%m-%d").to_string();
        let points = client
            .query(
                "SELECT step_index, port, step_name, current_name, current_a, power_factor, \
                 phases, repeats, error_percent, u_percent, mpe_percent, conformity, accepted \
                 FROM points WHERE run_id = $1 ORDER BY step_index, port",
                &[&run_id],
            )
            .map_err(self.err())?
            .iter()
            .map(|r| {
                Ok(PointRow {
                    run_id: run.run_id.clone(),
                    station: run.station.clone(),
                    date: date.clone(),
                    started_utc: run.started_utc.clone(),
                    serial: run.serial.clone(),
                    dut_type: run.dut_type.clone(),
                    procedure_id: run.procedure_id.clone(),
                    procedure_version: run.procedure_version.clone(),
                    step_index: r.try_get::<_, i32>(0)? as u32,
                    port: r.try_get(1)?,
                    step_name: r.try_get(2)?,
                    current_name: r.try_get(3)?,
                    current_a: r.try_get(4)?,
                    power_factor: r.try_get(5)?,
                    phases: r.try_get(6)?,
                    repeats: r.try_get::<_, i32>(7)? as u32,
                    error_percent: r.try_get(8)?,
                    u_percent: r.try_get(9)?,
                    mpe_percent: r.try_get(10)?,
                    conformity: r.try_get(11)?,
                    accepted: r.try_get(12)?,
                    outcome: outcome_str(run.outcome).to_string(),
                })
            })
            .collect::<Result<Vec<_>, postgres::Error>>()
            .map_err(self.err())?;
        let amends = client
            .query_opt(
                "SELECT amends FROM run_amendments WHERE run_id = $1",
                &[&run_id],
            )
            .map_err(self.err())?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(self.err())?;
        let amended_by = client
            .query(
                "SELECT run_id FROM run_amendments WHERE amends = $1 ORDER BY run_id",
                &[&run_id],
            )
            .map_err(self.err())?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<Vec<String>, postgres::Error>>()
            .map_err(self.err())?;
        // The samples stay in the bundle the run was filed from.
        let samples = run.bundle.join(BUNDLE_SAMPLES_FILE);
        Ok(Some(RunDetail {
            samples_file: samples.is_file().then_some(samples),
            points_file: None,
            points,
            instruments,
            run,
            amends,
            amended_by,
        }))
    }

    /// The runs dated `from..=to`, counted as they come (no sort, no result set held),
    /// in `tx` (the audit's snapshot). By a binary COPY on the async client: rows through
    /// the blocking client's row API took 2 µs each, a fifth of a second for 100 000 runs.
    async fn tally_runs(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<RunTally, StoreError> {
        let format = |error| StoreError::BinaryCopy {
            store: self.shown.clone(),
            error,
        };
        // COPY takes no parameters: the dates are chrono's own formatting.
        let copy = format!(
            "COPY (SELECT run_id, station_id, run_date, dut_serial, procedure_id, started_utc, \
             outcome, outcome_reason, bundle_path FROM runs \
             WHERE run_date >= '{}' AND run_date <= '{}') TO STDOUT (FORMAT binary)",
            from.format("%Y-%m-%d"),
            to.format("%Y-%m-%d")
        );
        let chunks = tx.copy_out(&copy).await.map_err(self.err())?;
        let mut chunks = std::pin::pin!(chunks);
        let mut tuples = CopyReader::new(9);
        let mut tally = RunTally::default();
        while let Some(chunk) = chunks.try_next().await.map_err(self.err())? {
            tuples.push(&chunk);
            while let Some(t) = tuples.next_tuple().map_err(format)? {
                let run_id = t.text(0).map_err(format)?;
                // The column takes ±infinity, which is no time a run started at.
                let started =
                    pg_timestamp(t.int8(5).map_err(format)?).ok_or_else(|| StoreError::Record {
                        run_id: run_id.to_string(),
                        message: format!(
                            "its start time in {} is out of the calendar's range (infinity?)",
                            self.shown
                        ),
                    })?;
                let outcome_text = t.text(6).map_err(format)?;
                let outcome = parse_outcome(outcome_text).ok_or_else(|| StoreError::Record {
                    run_id: run_id.to_string(),
                    message: format!("outcome {outcome_text:?} in {}", self.shown),
                })?;
                let problem = is_problem(outcome);
                tally.add(&AuditRun {
                    run_id,
                    station: t.text(1).map_err(format)?,
                    date: pg_date(t.date_days(2).map_err(format)?)
                        .ok_or_else(|| format(date_out_of_range(&t)))?,
                    serial: t.text(3).map_err(format)?,
                    procedure_id: t.text(4).map_err(format)?,
                    started_utc: &canonical_utc(started),
                    outcome,
                    reason: match t.raw(7) {
                        Some(_) if problem => Some(t.text(7).map_err(format)?),
                        _ => None,
                    },
                    bundle: if problem {
                        Some(t.text(8).map_err(format)?)
                    } else {
                        None
                    },
                });
            }
        }
        tuples.finish().map_err(format)?;
        // Serials whose first attempt at a procedure came before the range (a retest in
        // the range is no first attempt), as the embedded store finds them.
        let earlier = tx
            .query(
                "SELECT DISTINCT r.dut_serial, r.procedure_id FROM runs r \
                 WHERE r.run_date >= $1 AND r.run_date <= $2 AND EXISTS \
                 (SELECT 1 FROM runs e WHERE e.dut_serial = r.dut_serial \
                 AND e.procedure_id = r.procedure_id AND e.run_date < $1)",
                &[&from, &to],
            )
            .await
            .map_err(self.err())?;
        for r in &earlier {
            tally.tried_before(
                r.try_get(0).map_err(self.err())?,
                r.try_get(1).map_err(self.err())?,
            );
        }
        Ok(tally)
    }

    /// The load points and control charts of the points dated `opts.from..=opts.to`.
    /// The points are settled ([`PointGroups::settle`]) before any sum is taken, so the
    /// order they arrive in does not matter and both backends give the same figures for
    /// the same points to the last digit. Aggregating on the server was tried and not
    /// taken: its float sums follow the server's order (parallel workers, synchronised
    /// scans) and change in the last digits from one audit to the next, exact `numeric`
    /// sums took 2.8 s for 100 000 runs, and the histograms need a second pass once the
    /// bins are known.
    /// Everything the audit reads, in one snapshot of the database: the points (by the
    /// readers of [`Pg::point_groups`]), and beside them, on a connection of its own that
    /// takes up the same snapshot, the runs' tally and the instruments' uses. A station
    /// filing meanwhile is in all of them or in none.
    pub(crate) fn audit_reads(&self, opts: &AuditOptions) -> Result<AuditReads, StoreError> {
        let (snapshot_out, snapshot_in) = std::sync::mpsc::channel::<String>();
        let (taken_out, taken_in) = std::sync::mpsc::channel::<()>();
        let (from, to) = (opts.from, opts.to);
        std::thread::scope(|s| {
            let side = s.spawn(move || {
                // No snapshot: the points' lead failed first and says why.
                let snapshot = snapshot_in.recv().ok()?;
                Some(reader_runtime().and_then(|runtime| {
                    runtime.block_on(async {
                        let mut client = self.reader_client().await?;
                        let tx = self.repeatable_read(&mut client).await?;
                        // The tables this side reads are locked before the lead may end
                        // its transaction: a TRUNCATE or a rewrite asked for meanwhile
                        // (not safe for an older snapshot: it would read them empty)
                        // waits behind the lead, and this lock behind it; the side gives up
                        // instead, as the point readers do, and the audit fails saying so.
                        tx.batch_execute(&format!(
                            "SET TRANSACTION SNAPSHOT '{snapshot}'; \
                             SET LOCAL lock_timeout = '10s'; \
                             LOCK TABLE runs, run_instruments IN ACCESS SHARE MODE"
                        ))
                        .await
                        .map_err(self.err())?;
                        // Taken up: the lead may end its transaction whenever it is done.
                        drop(taken_out);
                        let tally = self.tally_runs(&tx, from, to).await?;
                        let uses = self.instrument_uses(&tx, from, to).await?;
                        tx.commit().await.map_err(self.err())?;
                        Ok::<_, StoreError>((tally, uses))
                    })
                }))
            });
            let groups = self.point_groups(from, to, Some((snapshot_out, taken_in)));
            let side = side.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            let groups = groups?;
            let (tally, uses) = side.ok_or_else(|| StoreError::Argument(format!(
                "PostgreSQL store {}: the runs were not read: the audit's snapshot was not taken",
                self.shown
            )))??;
            Ok(AuditReads::of(tally, &groups, uses, opts))
        })
    }

    /// The points of the meter-describing runs dated `from..=to`, in groups, all read in
    /// one snapshot of the database (exported by a transaction of its own and taken up
    /// by each reader, as `pg_dump --jobs` does), so that a station filing meanwhile adds
    /// nothing half-way.
    ///
    /// They are read from each run's pack (`pg_packs.sql`): one row per run, not one per
    /// point (measured on 100 000 runs, 2.2 million points, the server on the same 2
    /// cores: the server sent the rows in 0.9–1.6 s, the packs in 0.13 s). How depends on
    /// the share of the runs the audit wants:
    /// - most of them: the packs table in one slice of its pages per core, each by a
    ///   binary COPY on a connection of its own with no join; the client keeps the points
    ///   of the runs it was given (joined on the server, the packs took it 0.14–0.20 s
    ///   against 0.055–0.08 s: hashing the run ids);
    /// - a few of them (a day of a year's store): the packs of those runs only, joined
    ///   on the server through the runs' date index.
    ///
    /// With `share`, the snapshot is also sent there, and the lead waits until the other
    /// side has taken it up (or given up) before it goes on.
    fn point_groups(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        share: Option<(
            std::sync::mpsc::Sender<String>,
            std::sync::mpsc::Receiver<()>,
        )>,
    ) -> Result<PointGroups, StoreError> {
        // COPY takes no parameters: the dates are chrono's own formatting, the outcomes
        // constants.
        let (from_text, to_text) = (from.format("%Y-%m-%d"), to.format("%Y-%m-%d"));
        let outcomes = METER_OUTCOMES
            .iter()
            .map(|o| format!("'{o}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let wanted_runs = format!(
            "r.run_date >= '{from_text}' AND r.run_date <= '{to_text}' \
             AND r.outcome IN ({outcomes})"
        );
        reader_runtime()?.block_on(async {
            let mut client = self.reader_client().await?;
            let tx = self.repeatable_read(&mut client).await?;
            // No table is rewritten (VACUUM FULL, CLUSTER, ALTER) between the readers'
            // starts: their page ranges split one file. The lead then waits idle for them;
            // a server that ends idle transactions would end it and fail a finished read.
            tx.batch_execute(
                "LOCK TABLE runs, point_packs IN ACCESS SHARE MODE; \
                 SET LOCAL idle_in_transaction_session_timeout = 0",
            )
            .await
            .map_err(self.err())?;
            let snapshot: String = tx
                .query_one("SELECT pg_export_snapshot()", &[])
                .await
                .map_err(self.err())?
                .get(0);
            if let Some((out, taken)) = share {
                let _ = out.send(snapshot.clone());
                drop(out);
                // Until the other side has taken the snapshot up (a moment: one SET on an
                // open connection), or given up (the channel closes either way).
                let _ = taken.recv();
            }
            let shares = tx
                .query_one(
                    &format!(
                        "SELECT count(*) FILTER (WHERE {wanted_runs}), count(*), \
                         pg_relation_size('point_packs') / current_setting('block_size')::int8 \
                         FROM runs r"
                    ),
                    &[],
                )
                .await
                .map_err(self.err())?;
            let (wanted, all, pages): (i64, i64, i64) =
                (shares.get(0), shares.get(1), shares.get(2));
            if wanted == 0 {
                return Ok(PointGroups::default());
            }
            if wanted.saturating_mul(3) < all {
                let copy = format!(
                    "COPY (SELECT k.run_id, r.station_id, r.run_date, k.pack \
                     FROM point_packs k JOIN runs r ON r.run_id = k.run_id WHERE {wanted_runs}) \
                     TO STDOUT (FORMAT binary)"
                );
                let mut groups = self
                    .read_point_groups(&snapshot, &copy, PointRuns::Joined)
                    .await?;
                tx.commit().await.map_err(self.err())?;
                groups.settle();
                return Ok(groups);
            }
            let runs = self.wanted_runs(&tx, &wanted_runs, wanted).await?;
            let slices = std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .clamp(1, 8) as i64;
            // Each slice on a thread and a runtime of its own. This runtime waits with
            // them: its connection has nothing to say meanwhile.
            let read: Vec<Result<PointGroups, StoreError>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..slices)
                    .map(|i| {
                        let (first, end) = (
                            pages * i / slices,
                            (i + 1 < slices).then(|| pages * (i + 1) / slices),
                        );
                        let (runs, snapshot) = (&runs, &snapshot);
                        s.spawn(move || {
                            let upper = end
                                .map_or(String::new(), |e| format!(" AND ctid < '({e},0)'::tid"));
                            let copy = format!(
                                "COPY (SELECT k.run_id, k.pack FROM point_packs k \
                                 WHERE ctid >= '({first},0)'::tid{upper}) \
                                 TO STDOUT (FORMAT binary)"
                            );
                            reader_runtime()?.block_on(self.read_point_groups(
                                snapshot,
                                &copy,
                                PointRuns::Looked(runs),
                            ))
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            });
            // The readers have taken up the snapshot; it may go.
            tx.commit().await.map_err(self.err())?;
            drop_aside(runs);
            let mut groups = PointGroups::default();
            for slice in read {
                groups.append(slice?);
            }
            groups.settle();
            Ok(groups)
        })
    }

    /// A connection of the async client for one of the audit's reads, served on the
    /// runtime it is made on (its failures reach the client's calls).
    async fn reader_client(&self) -> Result<tokio_postgres::Client, StoreError> {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .map_err(self.err())?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// A read-only REPEATABLE READ transaction: one snapshot for the whole read.
    async fn repeatable_read<'c>(
        &self,
        client: &'c mut tokio_postgres::Client,
    ) -> Result<tokio_postgres::Transaction<'c>, StoreError> {
        client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(self.err())
    }

    /// The runs `wanted_runs` (a condition on `runs r`) selects, `wanted` of them: id →
    /// station, date.
    async fn wanted_runs(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        wanted_runs: &str,
        wanted: i64,
    ) -> Result<WantedRuns, StoreError> {
        let format = |error| StoreError::BinaryCopy {
            store: self.shown.clone(),
            error,
        };
        let copy = format!(
            "COPY (SELECT r.run_id, r.station_id, r.run_date FROM runs r WHERE {wanted_runs}) \
             TO STDOUT (FORMAT binary)"
        );
        let mut runs = WantedRuns::default();
        runs.by_id.reserve(usize::try_from(wanted).unwrap_or(0));
        let chunks = tx.copy_out(&copy).await.map_err(self.err())?;
        let mut chunks = std::pin::pin!(chunks);
        let mut tuples = CopyReader::new(3);
        while let Some(chunk) = chunks.try_next().await.map_err(self.err())? {
            tuples.push(&chunk);
            while let Some(t) = tuples.next_tuple().map_err(format)? {
                let date = pg_date(t.date_days(2).map_err(format)?)
                    .ok_or_else(|| format(date_out_of_range(&t)))?;
                let station = runs.stations.id(t.text(1).map_err(format)?);
                runs.by_id
                    .insert(t.text(0).map_err(format)?.into(), (station, date));
            }
        }
        tuples.finish().map_err(format)?;
        Ok(runs)
    }

    /// The points a `copy` (binary COPY) gives, read in `snapshot` on a connection of
    /// its own: each row is its run's columns (see [`PointRuns`]) then
    /// its pack of points (see `pg_packs.sql`). On the async client: the blocking one enters its
    /// runtime for every row (2 µs a row, most of the read's time).
    async fn read_point_groups(
        &self,
        snapshot: &str,
        copy: &str,
        runs: PointRuns<'_>,
    ) -> Result<PointGroups, StoreError> {
        // A snapshot's name is hex digits and dashes; it goes into the command as a
        // literal (SET takes no parameters).
        assert!(
            snapshot.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'),
            "the server named its snapshot {snapshot:?}"
        );
        // Each tuple: the run's id, then (joined) its station and date, then its pack.
        let at = match runs {
            PointRuns::Looked(_) => 1,
            PointRuns::Joined => 3,
        };
        let format = |error| StoreError::BinaryCopy {
            store: self.shown.clone(),
            error,
        };
        let mut client = self.reader_client().await?;
        let tx = self.repeatable_read(&mut client).await?;
        // A table-wide change asked for meanwhile (ALTER TABLE, TRUNCATE) queues behind
        // the lead's lock, and this reader's lock would queue behind it: a wait the
        // server sees no deadlock in (the lead waits for this reader, not for a lock).
        // The reader gives up instead, and the audit fails saying so.
        tx.batch_execute(&format!(
            "SET TRANSACTION SNAPSHOT '{snapshot}'; SET LOCAL lock_timeout = '10s'"
        ))
        .await
        .map_err(self.err())?;
        let chunks = tx.copy_out(copy).await.map_err(self.err())?;
        let mut chunks = std::pin::pin!(chunks);
        let mut tuples = CopyReader::new(at + 1);
        let mut groups = PointGroups::default();
        // The wanted runs' stations (by their index there) as this reader's names.
        let mut station_names: Vec<Option<u32>> = Vec::new();
        let mut seen = SeenTexts::default();
        while let Some(chunk) = chunks.try_next().await.map_err(self.err())? {
            tuples.push(&chunk);
            while let Some(t) = tuples.next_tuple().map_err(format)? {
                let (station, date) = match runs {
                    PointRuns::Joined => (
                        groups.names.id(t.text(1).map_err(format)?),
                        pg_date(t.date_days(2).map_err(format)?)
                            .ok_or_else(|| format(date_out_of_range(&t)))?,
                    ),
                    PointRuns::Looked(runs) => {
                        // An id that is not UTF-8 is no wanted run's.
                        let wanted = std::str::from_utf8(t.text_bytes(0).map_err(format)?)
                            .ok()
                            .and_then(|id| runs.by_id.get(id));
                        let Some(&(station, date)) = wanted else {
                            continue;
                        };
                        let at = station as usize;
                        if station_names.len() <= at {
                            station_names.resize(at + 1, None);
                        }
                        let name = *station_names[at]
                            .get_or_insert_with(|| groups.names.id(runs.stations.text(station)));
                        (name, date)
                    }
                };
                let pack = t.raw(at).ok_or_else(|| {
                    format(CopyError::Format {
                        offset: t.offset(),
                        what: "a NULL pack".into(),
                    })
                })?;
                for point in pack::points(pack) {
                    // Said with the run (the tuple's first field: its id).
                    let bad = |what: String| {
                        format(CopyError::Format {
                            offset: t.offset(),
                            what: format!(
                                "the pack of {}: {what}",
                                String::from_utf8_lossy(t.raw(0).unwrap_or_default())
                            ),
                        })
                    };
                    let p = point.map_err(|e| bad(e.to_string()))?;
                    // A value no measurement gives (set by hand): said with its run, as
                    // the embedded store says it of its file's row.
                    if !(p.error_percent.is_finite() && p.mpe_percent.is_finite()) {
                        return Err(StoreError::Record {
                            run_id: String::from_utf8_lossy(t.raw(0).unwrap_or_default())
                                .into_owned(),
                            message: format!(
                                "step {} port {}: an error of {} % against an MPE of {} % is \
                                 not a measured point",
                                p.step_index,
                                String::from_utf8_lossy(p.port),
                                p.error_percent,
                                p.mpe_percent
                            ),
                        });
                    }
                    let (step_name, port) = seen
                        .names(&mut groups.names, p.step_index, p.step_name, p.port)
                        .ok_or_else(|| bad("a step name or port that is not UTF-8".into()))?;
                    let key = GroupKey {
                        station,
                        date,
                        step_name,
                        port,
                        mpe_bits: p.mpe_percent.to_bits(),
                        accepted: p.accepted,
                    };
                    groups.add_point(key, p.step_index as u32, p.error_percent);
                }
            }
        }
        tuples.finish().map_err(format)?;
        tx.commit().await.map_err(self.err())?;
        groups.order_errors();
        Ok(groups)
    }

    /// The instruments the runs dated `from..=to` used, in `tx` (the audit's snapshot).
    async fn instrument_uses(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<InstrumentUse>, StoreError> {
        // A few dozen groups out of a row per instrument and run: the planner, which
        // expects tens of thousands, would sort them on disk in parallel workers (1 s of
        // the server's processor time for 100 000 runs, against 0.35 s for one process
        // hashing them). The audit reads on several connections at once already.
        tx.batch_execute(
            "SET LOCAL max_parallel_workers_per_gather = 0; SET LOCAL work_mem = '64MB'",
        )
        .await
        .map_err(self.err())?;
        let rows = tx
            .query(
                "SELECT r.station_id, i.role, i.model, i.serial_number, i.calibration_id, \
                 i.calibration_due, MAX(r.started_utc) AS last_used \
                 FROM run_instruments i JOIN runs r ON r.run_id = i.run_id \
                 WHERE r.run_date >= $1 AND r.run_date <= $2 \
                 GROUP BY r.station_id, i.role, i.model, i.serial_number, i.calibration_id, \
                 i.calibration_due \
                 ORDER BY r.station_id, i.role, i.serial_number, last_used",
                &[&from, &to],
            )
            .await
            .map_err(self.err())?;
        rows.iter()
            .map(|r| {
                Ok(InstrumentUse {
                    station: r.try_get(0)?,
                    role: r.try_get(1)?,
                    model: r.try_get(2)?,
                    serial_number: r.try_get(3)?,
                    calibration_id: r.try_get(4)?,
                    calibration_due: r.try_get(5)?,
                    last_used: canonical_utc(r.try_get::<_, DateTime<Utc>>(6)?),
                })
            })
            .collect::<Result<Vec<_>, postgres::Error>>()
            .map_err(self.err())
    }

    /// Take the tables' statistics for the planner (after a bulk load).
    pub(crate) fn analyze(&self) -> Result<(), StoreError> {
        self.client()
            .batch_execute("ANALYZE runs, run_instruments, points, point_packs")
            .map_err(self.err())
    }

    /// Bulk filing for the synthesizer: runs with their points, in one transaction, by
    /// COPY (a year of runs is millions of points).
    pub(crate) fn insert_many(
        &self,
        runs: &[IndexRun],
        points: &[PointRow],
    ) -> Result<(), StoreError> {
        let mut client = self.client();
        let mut tx = client.transaction().map_err(self.err())?;
        {
            let sink = tx
                .copy_in(&format!("COPY runs ({RUN_COLUMNS}) FROM STDIN BINARY"))
                .map_err(self.err())?;
            let mut w = BinaryCopyInWriter::new(sink, &RUN_TYPES);
            for run in runs {
                let v = RunValues::of(&run.row)?;
                w.write(&v.params(&run.row)).map_err(self.err())?;
            }
            w.finish().map_err(self.err())?;
        }
        {
            let sink = tx
                .copy_in(&format!(
                    "COPY run_instruments ({INSTRUMENT_COLUMNS}) FROM STDIN BINARY"
                ))
                .map_err(self.err())?;
            let mut w = BinaryCopyInWriter::new(sink, &INSTRUMENT_TYPES);
            for run in runs {
                for i in &run.instruments {
                    w.write(&instrument_params(&run.row.run_id, i))
                        .map_err(self.err())?;
                }
            }
            w.finish().map_err(self.err())?;
        }
        copy_points(&mut tx, points).map_err(self.err())?;
        tx.commit().map_err(self.err())
    }
}

/// File `points` by one COPY: one statement, so the server packs each run's points once.
fn copy_points(
    tx: &mut postgres::Transaction<'_>,
    points: &[PointRow],
) -> Result<(), postgres::Error> {
    let sink = tx.copy_in(&format!("COPY points ({POINT_COLUMNS}) FROM STDIN BINARY"))?;
    let mut w = BinaryCopyInWriter::new(sink, &POINT_TYPES);
    for p in points {
        let v = PointValues::of(p);
        w.write(&v.params(p))?;
    }
    w.finish()?;
    Ok(())
}

/// The tables and indexes `schema` makes: the name after `IF NOT EXISTS` in each
/// statement that starts `CREATE` (`TABLE`, `INDEX`, `UNIQUE INDEX`; any case, any
/// spacing on the line).
fn schema_relations(schema: &str) -> Vec<String> {
    schema
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            if !words.first()?.eq_ignore_ascii_case("CREATE") {
                return None;
            }
            let at = words.windows(3).position(|w| {
                w[0].eq_ignore_ascii_case("IF")
                    && w[1].eq_ignore_ascii_case("NOT")
                    && w[2].eq_ignore_ascii_case("EXISTS")
            })?;
            words.get(at + 3).copied()
        })
        .filter_map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

/// A runtime for one of the audit's readers (one thread: its connections).
fn reader_runtime() -> Result<tokio::runtime::Runtime, StoreError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::Io {
            path: PathBuf::from("a runtime for the audit's reader"),
            cause: e,
        })
}

/// A binary COPY `date` (days since 2000-01-01), if chrono can hold it.
fn pg_date(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(2000, 1, 1)?.checked_add_signed(chrono::Duration::days(days.into()))
}

/// A binary COPY `timestamptz` (microseconds since 2000-01-01 00:00 UTC), if chrono can
/// hold it (not ±infinity).
fn pg_timestamp(micros: i64) -> Option<DateTime<Utc>> {
    const FROM_UNIX_EPOCH: i64 = 946_684_800_000_000;
    DateTime::from_timestamp_micros(micros.checked_add(FROM_UNIX_EPOCH)?)
}

fn date_out_of_range(t: &Tuple<'_>) -> CopyError {
    CopyError::Format {
        offset: t.offset(),
        what: "a run date out of the calendar's range".into(),
    }
}

/// The types of [`RUN_COLUMNS`], in order (for COPY).
const RUN_TYPES: [Type; 18] = [
    Type::VARCHAR,
    Type::VARCHAR,
    Type::VARCHAR,
    Type::VARCHAR,
    Type::VARCHAR,
    Type::VARCHAR,
    Type::VARCHAR,
    Type::VARCHAR,
    Type::VARCHAR,
    Type::VARCHAR,
    Type::BPCHAR,
    Type::VARCHAR,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::DATE,
    Type::VARCHAR,
    Type::TEXT,
    Type::TEXT,
];

/// The columns of an instrument's row, in the order of [`instrument_params`] and
/// [`INSTRUMENT_TYPES`].
const INSTRUMENT_COLUMNS: &str = "run_id, role, driver, model, serial_number, calibration_id, \
     calibration_due, calibration_issued_by";

const INSTRUMENT_TYPES: [Type; 8] = [
    Type::VARCHAR,
    Type::VARCHAR,
    Type::VARCHAR,
    Type::VARCHAR,
    Type::VARCHAR,
    Type::VARCHAR,
    Type::DATE,
    Type::VARCHAR,
];

fn instrument_params<'a>(run_id: &'a String, i: &'a InstrumentRow) -> [&'a (dyn ToSql + Sync); 8] {
    [
        run_id,
        &i.role,
        &i.driver,
        &i.model,
        &i.serial_number,
        &i.calibration_id,
        &i.calibration_due,
        &i.calibration_issued_by,
    ]
}

/// The columns of a point's row, in the order of [`PointValues::params`] and
/// [`POINT_TYPES`].
const POINT_COLUMNS: &str = "run_id, step_index, port, step_name, current_name, current_a, \
     power_factor, phases, repeats, error_percent, u_percent, mpe_percent, conformity, accepted";

const POINT_TYPES: [Type; 14] = [
    Type::VARCHAR,
    Type::INT4,
    Type::VARCHAR,
    Type::VARCHAR,
    Type::VARCHAR,
    Type::FLOAT8,
    Type::VARCHAR,
    Type::VARCHAR,
    Type::INT4,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::VARCHAR,
    Type::BOOL,
];

/// The values of a point's row that are not fields of [`PointRow`] as they are
/// (PostgreSQL's INTEGER is an i32).
struct PointValues {
    step: i32,
    repeats: i32,
}

impl PointValues {
    fn of(p: &PointRow) -> PointValues {
        PointValues {
            step: p.step_index as i32,
            repeats: p.repeats as i32,
        }
    }

    fn params<'a>(&'a self, p: &'a PointRow) -> [&'a (dyn ToSql + Sync); 14] {
        [
            &p.run_id,
            &self.step,
            &p.port,
            &p.step_name,
            &p.current_name,
            &p.current_a,
            &p.power_factor,
            &p.phases,
            &self.repeats,
            &p.error_percent,
            &p.u_percent,
            &p.mpe_percent,
            &p.conformity,
            &p.accepted,
        ]
    }
}

/// The typed values of a run's row that are not plain texts of [`RunRow`].
struct RunValues {
    started: DateTime<Utc>,
    finished: Option<DateTime<Utc>>,
    outcome: &'static str,
    bundle: String,
}

impl RunValues {
    fn of(r: &RunRow) -> Result<RunValues, StoreError> {
        let time = |s: &str| crate::layout::parse_utc(&r.run_id, s);
        Ok(RunValues {
            started: time(&r.started_utc)?,
            finished: r.finished_utc.as_deref().map(time).transpose()?,
            outcome: outcome_str(r.outcome),
            bundle: r.bundle.to_string_lossy().into_owned(),
        })
    }

    fn params<'a>(&'a self, r: &'a RunRow) -> [&'a (dyn ToSql + Sync); 18] {
        [
            &r.run_id,
            &r.station,
            &r.station_name,
            &r.laboratory,
            &r.dut_manufacturer,
            &r.dut_type,
            &r.serial,
            &r.accuracy_class,
            &r.procedure_id,
            &r.procedure_version,
            &r.procedure_sha256,
            &r.bench_version,
            &self.started,
            &self.finished,
            &r.date,
            &self.outcome,
            &r.reason,
            &self.bundle,
        ]
    }
}

fn insert_run(
    client: &mut impl GenericClient,
    run: &IndexRun,
    v: &RunValues,
) -> Result<(), postgres::Error> {
    let r = &run.row;
    client.execute(
        &format!(
            "INSERT INTO runs ({RUN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, $11, $12, $13, $14, $15, $16, $17, $18)"
        ),
        &v.params(r),
    )?;
    let ins = client.prepare(&format!(
        "INSERT INTO run_instruments ({INSTRUMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))?;
    for i in &run.instruments {
        client.execute(&ins, &instrument_params(&r.run_id, i))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schemas_tables_and_indexes_are_named() {
        // Read off schema.sql by hand (its comments name IF NOT EXISTS too).
        assert_eq!(
            schema_relations(SCHEMA_SQL),
            [
                "store_meta",
                "runs",
                "runs_by_serial",
                "runs_by_station",
                "runs_by_date",
                "run_instruments",
                "run_instruments_by_calibration",
                "run_amendments",
                "run_amendments_by_amended",
                "points"
            ]
        );
        assert_eq!(
            schema_relations(
                "-- CREATE TABLE IF NOT EXISTS not_this\n  create unique index  if not exists \
                 by_x ON t (x);\nCREATE TABLE IF NOT EXISTS t(\n"
            ),
            ["by_x", "t"]
        );
    }

    #[test]
    fn a_step_index_named_anew_is_named_by_its_texts() {
        // Two procedures whose step 3 differ, a retest's name, a port of each side, and
        // a step index beyond those kept (looked up by name each time).
        let rows: [(i32, &[u8], &[u8]); 8] = [
            (3, b"Imin PF1", b"left"),
            (3, b"Imin PF1", b"right"),
            (3, b"Itr PF1", b"left"),
            (3, b"Imin PF1", b"left"),
            (4, b"Imin PF1", b"left"),
            (-1, b"Imin PF1", b"left"),
            (5000, b"Itr PF1", b"right"),
            (3, b"Itr PF1", b"right"),
        ];
        let (mut names, mut seen) = (Names::default(), SeenTexts::default());
        for (index, step, port) in rows {
            let ids = seen.names(&mut names, index, step, port).unwrap();
            assert_eq!(
                (names.text(ids.0).as_bytes(), names.text(ids.1).as_bytes()),
                (step, port),
                "step {index}"
            );
        }
        // Four texts, each named once.
        assert_eq!(
            ["Imin PF1", "left", "right", "Itr PF1"].map(|t| names.id(t)),
            [0, 1, 2, 3]
        );
    }

    #[test]
    fn a_name_that_is_not_utf8_is_refused() {
        let (mut names, mut seen) = (Names::default(), SeenTexts::default());
        assert!(seen.names(&mut names, 3, b"Imin PF1", b"left").is_some());
        assert_eq!(seen.names(&mut names, 3, b"Imin \xff", b"left"), None);
        assert_eq!(seen.names(&mut names, 3, b"Imin PF1", b"\xfeleft"), None);
        // Nothing was named for them.
        assert_eq!(names.id("left"), 1);
        assert_eq!(names.id("x"), 2);
    }

    #[test]
    fn start_times_count_from_2000() {
        assert_eq!(
            pg_timestamp(0).unwrap().to_rfc3339(),
            "2000-01-01T00:00:00+00:00"
        );
        // 2026-01-05 06:00:51.839 UTC, as the server sent it (pgcopy's tests/data/runs.*):
        // 1 767 592 851 839 000 µs after 1970, less 946 684 800 s.
        assert_eq!(
            canonical_utc(pg_timestamp(1_767_592_851_839_000 - 946_684_800_000_000).unwrap()),
            "2026-01-05T06:00:51.839000Z"
        );
        // ±infinity.
        assert_eq!(pg_timestamp(i64::MAX), None);
        assert_eq!(pg_timestamp(i64::MIN), None);
    }
}
