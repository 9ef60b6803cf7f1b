//! A rack of ten CPIM1000 (twenty meter ports on three counters) on the simulated bench,
//! measured from one load through the real drivers: each position decided on its own, a
//! position's fault taking out that position alone, a bench fault stopping all, and
//! retests in the same session and in a later one.

use meterbench_instruments::{
    ChannelConfig, CounterBatch, InstrumentError, InstrumentIdentity, InstrumentResult,
    PulseCounter, ReferenceCount,
};
use meterbench_procedure::SimFault;
use meterbench_runner::record::{Deviation, PortResult, RunRecord, StepKind};
use meterbench_runner::{Collect, EventKind, Outcome, Silent};
use meterbench_session::{Bundle, Output, Prepared, Retest, SessionOptions, StoreFiling, deliver};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

mod common;
use common::{options, source_is_off, wrap_counter};

const BUMP_AT_3: &str =
    "{error_bump: {position: 3, port: right, from_a: 4, to_a: 6, cos_phi: 1, error_percent: 1.6}}";
const DEAD_LED_AT_7: &str = "{dead_led: {position: 7, port: right}}";

fn rack(reports: &std::path::Path, faults: &[&str]) -> SessionOptions {
    let mut o = options(
        "procedures/en50470-3-class-b.yaml",
        "fixtures/cpim1000.yaml",
        "hw/stations/sim-rack-10.yaml",
        reports,
    );
    o.sim_faults = faults.iter().map(|f| SimFault::parse(f).unwrap()).collect();
    o
}

/// (step, ports) of each failed step's latest attempt.
fn failed(rec: &RunRecord) -> Vec<(String, Vec<String>)> {
    rec.latest_attempts()
        .into_iter()
        .filter(|s| s.outcome == Outcome::Fail)
        .map(|s| {
            let ports = s
                .ports
                .iter()
                .filter(|p| !p.result.as_ref().is_some_and(|r| r.passed()))
                .map(|p| p.port.clone())
                .collect();
            (s.name.clone(), ports)
        })
        .collect()
}

fn position(r: &RunRecord) -> u32 {
    r.position.as_ref().unwrap().id
}

#[test]
fn each_position_is_decided_on_its_own_and_gets_its_own_certificate() {
    let reports = tempfile::tempdir().unwrap();
    let prepared = Prepared::load(rack(reports.path(), &[BUMP_AT_3, DEAD_LED_AT_7])).unwrap();
    assert_eq!(prepared.positions.len(), 10);
    let mut bound = prepared.bind().unwrap();
    let mut events = Collect::default();
    let session = prepared
        .run(
            &mut bound,
            None,
            Arc::new(AtomicBool::new(false)),
            &mut events,
        )
        .unwrap();
    assert!(source_is_off(&bound), "the source is off at the end");
    assert_eq!(session.runs.len(), 10);

    for run in &session.runs {
        let r = &run.record;
        match position(r) {
            // Out of limits at Iref PF1 on its right port, and nowhere else (the bump
            // also reaches the single-phase Iref points, whose limit is 2 %).
            3 => {
                assert_eq!(r.outcome, Outcome::Fail, "{:?}", r.outcome_reason);
                assert_eq!(
                    failed(r),
                    vec![("Iref PF1".to_string(), vec!["right".to_string()])]
                );
                assert_eq!(r.steps.len(), 15, "position 3 ran every step");
            }
            // The dark LED is found by the scanning-head check: ERROR naming the port,
            // its counter and channel; nothing more is measured at that position.
            7 => {
                assert_eq!(r.outcome, Outcome::Error);
                let reason = r.outcome_reason.clone().unwrap();
                assert!(
                    reason.contains("port right (counter c2 channel 5)")
                        && !reason.contains("port left"),
                    "{reason}"
                );
                assert_eq!(r.steps.len(), 1, "{:?}", r.steps.len());
            }
            p => {
                assert_eq!(
                    r.outcome,
                    Outcome::Pass,
                    "position {p}: {:?}",
                    r.outcome_reason
                );
                assert_eq!(r.steps.len(), 15);
            }
        }
        // Each device its own record, on disk as returned.
        let disk = RunRecord::read(&run.record_path).unwrap();
        assert_eq!(
            (disk.run_id.as_str(), disk.outcome),
            (r.run_id.as_str(), r.outcome)
        );
        assert_eq!(
            disk.session_id.as_deref(),
            Some(session.session_id.as_str())
        );
        assert_eq!(disk.position.as_ref().unwrap().of, 10);
    }
    // The measured errors are each meter's own: the pulses of port left at position 1
    // and at position 2 are different pulse trains of the same load.
    let ports_of = |k: usize| -> Vec<u64> {
        session.runs[k].record.steps[3].ports[0]
            .pulses
            .iter()
            .map(|p| p.ref_count)
            .collect()
    };
    assert_ne!(ports_of(0), ports_of(1));

    // One load: the session waits for the slowest position, close to its floor.
    let bench = session.runs[0].record.timing.bench_duration_s;
    let floor = session
        .runs
        .iter()
        .map(|r| r.record.timing.physical_floor_s)
        .fold(0.0, f64::max);
    assert!(bench <= 1.02 * floor, "bench {bench} s, floor {floor} s");

    // The event stream names positions and ports, and serialises.
    let mut progress_positions = std::collections::BTreeSet::new();
    let mut finished = 0;
    for e in &events.0 {
        serde_json::to_string(e).unwrap();
        match &e.what {
            EventKind::Progress { ports, .. } => {
                progress_positions.extend(ports.iter().map(|p| p.position))
            }
            EventKind::PositionFinished { .. } => finished += 1,
            _ => {}
        }
    }
    assert_eq!(progress_positions.len(), 10);
    assert_eq!(finished, 10);

    // The session record lists every run.
    let sessions: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&session.session_path).unwrap()).unwrap();
    assert_eq!(sessions["runs"].as_array().unwrap().len(), 10);
    assert_eq!(sessions["outcome"], "ERROR");

    // Every device its own signed bundle and certificate, made in parallel.
    let key_dir = tempfile::tempdir().unwrap();
    let key = meterbench_signing::generate_key(
        &key_dir.path().join("k.pem"),
        &key_dir.path().join("k.pub.pem"),
    )
    .unwrap();
    let verifying = key.verifying_key();
    let trust = meterbench_signing::Keyring::single(verifying, "the rack test's key");
    let outputs: Vec<Box<dyn Output>> = vec![
        Box::new(Bundle::new(
            key,
            trust.clone(),
            "rack test".into(),
            reports.path().join("issuance-log.jsonl"),
        )),
        Box::new(StoreFiling {
            store: reports.path().join("store").into(),
            queue: reports.path().join("store.unfiled"),
            trusted: trust.clone(),
        }),
    ];
    let delivered = deliver(&session, &outputs, 2);
    assert_eq!(delivered.len(), 10);
    for (d, run) in delivered.iter().zip(&session.runs) {
        assert!(d.all_done(), "{d:?}");
        let folder = run.record_path.parent().unwrap();
        assert!(folder.join("certificate.pdf").is_file());
        meterbench_signing::verify_bundle(folder, Some(&verifying))
            .unwrap_or_else(|p| panic!("{}: {p:?}", folder.display()));
    }
    let log =
        meterbench_signing::verify_issuance_log(&reports.path().join("issuance-log.jsonl"), &trust)
            .unwrap();
    assert_eq!(log.entries.len(), 10, "one issuance per device, chained");
}

/// A counter that loses its link after a number of drains.
struct Unplugged {
    inner: Box<dyn PulseCounter>,
    drains: usize,
    after: usize,
}

impl PulseCounter for Unplugged {
    fn identity(&mut self) -> InstrumentResult<InstrumentIdentity> {
        self.inner.identity()
    }
    fn timebase_hz(&self) -> f64 {
        self.inner.timebase_hz()
    }
    fn arm(&mut self, c: &[ChannelConfig]) -> InstrumentResult<()> {
        self.inner.arm(c)
    }
    fn disarm(&mut self) -> InstrumentResult<()> {
        self.inner.disarm()
    }
    fn drain(&mut self) -> InstrumentResult<CounterBatch> {
        self.drains += 1;
        if self.drains > self.after {
            return Err(InstrumentError::Link {
                instrument: "counter c2".into(),
                message: "device disconnected".into(),
            });
        }
        self.inner.drain()
    }
    fn reference_count(&mut self) -> InstrumentResult<ReferenceCount> {
        self.inner.reference_count()
    }
}

#[test]
fn a_bench_fault_mid_run_stops_every_position_and_keeps_what_each_measured() {
    let reports = tempfile::tempdir().unwrap();
    let prepared = Prepared::load(rack(reports.path(), &[])).unwrap();
    let mut bound = prepared.bind().unwrap();
    // Counter c2 (positions 5–8) is unplugged some way into the accuracy points.
    wrap_counter(&mut bound, 1, |inner| {
        Box::new(Unplugged {
            inner,
            drains: 0,
            after: 40,
        })
    });
    let session = prepared
        .run(
            &mut bound,
            None,
            Arc::new(AtomicBool::new(false)),
            &mut Silent,
        )
        .unwrap();
    assert!(source_is_off(&bound));
    for run in &session.runs {
        let r = &run.record;
        assert_eq!(r.outcome, Outcome::Error, "position {}", position(r));
        assert!(
            r.outcome_reason
                .as_deref()
                .unwrap()
                .contains("device disconnected"),
            "{:?}",
            r.outcome_reason
        );
        // Every step finished before the fault is kept, with its pulses.
        let passed: Vec<_> = r
            .steps
            .iter()
            .filter(|s| s.outcome == Outcome::Pass)
            .collect();
        assert!(
            passed.len() >= 4,
            "position {}: {}",
            position(r),
            passed.len()
        );
        assert!(
            passed
                .iter()
                .filter(|s| s.kind == StepKind::Accuracy)
                .all(|s| s.ports.iter().all(|p| !p.pulses.is_empty()))
        );
        assert_eq!(r.steps.last().unwrap().outcome, Outcome::Error);
        assert!(r.log.iter().any(|l| l.message == "source output off"));
        // Every record on disk is final, none left IN_PROGRESS.
        assert_eq!(
            RunRecord::read(&run.record_path).unwrap().outcome,
            Outcome::Error
        );
    }
}

#[test]
fn a_failed_point_is_measured_again_in_the_session_with_both_attempts_recorded() {
    let reports = tempfile::tempdir().unwrap();
    let mut o = rack(reports.path(), &[BUMP_AT_3]);
    o.retest_failed = true;
    let (session, bound) = common::run(o).unwrap();
    assert!(source_is_off(&bound));
    for run in &session.runs {
        let r = &run.record;
        let attempts: Vec<u32> = r
            .steps
            .iter()
            .filter(|s| s.name == "Iref PF1")
            .map(|s| s.attempt)
            .collect();
        if position(r) != 3 {
            assert_eq!(attempts, [1], "only the failed position is measured again");
            assert!(r.deviations.is_empty());
            assert_eq!(r.outcome, Outcome::Pass);
            continue;
        }
        // Both attempts are there; the bump is still there, so both fail.
        assert_eq!(attempts, [1, 2]);
        let again: Vec<&meterbench_runner::record::StepRecord> =
            r.steps.iter().filter(|s| s.name == "Iref PF1").collect();
        assert!(again.iter().all(|s| s.outcome == Outcome::Fail));
        assert!(again[1].started_s > again[0].started_s);
        match &r.deviations[..] {
            [
                Deviation::Retest {
                    step,
                    attempt,
                    reason,
                },
            ] => {
                assert_eq!((step.as_str(), *attempt), ("Iref PF1", 2));
                assert!(reason.contains("attempt 1 ended FAIL"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.outcome, Outcome::Fail);
    }
}

#[test]
fn a_later_session_measures_a_stored_point_again_and_amends_its_run() {
    let reports = tempfile::tempdir().unwrap();
    let (first, _) = common::run(rack(reports.path(), &[BUMP_AT_3])).unwrap();
    let stored = first
        .runs
        .iter()
        .find(|r| position(&r.record) == 3)
        .unwrap();
    assert_eq!(stored.record.outcome, Outcome::Fail);

    // The next session: the meter at position 3 has been re-seated (no bump any more).
    let (record, _) =
        meterbench_session::stored_record(reports.path(), &stored.record.run_id).unwrap();
    let retest = Retest::plan(record, "Iref PF1", rack(reports.path(), &[])).unwrap();
    let mut bound = retest.prepared.bind().unwrap();
    let session = retest
        .run(
            &mut bound,
            None,
            Arc::new(AtomicBool::new(false)),
            &mut Silent,
        )
        .unwrap();
    assert!(source_is_off(&bound));
    let r = &session.runs[0].record;
    assert_eq!(r.amends.as_deref(), Some(stored.record.run_id.as_str()));
    assert_ne!(r.run_id, stored.record.run_id);
    assert_eq!(position(r), 3);
    assert_eq!(r.dut.serial_number, stored.record.dut.serial_number);
    // Every step of the stored run is carried over, and the new attempt follows with
    // the single-phase check taken again from it.
    assert_eq!(r.steps.len(), stored.record.steps.len() + 2);
    // The record says which were carried: the store files only the two measured here.
    assert_eq!(r.carried_steps, stored.record.steps.len());
    let here: Vec<_> = r
        .latest_measured_here()
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(here, ["Iref PF1", "Single-phase vs balanced (Iref PF1)"]);
    let last = &r.steps[r.steps.len() - 2];
    assert_eq!((last.name.as_str(), last.attempt), ("Iref PF1", 2));
    let check = r.steps.last().unwrap();
    assert_eq!(
        (check.name.as_str(), check.attempt),
        ("Single-phase vs balanced (Iref PF1)", 2)
    );
    assert_eq!(last.outcome, Outcome::Pass);
    let Some(PortResult::Accuracy { error_percent, .. }) = &last.ports[1].result else {
        panic!()
    };
    assert!(error_percent.abs() < 0.5, "{error_percent}");
    // The latest attempt decides the point; the single-phase points, measured with the
    // bump and not again, now differ from it by 1.6 %: the check fails, nothing else.
    assert_eq!(r.outcome, Outcome::Fail);
    assert_eq!(
        r.outcome_reason.as_deref(),
        Some("out of limits: Single-phase vs balanced (Iref PF1)")
    );
    assert!(matches!(
        &r.deviations[..],
        [Deviation::Retest { attempt: 2, reason, .. }] if reason.contains(&stored.record.run_id)
    ));
    // A point that is not one is refused, naming the points.
    let (record, _) =
        meterbench_session::stored_record(reports.path(), &stored.record.run_id).unwrap();
    let e = Retest::plan(record, "Starting current", rack(reports.path(), &[]))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("no point `Starting current`") && e.contains("Iref PF1"),
        "{e}"
    );
}

#[test]
fn a_run_that_ended_without_a_verdict_is_not_completed_by_a_retest() {
    let reports = tempfile::tempdir().unwrap();
    let (first, _) = common::run(rack(reports.path(), &[DEAD_LED_AT_7])).unwrap();
    let dead = first
        .runs
        .iter()
        .find(|r| position(&r.record) == 7)
        .unwrap();
    assert_eq!(dead.record.outcome, Outcome::Error);
    // Its time is its own: it ended at the first step, not with the session.
    let t = &dead.record.timing;
    assert!(
        t.bench_duration_s < 20.0 && t.physical_floor_s < 20.0,
        "{t:?}"
    );
    let (record, _) =
        meterbench_session::stored_record(reports.path(), &dead.record.run_id).unwrap();
    let e = Retest::plan(record, "Iref PF1", rack(reports.path(), &[]))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("ended ERROR") && e.contains("only a run that failed"),
        "{e}"
    );
}

fn mixed(reports: &std::path::Path) -> SessionOptions {
    options(
        "procedures/en50470-3-class-b.yaml",
        "fixtures/cpim1000.yaml",
        "hw/stations/sim-rack-mixed.yaml",
        reports,
    )
}

/// An unattended line's answers for one position are that position's, also when it is
/// the only one measured.
#[test]
fn answers_for_a_position_are_used_when_it_is_measured_alone() {
    let reports = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wrong = common::edited(
        "hw/answers/sim-cpim1000.yaml",
        "lcd.lrs_hash: \"A3F09C4E\"",
        "lcd.lrs_hash: \"A3F09C4F\"",
        dir.path(),
    );
    let mut o = mixed(reports.path());
    o.procedure = common::repo().join("procedures/cpim1000-eol.yaml");
    o.positions = vec![2];
    o.answers = vec![(Some(2), wrong.clone())];
    let (session, _) = common::run(o).unwrap();
    let r = &session.runs[0].record;
    assert_eq!(position(r), 2);
    assert!(
        matches!(&r.answered_by, Some(meterbench_runner::record::AnsweredBy::AnswersFile { path, .. }) if path.ends_with("sim-cpim1000.yaml")),
        "{:?}",
        r.answered_by
    );
    assert_eq!(
        r.outcome,
        Outcome::Fail,
        "the file's LRS hash is not certified"
    );
    // On a rack, a session of one position still names it.
    assert!(r.run_id.contains("-p2-"), "{}", r.run_id);
    assert_eq!(r.position.as_ref().unwrap().rack, 5);
}

#[test]
fn a_rack_in_one_series_circuit_measures_one_position_at_a_time() {
    let reports = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut o = mixed(reports.path());
    o.station = common::edited(
        "hw/stations/sim-rack-mixed.yaml",
        "isolated_current_circuits: true",
        "isolated_current_circuits: false",
        dir.path(),
    );
    let e = Prepared::load(o.clone()).err().unwrap().to_string();
    assert!(
        e.contains("isolated_current_circuits: false") && e.contains("--positions N"),
        "{e}"
    );
    o.positions = vec![3];
    let (session, _) = common::run(o).unwrap();
    assert_eq!(session.runs[0].record.outcome, Outcome::Pass);
}

/// A current sensor whose link fails after some readings.
struct Unreadable {
    inner: Box<dyn meterbench_instruments::CurrentSensor>,
    readings: usize,
}

impl meterbench_instruments::CurrentSensor for Unreadable {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn next_reading(
        &mut self,
        timeout: std::time::Duration,
    ) -> InstrumentResult<Option<meterbench_instruments::SensorReading>> {
        if self.readings == 0 {
            return Err(InstrumentError::Link {
                instrument: "P1 cable".into(),
                message: "the serial port is gone".into(),
            });
        }
        let r = self.inner.next_reading(timeout)?;
        if r.is_some() {
            self.readings -= 1;
        }
        Ok(r)
    }
    fn stats(&self) -> meterbench_instruments::SensorLinkStats {
        self.inner.stats()
    }
}

/// One sensor's cable pulled is that position's fault; the other sensor is measured.
#[test]
fn a_sensor_whose_link_fails_is_taken_out_alone() {
    let reports = tempfile::tempdir().unwrap();
    let mut o = mixed(reports.path());
    o.procedure = common::repo().join("procedures/csp1-accuracy.yaml");
    o.fixture = common::repo().join("fixtures/csp1.yaml");
    let prepared = Prepared::load(o).unwrap();
    let mut bound = prepared.bind().unwrap();
    let first = &mut bound.positions[0];
    assert_eq!(first.position, 4);
    let inner = first.sensor.take().unwrap();
    first.sensor = Some(Box::new(Unreadable {
        inner,
        readings: 12,
    }));
    let session = prepared
        .run(
            &mut bound,
            None,
            Arc::new(AtomicBool::new(false)),
            &mut Silent,
        )
        .unwrap();
    assert!(source_is_off(&bound));
    let (p4, p5) = (&session.runs[0].record, &session.runs[1].record);
    assert_eq!(p4.outcome, Outcome::Error);
    assert!(
        p4.outcome_reason
            .as_deref()
            .unwrap()
            .contains("the serial port is gone"),
        "{:?}",
        p4.outcome_reason
    );
    assert_eq!(p5.outcome, Outcome::Pass, "{:?}", p5.outcome_reason);
}
