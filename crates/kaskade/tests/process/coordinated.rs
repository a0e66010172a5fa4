//! A 3-node cluster whose group coordinator must replicate what it writes
//! (`__consumer_offsets` one partition, replication factor 3, min ISR 2),
//! and Kafka requests sent straight to a chosen node: the set-up of the
//! tests that stop the coordinator's followers and check what a client is
//! answered (group_commit_durability, group_delete_durability,
//! group_join_durability).

use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{FindCoordinatorRequest, GroupId, OffsetCommitRequest, OffsetFetchRequest, TopicName};
use kafka_protocol::protocol::{Request, StrBytes};

use super::cluster::{start_cluster_with, Node};

/// The topic whose partition 0 the tests commit offsets for.
pub const TOPIC: &str = "t";

/// A current-thread runtime for the tests' `block_on`s.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// Three combined nodes in `dir` whose offsets partition needs two
/// replicas in sync, with `extra` settings (Kafka's environment names).
pub fn start(dir: &std::path::Path, extra: &[(&str, &str)]) -> Vec<Node> {
    let mut env = vec![
        ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "3"),
        ("KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS", "1"),
        ("KAFKA_MIN_INSYNC_REPLICAS", "2"),
    ];
    env.extend_from_slice(extra);
    let env: Vec<(String, String)> = env.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    start_cluster_with(dir, 3, &env)
}

/// Sends `req` at `version` to `node` on a connection of its own.
pub async fn send<R: Request>(node: &Node, req: &R, version: i16) -> Result<R::Response, String> {
    let client = kaskade_client::cluster::Client::new(&node.bootstrap()).map_err(|e| e.to_string())?;
    let conn = client.any_connection().await.map_err(|e| e.to_string())?;
    conn.send(req, version).await.map_err(|e| e.to_string())
}

/// The node FindCoordinator names for `group`, asked of `node`.
pub async fn coordinator(node: &Node, group: &'static str) -> Option<i32> {
    let mut req = FindCoordinatorRequest::default();
    req.key = StrBytes::from_static_str(group);
    let resp = send(node, &req, 3).await.ok()?;
    (resp.error_code == 0).then_some(resp.node_id.0)
}

/// OffsetCommit v8 of `t-0` for `group` from outside any group, sent to
/// `node`: the partition's error code.
pub async fn commit(node: &Node, group: &'static str, offset: i64) -> Result<i16, String> {
    let mut p = OffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = offset;
    let mut t = OffsetCommitRequestTopic::default();
    t.name = TopicName(StrBytes::from_static_str(TOPIC));
    t.partitions.push(p);
    let mut req = OffsetCommitRequest::default();
    req.group_id = GroupId(StrBytes::from_static_str(group));
    req.generation_id_or_member_epoch = -1;
    req.topics.push(t);
    let resp = send(node, &req, 8).await?;
    Ok(resp.topics[0].partitions[0].error_code)
}

/// OffsetFetch v7 of `group`'s `t-0` asked of `node`: (top-level error,
/// partition error, committed offset).
pub async fn fetch(node: &Node, group: &'static str, require_stable: bool) -> Result<(i16, i16, i64), String> {
    let mut t = OffsetFetchRequestTopic::default();
    t.name = TopicName(StrBytes::from_static_str(TOPIC));
    t.partition_indexes = vec![0];
    let mut req = OffsetFetchRequest::default();
    req.group_id = GroupId(StrBytes::from_static_str(group));
    req.topics = Some(vec![t]);
    req.require_stable = require_stable;
    let resp = send(node, &req, 7).await?;
    let p = resp.topics.first().and_then(|t| t.partitions.first());
    Ok((resp.error_code, p.map_or(0, |p| p.error_code), p.map_or(-1, |p| p.committed_offset)))
}
