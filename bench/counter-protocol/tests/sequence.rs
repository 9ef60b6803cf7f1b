//! SequenceTracker: gaps, reorders, drops, wrap-around.

use meterbench_counter_protocol::{
    DeviceMessage, Edge, Heartbeat, Pong, SequenceError, SequenceTracker, edge_flags,
};
use proptest::prelude::*;

fn edge(sequence: u32) -> DeviceMessage {
    DeviceMessage::Edge(Edge {
        sequence,
        channel: 0,
        timestamp_ticks: 0,
        width_ticks: 0,
        ref_count: 0,
        flags: 0,
    })
}

fn heartbeat(sequence: u32, dropped_events: u32) -> DeviceMessage {
    DeviceMessage::Heartbeat(Heartbeat {
        sequence,
        timestamp_ticks: 0,
        ref_count: 0,
        dropped_events,
        flags: 0,
    })
}

fn pong(last_sequence: u32) -> DeviceMessage {
    DeviceMessage::Pong(Pong {
        token: 0,
        timestamp_ticks: 0,
        last_sequence,
    })
}

#[test]
fn clean_stream_passes() {
    let mut t = SequenceTracker::new();
    assert_eq!(t.observe(&heartbeat(0, 0)), Ok(()));
    for s in 1..=5 {
        assert_eq!(t.observe(&edge(s)), Ok(()));
    }
    assert_eq!(t.observe(&heartbeat(5, 0)), Ok(()));
    assert_eq!(t.observe(&pong(5)), Ok(()));
    assert_eq!(t.observe(&DeviceMessage::Ack { message_id: 3 }), Ok(()));
    assert_eq!(t.last_sequence(), 5);
}

#[test]
fn first_edge_must_be_one() {
    let mut t = SequenceTracker::new();
    assert_eq!(
        t.observe(&edge(2)),
        Err(SequenceError::Gap {
            expected: 1,
            got: 2
        })
    );
}

#[test]
fn gap_is_reported_once() {
    let mut t = SequenceTracker::new();
    t.observe(&edge(1)).unwrap();
    assert_eq!(
        t.observe(&edge(4)),
        Err(SequenceError::Gap {
            expected: 2,
            got: 4
        })
    );
    assert_eq!(t.observe(&edge(5)), Ok(()));
}

#[test]
fn lost_trailing_edges_show_in_heartbeat_and_pong() {
    let mut t = SequenceTracker::new();
    t.observe(&edge(1)).unwrap();
    assert_eq!(
        t.observe(&heartbeat(3, 0)),
        Err(SequenceError::Gap {
            expected: 1,
            got: 3
        })
    );
    assert_eq!(
        t.observe(&pong(4)),
        Err(SequenceError::Gap {
            expected: 3,
            got: 4
        })
    );
    assert_eq!(t.observe(&edge(5)), Ok(()));
}

#[test]
fn duplicate_and_reorder() {
    let mut t = SequenceTracker::new();
    t.observe(&edge(1)).unwrap();
    t.observe(&edge(2)).unwrap();
    assert_eq!(
        t.observe(&edge(2)),
        Err(SequenceError::Reorder { last: 2, got: 2 })
    );
    assert_eq!(
        t.observe(&edge(1)),
        Err(SequenceError::Reorder { last: 2, got: 1 })
    );
    assert_eq!(
        t.observe(&heartbeat(1, 0)),
        Err(SequenceError::Reorder { last: 2, got: 1 })
    );
    // A reorder does not move the tracker backwards.
    assert_eq!(t.observe(&edge(3)), Ok(()));
}

#[test]
fn dropped_events_rising_or_falling() {
    let mut t = SequenceTracker::new();
    assert_eq!(t.observe(&heartbeat(0, 0)), Ok(()));
    assert_eq!(
        t.observe(&heartbeat(0, 2)),
        Err(SequenceError::DroppedEvents { before: 0, now: 2 })
    );
    assert_eq!(t.observe(&heartbeat(0, 2)), Ok(()));
    assert_eq!(
        t.observe(&heartbeat(0, 0)),
        Err(SequenceError::DroppedEvents { before: 2, now: 0 })
    );
}

#[test]
fn heartbeat_reports_order_before_drops() {
    let mut t = SequenceTracker::new();
    assert_eq!(
        t.observe(&heartbeat(2, 1)),
        Err(SequenceError::Gap {
            expected: 0,
            got: 2
        })
    );
    // Both were recorded: the next heartbeat is clean.
    assert_eq!(t.observe(&heartbeat(2, 1)), Ok(()));
}

#[test]
fn edge_drop_flag() {
    let mut t = SequenceTracker::new();
    let DeviceMessage::Edge(mut e) = edge(1) else {
        unreachable!()
    };
    e.flags = edge_flags::DROPPED_BEFORE;
    assert_eq!(
        t.observe(&DeviceMessage::Edge(e)),
        Err(SequenceError::DroppedBefore { sequence: 1 })
    );
    assert_eq!(t.observe(&edge(2)), Ok(()));
}

#[test]
fn wrap_around_is_not_a_gap() {
    let mut t = SequenceTracker::new();
    t.edge(1).unwrap();
    // Fast-forward through two gaps (each under 2^31, the serial arithmetic
    // horizon), then cross the 32-bit wrap cleanly.
    assert!(matches!(
        t.edge(0x8000_0000),
        Err(SequenceError::Gap { .. })
    ));
    assert!(matches!(
        t.edge(u32::MAX - 1),
        Err(SequenceError::Gap { .. })
    ));
    assert_eq!(t.edge(u32::MAX), Ok(()));
    assert_eq!(t.edge(0), Ok(()));
    assert_eq!(t.edge(1), Ok(()));
    assert_eq!(t.last_sent(1), Ok(()));
    assert_eq!(
        t.edge(u32::MAX),
        Err(SequenceError::Reorder {
            last: 1,
            got: u32::MAX
        })
    );
}

#[test]
fn reset_returns_to_arm_state() {
    let mut t = SequenceTracker::new();
    t.edge(1).unwrap();
    let _ = t.dropped_events(3);
    t.reset();
    assert_eq!(t, SequenceTracker::new());
    assert_eq!(t.edge(1), Ok(()));
}

proptest! {
    /// Losing any subset of a clean Edge stream gives exactly one Gap per run
    /// of lost edges that is followed by a received one, with the right bounds.
    #[test]
    fn gaps_match_losses(lost in prop::collection::vec(any::<bool>(), 1..200)) {
        let mut t = SequenceTracker::new();
        let mut expected_gaps = Vec::new();
        let mut first_lost = None;
        let mut got_gaps = Vec::new();
        for (i, &is_lost) in lost.iter().enumerate() {
            let seq = i as u32 + 1;
            if is_lost {
                first_lost.get_or_insert(seq);
                continue;
            }
            if let Some(expected) = first_lost.take() {
                expected_gaps.push(SequenceError::Gap { expected, got: seq });
            }
            if let Err(e) = t.edge(seq) {
                got_gaps.push(e);
            }
        }
        prop_assert_eq!(got_gaps, expected_gaps);
    }
}
