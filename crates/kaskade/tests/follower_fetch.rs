//! Fetch from the closest replica (KIP-392) on a three-node cluster whose
//! nodes are in racks rack-1, rack-2 and rack-3, with
//! `replica.selector.class` = Kafka's `RackAwareReplicaSelector`. A real
//! client (rdkafka) with `client.rack` = a follower's rack reads a
//! replication-factor-3 topic: the leader sends it to that follower, which
//! serves every record (its `/metrics` count them out, the other follower's
//! stay at 0), identical to what a rack-less consumer reads from the leader.
//! Then that follower is killed with SIGKILL: the same consumer goes back to
//! the leader and reads what is produced afterwards, nothing lost or
//! repeated. Every wait is a condition with a deadline.

mod process;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

use process::cluster::{active_controller, create, metadata, start_cluster_with, wait_for, Node};
use process::{client_config, WAIT};

const TOPIC: &str = "nearby";
const SELECTOR: &str = "org.apache.kafka.common.replica.RackAwareReplicaSelector";

/// `/metrics` of `node` as `name{labels}` -> value, or `None`.
fn scrape(node: &Node) -> Option<BTreeMap<String, f64>> {
    let addr = node.http_addr()?;
    let mut s = TcpStream::connect(&addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    Some(
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
            .collect(),
    )
}

/// Records this node returned to fetches of the topic's partition 0.
fn records_out(node: &Node) -> Option<f64> {
    let series = format!("kaskade_partition_records_out_total{{topic=\"{TOPIC}\",partition=\"0\"}}");
    Some(scrape(node)?.get(&series).copied().unwrap_or(0.0))
}

fn produce(bootstrap: &str, from: usize, to: usize) {
    let producer: BaseProducer = client_config(bootstrap).set("acks", "all").create().expect("producer");
    for i in from..to {
        let v = format!("value-{i}");
        producer.send(BaseRecord::<(), _>::to(TOPIC).payload(&v)).expect("enqueue");
        producer.poll(Duration::ZERO);
    }
    producer.flush(WAIT).expect("every record acknowledged (acks=all)");
}

/// A consumer of partition 0 from the beginning, in `rack` if given.
fn consumer(bootstrap: &str, rack: Option<&str>) -> BaseConsumer {
    let mut config = client_config(bootstrap);
    config
        .set("group.id", "follower-fetch")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "error")
        .set("fetch.wait.max.ms", "100");
    if let Some(rack) = rack {
        config.set("client.rack", rack);
    }
    let c: BaseConsumer = config.create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning).expect("partition");
    c.assign(&tpl).expect("assign");
    c
}

/// Polls `c` until `out` holds `n` records: (offset, value).
fn read_until(c: &BaseConsumer, out: &mut Vec<(i64, String)>, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while out.len() < n {
        assert!(Instant::now() < deadline, "read {} of {n} records within {within:?}", out.len());
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.push((m.offset(), String::from_utf8_lossy(m.payload().unwrap_or_default()).into())),
            Some(Err(e)) => panic!("consume: {e}"),
            None => {}
        }
    }
}

/// Offsets 0.. in order, value-i at offset i.
fn assert_whole(read: &[(i64, String)], n: usize) {
    assert_eq!(read.len(), n);
    for (i, (offset, value)) in read.iter().enumerate() {
        assert_eq!((*offset, value.as_str()), (i as i64, format!("value-{i}").as_str()), "record {i}");
    }
}

#[test]
fn a_consumer_reads_from_the_follower_in_its_rack_and_goes_back_to_the_leader_when_it_dies() {
    let root = process::TestDir::new();
    let env: Vec<(String, String)> = [
        ("KAFKA_HTTP_LISTENER", "127.0.0.1:0"),
        ("KAFKA_REPLICA_SELECTOR_CLASS", SELECTOR),
        // A dead follower leaves the ISR after 2 s.
        ("KAFKA_REPLICA_LAG_TIME_MAX_MS", "2000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut nodes = start_cluster_with(root.path(), 3, &env);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let topic = NewTopic::new(TOPIC, 1, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
    create(&runtime, &nodes[0].bootstrap(), topic).expect("create RF 3");
    let leader = wait_for("every node knows the leader", || {
        let leaders: Vec<i32> = nodes
            .iter()
            .filter_map(|n| metadata(&n.bootstrap(), TOPIC))
            .filter_map(|(_, l)| l.first().copied())
            .collect();
        (leaders.len() == 3 && leaders.iter().all(|l| *l == leaders[0] && *l > 0)).then(|| leaders[0])
    });
    let li = nodes.iter().position(|n| n.id == leader).expect("the leader");
    // The follower the consumer is near: not the active controller, so
    // killing it later leaves the quorum's leader alone.
    let controller = wait_for("an active controller", || active_controller(&runtime, &nodes[li].bootstrap()));
    let fi = nodes.iter().position(|n| n.id != leader && n.id != controller).expect("a follower");
    let oi = (0..3).find(|i| *i != li && *i != fi).expect("the other follower");
    let near = nodes[fi].id;

    const N: usize = 300;
    produce(&nodes[li].bootstrap(), 0, N);
    // Both followers fetched everything (and so are in sync at the end).
    for i in [fi, oi] {
        wait_for(&format!("node {} holds the records", nodes[i].id), || {
            let m = scrape(&nodes[i])?;
            let lag = format!("kaskade_replica_fetcher_lag{{topic=\"{TOPIC}\",partition=\"0\",leader=\"{leader}\"}}");
            (m.get(&lag) == Some(&0.0)).then_some(())
        });
    }
    let other_before = records_out(&nodes[oi]).expect("scrape the other follower");
    assert_eq!(records_out(&nodes[fi]), Some(0.0), "nobody fetched from node {near} yet");

    let bootstrap = nodes[li].bootstrap();
    let near_consumer = consumer(&bootstrap, Some(&format!("rack-{near}")));
    let mut near_read = Vec::new();
    read_until(&near_consumer, &mut near_read, N, WAIT);
    assert_whole(&near_read, N);
    let from_near = records_out(&nodes[fi]).expect("scrape the near follower");
    assert!(from_near >= N as f64, "node {near} (rack-{near}) served the consumer: {from_near} records out");
    assert_eq!(records_out(&nodes[oi]), Some(other_before), "the other follower served nothing");

    // A consumer without a rack reads the same records from the leader.
    let leader_consumer = consumer(&bootstrap, None);
    let mut leader_read = Vec::new();
    read_until(&leader_consumer, &mut leader_read, N, WAIT);
    assert_eq!(leader_read, near_read, "the follower's records are the leader's");
    assert_eq!(records_out(&nodes[fi]), Some(from_near), "a rack-less consumer reads from the leader only");

    // The near follower dies: the consumer goes back to the leader and
    // loses nothing produced afterwards.
    nodes[fi].kill9();
    let leader_before = records_out(&nodes[li]).expect("scrape the leader");
    produce(&bootstrap, N, 2 * N);
    read_until(&near_consumer, &mut near_read, 2 * N, WAIT * 2);
    assert_whole(&near_read, 2 * N);
    let leader_after = records_out(&nodes[li]).expect("scrape the leader");
    assert!(
        leader_after >= leader_before + N as f64,
        "the leader served the consumer after node {near} died: {leader_before} -> {leader_after}"
    );
    // Nothing more arrives: no record repeated.
    let extra = near_consumer.poll(Duration::from_millis(500));
    assert!(extra.is_none(), "no record past the end: {:?}", extra.map(|m| m.map(|m| m.offset())));
}
