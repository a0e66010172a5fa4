//! The liveness machine per event, and a seeded simulation of brokers that
//! stop and resume heartbeating across controller failovers, with the
//! controller's preferred-leader rebalancing and (for odd seeds) unclean
//! elections.

use super::*;
use crate::election;
use crate::election_timer::ElectionTimer;
use crate::image::PartitionImage;
use crate::leader_election;
use crate::record::MetadataRecord;
use kaskade_types::LeaderEpoch;

const TIMEOUT: i64 = 9_000;

fn register(img: &mut Image, node: i32, incarnation: Uuid, fenced: bool) {
    img.apply(&MetadataRecord::RegisterBroker {
        node_id: node,
        incarnation_id: incarnation,
        endpoints: vec![],
        rack: None,
        fenced,
        process: None,
    });
}

fn hb(node: i32, incarnation: Uuid, metadata_offset: i64) -> Heartbeat {
    Heartbeat { node: NodeId(node), incarnation, metadata_offset, want_fence: false, want_shut_down: false }
}

/// Applies what the controller would write for `d`.
fn write(img: &mut Image, d: Decision) {
    write_with(img, d, false);
}

/// Applies what a controller whose `unclean.leader.election.enable` is
/// `unclean` would write for `d`.
fn write_with(img: &mut Image, d: Decision, unclean: bool) {
    let records = match d {
        Decision::Fence(n) | Decision::ShutdownOk(n) => election::fence(img, n, unclean),
        Decision::Unfence(n) => election::unfence(img, n, unclean),
    };
    for r in &records {
        img.apply(r);
    }
}

#[test]
fn a_registered_broker_is_unfenced_by_a_heartbeat_once_caught_up() {
    let mut img = Image::default();
    let inc = Uuid::new_v4();
    register(&mut img, 1, inc, true);
    let mut l = Liveness::new(TIMEOUT);
    l.registered(NodeId(1), inc, img.end_offset(), 0);
    assert_eq!(l.heartbeat(hb(1, inc, 0), 10, &img), Ok(None), "not caught up yet");
    assert!(!l.is_caught_up(NodeId(1), 0));
    assert_eq!(l.heartbeat(hb(1, inc, 1), 20, &img), Ok(Some(Decision::Unfence(NodeId(1)))));
    write(&mut img, Decision::Unfence(NodeId(1)));
    assert_eq!(l.heartbeat(hb(1, inc, 2), 30, &img), Ok(None), "already unfenced");
}

#[test]
fn a_heartbeat_of_another_incarnation_or_an_unknown_broker_is_stale() {
    let mut img = Image::default();
    let inc = Uuid::new_v4();
    register(&mut img, 1, inc, false);
    let mut l = Liveness::new(TIMEOUT);
    l.registered(NodeId(1), inc, 1, 0);
    assert_eq!(l.heartbeat(hb(1, Uuid::new_v4(), 1), 1, &img), Err(LivenessError::StaleIncarnation(NodeId(1))));
    assert_eq!(l.heartbeat(hb(2, inc, 1), 1, &img), Err(LivenessError::StaleIncarnation(NodeId(2))));
}

#[test]
fn a_tick_fences_only_expired_unfenced_sessions() {
    let mut img = Image::default();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    register(&mut img, 1, a, false);
    register(&mut img, 2, b, false);
    let mut l = Liveness::new(TIMEOUT);
    l.registered(NodeId(1), a, 1, 0);
    l.registered(NodeId(2), b, 2, 0);
    assert_eq!(l.heartbeat(hb(2, b, 2), 5_000, &img), Ok(None));
    assert!(l.tick(TIMEOUT - 1, &img).is_empty());
    assert_eq!(l.tick(TIMEOUT, &img), vec![Decision::Fence(NodeId(1))]);
    assert_eq!(l.next_deadline(), Some(TIMEOUT));
    write(&mut img, Decision::Fence(NodeId(1)));
    assert_eq!(l.tick(TIMEOUT + 1, &img), vec![], "fenced already: decided once it is in the image");
    assert_eq!(l.tick(5_000 + TIMEOUT, &img), vec![Decision::Fence(NodeId(2))]);
    // A fenced broker that heartbeats again comes back.
    assert_eq!(l.heartbeat(hb(1, a, 3), 20_000, &img), Ok(Some(Decision::Unfence(NodeId(1)))));
}

#[test]
fn a_decision_that_did_not_commit_is_decided_again() {
    let mut img = Image::default();
    let a = Uuid::new_v4();
    register(&mut img, 1, a, false);
    let mut l = Liveness::new(TIMEOUT);
    l.registered(NodeId(1), a, 1, 0);
    assert_eq!(l.tick(TIMEOUT, &img), vec![Decision::Fence(NodeId(1))]);
    assert_eq!(l.tick(TIMEOUT + 100, &img), vec![Decision::Fence(NodeId(1))], "the image still has it unfenced");
}

#[test]
fn a_controlled_shutdown_fences_and_then_says_shut_down() {
    let mut img = Image::default();
    let a = Uuid::new_v4();
    register(&mut img, 1, a, false);
    let mut l = Liveness::new(TIMEOUT);
    l.registered(NodeId(1), a, 1, 0);
    assert!(!l.should_shut_down(NodeId(1), &img));
    let ask = Heartbeat { want_shut_down: true, ..hb(1, a, 1) };
    assert_eq!(l.heartbeat(ask, 10, &img), Ok(Some(Decision::ShutdownOk(NodeId(1)))));
    assert!(!l.should_shut_down(NodeId(1), &img), "not before the fence is in the image");
    write(&mut img, Decision::ShutdownOk(NodeId(1)));
    assert!(l.should_shut_down(NodeId(1), &img));
    assert_eq!(l.heartbeat(ask, 20, &img), Ok(None));
    // Even without asking again, a shutting-down broker is never unfenced.
    assert_eq!(l.heartbeat(hb(1, a, 9), 30, &img), Ok(None));
}

#[test]
fn a_broker_asking_to_be_fenced_is_fenced_and_stays_fenced_until_it_stops_asking() {
    let mut img = Image::default();
    let a = Uuid::new_v4();
    register(&mut img, 1, a, false);
    let mut l = Liveness::new(TIMEOUT);
    l.registered(NodeId(1), a, 1, 0);
    let fence_me = Heartbeat { want_fence: true, ..hb(1, a, 5) };
    assert_eq!(l.heartbeat(fence_me, 10, &img), Ok(Some(Decision::Fence(NodeId(1)))));
    write(&mut img, Decision::Fence(NodeId(1)));
    assert_eq!(l.heartbeat(fence_me, 20, &img), Ok(None), "caught up, but it asks to stay fenced");
    assert_eq!(l.heartbeat(hb(1, a, 5), 30, &img), Ok(Some(Decision::Unfence(NodeId(1)))));
    // A shutdown wins over want_fence: the leaderships move, then it may stop.
    write(&mut img, Decision::Unfence(NodeId(1)));
    let both = Heartbeat { want_fence: true, want_shut_down: true, ..hb(1, a, 5) };
    assert_eq!(l.heartbeat(both, 40, &img), Ok(Some(Decision::ShutdownOk(NodeId(1)))));
}

#[test]
fn a_second_incarnation_is_refused_while_the_first_is_alive_and_unfenced() {
    let mut img = Image::default();
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    register(&mut img, 1, first, false);
    let mut l = Liveness::new(TIMEOUT);
    l.registered(NodeId(1), first, 1, 0);
    assert_eq!(l.check_registration(NodeId(1), first, 1, &img), Ok(()), "the same process registering again");
    assert_eq!(l.check_registration(NodeId(1), second, 1, &img), Err(LivenessError::DuplicateRegistration(NodeId(1))));
    assert_eq!(l.check_registration(NodeId(1), second, TIMEOUT, &img), Ok(()), "its session expired");
    write(&mut img, Decision::Fence(NodeId(1)));
    assert_eq!(l.check_registration(NodeId(1), second, 1, &img), Ok(()), "fenced");
    assert_eq!(l.check_registration(NodeId(2), second, 1, &img), Ok(()), "a new id");
}

#[test]
fn a_new_active_controller_gives_every_registered_broker_a_fresh_deadline() {
    let mut img = Image::default();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    register(&mut img, 1, a, false);
    register(&mut img, 2, b, true);
    let mut l = Liveness::new(TIMEOUT);
    l.registered(NodeId(1), Uuid::new_v4(), 1, 0);
    l.became_active_controller(50_000, &img);
    assert!(l.tick(50_000 + TIMEOUT - 1, &img).is_empty(), "no fence for heartbeats another controller had");
    assert_eq!(l.heartbeat(hb(1, a, 0), 50_001, &img), Ok(None), "the image's incarnation");
    assert_eq!(l.heartbeat(hb(2, b, 1), 50_001, &img), Ok(None), "fenced, and behind the new controller's image");
    assert_eq!(l.heartbeat(hb(2, b, 2), 50_001, &img), Ok(Some(Decision::Unfence(NodeId(2)))));
    assert_eq!(l.tick(50_000 + TIMEOUT, &img), vec![], "both heartbeated after the new deadlines were set");
}

/// A seeded run: three brokers that each heartbeat every second while
/// "up", go silent for random stretches, and a controller that fails over
/// at random. Invariants after every step: a broker that heartbeated less
/// than a session ago is unfenced whenever it was caught up; one silent for
/// more than a session (plus the tick period) is fenced; every leader is an
/// unfenced ISR member and no ISR is empty; a partition without a leader
/// has no unfenced ISR member (with unclean elections: no unfenced replica
/// at all). Followers rejoin ISRs at random (the leader's AlterPartition);
/// after every rebalancing run (every 5 s of imbalance) each partition whose
/// preferred replica may lead is led by it.
#[test]
fn seeded_simulation_fences_exactly_the_silent_brokers() {
    let moved: usize = (0..50u64).map(simulate).sum();
    assert!(moved > 0, "rebalancing never moved a leader back: the simulation checks nothing of it");
}

/// A leader's AlterPartition, modelled: every live replica of a led
/// partition is back in its ISR (it caught up).
fn catch_up(img: &mut Image, topic: Uuid) {
    let changes: Vec<MetadataRecord> = img
        .topic("t")
        .expect("topic")
        .partitions
        .iter()
        .enumerate()
        .filter(|(_, p)| p.leader.is_some())
        .filter_map(|(i, p)| {
            let mut isr = p.isr.clone();
            isr.extend(p.replicas.iter().copied().filter(|r| !p.isr.contains(r) && img.is_unfenced(*r)));
            (isr != p.isr).then(|| p.change_record(topic, i as i32, p.leader, isr))
        })
        .collect();
    for r in &changes {
        img.apply(r);
    }
}

/// One seeded run; how many leaders rebalancing moved back.
fn simulate(seed: u64) -> usize {
    let unclean = seed % 2 == 1;
    let mut timer = ElectionTimer::new(Some(5_000), TIMEOUT);
    let mut moved = 0;
    let mut rng = kaskade_types::sim::SimRng::new(seed);
    let mut img = Image::default();
    let incarnations: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    for (i, inc) in incarnations.iter().enumerate() {
        register(&mut img, i as i32 + 1, *inc, false);
    }
    let topic = Uuid::new_v4();
    img.apply(&MetadataRecord::Topic { name: "t".into(), id: topic });
    for p in 0..6 {
        let replicas: Vec<NodeId> = (0..(p % 3 + 1)).map(|r| NodeId((p + r) % 3 + 1)).collect();
        let part = PartitionImage {
            leader: Some(replicas[0]),
            isr: replicas.clone(),
            replicas,
            leader_epoch: LeaderEpoch(0),
            partition_epoch: 0,
            adding_replicas: vec![],
            removing_replicas: vec![],
        };
        img.apply(&part.to_record(topic, p));
    }
    let mut l = Liveness::new(TIMEOUT);
    l.became_active_controller(0, &img);
    // The model: when each broker's session ends, and what it was last step.
    let mut deadline = [TIMEOUT; 3];
    let mut was_unfenced = [true; 3];
    let mut up = [true; 3];
    const STEP: i64 = 100;
    for step in 1..3_000i64 {
        let now = step * STEP;
        if rng.below(2_000) == 0 {
            l.became_active_controller(now, &img);
            deadline = [now + TIMEOUT; 3];
        }
        let mut beat = [false; 3];
        for b in 0..3 {
            if rng.below(300) == 0 {
                up[b] = !up[b];
            }
            if up[b] && step % 10 == b as i64 {
                let h = hb(b as i32 + 1, incarnations[b], img.end_offset());
                if let Some(d) = l.heartbeat(h, now, &img).expect("registered") {
                    write_with(&mut img, d, unclean);
                }
                beat[b] = true;
                deadline[b] = now + TIMEOUT;
            }
        }
        for d in l.tick(now, &img) {
            write_with(&mut img, d, unclean);
        }
        if rng.below(20) == 0 {
            catch_up(&mut img, topic);
        }
        if timer.step(now, leader_election::facts(&img, unclean)).rebalance {
            let run = leader_election::rebalance(&img, leader_election::MAX_ELECTIONS_PER_RUN);
            moved += run.records.len();
            for r in &run.records {
                img.apply(r);
            }
            timer.rebalanced(run.capped);
            for p in &img.topic("t").expect("topic").partitions {
                let preferred = p.replicas[0];
                if p.isr.contains(&preferred) && img.is_unfenced(preferred) {
                    assert_eq!(p.leader, Some(preferred), "seed {seed} at {now}: not rebalanced {p:?}");
                }
            }
        }
        for b in 0..3 {
            let node = NodeId(b as i32 + 1);
            let unfenced = img.is_unfenced(node);
            if beat[b] {
                assert!(unfenced, "seed {seed} at {now}: broker {node} heartbeated and was caught up");
            } else if now >= deadline[b] {
                assert!(!unfenced, "seed {seed} at {now}: broker {node}'s session ended at {}", deadline[b]);
            } else {
                assert_eq!(unfenced, was_unfenced[b], "seed {seed} at {now}: broker {node} changed without cause");
            }
            was_unfenced[b] = unfenced;
        }
        for p in &img.topic("t").expect("topic").partitions {
            assert!(!p.isr.is_empty(), "seed {seed}: an empty ISR");
            if let Some(leader) = p.leader {
                assert!(p.isr.contains(&leader) && img.is_unfenced(leader), "seed {seed}: bad leader {p:?}");
            } else if unclean {
                let live = p.replicas.iter().any(|r| img.is_unfenced(*r));
                assert!(!live, "seed {seed} at {now}: offline with a live replica, unclean allowed {p:?}");
            } else {
                let live = p.isr.iter().any(|r| img.is_unfenced(*r));
                assert!(!live, "seed {seed} at {now}: offline with a live ISR member {p:?}");
            }
        }
    }
    moved
}
