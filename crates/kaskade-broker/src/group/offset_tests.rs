//! Unit tests of the group engine's offsets: OffsetCommit and OffsetFetch,
//! OffsetDelete, group listing and deletion, expiry, the persisted group
//! metadata, and transactional offsets until their marker.

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use kaskade_types::{LeaderEpoch, Offset, ProducerEpoch, ProducerId, ProducerIdAndEpoch, TopicPartition};

use super::tests::*;
use super::*;

fn commit(group: &str, generation: i32, member: &str, offset: i64) -> CommitRequest {
    CommitRequest {
        group_id: group.into(),
        generation_id: commit_generation(generation),
        member_id: member.into(),
        group_instance_id: None,
        partitions: vec![CommitPartition {
            topic: "t".into(),
            partition: 0,
            offset: Offset(offset),
            leader_epoch: Some(LeaderEpoch(3)),
            metadata: Some("m".into()),
        }],
        api_version: 8,
    }
}

#[test]
fn offset_commit_and_fetch() {
    let mut h = Harness::new(0);
    let (ids, generation) = stable_group(&mut h, "g", 2);
    assert_eq!(h.commit_offsets(&commit("g", generation, &ids[1], 42)), vec![None]);
    assert_eq!(h.commit_offsets(&commit("g", generation - 1, &ids[1], 1)), vec![Some(E::IllegalGeneration)]);
    assert_eq!(h.commit_offsets(&commit("g", generation, "nobody", 1)), vec![Some(E::UnknownMemberId)]);
    assert_eq!(h.commit_offsets(&commit("g", -1, "", 1)), vec![Some(E::UnknownMemberId)]);
    let fetched =
        h.c.fetch_offsets(h.now, "g", Some(&[TopicPartition::new("t", 0), TopicPartition::new("t", 1)])).unwrap();
    assert_eq!(fetched[0].offset(), Some(Offset(42)));
    let committed = fetched[0].committed.as_ref().expect("committed");
    assert_eq!(committed.leader_epoch, Some(LeaderEpoch(3)));
    assert_eq!(committed.metadata, "m");
    assert_eq!(fetched[1].offset(), None);
    let all = h.c.fetch_offsets(h.now, "g", None).unwrap();
    assert_eq!(all.len(), 1);
    // Mid-rebalance commits of the current generation are accepted
    // (eager consumers commit in onPartitionsRevoked) ...
    h.join(join_req("g", &ids[0]));
    assert_eq!(h.commit_offsets(&commit("g", generation, &ids[1], 43)), vec![None]);
    // ... but not between JoinGroup and SyncGroup.
    let t = h.join(join_req("g", &ids[1]));
    let g2 = h.join_reply(t).generation_id;
    assert_eq!(h.commit_offsets(&commit("g", g2, &ids[1], 44)), vec![Some(E::RebalanceInProgress)]);
    // Unknown group with a generation.
    assert_eq!(h.commit_offsets(&commit("x", 1, "m", 1)), vec![Some(E::IllegalGeneration)]);
    let mut v9 = commit("x", 1, "m", 1);
    v9.api_version = 9;
    assert_eq!(h.commit_offsets(&v9), vec![Some(E::GroupIdNotFound)]);
    // Too much metadata.
    let mut big = commit("simple", -1, "", 1);
    big.partitions[0].metadata = Some("x".repeat(5000));
    assert_eq!(h.commit_offsets(&big), vec![Some(E::OffsetMetadataTooLarge)]);
}

#[test]
fn manual_assignment_commits_create_an_empty_group() {
    let mut h = Harness::new(0);
    assert_eq!(h.commit_offsets(&commit("manual", -1, "", 7)), vec![None]);
    assert_eq!(h.state("manual"), GroupState::Empty);
    let fetched = h.c.fetch_offsets(h.now, "manual", Some(&[TopicPartition::new("t", 0)])).unwrap();
    assert_eq!(fetched[0].offset(), Some(Offset(7)));
    let listed = h.c.list_groups(h.now, &[]);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, "Empty");
    assert_eq!(listed[0].protocol_type, "");
    // Nothing for an unknown group.
    assert_eq!(h.c.fetch_offsets(h.now, "nosuch", Some(&[TopicPartition::new("t", 0)])).unwrap()[0].offset(), None);
    assert!(h.c.fetch_offsets(h.now, "nosuch", None).unwrap().is_empty());
}

fn subscription(topics: &[&str]) -> Bytes {
    let mut b = vec![0u8, 1];
    b.extend((topics.len() as i32).to_be_bytes());
    for t in topics {
        b.extend((t.len() as i16).to_be_bytes());
        b.extend(t.as_bytes());
    }
    b.extend([0, 0, 0, 0]); // user data: null bytes (length -1 would also do)
    Bytes::from(b)
}

#[test]
fn offset_delete() {
    let mut h = Harness::new(0);
    let mut req = join_req("g", "");
    req.require_known_member_id = false;
    req.protocols = vec![Protocol { name: "range".into(), metadata: subscription(&["t"]) }];
    let t = h.join(req);
    h.advance(0);
    let r = h.join_reply(t);
    h.sync(sync_req("g", r.generation_id, &r.member_id, vec![]));
    let mut c = commit("g", r.generation_id, &r.member_id, 5);
    c.partitions.push(CommitPartition {
        topic: "other".into(),
        partition: 0,
        offset: Offset(9),
        leader_epoch: None,
        metadata: None,
    });
    assert_eq!(h.commit_offsets(&c), vec![None, None]);
    let errors =
        h.c.delete_offsets(h.now, "g", &[TopicPartition::new("t", 0), TopicPartition::new("other", 0)]).unwrap();
    assert_eq!(errors, vec![Some(E::GroupSubscribedToTopic), None]);
    h.stored();
    assert_eq!(h.c.fetch_offsets(h.now, "g", None).unwrap().len(), 1);
    assert_eq!(h.c.delete_offsets(h.now, "nosuch", &[]), Err(E::GroupIdNotFound));
    // Empty group: everything goes.
    h.c.leave(h.now, "g", &[LeavingMember { member_id: r.member_id.clone(), group_instance_id: None }]);
    assert_eq!(h.state("g"), GroupState::Empty);
    assert_eq!(h.c.delete_offsets(h.now, "g", &[TopicPartition::new("t", 0)]), Ok(vec![None]));
    h.stored();
    assert!(h.c.fetch_offsets(h.now, "g", None).unwrap().is_empty());
}

#[test]
fn describe_list_delete_groups() {
    let mut h = Harness::new(0);
    let (ids, _) = stable_group(&mut h, "g", 2);
    h.commit_offsets(&commit("empty", -1, "", 1));
    let d = h.c.describe_group(h.now, "g").unwrap();
    assert_eq!(d.state, "Stable");
    assert_eq!(d.protocol_type, "consumer");
    assert_eq!(d.protocol, "range");
    assert_eq!(d.members.len(), 2);
    let m = d.members.iter().find(|m| m.member_id == ids[1]).unwrap();
    assert_eq!(m.client_id, "client");
    assert_eq!(m.client_host, "/127.0.0.1");
    assert_eq!(m.assignment, Bytes::from(format!("a-{}", ids[1])));
    assert_eq!(m.metadata, Bytes::from("meta-range"));
    assert!(h.c.describe_group(h.now, "nosuch").is_none());

    assert_eq!(h.c.list_groups(h.now, &[]).len(), 2);
    let stable = h.c.list_groups(h.now, &["stable".into()]);
    assert_eq!(stable.len(), 1);
    assert_eq!(stable[0].group_id, "g");
    assert_eq!(h.c.list_groups(h.now, &["Empty".into(), "Dead".into()])[0].group_id, "empty");

    let errors = h.c.delete_groups(h.now, &["g".into(), "empty".into(), "nosuch".into()]);
    assert_eq!(errors, vec![Some(E::NonEmptyGroup), None, Some(E::GroupIdNotFound)]);
    h.stored();
    assert!(h.c.group("empty").is_none());
    assert_eq!(h.c.fetch_offsets(h.now, "empty", None).unwrap().len(), 0);
}

#[test]
fn a_deleted_topic_takes_its_offsets_from_every_group() {
    let mut h = Harness::new(0);
    let (ids, generation) = stable_group(&mut h, "live", 1);
    assert_eq!(h.commit_offsets(&commit("live", generation, &ids[0], 5)), vec![None]);
    assert_eq!(h.commit_offsets(&commit("manual", -1, "", 7)), vec![None]);
    let mut other = commit("manual", -1, "", 9);
    other.partitions[0].topic = "kept".into();
    assert_eq!(h.commit_offsets(&other), vec![None]);
    assert_eq!(h.commit_offsets(&commit("only-t", -1, "", 1)), vec![None]);
    h.c.take_offset_changes();
    assert_eq!(h.c.remove_topic_offsets(h.now, "t"), 3);
    h.stored();
    let tombstones = h.c.take_offset_changes();
    assert_eq!(tombstones.len(), 3);
    assert!(tombstones.iter().all(|c| c.topic == "t" && c.value.is_none()));
    assert_eq!(h.c.fetch_offsets(h.now, "live", Some(&[TopicPartition::new("t", 0)])).unwrap()[0].offset(), None);
    assert_eq!(
        h.c.fetch_offsets(h.now, "manual", Some(&[TopicPartition::new("kept", 0)])).unwrap()[0].offset(),
        Some(Offset(9))
    );
    // The stable group keeps running; the empty group left with nothing
    // is gone.
    assert_eq!(h.state("live"), GroupState::Stable);
    let listed: Vec<String> = h.c.list_groups(h.now, &[]).into_iter().map(|g| g.group_id).collect();
    assert_eq!(listed, vec!["live".to_string(), "manual".to_string()]);
    assert_eq!(h.c.remove_topic_offsets(h.now, "t"), 0);
}

#[test]
fn offsets_of_empty_groups_expire() {
    let mut h = Harness::new(0);
    h.commit_offsets(&commit("old", -1, "", 1));
    h.now = 5000;
    h.commit_offsets(&commit("new", -1, "", 1));
    let removed = h.c.expire_offsets(10_000, 8000);
    assert_eq!(removed, vec!["old".to_string()]);
    assert!(h.c.group("new").is_some());
}

#[test]
fn subscription_parsing() {
    assert_eq!(parse_subscription_topics(&subscription(&["a", "bc"])), Some(vec!["a".to_string(), "bc".to_string()]));
    assert_eq!(parse_subscription_topics(&[0, 1, 0]), None);
}

#[test]
fn persisted_group_metadata_restores_a_stable_group() {
    let mut h = Harness::new(0);
    let (ids, generation) = stable_group(&mut h, "g", 2);
    h.commit_offsets(&commit("g", generation, &ids[0], 9));
    // What the driver would persist.
    let dirty = h.c.take_dirty_groups();
    assert_eq!(dirty, vec!["g".to_string()]);
    let changes = h.c.take_offset_changes();
    assert_eq!(changes.len(), 1);
    let value = records::group_value(h.c.group("g").unwrap());
    let Some(records::OffsetsRecord::GroupMetadata(id, group)) =
        records::decode(&records::group_key("g"), Some(&value))
    else {
        panic!("a group record");
    };
    // A fresh coordinator (a restart) replays the records.
    let mut restarted = Harness::new(0);
    restarted.now = h.now + 1000;
    for c in changes {
        restarted.c.load_offset(restarted.now, c);
    }
    restarted.c.load_group(restarted.now, id, group);
    assert_eq!(restarted.state("g"), GroupState::Stable);
    assert_eq!(restarted.heartbeat("g", generation, &ids[1]), None, "members carry on");
    let t = restarted.sync(sync_req("g", generation, &ids[1], vec![]));
    let r = find_sync(&restarted.replies(), t).unwrap();
    assert_eq!(r.assignment, Bytes::from(format!("a-{}", ids[1])));
    assert_eq!(restarted.c.fetch_offsets(restarted.now, "g", None).unwrap()[0].offset(), Some(Offset(9)));
    // Members that do not come back expire.
    restarted.advance(i64::from(SESSION) + 1);
    assert_eq!(restarted.state("g"), GroupState::Empty);
    // A tombstone removes the group (its offsets were tombstoned first).
    restarted.c.load_offset(
        restarted.now,
        OffsetChange { group_id: "g".into(), topic: "t".into(), partition: 0, value: None },
    );
    restarted.c.load_group(restarted.now, "g".into(), None);
    assert!(restarted.c.group("g").is_none());
}

fn producer(id: i64, epoch: i16) -> ProducerIdAndEpoch {
    ProducerIdAndEpoch::new(ProducerId(id), ProducerEpoch(epoch))
}

#[test]
fn transactional_offsets_stay_pending_until_the_marker() {
    let mut h = Harness::new(0);
    assert_eq!(h.txn_commit_offsets(producer(7, 0), &commit("g", -1, "", 10)), vec![None]);
    let changes = h.c.take_txn_offset_changes();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].producer, producer(7, 0));
    assert!(h.c.take_offset_changes().is_empty(), "nothing committed outside the transaction");
    // Invisible, but known as pending (require_stable).
    assert_eq!(h.c.fetch_offsets(h.now, "g", Some(&[TopicPartition::new("t", 0)])).unwrap()[0].offset(), None);
    assert!(h.c.has_pending_txn_offset("g", "t", 0));
    assert!(!h.c.has_pending_txn_offset("g", "t", 1));
    // An abort drops them; a commit makes them the committed offsets.
    let p = crate::group::records::partition_for("g", 50);
    assert_eq!(h.c.complete_txn(h.now, ProducerId(7), false, p, 50), 0);
    assert!(!h.c.has_pending_txn_offset("g", "t", 0));
    assert_eq!(h.c.fetch_offsets(h.now, "g", Some(&[TopicPartition::new("t", 0)])).unwrap()[0].offset(), None);
    h.txn_commit_offsets(producer(7, 1), &commit("g", -1, "", 12));
    assert_eq!(h.c.complete_txn(h.now, ProducerId(7), true, p, 50), 1);
    assert_eq!(
        h.c.fetch_offsets(h.now, "g", Some(&[TopicPartition::new("t", 0)])).unwrap()[0].offset(),
        Some(Offset(12))
    );
    // Group checks apply as for OffsetCommit.
    let (ids, generation) = stable_group(&mut h, "live", 1);
    assert_eq!(
        h.txn_commit_offsets(producer(8, 0), &commit("live", generation + 1, &ids[0], 1)),
        vec![Some(E::IllegalGeneration)]
    );
    assert_eq!(h.txn_commit_offsets(producer(8, 0), &commit("live", generation, &ids[0], 1)), vec![None]);
    // Without member id and generation (TxnOffsetCommit v0-2, aiokafka's and
    // kafkajs's consume-transform-produce) Kafka accepts it though the group
    // has live members; a plain OffsetCommit without them is still refused.
    assert_eq!(h.txn_commit_offsets(producer(8, 0), &commit("live", -1, "", 2)), vec![None]);
    assert_eq!(h.commit_offsets(&commit("live", -1, "", 2)), vec![Some(E::UnknownMemberId)]);
}

#[test]
fn a_marker_settles_only_the_offsets_stored_on_its_partition() {
    use crate::group::records::partition_for;
    let mut h = Harness::new(0);
    // Two groups of one transaction, on different offsets partitions.
    let (a, b) = ("ga", "gb");
    let (pa, pb) = (partition_for(a, 50), partition_for(b, 50));
    assert_ne!(pa, pb);
    h.txn_commit_offsets(producer(7, 0), &commit(a, -1, "", 7));
    h.txn_commit_offsets(producer(7, 0), &commit(b, -1, "", 5));
    assert_eq!(h.c.complete_txn(h.now, ProducerId(7), true, pb, 50), 1);
    assert_eq!(h.c.fetch_offsets(h.now, b, Some(&[TopicPartition::new("t", 0)])).unwrap()[0].offset(), Some(Offset(5)));
    assert_eq!(
        h.c.fetch_offsets(h.now, a, Some(&[TopicPartition::new("t", 0)])).unwrap()[0].offset(),
        None,
        "still pending"
    );
    assert!(h.c.has_pending_txn_offset(a, "t", 0));
    assert_eq!(h.c.complete_txn(h.now, ProducerId(7), false, pa, 50), 0);
    assert!(!h.c.has_pending_txn_offset(a, "t", 0));
    assert_eq!(h.c.fetch_offsets(h.now, a, Some(&[TopicPartition::new("t", 0)])).unwrap()[0].offset(), None, "aborted");
}

#[test]
fn deleting_a_group_or_topic_drops_its_pending_transactional_offsets() {
    use crate::group::records::partition_for;
    let mut h = Harness::new(0);
    h.txn_commit_offsets(producer(7, 0), &commit("gone", -1, "", 4));
    h.c.take_offset_changes();
    assert_eq!(h.c.delete_groups(h.now, &["gone".to_string()]), vec![None]);
    h.stored();
    let tombstones = h.c.take_offset_changes();
    assert!(tombstones.iter().any(|c| c.group_id == "gone" && c.value.is_none()), "{tombstones:?}");
    assert!(!h.c.has_pending_txn_offset("gone", "t", 0));
    let p = partition_for("gone", 50);
    assert_eq!(h.c.complete_txn(h.now, ProducerId(7), true, p, 50), 0, "nothing comes back on commit");
    assert!(h.c.fetch_offsets(h.now, "gone", None).unwrap().is_empty());
    // A topic deletion drops them too; a replayed tombstone as well.
    h.txn_commit_offsets(producer(8, 0), &commit("g2", -1, "", 9));
    h.c.remove_topic_offsets(h.now, "t");
    h.stored();
    assert!(!h.c.has_pending_txn_offset("g2", "t", 0));
    h.txn_commit_offsets(producer(9, 0), &commit("g3", -1, "", 2));
    h.c.load_offset(h.now, OffsetChange { group_id: "g3".into(), topic: "t".into(), partition: 0, value: None });
    assert!(!h.c.has_pending_txn_offset("g3", "t", 0));
}

#[test]
fn a_negative_commit_generation_is_a_commit_from_outside_the_group() {
    assert_eq!(commit_generation(-1), None);
    assert_eq!(commit_generation(-3), None);
    assert_eq!(commit_generation(0), Some(0));
    let mut h = Harness::new(0);
    // An unknown group: created empty to hold the offsets, as Kafka does.
    assert_eq!(h.commit_offsets(&commit("manual", -3, "", 4)), vec![None]);
    assert_eq!(h.c.fetch_offsets(h.now, "manual", None).unwrap()[0].offset(), Some(Offset(4)));
    // A generation for a group that does not exist is refused.
    assert_eq!(h.commit_offsets(&commit("nosuch", 2, "m", 4)), vec![Some(E::IllegalGeneration)]);
}
