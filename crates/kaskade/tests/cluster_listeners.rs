//! Three `kaskade serve` processes, each with two client listeners
//! (INTERNAL, the inter-broker listener, and EXTERNAL on other ports) and a
//! rack (`a`, `a`, `b`): every broker registers both listeners, so a client
//! connected to EXTERNAL is told only EXTERNAL endpoints and one on
//! INTERNAL only INTERNAL ones (Kafka's rule: the connection's listener
//! selects the endpoints), in Metadata, DescribeCluster and
//! FindCoordinator; every broker's rack is reported; a replicated topic is
//! placed rack-aware (each partition on both racks, leaders balanced), its
//! followers replicate over INTERNAL, and a client that only knows
//! EXTERNAL produces and consumes. Every wait is on a condition with a
//! deadline.

mod process;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{DescribeClusterRequest, FindCoordinatorRequest};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

use process::cluster::{create, start_cluster_each, wait_for};
use process::{client_config, free_port, WAIT};

fn rack_of(id: i32) -> &'static str {
    if id == 3 {
        "b"
    } else {
        "a"
    }
}

/// (node id -> (port, rack)) as Metadata answers a client at `bootstrap`,
/// once it lists `n` brokers.
fn brokers_seen(runtime: &tokio::runtime::Runtime, bootstrap: &str) -> Option<BTreeMap<i32, (i32, Option<String>)>> {
    let client = kaskade_client::cluster::Client::new(bootstrap).ok()?;
    let md = runtime.block_on(client.metadata(Some(&[]))).ok()?;
    Some(md.brokers.values().map(|b| (b.node_id.get(), (b.port, b.rack.clone()))).collect())
}

/// (node id -> (port, rack)) as DescribeCluster answers at `bootstrap`.
fn cluster_described(
    runtime: &tokio::runtime::Runtime,
    bootstrap: &str,
) -> Option<BTreeMap<i32, (i32, Option<String>)>> {
    let client = kaskade_client::cluster::Client::new(bootstrap).ok()?;
    runtime.block_on(async {
        let conn = client.any_connection().await.ok()?;
        let version = conn.version::<DescribeClusterRequest>().ok()?;
        let resp = conn.send(&DescribeClusterRequest::default(), version).await.ok()?;
        Some(resp.brokers.iter().map(|b| (b.broker_id.0, (b.port, b.rack.as_ref().map(|r| r.to_string())))).collect())
    })
}

/// The port FindCoordinator names for group `key`, asked at `bootstrap`.
fn coordinator_port(runtime: &tokio::runtime::Runtime, bootstrap: &str, key: &str) -> Option<i32> {
    let client = kaskade_client::cluster::Client::new(bootstrap).ok()?;
    runtime.block_on(async {
        let conn = client.any_connection().await.ok()?;
        let version = conn.version::<FindCoordinatorRequest>().ok()?;
        let req = FindCoordinatorRequest::default().with_coordinator_keys(vec![StrBytes::from_string(key.into())]);
        let resp = conn.send(&req, version).await.ok()?;
        let c = resp.coordinators.first()?;
        (c.error_code == 0).then_some(c.port)
    })
}

#[test]
fn each_listener_is_answered_with_its_own_endpoints_and_replicas_are_placed_across_racks() {
    let root = tempfile::tempdir().expect("tempdir");
    let external: Mutex<BTreeMap<i32, u16>> = Mutex::new(BTreeMap::new());
    let nodes = start_cluster_each(root.path(), 3, |id, internal, controller| {
        let ext = free_port();
        external.lock().expect("ports").insert(id, ext);
        [
            (
                "KAFKA_LISTENERS",
                format!(
                    "INTERNAL://127.0.0.1:{internal},EXTERNAL://127.0.0.1:{ext},CONTROLLER://127.0.0.1:{controller}"
                ),
            ),
            ("KAFKA_ADVERTISED_LISTENERS", format!("INTERNAL://127.0.0.1:{internal},EXTERNAL://127.0.0.1:{ext}")),
            (
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                "CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT".into(),
            ),
            ("KAFKA_INTER_BROKER_LISTENER_NAME", "INTERNAL".into()),
            ("KAFKA_BROKER_RACK", rack_of(id).into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    });
    let external = external.into_inner().expect("ports");
    let internal: BTreeMap<i32, u16> = nodes.iter().map(|n| (n.id, n.client_port)).collect();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let expect = |ports: &BTreeMap<i32, u16>| -> BTreeMap<i32, (i32, Option<String>)> {
        ports.iter().map(|(id, p)| (*id, (i32::from(*p), Some(rack_of(*id).to_string())))).collect()
    };

    // Every node, asked on either listener, names all three brokers with
    // that listener's ports and their racks.
    for node in &nodes {
        let on_internal = format!("127.0.0.1:{}", internal[&node.id]);
        let on_external = format!("127.0.0.1:{}", external[&node.id]);
        for (bootstrap, ports) in [(&on_internal, &internal), (&on_external, &external)] {
            let seen = wait_for("Metadata lists the three brokers", || {
                brokers_seen(&runtime, bootstrap).filter(|b| b.len() == 3)
            });
            assert_eq!(seen, expect(ports), "Metadata asked at {bootstrap}");
            let described = cluster_described(&runtime, bootstrap).expect("DescribeCluster");
            assert_eq!(described, expect(ports), "DescribeCluster asked at {bootstrap}");
        }
    }

    // Replication factor 2 over racks a (nodes 1, 2) and b (node 3):
    // every partition on both racks, leaders balanced over the brokers.
    let ext1 = format!("127.0.0.1:{}", external[&1]);
    create(&runtime, &ext1, NewTopic::new("racked", 6, TopicReplication::Fixed(2))).expect("create");
    let replicas = wait_for("node 2 knows the topic", || {
        let consumer: BaseConsumer = client_config(&format!("127.0.0.1:{}", external[&2])).create().ok()?;
        let md = consumer.fetch_metadata(Some("racked"), Duration::from_secs(5)).ok()?;
        let t = md.topics().iter().find(|t| t.name() == "racked")?;
        (t.error().is_none() && t.partitions().len() == 6)
            .then(|| t.partitions().iter().map(|p| p.replicas().to_vec()).collect::<Vec<_>>())
    });
    let mut leads = BTreeMap::new();
    for r in &replicas {
        let racks: BTreeSet<&str> = r.iter().map(|id| rack_of(*id)).collect();
        assert_eq!(racks.len(), 2, "partition replicas {r:?} span both racks");
        *leads.entry(r[0]).or_insert(0) += 1;
    }
    assert_eq!(leads, BTreeMap::from([(1, 2), (2, 2), (3, 2)]), "leaders balanced: {replicas:?}");

    // A client knowing only EXTERNAL produces (acks=all: the followers
    // fetch over INTERNAL) and reads everything back.
    let producer: BaseProducer = client_config(&ext1).set("acks", "all").create().expect("producer");
    for i in 0..120 {
        let value = format!("v{i}");
        producer.send(BaseRecord::<(), _>::to("racked").partition(i % 6).payload(&value)).expect("enqueue");
        producer.poll(Duration::ZERO);
    }
    producer.flush(WAIT).expect("all acknowledged by both replicas");
    let consumer: BaseConsumer = client_config(&ext1)
        .set("group.id", "assign-only")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..6 {
        tpl.add_partition_offset("racked", p, Offset::Beginning).expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    while seen.len() < 120 {
        assert!(Instant::now() < deadline, "read back only {} of 120", seen.len());
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            seen.insert(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }

    // FindCoordinator names the coordinator's endpoint on the asking
    // listener (the first lookup creates __consumer_offsets).
    let ext_port = wait_for("a coordinator on EXTERNAL", || coordinator_port(&runtime, &ext1, "g"));
    let int_port = wait_for("a coordinator on INTERNAL", || coordinator_port(&runtime, &nodes[0].bootstrap(), "g"));
    let node = external.iter().find(|(_, p)| i32::from(**p) == ext_port).map(|(id, _)| *id);
    let node = node.unwrap_or_else(|| panic!("port {ext_port} is no broker's EXTERNAL port: {external:?}"));
    assert_eq!(int_port, i32::from(internal[&node]), "the same coordinator, on INTERNAL");
}
