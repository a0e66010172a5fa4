//! Deletions as writes (`writes`): OffsetDelete, DeleteGroups, a deleted
//! topic and offset expiry write their tombstones at once and take effect
//! only once the ISR holds them, as Kafka's coordinator answers a deletion
//! at commit and reverts its in-memory state when the write fails.
//!
//! [`GroupCoordinator::open_deletion`] queues the tombstones (offsets, and
//! the group's metadata record when the group goes too) and opens a
//! [`WriteKind::Delete`]; until it resolves, reads (OffsetFetch,
//! DescribeGroups, ListGroups) see the offsets and the group as before. On
//! Ok, [`GroupCoordinator::deletion_stored`] applies what a replay of the
//! same log would: the offsets the tombstones name go (unless a later
//! commit of the partition already resolved: the later write wins, as in
//! `writes`), older writes of those partitions still in flight and the
//! transactional offsets pending when the deletion was written are dropped
//! (their records precede the tombstones), and a deleted group
//! goes if it is still empty (a JoinGroup after the deletion wrote its
//! record after the tombstone, so the group lives on, as on a replay). A
//! failed deletion changes nothing.

use std::collections::BTreeSet;

use kaskade_types::{ProducerId, TopicPartition};

use super::coordinator::GroupCoordinator;
use super::state::{Group, GroupState, OffsetChange};
use super::writes::{same_partition, WriteId, WriteKind};

impl GroupCoordinator {
    /// Every partition `group_id` has an offset of, committed, in flight
    /// or pending in a transaction: what a deletion writes tombstones for.
    pub(super) fn known_partitions(&self, group_id: &str) -> BTreeSet<TopicPartition> {
        let mut known: BTreeSet<TopicPartition> =
            self.groups.get(group_id).map(|g| g.offsets.keys().cloned().collect()).unwrap_or_default();
        let (in_flight, _) = self.offsets_in_flight();
        known.extend(in_flight.into_iter().filter(|(g, _)| g == group_id).map(|(_, tp)| tp));
        known
    }

    /// Writes the tombstones of `partitions` of `group_id` (and of the
    /// group's metadata with `group`) and opens their write; nothing
    /// changes in memory before it resolves. `None` when there is nothing
    /// to write.
    pub(super) fn open_deletion(
        &mut self,
        group_id: &str,
        partitions: impl IntoIterator<Item = TopicPartition>,
        group: bool,
    ) -> Option<WriteId> {
        let tombstones: Vec<OffsetChange> = partitions
            .into_iter()
            .map(|tp| OffsetChange {
                group_id: group_id.to_string(),
                topic: tp.topic.to_string(),
                partition: tp.partition,
                value: None,
            })
            .collect();
        if tombstones.is_empty() && !group {
            return None;
        }
        self.offset_changes.extend(tombstones.iter().cloned());
        if group {
            self.group_tombstones.push(group_id.to_string());
        }
        // Only the transactional offsets pending now precede the tombstones
        // in the log; one written after them survives a replay.
        let mut txn_producers: Vec<ProducerId> = self
            .pending_txn_offsets
            .iter()
            .filter(|(_, changes)| changes.iter().any(|c| tombstones.iter().any(|t| same_partition(t, c))))
            .map(|(p, _)| *p)
            .collect();
        txn_producers.sort();
        let kind = WriteKind::Delete { tombstones, txn_producers, group };
        Some(self.writes.open(group_id, kind))
    }

    /// Deletion `id` of `group_id` is replicated: applies it as a replay of
    /// its tombstones would.
    pub(super) fn deletion_stored(
        &mut self,
        now: i64,
        id: WriteId,
        group_id: &str,
        (tombstones, txn_producers): (&[OffsetChange], &[ProducerId]),
        group: bool,
    ) {
        let deleted = |c: &OffsetChange| tombstones.iter().any(|t| same_partition(t, c));
        // Transactional offsets written before the tombstones: a replay drops
        // them at the tombstone, so they never commit.
        for w in self.older_writes_mut(id) {
            if let WriteKind::TxnOffsets { changes, .. } = &mut w.kind {
                changes.retain(|c| !deleted(c));
            }
        }
        for producer in txn_producers {
            if let Some(changes) = self.pending_txn_offsets.get_mut(producer) {
                changes.retain(|c| !deleted(c));
            }
        }
        self.pending_txn_offsets.retain(|_, changes| !changes.is_empty());
        if let Some(g) = self.groups.get_mut(group_id) {
            for t in tombstones {
                g.offsets.remove(&TopicPartition::new(t.topic.as_str(), t.partition));
            }
        }
        if group {
            self.group_tombstone_stored(now, id, group_id);
        }
        self.reindex(group_id);
    }

    /// The group's metadata tombstone is replicated. A group that members
    /// joined meanwhile stays (their record follows the tombstone); an
    /// empty one goes, or starts afresh to hold offsets committed after
    /// the deletion, as a replay's `load_group(None)` leaves it.
    fn group_tombstone_stored(&mut self, now: i64, id: WriteId, group_id: &str) {
        let Some(g) = self.groups.get(group_id) else { return };
        if g.state != GroupState::Empty || !g.members.is_empty() || !g.pending_members.is_empty() {
            return;
        }
        // Writes older than the tombstone precede it in the log: only a
        // later one keeps the group.
        let pending = self.pending_writes_of(group_id).iter().any(|w| *w > id)
            || self.pending_txn_offsets.values().flatten().any(|c| c.group_id == group_id);
        if g.offsets.is_empty() && !pending {
            self.groups.remove(group_id);
        } else {
            let mut fresh = Group::new(group_id.to_string(), now);
            fresh.offsets = self.groups.remove(group_id).map(|g| g.offsets).unwrap_or_default();
            self.groups.insert(group_id.to_string(), fresh);
        }
    }
}
