//! An observer's apply, event by event: in order, below the high
//! watermark, stale proposals refused as the state machine refuses them,
//! gaps and mismatched entries refused, snapshots taken only forward.

use std::collections::{BTreeMap, BTreeSet};

use openraft::{CommittedLeaderId, EntryPayload, LogId, Membership};
use uuid::Uuid;

use super::*;
use crate::metadata_log::MetadataVersion;
use crate::quorum::state_machine::SnapshotData;
use crate::quorum::types::{ControllerNode, Proposal, SnapshotMeta, StoredMembership};
use crate::record::MetadataRecord;

fn id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn membership(voters: &[(u64, &str)]) -> Membership<u64, ControllerNode> {
    let ids: BTreeSet<u64> = voters.iter().map(|(i, _)| *i).collect();
    let nodes: BTreeMap<u64, ControllerNode> = voters.iter().map(|(i, a)| (*i, ControllerNode::new(*a))).collect();
    Membership::new(vec![ids], nodes)
}

fn topic(name: &str) -> Vec<MetadataRecord> {
    vec![MetadataRecord::Topic { name: name.into(), id: Uuid::new_v4() }]
}

fn entry(term: u64, index: u64, payload: EntryPayload<crate::quorum::types::TypeConfig>) -> Fetched {
    (index as i64, term as i32, Entry { log_id: id(term, index), payload })
}

/// A membership, a blank entry, then a proposal on the version they leave.
fn start() -> (ObserverState, MetadataVersion) {
    let mut s = ObserverState::default();
    assert_eq!(s.next_fetch(), (0, 0));
    let entries =
        vec![entry(1, 0, EntryPayload::Membership(membership(&[(1, "c1:9093")]))), entry(1, 1, EntryPayload::Blank)];
    assert_eq!(s.apply(entries, 2), Ok(2));
    let v = s.committed().version;
    assert_eq!(v.epoch, 1, "Raft entries move the epoch to their term");
    (s, v)
}

#[test]
fn entries_apply_in_order_up_to_the_high_watermark() {
    let (mut s, v) = start();
    assert_eq!(s.voters(), BTreeMap::from([(NodeId(1), "c1:9093".to_string())]));
    let p = entry(1, 2, EntryPayload::Normal(Proposal { based_on: v, records: topic("a") }));
    let q = entry(1, 3, EntryPayload::Blank);
    // Only what is below the high watermark is taken.
    assert_eq!(s.apply(vec![p.clone(), q.clone()], 3), Ok(1));
    assert!(s.committed().image.topic("a").is_some());
    assert_eq!(s.next_fetch(), (3, 1));
    // Already applied entries are skipped, the rest taken.
    assert_eq!(s.apply(vec![p, q], 4), Ok(1));
    assert_eq!(s.next_fetch(), (4, 1));
}

#[test]
fn a_stale_proposal_is_refused_as_on_every_controller() {
    let (mut s, v) = start();
    let first = entry(2, 2, EntryPayload::Normal(Proposal { based_on: v, records: topic("first") }));
    // Decided on the same version: it lost the race.
    let second = entry(2, 3, EntryPayload::Normal(Proposal { based_on: v, records: topic("second") }));
    assert_eq!(s.apply(vec![first, second], 4), Ok(2));
    let image = s.committed().image;
    assert!(image.topic("first").is_some() && image.topic("second").is_none());
    assert_eq!(s.next_fetch(), (4, 2), "the refused entry is still consumed");
}

#[test]
fn gaps_and_mismatched_entries_are_refused() {
    let (mut s, _) = start();
    assert_eq!(s.apply(vec![entry(1, 5, EntryPayload::Blank)], 9), Err(ApplyError::Gap { expected: 2, got: 5 }));
    let mut wrong = entry(1, 2, EntryPayload::Blank);
    wrong.1 = 3;
    assert_eq!(s.apply(vec![wrong], 9), Err(ApplyError::Mismatch { offset: 2, epoch: 3 }));
    assert_eq!(s.next_fetch(), (2, 1), "nothing taken");
}

#[test]
fn snapshots_are_taken_only_forward() {
    let (mut s, _) = start();
    let image_version = MetadataVersion { end_offset: 5, epoch: 3 };
    let snap = StoredSnapshot {
        meta: SnapshotMeta {
            last_log_id: Some(id(3, 9)),
            last_membership: StoredMembership::new(Some(id(2, 4)), membership(&[(1, "c1:9093"), (2, "c2:9093")])),
            snapshot_id: "3-1-9".into(),
        },
        data: SnapshotData { version: image_version, records: vec![] },
    };
    assert!(ObserverState::snapshot_matches(&snap, SnapshotId { end_offset: 10, epoch: 3 }));
    assert!(!ObserverState::snapshot_matches(&snap, SnapshotId { end_offset: 10, epoch: 2 }));
    assert!(s.load(&snap));
    assert_eq!(s.next_fetch(), (10, 3));
    assert_eq!(s.committed().version, image_version);
    assert_eq!(s.voters().len(), 2, "the snapshot's membership names the controllers");
    // An older snapshot (or the same) changes nothing.
    assert!(!s.load(&snap));
    let mut older = snap.clone();
    older.meta.last_log_id = Some(id(2, 4));
    assert!(!s.load(&older));
    assert_eq!(s.next_fetch(), (10, 3));
}
