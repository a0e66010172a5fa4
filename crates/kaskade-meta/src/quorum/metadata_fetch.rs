//! What a controller answers an observer's Kafka Fetch of
//! `__cluster_metadata` partition 0, decided without I/O, as Kafka's
//! `KafkaRaftClient.handleFetchRequest` / `tryCompleteFetchRequest` and
//! `ReplicatedLog.validateOffsetAndEpoch` decide it.
//!
//! Offsets are Raft log indexes (openraft's first entry has index 0, as a
//! Kafka log's first offset is 0) and epochs are Raft terms. The order of
//! the checks is Kafka's: the cluster id and the topic partition refuse the
//! whole request (INCONSISTENT_CLUSTER_ID, INVALID_REQUEST); then the
//! leader epoch ([`check_leader`]: FENCED_LEADER_EPOCH below the quorum's
//! epoch, UNKNOWN_LEADER_EPOCH above it, NOT_LEADER_OR_FOLLOWER on a voter
//! that does not lead), each answered with the leader this controller
//! knows; then the fetch position ([`validate`]): a snapshot id when the
//! observer has nothing or is below the log start (it FetchSnapshots), a
//! diverging epoch when its last fetched epoch does not end where it says,
//! else records from its offset.
//!
//! Invariant: observers are served only committed entries (up to the
//! controller's applied index, its high watermark), so what an observer
//! applied is never taken back and it never needs to truncate; a
//! diverging answer can only meet an observer that fetched from another
//! cluster's log, and it starts over.

use kaskade_types::NodeId;

/// Kafka's topic id of `__cluster_metadata` (`Uuid.METADATA_TOPIC_ID`,
/// "AAAAAAAAAAAAAAAAAAAAAQ").
pub const METADATA_TOPIC_ID: uuid::Uuid = uuid::Uuid::from_u128(1);
/// Its name (FetchSnapshot names the topic).
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// A snapshot as Kafka names it (`OffsetAndEpoch`): the offset after its
/// last entry and that entry's epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SnapshotId {
    pub end_offset: i64,
    pub epoch: i32,
}

/// A refusal, as Kafka's error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchRefusal {
    FencedLeaderEpoch,
    UnknownLeaderEpoch,
    NotLeaderOrFollower,
    InvalidRequest,
    InconsistentClusterId,
    SnapshotNotFound,
    PositionOutOfRange,
}

impl FetchRefusal {
    /// Kafka's error code.
    pub fn code(self) -> i16 {
        match self {
            FetchRefusal::NotLeaderOrFollower => 6,
            FetchRefusal::InvalidRequest => 42,
            FetchRefusal::UnknownLeaderEpoch => 75,
            FetchRefusal::FencedLeaderEpoch => 74,
            FetchRefusal::InconsistentClusterId => 104,
            FetchRefusal::SnapshotNotFound => 98,
            FetchRefusal::PositionOutOfRange => 99,
        }
    }

    /// The refusal a code names, for the observer's side.
    pub fn from_code(code: i16) -> Option<FetchRefusal> {
        [
            FetchRefusal::NotLeaderOrFollower,
            FetchRefusal::InvalidRequest,
            FetchRefusal::UnknownLeaderEpoch,
            FetchRefusal::FencedLeaderEpoch,
            FetchRefusal::InconsistentClusterId,
            FetchRefusal::SnapshotNotFound,
            FetchRefusal::PositionOutOfRange,
        ]
        .into_iter()
        .find(|r| r.code() == code)
    }
}

/// The quorum as the answering controller sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuorumView {
    /// Its current epoch (Raft term).
    pub epoch: i32,
    /// The leader it knows of in that epoch.
    pub leader: Option<NodeId>,
    /// Whether it is that leader.
    pub is_leader: bool,
}

/// Whether a request naming `current_leader_epoch` may be served here
/// (Kafka's `validateLeaderOnlyRequest`).
pub fn check_leader(view: &QuorumView, current_leader_epoch: i32) -> Result<(), FetchRefusal> {
    if current_leader_epoch < view.epoch {
        Err(FetchRefusal::FencedLeaderEpoch)
    } else if current_leader_epoch > view.epoch {
        Err(FetchRefusal::UnknownLeaderEpoch)
    } else if !view.is_leader {
        Err(FetchRefusal::NotLeaderOrFollower)
    } else {
        Ok(())
    }
}

/// Whether a cluster id sent may fetch here (Kafka's `hasValidClusterId`:
/// a request without one is from before cluster ids were sent).
pub fn cluster_ok(ours: &str, theirs: Option<&str>) -> bool {
    theirs.is_none_or(|t| t == ours)
}

/// The fetch fields checked before anything else (Kafka answers
/// INVALID_REQUEST): a negative wait or offset, a negative last fetched
/// epoch, or one past the leader epoch the observer names.
pub fn check_fields(max_wait_ms: i32, fetch_offset: i64, last_fetched_epoch: i32, current_leader_epoch: i32) -> bool {
    max_wait_ms >= 0 && fetch_offset >= 0 && last_fetched_epoch >= 0 && last_fetched_epoch <= current_leader_epoch
}

/// The log as the decision needs it.
pub trait EpochLog {
    /// The first offset still held (after the purged entries).
    fn log_start(&self) -> i64;
    /// The offset after the last entry held.
    fn log_end(&self) -> i64;
    /// The epoch of the entry at `offset`, if held.
    fn epoch_at(&self, offset: i64) -> Option<i32>;
    /// The snapshot this controller has, if any (it keeps one).
    fn snapshot(&self) -> Option<SnapshotId>;
}

/// Where an observer's fetch stands against the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    /// Read from `fetch_offset`.
    Valid,
    /// Load this snapshot first (FetchSnapshot).
    Snapshot(SnapshotId),
    /// Its last fetched epoch ends at `end_offset` here (Kafka's diverging epoch).
    Diverging(SnapshotId),
}

/// Kafka's `validateOffsetAndEpoch`, with its shortcut for an empty
/// fetcher: a snapshot id when a snapshot exists and the fetch starts at 0.
pub fn validate(log: &impl EpochLog, fetch_offset: i64, last_fetched_epoch: i32) -> Position {
    let snapshot = log.snapshot();
    if let (0, Some(s)) = (fetch_offset, snapshot) {
        return Position::Snapshot(s);
    }
    let start = log.log_start();
    if start == 0 && fetch_offset == 0 {
        return Position::Valid;
    }
    if let Some(s) = snapshot {
        if fetch_offset < start
            || (fetch_offset == start && last_fetched_epoch != s.epoch)
            || last_fetched_epoch < s.epoch
        {
            return Position::Snapshot(s);
        }
    }
    // The common case first: the entry before the offset is of that epoch.
    let before = fetch_offset - 1;
    let held = before >= start && fetch_offset <= log.log_end();
    let at_snapshot = snapshot.is_some_and(|s| s.end_offset == fetch_offset && s.epoch == last_fetched_epoch);
    if (held && log.epoch_at(before) == Some(last_fetched_epoch)) || at_snapshot {
        return Position::Valid;
    }
    let end = end_offset_for_epoch(log, last_fetched_epoch);
    if end.epoch != last_fetched_epoch || end.end_offset < fetch_offset {
        Position::Diverging(end)
    } else {
        Position::Valid
    }
}

/// The largest epoch at most `epoch` and the offset after its last entry
/// (Kafka's `endOffsetForEpoch`); entries' epochs never decrease, so the
/// scan from the end stops at the first one at most `epoch`.
fn end_offset_for_epoch(log: &impl EpochLog, epoch: i32) -> SnapshotId {
    let start = log.log_start();
    let mut offset = log.log_end() - 1;
    while offset >= start {
        match log.epoch_at(offset) {
            Some(e) if e <= epoch => return SnapshotId { end_offset: offset + 1, epoch: e },
            _ => offset -= 1,
        }
    }
    match log.snapshot() {
        Some(s) if s.epoch <= epoch => s,
        _ => SnapshotId { end_offset: start, epoch: 0 },
    }
}

/// Where a FetchSnapshot chunk starts and ends in a snapshot of `size`
/// bytes: `[position, position + max_bytes)` cut at the end; a position
/// outside `0..size` is POSITION_OUT_OF_RANGE, as Kafka answers.
pub fn snapshot_chunk(size: usize, position: i64, max_bytes: i32) -> Result<std::ops::Range<usize>, FetchRefusal> {
    let start = usize::try_from(position).map_err(|_| FetchRefusal::PositionOutOfRange)?;
    if start >= size {
        return Err(FetchRefusal::PositionOutOfRange);
    }
    // At least one byte per chunk, so a fetcher always moves on.
    let want = usize::try_from(max_bytes).unwrap_or(0).max(1);
    Ok(start..size.min(start.saturating_add(want)))
}

#[cfg(test)]
#[path = "metadata_fetch_tests.rs"]
mod tests;
