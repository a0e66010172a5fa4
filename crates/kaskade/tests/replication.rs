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

use std::path::PathBuf;
use std::time::Duration;

use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

use process::cluster::{create, metadata, start_cluster_with, wait_for};
use process::replicas::{check_replicas, roots};
use process::{client_config, WAIT};

const TOPIC: &str = "replicated";
/// Replication factor 3 and min.insync.replicas 3.
const STRICT: &str = "strict";

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
    check_replicas(&roots(root.path(), &nodes), TOPIC, 0, N as i64);

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
    check_replicas(&live_roots, TOPIC, 0, 2 * N as i64);

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
    check_replicas(&roots(root.path(), &nodes), TOPIC, 0, 2 * N as i64);
    wait_for("the restarted follower rejoins the ISR", || isr(&bootstrap, TOPIC).filter(|isr| *isr == [1, 2, 3]));
}
