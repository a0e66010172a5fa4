//! The engine's writes, one event at a time (`writes`): what an OffsetCommit,
//! a TxnOffsetCommit and a leader's SyncGroup show before their append
//! resolves, after it resolved Ok and after it failed.

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use kaskade_types::{ProducerEpoch, ProducerId, ProducerIdAndEpoch, TopicPartition};

use super::records::partition_for;
use super::*;

const PARTITIONS: i32 = 50;

pub(super) fn engine() -> GroupCoordinator {
    GroupCoordinator::new(GroupConfig { initial_rebalance_delay_ms: 0, ..GroupConfig::default() }, 1)
}

fn commit(group: &str, generation: Option<i32>, member: &str, offset: i64) -> CommitRequest {
    CommitRequest::of_t0(group, offset).by(generation, member)
}

/// The committed offset of `t-0`, as OffsetFetch answers it.
pub(super) fn fetched(c: &mut GroupCoordinator, group: &str) -> Option<i64> {
    c.fetch_offsets(0, group, Some(&[TopicPartition::new("t", 0)])).expect("fetched")[0].offset().map(|o| o.get())
}

/// Commits `offset` from outside any group; the write it opened.
pub(super) fn commit_write(c: &mut GroupCoordinator, group: &str, offset: i64) -> WriteId {
    assert_eq!(c.commit_offsets(0, &commit(group, None, "", offset)), vec![None]);
    let opened = c.take_opened_writes();
    assert_eq!(opened.len(), 1, "one write per commit");
    assert_eq!(opened[0].1, group);
    opened[0].0
}

#[test]
fn a_commit_is_visible_only_once_its_write_resolved_ok() {
    let mut c = engine();
    let w = commit_write(&mut c, "g", 5);
    assert_eq!(c.take_offset_changes().len(), 1, "the record is written at once");
    assert_eq!(fetched(&mut c, "g"), None, "pending: not visible");
    assert_eq!(c.pending_writes_of("g"), vec![w]);
    c.write_resolved(0, w, Ok(()));
    assert_eq!(fetched(&mut c, "g"), Some(5));
    assert!(c.pending_writes_of("g").is_empty());
    // A second resolution of the same write changes nothing.
    c.write_resolved(0, w, Err(E::NotCoordinator));
    assert_eq!(fetched(&mut c, "g"), Some(5));
}

#[test]
fn a_failed_commit_is_dropped_and_the_previous_offset_stays() {
    let mut c = engine();
    let w = commit_write(&mut c, "g", 5);
    c.write_resolved(0, w, Ok(()));
    let lost = commit_write(&mut c, "g", 9);
    c.write_resolved(0, lost, Err(E::CoordinatorNotAvailable));
    assert_eq!(fetched(&mut c, "g"), Some(5), "the lost commit never shows");
    // A commit that only created its group takes the group with it.
    let w = commit_write(&mut c, "fresh", 1);
    assert!(c.group("fresh").is_some(), "created to hold the offset");
    c.write_resolved(0, w, Err(E::NotCoordinator));
    assert!(c.group("fresh").is_none(), "nothing of a failed commit stays");
    assert!(c.list_groups(0, &[]).iter().all(|g| g.group_id != "fresh"));
}

#[test]
fn the_later_commit_wins_whatever_order_the_writes_resolve_in() {
    let mut c = engine();
    let (w1, w2) = (commit_write(&mut c, "g", 1), commit_write(&mut c, "g", 2));
    c.write_resolved(0, w2, Ok(()));
    assert_eq!(fetched(&mut c, "g"), Some(2));
    c.write_resolved(0, w1, Ok(()));
    assert_eq!(fetched(&mut c, "g"), Some(2), "the older write resolving late does not go back");
    // In order, and the later one fails: the earlier one stays.
    let (w3, w4) = (commit_write(&mut c, "g", 3), commit_write(&mut c, "g", 4));
    c.write_resolved(0, w3, Ok(()));
    c.write_resolved(0, w4, Err(E::CoordinatorNotAvailable));
    assert_eq!(fetched(&mut c, "g"), Some(3));
}

#[test]
fn an_unloaded_partition_forgets_its_writes() {
    let mut c = engine();
    let w = commit_write(&mut c, "g", 5);
    c.unload_partition(partition_for("g", PARTITIONS), PARTITIONS);
    assert!(c.pending_writes_of("g").is_empty());
    c.write_resolved(0, w, Ok(()));
    assert!(c.group("g").is_none(), "the new leader's log decides, not this late answer");
}

#[test]
fn offsets_with_a_write_in_flight_do_not_expire() {
    let mut c = engine();
    let w = commit_write(&mut c, "g", 5);
    c.write_resolved(0, w, Ok(()));
    let _in_flight = commit_write(&mut c, "g", 6);
    assert!(c.expire_offsets(1_000, 0).is_empty(), "the group waits for its write");
    assert_eq!(fetched(&mut c, "g"), Some(5));
}

fn producer(id: i64) -> ProducerIdAndEpoch {
    ProducerIdAndEpoch::new(ProducerId(id), ProducerEpoch(0))
}

#[test]
fn a_transactional_commit_is_pending_from_its_write_and_dropped_if_it_fails() {
    let mut c = engine();
    assert_eq!(c.txn_commit_offsets(0, producer(7), &commit("g", None, "", 5)), vec![None]);
    let w = c.take_opened_writes()[0].0;
    // In flight: unstable for require_stable (Kafka reads its latest state).
    assert!(c.has_pending_txn_offset("g", "t", 0));
    c.write_resolved(0, w, Err(E::NotCoordinator));
    assert!(!c.has_pending_txn_offset("g", "t", 0), "a failed write leaves nothing pending");
    let p = partition_for("g", PARTITIONS);
    assert_eq!(c.complete_txn(0, ProducerId(7), true, p, PARTITIONS), 0, "the marker finds nothing to commit");
    assert_eq!(fetched(&mut c, "g"), None);

    // Resolved Ok: pending until the marker.
    c.txn_commit_offsets(0, producer(8), &commit("g", None, "", 6));
    let w = c.take_opened_writes()[0].0;
    c.write_resolved(0, w, Ok(()));
    assert!(c.has_pending_txn_offset("g", "t", 0));
    assert_eq!(fetched(&mut c, "g"), None);
    assert_eq!(c.complete_txn(0, ProducerId(8), true, p, PARTITIONS), 1);
    assert_eq!(fetched(&mut c, "g"), Some(6));
}

#[test]
fn a_marker_settles_the_transactions_writes_still_in_flight() {
    let mut c = engine();
    let p = partition_for("g", PARTITIONS);
    c.txn_commit_offsets(0, producer(7), &commit("g", None, "", 5));
    let w = c.take_opened_writes()[0].0;
    // The marker is durable after the records: they are committed too.
    assert_eq!(c.complete_txn(0, ProducerId(7), true, p, PARTITIONS), 1);
    assert_eq!(fetched(&mut c, "g"), Some(5));
    c.write_resolved(0, w, Ok(()));
    assert!(!c.has_pending_txn_offset("g", "t", 0), "not pending again after the marker");
    // An abort drops them.
    c.txn_commit_offsets(0, producer(9), &commit("g", None, "", 9));
    let w = c.take_opened_writes()[0].0;
    assert_eq!(c.complete_txn(0, ProducerId(9), false, p, PARTITIONS), 0);
    c.write_resolved(0, w, Ok(()));
    assert!(!c.has_pending_txn_offset("g", "t", 0));
    assert_eq!(fetched(&mut c, "g"), Some(5));
}

fn join(c: &mut GroupCoordinator, token: Token, member: &str) {
    c.join(
        0,
        token,
        JoinRequest {
            group_id: "g".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            member_id: member.into(),
            protocol_type: "consumer".into(),
            protocols: vec![Protocol { name: "range".into(), metadata: Bytes::from_static(b"m") }],
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            ..JoinRequest::default()
        },
    );
}

/// Two members joined generation 1 and both sent SyncGroup (the leader's
/// with assignments): (leader, follower, generation, the assignment write).
fn syncing_group(c: &mut GroupCoordinator) -> (String, String, i32, WriteId) {
    join(c, 1, "");
    c.tick(0);
    let leader = match &c.take_completions()[..] {
        [Completion { reply: Reply::Join(r), .. }] => r.member_id.clone(),
        other => panic!("{other:?}"),
    };
    // The second member makes the group rebalance; both join again.
    join(c, 2, "");
    join(c, 3, &leader);
    let joined = c.take_completions();
    let Some(Reply::Join(r)) = joined.iter().find(|x| x.token == 2).map(|x| x.reply.clone()) else {
        panic!("{joined:?}")
    };
    let (follower, generation) = (r.member_id.clone(), r.generation_id);
    let sync = |member: &str, assignments: Vec<(String, Bytes)>| SyncRequest {
        group_id: "g".into(),
        generation_id: generation,
        member_id: member.into(),
        assignments,
        ..SyncRequest::default()
    };
    c.sync(0, 4, sync(&follower, Vec::new()));
    let a = vec![(leader.clone(), Bytes::from_static(b"A")), (follower.clone(), Bytes::from_static(b"B"))];
    c.sync(0, 5, sync(&leader, a));
    assert!(c.take_completions().is_empty(), "nobody hears before the assignment is stored");
    assert_eq!(c.group("g").map(Group::state), Some(GroupState::CompletingRebalance));
    assert_eq!(c.take_dirty_groups(), vec!["g".to_string()], "the group record carries the assignment");
    let opened = c.take_opened_writes();
    assert_eq!(opened.len(), 1);
    (leader, follower, generation, opened[0].0)
}

fn sync_answers(c: &mut GroupCoordinator) -> Vec<(Token, Option<E>, Bytes)> {
    let mut answers: Vec<_> = c
        .take_completions()
        .into_iter()
        .filter_map(|x| match x.reply {
            Reply::Sync(r) => Some((x.token, r.error, r.assignment)),
            Reply::Join(_) => None,
        })
        .collect();
    answers.sort_by_key(|a| a.0);
    answers
}

#[test]
fn sync_group_answers_once_the_assignment_is_stored() {
    let mut c = engine();
    let (_, _, _, w) = syncing_group(&mut c);
    c.write_resolved(0, w, Ok(()));
    assert_eq!(c.group("g").map(Group::state), Some(GroupState::Stable));
    let ok = |t, a: &'static [u8]| (t, None, Bytes::from_static(a));
    assert_eq!(sync_answers(&mut c), vec![ok(4, b"B"), ok(5, b"A")]);
}

#[test]
fn a_failed_assignment_store_answers_every_waiting_member_and_rebalances() {
    for error in [E::NotCoordinator, E::CoordinatorNotAvailable] {
        let mut c = engine();
        let (leader, follower, generation, w) = syncing_group(&mut c);
        c.write_resolved(0, w, Err(error));
        let failed = |t| (t, Some(error), Bytes::new());
        assert_eq!(sync_answers(&mut c), vec![failed(4), failed(5)], "both members hear the error");
        let group = c.group("g").expect("the group stays");
        assert_eq!(group.state(), GroupState::PreparingRebalance, "the members rejoin");
        assert!(group.members().all(|m| m.assignment.is_empty()), "no assignment survives");
        // They rejoin into the next generation.
        join(&mut c, 6, &leader);
        join(&mut c, 7, &follower);
        let next: Vec<i32> = c
            .take_completions()
            .into_iter()
            .filter_map(|x| match x.reply {
                Reply::Join(r) if r.error.is_none() => Some(r.generation_id),
                _ => None,
            })
            .collect();
        assert_eq!(next, vec![generation + 1, generation + 1]);
    }
}

#[test]
fn a_late_assignment_store_of_an_older_generation_is_ignored() {
    let mut c = engine();
    let (_, _, _, w) = syncing_group(&mut c);
    // A new member joins before the store resolves: the parked SyncGroups
    // answer REBALANCE_IN_PROGRESS and the group moves on.
    join(&mut c, 6, "");
    let answers = sync_answers(&mut c);
    assert!(answers.iter().all(|a| a.1 == Some(E::RebalanceInProgress)), "{answers:?}");
    c.write_resolved(0, w, Ok(()));
    assert_eq!(c.group("g").map(Group::state), Some(GroupState::PreparingRebalance));
    assert!(sync_answers(&mut c).is_empty());
}

/// A Stable group of static members i1 (leader, "A1") and i2 ("A2"):
/// (harness, generation, i2's member id).
fn static_group() -> (super::tests::Harness, i32, String) {
    use super::tests::{find_join, static_join, sync_req};
    let mut h = super::tests::Harness::new(1000);
    let t1 = h.join(static_join("g", "i1", ""));
    let t2 = h.join(static_join("g", "i2", ""));
    let replies = h.settle("g");
    let (r1, r2) = (find_join(&replies, t1).expect("i1"), find_join(&replies, t2).expect("i2"));
    let generation = r1.generation_id;
    let a = vec![(r1.member_id.clone(), Bytes::from("A1")), (r2.member_id.clone(), Bytes::from("A2"))];
    h.sync(SyncRequest { group_instance_id: Some("i1".into()), ..sync_req("g", generation, &r1.member_id, a) });
    h.sync(SyncRequest { group_instance_id: Some("i2".into()), ..sync_req("g", generation, &r2.member_id, vec![]) });
    h.replies();
    assert_eq!(h.c.group("g").map(Group::state), Some(GroupState::Stable));
    (h, generation, r2.member_id)
}

fn heartbeat(c: &mut GroupCoordinator, generation: i32, member: &str) -> Option<E> {
    let req = HeartbeatRequest {
        group_id: "g".into(),
        generation_id: generation,
        member_id: member.into(),
        group_instance_id: Some("i2".into()),
    };
    c.heartbeat(0, &req)
}

#[test]
fn a_static_members_rejoin_is_answered_once_its_record_is_stored() {
    let (mut h, generation, old) = static_group();
    h.c.join(h.now, 50, super::tests::static_join("g", "i2", ""));
    assert!(h.c.take_completions().is_empty(), "no answer before the group record is stored");
    assert_eq!(h.c.take_dirty_groups(), vec!["g".to_string()]);
    let w = h.c.take_opened_writes()[0].0;
    h.c.write_resolved(h.now, w, Ok(()));
    let r = match &h.c.take_completions()[..] {
        [Completion { token: 50, reply: Reply::Join(r) }] => r.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!((r.error, r.generation_id), (None, generation), "no rebalance");
    assert_ne!(r.member_id, old);
    assert_eq!(heartbeat(&mut h.c, generation, &old), Some(E::FencedInstanceId));
    assert_eq!(heartbeat(&mut h.c, generation, &r.member_id), None);
}

#[test]
fn a_static_members_rejoin_whose_record_fails_is_undone() {
    let (mut h, generation, old) = static_group();
    h.c.join(h.now, 50, super::tests::static_join("g", "i2", ""));
    let w = h.c.take_opened_writes()[0].0;
    h.c.write_resolved(h.now, w, Err(E::CoordinatorNotAvailable));
    let r = match &h.c.take_completions()[..] {
        [Completion { token: 50, reply: Reply::Join(r) }] => r.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!((r.error, r.member_id.as_str()), (Some(E::CoordinatorNotAvailable), ""));
    // The log still names the old member id: so does the group.
    assert_eq!(heartbeat(&mut h.c, generation, &old), None, "the old member is back");
    let group = h.c.group("g").expect("group");
    assert_eq!(group.state(), GroupState::Stable);
    assert_eq!(group.member(&old).map(|m| m.assignment.clone()), Some(Bytes::from("A2")));
    assert_eq!(group.members().count(), 2);
}

#[test]
fn a_static_rejoin_waiting_for_its_record_answers_not_coordinator_on_unload() {
    let (mut h, _, _) = static_group();
    h.c.join(h.now, 50, super::tests::static_join("g", "i2", ""));
    let w = h.c.take_opened_writes()[0].0;
    h.c.unload_partition(partition_for("g", PARTITIONS), PARTITIONS);
    let answers = h.c.take_completions();
    let mine: Vec<_> = answers.iter().filter(|c| c.token == 50).collect();
    assert!(
        matches!(
            mine[..],
            [Completion { reply: Reply::Join(JoinResponse { error: Some(E::NotCoordinator), .. }), .. }]
        ),
        "{answers:?}"
    );
    h.c.write_resolved(h.now, w, Ok(()));
    assert!(h.c.take_completions().is_empty(), "answered once");
}
