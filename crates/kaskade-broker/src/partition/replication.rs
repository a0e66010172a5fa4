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
//!
//! Invariant: the leadership lock is never held while calling into the log
//! (as for the rest of the partition).

use bytes::Bytes;
use kaskade_types::{LeaderEpoch, NodeId, Offset};
use tokio::sync::watch;

use super::{Partition, PartitionError};

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

    /// Appends batches fetched from the leader (see `Log::append_replicated`);
    /// refused with NOT_LEADER_OR_FOLLOWER on the leader itself. Returns how
    /// many whole batches were appended. Blocking.
    pub fn append_as_follower(&self, records: &Bytes) -> Result<usize, PartitionError> {
        if self.is_leader() {
            return Err(PartitionError::NotLeader);
        }
        Ok(self.log.append_replicated(records)?)
    }

    /// The leader's HW as its Fetch answer says: this follower's HW becomes
    /// that, within what it holds.
    pub fn follow_leader_high_watermark(&self, leader_hw: Offset) {
        let own_end = Offset(self.log.log_end_offset());
        let moved = self.leadership.lock().follow_high_watermark(leader_hw, own_end);
        if let Some(hw) = moved {
            self.log.update_high_watermark(hw.get());
        }
    }

    /// Starts the log over, empty, at `offset` (this follower's log ends
    /// below the leader's log start); the HW becomes the new start, as the
    /// log's own does. Blocking.
    pub fn start_over_at(&self, offset: Offset) -> Result<(), PartitionError> {
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

    /// Cuts the log to `offset` (a divergent tail, on becoming a follower);
    /// the epoch cache, producer state and HW follow (the HW is at most the
    /// new log end, even when the cut failed halfway). Blocking.
    pub fn truncate_to(&self, offset: Offset) -> Result<(), PartitionError> {
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
        let batch = Bytes::from(kaskade_log::batch::build::filled(10, 10, 0, 1));
        assert_eq!(p.append_as_follower(&batch).expect("replicated"), 1);
        p.follow_leader_high_watermark(Offset(10));
        assert_eq!(marks(&p), (Offset(10), Offset(10), Offset(10)));
        // A divergent tail: the one batch goes, and the HW with it.
        p.truncate_to(Offset(4)).expect("truncate");
        assert_eq!(marks(&p), (Offset(0), Offset(0), Offset(0)));
        // Below the leader's log start: start over there, HW included.
        p.start_over_at(Offset(100)).expect("start over");
        assert_eq!(marks(&p), (Offset(100), Offset(100), Offset(100)));
        // Leading afterwards, the HW is decided from the new end.
        p.apply(&LeaderAndIsr { isr: vec![NodeId(1)], ..state(1, 2) }).expect("lead");
        assert_eq!(marks(&p), (Offset(100), Offset(100), Offset(100)));
        mgr.shutdown().expect("shutdown");
    }
}
