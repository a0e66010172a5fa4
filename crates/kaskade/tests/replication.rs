//! Replication across three `kaskade serve` processes: a topic with
//! replication factor 3 and `min.insync.replicas=2`, written by an
//! idempotent rdkafka producer with acks=all; a checker compares every
//! replica's segment files batch by batch (same offsets, same bytes,
//! leader epochs included) and names the first divergent offset. Then a
//! follower is killed with SIGKILL: acks=all goes on once the leader has
//! shrunk the ISR to the two live replicas, and a topic that needs three
//! in-sync replicas answers NOT_ENOUGH_REPLICAS; restarted, the follower
//! catches up, the checker passes again and the follower is back in the
//! ISR. Every wait is on a condition with a deadline.

mod process;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

use process::cluster::{create, metadata, start_cluster_with, wait_for, Node};
use process::{client_config, WAIT};

const TOPIC: &str = "replicated";
/// Replication factor 3 and min.insync.replicas 3.
const STRICT: &str = "strict";

/// One stored batch: its base offset, last offset and whole bytes.
#[derive(Debug, PartialEq, Eq)]
struct Batch {
    base: i64,
    last: i64,
    bytes: Vec<u8>,
}

/// The directory of partition 0 of `TOPIC` under a node's data directory.
fn partition_dir(root: &Path) -> Option<PathBuf> {
    let wanted = format!("{TOPIC}-0");
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n.to_string_lossy() == wanted) {
                    return Some(path);
                }
                stack.push(path);
            }
        }
    }
    None
}

/// Every whole batch in a node's segment files, in offset order (reading
/// while the node runs: a batch cut short at the end is left out).
fn batches(root: &Path) -> Vec<Batch> {
    let Some(dir) = partition_dir(root) else { return Vec::new() };
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "log")).collect())
        .unwrap_or_default();
    logs.sort();
    let mut out = Vec::new();
    for log in logs {
        let data = std::fs::read(&log).unwrap_or_default();
        let mut at = 0;
        while at + 61 <= data.len() {
            let base = i64::from_be_bytes(data[at..at + 8].try_into().expect("8 bytes"));
            let len = i32::from_be_bytes(data[at + 8..at + 12].try_into().expect("4 bytes"));
            if len < 49 || at + 12 + len as usize > data.len() {
                break;
            }
            let delta = i32::from_be_bytes(data[at + 23..at + 27].try_into().expect("4 bytes"));
            let end = at + 12 + len as usize;
            out.push(Batch { base, last: base + delta as i64, bytes: data[at..end].to_vec() });
            at = end;
        }
    }
    out
}

fn log_end(batches: &[Batch]) -> i64 {
    batches.last().map_or(0, |b| b.last + 1)
}

/// Every node's batches equal the first node's, batch by batch; `Err` names
/// the first divergent offset.
fn same_batches(roots: &[(i32, PathBuf)]) -> Result<i64, String> {
    let all: Vec<(i32, Vec<Batch>)> = roots.iter().map(|(id, r)| (*id, batches(r))).collect();
    let (first_id, first) = &all[0];
    for (id, other) in &all[1..] {
        if other.len() != first.len() {
            return Err(format!("node {id} holds {} batches, node {first_id} {}", other.len(), first.len()));
        }
        for (a, b) in first.iter().zip(other) {
            if a != b {
                return Err(format!(
                    "node {id} diverges from node {first_id} at offset {} (batches at {} and {})",
                    a.base.min(b.base),
                    a.base,
                    b.base
                ));
            }
        }
    }
    Ok(log_end(first))
}

/// Waits until every node's log ends at `end`, then checks the replicas
/// hold the same batches.
fn check_replicas(roots: &[(i32, PathBuf)], end: i64) {
    wait_for(&format!("every replica's log reaches offset {end}"), || {
        roots.iter().all(|(_, r)| log_end(&batches(r)) == end).then_some(())
    });
    let checked = same_batches(roots).unwrap_or_else(|e| panic!("replicas diverge: {e}"));
    assert_eq!(checked, end);
}

/// Sends `count` keyed records from `from` with an idempotent acks=all
/// producer; every one must be acknowledged.
fn produce(bootstrap: &str, from: usize, count: usize) {
    let producer: BaseProducer = client_config(bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        // Many batches, so the checker compares many.
        .set("batch.num.messages", "50")
        .create()
        .expect("producer");
    for i in from..from + count {
        let key = format!("key-{i}");
        let value = format!("value-{i}");
        if let Err((e, _)) = producer.send(BaseRecord::to(TOPIC).key(&key).payload(&value)) {
            panic!("enqueue record {i}: {e}");
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(WAIT).expect("every record acknowledged (acks=all)");
}

/// The ISR of partition 0 of `topic` as the node at `bootstrap` answers
/// Metadata, sorted.
fn isr(bootstrap: &str, topic: &str) -> Option<Vec<i32>> {
    let consumer: BaseConsumer = client_config(bootstrap).create().ok()?;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)).ok()?;
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    let mut isr = t.partitions().first()?.isr().to_vec();
    isr.sort_unstable();
    Some(isr)
}

/// A Fetch of partition 0 of `TOPIC` from offset 0 as replica `replica`
/// at `version` (replica_id up to v14, ReplicaState from v15): (error
/// code, HW, record bytes).
fn replica_fetch(runtime: &tokio::runtime::Runtime, bootstrap: &str, replica: i32, version: i16) -> (i16, i64, usize) {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
    use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    runtime.block_on(async {
        let client = kaskade_client::cluster::Client::new(bootstrap).expect("client");
        let md = client.topic(TOPIC, true).await.expect("metadata");
        let conn = client.any_connection().await.expect("connection");
        let mut req = FetchRequest::default();
        if version >= 15 {
            let mut state = ReplicaState::default();
            state.replica_id = BrokerId(replica);
            req.replica_state = state;
        } else {
            req.replica_id = BrokerId(replica);
        }
        req.max_wait_ms = 0;
        req.max_bytes = 1 << 20;
        req.session_epoch = -1;
        let mut p = FetchPartition::default();
        p.partition = 0;
        p.partition_max_bytes = 1 << 20;
        p.current_leader_epoch = -1;
        let mut t = FetchTopic::default();
        if version >= 13 {
            t.topic_id = md.topic_id;
        } else {
            t.topic = TopicName(StrBytes::from_static_str(TOPIC));
        }
        t.partitions.push(p);
        req.topics.push(t);
        let resp = conn.send(&req, version).await.expect("Fetch");
        let pd = &resp.responses[0].partitions[0];
        (pd.error_code, pd.high_watermark, pd.records.as_ref().map_or(0, |r| r.len()))
    })
}

fn roots(root: &Path, nodes: &[Node]) -> Vec<(i32, PathBuf)> {
    nodes.iter().map(|n| (n.id, root.join(format!("node-{}", n.id)))).collect()
}

#[test]
fn three_replicas_hold_the_same_batches_through_a_follower_crash() {
    let root = tempfile::tempdir().expect("tempdir");
    // A follower is out of the ISR after 2 s without catching up.
    let env = [("KAFKA_REPLICA_LAG_TIME_MAX_MS".to_string(), "2000".to_string())];
    let mut nodes = start_cluster_with(root.path(), 3, &env);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let topic = NewTopic::new(TOPIC, 1, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
    create(&runtime, &nodes[0].bootstrap(), topic).expect("create RF 3");
    let strict = NewTopic::new(STRICT, 1, TopicReplication::Fixed(3)).set("min.insync.replicas", "3");
    create(&runtime, &nodes[0].bootstrap(), strict).expect("create RF 3, min ISR 3");
    let leader = wait_for("every node knows the topic's leader", || {
        let leaders: Vec<i32> = nodes
            .iter()
            .filter_map(|n| metadata(&n.bootstrap(), TOPIC))
            .filter_map(|(_, l)| l.first().copied())
            .collect();
        (leaders.len() == 3 && leaders.iter().all(|l| *l == leaders[0] && *l > 0)).then(|| leaders[0])
    });

    const N: usize = 2000;
    produce(&nodes[0].bootstrap(), 0, N);
    check_replicas(&roots(root.path(), &nodes), N as i64);

    // A replica fetch from a broker that holds no replica of the partition
    // gets no records (and moves nothing), at both wire forms.
    let leader_node = nodes.iter().find(|n| n.id == leader).expect("the leader");
    for version in [12, 15] {
        let (code, hw, bytes) = replica_fetch(&runtime, &leader_node.bootstrap(), 99, version);
        assert_eq!((code, bytes), (0, 0), "replica 99 at v{version}");
        assert_eq!(hw, N as i64, "the HW is still answered");
    }

    // A follower dies: acks=all goes on with the two others (ISR 2 >= 2).
    let victim = nodes.iter().position(|n| n.id != leader).expect("a follower");
    nodes[victim].kill9();
    let live: Vec<usize> = (0..3).filter(|i| *i != victim).collect();
    produce(&nodes[live[0]].bootstrap(), N, N);
    let live_roots: Vec<(i32, PathBuf)> =
        live.iter().map(|i| (nodes[*i].id, root.path().join(format!("node-{}", nodes[*i].id)))).collect();
    check_replicas(&live_roots, 2 * N as i64);

    // With two in-sync replicas, a topic that needs three refuses acks=all
    // before the append (NOT_ENOUGH_REPLICAS), once its ISR shrank too.
    let bootstrap = nodes[live[0]].bootstrap();
    let live_ids: Vec<i32> = {
        let mut ids: Vec<i32> = live.iter().map(|i| nodes[*i].id).collect();
        ids.sort_unstable();
        ids
    };
    wait_for("the strict topic's ISR shrinks to the live replicas", || {
        isr(&bootstrap, STRICT).filter(|isr| *isr == live_ids)
    });
    let strict_producer: FutureProducer =
        client_config(&bootstrap).set("acks", "all").set("retries", "0").create().expect("producer");
    let refused = runtime.block_on(strict_producer.send(FutureRecord::<(), _>::to(STRICT).payload("x"), WAIT));
    match refused {
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::NotEnoughReplicas), _)) => {}
        other => panic!("acks=all with ISR 2 < min.insync.replicas 3 must be NOT_ENOUGH_REPLICAS: {other:?}"),
    }

    // Restarted, it catches up from its own log and rejoins the ISR.
    nodes[victim].restart();
    check_replicas(&roots(root.path(), &nodes), 2 * N as i64);
    wait_for("the restarted follower rejoins the ISR", || isr(&bootstrap, TOPIC).filter(|isr| *isr == [1, 2, 3]));
}
