//! Deletions as writes (`deletes`), one event at a time: OffsetDelete,
//! DeleteGroups, a deleted topic and offset expiry show nothing before
//! their tombstones resolve, take effect on Ok, change nothing on failure,
//! and order with commits of the same partition as commits do.

use kafka_protocol::error::ResponseError as E;
use kaskade_types::{ProducerEpoch, ProducerId, ProducerIdAndEpoch, TopicPartition};

use super::write_tests::{commit_write, engine, fetched};
use super::*;

fn t0() -> TopicPartition {
    TopicPartition::new("t", 0)
}

/// The one write the last step opened.
fn opened(c: &mut GroupCoordinator) -> WriteId {
    let opened = c.take_opened_writes();
    assert_eq!(opened.len(), 1, "{opened:?}");
    opened[0].0
}

/// A group holding offset `offset` of t-0, replicated.
fn committed(c: &mut GroupCoordinator, group: &str, offset: i64) {
    let w = commit_write(c, group, offset);
    c.write_resolved(0, w, Ok(()));
    c.take_offset_changes();
}

#[test]
fn a_deleted_offset_goes_only_once_its_tombstone_is_replicated() {
    let mut c = engine();
    committed(&mut c, "g", 5);
    assert_eq!(c.delete_offsets(0, "g", &[t0()]), Ok(vec![None]));
    let tombstones = c.take_offset_changes();
    assert_eq!(tombstones.len(), 1);
    assert!(tombstones[0].value.is_none(), "the tombstone is written at once");
    let d = opened(&mut c);
    assert_eq!(fetched(&mut c, "g"), Some(5), "pending: OffsetFetch still shows it");
    c.write_resolved(0, d, Err(E::CoordinatorNotAvailable));
    assert_eq!(fetched(&mut c, "g"), Some(5), "a failed deletion deletes nothing");
    assert_eq!(c.delete_offsets(0, "g", &[t0()]), Ok(vec![None]));
    let d = opened(&mut c);
    c.write_resolved(0, d, Ok(()));
    assert_eq!(fetched(&mut c, "g"), None);
    assert!(c.group("g").is_some(), "OffsetDelete leaves the group");
    // Nothing left to delete: no write.
    assert_eq!(c.delete_offsets(0, "g", &[t0()]), Ok(vec![None]));
    assert!(c.take_opened_writes().is_empty());
}

#[test]
fn a_deleted_group_goes_only_once_its_tombstones_are_replicated() {
    let mut c = engine();
    committed(&mut c, "g", 5);
    assert_eq!(c.delete_groups(0, &["g".to_string()]), vec![None]);
    assert_eq!(c.take_group_tombstones(), vec!["g".to_string()], "the group's tombstone is written");
    assert_eq!(c.take_offset_changes().len(), 1, "and its offsets'");
    let d = opened(&mut c);
    assert_eq!(fetched(&mut c, "g"), Some(5));
    assert_eq!(c.list_groups(0, &[]).len(), 1, "ListGroups still lists it");
    // Writes see it gone already (Kafka's latest state).
    assert_eq!(c.delete_groups(0, &["g".to_string()]), vec![Some(E::GroupIdNotFound)]);
    assert_eq!(c.delete_offsets(0, "g", &[t0()]), Err(E::GroupIdNotFound));
    c.write_resolved(0, d, Err(E::NotCoordinator));
    assert_eq!(fetched(&mut c, "g"), Some(5), "a failed deletion deletes nothing");
    assert!(c.group("g").is_some());
    assert_eq!(c.delete_groups(0, &["g".to_string()]), vec![None]);
    let d = opened(&mut c);
    c.write_resolved(0, d, Ok(()));
    assert!(c.group("g").is_none());
    assert_eq!(fetched(&mut c, "g"), None);
}

#[test]
fn a_commit_after_a_deletion_wins_whatever_order_they_resolve_in() {
    for deletion_first in [true, false] {
        let mut c = engine();
        committed(&mut c, "g", 1);
        c.delete_offsets(0, "g", &[t0()]).expect("deleted");
        let d = opened(&mut c);
        let w = commit_write(&mut c, "g", 2);
        let order = if deletion_first { [d, w] } else { [w, d] };
        for id in order {
            c.write_resolved(0, id, Ok(()));
        }
        assert_eq!(fetched(&mut c, "g"), Some(2), "deletion first: {deletion_first}");
    }
    // A commit before the deletion loses, even resolving after it.
    let mut c = engine();
    let w = commit_write(&mut c, "g", 3);
    assert_eq!(c.delete_groups(0, &["g".to_string()]), vec![None]);
    let tombstones = c.take_offset_changes();
    assert!(tombstones.iter().any(|t| t.topic == "t" && t.value.is_none()), "the commit in flight is tombstoned too");
    let d = opened(&mut c);
    c.write_resolved(0, d, Ok(()));
    c.write_resolved(0, w, Ok(()));
    assert_eq!(fetched(&mut c, "g"), None, "the deleted offset does not come back");
    assert!(c.group("g").is_none(), "nor the deleted group");
}

#[test]
fn a_group_joined_while_its_deletion_is_in_flight_stays() {
    let mut c = engine();
    committed(&mut c, "g", 1);
    c.delete_groups(0, &["g".to_string()]);
    let d = opened(&mut c);
    let join = JoinRequest {
        group_id: "g".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![Protocol { name: "range".into(), metadata: bytes::Bytes::from_static(b"m") }],
        ..JoinRequest::default()
    };
    c.join(0, 1, join);
    c.tick(0);
    assert!(c.group("g").is_some_and(|g| g.members().count() == 1));
    c.write_resolved(0, d, Ok(()));
    assert!(c.group("g").is_some_and(|g| g.members().count() == 1), "its record follows the tombstone");
    assert_eq!(fetched(&mut c, "g"), None, "the offsets went");
}

#[test]
fn expired_offsets_go_only_once_their_tombstones_are_replicated() {
    let mut c = engine();
    committed(&mut c, "g", 5);
    assert_eq!(c.expire_offsets(1_000, 0), vec!["g".to_string()]);
    assert_eq!(c.take_group_tombstones(), vec!["g".to_string()]);
    let d = opened(&mut c);
    assert_eq!(fetched(&mut c, "g"), Some(5), "pending");
    assert!(c.expire_offsets(1_000, 0).is_empty(), "not expired twice while in flight");
    assert!(c.take_opened_writes().is_empty());
    c.write_resolved(0, d, Err(E::CoordinatorNotAvailable));
    assert_eq!(fetched(&mut c, "g"), Some(5), "a failed expiry deletes nothing");
    assert_eq!(c.expire_offsets(1_000, 0), vec!["g".to_string()]);
    let d = opened(&mut c);
    c.write_resolved(0, d, Ok(()));
    assert!(c.group("g").is_none());
}

#[test]
fn a_deleted_topics_offsets_go_only_once_replicated() {
    let mut c = engine();
    committed(&mut c, "g", 5);
    let p = ProducerIdAndEpoch::new(ProducerId(7), ProducerEpoch(0));
    assert_eq!(c.txn_commit_offsets(0, p, &CommitRequest::of_t0("h", 9)), vec![None]);
    let w = opened(&mut c);
    c.write_resolved(0, w, Ok(()));
    assert_eq!(c.remove_topic_offsets(0, "t"), 2);
    let writes = c.take_opened_writes();
    assert_eq!(writes.len(), 2, "one per group");
    assert_eq!(fetched(&mut c, "g"), Some(5));
    assert!(c.has_pending_txn_offset("h", "t", 0));
    for (id, _) in &writes {
        c.write_resolved(0, *id, Err(E::NotCoordinator));
    }
    assert_eq!(fetched(&mut c, "g"), Some(5));
    assert!(c.has_pending_txn_offset("h", "t", 0), "a failed deletion drops nothing");
    assert_eq!(c.remove_topic_offsets(0, "t"), 2);
    for (id, _) in c.take_opened_writes() {
        c.write_resolved(0, id, Ok(()));
    }
    assert!(c.group("g").is_none(), "an empty group left without offsets goes");
    assert!(!c.has_pending_txn_offset("h", "t", 0));
}

#[test]
fn a_transactional_offset_written_after_a_deletion_survives_it() {
    let mut c = engine();
    let p = |id| ProducerIdAndEpoch::new(ProducerId(id), ProducerEpoch(0));
    let partition = super::records::partition_for("g", 50);
    // Producer 7's offset is pending when the group is deleted: it goes.
    c.txn_commit_offsets(0, p(7), &CommitRequest::of_t0("g", 4));
    let w = opened(&mut c);
    c.write_resolved(0, w, Ok(()));
    assert_eq!(c.delete_groups(0, &["g".to_string()]), vec![None]);
    let d = opened(&mut c);
    // Producer 8's comes after the tombstones: a replay keeps it pending.
    c.txn_commit_offsets(0, p(8), &CommitRequest::of_t0("g", 9));
    let w = opened(&mut c);
    c.write_resolved(0, w, Ok(()));
    c.write_resolved(0, d, Ok(()));
    assert_eq!(c.complete_txn(0, ProducerId(7), true, partition, 50), 0, "deleted before its marker");
    assert_eq!(c.complete_txn(0, ProducerId(8), true, partition, 50), 1, "written after the deletion");
    assert_eq!(fetched(&mut c, "g"), Some(9));
}
