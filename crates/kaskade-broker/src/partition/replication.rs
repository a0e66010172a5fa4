//! The partition's two sides of replication (Kafka's `Partition` follower
//! state and `appendRecordsToFollowerOrFutureReplica`).
//!
//! On the leader, a follower's Fetch reports where the follower is: its
//! fetch offset is its position (in durable mode the follower fetches only
//! from its durable end, so the position is what it has on disk), which
//! goes to the HW rule (`Leadership::update_position`) and may move the HW
//! that acks=all waits for. A follower reads up to the log end
//! ([`super::Isolation::LogEnd`]) and its long poll parks on the log end
//! ([`Partition::subscribe_log_end`]), not on the HW.
//!
//! On a follower, batches fetched from the leader are appended as they are
//! (`Log::append_replicated`), the leader's HW is followed within what the
//! follower holds, and a divergent tail is cut with [`Partition::truncate_to`].
//! Each of these names the leadership it was decided for ([`Following`]:
//! the leader fetched from, the epoch fetched at) and is refused, doing
//! nothing, once the replica has applied another one: an answer from a
//! deposed leader (a fetch or OffsetForLeaderEpoch still in flight when the
//! image moved on) never touches the log.
//!
//! Invariants: the leadership lock is never held while calling into the
//! log (as for the rest of the partition); a follower action's check and
//! its effect on the log happen under one shared `transition` guard, so no
//! partition record is applied in between.

use bytes::Bytes;
use kaskade_types::{LeaderEpoch, NodeId, Offset};
use tokio::sync::watch;

use super::{Following, Partition, PartitionError};

impl Partition {
    /// The leader the image names (`None`: no leader).
    pub fn leader(&self) -> Option<NodeId> {
        self.leadership.lock().leader()
    }

    /// This node leads the partition.
    pub fn is_leader(&self) -> bool {
        self.leadership.lock().is_leader()
    }

    /// The in-sync followers as this leader knows them (KIP-392's replica
    /// views). Empty when this node does not lead.
    pub fn in_sync_followers(&self) -> Vec<super::leadership::FollowerView> {
        self.leadership.lock().in_sync_followers()
    }

    /// Whether `node` is in the ISR this replica knows (replication
    /// throttles spare ISR members).
    pub fn in_sync(&self, node: NodeId) -> bool {
        self.leadership.lock().isr().any(|n| n == node)
    }

    /// A follower's Fetch at `offset` (its position) reached this leader.
    /// Returns `false` when `replica` is not one of the partition's other
    /// replicas: Kafka then records nothing and answers no records. An
    /// offset past the log end is not a position (the read answers
    /// OFFSET_OUT_OF_RANGE).
    pub fn record_follower_fetch(&self, replica: NodeId, offset: Offset) -> bool {
        // Read before the leadership lock: the log is never called under it.
        // The published log end (what the log clamps the HW to), which may
        // trail the end a read already returned: a position past it counts
        // as the published end, or the HW decided here would pass the
        // clamp and stay ahead of the log's (the fetch records again when
        // the end moves).
        let published = self.log.positions().log_end;
        let beyond = Offset(self.log.log_end_offset());
        let moved = {
            let mut l = self.leadership.lock();
            if !l.is_follower_replica(replica) {
                return false;
            }
            if offset > beyond {
                return true;
            }
            l.follower_fetched(replica, offset.min(published), published, now_ms())
        };
        if let Some(hw) = moved {
            self.log.update_high_watermark(hw.get());
        }
        true
    }

    /// The ISR this leader wants now if it differs from the image's (see
    /// `Leadership::isr_proposal`), with the leader epoch it was decided at.
    pub fn isr_proposal(&self, lag_max_ms: i64) -> Option<(LeaderEpoch, Vec<NodeId>)> {
        let mut l = self.leadership.lock();
        let epoch = l.epoch();
        l.isr_proposal(now_ms(), lag_max_ms).map(|isr| (epoch, isr))
    }

    /// Notified whenever the log end moves: what a follower's long poll
    /// parks on (it replicates what is not yet committed).
    pub fn subscribe_log_end(&self) -> watch::Receiver<i64> {
        self.log.subscribe_end()
    }

    /// Appends batches fetched from `of.leader` (see `Log::append_replicated`);
    /// refused (see `Leadership::check_following`) once this replica
    /// follows another leadership, or leads. Returns how many whole batches
    /// were appended. Blocking.
    pub fn append_as_follower(&self, of: Following, records: &Bytes) -> Result<usize, PartitionError> {
        let _leadership = self.transition.read();
        self.leadership.lock().check_following(of)?;
        Ok(self.log.append_replicated(records)?)
    }

    /// The leader's HW as its Fetch answer says: this follower's HW becomes
    /// that, within what it holds. Refused as `append_as_follower` is: a
    /// deposed leader's HW may be far behind (or, for a new follower, past
    /// a tail it has yet to cut).
    pub fn follow_leader_high_watermark(&self, of: Following, leader_hw: Offset) -> Result<(), PartitionError> {
        let _leadership = self.transition.read();
        let own_end = Offset(self.log.log_end_offset());
        let moved = {
            let mut l = self.leadership.lock();
            l.check_following(of)?;
            l.follow_high_watermark(leader_hw, own_end)
        };
        if let Some(hw) = moved {
            self.log.update_high_watermark(hw.get());
        }
        Ok(())
    }

    /// Starts the log over, empty, at `offset` (this follower's log ends
    /// below the leader's log start); the HW becomes the new start, as the
    /// log's own does. Refused as `append_as_follower` is. Blocking.
    pub fn start_over_at(&self, of: Following, offset: Offset) -> Result<(), PartitionError> {
        let _leadership = self.transition.read();
        self.leadership.lock().check_following(of)?;
        let done = self.log.truncate_fully_and_start_at(offset.get());
        let end = Offset(self.log.log_end_offset());
        let mut l = self.leadership.lock();
        match done {
            Ok(()) => l.started_over(end),
            // It may have failed after cutting the log: the HW still must
            // not pass whatever end the log has now.
            Err(_) => l.truncated(end),
        };
        Ok(done?)
    }

    /// Cuts the log to `offset` (a divergent tail, on becoming a follower
    /// of `of.leader`); the epoch cache, producer state and HW follow (the
    /// HW is at most the new log end, even when the cut failed halfway).
    /// Refused as `append_as_follower` is: a cut decided from a deposed
    /// leader's answer could remove records the new leader acknowledged.
    /// Blocking.
    pub fn truncate_to(&self, of: Following, offset: Offset) -> Result<(), PartitionError> {
        let _leadership = self.transition.read();
        self.leadership.lock().check_following(of)?;
        let done = self.log.truncate_to(offset.get());
        self.leadership.lock().truncated(Offset(self.log.log_end_offset()));
        Ok(done?)
    }
}

/// Milliseconds on a monotonic clock (since the first call): what the
/// followers' caught-up times are measured on.
fn now_ms() -> i64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_millis() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaskade_log::{LogConfig, LogManager, ManagerOptions, TopicPartition};

    use crate::partition::LeaderAndIsr;

    fn state(leader: i32, epoch: i32) -> LeaderAndIsr {
        LeaderAndIsr {
            leader: Some(NodeId(leader)),
            epoch: LeaderEpoch(epoch),
            isr: vec![NodeId(1), NodeId(2)],
            replicas: vec![NodeId(1), NodeId(2)],
        }
    }

    /// Both HWs (the leadership's and the log's) and the log end.
    fn marks(p: &Partition) -> (Offset, Offset, Offset) {
        (p.leadership.lock().high_watermark(), p.high_watermark(), Offset(p.log.log_end_offset()))
    }

    #[test]
    fn truncations_keep_both_hws_within_the_log_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mgr, _) = LogManager::open(dir.path(), ManagerOptions::default(), |_| LogConfig::default()).expect("open");
        let log = mgr.get_or_create(&TopicPartition::new("t", 0), LogConfig::default()).expect("log");
        let p = Partition::new(NodeId(1), log, &state(2, 1)).expect("follower");
        let of = Following { leader: NodeId(2), epoch: LeaderEpoch(1) };
        let batch = Bytes::from(kaskade_log::batch::build::filled(10, 10, 0, 1));
        assert_eq!(p.append_as_follower(of, &batch).expect("replicated"), 1);
        p.follow_leader_high_watermark(of, Offset(10)).expect("follow");
        assert_eq!(marks(&p), (Offset(10), Offset(10), Offset(10)));
        // A divergent tail: the one batch goes, and the HW with it.
        p.truncate_to(of, Offset(4)).expect("truncate");
        assert_eq!(marks(&p), (Offset(0), Offset(0), Offset(0)));
        // Below the leader's log start: start over there, HW included.
        p.start_over_at(of, Offset(100)).expect("start over");
        assert_eq!(marks(&p), (Offset(100), Offset(100), Offset(100)));
        // Leading afterwards, the HW is decided from the new end.
        p.apply(&LeaderAndIsr { isr: vec![NodeId(1)], ..state(1, 2) }).expect("lead");
        assert_eq!(marks(&p), (Offset(100), Offset(100), Offset(100)));
        mgr.shutdown().expect("shutdown");
    }

    #[test]
    fn nothing_a_deposed_leader_answered_touches_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mgr, _) = LogManager::open(dir.path(), ManagerOptions::default(), |_| LogConfig::default()).expect("open");
        let log = mgr.get_or_create(&TopicPartition::new("t", 0), LogConfig::default()).expect("log");
        let p = Partition::new(NodeId(1), log, &state(2, 1)).expect("follower of 2");
        let old = Following { leader: NodeId(2), epoch: LeaderEpoch(1) };
        let batch = Bytes::from(kaskade_log::batch::build::filled(10, 10, 0, 1));
        p.append_as_follower(old, &batch).expect("replicated");
        p.follow_leader_high_watermark(old, Offset(10)).expect("follow");
        // Node 3 is elected at epoch 2 while a fetch from node 2 is in flight.
        p.apply(&LeaderAndIsr { isr: vec![NodeId(3), NodeId(1)], ..state(3, 2) }).expect("follow 3");
        fn stale<T>(r: Result<T, PartitionError>) -> bool {
            matches!(r, Err(PartitionError::FencedLeaderEpoch { .. }))
        }
        // Its out-of-range answer would cut to node 2's (old) HW; its
        // OffsetForLeaderEpoch answer to where node 2's log ends.
        assert!(stale(p.truncate_to(old, Offset(3))), "no cut decided by the deposed leader");
        assert!(stale(p.start_over_at(old, Offset(50))), "no restart at the deposed leader's start");
        assert!(stale(p.append_as_follower(old, &batch)), "no batches from the deposed leader");
        assert!(stale(p.follow_leader_high_watermark(old, Offset(20))));
        assert_eq!(marks(&p), (Offset(10), Offset(10), Offset(10)), "the log is untouched");
        // The new leader's answers are taken.
        let new = Following { leader: NodeId(3), epoch: LeaderEpoch(2) };
        p.truncate_to(new, Offset(7)).expect("the new leader's cut");
        assert_eq!(marks(&p), (Offset(0), Offset(0), Offset(0)), "the whole batch goes with its tail");
        // Once this node leads, no follower action at all.
        p.apply(&LeaderAndIsr { isr: vec![NodeId(1)], ..state(1, 3) }).expect("lead");
        let own = p.append_as_follower(Following { leader: NodeId(1), epoch: LeaderEpoch(3) }, &batch);
        assert!(matches!(own, Err(PartitionError::NotLeader)));
        assert!(stale(p.append_as_follower(new, &batch)));
        mgr.shutdown().expect("shutdown");
    }
}
