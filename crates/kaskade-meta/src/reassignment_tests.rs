//! One test per step of a reassignment, each applying the decided records
//! to an image as the brokers do.

use super::*;
use kaskade_types::LeaderEpoch;

use crate::test_image::{cluster, n};

/// Brokers 1..=4 registered (those in `fenced` fenced) and topic "t" with
/// one partition: (leader, replicas, isr), leader epoch 3, partition epoch 7.
fn image(leader: i32, replicas: &[i32], isr: &[i32], fenced: &[i32]) -> (Image, Uuid) {
    cluster(4, fenced, (LeaderEpoch(3), 7), &[(leader, replicas, isr)])
}

fn part(img: &Image) -> PartitionImage {
    img.topic("t").expect("topic").partitions[0].clone()
}

fn applied(mut img: Image, record: Option<MetadataRecord>) -> Image {
    if let Some(r) = record {
        img.apply(&r);
    }
    img
}

/// The leader's ISR change to `isr`, applied.
fn isr_to(img: Image, id: Uuid, isr: &[i32]) -> Image {
    let p = part(&img);
    let r = isr_change(&img, id, 0, &p, n(isr));
    applied(img, r)
}

#[test]
fn start_adds_the_new_replicas_and_marks_adding_and_removing_keeping_leader_and_isr() {
    let (img, _) = image(1, &[1], &[1], &[]);
    let img = applied(img.clone(), alter(&img, "t", 0, Some(&[2, 3]), true, None, false).expect("accepted"));
    let p = part(&img);
    assert_eq!(p.replicas, n(&[2, 3, 1]), "the target, then the replicas leaving");
    assert_eq!((p.adding_replicas.clone(), p.removing_replicas.clone()), (n(&[2, 3]), n(&[1])));
    assert_eq!((p.leader, p.isr.clone()), (Some(NodeId(1)), n(&[1])));
    assert_eq!((p.leader_epoch, p.partition_epoch), (LeaderEpoch(3), 8), "same leader: same leader epoch");
    assert!(p.is_reassigning());
    assert_eq!(p.target_replicas(), n(&[2, 3]));
}

#[test]
fn isr_expansion_by_the_catching_up_replicas_completes_it_and_the_leader_moves_off_a_removed_replica() {
    let (img, id) = image(1, &[1], &[1], &[]);
    let img = applied(img.clone(), alter(&img, "t", 0, Some(&[2, 3]), true, None, false).expect("accepted"));
    // One adding replica caught up: only the ISR changes.
    let img = isr_to(img, id, &[1, 2]);
    let p = part(&img);
    assert_eq!((p.isr.clone(), p.replicas.clone(), p.partition_epoch), (n(&[1, 2]), n(&[2, 3, 1]), 9));
    assert!(p.is_reassigning(), "3 has not caught up");
    // The second: the reassignment completes in the same change.
    let img = isr_to(img, id, &[1, 2, 3]);
    let p = part(&img);
    assert!(!p.is_reassigning());
    assert_eq!((p.replicas.clone(), p.isr.clone()), (n(&[2, 3]), n(&[2, 3])));
    assert_eq!(p.leader, Some(NodeId(2)), "1 was removed: the first target replica in the ISR leads");
    assert_eq!((p.leader_epoch, p.partition_epoch), (LeaderEpoch(4), 10));
    // An ISR change that changes nothing writes nothing.
    assert!(isr_change(&img, id, 0, &p, n(&[2, 3])).is_none());
}

#[test]
fn a_completion_keeps_a_leader_that_stays() {
    let (img, id) = image(1, &[1, 2], &[1, 2], &[]);
    let img = applied(img.clone(), alter(&img, "t", 0, Some(&[1, 3]), true, None, false).expect("accepted"));
    assert_eq!(part(&img).removing_replicas, n(&[2]));
    let img = isr_to(img, id, &[1, 2, 3]);
    let p = part(&img);
    assert_eq!((p.leader, p.replicas.clone(), p.isr.clone()), (Some(NodeId(1)), n(&[1, 3]), n(&[1, 3])));
    assert_eq!(p.leader_epoch, LeaderEpoch(3));
}

#[test]
fn a_target_the_isr_already_covers_completes_at_once() {
    // Shrinking RF 3 -> 2, removing the leader.
    let (img, _) = image(1, &[1, 2, 3], &[1, 2, 3], &[]);
    let img = applied(img.clone(), alter(&img, "t", 0, Some(&[3, 2]), true, None, false).expect("accepted"));
    let p = part(&img);
    assert!(!p.is_reassigning());
    assert_eq!((p.leader, p.replicas.clone(), p.isr.clone()), (Some(NodeId(3)), n(&[3, 2]), n(&[2, 3])));
    // The same replicas again: nothing to do.
    assert_eq!(alter(&img, "t", 0, Some(&[3, 2]), true, None, false), Ok(None));
}

#[test]
fn cancel_reverts_to_the_old_replicas_and_a_second_cancel_finds_none() {
    let (img, id) = image(1, &[1], &[1], &[]);
    let img = applied(img.clone(), alter(&img, "t", 0, Some(&[2, 3]), true, None, false).expect("accepted"));
    let img = isr_to(img, id, &[1, 2]);
    let img = applied(img.clone(), alter(&img, "t", 0, None, true, None, false).expect("cancelled"));
    let p = part(&img);
    assert!(!p.is_reassigning());
    assert_eq!((p.leader, p.replicas.clone(), p.isr.clone()), (Some(NodeId(1)), n(&[1]), n(&[1])));
    assert_eq!(alter(&img, "t", 0, None, true, None, false), Err(Refusal::NoReassignmentInProgress));
}

/// A move of [1] to [1, 2] where 1 fell out of the ISR and 2 leads alone:
/// reverting it needs an unclean election (`fenced`: brokers fenced).
fn only_the_adding_replica_in_sync(fenced: &[i32]) -> Image {
    let (img, _) = image(1, &[1], &[1], fenced);
    let img = applied(img.clone(), alter(&img, "t", 0, Some(&[1, 2]), true, None, false).expect("accepted"));
    let p = part(&img);
    let r = p.changed_to(PartitionImage { leader: Some(NodeId(2)), isr: n(&[2]), ..p.clone() });
    let mut img = img;
    img.apply(&r.to_record(img.topic("t").expect("t").id, 0));
    img
}

fn allow_unclean(mut img: Image, value: &str) -> Image {
    let topic_id = img.topic("t").expect("t").id;
    img.apply(&MetadataRecord::TopicConfig {
        topic_id,
        name: crate::election::UNCLEAN_LEADER_ELECTION_ENABLE.into(),
        value: Some(value.into()),
    });
    img
}

#[test]
fn cancel_that_would_need_an_unclean_election_is_refused_unless_the_topic_allows_it() {
    let img = only_the_adding_replica_in_sync(&[]);
    match alter(&img, "t", 0, None, true, None, false) {
        Err(Refusal::InvalidReplicaAssignment(m)) => assert_eq!(
            m,
            "Unable to revert partition assignment for t:0 because it would require an unclean leader election."
        ),
        other => panic!("{other:?}"),
    }
    // The topic's own false beats a static default of true.
    let denied = allow_unclean(img.clone(), "false");
    assert!(matches!(alter(&denied, "t", 0, None, true, None, true), Err(Refusal::InvalidReplicaAssignment(_))));

    // Allowed (topic config, or the static default): KRaft reverts with the
    // first original replica as the ISR, and it leads.
    for (img, unclean_default) in [(allow_unclean(img.clone(), "true"), false), (img.clone(), true)] {
        let before = part(&img);
        let reverted = applied(img.clone(), alter(&img, "t", 0, None, true, None, unclean_default).expect("reverted"));
        let p = part(&reverted);
        assert_eq!((p.leader, p.replicas.clone(), p.isr.clone()), (Some(NodeId(1)), n(&[1]), n(&[1])));
        assert!(!p.is_reassigning());
        assert!(p.leader_epoch > before.leader_epoch, "a new leader: a new epoch");
        assert_eq!(
            crate::leader_election::unclean_in(&img, &[p.to_record(img.topic("t").expect("t").id, 0)]).len(),
            1,
            "the controller sees it as an unclean election (logged and counted)"
        );
    }
}

#[test]
fn an_allowed_unclean_revert_whose_first_replica_is_fenced_leaves_it_leaderless() {
    // 1 is fenced: the revert's ISR is [1] and no replica can lead (2 was
    // only adding): offline, as KRaft's UNCLEAN election finds no live
    // replica.
    let img = allow_unclean(only_the_adding_replica_in_sync(&[1]), "true");
    let p = part(&applied(img.clone(), alter(&img, "t", 0, None, true, None, false).expect("reverted")));
    assert_eq!((p.leader, p.replicas.clone(), p.isr.clone()), (None, n(&[1]), n(&[1])));
}

#[test]
fn a_revert_on_a_topic_allowing_unclean_elections_elects_a_live_replica_when_no_isr_member_is() {
    // Moving [1, 2] to [3] while 1, fenced, is the last ISR member and no
    // one leads.
    let (img, id) = image(1, &[1, 2], &[1, 2], &[1]);
    let img = applied(img.clone(), alter(&img, "t", 0, Some(&[3]), true, None, false).expect("accepted"));
    let p = part(&img);
    let offline = p.changed_to(PartitionImage { leader: None, isr: n(&[1]), ..p.clone() });
    let mut img = img;
    img.apply(&offline.to_record(id, 0));
    // Not allowed: the revert keeps ISR [1] and no leader.
    let p = part(&applied(img.clone(), alter(&img, "t", 0, None, true, None, false).expect("reverted")));
    assert_eq!((p.leader, p.replicas.clone(), p.isr.clone()), (None, n(&[1, 2]), n(&[1])));
    // Allowed: 2, live and an original replica, leads alone.
    let p = part(&applied(img.clone(), alter(&img, "t", 0, None, true, None, true).expect("reverted")));
    assert_eq!((p.leader, p.replicas.clone(), p.isr.clone()), (Some(NodeId(2)), n(&[1, 2]), n(&[2])));
}

#[test]
fn a_reassignment_to_a_fenced_broker_waits_until_it_catches_up() {
    let (img, id) = image(1, &[1], &[1], &[3]);
    let img = applied(
        img.clone(),
        alter(&img, "t", 0, Some(&[3]), true, None, false).expect("a fenced broker is registered"),
    );
    let p = part(&img);
    assert_eq!((p.adding_replicas.clone(), p.removing_replicas.clone()), (n(&[3]), n(&[1])));
    // Nothing completes it while 3 is out of the ISR.
    assert!(isr_change(&img, id, 0, &p, n(&[1])).is_none());
    assert!(part(&img).is_reassigning());
    // Unfenced, it fetches and joins the ISR: done, and it leads.
    let mut img = img;
    img.apply(&MetadataRecord::UnfenceBroker { node_id: 3 });
    let img = isr_to(img, id, &[1, 3]);
    let p = part(&img);
    assert_eq!((p.leader, p.replicas.clone(), p.isr.clone()), (Some(NodeId(3)), n(&[3]), n(&[3])));
}

#[test]
fn a_completion_whose_target_members_are_all_fenced_leaves_no_leader_but_the_isr() {
    // Target 2 is in the ISR but fenced at completion: no leader, ISR {2}.
    let (img, id) = image(1, &[1], &[1], &[]);
    let img = applied(img.clone(), alter(&img, "t", 0, Some(&[2]), true, None, false).expect("accepted"));
    let mut img = img;
    img.apply(&MetadataRecord::FenceBroker { node_id: 2 });
    let img = isr_to(img, id, &[1, 2]);
    let p = part(&img);
    assert_eq!((p.leader, p.replicas.clone(), p.isr.clone()), (None, n(&[2]), n(&[2])));
}

#[test]
fn a_new_target_during_a_move_starts_from_the_union() {
    let (img, _) = image(1, &[1], &[1], &[]);
    let img = applied(img.clone(), alter(&img, "t", 0, Some(&[2]), true, None, false).expect("accepted"));
    let img = applied(img.clone(), alter(&img, "t", 0, Some(&[3]), true, None, false).expect("accepted"));
    let p = part(&img);
    // The union 2, 1 of the first move, both leaving now.
    assert_eq!(p.replicas, n(&[3, 2, 1]));
    assert_eq!((p.adding_replicas.clone(), p.removing_replicas.clone()), (n(&[3]), n(&[2, 1])));
}

#[test]
fn invalid_requests_get_kafkas_refusals() {
    let (img, _) = image(1, &[1], &[1], &[]);
    let unknown = |r: Result<Option<MetadataRecord>, Refusal>| matches!(r, Err(Refusal::UnknownTopicOrPartition(_)));
    assert!(unknown(alter(&img, "nope", 0, Some(&[1]), true, None, false)));
    assert!(unknown(alter(&img, "t", 1, Some(&[1]), true, None, false)));
    assert!(unknown(alter(&img, "t", -1, None, true, None, false)));
    let invalid = |r: Result<Option<MetadataRecord>, Refusal>| match r {
        Err(Refusal::InvalidReplicaAssignment(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(invalid(alter(&img, "t", 0, Some(&[]), true, None, false)).contains("empty replica list"));
    assert!(invalid(alter(&img, "t", 0, Some(&[1, 9]), true, None, false))
        .contains("broker 9, but no such broker is registered"));
    assert!(invalid(alter(&img, "t", 0, Some(&[-1]), true, None, false)).contains("broker -1"));
    assert!(invalid(alter(&img, "t", 0, Some(&[2, 1, 2]), true, None, false)).contains("broker 2 more than once"));
    assert_eq!(alter(&img, "t", 0, None, true, None, false), Err(Refusal::NoReassignmentInProgress));
    assert!(matches!(
        alter(&img, "t", 0, Some(&[2, 3]), false, None, false),
        Err(Refusal::InvalidReplicationFactor(_))
    ));
    assert!(matches!(alter(&img, "t", 0, Some(&[2]), false, None, false), Ok(Some(_))), "the same factor is allowed");
}

#[test]
fn a_node_of_its_own_is_the_one_broker() {
    let mut img = Image::default();
    let id = Uuid::new_v4();
    img.apply(&MetadataRecord::Topic { name: "t".into(), id });
    let p = PartitionImage {
        leader: Some(NodeId(1)),
        replicas: n(&[1]),
        isr: n(&[1]),
        leader_epoch: LeaderEpoch(0),
        partition_epoch: 0,
        adding_replicas: vec![],
        removing_replicas: vec![],
    };
    img.apply(&p.to_record(id, 0));
    assert_eq!(alter(&img, "t", 0, Some(&[1]), true, Some(NodeId(1)), false), Ok(None), "nothing to move");
    assert!(matches!(
        alter(&img, "t", 0, Some(&[2]), true, Some(NodeId(1)), false),
        Err(Refusal::InvalidReplicaAssignment(m)) if m.contains("broker 2, but no such broker is registered")
    ));
}

#[test]
fn records_of_a_move_survive_a_snapshot_and_others_keep_their_bytes() {
    let (img, _) = image(1, &[1], &[1], &[]);
    let plain = serde_json::to_string(&part(&img).to_record(Uuid::nil(), 0)).expect("json");
    assert!(!plain.contains("adding_replicas"), "a partition not being moved writes the old format: {plain}");
    let img = applied(img.clone(), alter(&img, "t", 0, Some(&[2]), true, None, false).expect("accepted"));
    let mut rebuilt = Image::default();
    for r in img.to_records() {
        let line = serde_json::to_string(&r).expect("json");
        rebuilt.apply(&serde_json::from_str(&line).expect("parse"));
    }
    assert_eq!(part(&rebuilt), part(&img));
    assert!(part(&rebuilt).is_reassigning());
}
