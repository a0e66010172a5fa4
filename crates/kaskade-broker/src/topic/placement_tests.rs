//! Placement: one test per rule, then a property test of the invariants
//! over random clusters (racks, sizes, existing partitions).

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use kaskade_types::NodeId;
use proptest::prelude::*;

use super::{place, UsableBroker};

fn brokers(spec: &[(i32, Option<&str>)]) -> Vec<UsableBroker> {
    spec.iter().map(|(id, rack)| UsableBroker::new(*id, *rack)).collect()
}

fn ids(placed: &[Vec<NodeId>]) -> Vec<Vec<i32>> {
    placed.iter().map(|r| r.iter().map(|n| n.get()).collect()).collect()
}

fn rack_of(usable: &[UsableBroker], id: NodeId) -> Option<String> {
    usable.iter().find(|b| b.id == id).and_then(|b| b.rack.clone())
}

#[test]
fn without_racks_leaders_rotate_and_followers_are_the_next_brokers() {
    let usable = brokers(&[(3, None), (1, None), (2, None)]);
    let placed = place(&usable, &[], 3, 3, 0).expect("place");
    assert_eq!(ids(&placed), [vec![1, 2, 3], vec![2, 3, 1], vec![3, 1, 2]]);
    // The seed only picks where the rotation starts.
    let placed = place(&usable, &[], 3, 1, 1).expect("place");
    assert_eq!(ids(&placed), [vec![2], vec![3], vec![1]]);
}

#[test]
fn racks_are_interleaved_and_each_partition_spans_distinct_racks() {
    // Rack a holds 1 and 2, rack b 3 and 4, rack c 5 and 6: laid out
    // a b c a b c (1 3 5 2 4 6).
    let usable =
        brokers(&[(1, Some("a")), (2, Some("a")), (3, Some("b")), (4, Some("b")), (5, Some("c")), (6, Some("c"))]);
    let placed = place(&usable, &[], 6, 3, 0).expect("place");
    assert_eq!(ids(&placed)[..3], [vec![1, 3, 5], vec![3, 5, 2], vec![5, 2, 4]]);
    for replicas in &placed {
        let racks: BTreeSet<_> = replicas.iter().map(|b| rack_of(&usable, *b)).collect();
        assert_eq!(racks.len(), 3, "{replicas:?} spans every rack");
    }
    // Two racks, factor 2: never both replicas in one rack, even where
    // the next broker in id order is in the leader's rack.
    let usable =
        brokers(&[(1, Some("x")), (2, Some("x")), (3, Some("x")), (4, Some("y")), (5, Some("y")), (6, Some("y"))]);
    for replicas in place(&usable, &[], 12, 2, 7).expect("place") {
        assert_ne!(rack_of(&usable, replicas[0]), rack_of(&usable, replicas[1]), "{replicas:?}");
    }
}

#[test]
fn more_replicas_than_racks_uses_every_rack_then_fills_up() {
    let usable = brokers(&[(1, Some("a")), (2, Some("a")), (3, Some("a")), (4, Some("b"))]);
    for replicas in place(&usable, &[], 8, 3, 3).expect("place") {
        let racks: BTreeSet<_> = replicas.iter().map(|b| rack_of(&usable, *b)).collect();
        assert_eq!(racks.len(), 2, "{replicas:?} spans both racks");
        assert!(replicas.contains(&NodeId(4)), "the lone rack-b broker is in every partition: {replicas:?}");
    }
}

#[test]
fn brokers_without_a_rack_form_a_rack_of_their_own() {
    // KRaft's placer accepts a mix (the rackless group sorts first); only
    // ZooKeeper-era Kafka refused it.
    let usable = brokers(&[(1, None), (2, Some("a")), (3, Some("a"))]);
    let placed = place(&usable, &[], 3, 2, 0).expect("a mix is placed");
    assert_eq!(ids(&placed), [vec![1, 2], vec![2, 1], vec![3, 1]]);
    for replicas in &placed {
        assert!(replicas.contains(&NodeId(1)), "both groups in each partition: {replicas:?}");
    }
}

#[test]
fn leaders_are_balanced_and_followers_shift_every_round() {
    let usable = brokers(&[(1, None), (2, None), (3, None), (4, None)]);
    let placed = place(&usable, &[], 8, 2, 0).expect("place");
    let mut leads = BTreeMap::new();
    for r in &placed {
        *leads.entry(r[0]).or_insert(0) += 1;
    }
    assert!(leads.values().all(|&c| c == 2), "{leads:?}");
    // Round one pairs each leader with the next broker, round two with
    // the one after it.
    assert_eq!(ids(&placed)[0], vec![1, 2]);
    assert_eq!(ids(&placed)[4], vec![1, 3]);
}

#[test]
fn a_grown_topic_continues_after_its_last_leader() {
    let usable = brokers(&[(1, None), (2, None), (3, None)]);
    let first = place(&usable, &[], 2, 1, 0).expect("place");
    assert_eq!(ids(&first), [vec![1], vec![2]]);
    let more = place(&usable, &first, 4, 1, 0).expect("grow");
    assert_eq!(ids(&more), [vec![3], vec![1], vec![2], vec![3]]);
    // A last leader no longer usable: start from the seed instead.
    let gone = vec![vec![NodeId(9)]];
    assert_eq!(ids(&place(&usable, &gone, 1, 1, 2).expect("grow")), [vec![3]]);
}

#[test]
fn impossible_factors_are_invalid_replication_factor() {
    let usable = brokers(&[(1, Some("a")), (2, Some("b"))]);
    for (usable, rf) in [(&usable[..], 3), (&usable[..], 0), (&[][..], 1)] {
        let err = place(usable, &[], 1, rf, 0).expect_err("refused");
        assert_eq!(err.code, ResponseError::InvalidReplicationFactor, "{rf} on {usable:?}");
    }
}

fn cluster() -> impl Strategy<Value = Vec<UsableBroker>> {
    // Up to 9 brokers with distinct ids, each in one of up to 4 racks or
    // none.
    prop::collection::btree_map(0..50i32, prop::option::of(0..4u8), 1..10).prop_map(|m| {
        m.into_iter().map(|(id, rack)| UsableBroker { id: NodeId(id), rack: rack.map(|r| format!("r{r}")) }).collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn placements_keep_their_invariants(
        usable in cluster(),
        rf_pick in 1..10usize,
        partitions in 1..40usize,
        grown in 0..10usize,
        seed in any::<u64>(),
    ) {
        let rf = 1 + rf_pick % usable.len();
        let racks: BTreeSet<_> = usable.iter().map(|b| b.rack.clone()).collect();
        let existing = place(&usable, &[], grown, rf, seed).expect("valid factor");
        let placed = place(&usable, &existing, partitions, rf, seed).expect("valid factor");
        prop_assert_eq!(placed.len(), partitions);
        for replicas in &placed {
            prop_assert_eq!(replicas.len(), rf);
            let distinct: BTreeSet<_> = replicas.iter().collect();
            prop_assert_eq!(distinct.len(), rf, "a broker twice: {:?}", replicas);
            prop_assert!(replicas.iter().all(|r| usable.iter().any(|b| b.id == *r)), "unknown broker: {:?}", replicas);
            let spanned: BTreeSet<_> = replicas.iter().map(|b| rack_of(&usable, *b)).collect();
            prop_assert_eq!(spanned.len(), rf.min(racks.len()), "racks not spread: {:?}", replicas);
        }
        // Leaders balanced: over the new partitions, and over the whole
        // grown topic, no broker leads more than one partition more than
        // any other.
        for set in [&placed[..], &[existing.clone(), placed.clone()].concat()[..]] {
            let mut leads: BTreeMap<NodeId, usize> = usable.iter().map(|b| (b.id, 0)).collect();
            for r in set {
                *leads.entry(r[0]).or_insert(0) += 1;
            }
            let (lo, hi) = (leads.values().min().copied().unwrap_or(0), leads.values().max().copied().unwrap_or(0));
            prop_assert!(hi - lo <= 1, "leaders unbalanced: {:?}", leads);
        }
        // Deciding again gives the same answer.
        prop_assert_eq!(place(&usable, &existing, partitions, rf, seed).expect("again"), placed);
    }
}
