//! The internal topics of a three-node cluster are created by the active
//! controller: a broker's group coordinator asks it with CreateTopics on
//! its controller channel (no Envelope), as Kafka's broker does. With
//! `offsets.topic.replication.factor=3` every node's Metadata then lists
//! `__consumer_offsets` with its configured partitions, three replicas
//! each, and FindCoordinator answers through any broker; with a
//! replication factor the cluster cannot place (4 on 3 brokers), the
//! controller refuses, FindCoordinator answers COORDINATOR_NOT_AVAILABLE
//! and no node lists the topic. Every wait is on a condition with a
//! deadline.

mod process;

use kafka_protocol::messages::FindCoordinatorRequest;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use process::cluster::{start_cluster_with, wait_for};

const OFFSETS: &str = "__consumer_offsets";

fn env(replication: &str) -> Vec<(String, String)> {
    [("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", replication), ("KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS", "3")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// FindCoordinator for group "g" at `bootstrap`: its error code.
fn find_coordinator(runtime: &tokio::runtime::Runtime, bootstrap: &str) -> Option<i16> {
    let client = kaskade_client::cluster::Client::new(bootstrap).ok()?;
    runtime.block_on(async {
        let conn = client.any_connection().await.ok()?;
        let req = FindCoordinatorRequest::default().with_coordinator_keys(vec![StrBytes::from_static_str("g")]);
        let resp = conn.send(&req, 4).await.ok()?;
        Some(resp.coordinators.first()?.error_code)
    })
}

/// (partitions, replicas of each) of the offsets topic in the Metadata of
/// the node at `bootstrap`; `None` if it does not list it.
fn offsets_topic(runtime: &tokio::runtime::Runtime, bootstrap: &str) -> Option<(usize, Vec<usize>)> {
    let client = kaskade_client::cluster::Client::new(bootstrap).ok()?;
    let md = runtime.block_on(client.metadata(Some(&[OFFSETS.to_string()]))).ok()?;
    let t = md.topics.iter().find(|t| t.name == OFFSETS && t.error.is_none())?;
    Some((t.partitions.len(), t.partitions.iter().map(|p| p.replicas.len()).collect()))
}

#[test]
fn the_offsets_topic_is_created_by_the_active_controller() {
    let root = tempfile::tempdir().expect("tempdir");
    let nodes = start_cluster_with(root.path(), 3, &env("3"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    for node in &nodes {
        wait_for(&format!("node {} finds the group coordinator", node.id), || {
            find_coordinator(&runtime, &node.bootstrap()).filter(|code| *code == 0)
        });
    }
    for node in &nodes {
        let (partitions, replicas) =
            wait_for(&format!("node {} lists {OFFSETS}", node.id), || offsets_topic(&runtime, &node.bootstrap()));
        assert_eq!((partitions, replicas), (3, vec![3, 3, 3]), "node {}", node.id);
    }
}

#[test]
fn an_offsets_topic_the_controller_cannot_place_is_not_created() {
    let root = tempfile::tempdir().expect("tempdir");
    let nodes = start_cluster_with(root.path(), 3, &env("4"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let unavailable = ResponseError::CoordinatorNotAvailable.code();
    for node in &nodes {
        wait_for(&format!("node {} answers COORDINATOR_NOT_AVAILABLE", node.id), || {
            find_coordinator(&runtime, &node.bootstrap()).filter(|code| *code == unavailable)
        });
    }
    // Every broker's group coordinator has started, asked and been refused.
    for node in &nodes {
        assert_eq!(offsets_topic(&runtime, &node.bootstrap()), None, "node {} lists {OFFSETS}", node.id);
    }
}
