//! Offsets committed inside a transaction (TxnOffsetCommit): they are
//! stored at once, as transactional records of the producer in
//! `__consumer_offsets`, but stay pending, invisible to OffsetFetch, until
//! the transaction's marker on that partition commits them (or an abort
//! drops them), as Kafka's `GroupMetadataManager` does. A restart replays
//! the same records and markers into the same state.

use kafka_protocol::error::ResponseError;

use super::coordinator::GroupCoordinator;
use super::state::{CommittedOffset, OffsetChange};
use super::types::CommitRequest;

impl GroupCoordinator {
    /// TxnOffsetCommit: one error (or none) per partition, in request
    /// order. `req` carries the group checks as OffsetCommit does (a
    /// generation of -1 commits from outside the group).
    pub fn txn_commit_offsets(
        &mut self,
        now: i64,
        producer_id: i64,
        producer_epoch: i16,
        req: &CommitRequest,
    ) -> Vec<Option<ResponseError>> {
        self.tick(now);
        if let Err(e) = self.validate_commit(now, req) {
            return vec![Some(e); req.partitions.len()];
        }
        let max_metadata = self.config.offset_metadata_max_bytes;
        req.partitions
            .iter()
            .map(|p| {
                let metadata = p.metadata.clone().unwrap_or_default();
                if metadata.len() > max_metadata {
                    return Some(ResponseError::OffsetMetadataTooLarge);
                }
                let change = OffsetChange {
                    group_id: req.group_id.clone(),
                    topic: p.topic.clone(),
                    partition: p.partition,
                    value: Some(CommittedOffset {
                        offset: p.offset,
                        leader_epoch: p.leader_epoch,
                        metadata,
                        commit_timestamp: now,
                    }),
                };
                self.txn_offset_changes.push((producer_id, producer_epoch, change.clone()));
                self.pending_txn_offsets.entry(producer_id).or_default().push(change);
                None
            })
            .collect()
    }

    /// Transactional offset records to persist: (producer id, epoch, change).
    pub fn take_txn_offset_changes(&mut self) -> Vec<(i64, i16, OffsetChange)> {
        std::mem::take(&mut self.txn_offset_changes)
    }

    /// Start-up replay of a transactional offset record.
    pub fn load_txn_offset(&mut self, producer_id: i64, change: OffsetChange) {
        self.pending_txn_offsets.entry(producer_id).or_default().push(change);
    }

    /// The producer's transaction ended: a commit makes its offsets the
    /// committed ones, an abort drops them. Returns how many were applied.
    pub fn complete_txn(&mut self, now: i64, producer_id: i64, commit: bool) -> usize {
        let Some(changes) = self.pending_txn_offsets.remove(&producer_id) else { return 0 };
        if !commit {
            return 0;
        }
        let n = changes.len();
        for change in changes {
            self.load_offset(now, change);
        }
        n
    }

    /// Whether a transaction has an offset pending for the partition
    /// (OffsetFetch with `require_stable` answers UNSTABLE_OFFSET_COMMIT).
    pub fn has_pending_txn_offset(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        self.pending_txn_offsets
            .values()
            .flatten()
            .any(|c| c.group_id == group_id && c.topic == topic && c.partition == partition)
    }
}
