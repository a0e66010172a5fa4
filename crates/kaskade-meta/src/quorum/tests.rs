//! In-process controller clusters on loopback ports: election, replication,
//! failover, restart from files, snapshot install, membership changes,
//! staleness at apply time, and bad frames. Every wait is on openraft's
//! metrics (`Raft::wait`), bounded, never a sleep.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use kaskade_types::NodeId;
use openraft::{LogIdOptionExt, ServerState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::*;
use crate::{MetaError, MetadataLog, MetadataRecord};

pub(super) const WAIT: Duration = Duration::from_secs(20);

pub(super) struct Node {
    pub(super) log: QuorumMetadataLog,
    server: JoinHandle<()>,
    addr: String,
}

/// How the test controllers run: `static_voters` is the voter id set of a
/// static quorum (`None`: a dynamic one, which voters may join and leave).
#[derive(Clone)]
pub(super) struct Setup {
    pub(super) append_timeout: Duration,
    pub(super) static_voters: Option<BTreeSet<i32>>,
    /// The controllers' clock (broker sessions run on it); the system's if `None`.
    pub(super) clock: Option<std::sync::Arc<dyn kaskade_types::Clock>>,
}

pub(super) fn static_3() -> Setup {
    Setup { append_timeout: WAIT, static_voters: Some(BTreeSet::from([1, 2, 3])), clock: None }
}

fn dynamic() -> Setup {
    Setup { append_timeout: WAIT, static_voters: None, clock: None }
}

fn config(id: i32, dir: &Path, setup: &Setup) -> QuorumConfig {
    let mut c = QuorumConfig::new(NodeId(id), "test-cluster", dir);
    c.static_voters = setup.static_voters.as_ref().map(|v| v.iter().copied().map(NodeId).collect());
    let append_timeout = setup.append_timeout;
    // Short enough for quick failovers, long enough that a loaded test
    // machine does not miss heartbeats and churn leaders.
    c.election_timeout = Duration::from_millis(600)..Duration::from_millis(1200);
    c.heartbeat_interval = Duration::from_millis(100);
    c.append_timeout = append_timeout;
    if let Some(clock) = &setup.clock {
        c.clock = clock.clone();
    }
    // Snapshots purge everything they cover: a node that falls behind a
    // snapshot must install it.
    c.logs_kept_after_snapshot = 0;
    c
}

fn node_dir(root: &Path, id: i32) -> PathBuf {
    root.join(format!("node-{id}"))
}

async fn start(root: &Path, id: i32, listener: TcpListener, setup: &Setup) -> Node {
    let addr = listener.local_addr().expect("addr").to_string();
    let log = QuorumMetadataLog::start(config(id, &node_dir(root, id), setup)).await.expect("start");
    let server = tokio::spawn(log.serve(listener, Some(answer_describe_quorum(log.clone()))));
    Node { log, server, addr }
}

/// The one Kafka API of the broker layer a test controller needs (this
/// crate has none): DescribeQuorum of the metadata partition, answered on
/// the Kafka connections its server hands over from `log.status()`, written
/// by `describe_quorum::write_partition` as the broker writes it. Any
/// other request closes the connection. Ends when the server drops it.
fn answer_describe_quorum(log: QuorumMetadataLog) -> server::KafkaConnections {
    use kafka_protocol::messages::describe_quorum_response::{PartitionData, TopicData};
    use kafka_protocol::messages::{ApiKey, DescribeQuorumRequest, DescribeQuorumResponse};
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(TcpStream, std::net::SocketAddr)>(16);
    tokio::spawn(async move {
        while let Some((stream, _)) = rx.recv().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut conn = tokio::io::BufStream::new(stream);
                while let Ok(Some(frame)) = kafka_wire::read_frame(&mut conn, kafka_wire::MAX_REQUEST).await {
                    let version = match kafka_wire::key_and_version(&frame) {
                        Ok((key, version)) if key == ApiKey::DescribeQuorum as i16 => version,
                        _ => return,
                    };
                    let Ok((header, req)) = kafka_wire::decode_request::<DescribeQuorumRequest>(frame, version) else {
                        return;
                    };
                    let mut resp = DescribeQuorumResponse::default();
                    for asked in req.topics {
                        let mut topic = TopicData::default();
                        for p in asked.partitions {
                            let mut partition = PartitionData::default();
                            partition.partition_index = p.partition_index;
                            describe_quorum::write_partition(&mut partition, log.status(), version);
                            topic.partitions.push(partition);
                        }
                        topic.topic_name = asked.topic_name;
                        resp.topics.push(topic);
                    }
                    if kafka_wire::write_response(&mut conn, header.correlation_id, version, &resp).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    tx
}

/// Starts `n` controllers (ids 1..=n) as one quorum.
pub(super) async fn cluster(root: &Path, n: i32, setup: &Setup) -> (Vec<Option<Node>>, BTreeMap<NodeId, String>) {
    let mut listeners = Vec::new();
    let mut voters = BTreeMap::new();
    for id in 1..=n {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        voters.insert(NodeId(id), l.local_addr().expect("addr").to_string());
        listeners.push(l);
    }
    let mut nodes = Vec::new();
    for (id, l) in (1..=n).zip(listeners) {
        nodes.push(Some(start(root, id, l, setup).await));
    }
    for node in nodes.iter().flatten() {
        node.log.initialize(&voters).await.expect("initialize");
    }
    (nodes, voters)
}

pub(super) async fn kill(node: Node) {
    node.server.abort();
    let _ = node.server.await;
    node.log.shutdown().await.expect("shutdown");
}

/// Waits until every live node names the same live leader, and it leads.
/// A node's view may be stale (a restarted node names the leader its stored
/// vote names), so a candidate that is not confirmed soon is looked up again.
pub(super) async fn leader(nodes: &[Option<Node>]) -> usize {
    let live: Vec<usize> = (0..nodes.len()).filter(|i| nodes[*i].is_some()).collect();
    let is_live = |id: u64| live.iter().any(|i| *i as u64 + 1 == id);
    let first = nodes[live[0]].as_ref().expect("live");
    let short = Some(Duration::from_secs(2));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        assert!(tokio::time::Instant::now() < deadline, "no stable leader within {WAIT:?}");
        let wait = first.log.raft().wait(Some(WAIT));
        let candidate = wait.metrics(|m| m.current_leader.is_some_and(is_live), "a leader").await;
        let candidate = candidate.expect("a leader").current_leader;
        let Some(leader) = candidate.map(|id| id as usize - 1) else { continue };
        let l = nodes[leader].as_ref().expect("live");
        let mut confirmed = l.log.raft().wait(short).state(ServerState::Leader, "leading").await.is_ok();
        for i in &live {
            let n = nodes[*i].as_ref().expect("live");
            let wait = n.log.raft().wait(short);
            confirmed = confirmed && wait.metrics(|m| m.current_leader == candidate, "agrees").await.is_ok();
        }
        if !confirmed {
            continue;
        }
        // A leader has committed its own blank entry once its image is current.
        let m = l.log.raft().metrics().borrow().clone();
        l.log.raft().wait(Some(WAIT)).applied_index_at_least(m.last_log_index, "own entry").await.expect("applied");
        return leader;
    }
}

/// Creates a topic through the sync `MetadataLog` API (as the broker does,
/// from a blocking thread).
async fn create_topic(log: &QuorumMetadataLog, name: &str) -> Result<(), MetaError> {
    let log = log.clone();
    let name = name.to_string();
    tokio::task::spawn_blocking(move || {
        crate::update(&log, |img| {
            if img.topic(&name).is_some() {
                return Ok::<_, MetaError>((vec![], ()));
            }
            let id = Uuid::new_v4();
            Ok((
                vec![
                    MetadataRecord::Topic { name: name.clone(), id },
                    MetadataRecord::Partition {
                        topic_id: id,
                        partition: 0,
                        leader: 1,
                        replicas: vec![1],
                        isr: vec![1],
                        leader_epoch: 0,
                        partition_epoch: 0,
                        adding_replicas: Vec::new(),
                        removing_replicas: Vec::new(),
                    },
                ],
                (),
            ))
        })
    })
    .await
    .expect("join")
}

/// Waits until every live node applied what `nodes[from]` applied, then
/// checks they hold the same image and version.
async fn converge(nodes: &[Option<Node>], from: usize) {
    let want = nodes[from].as_ref().expect("live").log.committed();
    for n in nodes.iter().flatten() {
        let mut applied = n.log.subscribe();
        let reached = applied.wait_for(|v| v.end_offset >= want.version.end_offset);
        tokio::time::timeout(WAIT, reached).await.expect("caught up in time").expect("watch");
        let got = n.log.committed();
        assert_eq!(*got.image, *want.image, "node {} has the leader's image", n.log.node_id());
        assert_eq!(got.version.end_offset, want.version.end_offset);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_quorum_elects_replicates_fails_over_and_recovers_a_restarted_node() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut nodes, voters) = cluster(root.path(), 3, &static_3()).await;
    let first = leader(&nodes).await;
    let l = nodes[first].as_ref().expect("leader");
    let changes = l.log.subscribe();
    create_topic(&l.log, "a").await.expect("create a");
    assert!(changes.has_changed().expect("watch"), "subscribers hear of the change");
    create_topic(&l.log, "b").await.expect("create b");
    assert_eq!(l.log.committed().version.end_offset, 4);
    assert_eq!(l.log.leader(), Some(kaskade_types::NodeId(first as i32 + 1)));

    // A follower makes no change itself: it names the leader (a change
    // decided elsewhere reaches the active controller in Kafka's requests).
    let follower = (first + 1) % 3;
    let f = nodes[follower].as_ref().expect("follower");
    let applied = l.log.raft().metrics().borrow().last_applied.index();
    f.log.raft().wait(Some(WAIT)).applied_index_at_least(applied, "follower").await.expect("follower caught up");
    let refused = create_topic(&f.log, "not-forwarded").await;
    let leader_id = Some(kaskade_types::NodeId(first as i32 + 1));
    // (A leadership moving under load names another leader.)
    assert!(matches!(refused, Err(MetaError::NotLeader { leader: Some(_) })), "{refused:?}");
    assert_eq!(f.log.leader(), leader_id, "the follower did not become the leader");
    converge(&nodes, first).await;
    assert!(l.log.committed().image.topic("not-forwarded").is_none(), "nothing reached the leader");

    // DescribeQuorum's view on the leader: three voters at its end offset
    // (once its replication metrics say both followers hold its last entry;
    // the times are noted before openraft reports the match).
    let last = l.log.raft().metrics().borrow().last_log_index;
    let wait = l.log.raft().wait(Some(WAIT));
    let all_match = |m: &openraft::RaftMetrics<RaftNodeId, crate::quorum::types::ControllerNode>| {
        // DescribeQuorum's high watermark is the leader's applied index, which
        // openraft moves after it reports the followers' match: wait for both.
        m.replication.as_ref().is_some_and(|r| r.values().all(|v| v.map(|l| l.index) == last))
            && m.last_applied.map(|l| l.index) == last
    };
    wait.metrics(all_match, "followers match").await.expect("followers hold the leader's log");
    let status = l.log.status().expect("status on the leader");
    assert_eq!(status.leader_id, first as i32 + 1);
    assert_eq!(status.leader_epoch, l.log.committed().version.epoch);
    assert_eq!(status.voters.len(), 3);
    assert!(status.observers.is_empty());
    let end = last.map(|i| i as i64 + 1).expect("entries");
    assert_eq!(status.high_watermark, end);
    for v in &status.voters {
        assert_eq!(v.log_end_offset, end, "{v:?}");
        assert!(v.last_fetch_timestamp > 0 && v.last_caught_up_timestamp > 0, "{v:?}");
    }
    assert!(matches!(f.log.status(), Err(MetaError::NotLeader { .. })));

    // Kill the leader: another is elected and appends go on.
    let old = nodes[first].take().expect("leader");
    let old_epoch = old.log.committed().version.epoch;
    let killed = std::time::Instant::now();
    kill(old).await;
    let second = leader(&nodes).await;
    assert_ne!(second, first);
    let l2 = nodes[second].as_ref().expect("new leader");
    create_topic(&l2.log, "c").await.expect("create c on the new leader");
    // A figure, not a check: election timeouts here are 600-1200 ms.
    eprintln!("failover: kill -> next change committed in {:?}", killed.elapsed());
    assert!(l2.log.committed().version.epoch > old_epoch, "a new leader's epoch is higher");
    converge(&nodes, second).await;

    // Restart the old leader from its files on its port: it catches up.
    let addr = &voters[&NodeId(first as i32 + 1)];
    let listener = TcpListener::bind(addr).await.expect("rebind");
    nodes[first] = Some(start(root.path(), first as i32 + 1, listener, &static_3()).await);
    let restarted = nodes[first].as_ref().expect("restarted");
    assert!(restarted.log.committed().image.topic("c").is_none(), "it has not seen c before it rejoins");
    create_topic(&nodes[second].as_ref().expect("leader").log, "d").await.expect("create d");
    converge(&nodes, second).await;
    assert!(nodes[first].as_ref().expect("restarted").log.committed().image.topic("d").is_some());
    for n in nodes.into_iter().flatten() {
        kill(n).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_proposals_on_one_version_land_once_on_every_replica() {
    let root = tempfile::tempdir().expect("tempdir");
    let (nodes, _) = cluster(root.path(), 3, &static_3()).await;
    let i = leader(&nodes).await;
    let l = &nodes[i].as_ref().expect("leader").log;
    let based_on = l.committed().version;
    // Both proposals pass the early check (made on the same version) and
    // reach the log; the state machine lets only the first one land.
    let propose =
        |start: i64| Proposal { based_on, records: vec![MetadataRecord::ProducerIds { next_block_start: start }] };
    let (a, b) = tokio::join!(l.raft().client_write(propose(1000)), l.raft().client_write(propose(2000)));
    let outcomes = [a.expect("a").data, b.expect("b").data];
    let applied = outcomes.iter().filter(|o| matches!(o, ApplyOutcome::Applied(_))).count();
    let stale = outcomes.iter().filter(|o| matches!(o, ApplyOutcome::Stale { .. })).count();
    assert_eq!((applied, stale), (1, 1), "{outcomes:?}");
    // Through the metadata log, the late one is refused as Stale.
    let late = l.append_async(based_on, vec![MetadataRecord::ProducerIds { next_block_start: 3000 }]).await;
    assert!(matches!(late, Err(MetaError::Stale { .. })), "{late:?}");
    converge(&nodes, i).await;
    let winner = l.committed().image.next_producer_id();
    assert!(winner == 1000 || winner == 2000);
    for n in nodes.iter().flatten() {
        assert_eq!(n.log.committed().image.next_producer_id(), winner);
    }
    for n in nodes.into_iter().flatten() {
        kill(n).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_voter_catches_up_from_a_snapshot_and_a_voter_can_be_removed() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut nodes, _) = cluster(root.path(), 3, &dynamic()).await;
    let i = leader(&nodes).await;
    let l = nodes[i].as_ref().expect("leader").log.clone();
    for t in 0..5 {
        create_topic(&l, &format!("t{t}")).await.expect("create");
    }
    let version = tokio::task::spawn_blocking({
        let l = l.clone();
        move || l.snapshot()
    })
    .await
    .expect("join")
    .expect("snapshot");
    assert_eq!(version, l.committed().version);
    let applied = l.raft().metrics().borrow().last_applied;
    // Everything the snapshot covers is purged: a newcomer needs the snapshot.
    l.raft().wait(Some(WAIT)).metrics(|m| m.purged >= applied, "purged").await.expect("purge");
    assert!(node_dir(root.path(), i as i32 + 1).join("kaskade-metadata/raft/snapshot.json").exists());
    create_topic(&l, "after-snapshot").await.expect("create after the snapshot");

    // Refusals as Kafka's: an id already voting, a controller that never
    // answers (dropped again, nothing changed), a non-voter removed, a
    // change asked of a follower.
    use crate::quorum::{VoterChangeError, VoterKey};
    let key = |id: i32| VoterKey { id: NodeId(id), directory_id: None };
    let duplicate = l.add_voter(key(1), "127.0.0.1:1", WAIT).await;
    assert!(matches!(duplicate, Err(VoterChangeError::Duplicate(_))), "{duplicate:?}");
    let unreachable = l.add_voter(key(5), "127.0.0.1:1", Duration::from_secs(2)).await;
    assert!(matches!(unreachable, Err(VoterChangeError::TimedOut(_))), "{unreachable:?}");
    let wait = l.raft().wait(Some(WAIT));
    let dropped = wait.metrics(
        |m| {
            m.membership_config.membership().get_node(&5).is_none()
                && m.membership_config.membership().get_joint_config().len() == 1
        },
        "the learner that never caught up dropped",
    );
    dropped.await.expect("learner 5 dropped");
    assert_eq!(l.voter_nodes().keys().copied().collect::<Vec<_>>(), [NodeId(1), NodeId(2), NodeId(3)]);
    let missing = l.remove_voter(key(9), WAIT).await;
    assert!(matches!(missing, Err(VoterChangeError::NotFound(_))), "{missing:?}");
    let follower = nodes.iter().flatten().find(|n| n.log.node_id() != l.node_id()).expect("a follower");
    let off_leader = follower.log.add_voter(key(6), "127.0.0.1:1", WAIT).await;
    assert!(matches!(off_leader, Err(VoterChangeError::NotLeader { .. })), "{off_leader:?}");

    // Node 4 starts empty and joins as a voter (AddRaftVoter).
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    nodes.push(Some(start(root.path(), 4, listener, &dynamic()).await));
    let four = crate::quorum::VoterKey { id: NodeId(4), directory_id: None };
    l.add_voter(four, &addr, WAIT).await.expect("add voter 4");
    let new = &nodes[3].as_ref().expect("node 4").log;
    let installed = new.raft().wait(Some(WAIT)).metrics(|m| m.snapshot.is_some(), "a snapshot on node 4").await;
    installed.expect("node 4 installed the leader's snapshot (the log it covers is purged)");
    l.raft().wait(Some(WAIT)).voter_ids([1, 2, 3, 4], "4 voters").await.expect("node 4 votes");
    assert_eq!(l.status().expect("status").voters.len(), 4);
    converge(&nodes, i).await;
    assert!(new.committed().image.topic("after-snapshot").is_some());
    assert!(new.committed().image.topic("t0").is_some());

    // RemoveRaftVoter: node 4 leaves the voters.
    l.remove_voter(four, WAIT).await.expect("remove voter 4");
    l.raft().wait(Some(WAIT)).voter_ids([1, 2, 3], "3 voters").await.expect("node 4 left");
    let status = l.status().expect("status");
    assert_eq!(status.voters.iter().map(|v| v.replica_id).collect::<Vec<_>>(), vec![1, 2, 3]);
    create_topic(&l, "without-4").await.expect("create without node 4");
    for n in nodes.into_iter().flatten() {
        kill(n).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_whole_quorum_restarts_from_its_snapshots_and_logs() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut nodes, voters) = cluster(root.path(), 3, &static_3()).await;
    let i = leader(&nodes).await;
    let l = nodes[i].as_ref().expect("leader").log.clone();
    create_topic(&l, "before").await.expect("create");
    l.snapshot_async().await.expect("snapshot");
    create_topic(&l, "after").await.expect("create");
    converge(&nodes, i).await;
    let before = l.committed();
    for n in nodes.iter_mut() {
        kill(n.take().expect("live")).await;
    }
    // Node ids and ports as before; no initialize: the files hold the quorum.
    for (id, addr) in &voters {
        let listener = TcpListener::bind(addr).await.expect("rebind");
        nodes[id.get() as usize - 1] = Some(start(root.path(), id.get(), listener, &static_3()).await);
    }
    // The old leader's log was purged up to its snapshot: what it has of
    // "before" at start it has from the snapshot file.
    assert!(nodes[i].as_ref().expect("old leader").log.committed().image.topic("before").is_some());
    let stored = nodes[0].as_ref().expect("node 1").log.voters().await.expect("voters");
    assert_eq!(stored, voters, "the stored membership");
    let i = leader(&nodes).await;
    converge(&nodes, i).await;
    let after = nodes[i].as_ref().expect("leader").log.committed();
    assert_eq!(*after.image, *before.image);
    assert_eq!(after.version.end_offset, before.version.end_offset);
    for n in nodes.into_iter().flatten() {
        kill(n).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_and_other_clusters_are_refused_and_the_node_keeps_serving() {
    let root = tempfile::tempdir().expect("tempdir");
    let (nodes, _) = cluster(root.path(), 1, &Setup { static_voters: Some(BTreeSet::from([1])), ..static_3() }).await;
    leader(&nodes).await;
    let addr = nodes[0].as_ref().expect("node").addr.clone();
    let mut hello = Vec::new();
    let ours = br#"{"cluster_id":"test-cluster","static_voters":[1]}"#;
    frame::write_frame(&mut hello, frame::RpcKind::Hello, ours).await.expect("hello");
    let cases: [(&str, Vec<u8>); 6] = [
        ("over the frame limit", vec![0xff, 0xff, 0xff, 0xff]),
        ("empty", vec![0, 0, 0, 0]),
        ("unknown kind", vec![0, 0, 0, 2, 77, b'x']),
        ("a request before the hello", vec![0, 0, 0, 3, 2, b'{', b'}']),
        ("an AppendEntries that is not JSON", [hello.clone(), vec![0, 0, 0, 4, 1, b'{', b'x', b'}']].concat()),
        ("a second hello", [hello.clone(), hello.clone()].concat()),
    ];
    for (what, bytes) in cases {
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        s.write_all(&bytes).await.expect("write");
        // At most the hello's welcome comes back, then the connection closes.
        let mut answer = Vec::new();
        tokio::time::timeout(WAIT, s.read_to_end(&mut answer)).await.expect("closed in time").ok();
        let welcomed = bytes.starts_with(&hello);
        assert_eq!(answer.is_empty(), !welcomed, "{what}: {answer:?}");
    }
    // A controller of another cluster, or with other static voters, is told
    // why, then closed.
    let refused: [(&[u8], &str); 2] = [
        (br#"{"cluster_id":"another-cluster","static_voters":null}"#, "test-cluster"),
        (br#"{"cluster_id":"test-cluster","static_voters":[1,2]}"#, "voters differ"),
    ];
    for (theirs, why) in refused {
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        frame::write_frame(&mut s, frame::RpcKind::Hello, theirs).await.expect("hello");
        let (kind, body) = frame::read_frame(&mut s).await.expect("answer").expect("a frame");
        assert_eq!(kind, frame::RpcKind::Response);
        let refusal: Result<(), String> = serde_json::from_slice(&body).expect("json");
        assert!(refusal.expect_err("refused").contains(why));
        assert!(frame::read_frame(&mut s).await.expect("clean close").is_none());
    }
    // A single controller still commits.
    create_topic(&nodes[0].as_ref().expect("node").log, "ok").await.expect("create");
    for n in nodes.into_iter().flatten() {
        kill(n).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_without_a_majority_times_out_and_changes_nothing() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut nodes, _) = cluster(root.path(), 3, &Setup { append_timeout: Duration::from_secs(1), ..static_3() }).await;
    let i = leader(&nodes).await;
    for (j, node) in nodes.iter_mut().enumerate() {
        if j != i {
            kill(node.take().expect("follower")).await;
        }
    }
    let l = nodes[i].take().expect("leader");
    let before = l.log.committed();
    let res = create_topic(&l.log, "lost").await;
    // Still the leader (it has not heard otherwise) or already stepped
    // down: either way the change is not acknowledged.
    assert!(matches!(res, Err(MetaError::Timeout(_)) | Err(MetaError::NotLeader { .. })), "{res:?}");
    assert_eq!(l.log.committed().version.end_offset, before.version.end_offset);
    kill(l).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_that_cannot_reach_a_leader_refuses_within_its_timeout() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut nodes, _) = cluster(root.path(), 3, &Setup { append_timeout: Duration::from_secs(1), ..static_3() }).await;
    let i = leader(&nodes).await;
    let keep = (i + 1) % 3;
    for (j, node) in nodes.iter_mut().enumerate() {
        if j != keep {
            kill(node.take().expect("node")).await;
        }
    }
    let f = nodes[keep].take().expect("follower");
    let before = f.log.committed();
    let started = std::time::Instant::now();
    let res = create_topic(&f.log, "nowhere").await;
    // The leader it knows is gone and no other can be elected: refused
    // (naming the gone leader, or after waiting out append_timeout for an
    // election), nothing changed.
    assert!(matches!(res, Err(MetaError::NotLeader { .. }) | Err(MetaError::Timeout(_))), "{res:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "bounded by append_timeout: {:?}", started.elapsed());
    assert_eq!(f.log.committed().version.end_offset, before.version.end_offset);
    kill(f).await;
}

#[test]
fn a_kafka_request_is_told_from_a_frame_of_ours_by_its_fifth_byte() {
    use super::server::{protocol_of, Protocol};
    // ApiVersions (key 18) v3, and our Hello (kind 4).
    assert_eq!(protocol_of(&[0, 0, 0, 30, 0, 18]), Protocol::Kafka);
    assert_eq!(protocol_of(&[0, 0, 0, 40, 4, b'{']), Protocol::Quorum);
    // Fetch (1) and FetchSnapshot (59): an observer following the metadata log.
    assert_eq!(protocol_of(&[0, 0, 0, 90, 0, 1]), Protocol::MetadataFetch);
    assert_eq!(protocol_of(&[0, 0, 0, 90, 0, 59]), Protocol::MetadataFetch);
    // A garbage first byte is taken for ours, whose reader then refuses it.
    assert_eq!(protocol_of(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), Protocol::Quorum);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_connections_are_handed_over_unread_or_closed_without_a_taker() {
    let root = tempfile::tempdir().expect("tempdir");
    let setup = Setup { static_voters: Some(BTreeSet::from([1])), ..static_3() };
    let (mut nodes, voters) = cluster(root.path(), 1, &setup).await;
    leader(&nodes).await;
    // An ApiVersions v3 request's first bytes (size, key 18, version 3).
    let request = [0u8, 0, 0, 6, 0, 18, 0, 3, 0, 0];

    // The test cluster's server has no taker: the connection is closed.
    let mut s = TcpStream::connect(&voters[&NodeId(1)]).await.expect("connect");
    s.write_all(&request).await.expect("write");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(WAIT, s.read_to_end(&mut answer)).await.expect("closed in time");
    assert!(read.is_err() || answer.is_empty(), "nothing answered: {answer:?}");

    // A server with a taker hands it over with every byte still unread.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let node = nodes[0].as_ref().expect("node");
    let server = tokio::spawn(node.log.serve(listener, Some(tx)));
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(&request).await.expect("write");
    // The taker has not taken it yet: its one slot is full, so the next
    // Kafka connection is closed rather than queued without bound.
    let deadline = tokio::time::Instant::now() + WAIT;
    while rx.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "not handed over within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut extra = TcpStream::connect(addr).await.expect("connect");
    extra.write_all(&request).await.expect("write");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(WAIT, extra.read_to_end(&mut answer)).await.expect("closed in time");
    assert!(read.is_err() || answer.is_empty(), "closed unanswered: {answer:?}");
    let (mut taken, _) = tokio::time::timeout(WAIT, rx.recv()).await.expect("handed over").expect("a connection");
    let mut got = [0u8; 10];
    taken.read_exact(&mut got).await.expect("read");
    assert_eq!(got, request);
    // Frames of ours still work on that server.
    let mut q = TcpStream::connect(addr).await.expect("connect");
    let hello = br#"{"cluster_id":"test-cluster","static_voters":[1]}"#;
    frame::write_frame(&mut q, frame::RpcKind::Hello, hello).await.expect("hello");
    let welcome = tokio::time::timeout(WAIT, frame::read_frame(&mut q)).await.expect("in time").expect("read");
    assert_eq!(welcome.map(|(k, _)| k), Some(frame::RpcKind::Response));
    server.abort();
    kill(nodes[0].take().expect("node")).await;
}
