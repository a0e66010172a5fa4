//! Offsets committed inside a transaction (TxnOffsetCommit): they are
//! stored at once, as transactional records of the producer in
//! `__consumer_offsets`, but stay pending, invisible to OffsetFetch, until
//! the transaction's marker on that partition commits them (or an abort
//! drops them), as Kafka's `GroupMetadataManager` does. A restart replays
//! the same records and markers into the same state.

use kafka_protocol::error::ResponseError;
use kaskade_types::{ProducerId, ProducerIdAndEpoch};

use super::coordinator::GroupCoordinator;
use super::offsets::offset_change;
use super::records::partition_for;
use super::state::OffsetChange;
use super::types::CommitRequest;
use super::writes::WriteKind;

/// An offset committed in a transaction, to be written as a
/// transactional record of its producer.
#[derive(Clone, Debug, PartialEq)]
pub struct TxnOffsetChange {
    pub producer: ProducerIdAndEpoch,
    pub change: OffsetChange,
}

impl GroupCoordinator {
    /// TxnOffsetCommit: one error (or none) per partition, in request
    /// order. `req` carries the group checks as OffsetCommit does (a
    /// generation of -1 commits from outside the group).
    pub fn txn_commit_offsets(
        &mut self,
        now: i64,
        producer: ProducerIdAndEpoch,
        req: &CommitRequest,
    ) -> Vec<Option<ResponseError>> {
        self.settle(&req.group_id, now);
        let validated = self.validate_commit(now, req, true);
        // Validation may have created the group (a commit from outside it).
        self.reindex(&req.group_id);
        if let Err(e) = validated {
            return vec![Some(e); req.partitions.len()];
        }
        let max_metadata = self.config.offset_metadata_max_bytes;
        let mut written = Vec::new();
        let errors = req
            .partitions
            .iter()
            .map(|p| match offset_change(&req.group_id, p, now, max_metadata) {
                Err(e) => Some(e),
                Ok(change) => {
                    self.txn_offset_changes.push(TxnOffsetChange { producer, change: change.clone() });
                    written.push(change);
                    None
                }
            })
            .collect();
        // Pending in the transaction once replicated (`writes`).
        if !written.is_empty() {
            self.writes.open(&req.group_id, WriteKind::TxnOffsets { producer: producer.id, changes: written });
        }
        errors
    }

    /// Transactional offset records to persist.
    pub fn take_txn_offset_changes(&mut self) -> Vec<TxnOffsetChange> {
        std::mem::take(&mut self.txn_offset_changes)
    }

    /// Start-up replay of a transactional offset record.
    pub fn load_txn_offset(&mut self, producer_id: ProducerId, change: OffsetChange) {
        self.pending_txn_offsets.entry(producer_id).or_default().push(change);
    }

    /// The producer's transaction ended on `__consumer_offsets` partition
    /// `partition` (of `partitions`): a commit makes its offsets of the
    /// groups stored there the committed ones, an abort drops them. Offsets
    /// of groups on other partitions wait for their own marker. Returns how
    /// many were applied.
    pub fn complete_txn(
        &mut self,
        now: i64,
        producer_id: ProducerId,
        commit: bool,
        partition: i32,
        partitions: i32,
    ) -> usize {
        // Its records not yet known replicated precede the marker in the
        // log: the marker settles them too.
        let in_flight = self.settle_txn_writes(producer_id, partition, partitions);
        let pending = self.pending_txn_offsets.remove(&producer_id).unwrap_or_default();
        let (mine, others): (Vec<OffsetChange>, Vec<OffsetChange>) =
            pending.into_iter().partition(|c| partition_for(&c.group_id, partitions) == partition);
        if !others.is_empty() {
            self.pending_txn_offsets.insert(producer_id, others);
        }
        if !commit {
            return 0;
        }
        let n = mine.len() + in_flight.len();
        for change in mine.into_iter().chain(in_flight) {
            self.load_offset(now, change);
        }
        n
    }

    /// Start-up replay of a plain tombstone: a pending offset of the same
    /// partition was dropped with it.
    pub(super) fn forget_pending_txn_offset(&mut self, group_id: &str, topic: &str, partition: i32) {
        for changes in self.pending_txn_offsets.values_mut() {
            changes.retain(|c| !(c.group_id == group_id && c.topic == topic && c.partition == partition));
        }
        self.pending_txn_offsets.retain(|_, changes| !changes.is_empty());
    }

    /// Whether a transaction has an offset pending for the partition
    /// (OffsetFetch with `require_stable` answers UNSTABLE_OFFSET_COMMIT).
    pub fn has_pending_txn_offset(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        self.pending_txn_offsets
            .values()
            .flatten()
            .any(|c| c.group_id == group_id && c.topic == topic && c.partition == partition)
            || self.has_pending_txn_write(group_id, topic, partition)
    }
}
