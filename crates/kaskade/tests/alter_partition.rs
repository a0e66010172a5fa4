//! ISR changes through Kafka's AlterPartition (56) in a three-node cluster.
//! A follower that is not the active controller is stopped (SIGSTOP) for
//! longer than `replica.lag.time.max.ms` but far less than its broker
//! session, so the controller never fences it: the ISR shrinks only because
//! the partition leader asked the active controller with AlterPartition;
//! resumed (SIGCONT), the follower catches up and the leader's next
//! AlterPartition brings it back. On the controller listeners an
//! AlterPartition from a broker at a broker epoch it does not have is
//! refused as a whole: STALE_BROKER_EPOCH from the active controller,
//! NOT_CONTROLLER from the others. Every wait is on a condition with a
//! deadline.

mod process;

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::alter_partition_request::{BrokerState, PartitionData, TopicData};
use kafka_protocol::messages::{AlterPartitionRequest, BrokerId};
use kafka_protocol::ResponseError;
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use process::cluster::{create, describe_quorum, start_cluster_with, wait_for};
use process::{client_config, WAIT};

const TOPIC: &str = "altered";

/// (leader, ISR sorted, topic id) of `TOPIC`'s only partition as the node
/// at `bootstrap` answers Metadata.
fn partition(runtime: &tokio::runtime::Runtime, bootstrap: &str) -> Option<(i32, Vec<i32>, uuid::Uuid)> {
    let client = kaskade_client::cluster::Client::new(bootstrap).ok()?;
    let md = runtime.block_on(client.metadata(Some(&[TOPIC.to_string()]))).ok()?;
    let t = md.topics.iter().find(|t| t.name == TOPIC && t.error.is_none())?;
    let p = t.partition(0)?;
    let mut isr: Vec<i32> = p.isr.iter().map(|n| n.get()).collect();
    isr.sort_unstable();
    Some((p.leader?.get(), isr, t.topic_id))
}

#[test]
fn a_leader_shrinks_and_expands_the_isr_through_the_active_controller() {
    let root = tempfile::tempdir().expect("tempdir");
    let env: Vec<(String, String)> = [
        // A silent follower leaves the ISR after 1 s (checked every 0.5 s),
        // and its session outlives the whole test: it is never fenced.
        ("KAFKA_REPLICA_LAG_TIME_MAX_MS", "1000"),
        ("KAFKA_BROKER_SESSION_TIMEOUT_MS", "600000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let nodes = start_cluster_with(root.path(), 3, &env);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let b1 = nodes[0].bootstrap();
    create(&runtime, &b1, NewTopic::new(TOPIC, 1, TopicReplication::Fixed(3))).expect("create RF 3");
    let all = vec![1, 2, 3];
    let (leader, _, topic_id) =
        wait_for("every replica in sync", || partition(&runtime, &b1).filter(|(_, isr, _)| *isr == all));
    let li = nodes.iter().position(|n| n.id == leader).expect("the leader");
    let producer: BaseProducer = client_config(&nodes[li].bootstrap()).set("acks", "all").create().expect("producer");
    let produce = |from: usize| {
        for i in from..from + 100 {
            producer.send(BaseRecord::<(), _>::to(TOPIC).payload(&format!("v-{i}"))).expect("enqueue");
            producer.poll(Duration::ZERO);
        }
        producer.flush(WAIT).expect("acks=all");
    };
    produce(0);

    // The victim: a follower that is not the active controller, so the
    // quorum keeps its leader.
    let (_, controller, _) = wait_for("an active controller", || {
        describe_quorum(&runtime, &nodes[li].bootstrap()).filter(|(code, leader, _)| *code == 0 && *leader > 0)
    });
    let vi = nodes.iter().position(|n| n.id != leader && n.id != controller).expect("a follower");
    let victim = nodes[vi].id;
    nodes[vi].signal("STOP");
    let without: Vec<i32> = all.iter().copied().filter(|n| *n != victim).collect();
    let bl = nodes[li].bootstrap();
    wait_for("the leader's AlterPartition shrinks the ISR", || {
        partition(&runtime, &bl).filter(|(l, isr, _)| *l == leader && *isr == without)
    });
    // acks=all needs only the ISR now.
    produce(100);
    nodes[vi].signal("CONT");
    wait_for("the leader's AlterPartition brings the follower back", || {
        partition(&runtime, &bl).filter(|(l, isr, _)| *l == leader && *isr == all)
    });

    // A stale broker epoch, at every controller listener.
    let config = kaskade_client::connection::ConnectionConfig {
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(15),
        ..Default::default()
    };
    let members = all.iter().map(|n| BrokerState::default().with_broker_id(BrokerId(*n)).with_broker_epoch(-1));
    let change = PartitionData::default().with_partition_index(0).with_new_isr_with_epochs(members.collect());
    let request = AlterPartitionRequest::default()
        .with_broker_id(BrokerId(leader))
        .with_broker_epoch(12345)
        .with_topics(vec![TopicData::default().with_topic_id(topic_id).with_partitions(vec![change])]);
    let answers = wait_for("one active controller refuses the epoch, the others say NOT_CONTROLLER", || {
        let mut codes = BTreeMap::new();
        for (id, port) in &nodes[0].voters {
            let addr = format!("127.0.0.1:{port}");
            let conn = runtime.block_on(kaskade_client::connection::Connection::connect(&addr, config.clone())).ok()?;
            let answer = runtime.block_on(conn.send(&request, 3)).ok()?;
            assert!(answer.topics.is_empty(), "a refused request answers no partition: {answer:?}");
            codes.insert(*id, answer.error_code);
        }
        let stale = codes.values().filter(|c| **c == ResponseError::StaleBrokerEpoch.code()).count();
        let not = codes.values().filter(|c| **c == ResponseError::NotController.code()).count();
        (stale == 1 && not == 2).then_some(codes)
    });
    eprintln!("alter_partition: AlterPartition at a stale broker epoch, by controller: {answers:?}");
}
