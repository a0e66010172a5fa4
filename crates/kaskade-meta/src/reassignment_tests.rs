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
    let img = applied(img.clone(), alter(&img, "t", 0, Some(&[2, 3]), true, None).expect("accepted"));
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
    let img = applied(img.clone(), alter(&img, "t", 0, Some(&[2, 3]), true, None).expect("accepted"));
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
    let img = applied(img.clone(), alter(&img, "t", 0, Some(&[1, 3]), true, None).expect("accepted"));
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
    let img = applied(img.clone(), alter(&img, "t", 0, Some(&[3, 2]), true, None).expect("accepted"));
    let p = part(&img);
    assert!(!p.is_reassigning());
    assert_eq!((p.leader, p.replicas.clone(), p.isr.clone()), (Some(NodeId(3)), n(&[3, 2]), n(&[2, 3])));
    // The same replicas again: nothing to do.
    assert_eq!(alter(&img, "t", 0, Some(&[3, 2]), true, None), Ok(None));
}

#[test]
fn cancel_reverts_to_the_old_replicas_and_a_second_cancel_finds_none() {
    let (img, id) = image(1, &[1], &[1], &[]);
    let img = applied(img.clone(), alter(&img, "t", 0, Some(&[2, 3]), true, None).expect("accepted"));
    let img = isr_to(img, id, &[1, 2]);
    let img = applied(img.clone(), alter(&img, "t", 0, None, true, None).expect("cancelled"));
    let p = part(&img);
    assert!(!p.is_reassigning());
    assert_eq!((p.leader, p.replicas.clone(), p.isr.clone()), (Some(NodeId(1)), n(&[1]), n(&[1])));
    assert_eq!(alter(&img, "t", 0, None, true, None), Err(Refusal::NoReassignmentInProgress));
}

#[test]
fn cancel_that_would_need_an_unclean_election_is_refused() {
    // The ISR holds only an adding replica (the old one fell out).
    let (img, _) = image(1, &[1], &[1], &[]);
    let img = applied(img.clone(), alter(&img, "t", 0, Some(&[1, 2]), true, None).expect("accepted"));
    let p = part(&img);
    let r = p.changed_to(PartitionImage { leader: Some(NodeId(2)), isr: n(&[2]), ..p.clone() });
    let mut img = img;
    img.apply(&r.to_record(img.topic("t").expect("t").id, 0));
    match alter(&img, "t", 0, None, true, None) {
        Err(Refusal::InvalidReplicaAssignment(m)) => assert!(m.contains("unclean leader election"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_reassignment_to_a_fenced_broker_waits_until_it_catches_up() {
    let (img, id) = image(1, &[1], &[1], &[3]);
    let img = applied(img.clone(), alter(&img, "t", 0, Some(&[3]), true, None).expect("a fenced broker is registered"));
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
    let img = applied(img.clone(), alter(&img, "t", 0, Some(&[2]), true, None).expect("accepted"));
    let mut img = img;
    img.apply(&MetadataRecord::FenceBroker { node_id: 2 });
    let img = isr_to(img, id, &[1, 2]);
    let p = part(&img);
    assert_eq!((p.leader, p.replicas.clone(), p.isr.clone()), (None, n(&[2]), n(&[2])));
}

#[test]
fn a_new_target_during_a_move_starts_from_the_union() {
    let (img, _) = image(1, &[1], &[1], &[]);
    let img = applied(img.clone(), alter(&img, "t", 0, Some(&[2]), true, None).expect("accepted"));
    let img = applied(img.clone(), alter(&img, "t", 0, Some(&[3]), true, None).expect("accepted"));
    let p = part(&img);
    // The union 2, 1 of the first move, both leaving now.
    assert_eq!(p.replicas, n(&[3, 2, 1]));
    assert_eq!((p.adding_replicas.clone(), p.removing_replicas.clone()), (n(&[3]), n(&[2, 1])));
}

#[test]
fn invalid_requests_get_kafkas_refusals() {
    let (img, _) = image(1, &[1], &[1], &[]);
    let unknown = |r: Result<Option<MetadataRecord>, Refusal>| matches!(r, Err(Refusal::UnknownTopicOrPartition(_)));
    assert!(unknown(alter(&img, "nope", 0, Some(&[1]), true, None)));
    assert!(unknown(alter(&img, "t", 1, Some(&[1]), true, None)));
    assert!(unknown(alter(&img, "t", -1, None, true, None)));
    let invalid = |r: Result<Option<MetadataRecord>, Refusal>| match r {
        Err(Refusal::InvalidReplicaAssignment(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(invalid(alter(&img, "t", 0, Some(&[]), true, None)).contains("empty replica list"));
    assert!(
        invalid(alter(&img, "t", 0, Some(&[1, 9]), true, None)).contains("broker 9, but no such broker is registered")
    );
    assert!(invalid(alter(&img, "t", 0, Some(&[-1]), true, None)).contains("broker -1"));
    assert!(invalid(alter(&img, "t", 0, Some(&[2, 1, 2]), true, None)).contains("broker 2 more than once"));
    assert_eq!(alter(&img, "t", 0, None, true, None), Err(Refusal::NoReassignmentInProgress));
    assert!(matches!(alter(&img, "t", 0, Some(&[2, 3]), false, None), Err(Refusal::InvalidReplicationFactor(_))));
    assert!(matches!(alter(&img, "t", 0, Some(&[2]), false, None), Ok(Some(_))), "the same factor is allowed");
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
    assert_eq!(alter(&img, "t", 0, Some(&[1]), true, Some(NodeId(1))), Ok(None), "nothing to move");
    assert!(matches!(
        alter(&img, "t", 0, Some(&[2]), true, Some(NodeId(1))),
        Err(Refusal::InvalidReplicaAssignment(m)) if m.contains("broker 2, but no such broker is registered")
    ));
}

#[test]
fn records_of_a_move_survive_a_snapshot_and_others_keep_their_bytes() {
    let (img, _) = image(1, &[1], &[1], &[]);
    let plain = serde_json::to_string(&part(&img).to_record(Uuid::nil(), 0)).expect("json");
    assert!(!plain.contains("adding_replicas"), "a partition not being moved writes the old format: {plain}");
    let img = applied(img.clone(), alter(&img, "t", 0, Some(&[2]), true, None).expect("accepted"));
    let mut rebuilt = Image::default();
    for r in img.to_records() {
        let line = serde_json::to_string(&r).expect("json");
        rebuilt.apply(&serde_json::from_str(&line).expect("parse"));
    }
    assert_eq!(part(&rebuilt), part(&img));
    assert!(part(&rebuilt).is_reassigning());
}
