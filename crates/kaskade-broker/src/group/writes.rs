//! Appends the engine waits on before their effect is visible, as Kafka's
//! coordinator keeps uncommitted state out of reads (its timeline snapshots
//! read at the last committed offset; before 4.0, `pendingOffsetCommits`).
//!
//! Three requests open a write: OffsetCommit (the offsets become the
//! committed ones), TxnOffsetCommit (the offsets join the transaction's
//! pending ones, settled by its marker) and the leader's SyncGroup (the
//! group turns Stable and the members get their assignments); so do
//! deletions (OffsetDelete, DeleteGroups, a deleted topic, offset expiry:
//! the offsets, and the group, go once their tombstones are replicated,
//! `deletes`). Each is an
//! event pair, without I/O: [`GroupCoordinator::take_opened_writes`] hands
//! the driver the writes a step opened (their records are in the same
//! step's changes), and [`GroupCoordinator::write_resolved`] brings back
//! whether the append reached the ISR. A failed write leaves no trace in
//! memory: its offsets are dropped, its SyncGroup answers the mapped error
//! to every member waiting for it and the group rebalances (Kafka's
//! `resetAndPropagateAssignmentWithError`).
//!
//! Invariants: an offset is visible to OffsetFetch only once its write
//! resolved Ok; of two writes for the same partition, the later one wins
//! whatever order they resolve in (a resolved write drops the older
//! pending changes of its partitions); a write's changes that a deletion
//! or an unload dropped never come back when it resolves.

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::error::ResponseError;
use kaskade_types::{ProducerId, TopicPartition};

use super::coordinator::GroupCoordinator;
use super::records::partition_for;
use super::state::{Group, GroupState, Member, OffsetChange};
use super::types::{JoinResponse, Reply, SyncResponse, Token};

/// One append of the engine's records, numbered in the order the engine
/// opened them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WriteId(pub u64);

/// What a write settles when it resolves.
#[derive(Clone, Debug)]
pub(crate) enum WriteKind {
    /// OffsetCommit: the committed offsets once replicated.
    Offsets(Vec<OffsetChange>),
    /// TxnOffsetCommit: the producer's pending offsets once replicated.
    TxnOffsets { producer: ProducerId, changes: Vec<OffsetChange> },
    /// The leader's SyncGroup: the assignment of `generation`.
    Assignment { generation: i32 },
    /// A deletion: the offsets `tombstones` name go, with the pending
    /// transactional ones of `txn_producers` (those pending when it was
    /// written), and with `group` the group's metadata too (`deletes`).
    Delete { tombstones: Vec<OffsetChange>, txn_producers: Vec<ProducerId>, group: bool },
    /// A static member's JoinGroup (answered to `token`) that replaced
    /// `previous` by `new_member` in a Stable group (`static_join`).
    StaticJoin { token: Token, previous: Box<Member>, new_member: String, generation: i32 },
}

/// A write the engine waits on.
#[derive(Clone, Debug)]
pub(crate) struct PendingWrite {
    pub(crate) group_id: String,
    pub(crate) kind: WriteKind,
}

/// The writes of one coordinator, by id.
#[derive(Debug, Default)]
pub(crate) struct Writes {
    pending: BTreeMap<WriteId, PendingWrite>,
    /// Opened since the driver last took them.
    opened: Vec<WriteId>,
    next: u64,
}

impl Writes {
    pub(crate) fn open(&mut self, group_id: &str, kind: WriteKind) -> WriteId {
        self.next += 1;
        let id = WriteId(self.next);
        self.pending.insert(id, PendingWrite { group_id: group_id.to_string(), kind });
        self.opened.push(id);
        id
    }

    /// Every pending change of a partition (plain and transactional).
    fn changes(&self) -> impl Iterator<Item = (&WriteId, &OffsetChange)> {
        self.pending.iter().flat_map(|(id, w)| {
            let changes: &[OffsetChange] = match &w.kind {
                WriteKind::Offsets(c) | WriteKind::TxnOffsets { changes: c, .. } => c,
                WriteKind::Delete { tombstones, .. } => tombstones,
                WriteKind::Assignment { .. } | WriteKind::StaticJoin { .. } => &[],
            };
            changes.iter().map(move |c| (id, c))
        })
    }
}

pub(super) fn same_partition(a: &OffsetChange, b: &OffsetChange) -> bool {
    a.group_id == b.group_id && a.topic == b.topic && a.partition == b.partition
}

impl GroupCoordinator {
    /// The writes opened since the last call, with the group each belongs
    /// to (its `__consumer_offsets` partition holds the write's records).
    pub fn take_opened_writes(&mut self) -> Vec<(WriteId, String)> {
        let opened = std::mem::take(&mut self.writes.opened);
        opened.into_iter().filter_map(|id| self.writes.pending.get(&id).map(|w| (id, w.group_id.clone()))).collect()
    }

    /// The writes of `group_id` not resolved yet (OffsetFetch with
    /// `require_stable` waits for them, as Kafka's does).
    pub fn pending_writes_of(&self, group_id: &str) -> Vec<WriteId> {
        self.writes.pending.iter().filter(|(_, w)| w.group_id == group_id).map(|(id, _)| *id).collect()
    }

    /// Whether a transactional write not resolved yet carries an offset of
    /// the partition (Kafka's `hasPendingTransactionalOffsets` reads them
    /// too under `require_stable`).
    pub(super) fn has_pending_txn_write(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        self.writes.pending.values().any(|w| match &w.kind {
            WriteKind::TxnOffsets { changes, .. } => {
                changes.iter().any(|c| c.group_id == group_id && c.topic == topic && c.partition == partition)
            }
            _ => false,
        })
    }

    /// The append of write `id` resolved: Ok once the ISR holds it, else
    /// the error its requests answer (NOT_COORDINATOR,
    /// COORDINATOR_NOT_AVAILABLE). A write dropped meanwhile (unload) is
    /// ignored.
    pub fn write_resolved(&mut self, now: i64, id: WriteId, result: Result<(), ResponseError>) {
        let Some(PendingWrite { group_id, kind }) = self.writes.pending.remove(&id) else { return };
        self.settle(&group_id, now);
        match (kind, result) {
            (WriteKind::Offsets(changes), Ok(())) => {
                self.supersede(id, &changes);
                self.debug_assert_superseded(id, &changes);
                for change in changes {
                    self.load_offset(now, change);
                }
            }
            (WriteKind::Delete { tombstones, txn_producers, group }, Ok(())) => {
                self.supersede(id, &tombstones);
                self.debug_assert_superseded(id, &tombstones);
                self.deletion_stored(now, id, &group_id, (&tombstones, &txn_producers), group);
            }
            // Nothing was deleted: reads never saw the deletion.
            (WriteKind::Delete { .. }, Err(_)) => {}
            (WriteKind::StaticJoin { token, previous, new_member, generation }, result) => {
                self.static_join_stored(now, &group_id, token, *previous, (&new_member, generation), result)
            }
            (WriteKind::TxnOffsets { producer, changes }, Ok(())) => {
                self.pending_txn_offsets.entry(producer).or_default().extend(changes);
            }
            (WriteKind::Offsets(_) | WriteKind::TxnOffsets { .. }, Err(_)) => self.forget_if_unused(&group_id),
            (WriteKind::Assignment { generation }, result) => {
                self.assignment_stored(now, &group_id, generation, result)
            }
        }
        self.settle(&group_id, now);
    }

    /// Drops the changes of older pending writes (commits and deletions)
    /// that `changes` replace: whichever resolves last, the later write
    /// stays.
    fn supersede(&mut self, id: WriteId, changes: &[OffsetChange]) {
        for (_, w) in self.writes.pending.range_mut(..id) {
            if let WriteKind::Offsets(older) | WriteKind::Delete { tombstones: older, .. } = &mut w.kind {
                older.retain(|o| !changes.iter().any(|c| same_partition(o, c)));
            }
        }
    }

    fn debug_assert_superseded(&self, id: WriteId, changes: &[OffsetChange]) {
        debug_assert!(
            self.writes.pending.range(..id).all(|(_, w)| match &w.kind {
                WriteKind::Offsets(older) | WriteKind::Delete { tombstones: older, .. } =>
                    !older.iter().any(|o| changes.iter().any(|c| same_partition(o, c))),
                _ => true,
            }),
            "no older pending write of these partitions can still apply"
        );
    }

    /// The pending writes of `group_id`, oldest first (for deletions).
    pub(super) fn older_writes_mut(&mut self, id: WriteId) -> impl Iterator<Item = &mut PendingWrite> {
        self.writes.pending.range_mut(..id).map(|(_, w)| w)
    }

    /// Whether a deletion of the group itself is in flight: requests that
    /// change the group's offsets see it gone, as Kafka's latest state
    /// does (reads still see it until the tombstone is replicated).
    pub(super) fn group_deletion_pending(&self, group_id: &str) -> bool {
        self.writes
            .pending
            .values()
            .any(|w| w.group_id == group_id && matches!(w.kind, WriteKind::Delete { group: true, .. }))
    }

    /// The leader's assignment is stored (or not): Kafka's SyncGroup append
    /// callback, which acts only if the group still waits for that
    /// generation's assignment.
    fn assignment_stored(&mut self, now: i64, group_id: &str, generation: i32, result: Result<(), ResponseError>) {
        let Some(group) = self.groups.get_mut(group_id) else { return };
        if group.state != GroupState::CompletingRebalance || group.generation_id != generation {
            return;
        }
        match result {
            Ok(()) => {
                group.transition(GroupState::Stable, now);
                self.propagate_assignments(now, group_id);
            }
            Err(error) => {
                let mut failed = Vec::new();
                for member in group.members.values_mut() {
                    member.assignment = bytes::Bytes::new();
                    if let Some(t) = member.sync_token.take() {
                        member.session_deadline = now + i64::from(member.session_timeout_ms);
                        failed.push(t);
                    }
                }
                for t in failed {
                    self.complete(t, Reply::Sync(SyncResponse::error(error)));
                }
                self.prepare_rebalance(now, group_id);
            }
        }
    }

    /// A group that only a failed commit created (no protocol, no members,
    /// no offsets, nothing pending) goes, as Kafka's revert removes it.
    fn forget_if_unused(&mut self, group_id: &str) {
        let unused = |g: &Group| {
            g.state == GroupState::Empty
                && g.protocol_type.is_none()
                && g.members.is_empty()
                && g.pending_members.is_empty()
                && g.offsets.is_empty()
        };
        let pending = !self.pending_writes_of(group_id).is_empty()
            || self.pending_txn_offsets.values().flatten().any(|c| c.group_id == group_id);
        if !pending && self.groups.get(group_id).is_some_and(unused) {
            self.groups.remove(group_id);
            self.reindex(group_id);
        }
    }

    /// A transaction's marker on `partition` is durable: its writes of
    /// groups stored there not resolved yet are settled with it (the marker
    /// follows their records in the log, so it commits them too).
    pub(super) fn settle_txn_writes(
        &mut self,
        producer_id: ProducerId,
        partition: i32,
        partitions: i32,
    ) -> Vec<OffsetChange> {
        let mut settled = Vec::new();
        for w in self.writes.pending.values_mut() {
            if let WriteKind::TxnOffsets { producer, changes } = &mut w.kind {
                if *producer == producer_id && partition_for(&w.group_id, partitions) == partition {
                    settled.append(changes);
                }
            }
        }
        settled
    }

    /// Forgets the writes of the groups stored on `partition` (unloaded):
    /// their resolutions are ignored; a JoinGroup waiting for one answers
    /// NOT_COORDINATOR, as the group's other parked requests do.
    pub(super) fn drop_writes_of_partition(&mut self, partition: i32, partitions: i32) {
        let mut dropped = Vec::new();
        self.writes.pending.retain(|_, w| {
            let keep = partition_for(&w.group_id, partitions) != partition;
            if let (false, WriteKind::StaticJoin { token, new_member, .. }) = (keep, &w.kind) {
                dropped.push((*token, new_member.clone()));
            }
            keep
        });
        for (token, member_id) in dropped {
            self.complete(token, Reply::Join(JoinResponse::error(ResponseError::NotCoordinator, &member_id)));
        }
    }

    /// The partitions whose offset a write or an open transaction is about
    /// to set, and the groups with anything pending: offset expiry leaves
    /// both alone, as Kafka's does.
    pub(super) fn offsets_in_flight(&self) -> (Vec<(String, TopicPartition)>, HashSet<String>) {
        let txn = self.pending_txn_offsets.values().flatten();
        let partitions: Vec<(String, TopicPartition)> = self
            .writes
            .changes()
            .map(|(_, c)| c)
            .chain(txn)
            .map(|c| (c.group_id.clone(), TopicPartition::new(c.topic.as_str(), c.partition)))
            .collect();
        let mut groups: HashSet<String> = partitions.iter().map(|(g, _)| g.clone()).collect();
        groups.extend(self.writes.pending.values().map(|w| w.group_id.clone()));
        (partitions, groups)
    }
}
