//! Transactions across the brokers of a three-node cluster (`kaskade
//! serve` processes): a transactional rdkafka producer writes to a
//! 6-partition topic whose leaders are spread over the three brokers, so
//! its coordinator must send WriteTxnMarkers to the other two; a committed
//! transaction is read exactly once by a read_committed consumer, an
//! aborted one leaves nothing visible and does not hold any partition's
//! LSO back, and offsets sent to the transaction for a group whose
//! coordinator runs on another node than the transaction coordinator are
//! committed with it. A leader killed (SIGKILL) before the commit gets its
//! markers once it is back (the coordinator retries, reconnecting to the
//! new incarnation). A coordinator killed between Prepare and Complete
//! (a leader of the transaction's partitions down, so its markers are
//! due): the coordinator of the next `__transaction_state` leader epoch
//! loads PrepareCommit, writes every marker and completes it, so
//! read_committed sees the transaction whole and the id serves a new
//! producer. Every wait is on a condition with a deadline.

mod process;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};

use process::cluster::{create, metadata, start_cluster, wait_for};
use process::{client_config, WAIT};

const TOPIC: &str = "txn-spread";
const PARTITIONS: i32 = 6;
/// Records per partition in each of the first two transactions.
const PER_PARTITION: usize = 10;
/// The offset the transaction commits for the group on every partition.
const GROUP_OFFSET: i64 = 5;

/// The node FindCoordinator names for `key` of `key_type` (0 group,
/// 1 transaction), asked of `bootstrap`; `None` until it answers without
/// an error.
fn coordinator(runtime: &tokio::runtime::Runtime, bootstrap: &str, key: &str, key_type: i8) -> Option<i32> {
    use kafka_protocol::messages::FindCoordinatorRequest;
    use kafka_protocol::protocol::StrBytes;
    let client = kaskade_client::cluster::Client::new(bootstrap).ok()?;
    runtime.block_on(async {
        let conn = client.any_connection().await.ok()?;
        let version = conn.version::<FindCoordinatorRequest>().ok()?.min(4);
        let key = StrBytes::from_string(key.to_string());
        let req = FindCoordinatorRequest::default().with_key_type(key_type);
        let req = if version >= 4 { req.with_coordinator_keys(vec![key]) } else { req.with_key(key) };
        let resp = conn.send(&req, version).await.ok()?;
        let (error, node) = match resp.coordinators.first() {
            Some(c) => (c.error_code, c.node_id.0),
            None => (resp.error_code, resp.node_id.0),
        };
        (error == 0).then_some(node)
    })
}

/// Sends `count` records to every partition, values `{prefix}-{p}-{i}`.
fn send_each(producer: &ThreadedProducer<DefaultProducerContext>, prefix: &str, count: usize) {
    send_each_to(producer, TOPIC, prefix, count)
}

fn send_each_to(producer: &ThreadedProducer<DefaultProducerContext>, topic: &str, prefix: &str, count: usize) {
    for p in 0..PARTITIONS {
        for i in 0..count {
            let value = format!("{prefix}-{p}-{i}");
            producer.send(BaseRecord::<(), _>::to(topic).partition(p).payload(&value)).expect("enqueue");
        }
    }
}

/// What a read_committed consumer reads of every partition until it has
/// seen `last(p)` on each.
fn read_committed_until(bootstrap: &str, last: impl Fn(i32) -> String) -> BTreeMap<i32, Vec<String>> {
    read_committed_of(bootstrap, TOPIC, last)
}

fn read_committed_of(bootstrap: &str, topic: &str, last: impl Fn(i32) -> String) -> BTreeMap<i32, Vec<String>> {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", "cluster-txn-verifier")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "50")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut read: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let deadline = Instant::now() + WAIT;
    while (0..PARTITIONS).any(|p| read.get(&p).and_then(|v| v.last()) != Some(&last(p))) {
        assert!(Instant::now() < deadline, "read_committed did not reach the last records: {read:?}");
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => read
                .entry(m.partition())
                .or_default()
                .push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()),
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => panic!("consumer error: {e}"),
        }
    }
    read
}

#[test]
fn transactions_spanning_every_broker_commit_abort_and_carry_group_offsets() {
    let root = tempfile::tempdir().expect("tempdir");
    let nodes = start_cluster(root.path());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let bootstrap = nodes[0].bootstrap();

    create(&runtime, &bootstrap, NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(1))).expect("create");
    for node in &nodes {
        let (_, leaders) = wait_for("every node knows the topic's leaders", || {
            metadata(&node.bootstrap(), TOPIC).filter(|(b, l)| b.len() == 3 && l.len() == PARTITIONS as usize)
        });
        assert_eq!(leaders.iter().copied().collect::<BTreeSet<i32>>(), BTreeSet::from([1, 2, 3]), "{leaders:?}");
    }

    // The transaction's coordinator, and a group coordinated elsewhere.
    let txn_id = "cluster-txn";
    let txn_coordinator = wait_for("the transaction coordinator", || coordinator(&runtime, &bootstrap, txn_id, 1));
    let group = wait_for("a group coordinated by another node", || {
        (0..50).map(|i| format!("cluster-txn-group-{i}")).find_map(|g| {
            coordinator(&runtime, &bootstrap, &g, 0).filter(|&node| node != txn_coordinator).map(|_| g.clone())
        })
    });

    let producer: ThreadedProducer<DefaultProducerContext> =
        client_config(&bootstrap).set("transactional.id", txn_id).set("linger.ms", "5").create().expect("producer");
    producer.init_transactions(WAIT).expect("init_transactions");

    // 1: committed, with the group's offsets.
    producer.begin_transaction().expect("begin");
    send_each(&producer, "committed", PER_PARTITION);
    let group_consumer: BaseConsumer = client_config(&bootstrap)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("group consumer");
    let mut offsets = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        offsets.add_partition_offset(TOPIC, p, Offset::Offset(GROUP_OFFSET)).expect("tpl");
    }
    let group_metadata = group_consumer.group_metadata().expect("group metadata");
    producer.send_offsets_to_transaction(&offsets, &group_metadata, WAIT).expect("send offsets");
    let started = Instant::now();
    producer.commit_transaction(WAIT).expect("commit");
    eprintln!("commit across three brokers answered in {:?}", started.elapsed());

    // 2: aborted after its records reached every leader.
    producer.begin_transaction().expect("begin");
    send_each(&producer, "aborted", PER_PARTITION);
    producer.flush(WAIT).expect("flushed");
    producer.abort_transaction(WAIT).expect("abort");

    // 3: one committed record per partition, past the aborted ones: a
    // read_committed consumer reaches it only if every partition's LSO
    // moved past the aborted transaction.
    producer.begin_transaction().expect("begin");
    send_each(&producer, "after", 1);
    producer.commit_transaction(WAIT).expect("commit");

    let read = read_committed_until(&nodes[2].bootstrap(), |p| format!("after-{p}-0"));
    for p in 0..PARTITIONS {
        let mut expected: Vec<String> = (0..PER_PARTITION).map(|i| format!("committed-{p}-{i}")).collect();
        expected.push(format!("after-{p}-0"));
        assert_eq!(read[&p], expected, "partition {p}: each committed record once, nothing aborted");
    }

    // The offsets committed with transaction 1, on the group's coordinator.
    let mut asked = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        asked.add_partition(TOPIC, p);
    }
    let committed = wait_for("the group's offsets", || {
        let c = group_consumer.committed_offsets(asked.clone(), Duration::from_secs(5)).ok()?;
        let offsets: Vec<Offset> = c.elements().iter().map(|e| e.offset()).collect();
        offsets.iter().all(|o| *o == Offset::Offset(GROUP_OFFSET)).then_some(offsets)
    });
    assert_eq!(committed.len(), PARTITIONS as usize);
}

#[test]
fn markers_for_a_leader_killed_before_the_commit_are_written_once_it_is_back() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut nodes = start_cluster(root.path());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let bootstrap = nodes[0].bootstrap();
    let topic = "txn-killed";
    create(&runtime, &bootstrap, NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1))).expect("create");
    let (_, leaders) = wait_for("the topic's leaders", || {
        metadata(&bootstrap, topic).filter(|(b, l)| b.len() == 3 && l.len() == PARTITIONS as usize)
    });

    let txn_id = "cluster-txn-killed";
    let txn_coordinator = wait_for("the transaction coordinator", || coordinator(&runtime, &bootstrap, txn_id, 1));
    let producer: ThreadedProducer<DefaultProducerContext> =
        client_config(&bootstrap).set("transactional.id", txn_id).set("linger.ms", "5").create().expect("producer");
    producer.init_transactions(WAIT).expect("init_transactions");
    producer.begin_transaction().expect("begin");
    send_each_to(&producer, topic, "killed", PER_PARTITION);
    producer.flush(WAIT).expect("every record on its leader");

    // A leader of some of its partitions that is neither the transaction's
    // coordinator nor the node the clients bootstrap from.
    let victim = [2, 3].into_iter().find(|&n| n != txn_coordinator).expect("a node to kill");
    assert!(leaders.contains(&victim), "{leaders:?}");
    nodes[victim as usize - 1].kill9();
    // Decided: answered once Prepare is durable, at most the markers' bound
    // later; the victim's markers stay due.
    producer.commit_transaction(WAIT).expect("commit decided");

    nodes[victim as usize - 1].restart();
    let read = read_committed_of(&bootstrap, topic, |p| format!("killed-{p}-{}", PER_PARTITION - 1));
    for p in 0..PARTITIONS {
        let expected: Vec<String> = (0..PER_PARTITION).map(|i| format!("killed-{p}-{i}")).collect();
        assert_eq!(read[&p], expected, "partition {p} (leader {})", leaders[p as usize]);
    }
}

#[test]
fn a_coordinator_killed_between_prepare_and_complete_is_succeeded_by_one_that_completes_it() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut nodes = start_cluster(root.path());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let bootstrap = nodes[0].bootstrap();
    let topic = "txn-failover";
    create(&runtime, &bootstrap, NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1))).expect("create");
    let (_, leaders) = wait_for("the topic's leaders", || {
        metadata(&bootstrap, topic).filter(|(b, l)| b.len() == 3 && l.len() == PARTITIONS as usize)
    });
    // An id coordinated by node 2 or 3 (node 1 is the clients' bootstrap
    // and stays up), and the other of the two, a leader to kill first.
    let (txn_id, txn_coordinator) = (0..64)
        .map(|i| format!("cluster-txn-failover-{i}"))
        .find_map(|id| {
            let node = wait_for("the transaction coordinator", || coordinator(&runtime, &bootstrap, &id, 1));
            (node != 1).then_some((id, node))
        })
        .expect("an id coordinated by node 2 or 3");
    let victim = if txn_coordinator == 2 { 3 } else { 2 };
    assert!(leaders.contains(&victim) && leaders.contains(&txn_coordinator), "{leaders:?}");

    let producer: ThreadedProducer<DefaultProducerContext> =
        client_config(&bootstrap).set("transactional.id", &txn_id).set("linger.ms", "5").create().expect("producer");
    producer.init_transactions(WAIT).expect("init_transactions");
    producer.begin_transaction().expect("begin");
    send_each_to(&producer, topic, "failover", PER_PARTITION);
    producer.flush(WAIT).expect("every record on its leader");
    nodes[victim as usize - 1].kill9();
    // PrepareCommit is durable; the victim's markers stay due.
    producer.commit_transaction(WAIT).expect("commit decided");
    drop(producer);
    // The coordinator dies before it can write them (and Complete).
    nodes[txn_coordinator as usize - 1].kill9();
    nodes[victim as usize - 1].restart();
    nodes[txn_coordinator as usize - 1].restart();

    let read = read_committed_of(&bootstrap, topic, |p| format!("failover-{p}-{}", PER_PARTITION - 1));
    for p in 0..PARTITIONS {
        let expected: Vec<String> = (0..PER_PARTITION).map(|i| format!("failover-{p}-{i}")).collect();
        assert_eq!(read[&p], expected, "partition {p} (leader {})", leaders[p as usize]);
    }
    // Completed: a new producer of the id starts (not held back by a
    // transaction left prepared) and its next transaction commits.
    let next: ThreadedProducer<DefaultProducerContext> =
        client_config(&bootstrap).set("transactional.id", &txn_id).set("linger.ms", "5").create().expect("producer");
    next.init_transactions(WAIT).expect("init_transactions after the failover");
    next.begin_transaction().expect("begin");
    send_each_to(&next, topic, "after", 1);
    next.commit_transaction(WAIT).expect("commit");
    let read = read_committed_of(&bootstrap, topic, |p| format!("after-{p}-0"));
    for p in 0..PARTITIONS {
        assert_eq!(read[&p].len(), PER_PARTITION + 1, "partition {p}: {:?}", read[&p]);
    }
}
