//! ApiVersions on both listeners of a 3-node combined cluster (a static
//! quorum), asked as Kafka's tools ask (v4): the client listener and the
//! CONTROLLER listener advertise the same features, the cluster's
//! (`metadata.version` and `kraft.version` 0..1, not finalized for static
//! voters; nothing Kaskade does not implement), as Kafka's controllers do;
//! the controller listener lists exactly the APIs it serves, Fetch and
//! FetchSnapshot included; and on that same connection (begun with
//! ApiVersions, as a Kafka broker begins it) a Fetch of
//! `__cluster_metadata` is answered by the quorum's leader with the log.

mod process;

use std::collections::BTreeSet;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, BrokerId, FetchRequest};
use kafka_protocol::protocol::StrBytes;
use kaskade_client::connection::{Connection, ConnectionConfig};

use process::cluster::{describe_quorum, start_cluster, wait_for, CLUSTER_ID};
use process::WAIT;

/// `__cluster_metadata`'s topic id (Kafka's `Uuid.METADATA_TOPIC_ID`).
const METADATA_TOPIC_ID: uuid::Uuid = uuid::Uuid::from_u128(1);

fn connect(rt: &tokio::runtime::Runtime, addr: &str) -> std::sync::Arc<Connection> {
    let config = ConnectionConfig {
        client_id: "kafka-features".into(),
        connect_timeout: Duration::from_secs(5),
        request_timeout: WAIT,
    };
    rt.block_on(Connection::connect(addr, config)).expect("connect")
}

fn api_versions(rt: &tokio::runtime::Runtime, conn: &Connection) -> ApiVersionsResponse {
    let req = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("apache-kafka-java"))
        .with_client_software_version(StrBytes::from_static_str("4.4.0"));
    let resp = rt.block_on(conn.send(&req, 4)).expect("ApiVersions");
    assert_eq!(resp.error_code, 0);
    resp
}

/// (name, min, max) supported and (name, min level, max level) finalized.
type Features = (BTreeSet<(String, i16, i16)>, BTreeSet<(String, i16, i16)>);

fn features(r: &ApiVersionsResponse) -> Features {
    (
        r.supported_features.iter().map(|f| (f.name.to_string(), f.min_version, f.max_version)).collect(),
        r.finalized_features.iter().map(|f| (f.name.to_string(), f.min_version_level, f.max_version_level)).collect(),
    )
}

#[test]
fn both_listeners_advertise_the_clusters_features_and_the_controller_lists_what_it_serves() {
    let root = tempfile::tempdir().expect("tempdir");
    let nodes = start_cluster(root.path());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (_, leader, _) =
        wait_for("the quorum has a leader", || describe_quorum(&rt, &nodes[0].bootstrap()).filter(|q| q.0 == 0));

    for node in &nodes {
        let client = api_versions(&rt, &connect(&rt, &node.bootstrap()));
        let controller_addr = format!("127.0.0.1:{}", node.voters[&node.id]);
        let controller = api_versions(&rt, &connect(&rt, &controller_addr));
        assert_eq!(features(&client), features(&controller), "node {}: the same features on both listeners", node.id);
        let (supported, finalized) = features(&client);
        let names: BTreeSet<&str> = supported.iter().map(|(n, _, _)| n.as_str()).collect();
        assert!(names.contains("metadata.version") && names.contains("kraft.version"), "{supported:?}");
        assert!(supported.contains(&("kraft.version".to_string(), 0, 1)), "{supported:?}");
        for absent in ["eligible.leader.replicas.version", "share.version", "streams.version"] {
            assert!(!names.contains(absent), "{absent} is not implemented, so not advertised: {supported:?}");
        }
        assert!(!finalized.iter().any(|(n, _, _)| n == "kraft.version"), "static voters: kraft.version 0");
        for (name, min, max) in &finalized {
            assert_eq!(min, max, "{name}");
            let (_, lo, hi) = supported.iter().find(|(n, _, _)| n == name).expect("a finalized feature is supported");
            assert!((lo..=hi).contains(&max), "{name} finalized at {max}, supported {lo}..={hi}");
        }

        // The controller listener: exactly the controller's APIs.
        let listed: BTreeSet<(i16, i16, i16)> =
            controller.api_keys.iter().map(|k| (k.api_key, k.min_version, k.max_version)).collect();
        let served: BTreeSet<(i16, i16, i16)> = kaskade_broker::router::controller_routes()
            .iter()
            .map(|r| (r.key as i16, r.min_version, r.max_version))
            .collect();
        assert_eq!(listed, served);
        let keys: BTreeSet<i16> = listed.iter().map(|(k, _, _)| *k).collect();
        assert!(keys.contains(&1) && keys.contains(&59), "Fetch and FetchSnapshot for observers: {keys:?}");
        assert!(!keys.contains(&0) && !keys.contains(&3), "no Produce, no Metadata on the controller listener");
    }

    // An observer's Fetch of the metadata log on a connection begun with
    // ApiVersions, to the quorum's leader: the log from offset 0.
    let at = nodes.iter().find(|n| n.id == leader).expect("the leader is a node");
    let conn = connect(&rt, &format!("127.0.0.1:{}", at.voters[&at.id]));
    api_versions(&rt, &conn);
    // The epoch comes from the leader's answers, as an observer learns it.
    let mut epoch = 0;
    let p = wait_for("the leader answers the observer's Fetch", || {
        let partition = FetchPartition::default()
            .with_partition(0)
            .with_fetch_offset(0)
            .with_last_fetched_epoch(0)
            .with_current_leader_epoch(epoch)
            .with_partition_max_bytes(1 << 20);
        let req = FetchRequest::default()
            .with_cluster_id(Some(StrBytes::from_static_str(CLUSTER_ID)))
            .with_replica_state(ReplicaState::default().with_replica_id(BrokerId(100)).with_replica_epoch(-1))
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default().with_topic_id(METADATA_TOPIC_ID).with_partitions(vec![partition])]);
        let resp = rt.block_on(conn.send(&req, 17)).expect("Fetch answered on the controller listener");
        assert_eq!(resp.error_code, 0);
        let p = resp.responses.into_iter().next()?.partitions.into_iter().next()?;
        epoch = p.current_leader.leader_epoch;
        Some(p).filter(|p| p.error_code == 0)
    });
    assert!(p.high_watermark > 0, "the cluster's metadata is committed: {p:?}");
    assert!(
        p.records.as_ref().is_some_and(|r| !r.is_empty()) || p.snapshot_id.end_offset >= 0,
        "records from offset 0 (or the snapshot to fetch first): {p:?}"
    );
}
