//! Leader elections on a three-node cluster of `kaskade serve` processes
//! (issue 14, point 3), with short broker sessions (3 s, heartbeat 300 ms):
//! - automatic preferred-leader rebalancing: the preferred leader of RF 3
//!   partitions is killed with SIGKILL and restarted, and leadership comes
//!   back to it by the active controller's periodic check
//!   (`leader.imbalance.check.interval.seconds=1` here), and it takes
//!   writes with every replica's log the same;
//! - ElectLeaders over the wire (Kafka's request through kaskade-client's
//!   Connection, sent to a node that is not the active controller), with
//!   rebalancing off: PREFERRED moves leadership back and answers per
//!   partition (NONE, ELECTION_NOT_NEEDED, UNKNOWN_TOPIC_OR_PARTITION,
//!   PREFERRED_LEADER_NOT_AVAILABLE), UNCLEAN on a led partition is not
//!   needed, an unknown election type is INVALID_REQUEST;
//! - unclean elections: an RF 2 partition whose follower was fenced out of
//!   the ISR loses its leader; with the default it stays offline
//!   (LEADER_NOT_AVAILABLE), and setting `unclean.leader.election.enable`
//!   on the topic elects the out-of-sync replica, which takes writes again
//!   (the records only the dead leader had are lost, and the controller
//!   says so at WARN and counts it in
//!   `kaskade_unclean_leader_elections_total`); the old leader, restarted,
//!   truncates to it.

mod process;

use std::path::PathBuf;
use std::time::Duration;

use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaRespErr;

use process::cluster::{active_controller, create, start_cluster_with, wait_for, Node};
use process::replicas::{batches, check_replicas, log_end, roots};
use process::scrape::scrape;
use process::{client_config, WAIT};

/// One partition as Metadata answers it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Partition {
    leader: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    error: Option<RDKafkaRespErr>,
}

impl Partition {
    fn preferred(&self) -> i32 {
        self.replicas[0]
    }
}

/// (live broker ids, partitions of `topic`) as the node at `bootstrap` answers Metadata.
fn describe(bootstrap: &str, topic: &str) -> Option<(Vec<i32>, Vec<Partition>)> {
    let consumer: BaseConsumer = client_config(bootstrap).create().ok()?;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)).ok()?;
    let mut brokers: Vec<i32> = md.brokers().iter().map(|b| b.id()).collect();
    brokers.sort_unstable();
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    if t.error().is_some() || t.partitions().is_empty() {
        return None;
    }
    let mut partitions: Vec<(i32, Partition)> = t
        .partitions()
        .iter()
        .map(|p| {
            let mut isr = p.isr().to_vec();
            isr.sort_unstable();
            let described = Partition { leader: p.leader(), replicas: p.replicas().to_vec(), isr, error: p.error() };
            (p.id(), described)
        })
        .collect();
    partitions.sort_by_key(|(id, _)| *id);
    Some((brokers, partitions.into_iter().map(|(_, p)| p).collect()))
}

fn env(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    [
        ("KAFKA_BROKER_SESSION_TIMEOUT_MS", "3000"),
        ("KAFKA_BROKER_HEARTBEAT_INTERVAL_MS", "300"),
        ("KAFKA_REPLICA_LAG_TIME_MAX_MS", "2000"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// Waits until the node at `bootstrap` shows every partition of `topic` led by its preferred replica.
fn wait_balanced(bootstrap: &str, topic: &str) -> Vec<Partition> {
    wait_for(&format!("{topic}: every partition led by its preferred replica"), || {
        describe(bootstrap, topic).map(|(_, ps)| ps).filter(|ps| ps.iter().all(|p| p.leader == p.preferred()))
    })
}

/// Kills the preferred leader of partition 0 with SIGKILL and waits until
/// `other` shows its leaderships moved; its index in `nodes`.
fn kill_preferred_leader(nodes: &mut [Node], topic: &str, partition0: &Partition, other: &str) -> usize {
    let victim = nodes.iter().position(|n| n.id == partition0.leader).expect("the leader is a node");
    let victim_id = nodes[victim].id;
    nodes[victim].kill9();
    wait_for(&format!("{topic}: node {victim_id}'s leaderships move"), || {
        describe(other, topic).filter(|(_, ps)| ps.iter().all(|p| p.leader != victim_id && p.leader >= 0))
    });
    victim
}

/// ElectLeaders at `version` on a new connection to `bootstrap`.
fn elect(
    runtime: &tokio::runtime::Runtime,
    bootstrap: &str,
    version: i16,
    election_type: i8,
    partitions: Option<&[(&str, &[i32])]>,
) -> ElectLeadersResponse {
    let mut req = ElectLeadersRequest::default();
    req.election_type = election_type;
    req.timeout_ms = 30_000;
    req.topic_partitions = partitions.map(|ps| {
        ps.iter()
            .map(|(t, ps)| {
                let mut tp = TopicPartitions::default();
                tp.topic = TopicName(StrBytes::from_string(t.to_string()));
                tp.partitions = ps.to_vec();
                tp
            })
            .collect()
    });
    runtime.block_on(async {
        let conn =
            kaskade_client::connection::Connection::connect(bootstrap, Default::default()).await.expect("connect");
        conn.send(&req, version).await.expect("ElectLeaders answered")
    })
}

/// (topic, partition, error code) of every result.
fn codes(resp: &ElectLeadersResponse) -> Vec<(String, i32, i16)> {
    resp.replica_election_results
        .iter()
        .flat_map(|t| t.partition_result.iter().map(|p| (t.topic.0.to_string(), p.partition_id, p.error_code)))
        .collect()
}

#[test]
fn leadership_returns_to_the_restarted_preferred_replica_by_auto_rebalance() {
    const TOPIC: &str = "rebalanced";
    let root = tempfile::tempdir().expect("tempdir");
    let mut nodes = start_cluster_with(root.path(), 3, &env(&[("KAFKA_LEADER_IMBALANCE_CHECK_INTERVAL_SECONDS", "1")]));
    let runtime = runtime();
    create(&runtime, &nodes[0].bootstrap(), NewTopic::new(TOPIC, 3, TopicReplication::Fixed(3))).expect("create");
    let before = wait_balanced(&nodes[0].bootstrap(), TOPIC);
    let other = nodes.iter().find(|n| n.id != before[0].leader).expect("another node").bootstrap();
    assert_eq!(produce(&runtime, &other, TOPIC, 5), vec![0, 1, 2, 3, 4]);

    let victim = kill_preferred_leader(&mut nodes, TOPIC, &before[0], &other);
    let victim_id = nodes[victim].id;
    nodes[victim].restart();

    // Back in every ISR, then (within a check interval) leading again
    // every partition it is the preferred replica of.
    let after = wait_balanced(&other, TOPIC);
    assert_eq!(after.iter().map(|p| p.leader).collect::<Vec<_>>(), before.iter().map(|p| p.leader).collect::<Vec<_>>());
    assert_eq!(after[0].leader, victim_id);
    assert!(
        nodes.iter().any(|n| n.log().contains("auto leader rebalance: preferred replicas lead again")),
        "the active controller's rebalancing moved them"
    );
    // The preferred leader takes writes again and every replica agrees.
    assert_eq!(produce(&runtime, &other, TOPIC, 5), vec![5, 6, 7, 8, 9]);
    check_replicas(&roots(root.path(), &nodes), TOPIC, 0, 10);
}

#[test]
fn elect_leaders_preferred_over_the_wire_answers_per_partition() {
    const TOPIC: &str = "elected";
    let root = tempfile::tempdir().expect("tempdir");
    let mut nodes = start_cluster_with(root.path(), 3, &env(&[("KAFKA_AUTO_LEADER_REBALANCE_ENABLE", "false")]));
    let runtime = runtime();
    create(&runtime, &nodes[0].bootstrap(), NewTopic::new(TOPIC, 3, TopicReplication::Fixed(3))).expect("create");
    let before = wait_balanced(&nodes[0].bootstrap(), TOPIC);

    let other = nodes.iter().find(|n| n.id != before[0].leader).expect("another node").bootstrap();
    let victim = kill_preferred_leader(&mut nodes, TOPIC, &before[0], &other);
    let victim_id = nodes[victim].id;
    nodes[victim].restart();
    let imbalanced = wait_for("the restarted node is back in every ISR", || {
        describe(&other, TOPIC).map(|(_, ps)| ps).filter(|ps| ps.iter().all(|p| p.isr.contains(&victim_id)))
    });
    assert_ne!(imbalanced[0].leader, victim_id, "rebalancing is off: nothing moved it back");

    // Asked of a node that is not the active controller: the change is forwarded.
    let controller = wait_for("an active controller", || active_controller(&runtime, &other));
    let asker = nodes.iter().find(|n| n.id != controller).expect("a non-controller").bootstrap();
    let resp = elect(&runtime, &asker, 2, 0, Some(&[(TOPIC, &[0, 1, 2, 7]), ("missing", &[0])]));
    assert_eq!(resp.error_code, 0);
    let mut expected: Vec<(String, i32, i16)> = imbalanced
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let code = if p.preferred() == victim_id { 0 } else { ResponseError::ElectionNotNeeded.code() };
            (TOPIC.to_string(), i as i32, code)
        })
        .collect();
    expected.push((TOPIC.to_string(), 7, ResponseError::UnknownTopicOrPartition.code()));
    expected.push(("missing".to_string(), 0, ResponseError::UnknownTopicOrPartition.code()));
    assert_eq!(codes(&resp), expected);
    let unknown = &resp.replica_election_results[1].partition_result[0];
    assert_eq!(unknown.error_message.as_deref(), Some("No such topic as missing"));
    for node in &nodes {
        wait_balanced(&node.bootstrap(), TOPIC);
    }

    // Every partition (null): the topic is listed, none needed an election.
    let all = elect(&runtime, &asker, 1, 0, None);
    assert_eq!(all.error_code, 0);
    assert!(all.replica_election_results.iter().any(|t| t.topic.0.as_str() == TOPIC));
    assert_eq!(codes(&all), vec![], "every partition already has its preferred leader");
    // UNCLEAN on a partition that has a leader; an unknown type.
    let unclean = elect(&runtime, &asker, 1, 1, Some(&[(TOPIC, &[0])]));
    assert_eq!(codes(&unclean), vec![(TOPIC.to_string(), 0, ResponseError::ElectionNotNeeded.code())]);
    let bad = elect(&runtime, &asker, 1, 5, Some(&[(TOPIC, &[0])]));
    assert_eq!(bad.error_code, ResponseError::InvalidRequest.code());

    // The preferred replica gone (fenced): PREFERRED_LEADER_NOT_AVAILABLE.
    let balanced = wait_balanced(&other, TOPIC);
    let victim = kill_preferred_leader(&mut nodes, TOPIC, &balanced[0], &other);
    let asker = nodes.iter().enumerate().find(|(i, _)| *i != victim).map(|(_, n)| n.bootstrap()).expect("a live node");
    let unavailable = elect(&runtime, &asker, 0, 0, Some(&[(TOPIC, &[0])]));
    assert_eq!(codes(&unavailable), vec![(TOPIC.to_string(), 0, ResponseError::PreferredLeaderNotAvailable.code())]);
}

/// Sends `n` records to partition 0 of `topic` with acks=all; their offsets.
fn produce(runtime: &tokio::runtime::Runtime, bootstrap: &str, topic: &str, n: usize) -> Vec<i64> {
    let producer: FutureProducer =
        client_config(bootstrap).set("acks", "all").set("message.timeout.ms", "20000").create().expect("producer");
    (0..n)
        .map(|i| {
            let payload = format!("record-{i}");
            let record = FutureRecord::<(), _>::to(topic).partition(0).payload(&payload);
            match runtime.block_on(producer.send(record, WAIT)) {
                Ok(delivery) => delivery.offset,
                Err((e, _)) => panic!("producing to {topic}-0 failed: {e}"),
            }
        })
        .collect()
}

#[test]
fn an_out_of_sync_replica_leads_only_once_the_topic_allows_unclean_elections() {
    const TOPIC: &str = "unclean";
    let root = tempfile::tempdir().expect("tempdir");
    let mut nodes = start_cluster_with(root.path(), 3, &env(&[("KAFKA_HTTP_LISTENER", "127.0.0.1:0")]));
    let runtime = runtime();
    // The unclean elections `live` nodes counted (`None` if a scrape
    // failed): only the active controller that decided one counts it.
    let unclean_counted = |live: &[&Node]| -> Option<f64> {
        live.iter().map(|n| scrape(n)?.get("kaskade_unclean_leader_elections_total").copied()).sum()
    };
    // Replicas 1 (the leader) and 2; node 3 holds none.
    let assignment: &[&[i32]] = &[&[1, 2]];
    create(&runtime, &nodes[2].bootstrap(), NewTopic::new(TOPIC, 1, TopicReplication::Variable(assignment)))
        .expect("create");
    let (a, b, c) = (0, 1, 2);
    let third = nodes[c].bootstrap();
    wait_for("1 leads with 2 in sync", || {
        describe(&third, TOPIC).filter(|(_, ps)| ps[0].leader == 1 && ps[0].isr == [1, 2])
    });
    let replicated = produce(&runtime, &third, TOPIC, 5);
    assert_eq!(replicated, vec![0, 1, 2, 3, 4]);
    let root_of = |id: i32| root.path().join(format!("node-{id}"));
    wait_for("2 holds the first five records", || (log_end(&batches(&root_of(2), TOPIC, 0)) == 5).then_some(()));

    // 2 pauses past its session: fenced and out of the ISR; 1 takes more
    // records alone.
    nodes[b].signal("STOP");
    wait_for("2 leaves the ISR", || describe(&third, TOPIC).filter(|(_, ps)| ps[0].isr == [1]));
    let only_on_1 = produce(&runtime, &third, TOPIC, 10);
    assert_eq!(only_on_1.last(), Some(&14));

    // 1 dies; 2 comes back, out of sync.
    nodes[a].kill9();
    nodes[b].signal("CONT");
    let (_, offline) = wait_for("2 unfenced and 1 fenced", || {
        describe(&third, TOPIC).filter(|(brokers, _)| brokers.contains(&2) && !brokers.contains(&1))
    });
    assert_eq!(offline[0].leader, -1, "the default (unclean.leader.election.enable=false) keeps it offline");
    assert_eq!(offline[0].error, Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE));
    assert_eq!(offline[0].isr, [1], "the last ISR member stays");
    assert_eq!(unclean_counted(&[&nodes[b], &nodes[c]]), Some(0.0), "no unclean election yet");

    // Allowed on the topic: the controller elects 2 at once, alone in the ISR.
    let admin: AdminClient<DefaultClientContext> = client_config(&third).create().expect("admin");
    let options = AdminOptions::new().request_timeout(Some(WAIT));
    let alter = AlterConfig::new(ResourceSpecifier::Topic(TOPIC)).set("unclean.leader.election.enable", "true");
    let altered = runtime.block_on(admin.alter_configs(&[alter], &options)).expect("AlterConfigs");
    assert!(altered.iter().all(|r| r.is_ok()), "{altered:?}");
    wait_for("2 leads alone", || describe(&third, TOPIC).filter(|(_, ps)| ps[0].leader == 2 && ps[0].isr == [2]));
    // Counted after the commit, so possibly a moment after Metadata shows it.
    wait_for("the controller counts one unclean election", || {
        (unclean_counted(&[&nodes[b], &nodes[c]]) == Some(1.0)).then_some(())
    });
    let after = produce(&runtime, &third, TOPIC, 1);
    assert_eq!(after, vec![5], "records 5-14 were only on 1: lost, as an unclean election loses them");
    assert!(
        nodes.iter().any(|n| n.log().contains("unclean leader election: unclean-0 is now led by broker 2")),
        "the controller warns that records may be lost"
    );

    // 1 restarts as a follower: it truncates its tail to 2's log and
    // catches up.
    nodes[a].restart();
    let replicas: Vec<(i32, PathBuf)> = vec![(1, root_of(1)), (2, root_of(2))];
    check_replicas(&replicas, TOPIC, 0, 6);
}
