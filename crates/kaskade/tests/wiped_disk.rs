//! A node restarted with a wiped data directory re-replicates everything
//! (issue 14). Three combined nodes (the quorum) and a broker-only node 4
//! that is a follower of every partition of a topic with replication
//! factor 3 and `min.insync.replicas=2`, under the fault tests' workload
//! (an idempotent acks=all producer, `process::checker`). Node 4 is killed
//! with SIGKILL, its data directory deleted, and it is started again with
//! the same node id and cluster id. Kafka would need `kafka-storage
//! format` first; Kaskade formats a missing directory itself from the
//! configured `cluster.id`, so the node must come back with a fresh
//! `meta.properties` naming the same ids, register again, fetch every
//! partition from offset 0, rejoin every ISR, and hold the same batches
//! as the other replicas; the checker then passes on all four nodes.
//! Prints the time from the restart to node 4 back in every ISR.
//!
//! A second case wipes a combined voter (a controller): with a static
//! quorum Kafka lets a reformatted voter rejoin with an empty metadata log
//! and catch up from the leader (its lost vote is the known hazard
//! KIP-853's directory ids address for dynamic quorums); the test pins
//! what Kaskade does with it.
//!
//! Long mode: `KASKADE_WIPED_BYTES=1073741824` first loads that many
//! bytes (64 KiB values) so the figure is the time to re-replicate 1 GiB.

mod process;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};

use process::checker::{finish_and_check, finish_and_check_assigned, short_sessions, Producing, Workload};
use process::cluster::{create, spawn_with, start_cluster_with, wait_for, wait_ready, Node, CLUSTER_ID};
use process::replicas::roots;
use process::{client_config, TestDir};

const W: Workload = Workload { topic: "wiped", partitions: 3 };

/// Sorted ISRs by partition of `topic` as the node at `bootstrap` answers Metadata.
fn isrs(bootstrap: &str) -> Option<Vec<Vec<i32>>> {
    let consumer: BaseConsumer = client_config(bootstrap).create().ok()?;
    let md = consumer.fetch_metadata(Some(W.topic), Duration::from_secs(5)).ok()?;
    let t = md.topics().iter().find(|t| t.name() == W.topic)?;
    if t.error().is_some() || t.partitions().len() != W.partitions as usize {
        return None;
    }
    Some(
        t.partitions()
            .iter()
            .map(|p| {
                let mut isr = p.isr().to_vec();
                isr.sort_unstable();
                isr
            })
            .collect(),
    )
}

/// Waits until `node` is (`member`) or is not in the ISR of every partition.
fn wait_isr(bootstrap: &str, node: i32, member: bool, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if let Some(isrs) = isrs(bootstrap) {
            if isrs.iter().all(|isr| isr.contains(&node) == member) {
                return;
            }
            assert!(Instant::now() < deadline, "node {node} in every ISR = {member}: not within {within:?} ({isrs:?})");
        }
        assert!(Instant::now() < deadline, "no Metadata for {} within {within:?}", W.topic);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `meta.properties` of a data directory as key -> value.
fn meta_properties(node: &Node) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(node.data_dir().join("meta.properties")).unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Three combined nodes and a broker-only node 4; a topic whose every
/// partition has node 4 as a follower (leaders 1, 2, 3).
fn start(root: &TestDir) -> Vec<Node> {
    let env = short_sessions();
    let mut nodes = start_cluster_with(root.path(), 3, &env);
    let voters = nodes[0].voters.clone();
    let mut broker_env = env.clone();
    broker_env.push(("KAFKA_PROCESS_ROLES".into(), "broker".into()));
    broker_env.push(("KAFKA_INTER_BROKER_LISTENER_NAME".into(), "PLAINTEXT".into()));
    let broker = spawn_with(root.path(), 4, process::free_port(), &voters, &broker_env);
    wait_ready(&broker);
    nodes.push(broker);
    nodes
}

/// Loads `KASKADE_WIPED_BYTES` bytes first (long mode); the next number.
fn preload(bootstrap: &str) -> u64 {
    let bytes: u64 = std::env::var("KASKADE_WIPED_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    if bytes == 0 {
        return 0;
    }
    const PAD: usize = 64 * 1024;
    let records = bytes.div_ceil(PAD as u64) as usize;
    let producing = Producing::start_padded(W, bootstrap, 0, PAD);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(3600);
    while producing.deliveries.count() < records {
        assert!(Instant::now() < deadline, "preload of {bytes} bytes: not within an hour");
        std::thread::sleep(Duration::from_millis(200));
    }
    let next = producing.finish();
    eprintln!("preloaded {bytes} bytes ({records} records of {PAD} bytes) in {:?}", started.elapsed());
    next
}

#[test]
fn a_follower_restarted_on_a_wiped_data_dir_re_replicates_everything() {
    let root = TestDir::new();
    let mut nodes = start(&root);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let assignment: [&[i32]; 3] = [&[1, 2, 4], &[2, 3, 4], &[3, 1, 4]];
    let topic =
        NewTopic::new(W.topic, W.partitions, TopicReplication::Variable(&assignment)).set("min.insync.replicas", "2");
    create(&runtime, &nodes[0].bootstrap(), topic).expect("create RF 3 with node 4 in every partition");
    let bootstrap: String = nodes.iter().map(|n| n.bootstrap()).collect::<Vec<_>>().join(",");
    let first = preload(&bootstrap);

    let producing = Producing::start(W, &bootstrap, first);
    let deliveries = producing.deliveries.clone();
    deliveries.wait_acks("acknowledgements before the wipe", 0, 600);
    wait_isr(&nodes[0].bootstrap(), 4, true, Duration::from_secs(60));
    let before = meta_properties(&nodes[3]);
    assert_eq!(before.get("cluster.id").map(String::as_str), Some(CLUSTER_ID), "{before:?}");

    nodes[3].kill9();
    std::fs::remove_dir_all(nodes[3].data_dir()).expect("wipe node 4's data dir");
    wait_isr(&nodes[0].bootstrap(), 4, false, Duration::from_secs(30));
    deliveries.wait_acks("acknowledgements without node 4", deliveries.count(), 300);

    let restarted = Instant::now();
    nodes[3].restart();
    let after = meta_properties(&nodes[3]);
    assert_eq!(after.get("cluster.id"), before.get("cluster.id"), "the wiped node's new meta.properties");
    assert_eq!(after.get("node.id").map(String::as_str), Some("4"), "{after:?}");
    assert_ne!(after.get("directory.id"), before.get("directory.id"), "a new directory gets a new directory.id");
    wait_isr(&nodes[0].bootstrap(), 4, true, Duration::from_secs(3600));
    eprintln!("node 4 wiped and restarted: back in every ISR {:?} after the restart", restarted.elapsed());
    deliveries.wait_acks("acknowledgements after node 4 rejoined", deliveries.count(), 300);
    finish_and_check_assigned(
        W,
        producing,
        &nodes[0].bootstrap(),
        first,
        &roots(root.path(), &nodes),
        Some(&assignment),
    );
    eprintln!(
        "node 4 wiped and restarted: identical to the other replicas {:?} after the restart",
        restarted.elapsed()
    );
    assert!(nodes[3].running(), "node 4 exited");
}

#[test]
fn a_voter_restarted_on_a_wiped_data_dir_rejoins_the_quorum_and_re_replicates() {
    let root = TestDir::new();
    let mut nodes = start_cluster_with(root.path(), 3, &short_sessions());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let topic = NewTopic::new(W.topic, W.partitions, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
    create(&runtime, &nodes[0].bootstrap(), topic).expect("create RF 3");
    let bootstrap: String = nodes.iter().map(|n| n.bootstrap()).collect::<Vec<_>>().join(",");
    let controller =
        wait_for("an active controller", || process::cluster::active_controller(&runtime, &nodes[0].bootstrap()));
    // A voter that is not the active controller.
    let victim = nodes.iter().position(|n| n.id != controller).expect("a follower voter");
    let victim_id = nodes[victim].id;
    let other = nodes.iter().find(|n| n.id != victim_id).expect("another node").bootstrap();

    let producing = Producing::start(W, &bootstrap, 0);
    let deliveries = producing.deliveries.clone();
    deliveries.wait_acks("acknowledgements before the wipe", 0, 600);
    nodes[victim].kill9();
    std::fs::remove_dir_all(nodes[victim].data_dir()).expect("wipe the voter's data dir");
    wait_isr(&other, victim_id, false, Duration::from_secs(30));
    deliveries.wait_acks("acknowledgements without the wiped voter", deliveries.count(), 300);

    let restarted = Instant::now();
    nodes[victim].restart();
    wait_isr(&other, victim_id, true, Duration::from_secs(120));
    eprintln!("voter {victim_id} wiped and restarted: back in every ISR {:?} after the restart", restarted.elapsed());
    // It answers Metadata with the whole image: it caught up the metadata log.
    wait_for("the wiped voter answers Metadata with every partition", || isrs(&nodes[victim].bootstrap()));
    let described = wait_for("DescribeQuorum", || {
        process::cluster::describe_quorum(&runtime, &other).filter(|(code, _, _)| *code == 0)
    });
    assert!(described.2.contains(&victim_id), "the wiped node is still a voter: {described:?}");
    deliveries.wait_acks("acknowledgements after the voter rejoined", deliveries.count(), 300);
    finish_and_check(W, producing, &other, 0, &roots(root.path(), &nodes));
    // Without openraft's `loosen-follower-log-revert` the quorum leader
    // panicked here (its follower's log went back to empty), leaving a
    // node whose metadata never moved again.
    for n in nodes.iter_mut() {
        assert!(n.running(), "node {} exited", n.id);
        assert!(!n.log().contains("panicked at"), "node {} panicked; its log:\n{}", n.id, n.log());
    }
}
