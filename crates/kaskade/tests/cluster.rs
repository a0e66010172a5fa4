//! Three `kaskade serve` processes (node ids 1..3, combined roles, a static
//! quorum on loopback ports) form one cluster: the metadata is replicated
//! by the controller quorum, every broker registers and is listed by every
//! other, topics are placed across them, clients bootstrapping from one node
//! produce to and fetch from the partitions' leaders, and metadata changes
//! go on after the active controller is killed with SIGKILL; a consumer
//! group works with its coordinator on the leader of its
//! `__consumer_offsets` partition; a broker killed with SIGKILL is fenced
//! after its session (unlisted, its RF=1 partitions offline) and leads
//! again when restarted, SIGTERM is a controlled shutdown, and a new active
//! controller gives live brokers fresh sessions. Every wait is on a
//! condition with a deadline.

mod process;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use rdkafka::{Message, Offset, TopicPartitionList};

use process::cluster::{
    active_controller, create, describe_quorum, metadata, metadata_controller, start_cluster, wait_for, Node,
};
use process::{client_config, WAIT};

#[test]
fn three_nodes_form_a_cluster_place_partitions_and_survive_losing_the_active_controller() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut nodes = start_cluster(root.path());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");

    // A 6-partition topic created through node 1 is placed on all three
    // brokers, as node 3 tells it.
    create(&runtime, &nodes[0].bootstrap(), NewTopic::new("spread", 6, TopicReplication::Fixed(1))).expect("create");
    let (brokers, leaders) = wait_for("node 3 lists 3 brokers and the topic", || {
        metadata(&nodes[2].bootstrap(), "spread").filter(|(b, l)| b.len() == 3 && l.len() == 6)
    });
    assert_eq!(brokers, BTreeSet::from([1, 2, 3]));
    assert_eq!(leaders.iter().copied().collect::<BTreeSet<i32>>(), BTreeSet::from([1, 2, 3]), "{leaders:?}");

    // DescribeQuorum: every node answers the active controller's view with
    // the three voters (the others forward it there, as Kafka's brokers do).
    let active = wait_for("an active controller", || active_controller(&runtime, &nodes[0].bootstrap()));
    for n in &nodes {
        let (code, leader, voters) = describe_quorum(&runtime, &n.bootstrap()).expect("DescribeQuorum");
        assert_eq!((code, leader, voters), (0, active, BTreeSet::from([1, 2, 3])), "node {}", n.id);
    }

    // More replicas than brokers is refused (replication itself:
    // tests/replication.rs).
    let refused = create(&runtime, &nodes[1].bootstrap(), NewTopic::new("rf4", 1, TopicReplication::Fixed(4)));
    assert_eq!(refused.expect_err("RF 4").1, RDKafkaErrorCode::InvalidReplicationFactor);

    // 300 keyed records through node 2 only reach every partition's
    // leader (rdkafka follows Metadata to them), and come back.
    let producer: BaseProducer = client_config(&nodes[1].bootstrap()).set("acks", "all").create().expect("producer");
    for i in 0..300 {
        let key = format!("key-{i}");
        let value = format!("value-{i}");
        producer.send(BaseRecord::to("spread").key(&key).payload(&value)).expect("enqueue");
        producer.poll(Duration::ZERO);
    }
    producer.flush(WAIT).expect("all 300 delivered");
    // rdkafka wants a group id even to assign; nothing is committed.
    let consumer: BaseConsumer = client_config(&nodes[1].bootstrap())
        .set("group.id", "assign-only")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..6 {
        tpl.add_partition_offset("spread", p, Offset::Beginning).expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    while seen.len() < 300 {
        assert!(Instant::now() < deadline, "consumed {} of 300", seen.len());
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.expect("fetch");
            seen.insert(String::from_utf8_lossy(m.payload().expect("value")).into_owned());
        }
    }

    // Kill -9 the active controller: the two others elect another and a
    // metadata change made through either goes on. Through the election,
    // every Metadata answer names a broker it lists as the controller
    // (never -1: librdkafka's admin client then has no controller and
    // waits out its request timeout).
    let active = wait_for("an active controller", || active_controller(&runtime, &nodes[0].bootstrap()));
    let killed = Instant::now();
    let victim = nodes.iter().position(|n| n.id == active).expect("the controller is a node");
    nodes[victim].kill9();
    let survivors: Vec<&Node> = nodes.iter().filter(|n| n.id != active).collect();
    let mut answers = 0;
    wait_for("a new active controller", || {
        for s in &survivors {
            if let Some((named, listed)) = metadata_controller(&runtime, &s.bootstrap()) {
                answers += 1;
                let named = named.unwrap_or_else(|| panic!("node {} named no controller (listing {listed:?})", s.id));
                assert!(listed.contains(&named), "node {} named {named}, not among {listed:?}", s.id);
            }
        }
        active_controller(&runtime, &survivors[0].bootstrap()).filter(|c| *c != active)
    });
    // A figure, not a check: how many answers the election spanned.
    eprintln!("failover: {answers} Metadata answers checked during the election");
    create(&runtime, &survivors[0].bootstrap(), NewTopic::new("after", 2, TopicReplication::Fixed(1)))
        .expect("create after the failover");
    // A figure, not a check: elections follow 1-2 s of silence.
    eprintln!("failover: kill -9 -> next topic created in {:?}", killed.elapsed());
    wait_for("the other survivor sees the new topic", || metadata(&survivors[1].bootstrap(), "after"));

    // Kill -9 the next active controller too: the last node can elect no
    // one and knows no leader (it campaigns on). Its Metadata still names
    // a broker it lists (Kafka names a live broker), never -1.
    let second = wait_for("the new active controller", || active_controller(&runtime, &survivors[0].bootstrap()));
    let victim = nodes.iter().position(|n| n.id == second).expect("the controller is a node");
    nodes[victim].kill9();
    let last = nodes.iter().find(|n| n.id != active && n.id != second).expect("a third node");
    wait_for("the last node knows no leader", || {
        describe_quorum(&runtime, &last.bootstrap()).filter(|(code, leader, _)| *code != 0 && *leader == -1)
    });
    for _ in 0..5 {
        let (named, listed) = wait_for("a Metadata answer", || metadata_controller(&runtime, &last.bootstrap()));
        let named = named.unwrap_or_else(|| panic!("no controller named with no leader (listing {listed:?})"));
        assert!(listed.contains(&named), "named {named}, not among {listed:?}");
        assert_eq!(describe_quorum(&runtime, &last.bootstrap()).map(|(_, leader, _)| leader), Some(-1));
    }
}

/// FindCoordinator for group `key` asked of the node at `bootstrap`:
/// (error code, node id, port).
fn find_coordinator(runtime: &tokio::runtime::Runtime, bootstrap: &str, key: &str) -> Option<(i16, i32, i32)> {
    use kafka_protocol::messages::FindCoordinatorRequest;
    use kafka_protocol::protocol::StrBytes;
    let client = kaskade_client::cluster::Client::new(bootstrap).ok()?;
    runtime.block_on(async {
        let conn = client.any_connection().await.ok()?;
        let version = conn.version::<FindCoordinatorRequest>().ok()?;
        let key = StrBytes::from_string(key.to_string());
        // Batched keys from v4, one key before.
        let req = if version >= 4 {
            FindCoordinatorRequest::default().with_coordinator_keys(vec![key])
        } else {
            FindCoordinatorRequest::default().with_key(key)
        };
        let resp = conn.send(&req, version).await.ok()?;
        Some(match resp.coordinators.first() {
            Some(c) => (c.error_code, c.node_id.0, c.port),
            None => (resp.error_code, resp.node_id.0, resp.port),
        })
    })
}

/// A consumer of group `group` subscribed to `topic`, committing by hand.
fn group_consumer(bootstrap: &str, group: &str, topic: &str) -> BaseConsumer {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

/// Sends `count` records to each of `topic`'s 6 partitions, values
/// `{prefix}-{partition}-{i}`, and waits until all are acknowledged.
fn produce_each(bootstrap: &str, topic: &str, prefix: &str, count: usize) {
    let producer: BaseProducer = client_config(bootstrap).set("acks", "all").create().expect("producer");
    for p in 0..6 {
        for i in 0..count {
            let value = format!("{prefix}-{p}-{i}");
            producer.send(BaseRecord::<(), _>::to(topic).partition(p).payload(&value)).expect("enqueue");
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(WAIT).expect("all delivered");
}

#[test]
fn a_consumer_group_runs_on_the_leaders_of_the_internal_partitions() {
    let root = tempfile::tempdir().expect("tempdir");
    let nodes = start_cluster(root.path());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    create(&runtime, &nodes[0].bootstrap(), NewTopic::new("grouped", 6, TopicReplication::Fixed(1))).expect("create");
    let (_, leaders) = wait_for("node 3 knows the topic", || {
        metadata(&nodes[2].bootstrap(), "grouped").filter(|(b, l)| b.len() == 3 && l.len() == 6)
    });
    assert_eq!(leaders.iter().copied().collect::<BTreeSet<i32>>(), BTreeSet::from([1, 2, 3]), "{leaders:?}");
    produce_each(&nodes[2].bootstrap(), "grouped", "old", 50);

    // Every node names the same coordinator for the group: a node of the
    // cluster, with its own client port (the first lookup creates
    // __consumer_offsets, spread over the three brokers).
    let coordinator = wait_for("node 1 names a coordinator", || {
        find_coordinator(&runtime, &nodes[0].bootstrap(), "g").filter(|(code, _, _)| *code == 0)
    });
    let (_, coordinator_id, port) = coordinator;
    let node = nodes.iter().find(|n| n.id == coordinator_id).expect("the coordinator is a node");
    assert_eq!(port, i32::from(node.client_port));
    for n in &nodes {
        let named = wait_for("every node names it", || {
            find_coordinator(&runtime, &n.bootstrap(), "g").filter(|(code, _, _)| *code == 0)
        });
        assert_eq!(named, coordinator, "node {}", n.id);
    }
    let (_, offsets_leaders) = wait_for("__consumer_offsets is placed", || {
        metadata(&nodes[1].bootstrap(), "__consumer_offsets").filter(|(_, l)| !l.is_empty())
    });
    assert_eq!(offsets_leaders.iter().copied().collect::<BTreeSet<i32>>(), BTreeSet::from([1, 2, 3]));

    // Two members bootstrapping from different nodes share the 6
    // partitions and read all 300 records; then each commits.
    let members =
        [group_consumer(&nodes[0].bootstrap(), "g", "grouped"), group_consumer(&nodes[1].bootstrap(), "g", "grouped")];
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    let assigned = |c: &BaseConsumer| c.assignment().map_or(0, |a| a.count());
    while seen.len() < 300
        || members.iter().any(|c| assigned(c) == 0)
        || members.iter().map(assigned).sum::<usize>() != 6
    {
        assert!(Instant::now() < deadline, "consumed {} of 300", seen.len());
        for c in &members {
            if let Some(m) = c.poll(Duration::from_millis(100)) {
                let m = m.expect("consume");
                seen.insert(String::from_utf8_lossy(m.payload().expect("value")).into_owned());
            }
        }
    }
    assert!(seen.iter().all(|v| v.starts_with("old-")));
    for c in &members {
        c.commit_consumer_state(CommitMode::Sync).expect("commit");
    }
    drop(members);

    // A new member bootstrapping from node 3 resumes from the committed
    // offsets: it reads only the 60 records produced after the commit.
    produce_each(&nodes[0].bootstrap(), "grouped", "new", 10);
    let resumed = group_consumer(&nodes[2].bootstrap(), "g", "grouped");
    let mut all = TopicPartitionList::new();
    for p in 0..6 {
        all.add_partition("grouped", p);
    }
    let committed = wait_for("the committed offsets", || {
        resumed.committed_offsets(all.clone(), Timeout::After(Duration::from_secs(5))).ok()
    });
    for e in committed.elements() {
        assert_eq!(e.offset(), Offset::Offset(50), "partition {}", e.partition());
    }
    let mut fresh = BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    while fresh.len() < 60 {
        assert!(Instant::now() < deadline, "resumed {} of 60", fresh.len());
        if let Some(m) = resumed.poll(Duration::from_millis(100)) {
            let m = m.expect("consume");
            let value = String::from_utf8_lossy(m.payload().expect("value")).into_owned();
            assert!(value.starts_with("new-"), "{value} was committed before");
            fresh.insert(value);
        }
    }
    drop(resumed);
}

/// How long the fencing test's brokers may go without heartbeats.
const SESSION: Duration = Duration::from_millis(6000);

/// Per partition: its leader and whether Metadata says LEADER_NOT_AVAILABLE.
type Leaders = Vec<(i32, bool)>;

/// (listed broker ids, [`Leaders`]) of `topic`, as the node at `bootstrap` answers.
fn leadership(bootstrap: &str, topic: &str) -> Option<(BTreeSet<i32>, Leaders)> {
    let consumer: BaseConsumer = client_config(bootstrap).create().ok()?;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)).ok()?;
    let brokers = md.brokers().iter().map(|b| b.id()).collect();
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    let not_available = rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE;
    let partitions = t.partitions().iter().map(|p| (p.leader(), p.error() == Some(not_available))).collect();
    Some((brokers, partitions))
}

/// Produces 10 records (acks=all) to `partition` of `topic` through
/// `bootstrap` and reads them back from the partition's leader.
fn round_trip(bootstrap: &str, topic: &str, partition: i32, prefix: &str) {
    let producer: BaseProducer = client_config(bootstrap).set("acks", "all").create().expect("producer");
    for i in 0..10 {
        let value = format!("{prefix}-{i}");
        producer.send(BaseRecord::<(), _>::to(topic).partition(partition).payload(&value)).expect("enqueue");
    }
    producer.flush(WAIT).expect("delivered to the leader");
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", "round-trip-assign-only")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning).expect("partition");
    consumer.assign(&tpl).expect("assign");
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    while !(0..10).all(|i| seen.contains(&format!("{prefix}-{i}"))) {
        assert!(Instant::now() < deadline, "read {} records of {prefix} back", seen.len());
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.expect("fetch");
            seen.insert(String::from_utf8_lossy(m.payload().expect("value")).into_owned());
        }
    }
}

#[test]
fn silent_brokers_are_fenced_come_back_shut_down_under_control_and_survive_a_controller_failover() {
    let root = tempfile::tempdir().expect("tempdir");
    let env = [
        ("KAFKA_BROKER_SESSION_TIMEOUT_MS".to_string(), SESSION.as_millis().to_string()),
        ("KAFKA_BROKER_HEARTBEAT_INTERVAL_MS".to_string(), "500".to_string()),
    ];
    let mut nodes = process::cluster::start_cluster_with(root.path(), 3, &env);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    create(&runtime, &nodes[0].bootstrap(), NewTopic::new("fenced", 3, TopicReplication::Fixed(1))).expect("create");
    let (_, placed) = wait_for("the topic on all three brokers", || {
        leadership(&nodes[0].bootstrap(), "fenced").filter(|(b, p)| b.len() == 3 && p.len() == 3)
    });
    let active = wait_for("an active controller", || active_controller(&runtime, &nodes[0].bootstrap()));
    let others: Vec<usize> = (0..3).filter(|i| nodes[*i].id != active).collect();
    let (v, t) = (others[0], others[1]);
    let a = (0..3).find(|i| nodes[*i].id == active).expect("the controller is a node");
    let victim = nodes[v].id;
    let led_by = |id: i32| -> Vec<usize> { (0..3).filter(|p| placed[*p].0 == id).collect() };

    // kill -9 a broker that is not the controller: within its session the
    // others stop listing it, and its RF=1 partitions have no leader.
    let killed = Instant::now();
    nodes[v].kill9();
    let observer = nodes[a].bootstrap();
    wait_for("the killed broker unlisted and its partitions offline", || {
        leadership(&observer, "fenced").filter(|(brokers, parts)| {
            !brokers.contains(&victim) && led_by(victim).iter().all(|p| parts[*p] == (-1, true))
        })
    });
    let fenced_after = killed.elapsed();
    eprintln!("kill -9 -> fenced and unlisted in {fenced_after:?} (session {SESSION:?})");
    assert!(fenced_after >= SESSION / 2, "fenced before its session could expire: {fenced_after:?}");
    assert!(fenced_after < SESSION + Duration::from_secs(5), "fenced late: {fenced_after:?}");

    // Restarted, it is listed again, leads its partitions again, and they work.
    nodes[v].restart();
    wait_for("the restarted broker listed and leading again", || {
        leadership(&observer, "fenced").filter(|(brokers, parts)| {
            brokers.contains(&victim) && led_by(victim).iter().all(|p| parts[*p] == (victim, false))
        })
    });
    round_trip(&observer, "fenced", led_by(victim)[0] as i32, "back");

    // SIGTERM: a controlled shutdown, well within a session; the broker
    // is unlisted at once (fenced by the shutdown, not by expiry).
    let stopping = nodes[t].id;
    let term = Instant::now();
    nodes[t].signal("TERM");
    let status = nodes[t].wait_exit(SESSION).expect("exits within a session after SIGTERM");
    let exited = term.elapsed();
    assert!(status.success(), "{status:?}; log:\n{}", nodes[t].log());
    assert!(nodes[t].log().contains("controlled shutdown: leaderships moved"), "log:\n{}", nodes[t].log());
    wait_for("the stopped broker unlisted", || {
        leadership(&observer, "fenced").filter(|(brokers, _)| !brokers.contains(&stopping))
    });
    let unlisted = term.elapsed();
    eprintln!("SIGTERM -> exit in {exited:?}, unlisted in {unlisted:?}");
    assert!(unlisted < SESSION, "unlisted only after {unlisted:?}: by expiry, not the controlled shutdown");

    // Back to three, then kill -9 the active controller: the new one gives
    // every broker a fresh session, so the live ones stay listed while the
    // killed one is fenced once its session at the new controller ends.
    nodes[t].restart();
    wait_for("three brokers listed", || leadership(&observer, "fenced").filter(|(b, _)| b.len() == 3));
    nodes[a].kill9();
    let survivor = nodes[v].bootstrap();
    wait_for("the old controller fenced by the new one", || {
        let (brokers, _) = leadership(&survivor, "fenced")?;
        assert!(
            brokers.contains(&victim) && brokers.contains(&stopping),
            "a live broker was fenced after the failover: {brokers:?}"
        );
        (!brokers.contains(&active)).then_some(())
    });

    // SIGSTOP: a broker that stops heartbeating is fenced; continued, it rejoins.
    nodes[a].restart();
    wait_for("three brokers listed", || leadership(&survivor, "fenced").filter(|(b, _)| b.len() == 3));
    nodes[t].signal("STOP");
    wait_for("the stopped broker unlisted", || {
        leadership(&survivor, "fenced").filter(|(brokers, _)| !brokers.contains(&stopping))
    });
    nodes[t].signal("CONT");
    wait_for("the continued broker listed and leading again", || {
        leadership(&survivor, "fenced").filter(|(brokers, parts)| {
            brokers.contains(&stopping) && led_by(stopping).iter().all(|p| parts[*p] == (stopping, false))
        })
    });
    round_trip(&survivor, "fenced", led_by(stopping)[0] as i32, "continued");

    // kill -9 and an immediate restart: the new process registers once the
    // old one's session has expired (DUPLICATE_BROKER_REGISTRATION until
    // then), and leads its partitions again.
    nodes[v].kill9();
    nodes[v].restart();
    let observer = nodes[a].bootstrap();
    wait_for("the quickly restarted broker listed and leading", || {
        leadership(&observer, "fenced").filter(|(brokers, parts)| {
            brokers.contains(&victim) && led_by(victim).iter().all(|p| parts[*p] == (victim, false))
        })
    });
    assert!(nodes[v].log().contains("waiting for its session to expire"), "log:\n{}", nodes[v].log());
}
