//! The serving decisions of `metadata_fetch`, event by event, on a log
//! given as the epochs of its entries.

use super::*;

/// A log holding `epochs[i]` at offset `start + i`, and maybe a snapshot.
struct Log {
    start: i64,
    epochs: Vec<i32>,
    snapshot: Option<SnapshotId>,
}

impl EpochLog for Log {
    fn log_start(&self) -> i64 {
        self.start
    }
    fn log_end(&self) -> i64 {
        self.start + self.epochs.len() as i64
    }
    fn epoch_at(&self, offset: i64) -> Option<i32> {
        usize::try_from(offset - self.start).ok().and_then(|i| self.epochs.get(i).copied())
    }
    fn snapshot(&self) -> Option<SnapshotId> {
        self.snapshot
    }
}

fn leader(epoch: i32) -> QuorumView {
    QuorumView { epoch, leader: Some(NodeId(1)), is_leader: true }
}

#[test]
fn the_leader_epoch_is_checked_in_kafkas_order() {
    assert_eq!(check_leader(&leader(5), 4), Err(FetchRefusal::FencedLeaderEpoch));
    assert_eq!(check_leader(&leader(5), 0), Err(FetchRefusal::FencedLeaderEpoch), "an observer that knows nothing");
    assert_eq!(check_leader(&leader(5), 6), Err(FetchRefusal::UnknownLeaderEpoch));
    assert_eq!(check_leader(&leader(5), 5), Ok(()));
    let follower = QuorumView { epoch: 5, leader: Some(NodeId(2)), is_leader: false };
    assert_eq!(check_leader(&follower, 5), Err(FetchRefusal::NotLeaderOrFollower));
    // An older epoch is fenced even on a follower: the answer names the leader.
    assert_eq!(check_leader(&follower, 3), Err(FetchRefusal::FencedLeaderEpoch));
}

#[test]
fn cluster_ids_and_fields_are_checked() {
    assert!(cluster_ok("c1", Some("c1")) && cluster_ok("c1", None));
    assert!(!cluster_ok("c1", Some("c2")));
    assert!(check_fields(500, 0, 0, 0));
    assert!(!check_fields(-1, 0, 0, 0), "negative wait");
    assert!(!check_fields(500, -1, 0, 0), "negative offset");
    assert!(!check_fields(500, 3, -1, 2), "negative last fetched epoch");
    assert!(!check_fields(500, 3, 3, 2), "last fetched epoch past the leader epoch");
    for code in [6, 42, 74, 75, 98, 99, 104] {
        assert_eq!(FetchRefusal::from_code(code).map(FetchRefusal::code), Some(code));
    }
    assert_eq!(FetchRefusal::from_code(0), None);
}

#[test]
fn a_log_without_a_snapshot_is_read_from_its_offset() {
    let log = Log { start: 0, epochs: vec![1, 1, 2, 2, 3], snapshot: None };
    assert_eq!(validate(&log, 0, 0), Position::Valid);
    assert_eq!(validate(&log, 2, 1), Position::Valid);
    assert_eq!(validate(&log, 5, 3), Position::Valid, "at the end: nothing new yet");
    assert_eq!(validate(&log, 4, 2), Position::Valid);
}

#[test]
fn an_empty_fetcher_or_one_below_the_log_start_gets_the_snapshot() {
    let s = SnapshotId { end_offset: 10, epoch: 2 };
    let log = Log { start: 10, epochs: vec![2, 3, 3], snapshot: Some(s) };
    assert_eq!(validate(&log, 0, 0), Position::Snapshot(s));
    assert_eq!(validate(&log, 4, 1), Position::Snapshot(s), "below the log start");
    assert_eq!(validate(&log, 10, 1), Position::Snapshot(s), "at the start with another epoch");
    assert_eq!(validate(&log, 10, 2), Position::Valid, "just loaded the snapshot");
    assert_eq!(validate(&log, 12, 3), Position::Valid);
    // Even with a snapshot that covers nothing purged yet, offset 0 loads it.
    let kept = Log { start: 0, epochs: vec![1, 1, 1], snapshot: Some(SnapshotId { end_offset: 2, epoch: 1 }) };
    assert_eq!(validate(&kept, 0, 0), Position::Snapshot(SnapshotId { end_offset: 2, epoch: 1 }));
}

#[test]
fn an_epoch_that_ends_elsewhere_diverges() {
    let log = Log { start: 0, epochs: vec![1, 1, 2, 2, 4], snapshot: None };
    // It says offset 4 ended epoch 3, which this log never had: epoch 2
    // ends at 4 here.
    assert_eq!(validate(&log, 5, 3), Position::Diverging(SnapshotId { end_offset: 4, epoch: 2 }));
    // It claims more of epoch 1 than there is.
    assert_eq!(validate(&log, 4, 1), Position::Diverging(SnapshotId { end_offset: 2, epoch: 1 }));
    // Past the log end.
    assert_eq!(validate(&log, 9, 4), Position::Diverging(SnapshotId { end_offset: 5, epoch: 4 }));
}

#[test]
fn snapshot_chunks_cover_the_snapshot_and_refuse_positions_outside_it() {
    assert_eq!(snapshot_chunk(10, 0, 4), Ok(0..4));
    assert_eq!(snapshot_chunk(10, 8, 4), Ok(8..10));
    assert_eq!(snapshot_chunk(10, 10, 4), Err(FetchRefusal::PositionOutOfRange), "at the end");
    assert_eq!(snapshot_chunk(10, 0, 0), Ok(0..1), "at least a byte");
    assert_eq!(snapshot_chunk(10, 11, 4), Err(FetchRefusal::PositionOutOfRange));
    assert_eq!(snapshot_chunk(10, -1, 4), Err(FetchRefusal::PositionOutOfRange));
}
