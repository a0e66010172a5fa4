//! Each election case of KRaft's ReplicationControlManager and
//! PartitionChangeBuilder, on small images.

use super::*;
use crate::election::UNCLEAN_LEADER_ELECTION_ENABLE;
use kaskade_types::LeaderEpoch;

use crate::test_image::{cluster, n};

/// Brokers 1..=3 registered, `fenced` of them fenced; topic "t" with these
/// (leader, replicas, isr) partitions (leader -1: none).
fn image(fenced: &[i32], partitions: &[(i32, &[i32], &[i32])]) -> Image {
    cluster(3, fenced, (LeaderEpoch(5), 9), partitions).0
}

fn apply(mut img: Image, records: &[MetadataRecord]) -> Image {
    for r in records {
        img.apply(r);
    }
    img
}

fn partition(img: &Image, i: usize) -> PartitionImage {
    img.topic("t").expect("topic").partitions[i].clone()
}

fn asked(topic: &str, partitions: &[i32]) -> RequestedPartitions {
    RequestedPartitions { topic: topic.to_string(), partitions: partitions.to_vec() }
}

/// The outcomes of a topic's partitions, as (partition, outcome).
fn outcomes(t: &TopicElections) -> Vec<(i32, Result<(), ElectionRefusal>)> {
    t.partitions.iter().map(|p| (p.partition, p.outcome.clone())).collect()
}

fn unclean(partition: i32, leader: i32) -> UncleanElection {
    UncleanElection { partition: TopicPartition::new("t", partition), leader: NodeId(leader) }
}

fn one(img: &Image, i: i32, kind: ElectionKind) -> (ElectLeaders, Result<(), ElectionRefusal>) {
    let out = elect_leaders(img, Some(&[asked("t", &[i])]), kind);
    let outcome = out.results[0].partitions[0].outcome.clone();
    (out, outcome)
}

#[test]
fn preferred_moves_leadership_to_the_first_replica_when_it_is_in_the_isr_and_unfenced() {
    let img = image(&[], &[(2, &[1, 2, 3], &[1, 2, 3])]);
    let (out, outcome) = one(&img, 0, ElectionKind::Preferred);
    assert_eq!(outcome, Ok(()));
    assert!(out.unclean.is_empty());
    let img = apply(img, &out.records);
    let p = partition(&img, 0);
    assert_eq!((p.leader, p.isr.clone()), (Some(NodeId(1)), n(&[1, 2, 3])), "the ISR is kept");
    assert_eq!((p.leader_epoch, p.partition_epoch), (LeaderEpoch(6), 10));
}

#[test]
fn preferred_is_not_needed_when_the_preferred_replica_leads() {
    let img = image(&[], &[(1, &[1, 2], &[1, 2])]);
    let (out, outcome) = one(&img, 0, ElectionKind::Preferred);
    assert_eq!(outcome, Err(ElectionRefusal::NotNeeded));
    assert!(out.records.is_empty());
}

#[test]
fn preferred_is_not_available_when_the_preferred_replica_is_fenced_or_out_of_sync() {
    let fenced = image(&[1], &[(2, &[1, 2], &[1, 2])]);
    assert_eq!(one(&fenced, 0, ElectionKind::Preferred).1, Err(ElectionRefusal::PreferredLeaderNotAvailable));
    let out_of_sync = image(&[], &[(2, &[1, 2], &[2])]);
    let (out, outcome) = one(&out_of_sync, 0, ElectionKind::Preferred);
    assert_eq!(outcome, Err(ElectionRefusal::PreferredLeaderNotAvailable));
    assert!(out.records.is_empty(), "the current leader stays");
}

#[test]
fn preferred_on_a_leaderless_partition_elects_another_eligible_replica_as_kraft_does() {
    // 1 (preferred) is fenced; 3 is in the ISR and live.
    let img = image(&[1], &[(-1, &[1, 2, 3], &[1, 3])]);
    let (out, outcome) = one(&img, 0, ElectionKind::Preferred);
    assert_eq!(outcome, Ok(()));
    assert_eq!(partition(&apply(img, &out.records), 0).leader, Some(NodeId(3)));
    let none = image(&[1, 3], &[(-1, &[1, 2, 3], &[1, 3])]);
    assert_eq!(one(&none, 0, ElectionKind::Preferred).1, Err(ElectionRefusal::PreferredLeaderNotAvailable));
}

#[test]
fn unclean_is_not_needed_while_the_partition_has_a_leader() {
    let img = image(&[], &[(2, &[1, 2], &[2])]);
    assert_eq!(one(&img, 0, ElectionKind::Unclean).1, Err(ElectionRefusal::NotNeeded));
}

#[test]
fn unclean_prefers_a_live_isr_member_and_keeps_the_isr() {
    let img = image(&[1], &[(-1, &[1, 2, 3], &[1, 3])]);
    let (out, outcome) = one(&img, 0, ElectionKind::Unclean);
    assert_eq!(outcome, Ok(()));
    assert!(out.unclean.is_empty(), "3 is in the ISR: a clean election");
    let p = partition(&apply(img, &out.records), 0);
    assert_eq!((p.leader, p.isr.clone()), (Some(NodeId(3)), n(&[1, 3])));
}

#[test]
fn unclean_elects_a_live_out_of_sync_replica_alone_and_says_so() {
    let img = image(&[1], &[(-1, &[1, 2, 3], &[1])]);
    let before = img.clone();
    let (out, outcome) = one(&img, 0, ElectionKind::Unclean);
    assert_eq!(outcome, Ok(()));
    assert_eq!(out.unclean, vec![unclean(0, 2)]);
    assert_eq!(unclean_in(&before, &out.records), out.unclean, "the batch shows what was unclean");
    let p = partition(&apply(img, &out.records), 0);
    assert_eq!((p.leader, p.isr.clone(), p.leader_epoch), (Some(NodeId(2)), n(&[2]), LeaderEpoch(6)));
}

#[test]
fn unclean_with_no_live_replica_has_no_eligible_leader() {
    let img = image(&[1, 2, 3], &[(-1, &[1, 2, 3], &[1])]);
    let (out, outcome) = one(&img, 0, ElectionKind::Unclean);
    assert_eq!(outcome, Err(ElectionRefusal::EligibleLeadersNotAvailable));
    assert!(out.records.is_empty());
}

#[test]
fn unknown_topics_and_partitions_get_kafkas_messages() {
    let img = image(&[], &[(1, &[1], &[1])]);
    let out = elect_leaders(&img, Some(&[asked("t", &[1, -1]), asked("nope", &[0])]), ElectionKind::Preferred);
    let unknown = |m: &str| Err(ElectionRefusal::UnknownTopicOrPartition(m.to_string()));
    assert_eq!(
        outcomes(&out.results[0]),
        vec![(1, unknown("No such partition as t-1")), (-1, unknown("No such partition as t--1"))]
    );
    assert_eq!(out.results[1].topic, "nope");
    assert_eq!(outcomes(&out.results[1]), vec![(0, unknown("No such topic as nope"))]);
}

#[test]
fn all_partitions_list_every_topic_but_leave_out_those_that_needed_no_election() {
    let img = image(&[3], &[(1, &[1, 2], &[1, 2]), (1, &[2, 1], &[1, 2]), (1, &[3, 1], &[1, 3])]);
    let out = elect_leaders(&img, None, ElectionKind::Preferred);
    assert_eq!(out.results.len(), 1);
    assert_eq!(
        outcomes(&out.results[0]),
        vec![(1, Ok(())), (2, Err(ElectionRefusal::PreferredLeaderNotAvailable))],
        "partition 0 already has its preferred leader"
    );
    assert_eq!(out.records.len(), 1);
}

#[test]
fn a_partition_named_twice_is_elected_once() {
    let img = image(&[], &[(2, &[1, 2], &[1, 2])]);
    let out = elect_leaders(&img, Some(&[asked("t", &[0, 0])]), ElectionKind::Preferred);
    assert_eq!(outcomes(&out.results[0]), vec![(0, Ok(())), (0, Err(ElectionRefusal::NotNeeded))]);
    assert_eq!(out.records.len(), 1);
}

#[test]
fn rebalancing_moves_back_every_preferred_replica_that_may_lead_up_to_the_cap() {
    let img = image(
        &[3],
        &[
            (2, &[1, 2], &[1, 2]),
            (1, &[1, 2], &[1, 2]),
            (1, &[3, 1], &[1, 3]),
            (1, &[2, 1], &[1]),
            (2, &[1, 2], &[1, 2]),
        ],
    );
    assert!(is_imbalanced(&img));
    let ElectionRun { records, unclean, capped } = rebalance(&img, MAX_ELECTIONS_PER_RUN);
    assert!(!capped && unclean.is_empty());
    let after = apply(img.clone(), &records);
    let leaders: Vec<_> = (0..5).map(|i| partition(&after, i).leader).collect();
    assert_eq!(
        leaders,
        vec![Some(NodeId(1)), Some(NodeId(1)), Some(NodeId(1)), Some(NodeId(1)), Some(NodeId(1))],
        "3 is fenced and 2 is out of sync: those two stay on 1"
    );
    assert_eq!(records.len(), 2);
    assert!(is_imbalanced(&after), "two partitions still wait for their preferred replica");

    let first = rebalance(&img, 1);
    assert!(first.capped);
    assert_eq!(first.records.len(), 1);
}

#[test]
fn a_balanced_image_is_not_imbalanced_and_a_leaderless_partition_is() {
    let img = image(&[], &[(1, &[1, 2], &[1, 2])]);
    assert!(!is_imbalanced(&img));
    assert!(rebalance(&img, MAX_ELECTIONS_PER_RUN).records.is_empty());
    assert!(is_imbalanced(&image(&[1], &[(-1, &[1, 2], &[1])])));
}

#[test]
fn the_unclean_check_elects_only_where_the_topic_allows_it() {
    let img = image(&[1], &[(-1, &[1, 2], &[1]), (2, &[1, 2], &[2])]);
    let leaderless = |img: &Image, unclean_default| {
        let f = facts(img, unclean_default);
        (f.leaderless, f.leaderless_unclean)
    };
    assert_eq!(leaderless(&img, false), (1, 0));
    assert!(facts(&img, false).imbalanced, "a leaderless partition is imbalanced");
    assert_eq!(unclean_elections(&img, false, MAX_ELECTIONS_PER_RUN), ElectionRun::default(), "not allowed");

    assert_eq!(leaderless(&img, true), (1, 1), "the static default allows it");
    let id = img.topic("t").expect("topic").id;
    let allowed = apply(
        img,
        &[MetadataRecord::TopicConfig {
            topic_id: id,
            name: UNCLEAN_LEADER_ELECTION_ENABLE.into(),
            value: Some("true".into()),
        }],
    );
    assert_eq!(leaderless(&allowed, false), (1, 1));
    let run = unclean_elections(&allowed, false, MAX_ELECTIONS_PER_RUN);
    assert_eq!(run.unclean, vec![unclean(0, 2)]);
    assert!(!run.capped);
    let after = apply(allowed, &run.records);
    assert_eq!((partition(&after, 0).leader, partition(&after, 0).isr), (Some(NodeId(2)), n(&[2])));
    assert_eq!(leaderless(&after, false), (0, 0));
}

#[test]
fn election_types_on_the_wire() {
    assert_eq!(ElectionKind::from_wire(0), Some(ElectionKind::Preferred));
    assert_eq!(ElectionKind::from_wire(1), Some(ElectionKind::Unclean));
    assert_eq!(ElectionKind::from_wire(2), None);
    assert_eq!(ElectionKind::from_wire(-1), None);
}

#[test]
fn each_committed_unclean_election_counts_once() {
    let counter = UncleanElections::new();
    assert_eq!(counter.total(), 0);
    let img = image(&[1], &[(-1, &[1, 2], &[1]), (-1, &[1, 3], &[1]), (3, &[1, 3], &[3])]);
    let run = unclean_elections(&img, true, MAX_ELECTIONS_PER_RUN);
    assert_eq!(run.unclean, vec![unclean(0, 2), unclean(1, 3)]);
    for election in &run.unclean {
        election.warn_into(&counter);
    }
    assert_eq!(counter.total(), 2, "one per partition elected uncleanly");
    // A clean election (a live ISR member) is not counted: nothing to warn.
    let clean = image(&[], &[(-1, &[1, 2], &[2])]);
    assert_eq!(unclean_elections(&clean, true, MAX_ELECTIONS_PER_RUN).unclean, vec![]);
    // The process-wide counter is the one `warn` adds to.
    let before = UNCLEAN_ELECTIONS.total();
    run.unclean[0].warn();
    assert!(UNCLEAN_ELECTIONS.total() > before);
}
