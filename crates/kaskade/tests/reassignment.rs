//! Partition reassignment across three `kaskade serve` processes, asked of
//! a node that is not the partition's leader (AlterPartitionReassignments
//! and ListPartitionReassignments over the wire, as
//! kafka-reassign-partitions sends them):
//! - a move of an RF 1 partition with data on node 1 to nodes 2 and 3
//!   (RF 2), throttled (`leader.replication.throttled.rate` and
//!   `follower.replication.throttled.rate` with the topic's throttled
//!   replica lists), while an idempotent acks=all producer writes: the
//!   move shows in ListPartitionReassignments and Metadata (all three
//!   replicas), completes once the new replicas caught up, leadership
//!   leaves node 1, every acknowledged record is read back once at its
//!   offset, the two replicas hold the same batches, and node 1's log is
//!   deleted. The move's duration against size / rate is printed.
//! - a cancellation: a move that cannot finish (throttled to a trickle) is
//!   cancelled; the partition is back on its old replica, the adding
//!   replica's log is deleted, a second cancel is NO_REASSIGNMENT_IN_PROGRESS;
//!   invalid targets get INVALID_REPLICA_ASSIGNMENT and
//!   UNKNOWN_TOPIC_OR_PARTITION.
//!
//! Every wait is on a condition with a deadline.

mod process;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, ListPartitionReassignmentsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kaskade_client::connection::{Connection, ConnectionConfig};
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset as KOffset, TopicPartitionList};

use process::cluster::{create, start_cluster_with, wait_for, Node};
use process::replicas::{batches, check_replicas, log_end};
use process::{client_config, WAIT};

const VALUE_BYTES: usize = 1024;

fn connect(runtime: &tokio::runtime::Runtime, bootstrap: &str) -> Arc<Connection> {
    runtime.block_on(Connection::connect(bootstrap, ConnectionConfig::default())).expect("connect")
}

/// AlterPartitionReassignments of `topic`-`partition` to `replicas`
/// (`None`: cancel) asked of the node at `bootstrap`: (error, message).
fn reassign(
    runtime: &tokio::runtime::Runtime,
    bootstrap: &str,
    topic: &str,
    partition: i32,
    replicas: Option<&[i32]>,
) -> (Option<ResponseError>, Option<String>) {
    let conn = connect(runtime, bootstrap);
    let mut p = ReassignablePartition::default();
    p.partition_index = partition;
    p.replicas = replicas.map(|r| r.iter().copied().map(BrokerId).collect());
    let mut t = ReassignableTopic::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions.push(p);
    let mut req = AlterPartitionReassignmentsRequest::default();
    req.timeout_ms = 30_000;
    req.topics.push(t);
    let version = conn.version::<AlterPartitionReassignmentsRequest>().expect("version");
    let resp = runtime.block_on(conn.send(&req, version)).expect("AlterPartitionReassignments");
    assert_eq!(resp.error_code, 0, "top-level error: {:?}", resp.error_message);
    let p = &resp.responses[0].partitions[0];
    (ResponseError::try_from_code(p.error_code), p.error_message.as_ref().map(|m| m.to_string()))
}

/// The reassignment of `topic`-0 ListPartitionReassignments shows at
/// `bootstrap`: (replicas, adding, removing), or `None` when none.
fn listed(runtime: &tokio::runtime::Runtime, bootstrap: &str, topic: &str) -> Option<(Vec<i32>, Vec<i32>, Vec<i32>)> {
    let conn = connect(runtime, bootstrap);
    let mut t = ListPartitionReassignmentsTopics::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partition_indexes = vec![0];
    let mut req = ListPartitionReassignmentsRequest::default();
    req.timeout_ms = 30_000;
    req.topics = Some(vec![t]);
    let resp = runtime.block_on(conn.send(&req, 0)).expect("ListPartitionReassignments");
    assert_eq!(resp.error_code, 0);
    let p = resp.topics.first()?.partitions.first()?;
    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<_>>();
    Some((ids(&p.replicas), ids(&p.adding_replicas), ids(&p.removing_replicas)))
}

/// (leader, replicas) of `topic`-0 as the node at `bootstrap` answers Metadata.
fn placement(bootstrap: &str, topic: &str) -> Option<(i32, Vec<i32>)> {
    let consumer: BaseConsumer = client_config(bootstrap).create().ok()?;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)).ok()?;
    let p = md.topics().iter().find(|t| t.name() == topic)?.partitions().first()?.clone_fields();
    Some(p)
}

trait Fields {
    fn clone_fields(&self) -> (i32, Vec<i32>);
}

impl Fields for rdkafka::metadata::MetadataPartition {
    fn clone_fields(&self) -> (i32, Vec<i32>) {
        (self.leader(), self.replicas().to_vec())
    }
}

/// Sets dynamic broker configs on every node (AlterConfigs per broker).
fn set_broker_configs(runtime: &tokio::runtime::Runtime, nodes: &[Node], configs: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> = client_config(&nodes[0].bootstrap()).create().expect("admin");
    let options = AdminOptions::new().request_timeout(Some(WAIT));
    for n in nodes {
        let mut alter = AlterConfig::new(ResourceSpecifier::Broker(n.id));
        for (k, v) in configs {
            alter = alter.set(k, v);
        }
        let results = runtime.block_on(admin.alter_configs(&[alter], &options)).expect("AlterConfigs");
        for r in results {
            r.unwrap_or_else(|e| panic!("broker {} configs: {e:?}", n.id));
        }
    }
}

/// Writes `count` records of `VALUE_BYTES` with an idempotent acks=all
/// producer, keys from `from`; each acknowledged (offset, key).
fn produce(
    runtime: &tokio::runtime::Runtime,
    producer: &FutureProducer,
    topic: &str,
    from: usize,
    count: usize,
) -> Vec<(i64, String)> {
    let value = vec![b'v'; VALUE_BYTES];
    let mut pending = Vec::with_capacity(count);
    for i in from..from + count {
        let key = format!("key-{i}");
        let mut record = FutureRecord::to(topic).key(&key).payload(&value);
        // A full queue empties as deliveries come back.
        let delivery = loop {
            match producer.send_result(record) {
                Ok(d) => break d,
                Err((e, r)) => {
                    assert!(
                        matches!(
                            e,
                            rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull)
                        ),
                        "enqueue {key}: {e}"
                    );
                    record = r;
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        };
        pending.push((key.clone(), delivery));
    }
    runtime.block_on(async {
        let mut acked = Vec::new();
        for (key, delivery) in pending {
            match delivery.await {
                Ok(Ok(d)) => acked.push((d.offset, key)),
                Ok(Err((e, _))) => eprintln!("not acknowledged: {key}: {e}"),
                Err(_) => eprintln!("not acknowledged: {key}: the producer went away"),
            }
        }
        acked
    })
}

fn producer(bootstrap: &str) -> FutureProducer {
    client_config(bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .expect("producer")
}

/// Every record of `topic`-0 from the start, read through `bootstrap`:
/// offset -> key, up to `end` (fewer if they are not all there within
/// `WAIT`).
fn read_back(bootstrap: &str, topic: &str, end: i64) -> BTreeMap<i64, String> {
    // rdkafka wants a group id even to assign; nothing is committed.
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", "reassignment-checker")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, KOffset::Beginning).expect("assign");
    consumer.assign(&tpl).expect("assign");
    let mut out = BTreeMap::new();
    let deadline = Instant::now() + WAIT;
    while out.len() < end as usize && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).to_string();
            assert!(out.insert(m.offset(), key).is_none(), "offset {} read twice", m.offset());
        }
    }
    out
}

/// Whether a node's data directory still holds a directory of `topic`-0.
fn has_log_dir(node_root: &Path, topic: &str) -> bool {
    let wanted = format!("{topic}-0");
    let mut stack = vec![node_root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n.to_string_lossy() == wanted) {
                    return true;
                }
                stack.push(path);
            }
        }
    }
    false
}

fn cluster(root: &Path) -> (Vec<Node>, tokio::runtime::Runtime) {
    // The leader checks its ISR every second. The throttles measure over 2
    // samples of 1 s (Kafka's default 11 would let the first 10 s of the
    // rate through at once: the whole move).
    let env = [
        ("KAFKA_REPLICA_LAG_TIME_MAX_MS".to_string(), "2000".to_string()),
        ("KAFKA_REPLICATION_QUOTA_WINDOW_NUM".to_string(), "2".to_string()),
    ];
    let nodes = start_cluster_with(root, 3, &env);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    (nodes, runtime)
}

#[test]
fn a_throttled_move_from_one_node_to_two_loses_no_acknowledged_record() {
    const TOPIC: &str = "moved";
    const RATE: u64 = 2 << 20;
    const PRELOAD: usize = 4096;
    let root = tempfile::tempdir().expect("tempdir");
    let (nodes, runtime) = cluster(root.path());
    let topic = NewTopic::new(TOPIC, 1, TopicReplication::Variable(&[&[1]]))
        .set("leader.replication.throttled.replicas", "0:1")
        .set("follower.replication.throttled.replicas", "0:2,0:3");
    create(&runtime, &nodes[0].bootstrap(), topic).expect("create RF 1 on node 1");
    let rate = RATE.to_string();
    set_broker_configs(
        &runtime,
        &nodes,
        &[("leader.replication.throttled.rate", &rate), ("follower.replication.throttled.rate", &rate)],
    );
    wait_for("node 1 leads the topic", || placement(&nodes[2].bootstrap(), TOPIC).filter(|p| p.0 == 1));

    let p = producer(&nodes[0].bootstrap());
    let mut acked = produce(&runtime, &p, TOPIC, 0, PRELOAD);
    assert_eq!(acked.len(), PRELOAD, "the preload is acknowledged");
    let size = log_end(&batches(&root.path().join("node-1"), TOPIC, 0));
    assert_eq!(size, PRELOAD as i64);

    // The producer keeps writing through the move.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, bootstrap) = (stop.clone(), nodes[0].bootstrap());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            let p = producer(&bootstrap);
            let mut acked = Vec::new();
            let mut next = PRELOAD;
            // Paced at most 20 KiB per 50 ms (400 KiB/s), below what the
            // throttle lets each new replica copy (half the leader's rate),
            // or they could never catch up, as in Kafka.
            while !stop.load(Ordering::SeqCst) {
                acked.extend(produce(&runtime, &p, TOPIC, next, 20));
                next += 20;
                std::thread::sleep(Duration::from_millis(50));
            }
            p.flush(WAIT).expect("flush");
            acked
        })
    };

    // Asked of node 3, which leads nothing of it: the change is forwarded.
    let started = Instant::now();
    assert_eq!(reassign(&runtime, &nodes[2].bootstrap(), TOPIC, 0, Some(&[2, 3])), (None, None));
    // Listed the same through every node (the others forward the list to
    // the active controller).
    for n in &nodes {
        let during = listed(&runtime, &n.bootstrap(), TOPIC).expect("the move is in progress");
        assert_eq!(during, (vec![2, 3, 1], vec![2, 3], vec![1]), "through node {}", n.id);
    }
    wait_for("Metadata names the three replicas of the move", || {
        placement(&nodes[1].bootstrap(), TOPIC).filter(|p| p.1 == [2, 3, 1])
    });
    wait_for("the move completes", || listed(&runtime, &nodes[2].bootstrap(), TOPIC).is_none().then_some(()));
    let took = started.elapsed();
    let (leader, replicas) = wait_for("Metadata names the new replicas", || {
        placement(&nodes[0].bootstrap(), TOPIC).filter(|p| p.1 == [2, 3])
    });
    assert!(leader == 2 || leader == 3, "leadership left node 1: {leader}");

    stop.store(true, Ordering::SeqCst);
    acked.extend(writer.join().expect("writer"));
    let moved_bytes = (PRELOAD * VALUE_BYTES) as f64;
    // The leader's quota is shared by the two new replicas.
    let expected = 2.0 * moved_bytes / RATE as f64;
    println!(
        "reassignment: {:.1} MiB to 2 new replicas at leader/follower rate {} MiB/s took {:.2} s \
         (2 x size / rate = {expected:.2} s, the quota's first window is a burst); {} records acknowledged",
        moved_bytes / f64::from(1 << 20),
        RATE >> 20,
        took.as_secs_f64(),
        acked.len()
    );
    assert!(took.as_secs_f64() >= expected / 2.0, "the throttle held the move back: {took:?}");

    // Every acknowledged record is there once, at its offset; nothing else.
    let roots: Vec<(i32, std::path::PathBuf)> =
        [2, 3].iter().map(|id| (*id, root.path().join(format!("node-{id}")))).collect();
    let end = acked.iter().map(|(o, _)| o + 1).max().unwrap_or(0);
    let read = read_back(&nodes[leader as usize - 1].bootstrap(), TOPIC, end);
    if read.len() < end as usize {
        // What each node holds, for the failure message.
        for id in 1..=3 {
            let b = batches(&root.path().join(format!("node-{id}")), TOPIC, 0);
            let tail: Vec<(i64, i64)> = b.iter().rev().take(4).map(|b| (b.base, b.last)).collect();
            eprintln!("node {id}: {} batches, last {tail:?}", b.len());
        }
        let missing: Vec<i64> = (0..end).filter(|o| !read.contains_key(o)).take(40).collect();
        panic!("read {} of {end} acknowledged offsets back; missing {missing:?}", read.len());
    }
    for (offset, key) in &acked {
        assert_eq!(read.get(offset), Some(key), "acknowledged record at {offset}");
    }
    assert_eq!(read.len(), acked.len(), "nothing but the acknowledged records");
    check_replicas(&roots, TOPIC, 0, end);
    assert_eq!(replicas, vec![2, 3]);
    wait_for("node 1 deleted its log", || (!has_log_dir(&root.path().join("node-1"), TOPIC)).then_some(()));
}

#[test]
fn a_cancelled_move_goes_back_and_bad_requests_get_kafkas_errors() {
    const TOPIC: &str = "cancelled";
    let root = tempfile::tempdir().expect("tempdir");
    let (nodes, runtime) = cluster(root.path());
    let topic = NewTopic::new(TOPIC, 1, TopicReplication::Variable(&[&[1]]))
        .set("follower.replication.throttled.replicas", "*");
    create(&runtime, &nodes[0].bootstrap(), topic).expect("create RF 1 on node 1");
    // A trickle: 1 KiB/s, so the move of 2 MiB cannot finish.
    set_broker_configs(&runtime, &nodes, &[("follower.replication.throttled.rate", "1024")]);
    wait_for("node 1 leads the topic", || placement(&nodes[1].bootstrap(), TOPIC).filter(|p| p.0 == 1));
    let p = producer(&nodes[0].bootstrap());
    assert_eq!(produce(&runtime, &p, TOPIC, 0, 2048).len(), 2048);

    let b = nodes[1].bootstrap();
    assert_eq!(reassign(&runtime, &b, TOPIC, 0, None).0, Some(ResponseError::NoReassignmentInProgress));
    assert_eq!(reassign(&runtime, &b, TOPIC, 0, Some(&[2])), (None, None));
    assert_eq!(listed(&runtime, &b, TOPIC), Some((vec![2, 1], vec![2], vec![1])));
    wait_for("node 2 made the adding replica's log", || has_log_dir(&root.path().join("node-2"), TOPIC).then_some(()));

    assert_eq!(reassign(&runtime, &b, TOPIC, 0, None), (None, None));
    assert_eq!(listed(&runtime, &b, TOPIC), None);
    wait_for("Metadata names the old replica", || {
        placement(&nodes[2].bootstrap(), TOPIC).filter(|p| *p == (1, vec![1]))
    });
    wait_for("node 2 deleted the cancelled replica's log", || {
        (!has_log_dir(&root.path().join("node-2"), TOPIC)).then_some(())
    });
    assert_eq!(reassign(&runtime, &b, TOPIC, 0, None).0, Some(ResponseError::NoReassignmentInProgress));

    // Bad targets.
    let (e, m) = reassign(&runtime, &b, TOPIC, 0, Some(&[2, 9]));
    assert_eq!(e, Some(ResponseError::InvalidReplicaAssignment));
    assert!(m.unwrap_or_default().contains("broker 9, but no such broker is registered"));
    assert_eq!(reassign(&runtime, &b, TOPIC, 0, Some(&[])).0, Some(ResponseError::InvalidReplicaAssignment));
    assert_eq!(reassign(&runtime, &b, TOPIC, 0, Some(&[2, 2])).0, Some(ResponseError::InvalidReplicaAssignment));
    assert_eq!(reassign(&runtime, &b, TOPIC, 5, Some(&[2])).0, Some(ResponseError::UnknownTopicOrPartition));
    assert_eq!(reassign(&runtime, &b, "nope", 0, Some(&[2])).0, Some(ResponseError::UnknownTopicOrPartition));
    // Still on node 1, every record there.
    assert_eq!(log_end(&batches(&root.path().join("node-1"), TOPIC, 0)), 2048);
}
