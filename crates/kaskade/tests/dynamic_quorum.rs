//! A dynamic controller quorum (KIP-853) of `kaskade serve` processes: one
//! combined node forms it alone (`controller.quorum.standalone`), two more
//! start with only `controller.quorum.bootstrap.servers` and wait until
//! AddRaftVoter (what `kafka-metadata-quorum add-controller` sends, here
//! over the wire to the controller listener) makes them voters. Bad
//! requests get Kafka's codes and change nothing; killing the first node
//! elects another active controller, which creates a topic; RemoveRaftVoter
//! takes the dead voter out; a restart keeps the membership. A broker-only
//! node with only the bootstrap servers follows a standalone controller
//! (Kafka's Fetch of `__cluster_metadata`), registers with it, is listed as
//! an observer, and after kill -9 and a restart catches up from the
//! controller's timed snapshot (FetchSnapshot). Every wait is on a
//! condition with a deadline.

mod process;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kafka_protocol::messages::add_raft_voter_request::Listener;
use kafka_protocol::messages::{AddRaftVoterRequest, RemoveRaftVoterRequest};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use process::cluster::{create, metadata, quorum, spawn_with, wait_for, wait_ready, Node, CLUSTER_ID};
use process::free_port;
use rdkafka::admin::{NewTopic, TopicReplication};

/// The environment of a node of a dynamic quorum bootstrapped from `bootstrap_port`.
fn dynamic_env(standalone: bool, bootstrap_port: u16) -> Vec<(String, String)> {
    vec![
        ("KAFKA_CONTROLLER_QUORUM_VOTERS".into(), String::new()),
        ("KAFKA_CONTROLLER_QUORUM_BOOTSTRAP_SERVERS".into(), format!("127.0.0.1:{bootstrap_port}")),
        ("KAFKA_CONTROLLER_QUORUM_STANDALONE".into(), standalone.to_string()),
    ]
}

fn ctrl(node: &Node) -> String {
    format!("127.0.0.1:{}", node.voters[&node.id])
}

/// The directory id in node `id`'s meta.properties, once written.
fn directory_id(root: &std::path::Path, id: i32) -> uuid::Uuid {
    let path = root.join(format!("node-{id}")).join("meta.properties");
    wait_for("meta.properties written", || {
        let text = std::fs::read_to_string(&path).ok()?;
        let line = text.lines().find_map(|l| l.strip_prefix("directory.id="))?;
        kaskade_broker::meta_properties::parse_base64_uuid(line.trim())
    })
}

/// Sends a request to the controller listener at `addr`: (error code, message).
fn send<R>(runtime: &tokio::runtime::Runtime, addr: &str, req: R) -> Option<(i16, String)>
where
    R: kafka_protocol::protocol::Request,
    R::Response: Answer,
{
    let client = kaskade_client::cluster::Client::new(addr).ok()?;
    runtime.block_on(async {
        let conn = client.any_connection().await.ok()?;
        let version = conn.version::<R>().ok()?;
        let resp = conn.send(&req, version).await.ok()?;
        Some(resp.answer())
    })
}

trait Answer {
    fn answer(&self) -> (i16, String);
}

impl Answer for kafka_protocol::messages::AddRaftVoterResponse {
    fn answer(&self) -> (i16, String) {
        (self.error_code, self.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default())
    }
}

impl Answer for kafka_protocol::messages::RemoveRaftVoterResponse {
    fn answer(&self) -> (i16, String) {
        (self.error_code, self.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default())
    }
}

fn add_request(id: i32, dir: uuid::Uuid, port: u16, timeout: Duration) -> AddRaftVoterRequest {
    let mut l = Listener::default();
    l.name = StrBytes::from_static_str("CONTROLLER");
    l.host = StrBytes::from_static_str("127.0.0.1");
    l.port = port;
    let mut req = AddRaftVoterRequest::default();
    req.cluster_id = Some(StrBytes::from_static_str(CLUSTER_ID));
    req.voter_id = id;
    req.voter_directory_id = dir;
    req.timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    req.listeners.push(l);
    req
}

fn remove_request(id: i32, dir: uuid::Uuid) -> RemoveRaftVoterRequest {
    let mut req = RemoveRaftVoterRequest::default();
    req.cluster_id = Some(StrBytes::from_static_str(CLUSTER_ID));
    req.voter_id = id;
    req.voter_directory_id = dir;
    req
}

/// DescribeQuorum v2 at the controller listener `addr`, answered without
/// error: (leader, voter id -> directory id).
fn voters(runtime: &tokio::runtime::Runtime, addr: &str) -> Option<(i32, BTreeMap<i32, uuid::Uuid>)> {
    quorum(runtime, addr).filter(|q| q.code == 0).map(|q| (q.leader, q.voters))
}

fn voter_ids(v: &BTreeMap<i32, uuid::Uuid>) -> BTreeSet<i32> {
    v.keys().copied().collect()
}

#[test]
fn controllers_join_a_standalone_quorum_fail_over_leave_and_keep_the_membership_over_a_restart() {
    let root = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let ports: BTreeMap<i32, (u16, u16)> = (1..=3).map(|id| (id, (free_port(), free_port()))).collect();
    let first_ctrl = ports[&1].1;
    let spawn = |id: i32| {
        let (client, controller) = ports[&id];
        spawn_with(root.path(), id, client, &BTreeMap::from([(id, controller)]), &dynamic_env(id == 1, first_ctrl))
    };
    let mut nodes = vec![spawn(1)];
    wait_ready(&nodes[0]);
    let mut dirs = BTreeMap::from([(1, directory_id(root.path(), 1))]);
    let (leader, v) = wait_for("the standalone quorum", || voters(&runtime, &ctrl(&nodes[0])));
    assert_eq!((leader, v), (1, BTreeMap::from([(1, dirs[&1])])), "one voter, with its directory id");

    // Two controllers start with only the bootstrap servers and are added.
    for id in [2, 3] {
        nodes.push(spawn(id));
        dirs.insert(id, directory_id(root.path(), id));
        let req = add_request(id, dirs[&id], ports[&id].1, Duration::from_secs(10));
        let (code, message) = wait_for(&format!("node {id} added"), || {
            send(&runtime, &ctrl(&nodes[0]), req.clone()).filter(|(code, _)| *code == 0)
        });
        assert_eq!(code, 0, "{message}");
    }
    for n in &nodes[1..] {
        wait_ready(n);
    }
    let (_, v) = voters(&runtime, &ctrl(&nodes[0])).expect("DescribeQuorum");
    assert_eq!(v, dirs, "three voters with their directory ids");

    // Bad input: Kafka's codes, nothing changes.
    let unreachable = add_request(9, uuid::Uuid::from_u128(9), free_port(), Duration::from_secs(3));
    let (code, message) = send(&runtime, &ctrl(&nodes[0]), unreachable).expect("an answer");
    assert_eq!(code, ResponseError::RequestTimedOut.code(), "{message}");
    let twice = add_request(2, dirs[&2], ports[&2].1, Duration::from_secs(10));
    assert_eq!(send(&runtime, &ctrl(&nodes[0]), twice).expect("an answer").0, ResponseError::DuplicateVoter.code());
    let stranger = remove_request(7, uuid::Uuid::from_u128(7));
    assert_eq!(send(&runtime, &ctrl(&nodes[0]), stranger).expect("an answer").0, ResponseError::VoterNotFound.code());
    let wrong_dir = remove_request(2, uuid::Uuid::from_u128(2));
    assert_eq!(send(&runtime, &ctrl(&nodes[0]), wrong_dir).expect("an answer").0, ResponseError::VoterNotFound.code());
    let (_, v) = voters(&runtime, &ctrl(&nodes[0])).expect("DescribeQuorum");
    assert_eq!(voter_ids(&v), BTreeSet::from([1, 2, 3]), "refused changes change nothing");

    // The first controller dies: another becomes active and creates a topic.
    nodes[0].kill9();
    let killed = Instant::now();
    let leader = wait_for("a new active controller", || {
        voters(&runtime, &ctrl(&nodes[1])).map(|(l, _)| l).filter(|l| *l == 2 || *l == 3)
    });
    eprintln!("new active controller {leader} after {:?}", killed.elapsed());
    let bootstrap = format!("127.0.0.1:{}", ports[&2].0);
    wait_for("a topic created by the new active controller", || {
        create(&runtime, &bootstrap, NewTopic::new("after-failover", 2, TopicReplication::Fixed(2))).ok()
    });
    let (brokers, leaders) = wait_for("the topic's metadata", || {
        metadata(&bootstrap, "after-failover").filter(|(_, l)| l.iter().all(|l| *l == 2 || *l == 3))
    });
    assert!(brokers.is_superset(&BTreeSet::from([2, 3])), "{brokers:?}");
    assert_eq!(leaders.len(), 2);

    // The dead voter is removed.
    let active = &nodes[usize::try_from(leader - 1).expect("index")];
    let (code, message) = send(&runtime, &ctrl(active), remove_request(1, dirs[&1])).expect("an answer");
    assert_eq!(code, 0, "{message}");
    let (_, v) = voters(&runtime, &ctrl(active)).expect("DescribeQuorum");
    assert_eq!(voter_ids(&v), BTreeSet::from([2, 3]));

    // A restart keeps the membership.
    nodes[1].restart();
    let (_, v) = wait_for("the quorum after node 2's restart", || {
        voters(&runtime, &ctrl(&nodes[1])).or_else(|| voters(&runtime, &ctrl(&nodes[2])))
    });
    assert_eq!(v, BTreeMap::from([(2, dirs[&2]), (3, dirs[&3])]));
}

fn index(id: i32) -> usize {
    usize::try_from(id - 1).expect("ids start at 1")
}

/// What a removed controller's log says when it restarts.
const SAYS_REMOVED: &str = "was removed from the controller quorum";

/// Three controllers started with the same
/// `controller.quorum.initial.controllers` (Kaskade's `kafka-storage format
/// --initial-controllers`) form a dynamic quorum of exactly those voters,
/// with the directory ids given (written into each meta.properties),
/// without any AddRaftVoter. The active controller removing itself
/// (RemoveRaftVoter) is answered once the removal committed and resigns,
/// as Kafka's leader does: the two left elect another, which creates a
/// topic. Restarted, the removed controller says once in its log that it
/// waits to be added and how; AddRaftVoter brings it back. A voter
/// restarted on another controller port has the leader store its new
/// address (UpdateRaftVoter).
#[test]
fn initial_controllers_form_a_dynamic_quorum_whose_leader_may_remove_itself() {
    let root = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let ports: BTreeMap<i32, (u16, u16)> = (1..=3).map(|id| (id, (free_port(), free_port()))).collect();
    let dirs: BTreeMap<i32, uuid::Uuid> =
        (1..=3).map(|id| (id, uuid::Uuid::from_u128(0x5eed_0000 + id as u128))).collect();
    let initial: Vec<String> = ports
        .iter()
        .map(|(id, (_, c))| format!("{id}@127.0.0.1:{c}:{}", kaskade_broker::meta_properties::base64_uuid(dirs[id])))
        .collect();
    let bootstrap: Vec<String> = ports.values().map(|(_, c)| format!("127.0.0.1:{c}")).collect();
    let env = vec![
        ("KAFKA_CONTROLLER_QUORUM_VOTERS".to_string(), String::new()),
        ("KAFKA_CONTROLLER_QUORUM_BOOTSTRAP_SERVERS".to_string(), bootstrap.join(",")),
        ("KAFKA_CONTROLLER_QUORUM_INITIAL_CONTROLLERS".to_string(), initial.join(",")),
    ];
    let spawn = |id: i32| {
        let (client, controller) = ports[&id];
        spawn_with(root.path(), id, client, &BTreeMap::from([(id, controller)]), &env)
    };
    let mut nodes: Vec<Node> = (1..=3).map(spawn).collect();
    for n in &nodes {
        wait_ready(n);
    }
    for (id, dir) in &dirs {
        assert_eq!(directory_id(root.path(), *id), *dir, "node {id}'s meta.properties holds its entry's directory id");
    }
    let (leader, v) = wait_for("the initial quorum", || voters(&runtime, &ctrl(&nodes[0])));
    assert_eq!(v, dirs, "the three initial voters with their directory ids");
    // Dynamic, not static: adding a voter again is DUPLICATE_VOTER (a static
    // quorum answers UNSUPPORTED_VERSION).
    let active = &nodes[index(leader)];
    let twice = add_request(2, dirs[&2], ports[&2].1, Duration::from_secs(10));
    assert_eq!(send(&runtime, &ctrl(active), twice).expect("an answer").0, ResponseError::DuplicateVoter.code());

    // The active controller removes itself.
    let (code, message) = send(&runtime, &ctrl(active), remove_request(leader, dirs[&leader])).expect("an answer");
    assert_eq!(code, 0, "{message}");
    let left: BTreeSet<i32> = dirs.keys().copied().filter(|id| *id != leader).collect();
    let asked = &nodes[index(*left.first().expect("two left"))];
    let (new_leader, _) = wait_for("another active controller of the two left", || {
        voters(&runtime, &ctrl(asked)).filter(|(l, v)| left.contains(l) && voter_ids(v) == left)
    });
    let client = format!("127.0.0.1:{}", ports[&new_leader].0);
    wait_for("a topic created by the new active controller", || {
        create(&runtime, &client, NewTopic::new("after-resigning", 2, TopicReplication::Fixed(2))).ok()
    });

    // Restarted, the removed controller says what it waits for.
    nodes[index(leader)].kill9();
    nodes[index(leader)] = spawn(leader);
    wait_for("the removed controller says it waits to be added", || {
        nodes[index(leader)].log().contains(SAYS_REMOVED).then_some(())
    });
    let again = add_request(leader, dirs[&leader], ports[&leader].1, Duration::from_secs(10));
    let (code, message) = wait_for("the removed controller added again", || {
        send(&runtime, &ctrl(&nodes[index(new_leader)]), again.clone()).filter(|(code, _)| *code == 0)
    });
    assert_eq!(code, 0, "{message}");
    wait_ready(&nodes[index(leader)]);
    let (_, v) = voters(&runtime, &ctrl(&nodes[index(new_leader)])).expect("DescribeQuorum");
    assert_eq!(v, dirs, "three voters again");
    assert_eq!(nodes[index(leader)].log().matches(SAYS_REMOVED).count(), 1, "said once");

    // A voter restarts on another controller port: it tells the active
    // controller (UpdateRaftVoter), which stores the new address and
    // reaches it there (it becomes current, so it starts).
    let moved = *left.iter().find(|id| **id != new_leader).expect("a follower of the two left");
    let new_port = free_port();
    nodes[index(moved)].kill9();
    nodes[index(moved)] = spawn_with(root.path(), moved, ports[&moved].0, &BTreeMap::from([(moved, new_port)]), &env);
    wait_ready(&nodes[index(moved)]);
    let answer = wait_for("the moved voter's new address in the membership", || {
        nodes
            .iter()
            .find_map(|n| quorum(&runtime, &ctrl(n)).filter(|q| q.code == 0 && q.ports.get(&moved) == Some(&new_port)))
    });
    assert_eq!(answer.voters, dirs, "the same three voters");
    assert!(nodes[index(moved)].log().contains("UpdateRaftVoter"), "it said what it sent");
}

fn owned_env(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

#[test]
fn a_broker_only_node_of_a_dynamic_quorum_bootstraps_learns_the_controller_serves_and_catches_up_from_a_snapshot() {
    let root = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    // A standalone controller-only node forms the quorum.
    let ctrl_port = free_port();
    let mut controller_env = owned_env(&[
        ("KAFKA_PROCESS_ROLES", "controller".into()),
        ("KAFKA_LISTENERS", format!("CONTROLLER://127.0.0.1:{ctrl_port}")),
        ("KAFKA_ADVERTISED_LISTENERS", format!("CONTROLLER://127.0.0.1:{ctrl_port}")),
        ("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT".into()),
        // Timed snapshots, so a restarted broker catches up from one.
        ("KAFKA_METADATA_LOG_MAX_SNAPSHOT_INTERVAL_MS", "300".into()),
    ]);
    controller_env.extend(dynamic_env(true, ctrl_port));
    let controller = spawn_with(root.path(), 1, free_port(), &BTreeMap::from([(1, ctrl_port)]), &controller_env);
    wait_ready(&controller);
    let ctrl_addr = format!("127.0.0.1:{ctrl_port}");
    wait_for("the standalone quorum", || voters(&runtime, &ctrl_addr));

    // A broker-only node with only controller.quorum.bootstrap.servers: it
    // fetches the metadata log from there, learns the controller from it and
    // registers there.
    let port = free_port();
    let mut broker_env = owned_env(&[
        ("KAFKA_PROCESS_ROLES", "broker".into()),
        ("KAFKA_LISTENERS", format!("PLAINTEXT://127.0.0.1:{port}")),
        ("KAFKA_ADVERTISED_LISTENERS", format!("PLAINTEXT://127.0.0.1:{port}")),
        ("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT".into()),
    ]);
    broker_env.extend(dynamic_env(false, ctrl_port));
    let broker = spawn_with(root.path(), 2, port, &BTreeMap::new(), &broker_env);
    wait_ready(&broker);
    let bootstrap = broker.bootstrap();
    wait_for("a topic placed on the broker-only node", || {
        create(&runtime, &bootstrap, NewTopic::new("on-the-observer", 3, TopicReplication::Fixed(1))).ok()
    });
    let (brokers, leaders) = wait_for("the topic's leaders", || {
        metadata(&bootstrap, "on-the-observer").filter(|(_, l)| l.len() == 3 && l.iter().all(|l| *l == 2))
    });
    assert_eq!(brokers, BTreeSet::from([2]), "the registered broker: {leaders:?}");
    // The controller lists it among DescribeQuorum's observers, at its high watermark.
    let answer = wait_for("node 2 listed as an observer at the high watermark", || {
        quorum(&runtime, &ctrl_addr).filter(|q| q.code == 0 && q.observers.get(&2) == Some(&q.high_watermark))
    });
    assert!(answer.high_watermark > 0, "{:?}", answer.observers);

    // It follows further changes: another topic made through the controller's
    // log is seen by the broker's own Metadata.
    wait_for("a second topic", || {
        create(&runtime, &bootstrap, NewTopic::new("second", 1, TopicReplication::Fixed(1))).ok()
    });
    wait_for("the second topic on the broker", || metadata(&bootstrap, "second").filter(|(_, l)| l == &[2]));

    // The controller snapshots both topics; the broker, killed and
    // restarted with nothing in memory, fetches from offset 0 and is sent
    // to the snapshot (FetchSnapshot), then goes on with Fetch.
    let snapshot = root.path().join("node-1").join("kaskade-metadata").join("raft").join("snapshot.json");
    wait_for("a snapshot holding both topics", || {
        let text = std::fs::read_to_string(&snapshot).ok()?;
        (text.contains("on-the-observer") && text.contains("\"second\"")).then_some(())
    });
    let loads = |node: &Node| node.log().matches("loaded a metadata snapshot").count();
    let mut broker = broker;
    let before = loads(&broker);
    broker.kill9();
    broker.restart();
    assert!(loads(&broker) > before, "the restarted broker loaded the snapshot:\n{}", broker.log());
    for topic in ["on-the-observer", "second"] {
        wait_for(&format!("{topic} after the restart"), || {
            metadata(&bootstrap, topic).filter(|(_, l)| l.iter().all(|l| *l == 2))
        });
    }
    wait_for("a topic made after the restart", || {
        create(&runtime, &bootstrap, NewTopic::new("after-the-restart", 1, TopicReplication::Fixed(1))).ok()
    });
    wait_for("the new topic on the broker", || metadata(&bootstrap, "after-the-restart").filter(|(_, l)| l == &[2]));
}
