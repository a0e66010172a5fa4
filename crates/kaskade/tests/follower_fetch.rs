//! Fetch from the closest replica (KIP-392) on a three-node cluster whose
//! nodes are in racks rack-1, rack-2 and rack-3, with
//! `replica.selector.class` = Kafka's `RackAwareReplicaSelector`. A real
//! client (rdkafka) with `client.rack` = a follower's rack reads a
//! replication-factor-3 topic: the leader sends it to that follower, which
//! serves every record (its `/metrics` count them out, the other follower's
//! stay at 0), identical to what a rack-less consumer reads from the leader.
//! Then that follower is killed with SIGKILL: the same consumer goes back to
//! the leader and reads what is produced afterwards, nothing lost or
//! repeated. A second test pauses a follower (SIGSTOP): while it is still in
//! the ISR the leader's HW stays behind, and the other in-sync follower
//! answers a fetch between its HW and its log end with no records and no
//! error (Kafka reads a follower's log up to its HW only); once the paused
//! follower left the ISR the leader serves a consumer in its rack itself,
//! and an rdkafka consumer there reads every record. Every wait is a
//! condition with a deadline.

mod process;

use std::time::{Duration, Instant};

use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use process::cluster::{active_controller, create, list_latest_on, metadata, start_cluster_with, wait_for, Node};
use process::scrape::scrape;
use process::{client_config, WAIT};

const TOPIC: &str = "nearby";
const SELECTOR: &str = "org.apache.kafka.common.replica.RackAwareReplicaSelector";

/// Records this node returned to fetches of the topic's partition 0.
fn records_out(node: &Node) -> Option<f64> {
    let series = format!("kaskade_partition_records_out_total{{topic=\"{TOPIC}\",partition=\"0\"}}");
    Some(scrape(node)?.get(&series).copied().unwrap_or(0.0))
}

/// What one partition of a raw Fetch answered.
#[derive(Debug)]
struct Answer {
    error: i16,
    preferred: i32,
    hw: i64,
    bytes: usize,
}

/// A consumer's sessionless Fetch of partition 0 at `offset`, asked of the
/// node at `bootstrap` itself with `version`, `rack` and the client's
/// `epoch` (-1: none).
fn fetch_on(
    runtime: &tokio::runtime::Runtime,
    bootstrap: &str,
    version: i16,
    rack: &str,
    offset: i64,
    epoch: i32,
) -> Option<Answer> {
    let client = kaskade_client::cluster::Client::new(bootstrap).ok()?;
    runtime.block_on(async {
        let conn = client.any_connection().await.ok()?;
        let mut p = FetchPartition::default();
        p.partition = 0;
        p.current_leader_epoch = epoch;
        p.fetch_offset = offset;
        p.log_start_offset = -1;
        p.partition_max_bytes = 1 << 20;
        let mut t = FetchTopic::default();
        t.topic = TopicName(StrBytes::from_static_str(TOPIC));
        t.partitions.push(p);
        let mut req = FetchRequest::default();
        req.replica_id = BrokerId(-1);
        req.max_wait_ms = 0;
        req.min_bytes = 0;
        req.max_bytes = 1 << 20;
        req.session_epoch = -1;
        req.rack_id = StrBytes::from_string(rack.to_string());
        req.topics.push(t);
        let resp = conn.send(&req, version).await.ok()?;
        let p = resp.responses.first()?.partitions.first()?;
        let bytes = p.records.as_ref().map_or(0, |r| r.len());
        Some(Answer { error: p.error_code, preferred: p.preferred_read_replica.0, hw: p.high_watermark, bytes })
    })
}

fn produce(bootstrap: &str, from: usize, to: usize) {
    produce_acks(bootstrap, from, to, "all");
}

/// value-`from` .. value-`to` with `acks`, every one acknowledged.
fn produce_acks(bootstrap: &str, from: usize, to: usize, acks: &str) {
    let producer: BaseProducer = client_config(bootstrap).set("acks", acks).create().expect("producer");
    for i in from..to {
        let v = format!("value-{i}");
        producer.send(BaseRecord::<(), _>::to(TOPIC).payload(&v)).expect("enqueue");
        producer.poll(Duration::ZERO);
    }
    producer.flush(WAIT).expect("every record acknowledged");
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
            // The killed follower's connection failing is reported, and
            // the client goes on (back to the leader).
            Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::BrokerTransportFailure))) => {}
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
    // Over the wire first (Fetch v12, by topic name).
    let (code, _, epoch) = list_latest_on(&runtime, &nodes[li].bootstrap(), TOPIC, 0).expect("ListOffsets");
    assert_eq!(code, 0);
    let on = |i: usize, version: i16, rack: &str, offset: i64, epoch: i32| {
        fetch_on(&runtime, &nodes[i].bootstrap(), version, rack, offset, epoch).expect("Fetch")
    };
    let near_rack = format!("rack-{near}");
    // The leader sends a consumer in the follower's rack there, with no
    // records; one without a rack, or in the leader's, it serves itself.
    let a = on(li, 12, &near_rack, 0, epoch);
    assert_eq!((a.error, a.preferred, a.bytes), (0, near, 0), "{a:?}");
    assert_eq!(a.hw, N as i64);
    let a = on(li, 12, "", 0, epoch);
    assert!(a.error == 0 && a.preferred == -1 && a.bytes > 0, "{a:?}");
    let a = on(li, 12, &format!("rack-{leader}"), 0, epoch);
    assert!(a.error == 0 && a.preferred == -1 && a.bytes > 0, "{a:?}");
    // The in-sync follower serves a v11+ consumer up to its HW, which it
    // learns from the leader's next answer (up to replica.fetch.wait.max.ms).
    let a = wait_for("the follower's HW reaches the leader's", || {
        Some(on(fi, 12, &near_rack, 0, epoch)).filter(|a| a.hw == N as i64)
    });
    assert!(a.error == 0 && a.preferred == -1 && a.bytes > 0, "{a:?}");
    // Kafka's errors there: past its log end, a newer (older) epoch than
    // it knows, a consumer without client metadata (v10), and ListOffsets
    // (which stays on the leader).
    let a = on(fi, 12, &near_rack, N as i64 + 10, epoch);
    assert_eq!(a.error, ResponseError::OffsetOutOfRange.code(), "{a:?}");
    let a = on(fi, 12, &near_rack, 0, epoch + 1);
    assert_eq!(a.error, ResponseError::UnknownLeaderEpoch.code(), "{a:?}");
    if epoch > 0 {
        let a = on(fi, 12, &near_rack, 0, epoch - 1);
        assert_eq!(a.error, ResponseError::FencedLeaderEpoch.code(), "{a:?}");
    }
    let a = on(fi, 10, &near_rack, 0, epoch);
    assert_eq!(a.error, ResponseError::NotLeaderOrFollower.code(), "{a:?}");
    let (code, _, _) = list_latest_on(&runtime, &nodes[fi].bootstrap(), TOPIC, 0).expect("ListOffsets");
    assert_eq!(code, ResponseError::NotLeaderOrFollower.code(), "ListOffsets stays on the leader");

    let other_before = records_out(&nodes[oi]).expect("scrape the other follower");
    let near_before = records_out(&nodes[fi]).expect("scrape the near follower");

    let bootstrap = nodes[li].bootstrap();
    let near_consumer = consumer(&bootstrap, Some(&near_rack));
    let mut near_read = Vec::new();
    read_until(&near_consumer, &mut near_read, N, WAIT);
    assert_whole(&near_read, N);
    let from_near = records_out(&nodes[fi]).expect("scrape the near follower");
    assert!(
        from_near >= near_before + N as f64,
        "node {near} (rack-{near}) served the consumer: {near_before} -> {from_near} records out"
    );
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
    // The other follower replicated the N new records from the leader,
    // and the consumer read them there too.
    let leader_after = records_out(&nodes[li]).expect("scrape the leader");
    assert!(
        leader_after >= leader_before + 2.0 * N as f64,
        "the leader served the consumer after node {near} died: {leader_before} -> {leader_after}"
    );
    // Nothing more arrives: no record repeated.
    let extra = near_consumer.poll(Duration::from_millis(500));
    assert!(extra.is_none(), "no record past the end: {:?}", extra.map(|m| m.map(|m| m.offset())));
}

#[test]
fn a_follower_out_of_the_isr_sends_its_racks_consumer_to_the_leader_and_a_follower_serves_only_up_to_its_hw() {
    let root = process::TestDir::new();
    let env: Vec<(String, String)> = [
        ("KAFKA_HTTP_LISTENER", "127.0.0.1:0"),
        ("KAFKA_REPLICA_SELECTOR_CLASS", SELECTOR),
        // Long enough to look at the other follower while the paused one is
        // still in the ISR; it leaves after that.
        ("KAFKA_REPLICA_LAG_TIME_MAX_MS", "8000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let nodes = start_cluster_with(root.path(), 3, &env);
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
    // The paused follower is not the active controller: the quorum goes on.
    let controller = wait_for("an active controller", || active_controller(&runtime, &nodes[li].bootstrap()));
    let pi = nodes.iter().position(|n| n.id != leader && n.id != controller).expect("a follower");
    let fi = (0..3).find(|i| *i != li && *i != pi).expect("the other follower");
    let paused_rack = format!("rack-{}", nodes[pi].id);
    let other_rack = format!("rack-{}", nodes[fi].id);

    const N: usize = 200;
    produce(&nodes[li].bootstrap(), 0, N);
    for i in [fi, pi] {
        wait_for(&format!("node {} holds the records", nodes[i].id), || {
            let m = scrape(&nodes[i])?;
            let lag = format!("kaskade_replica_fetcher_lag{{topic=\"{TOPIC}\",partition=\"0\",leader=\"{leader}\"}}");
            (m.get(&lag) == Some(&0.0)).then_some(())
        });
    }
    let (code, _, epoch) = list_latest_on(&runtime, &nodes[li].bootstrap(), TOPIC, 0).expect("ListOffsets");
    assert_eq!(code, 0);
    let on = |i: usize, rack: &str, offset: i64| {
        fetch_on(&runtime, &nodes[i].bootstrap(), 12, rack, offset, epoch).expect("Fetch")
    };
    let a = on(li, &paused_rack, 0);
    assert_eq!((a.error, a.preferred), (0, nodes[pi].id), "in sync: the leader sends its rack there: {a:?}");

    // Paused, still in the ISR: acks=1 records reach the other follower but
    // the leader's HW stays at N.
    nodes[pi].signal("STOP");
    const M: usize = 100;
    produce_acks(&nodes[li].bootstrap(), N, N + M, "1");
    let between = (N + M / 2) as i64;
    let a = wait_for("the other follower holds records past its HW", || {
        Some(on(fi, &other_rack, between)).filter(|a| a.error != ResponseError::OffsetOutOfRange.code())
    });
    // Kafka reads a follower's log up to its HW for consumers: an offset
    // between the HW and the log end is no error, just no records yet.
    assert_eq!((a.error, a.hw, a.bytes, a.preferred), (0, N as i64, 0, -1), "{a:?}");
    let a = on(fi, &other_rack, 0);
    assert!(a.error == 0 && a.hw == N as i64 && a.bytes > 0, "below its HW it serves: {a:?}");

    // Past replica.lag.time.max.ms the paused follower leaves the ISR: the
    // HW moves on and the leader serves its rack's consumers itself.
    let a = wait_for("the leader stops sending the paused follower's rack there", || {
        Some(on(li, &paused_rack, 0)).filter(|a| a.preferred == -1)
    });
    assert!(a.error == 0 && a.bytes > 0, "{a:?}");
    wait_for("the HW covers the acks=1 records", || Some(on(li, "", 0)).filter(|a| a.hw == (N + M) as i64));
    produce(&nodes[li].bootstrap(), N + M, 2 * N + M);
    let leader_before = records_out(&nodes[li]).expect("scrape the leader");
    let c = consumer(&nodes[li].bootstrap(), Some(&paused_rack));
    let mut read = Vec::new();
    read_until(&c, &mut read, 2 * N + M, WAIT * 2);
    assert_whole(&read, 2 * N + M);
    let leader_after = records_out(&nodes[li]).expect("scrape the leader");
    assert!(
        leader_after >= leader_before + (2 * N + M) as f64,
        "the leader served the paused follower's rack: {leader_before} -> {leader_after}"
    );
    let extra = c.poll(Duration::from_millis(500));
    assert!(extra.is_none(), "no record past the end: {:?}", extra.map(|m| m.map(|m| m.offset())));
    nodes[pi].signal("CONT");
}
