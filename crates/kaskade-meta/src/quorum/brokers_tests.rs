//! Broker registration, heartbeats, fencing and controlled shutdown
//! against an in-process three-controller quorum. Sessions run on a manual
//! clock shared by the controllers, so a session expires exactly when the
//! test moves time past it; every wait is bounded.

use std::sync::Arc;

use kaskade_types::{LeaderEpoch, ManualClock, NodeId};
use uuid::Uuid;

use super::frame;
use super::tests::{cluster, kill, leader, static_3, Node, Setup, WAIT};
use super::*;
use crate::{Image, MetadataLog, MetadataRecord, PartitionImage};

/// `broker.session.timeout.ms`'s default, which the controllers run with.
const SESSION_MS: i64 = 9_000;

fn register(id: i32, incarnation_id: Uuid) -> BrokerCall {
    BrokerCall::Register { node_id: id, incarnation_id, endpoints: vec![], rack: None, process: None }
}

/// Hands `call` to the active controller among `nodes`, as a broker's
/// BrokerRegistration or BrokerHeartbeat reaches it (kaskade-broker's
/// `controller_channel`), asking again while none is active, within `WAIT`.
async fn call_active(nodes: &[Option<Node>], call: BrokerCall) -> Result<BrokerAnswer, BrokerRefusal> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let l = leader(nodes).await;
        match nodes[l].as_ref().expect("the leader").log.handle_broker_call(call.clone()).await {
            Err(BrokerRefusal::NotController { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await
            }
            other => return other,
        }
    }
}

/// A heartbeat of broker `id` at the metadata offset node `from` applied.
async fn heartbeat(
    nodes: &[Option<Node>],
    from: usize,
    id: i32,
    incarnation_id: Uuid,
    want_shut_down: bool,
) -> Result<HeartbeatAnswer, BrokerRefusal> {
    let metadata_offset = nodes[from].as_ref().expect("live").log.committed().version.end_offset;
    let call =
        BrokerCall::Heartbeat { node_id: id, incarnation_id, metadata_offset, want_fence: false, want_shut_down };
    match call_active(nodes, call).await? {
        BrokerAnswer::Heartbeat(a) => Ok(a),
        other => panic!("a heartbeat answered {other:?}"),
    }
}

/// Heartbeats until the answer says unfenced (the node's image may lag the
/// registration a little), within `WAIT`.
async fn heartbeat_until_unfenced(nodes: &[Option<Node>], from: usize, id: i32, incarnation_id: Uuid) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let answer = heartbeat(nodes, from, id, incarnation_id, false).await.expect("heartbeat");
        if !answer.is_fenced {
            assert!(answer.is_caught_up && !answer.should_shut_down, "{answer:?}");
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "broker {id} still fenced after {WAIT:?}");
        let mut changes = nodes[from].as_ref().expect("live").log.subscribe();
        let _ = tokio::time::timeout(std::time::Duration::from_millis(100), changes.changed()).await;
    }
}

/// Waits until `node`'s image satisfies `ok`.
async fn image_until(node: &Node, what: &str, ok: impl Fn(&Image) -> bool) -> Arc<Image> {
    let mut changes = node.log.subscribe();
    let reached = async {
        loop {
            let image = node.log.committed().image;
            if ok(&image) {
                return image;
            }
            if changes.changed().await.is_err() {
                panic!("the quorum stopped while waiting for {what}");
            }
        }
    };
    tokio::time::timeout(WAIT, reached).await.unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
}

fn partition(image: &Image) -> PartitionImage {
    image.topic("t").expect("topic t").partitions[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn brokers_register_heartbeat_are_fenced_when_silent_and_come_back_and_shut_down_under_control() {
    let root = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(1_000_000));
    let setup = Setup { clock: Some(clock.clone()), ..static_3() };
    let (mut nodes, _) = cluster(root.path(), 3, &setup).await;
    let l = leader(&nodes).await;
    let node = |i: usize| nodes[i].as_ref().expect("live");

    // Each node registers its broker (followers through the leader) and is
    // fenced until its first heartbeat.
    let incarnations: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    for (i, inc) in incarnations.iter().enumerate() {
        let answer = call_active(&nodes, register(i as i32 + 1, *inc)).await;
        assert_eq!(answer, Ok(BrokerAnswer::Registered));
    }
    for (i, inc) in incarnations.iter().enumerate() {
        heartbeat_until_unfenced(&nodes, i, i as i32 + 1, *inc).await;
    }
    // Broker 2 leads an RF=1 partition; broker 3 an RF=3 one (ISR 3, 1, 2).
    let topic = Uuid::new_v4();
    let one = |leader: i32, replicas: Vec<i32>| PartitionImage {
        leader: Some(NodeId(leader)),
        isr: replicas.iter().copied().map(NodeId).collect(),
        replicas: replicas.into_iter().map(NodeId).collect(),
        leader_epoch: LeaderEpoch(0),
        partition_epoch: 0,
        adding_replicas: vec![],
        removing_replicas: vec![],
    };
    let records = vec![
        MetadataRecord::Topic { name: "t".into(), id: topic },
        one(2, vec![2]).to_record(topic, 0),
        one(3, vec![3, 1, 2]).to_record(topic, 1),
    ];
    let version = node(l).log.committed().version;
    node(l).log.append_async(version, records).await.expect("create t");

    // A second process with broker 2's id is refused while 2 heartbeats.
    let intruder = call_active(&nodes, register(2, Uuid::new_v4())).await;
    assert_eq!(intruder, Err(BrokerRefusal::DuplicateBrokerRegistration(2)));

    // 1 and 3 keep heartbeating, 2 goes silent past its session.
    clock.advance(SESSION_MS / 2);
    heartbeat(&nodes, 0, 1, incarnations[0], false).await.expect("1 beats");
    heartbeat(&nodes, 2, 3, incarnations[2], false).await.expect("3 beats");
    clock.advance(SESSION_MS / 2 + 1);
    let image = image_until(node(0), "broker 2 fenced", |img| !img.is_unfenced(NodeId(2))).await;
    let p = partition(&image);
    assert_eq!((p.leader, p.isr.clone()), (None, vec![NodeId(2)]), "RF=1: offline, its last ISR member kept");
    let p1 = &image.topic("t").expect("t").partitions[1];
    assert_eq!(p1.isr, vec![NodeId(3), NodeId(1)], "2 left the ISR of the partition it follows");
    assert!(image.is_unfenced(NodeId(1)) && image.is_unfenced(NodeId(3)), "the others heartbeated");

    // An old incarnation's heartbeat is stale once another registered; a
    // new process with id 2 registers now (the old session expired) and leads again.
    let second = Uuid::new_v4();
    assert_eq!(call_active(&nodes, register(2, second)).await, Ok(BrokerAnswer::Registered));
    assert_eq!(heartbeat(&nodes, 1, 2, incarnations[1], false).await, Err(BrokerRefusal::StaleBrokerEpoch));
    heartbeat_until_unfenced(&nodes, 1, 2, second).await;
    let image = image_until(node(1), "broker 2 leading again", |img| partition(img).leader == Some(NodeId(2))).await;
    assert_eq!(partition(&image).leader_epoch, LeaderEpoch(2), "one new leader epoch for none, one for 2");

    // Controlled shutdown of 3: its leadership moves to 1, it leaves the ISR, is fenced, may stop.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let answer = heartbeat(&nodes, 2, 3, incarnations[2], true).await.expect("shutdown heartbeat");
        if answer.should_shut_down {
            assert!(answer.is_fenced);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no controlled shutdown within {WAIT:?}");
    }
    let image = image_until(node(0), "3's leadership moved", |img| !img.is_unfenced(NodeId(3))).await;
    let p1 = &image.topic("t").expect("t").partitions[1];
    assert_eq!((p1.leader, p1.isr.clone()), (Some(NodeId(1)), vec![NodeId(1)]));

    // The active controller goes; the next one gives every broker a fresh
    // session, so the brokers that beat are not fenced for the gap.
    let killed = nodes[l].take().expect("leader");
    kill(killed).await;
    let l2 = leader(&nodes).await;
    clock.advance(SESSION_MS - 1);
    for (i, id, inc) in [(0usize, 1, incarnations[0]), (1, 2, second)] {
        if nodes[i].is_none() {
            continue;
        }
        let answer = heartbeat(&nodes, i, id, inc, false).await.expect("heartbeat after failover");
        assert!(!answer.is_fenced, "broker {id} fenced across the failover to {}", l2 + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retired_frames_close_their_connection_and_the_controller_keeps_answering() {
    use tokio::io::AsyncWriteExt;
    let root = tempfile::tempdir().expect("tempdir");
    let setup = Setup { static_voters: Some(std::collections::BTreeSet::from([1])), ..static_3() };
    let (nodes, voters) = cluster(root.path(), 1, &setup).await;
    leader(&nodes).await;
    let node = nodes[0].as_ref().expect("live");
    // Kind 6 carried brokers' calls before they became Kafka's
    // BrokerRegistration and BrokerHeartbeat, 5 forwarded proposals, 7
    // whole-image fetches, 8 an observer's status ask: now unknown kinds.
    for kind in [5u8, 6, 7, 8] {
        let mut conn = frame::connect(&voters[&NodeId(1)], node.log.hello()).await.expect("hello accepted");
        conn.write_all(&[0, 0, 0, 3, kind, b'{', b'}']).await.expect("sent");
        conn.flush().await.expect("flush");
        let closed = frame::read_frame(&mut conn).await.map(|f| f.is_none()).unwrap_or(true);
        assert!(closed, "kind {kind}: closed without an answer");
    }
    let incarnation = Uuid::new_v4();
    assert_eq!(call_active(&nodes, register(1, incarnation)).await, Ok(BrokerAnswer::Registered));
    // A heartbeat of an id that never registered is stale, not a crash.
    assert_eq!(heartbeat(&nodes, 0, 5, incarnation, false).await, Err(BrokerRefusal::StaleBrokerEpoch));
}
