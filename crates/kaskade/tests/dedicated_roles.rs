//! Dedicated roles, as Kafka's isolated-mode docker-compose set-ups run
//! them: a controller-only node (`process.roles=controller`: the quorum on
//! its CONTROLLER listener, no client listener, never registered as a
//! broker, never a replica) and two broker-only nodes
//! (`process.roles=broker`: observers of the quorum through
//! `controller.quorum.voters` and `controller.listener.names`, which
//! register, heartbeat, forward their metadata changes to the active
//! controller and serve clients), all from `kaskade serve` with the same
//! KAFKA_* environment Kafka takes. A replicated topic is created,
//! produced to and read back; the controller is killed with SIGKILL and
//! restarted, and metadata changes and clients go on; a broker killed and
//! restarted keeps its data (it opens its logs only once it fetched the
//! image) and serves everything once the other broker is gone. Every
//! wait is on a condition with a deadline. `KASKADE_DEDICATED_CONTROLLERS=3`
//! (the long mode) runs three controllers, and the active one is the one
//! killed. A second test speaks Kafka's protocol to the controller
//! listener (ApiVersions, DescribeCluster, DescribeQuorum with the brokers as
//! observers; other APIs and garbage frames close the connection).

mod process;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

use process::cluster::{
    active_controller, create, describe_quorum, metadata_controller, start_dedicated, wait_for, Node,
};
use process::{client_config, WAIT};

/// How many controller-only nodes (ids 1..=n; the brokers follow).
fn controllers() -> i32 {
    std::env::var("KASKADE_DEDICATED_CONTROLLERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1).max(1)
}

/// Nodes 1..=n controller-only, the next two broker-only.
fn start(root: &std::path::Path, n: i32) -> Vec<Node> {
    start_dedicated(root, n, &[])
}

/// (broker ids, replicas by partition) of `topic` as the node at
/// `bootstrap` answers Metadata.
fn placement(bootstrap: &str, topic: &str, partitions: usize) -> Option<(BTreeSet<i32>, Vec<Vec<i32>>)> {
    let consumer: BaseConsumer = client_config(bootstrap).create().ok()?;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)).ok()?;
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    if t.error().is_some() || t.partitions().len() != partitions || t.partitions().iter().any(|p| p.leader() < 0) {
        return None;
    }
    let brokers = md.brokers().iter().map(|b| b.id()).collect();
    Some((brokers, t.partitions().iter().map(|p| p.replicas().to_vec()).collect()))
}

/// (leaders, ISRs sorted) of `topic`'s partitions as the node at
/// `bootstrap` answers Metadata.
fn leaders_and_isrs(bootstrap: &str, topic: &str) -> Option<(Vec<i32>, Vec<Vec<i32>>)> {
    let consumer: BaseConsumer = client_config(bootstrap).create().ok()?;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)).ok()?;
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    let isr = |p: &rdkafka::metadata::MetadataPartition| {
        let mut isr = p.isr().to_vec();
        isr.sort_unstable();
        isr
    };
    Some((t.partitions().iter().map(|p| p.leader()).collect(), t.partitions().iter().map(isr).collect()))
}

/// Produces `count` records (values `{prefix}-{i}`) with acks=all through
/// `bootstrap`; every one acknowledged.
fn produce(bootstrap: &str, topic: &str, prefix: &str, count: usize) {
    let producer: BaseProducer = client_config(bootstrap).set("acks", "all").create().expect("producer");
    for i in 0..count {
        let value = format!("{prefix}-{i}");
        producer.send(BaseRecord::<(), _>::to(topic).payload(&value)).expect("enqueue");
        producer.poll(Duration::ZERO);
    }
    producer.flush(WAIT).expect("all acknowledged");
}

/// Reads `topic`'s `partitions` partitions from the start through
/// `bootstrap` until `want` values were seen.
fn read_back(bootstrap: &str, topic: &str, partitions: i32, want: &BTreeSet<String>) {
    let consumer: BaseConsumer =
        client_config(bootstrap).set("group.id", "assign-only").set("enable.auto.commit", "false").create().expect("c");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    while !want.is_subset(&seen) {
        assert!(Instant::now() < deadline, "read back {} of {}", want.intersection(&seen).count(), want.len());
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            seen.insert(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
}

#[test]
fn a_controller_only_node_and_two_broker_only_nodes_form_a_cluster_and_survive_a_controller_restart() {
    let root = tempfile::tempdir().expect("tempdir");
    let n = controllers();
    let mut nodes = start(root.path(), n);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (b2, b3) = (nodes[n as usize].bootstrap(), nodes[n as usize + 1].bootstrap());
    let brokers_ids = BTreeSet::from([n + 1, n + 2]);
    let controller_ids: BTreeSet<i32> = (1..=n).collect();

    // A controller-only node serves no client listener and is not a broker.
    for c in &nodes[..n as usize] {
        assert!(std::net::TcpStream::connect(c.bootstrap()).is_err(), "controller {} has no client port", c.id);
    }
    // Metadata names a live broker as the controller (clients send admin
    // requests there; it forwards them), never the controller-only node.
    let named = wait_for("a broker names a controller", || metadata_controller(&runtime, &b2).and_then(|(c, _)| c));
    assert!(brokers_ids.contains(&named), "Metadata's controller is a broker: {named}");

    // Replication factor 2 over the two brokers, created through node 2.
    create(&runtime, &b2, NewTopic::new("dedicated", 4, TopicReplication::Fixed(2))).expect("create");
    let created = Instant::now();
    let (brokers, replicas) = wait_for("node 3 knows the topic", || placement(&b3, "dedicated", 4));
    // A figure, not a check: the other broker's observer fetches the change.
    eprintln!("dedicated: topic created through one broker -> in the other's Metadata in {:?}", created.elapsed());
    assert_eq!(brokers, brokers_ids, "only the broker-only nodes are brokers");
    assert!(replicas.iter().all(|r| r.iter().copied().collect::<BTreeSet<_>>() == brokers_ids), "{replicas:?}");
    // DescribeQuorum through a broker: the broker asks the active
    // controller, which names the voters.
    let (code, leader, voters) = describe_quorum(&runtime, &b2).expect("DescribeQuorum");
    assert_eq!((code, voters), (0, controller_ids.clone()));
    assert!(controller_ids.contains(&leader), "the active controller is a controller: {leader}");
    let refused = create(&runtime, &b3, NewTopic::new("rf3", 1, TopicReplication::Fixed(3)));
    assert!(refused.is_err(), "the controller is never a replica: RF 3 on two brokers");

    produce(&b3, "dedicated", "before", 100);
    let before: BTreeSet<String> = (0..100).map(|i| format!("before-{i}")).collect();
    read_back(&b2, "dedicated", 4, &before);

    // The active controller dies and comes back on its data dir: the
    // brokers keep serving what they have meanwhile, then metadata changes
    // go on (with three controllers, under the next active one at once).
    let active = (leader - 1) as usize;
    let killed = Instant::now();
    nodes[active].kill9();
    if n > 1 {
        // Another controller takes over: changes go on before the restart.
        create(&runtime, &b3, NewTopic::new("failover", 1, TopicReplication::Fixed(2))).expect("create in failover");
        eprintln!("dedicated: kill -9 of the active controller -> next topic created in {:?}", killed.elapsed());
    }
    produce(&b2, "dedicated", "during", 20);
    nodes[active].restart();
    let named =
        wait_for("a broker names a controller again", || metadata_controller(&runtime, &b3).and_then(|(c, _)| c));
    assert!(brokers_ids.contains(&named), "Metadata's controller is a broker: {named}");
    create(&runtime, &b3, NewTopic::new("after-restart", 2, TopicReplication::Fixed(2))).expect("create after");
    wait_for("node 2 sees the new topic", || placement(&b2, "after-restart", 2));
    produce(&b2, "after-restart", "after", 50);
    let after: BTreeSet<String> = (0..50).map(|i| format!("after-{i}")).collect();
    read_back(&b3, "after-restart", 2, &after);
    let during: BTreeSet<String> = (0..20).map(|i| format!("during-{i}")).collect();
    read_back(&b3, "dedicated", 4, &during);

    // A broker-only node restarts on its data: it waits for the quorum's
    // image before it opens its logs (an empty image would delete them),
    // catches up, and once the other broker is gone it serves everything.
    let (second, third) = (n as usize, n as usize + 1);
    nodes[third].kill9();
    nodes[third].restart();
    let both: Vec<i32> = brokers_ids.iter().copied().collect();
    wait_for("the restarted broker is back in every ISR", || {
        leaders_and_isrs(&b2, "dedicated").filter(|(_, isrs)| isrs.iter().all(|isr| *isr == both))
    });
    nodes[second].kill9();
    wait_for("the restarted broker leads every partition", || {
        leaders_and_isrs(&b3, "dedicated").filter(|(leaders, _)| leaders.iter().all(|l| *l == n + 2))
    });
    let all: BTreeSet<String> = before.union(&during).cloned().collect();
    read_back(&b3, "dedicated", 4, &all);

    // A controller's data dir holds the metadata quorum only: no partition.
    for id in &controller_ids {
        let dir = root.path().join(format!("node-{id}"));
        let partitions: Vec<String> = std::fs::read_dir(&dir)
            .expect("controller dir")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .filter(|n| n.starts_with("dedicated-") || n.starts_with("after-restart-") || n.starts_with("__"))
            .collect();
        assert!(partitions.is_empty(), "controller {id} hosts no partition: {partitions:?}");
    }
}

/// A Kafka connection to the controller listener at `addr`.
fn controller_connection(
    runtime: &tokio::runtime::Runtime,
    addr: &str,
) -> Result<std::sync::Arc<kaskade_client::connection::Connection>, kaskade_client::ClientError> {
    let config = kaskade_client::connection::ConnectionConfig {
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(15),
        ..Default::default()
    };
    runtime.block_on(kaskade_client::connection::Connection::connect(addr, config))
}

/// DescribeQuorum of `__cluster_metadata` at `conn`'s highest version.
fn quorum_of(
    runtime: &tokio::runtime::Runtime,
    conn: &kaskade_client::connection::Connection,
) -> Option<kafka_protocol::messages::describe_quorum_response::PartitionData> {
    use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
    use kafka_protocol::messages::{DescribeQuorumRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let mut topic = TopicData::default();
    topic.topic_name = TopicName(StrBytes::from_static_str("__cluster_metadata"));
    topic.partitions.push(PartitionData::default());
    let mut req = DescribeQuorumRequest::default();
    req.topics.push(topic);
    let version = conn.version::<DescribeQuorumRequest>().ok()?;
    let resp = runtime.block_on(conn.send(&req, version)).ok()?;
    resp.topics.into_iter().next()?.partitions.into_iter().next()
}

/// Writes `bytes` on a fresh connection to `addr` and reads until the
/// controller closes it: what it answered (nothing, for a refused frame).
fn closed_after(addr: &str, bytes: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    s.write_all(bytes).expect("write");
    let mut answer = Vec::new();
    match s.read_to_end(&mut answer) {
        Ok(_) => answer,
        // A reset is a close too; a timeout is a hang.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => answer,
        Err(e) => panic!("the controller at {addr} did not close the connection within {WAIT:?}: {e}"),
    }
}

#[test]
fn the_controller_listener_speaks_kafkas_controller_apis_and_lists_the_brokers_as_observers() {
    use kafka_protocol::messages::{
        ApiKey, DescribeClusterRequest, DescribeClusterResponse, MetadataRequest, ProduceRequest,
    };
    use kafka_protocol::ResponseError;
    let root = tempfile::tempdir().expect("tempdir");
    let n = controllers();
    let nodes = start(root.path(), n);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let controller_ids: BTreeSet<i32> = (1..=n).collect();
    let broker_ids = BTreeSet::from([n + 1, n + 2]);
    let addr = |id: i32| format!("127.0.0.1:{}", nodes[0].voters[&id]);
    // Brokers register once the quorum has a leader; wait for it through one.
    wait_for("a broker names a controller", || active_controller(&runtime, &nodes[n as usize].bootstrap()));

    let mut leader = -1;
    for id in &controller_ids {
        let conn = controller_connection(&runtime, &addr(*id)).expect("ApiVersions on the controller listener");
        // ApiVersions lists the controller's APIs only (Fetch and
        // FetchSnapshot for observers of the metadata log).
        for key in [ApiKey::ApiVersions, ApiKey::DescribeQuorum, ApiKey::DescribeCluster, ApiKey::Fetch] {
            assert!(conn.broker_range(key).is_some(), "controller {id} lists {key:?}");
        }
        for key in [ApiKey::Produce, ApiKey::Metadata, ApiKey::FindCoordinator] {
            assert!(conn.broker_range(key).is_none(), "controller {id} does not list {key:?}");
        }
        // DescribeCluster names the controllers at their controller
        // listeners, and the active one.
        let ask = |endpoint_type: i8| -> DescribeClusterResponse {
            let req = DescribeClusterRequest::default().with_endpoint_type(endpoint_type);
            runtime.block_on(conn.send(&req, 1)).expect("DescribeCluster")
        };
        let named =
            wait_for("a controller names the active controller", || Some(ask(2)).filter(|r| r.controller_id.0 >= 0));
        assert_eq!((named.error_code, named.endpoint_type), (0, 2));
        let listed: BTreeSet<(i32, String)> =
            named.brokers.iter().map(|b| (b.broker_id.0, format!("{}:{}", b.host, b.port))).collect();
        let want: BTreeSet<(i32, String)> = controller_ids.iter().map(|c| (*c, addr(*c))).collect();
        assert_eq!(listed, want, "controller {id} lists the controllers");
        assert!(controller_ids.contains(&named.controller_id.0));
        leader = named.controller_id.0;
        // Asked for brokers, a controller refuses as Kafka's does.
        assert_eq!(ask(1).error_code, ResponseError::MismatchedEndpointType.code());
    }

    // DescribeQuorum at the active controller: the voters, and the two
    // broker-only nodes as observers with their positions (the observer
    // link reports where it is), caught up at the high watermark.
    let conn = controller_connection(&runtime, &addr(leader)).expect("the active controller");
    let quorum = wait_for("both brokers listed as caught-up observers", || {
        let p = quorum_of(&runtime, &conn)?;
        let caught_up: BTreeSet<i32> = p
            .observers
            .iter()
            .filter(|o| o.log_end_offset == p.high_watermark && o.last_fetch_timestamp > 0)
            .map(|o| o.replica_id.0)
            .collect();
        (caught_up == broker_ids).then_some(p)
    });
    assert_eq!(quorum.error_code, 0);
    assert_eq!(quorum.leader_id.0, leader);
    let voters: BTreeSet<i32> = quorum.current_voters.iter().map(|v| v.replica_id.0).collect();
    assert_eq!(voters, controller_ids);
    assert!(quorum.high_watermark > 0);
    for o in &quorum.observers {
        assert!(o.last_caught_up_timestamp > 0, "observer {} was caught up: {o:?}", o.replica_id.0);
    }
    // Through a broker too (it asks the active controller): the same leader.
    let (code, through_broker, _) = describe_quorum(&runtime, &nodes[n as usize].bootstrap()).expect("DescribeQuorum");
    assert_eq!((code, through_broker), (0, leader));

    // An API the controller does not serve closes the connection, unanswered.
    let metadata = kaskade_client::connection::encode_frame(&MetadataRequest::default(), 12, 1, "t").expect("encode");
    assert!(closed_after(&addr(leader), &metadata).is_empty(), "Metadata is not a controller API here");
    let produce = kaskade_client::connection::encode_frame(&ProduceRequest::default(), 9, 1, "t").expect("encode");
    assert!(closed_after(&addr(leader), &produce).is_empty(), "Produce is not a controller API");
    // Malformed Kafka frames: an unknown API key, a header cut short, a
    // negative size. Each closes its connection, nothing else.
    let garbage: [&[u8]; 3] = [&[0, 0, 0, 6, 0, 0x7f, 0, 0, 0, 1], &[0, 0, 0, 2, 0, 18], &[0x80, 0, 0, 0, 0]];
    for bytes in garbage {
        assert!(closed_after(&addr(leader), bytes).is_empty(), "{bytes:?} is not answered");
    }
    // The controller still answers, and the quorum still decides.
    let again = controller_connection(&runtime, &addr(leader)).expect("ApiVersions after the garbage");
    assert!(quorum_of(&runtime, &again).is_some_and(|p| p.error_code == 0));
    create(&runtime, &nodes[n as usize].bootstrap(), NewTopic::new("after-garbage", 1, TopicReplication::Fixed(2)))
        .expect("create");
    for (i, node) in nodes.iter().enumerate().take(n as usize) {
        assert!(!node.log().contains("panicked"), "controller {} did not panic", i + 1);
    }
}
