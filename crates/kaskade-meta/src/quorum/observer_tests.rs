//! An observer (a broker-only node's metadata log) against in-process
//! controllers on loopback ports: it fetches the committed log with Kafka's
//! Fetch, sees the active controller's changes applied, appends nothing
//! itself, registers a broker, follows a failover, loads a snapshot in
//! chunks with FetchSnapshot; an observer of another cluster or a bad fetch
//! gets Kafka's error or a closed connection. Every wait is bounded.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

use super::super::tests::{cluster, kill, leader, static_3, Setup, WAIT};
use super::*;
use crate::quorum::brokers::{BrokerAnswer, BrokerCall};
use crate::quorum::frame::{self, RpcKind};

fn observer(node_id: i32, cluster_id: &str, controllers: &BTreeMap<NodeId, String>) -> ObserverMetadataLog {
    ObserverMetadataLog::start(ObserverConfig {
        node_id: NodeId(node_id),
        cluster_id: cluster_id.into(),
        controllers: controllers.clone(),
        bootstrap_servers: Vec::new(),
        append_timeout: WAIT,
    })
}

/// Creates topic `name` through `log`'s sync API, from a blocking thread.
async fn create_topic<L: MetadataLog + Clone + 'static>(log: &L, name: &str) -> Result<(), MetaError> {
    let log = log.clone();
    let name = name.to_string();
    tokio::task::spawn_blocking(move || {
        crate::update(&log, |img| {
            if img.topic(&name).is_some() {
                return Ok::<_, MetaError>((vec![], ()));
            }
            Ok((vec![MetadataRecord::Topic { name: name.clone(), id: Uuid::new_v4() }], ()))
        })
    })
    .await
    .expect("join")
}

/// Creates topic `name` through whichever controller leads (only the leader
/// appends; under load the leadership may move between asking and
/// proposing, then the next leader is asked), within [`WAIT`].
async fn create_on_leader(nodes: &[Option<super::super::tests::Node>], name: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let i = leader(nodes).await;
        match create_topic(&nodes[i].as_ref().expect("leader").log, name).await {
            Ok(()) => return,
            Err(MetaError::NotLeader { .. }) if tokio::time::Instant::now() < deadline => continue,
            Err(e) => panic!("{name} not created: {e:?}"),
        }
    }
}

/// Waits until `log`'s image has topic `name`.
async fn sees<L: MetadataLog>(log: &L, name: &str) {
    let mut changes = log.subscribe();
    let deadline = tokio::time::Instant::now() + WAIT;
    while log.committed().image.topic(name).is_none() {
        let changed = tokio::time::timeout_at(deadline, changes.changed()).await;
        assert!(changed.is_ok(), "{name} not seen within {WAIT:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_observer_follows_registers_and_survives_a_failover() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut nodes, voters) = cluster(root.path(), 3, &static_3()).await;
    let first = leader(&nodes).await;
    let obs = observer(10, "test-cluster", &voters);
    assert!(obs.wait_until_current(WAIT).await.expect("current"), "an image and a leader within {WAIT:?}");
    assert_eq!(obs.leader(), Some(NodeId(first as i32 + 1)));
    // DescribeQuorum's view, asked of the leader.
    let status = obs.status(WAIT).await.expect("the leader's status");
    assert_eq!(status.leader_id, first as i32 + 1);
    assert_eq!(status.voters.iter().map(|v| v.replica_id).collect::<Vec<_>>(), [1, 2, 3]);

    // A change made on the active controller reaches the observer.
    create_on_leader(&nodes, "from-controller").await;
    sees(&obs, "from-controller").await;
    // Deciding on an old version is refused as on any metadata log (an
    // observer appends nothing: its debug build asserts no records come).
    let old = crate::MetadataVersion::default();
    let stale = obs.append_async(old, Vec::new()).await;
    assert!(matches!(stale, Err(MetaError::Stale { .. })), "{stale:?}");

    // A broker registers with the active controller (its BrokerRegistration
    // goes there); the observer sees the registration.
    let call = BrokerCall::Register {
        node_id: 10,
        incarnation_id: Uuid::new_v4(),
        endpoints: vec![],
        rack: None,
        process: None,
    };
    let leader_log = &nodes[first].as_ref().expect("leader").log;
    assert_eq!(leader_log.handle_broker_call(call).await, Ok(BrokerAnswer::Registered));
    let mut changes = obs.subscribe();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !obs.committed().image.brokers().contains_key(&kaskade_types::NodeId(10)) {
        assert!(tokio::time::timeout_at(deadline, changes.changed()).await.is_ok(), "registration not seen");
    }

    // The leader lists the observer (and no voter) among DescribeQuorum's
    // observers, once caught up at the high watermark.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let status = obs.status(WAIT).await.expect("the leader's status");
        let ids: Vec<i32> = status.observers.iter().map(|o| o.replica_id).collect();
        assert!(ids.iter().all(|id| *id == 10), "only the observer is listed: {status:?}");
        let caught_up = status.observers.iter().any(|o| {
            o.log_end_offset == status.high_watermark && o.last_fetch_timestamp > 0 && o.last_caught_up_timestamp > 0
        });
        if caught_up {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "observer 10 not listed caught up: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The active controller goes: the observer finds the new one and
    // follows its changes.
    kill(nodes[first].take().expect("leader")).await;
    let second = leader(&nodes).await;
    create_on_leader(&nodes, "after-failover").await;
    sees(&obs, "after-failover").await;
    let mut named = obs.inner.leader.subscribe();
    let want = Some(NodeId(second as i32 + 1));
    tokio::time::timeout(WAIT, named.wait_for(|l| *l == want)).await.expect("the new leader named").expect("watch");
    obs.shutdown();
    for n in nodes.into_iter().flatten() {
        kill(n).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_of_another_cluster_and_bad_fetches_get_kafkas_errors_or_a_closed_connection() {
    let root = tempfile::tempdir().expect("tempdir");
    let setup = Setup { static_voters: Some(BTreeSet::from([1])), ..static_3() };
    let (nodes, voters) = cluster(root.path(), 1, &setup).await;
    leader(&nodes).await;
    let addr = voters[&NodeId(1)].clone();
    let stranger = observer(10, "another-cluster", &voters);
    assert!(!stranger.wait_until_current(Duration::from_secs(2)).await.expect("wait"), "refused by the controller");
    assert_eq!(stranger.committed().version, crate::MetadataVersion::default());
    stranger.shutdown();

    // Kafka's answers, as KafkaRaftClient gives them.
    let wait = Duration::from_millis(100);
    let mut other = MetadataConn::connect(&addr, "another-cluster", 10).await.expect("connect");
    let (_, outcome) = other.fetch(0, 0, 0, wait).await.expect("answered");
    assert!(matches!(outcome, FetchOutcome::Refused(104)), "INCONSISTENT_CLUSTER_ID: {outcome:?}");
    let mut conn = MetadataConn::connect(&addr, "test-cluster", 10).await.expect("connect");
    let (info, outcome) = conn.fetch(0, 0, 0, wait).await.expect("answered");
    assert!(matches!(outcome, FetchOutcome::Refused(74)), "FENCED_LEADER_EPOCH: {outcome:?}");
    let (leader_id, epoch) = info.leader.expect("the leader named");
    assert_eq!(leader_id, 1);
    assert_eq!(info.endpoints, vec![(1, addr.clone())], "the leader's endpoint");
    let (_, outcome) = conn.fetch(epoch + 1, 0, 0, wait).await.expect("answered");
    assert!(matches!(outcome, FetchOutcome::Refused(75)), "UNKNOWN_LEADER_EPOCH: {outcome:?}");
    let (_, outcome) = conn.fetch(epoch, 3, epoch + 1, wait).await.expect("answered");
    assert!(matches!(outcome, FetchOutcome::Refused(42)), "INVALID_REQUEST: {outcome:?}");
    let (_, outcome) = conn.fetch(epoch, 0, 0, wait).await.expect("answered");
    match outcome {
        FetchOutcome::Records { high_watermark, entries } => {
            assert!(high_watermark > 0 && !entries.is_empty(), "{high_watermark} {entries:?}");
            assert_eq!(entries[0].0, 0, "offsets are Raft indexes, from 0");
            assert!(entries.iter().all(|(o, _, _)| *o < high_watermark), "only committed entries");
        }
        other => panic!("records expected: {other:?}"),
    }
    let missing = SnapshotId { end_offset: 999, epoch };
    let (_, chunk) = conn.fetch_snapshot(epoch, missing, 0).await.expect("answered");
    assert_eq!(chunk.error_code, 98, "SNAPSHOT_NOT_FOUND");

    // Malformed: a Fetch whose body is garbage, a version not served, and
    // the retired kind 7 after a hello each close the connection.
    for raw in
        [&[0u8, 0, 0, 10, 0, 1, 0, 17, 0, 0, 0, 1, 0xff, 0xff][..], &[0u8, 0, 0, 10, 0, 1, 0, 4, 0, 0, 0, 1, 0, 0][..]]
    {
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        s.write_all(raw).await.expect("write");
        let mut answer = Vec::new();
        tokio::time::timeout(WAIT, s.read_to_end(&mut answer)).await.expect("closed in time").ok();
        assert!(answer.is_empty(), "no answer to {raw:?}: {answer:?}");
    }
    let mut s = TcpStream::connect(&addr).await.expect("connect");
    let hello = br#"{"cluster_id":"test-cluster","static_voters":[1]}"#;
    frame::write_frame(&mut s, RpcKind::Hello, hello).await.expect("hello");
    s.write_all(&[0, 0, 0, 3, 7, b'{', b'}']).await.expect("kind 7");
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut answer)).await.expect("closed in time").ok();
    let mut rest = &answer[..];
    let welcome = frame::read_frame(&mut rest).await.expect("a frame").expect("the hello's welcome");
    assert_eq!(welcome.0, RpcKind::Response);
    assert!(rest.is_empty(), "nothing after the welcome: {answer:?}");

    // The controller keeps serving observers of its own cluster.
    let ok = observer(11, "test-cluster", &voters);
    assert!(ok.wait_until_current(WAIT).await.expect("wait"));
    ok.shutdown();
    for n in nodes.into_iter().flatten() {
        kill(n).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_behind_the_log_start_loads_the_snapshot_in_chunks_then_fetches() {
    let root = tempfile::tempdir().expect("tempdir");
    let setup = Setup { static_voters: Some(BTreeSet::from([1])), ..static_3() };
    let (nodes, voters) = cluster(root.path(), 1, &setup).await;
    leader(&nodes).await;
    let log = nodes[0].as_ref().expect("node").log.clone();
    // Enough topics for a snapshot of more than one chunk.
    let records: Vec<MetadataRecord> = (0..15_000)
        .map(|i| MetadataRecord::Topic { name: format!("topic-with-a-longish-name-{i:05}"), id: Uuid::new_v4() })
        .collect();
    let based_on = log.committed().version;
    log.append_async(based_on, records).await.expect("appended");
    log.snapshot_async().await.expect("snapshot");
    // The snapshot purged every entry it covers (the tests keep none).
    let deadline = tokio::time::Instant::now() + WAIT;
    while log.log_reader.log_start() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the log was not purged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (id, bytes) = log.shared.snapshot_bytes().expect("a snapshot");
    assert!(bytes.len() > crate::quorum::metadata_client::SNAPSHOT_CHUNK_BYTES as usize, "{} bytes", bytes.len());

    let obs = observer(10, "test-cluster", &voters);
    assert!(obs.wait_until_current(WAIT).await.expect("current"));
    assert!(obs.committed().image.topic("topic-with-a-longish-name-14999").is_some(), "from the snapshot");
    assert!(obs.inner.follower.lock().next_fetch().0 >= id.end_offset);
    // Fetch goes on after the snapshot.
    create_topic(&log, "after-the-snapshot").await.expect("create");
    sees(&obs, "after-the-snapshot").await;
    assert_eq!(obs.committed().version, log.committed().version, "the same version as the controller");
    assert_eq!(obs.controllers(), voters, "the snapshot's membership names the controllers");
    obs.shutdown();
    for n in nodes.into_iter().flatten() {
        kill(n).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_reachable_controller_an_observer_refuses_within_its_bounds() {
    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    let obs = ObserverMetadataLog::start(ObserverConfig {
        node_id: NodeId(10),
        cluster_id: "test-cluster".into(),
        controllers: BTreeMap::from([(NodeId(1), closed)]),
        bootstrap_servers: Vec::new(),
        append_timeout: Duration::from_millis(500),
    });
    assert!(!obs.wait_until_current(Duration::from_millis(300)).await.expect("wait"));
    let status = obs.status(Duration::from_millis(300)).await;
    assert!(matches!(status, Err(MetaError::NotLeader { leader: None })), "{status:?}");
    assert_eq!(obs.committed().version, crate::MetadataVersion::default(), "nothing was made up");
    obs.shutdown();
}

/// An observer with no controller to reach.
fn unconnected_observer() -> ObserverMetadataLog {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    ObserverMetadataLog::start(ObserverConfig {
        node_id: NodeId(10),
        cluster_id: "test-cluster".into(),
        controllers: BTreeMap::from([(NodeId(1), closed)]),
        bootstrap_servers: Vec::new(),
        append_timeout: Duration::from_millis(500),
    })
}

/// A broker-only node that decided records itself is a bug (they go to the
/// active controller in Kafka's requests): debug builds stop on it.
#[cfg(debug_assertions)]
#[tokio::test]
#[should_panic(expected = "a broker-only node decided metadata records itself")]
async fn an_observer_asked_to_append_records_is_a_bug_in_debug_builds() {
    let obs = unconnected_observer();
    let records = vec![MetadataRecord::ProducerIds { next_block_start: 1 }];
    let _ = obs.append_async(crate::MetadataVersion::default(), records).await;
}

/// A release build refuses it as a controller that does not lead would
/// (NOT_CONTROLLER), and makes nothing up.
#[cfg(not(debug_assertions))]
#[tokio::test]
async fn an_observer_refuses_to_append_records() {
    let obs = unconnected_observer();
    let records = vec![MetadataRecord::ProducerIds { next_block_start: 1 }];
    let refused = obs.append_async(crate::MetadataVersion::default(), records).await;
    assert!(matches!(refused, Err(MetaError::NotLeader { leader: None })), "{refused:?}");
    assert_eq!(obs.committed().version, crate::MetadataVersion::default());
    obs.shutdown();
}
